#include "bot/wecom/long_connection_bot.h"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

namespace bot::wecom {

using nlohmann::json;

namespace {

std::chrono::milliseconds env_ms(const char* name, std::chrono::milliseconds fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long long ms = std::strtoll(v, &end, 10);
  if (*end != '\0' || ms < 10 || ms > 600000)
    throw std::invalid_argument(std::string(name) + " must be milliseconds, 10..600000");
  return std::chrono::milliseconds(ms);
}

}  // namespace

LongConnectionOptions long_connection_options(const Config& config) {
  LongConnectionOptions o;
  o.url = config.wecom.ws_url;
  o.bot_id = config.wecom.bot_id;
  o.secret = config.wecom.secret;
  o.ping_period = env_ms("BANGFU_WS_PING_MS", o.ping_period);
  o.backoff_min = env_ms("BANGFU_WS_BACKOFF_MIN_MS", o.backoff_min);
  o.backoff_max = env_ms("BANGFU_WS_BACKOFF_MAX_MS", o.backoff_max);
  o.connect_timeout = env_ms("BANGFU_WS_CONNECT_TIMEOUT_MS", o.connect_timeout);
  o.workers = std::max(1, config.threads);
  return o;
}

LongConnectionBot::LongConnectionBot(const Config& config, handlers::Dispatcher& dispatcher,
                                     storage::Store& store, const handlers::Templates& templates,
                                     Logger& log, Clock clock)
    : config_(config),
      dispatcher_(dispatcher),
      store_(store),
      templates_(templates),
      log_(log),
      clock_(std::move(clock)),
      limiter_(config.limits.per_sender_per_minute) {}

std::optional<FrameReply> LongConnectionBot::handle(const std::string& cmd,
                                                    const std::string& req_id, const json& body) {
  // The frame's body carries the same fields as a decrypted callback (SDK MessageHandler:
  // msgid, aibotid, chatid, chattype, from.userid, msgtype, text.content, event.eventtype).
  const auto msg =
      parse_callback_message(body.dump(-1, ' ', false, json::error_handler_t::replace));
  if (!msg) return std::nullopt;
  if (cmd == "aibot_event_callback") {
    log_.info("event", {{"rid", req_id}, {"eventtype", msg->event_type}});
    if (msg->event_type != "enter_chat") return std::nullopt;
    // A welcome must answer within 5 s of the event, with the event's req_id (SDK replyWelcome).
    return FrameReply{
        "aibot_respond_welcome_msg",
        {{"msgtype", "text"},
         {"text", {{"content", templates_.render("help", kainjow::mustache::data{})}}}}};
  }
  if (msg->msgid.empty() || msg->msgid.size() > 256 || msg->userid.empty()) {
    log_.warn("message_rejected", {{"rid", req_id}, {"reason", "payload"}});
    return std::nullopt;
  }
  const std::string answer =
      answer_message(*msg, clock_(), req_id, config_, dispatcher_, store_, limiter_, log_);
  // The reply to a message is a finished stream, as the SDK's replyStream(frame, id, content,
  // true) sends it.
  return FrameReply{"aibot_respond_msg",
                    {{"msgtype", "stream"},
                     {"stream", {{"id", msg->msgid}, {"finish", true}, {"content", answer}}}}};
}

}  // namespace bot::wecom
