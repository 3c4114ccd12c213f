#pragma once

// The platform-neutral outbound channel (README "Several groups"): how the outbox worker posts a
// queued message to a group without knowing the platform. One implementation per way of
// reaching a group: the WeCom group robot webhook (bot/wecom/webhook_channel.h) in callback mode,
// the long connection's aibot_send_msg in websocket mode. Delivery (bot/delivery.h) keeps the
// exactly-once, retry and `unknown` rules; a channel only says what one attempt came to.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bot {

/// Where a message goes: a configured group (config `groups`, or the one implicit group of
/// wecom.webhook_url, whose name is ""). A channel uses the field its platform needs: chat_id
/// (the long connection's chatid) or webhook_url (the group robot; its key= is a credential,
/// never logged).
struct Target {
  std::string group;
  std::string chat_id;
  std::string webhook_url;
};

/// What one attempt to post came to, in the terms the outbox needs.
struct PostResult {
  enum class Status {
    Sent,     // the platform accepted it (errcode 0)
    Retry,    // not posted, and trying again may help: rate limited, the request not (fully)
              // sent, an HTTP error, an unreadable answer
    Busy,     // the platform says it is busy (WeCom errcode -1): worth a few more tries only
    Failed,   // not posted, and sending the same again will not help (bad address or parameter)
    Unknown,  // the request went out and no answer came back: it may have been posted
  };
  Status status = Status::Retry;
  std::optional<int> errcode;       // the platform's code, when it answered one
  std::string message;              // what happened, for last_error and the log ("" when sent);
                                    // never a credential
  int64_t retry_after_seconds = 0;  // Retry: the platform's own wait hint (0: none)

  bool sent() const { return status == Status::Sent; }
};

/// Posts messages to groups. Failures are values, never exceptions. The outbox worker calls
/// from one thread at a time; implementations say whether they are thread-safe beyond that.
class OutboundChannel {
 public:
  virtual ~OutboundChannel() = default;

  /// A markdown message (a bulletin part of at most 4096 bytes).
  virtual PostResult post_markdown(const Target& target, std::string_view markdown) = 0;
  /// An image (PNG bytes, at most 2 MB).
  virtual PostResult post_image(const Target& target, std::string_view png) = 0;
  /// A plain text (a reminder of at most 2048 bytes) that mentions (@) the WeCom userids in
  /// `mentioned`. The default posts it as markdown with the mentions written as <@userid>, for
  /// platforms without a separate text message.
  virtual PostResult post_text(const Target& target, std::string_view text,
                               const std::vector<std::string>& mentioned) {
    std::string md(text);
    if (!mentioned.empty()) md += "\n";
    for (const auto& id : mentioned) md += "<@" + id + ">";
    return post_markdown(target, md);
  }

  /// What this channel is, for logs ("group robot webhook").
  virtual std::string name() const = 0;
};

/// The target named `group` among `targets`, if any.
inline std::optional<Target> find_target(const std::vector<Target>& targets,
                                         std::string_view group) {
  for (const auto& t : targets)
    if (t.group == group) return t;
  return std::nullopt;
}

}  // namespace bot
