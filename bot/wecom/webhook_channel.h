#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "bot/channel.h"
#include "bot/wecom/webhook_sender.h"
#include "handlers/sender.h"

namespace bot {

/// What one POST to the group robot means for the outbox (docs/protocols.md "Group robot
/// webhook"): errcode 0 → Sent; 45009 (rate limited), an HTTP failure, an answer that is not the
/// robot's JSON, or a transport error before the request was complete → Retry; −1 (system busy)
/// → Busy; a transport error after the request was written → Unknown; any other errcode (93000
/// invalid webhook url, 40058 invalid parameter, 40008 invalid msgtype, …) → Failed. Pure.
PostResult webhook_result(const handlers::SendResult& r);

/// The group robot webhook as an outbound channel: each target's webhook_url, the robot's JSON
/// bodies (bot/delivery.h markdown_body, text_body, image_body). Thread-safe.
class WebhookChannel : public OutboundChannel {
 public:
  /// The sender for a webhook URL; the reference must stay valid while the channel lives.
  using SenderFor = std::function<handlers::Sender&(const std::string& url)>;

  /// Posts over HTTPS with one WebhookSender per URL (made on first use).
  WebhookChannel();
  /// Posts through `sender_for` (tests record the bodies and the URLs).
  explicit WebhookChannel(SenderFor sender_for);

  PostResult post_markdown(const Target& target, std::string_view markdown) override;
  PostResult post_image(const Target& target, std::string_view png) override;
  PostResult post_text(const Target& target, std::string_view text,
                       const std::vector<std::string>& mentioned) override;
  std::string name() const override { return "group robot webhook"; }

 private:
  PostResult post(const Target& target, const std::string& body);
  SenderFor sender_for_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<WebhookSender>> senders_;
};

}  // namespace bot
