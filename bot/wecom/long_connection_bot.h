#pragma once

// What bangfu does with the long connection's frames (issue 12 §1): helpers' messages are
// answered exactly as the HTTP callback answers them (bot/wecom/callback.h answer_message), with
// aibot_respond_msg on the frame's req_id; enter_chat gets the help text as the welcome.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "bot/config.h"
#include "bot/log.h"
#include "bot/wecom/callback.h"
#include "bot/wecom/long_connection.h"
#include "handlers/dispatcher.h"
#include "handlers/templates.h"
#include "storage/store.h"

namespace bot::wecom {

/// The long connection's options from the config: wecom.ws_url, bot_id, secret; the protocol's
/// periods (ping 30 s, reconnect 1 s → 30 s). TEST ONLY: the environment variables
/// BANGFU_WS_PING_MS, BANGFU_WS_BACKOFF_MIN_MS, BANGFU_WS_BACKOFF_MAX_MS and
/// BANGFU_WS_CONNECT_TIMEOUT_MS (milliseconds, 10..600000) shorten them, so the integration
/// tests need no long waits. Workers: `threads`, as for the HTTP callback.
LongConnectionOptions long_connection_options(const Config& config);

/// The LongConnection::Handler of `bangfu serve` in websocket mode. Holds references only;
/// thread-safe (the store, dispatcher and limiter are).
class LongConnectionBot {
 public:
  LongConnectionBot(const Config& config, handlers::Dispatcher& dispatcher, storage::Store& store,
                    const handlers::Templates& templates, Logger& log,
                    Clock clock = system_clock_seconds);

  /// aibot_msg_callback → {"aibot_respond_msg", {"msgtype":"stream","stream":{"id": msgid,
  /// "finish": true, "content": answer}}}, after the message is on disk; a msgid seen before
  /// gets its first answer again and is recorded once. aibot_event_callback enter_chat →
  /// {"aibot_respond_welcome_msg", {"msgtype":"text","text":{"content": help}}}. Anything else,
  /// or a message without msgid or sender: nullopt (logged). Throws only for store failures.
  std::optional<FrameReply> handle(const std::string& cmd, const std::string& req_id,
                                   const nlohmann::json& body);

 private:
  const Config& config_;
  handlers::Dispatcher& dispatcher_;
  storage::Store& store_;
  const handlers::Templates& templates_;
  Logger& log_;
  Clock clock_;
  SenderRateLimiter limiter_;
};

}  // namespace bot::wecom
