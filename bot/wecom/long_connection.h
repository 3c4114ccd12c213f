#pragma once

// WeCom's AI-bot long connection (智能机器人 长连接): bangfu dials out to wecom.ws_url over a
// WebSocket (Boost.Beast; wss:// through OpenSSL with peer verification and SNI, ws:// for
// tests), subscribes with the bot's id and secret, keeps the link alive with pings and receives
// helpers' messages as frames. No public address, certificate or message crypto is needed.
//
// The protocol, as Tencent's own client shows it (@wecom/aibot-node-sdk 1.0.7,
// dist/index.esm.js: WsCmd, WsConnectionManager): every frame is a JSON text frame
// {"cmd", "headers": {"req_id"}, "body"}; an ack is {"headers": {"req_id"}, "errcode", "errmsg"}
// with no cmd, matched to its request by req_id.

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "bot/log.h"

namespace bot::wecom {

struct LongConnectionOptions {
  std::string url;  // ws:// or wss://host[:port][/path]
  std::string bot_id;
  std::string secret;  // sent in aibot_subscribe only; never logged
  /// A ping every period once subscribed; when two pings in a row got no ack by the time the
  /// next one is due, the connection counts as dead and is replaced (the SDK's maxMissedPong 2).
  std::chrono::milliseconds ping_period{std::chrono::seconds(30)};
  /// Reconnect delays double from backoff_min to backoff_max; each is drawn at random from
  /// [0.8, 1] of that (jitter, so many bots do not reconnect in step). Reset on a subscribe.
  std::chrono::milliseconds backoff_min{std::chrono::seconds(1)};
  std::chrono::milliseconds backoff_max{std::chrono::seconds(30)};
  /// TCP connect + TLS + WebSocket handshake + the subscribe ack must finish within this.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  /// Threads that run the frame handler (the store's group commit blocks).
  int workers = 2;
};

/// The answer to one frame: sent with the frame's own req_id.
struct FrameReply {
  std::string cmd;  // aibot_respond_msg, aibot_respond_welcome_msg
  nlohmann::json body;
};

/// What came of a request sent with request().
struct RequestResult {
  bool written = false;        // the frame went out on the socket (the server may have it)
  std::optional<int> errcode;  // from the ack; nullopt when no ack came
  std::string errmsg;          // the ack's errmsg
  std::string error;           // why there is no ack ("" when there is one)
  nlohmann::json body;         // the ack's body, when it has one (the media upload's ids)
};

/// The link's state, for /healthz and the log.
enum class LinkState { Connecting, Subscribed, TakenOver, Stopped };

/// One long connection, on its own I/O thread, re-established with backoff whenever it breaks —
/// except after a `disconnected_event` (another connection of this bot took over), which ends it
/// for good: reconnecting would only knock the other one off.
///
/// Frames `aibot_msg_callback` and `aibot_event_callback` go to `handler` on a worker thread
/// (never the I/O thread); its reply, if any, is sent with the frame's req_id on the connection
/// the frame came on (if that one broke meanwhile, the reply is dropped: WeCom delivers the
/// message again and the handler gives the same answer). The handler must not throw.
/// start/stop/state/request are thread-safe; the destructor stops.
class LongConnection {
 public:
  using Handler = std::function<std::optional<FrameReply>(
      const std::string& cmd, const std::string& req_id, const nlohmann::json& body)>;

  LongConnection(LongConnectionOptions options, Handler handler, Logger& log);
  ~LongConnection();
  LongConnection(const LongConnection&) = delete;
  LongConnection& operator=(const LongConnection&) = delete;

  /// Starts the I/O thread and the workers; connects at once. Throws std::invalid_argument for a
  /// URL that is not ws:// or wss://.
  void start();
  /// Closes the connection, finishes the handlers running, joins. Idempotent.
  void stop();

  LinkState state() const;
  /// "" while the link is usable or being re-established; the reason after a takeover.
  std::string problem() const;

  /// Sends {cmd, headers: {req_id}, body} (req_id is made here, prefixed with cmd as the SDK
  /// does) and waits up to `timeout` for its ack. While the link is (re)connecting, first waits
  /// up to `timeout` for it to be subscribed; not subscribed then → not written.
  /// Blocks the caller; call it from any thread but the I/O thread.
  RequestResult request(const std::string& cmd, nlohmann::json body,
                        std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// ws://host:port/path split up. nullopt when the URL is not ws:// or wss:// with a host.
struct WsUrl {
  bool tls = false;
  std::string host;
  std::string port;  // "443"/"80" when the URL names none
  std::string target = "/";
};
std::optional<WsUrl> parse_ws_url(const std::string& url);

/// The reconnect delay before attempt `attempt` (1 = the first after a break): backoff_min
/// doubled attempt−1 times, capped at backoff_max, times `jitter` (clamped to [0.8, 1]), never
/// below backoff_min. Pure.
std::chrono::milliseconds reconnect_delay(int attempt, std::chrono::milliseconds backoff_min,
                                          std::chrono::milliseconds backoff_max, double jitter);

}  // namespace bot::wecom
