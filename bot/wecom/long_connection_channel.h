#pragma once

#include <chrono>
#include <string>

#include "bot/channel.h"
#include "bot/wecom/long_connection.h"

namespace bot::wecom {

/// What one request over the long connection means for the outbox: no connection (nothing
/// written) → Retry; written but no ack → Unknown (it may have been posted); errcode 0 → Sent;
/// −1 (system busy) → Busy; 45009 (rate limited) → Retry; any other errcode → Failed with
/// "errcode N: errmsg". Pure.
PostResult long_connection_result(const RequestResult& r);

/// Bulletins and reminders over the long connection (websocket mode): `aibot_send_msg` with
/// {"chatid": target.chat_id, "msgtype": "markdown", "markdown": {"content"}} (SDK sendMessage),
/// the ack's errcode as the result. A reminder's text goes as markdown with <@userid> mentions
/// (aibot_send_msg has no text message). An image (a chart) is uploaded as a temporary media in
/// chunks (aibot_upload_media_init / _chunk / _finish, SDK uploadMedia) and sent as
/// {"msgtype": "image", "image": {"media_id"}} (SDK sendMediaMessage); a failed upload posts
/// nothing and is retried. Only the serving process holds the connection, so only its outbox
/// worker uses this. Thread-safe (LongConnection::request is).
class LongConnectionChannel : public OutboundChannel {
 public:
  /// `ack_timeout`: how long one request waits for its ack before it counts as unknown.
  explicit LongConnectionChannel(LongConnection& link,
                                 std::chrono::milliseconds ack_timeout = std::chrono::seconds(10));

  PostResult post_markdown(const Target& target, std::string_view markdown) override;
  PostResult post_image(const Target& target, std::string_view png) override;
  std::string name() const override { return "WeCom long connection"; }

 private:
  LongConnection& link_;
  std::chrono::milliseconds ack_timeout_;
};

}  // namespace bot::wecom
