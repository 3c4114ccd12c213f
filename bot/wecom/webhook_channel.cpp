#include "bot/wecom/webhook_channel.h"

#include "bot/config.h"
#include "bot/delivery.h"

namespace bot {
namespace {

// The longest prefix of s of at most max bytes that ends on a UTF-8 code-point boundary.
std::string clip(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

std::string describe(const handlers::SendResult& r) {
  if (r.http_status == 0) return "transport: " + r.error;
  if (r.http_status != 200) return "HTTP " + std::to_string(r.http_status);
  if (!r.errcode) return "bad answer: " + r.error;
  std::string s = "errcode " + std::to_string(*r.errcode);
  if (!r.errmsg.empty()) s += ": " + clip(r.errmsg, 300);
  return s;
}

}  // namespace

PostResult webhook_result(const handlers::SendResult& r) {
  using S = PostResult::Status;
  PostResult p;
  p.errcode = r.errcode;
  if (r.ok()) {
    p.status = S::Sent;
    return p;
  }
  p.message = describe(r);
  if (r.http_status == 0)
    p.status = r.maybe_delivered ? S::Unknown : S::Retry;
  else if (r.http_status == 200 && r.errcode)
    p.status = *r.errcode == 45009 ? S::Retry : *r.errcode == -1 ? S::Busy : S::Failed;
  else
    p.status = S::Retry;  // HTTP failure or an answer that is not the robot's JSON
  return p;
}

WebhookChannel::WebhookChannel()
    : sender_for_([this](const std::string& url) -> handlers::Sender& {
        std::lock_guard lock(mu_);
        auto& s = senders_[url];
        if (!s) s = std::make_unique<WebhookSender>(url, "webhook_url");
        return *s;
      }) {}

WebhookChannel::WebhookChannel(SenderFor sender_for) : sender_for_(std::move(sender_for)) {}

PostResult WebhookChannel::post(const Target& target, const std::string& body) {
  if (target.webhook_url.empty())
    return {PostResult::Status::Failed, std::nullopt,
            "group '" + target.group + "' has no webhook_url", 0};
  handlers::Sender* sender = nullptr;
  try {
    sender = &sender_for_(target.webhook_url);
  } catch (const ConfigError& e) {
    // config check refuses such a URL; a value here keeps one bad group from stopping the rest.
    return {PostResult::Status::Failed, std::nullopt,
            "group '" + target.group + "': " + std::string(e.what()), 0};
  }
  return webhook_result(sender->post(body));
}

PostResult WebhookChannel::post_markdown(const Target& target, std::string_view markdown) {
  return post(target, markdown_body(std::string(markdown)));
}

PostResult WebhookChannel::post_text(const Target& target, std::string_view text,
                                     const std::vector<std::string>& mentioned) {
  return post(target, text_body(std::string(text), mentioned));
}

PostResult WebhookChannel::post_image(const Target& target, std::string_view png) {
  if (png.size() > kImageLimit)
    return {PostResult::Status::Failed, std::nullopt,
            "image of " + std::to_string(png.size()) + " bytes is above the robot's 2 MB", 0};
  return post(target, image_body(png));
}

}  // namespace bot
