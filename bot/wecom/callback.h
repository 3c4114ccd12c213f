#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "bot/config.h"
#include "bot/http/message.h"
#include "bot/log.h"
#include "bot/wecom/crypto.h"
#include "handlers/dispatcher.h"
#include "storage/store.h"

namespace bot::office {
class Dashboard;
}  // namespace bot::office

namespace bot {

namespace http {
class Server;
}

/// Seconds since the Unix epoch; injected so tests can move time.
using Clock = std::function<int64_t()>;
int64_t system_clock_seconds();

// --- the callback payload, as pure functions (also the fuzz targets' entry points) -----------

/// The parts of a decrypted AI-bot callback the server acts on (docs/protocols.md "AI-bot
/// callback"). A field of the wrong JSON type reads as absent ("" or nullopt), never as an error.
struct CallbackMessage {
  std::string msgtype;
  std::string msgid;
  std::string userid;  // from.userid
  std::string chatid;
  std::string chattype;
  std::optional<std::string> text;  // text.content, or the text items of a mixed message
  std::string event_type;           // event.eventtype, for msgtype "event"
  std::string stream_id;            // stream.id, for msgtype "stream" (a refresh)
};

/// The `encrypt` field of a POST body `{"encrypt": "…"}`; nullopt when the body is not such an
/// object. Nothing in the body is trusted yet: the signature is checked over this field next.
/// Pure; never throws.
std::optional<std::string> envelope_encrypt(std::string_view body);

enum class OpenError { Ok, Decrypt, Payload };

struct OpenedCallback {
  OpenError error = OpenError::Ok;
  CryptoError crypto = CryptoError::Ok;  // why decryption failed, for the log
  CallbackMessage message;               // valid when error == Ok
};

/// Reads a callback message from its JSON text (decrypted from a callback, or the `body` of a
/// long-connection frame: both carry the same fields). nullopt when the text is not a JSON
/// object. Pure; never throws on bad input.
std::optional<CallbackMessage> parse_callback_message(std::string_view text);

/// Decrypts `encrypted` (whose signature the caller has verified) and reads the message JSON.
/// Payload: the plaintext is not a JSON object. Pure; never throws on bad input.
OpenedCallback open_callback(const WecomCrypto& crypto, std::string_view encrypted);

// --- abuse limits ---------------------------------------------------------------------------

/// Sliding one-minute window per sender. Memory stays bounded by the senders active in the last
/// minute (idle ones are pruned). Thread-safe.
class SenderRateLimiter {
 public:
  /// `per_minute` 0 turns the limit off.
  explicit SenderRateLimiter(int per_minute) : per_minute_(per_minute) {}
  /// Counts one message from `sender` at `now` (seconds) and says whether it is within the limit.
  /// Messages over the limit are not counted, so a sender who pauses for a minute is let in.
  bool allow(const std::string& sender, int64_t now);

 private:
  const int per_minute_;
  std::mutex mu_;
  std::unordered_map<std::string, std::deque<int64_t>> recent_;
  int64_t last_prune_ = 0;
};

/// The answer to a helper's message, the same whichever way WeCom brought it (HTTP callback or
/// long connection): the raw message is stored first; over the sender's rate limit it is kept
/// and gets a polite answer; a non-text message is kept and gets a hint; text goes to the
/// dispatcher (dedupe by msgid, group commit and fsync) — so when this returns, what the answer
/// confirms is on disk. `msg` must have a msgid (≤ 256 bytes) and a userid. `rid` tags the log
/// lines. Throws only for infrastructure failures (the store). Thread-safe.
std::string answer_message(const CallbackMessage& msg, int64_t now, const std::string& rid,
                           const Config& config, handlers::Dispatcher& dispatcher,
                           storage::Store& store, SenderRateLimiter& limiter, Logger& log);

// --- the server -----------------------------------------------------------------------------

/// The WeCom callback endpoint and /healthz, served by the HTTP core (bot/http/server.h), which
/// owns connections, limits and deadlines. Order per POST, after the core has the whole request
/// (≤ 64 KiB): signature shape and timestamp → envelope → signature → replay check → decrypt →
/// receiveid → parse → rate limit → dispatcher → encrypted reply.
///
/// The callback runs on the core's event loop up to its write unit, which goes to the Store's
/// group commit without a worker in between; the commit's completion posts the answer back to
/// the connection (one hand-off each way). /healthz, the GET verification, the office pages and
/// the few callbacks that read much (a stream refresh, 通报 / 点评) run on `config.threads`
/// workers; at most `limits.max_queue` requests wait for one (beyond that: 503 with
/// Retry-After), at most `limits.max_connections` connections are
/// held open. Every request gets an id (X-Request-Id, `rid=` in every log line of the request).
/// Holds references only.
class HttpServer {
 public:
  HttpServer(const Config& config, handlers::Dispatcher& dispatcher, storage::Store& store,
             const WecomCrypto& crypto, Logger& log, Clock clock = system_clock_seconds);
  /// Websocket mode (`wecom.mode` "websocket"): WeCom's messages come over the long connection,
  /// so there is no /wecom/callback; only /healthz (and what is mounted) is served.
  HttpServer(const Config& config, handlers::Dispatcher& dispatcher, storage::Store& store,
             Logger& log, Clock clock = system_clock_seconds);
  ~HttpServer();

  /// Serves every request whose path starts with `prefix` (e.g. "/office/") with `handler`, on
  /// the same workers, limits and logs as the callback. Call before run().
  void mount(std::string prefix, http::Handler handler);
  /// Serves the office dashboard at /office and everything under it (GET, HEAD, POST) through
  /// mount(), passing each request to `dashboard` with this server's clock. Call before run();
  /// `dashboard` must outlive the server.
  void mount_office(office::Dashboard& dashboard);
  /// Adds a check to /healthz: `problem` returns "" when all is well, else the reason, which
  /// /healthz answers with 503 (e.g. the long connection was taken over). Called on the
  /// handler threads; must be thread-safe. Call before run().
  void set_health_check(std::function<std::string()> problem);
  /// Binds host:port (port 0: any free port). Returns the bound port, or -1 on failure.
  int bind(const std::string& host, int port);
  /// Serves until stop(); blocks. Returns false if the server could not start.
  bool run();
  /// Stops accepting, lets requests in flight (and those queued) finish, and makes run()
  /// return. Thread-safe.
  void stop();
  bool is_running() const;

 private:
  http::Response get_callback(const http::Request& req);
  /// On the event loop: checks, decrypts and understands the message, then answers when its
  /// write unit is committed (Store::submit_async), with no worker in between.
  void post_callback(const http::Request& req, http::Reply reply);
  /// 0 when fresh and unseen (or seen with the same signature), else the HTTP status to answer.
  int check_replay(const std::string& timestamp, const std::string& nonce,
                   const std::string& signature, int64_t now);
  bool fresh(const std::string& timestamp, int64_t now) const;

  const Config& config_;
  handlers::Dispatcher& dispatcher_;
  storage::Store& store_;
  const WecomCrypto* crypto_;  // null in websocket mode (no callback routes)
  Logger& log_;
  Clock clock_;
  SenderRateLimiter limiter_;
  std::unique_ptr<http::Server> http_;
  std::function<std::string()> health_problem_;

  std::mutex replay_mu_;
  // timestamp → nonce → signature, for every callback whose timestamp is still fresh. By
  // timestamp, so that forgetting the stale ones drops whole seconds instead of walking every
  // entry (at 3,000 callbacks/s and a skew of 300 s the map holds about a million). The
  // signature is 40 hex digits (is_signature_shape), kept in the node: no allocation of its own.
  std::map<int64_t, std::unordered_map<std::string, std::array<char, 40>>> seen_;
};

}  // namespace bot
