#include "bot/wecom/callback.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <thread>

#include "bot/http/server.h"
#include "bot/office/dashboard.h"
#include "storage/utf8.h"

namespace bot {
namespace {

// The callback's JSON (the envelope, the message inside it, the answer) is read and written with
// Boost.JSON, on the event loops, for every message: the four steps took 13.5 µs of CPU with
// nlohmann's, 2.2 µs with Boost.JSON's (bench/callback_bench.cpp, BENCHMARKS.md §9). nlohmann stays
// where a message does not pass (config, CLI, the long connection's frames).
namespace json = boost::json;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kMaxBody = 64 * 1024;
constexpr size_t kMaxHead = 16 * 1024;

// ---------------------------------------------------------------------------------------------
// JSON access that never throws: a field of the wrong type reads as absent.

std::string str_field(const json::object& obj, std::string_view key) {
  const json::value* v = obj.if_contains(key);
  const json::string* s = v ? v->if_string() : nullptr;
  return s ? std::string(*s) : std::string();
}

const json::object* obj_field(const json::object& obj, std::string_view key) {
  const json::value* v = obj.if_contains(key);
  return v ? v->if_object() : nullptr;
}

// `text` parsed as a JSON object (strict: valid UTF-8, nothing after it, at most 32 levels
// deep); nullopt for anything else.
std::optional<json::object> parse_object(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

// Text for a platform's JSON: valid UTF-8 whatever a template was saved as.
json::string json_text(std::string_view s) {
  if (!storage::invalid_utf8_at(s)) return json::string(s);
  return json::string(storage::replace_invalid_utf8(s));
}

// Text a helper typed, from a text or mixed (image + text) message; nullopt for other types.
std::optional<std::string> text_of(const json::object& msg, const std::string& type) {
  if (type == "text") {
    const json::object* t = obj_field(msg, "text");
    const json::value* content = t ? t->if_contains("content") : nullptr;
    if (content && content->is_string()) return std::string(content->get_string());
    return std::nullopt;
  }
  if (type == "mixed") {
    const json::object* m = obj_field(msg, "mixed");
    const json::value* items = m ? m->if_contains("msg_item") : nullptr;
    if (!items || !items->is_array()) return std::nullopt;
    std::string out;
    for (const json::value& it : items->get_array()) {
      const json::object* item = it.if_object();
      if (!item || str_field(*item, "msgtype") != "text") continue;
      const json::object* t = obj_field(*item, "text");
      const std::string content = t ? str_field(*t, "content") : std::string();
      if (content.empty()) continue;
      if (!out.empty()) out += ' ';
      out += content;
    }
    return out;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

bool is_signature_shape(const std::string& s) {
  if (s.size() != 40) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// WeCom nonces are short strings of letters and digits; anything else is not from WeCom (and
// would not be valid UTF-8 to echo back in the reply envelope).
bool is_nonce_shape(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  return true;
}

http::Response plain(int status, std::string body) {
  return http::Response::with(status, std::move(body));
}

// The raw message as stored: the text, or "[image]" etc. for what has none.
storage::InboundMessage inbound_of(const CallbackMessage& msg, int64_t now) {
  storage::InboundMessage in;
  in.msgid = msg.msgid;
  in.platform = "wecom";
  in.userid = msg.userid;
  in.chatid = msg.chatid;
  in.chattype = msg.chattype;
  in.received_at = now;
  in.text = msg.text ? *msg.text : "[" + msg.msgtype + "]";
  return in;
}

// A sender over the limit: the raw message is kept and `answer` stored as its reply, so a
// redelivery gets the same one; a message answered before keeps its earlier answer, which is
// returned instead. Runs inside a write unit.
std::string keep_rate_limited(storage::Store::Tx& tx, const storage::InboundMessage& in,
                              const std::string& answer) {
  if (tx.save_inbound(in) == storage::SaveInbound::Duplicate)
    if (auto r = tx.reply_for(in.msgid)) return *r;
  tx.set_reply(in.msgid, answer, storage::InboundOutcome::RateLimited);
  return answer;
}

std::string stream_reply(const std::string& id, const std::string& content) {
  json::object stream{{"id", json_text(id)}, {"finish", true}, {"content", json_text(content)}};
  return json::serialize(json::object{{"msgtype", "stream"}, {"stream", std::move(stream)}});
}

std::string text_reply(const std::string& content) {
  return json::serialize(
      json::object{{"msgtype", "text"}, {"text", json::object{{"content", json_text(content)}}}});
}

// The line for each text message handled, in callback and long-connection mode alike.
void log_message(Logger& log, const std::string& rid, const std::string& msgid,
                 const std::string& from, const handlers::Outcome& outcome) {
  log.request("message", {{"rid", rid},
                          {"msgid", msgid},
                          {"from", from},
                          {"duplicate", outcome.duplicate ? "1" : "0"},
                          {"recorded", outcome.recorded ? "1" : "0"}});
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Pure parts of the callback

std::optional<std::string> envelope_encrypt(std::string_view body) {
  const auto envelope = parse_object(body);
  const json::value* encrypt = envelope ? envelope->if_contains("encrypt") : nullptr;
  if (!encrypt || !encrypt->is_string()) return std::nullopt;
  return std::string(encrypt->get_string());
}

std::optional<CallbackMessage> parse_callback_message(std::string_view text) {
  const auto parsed = parse_object(text);
  if (!parsed) return std::nullopt;
  const json::object& msg = *parsed;
  CallbackMessage m;
  m.msgtype = str_field(msg, "msgtype");
  m.msgid = str_field(msg, "msgid");
  if (const json::object* from = obj_field(msg, "from")) m.userid = str_field(*from, "userid");
  m.chatid = str_field(msg, "chatid");
  m.chattype = str_field(msg, "chattype");
  m.text = text_of(msg, m.msgtype);
  if (const json::object* ev = obj_field(msg, "event")) m.event_type = str_field(*ev, "eventtype");
  if (const json::object* st = obj_field(msg, "stream")) m.stream_id = str_field(*st, "id");
  return m;
}

OpenedCallback open_callback(const WecomCrypto& crypto, std::string_view encrypted) {
  OpenedCallback out;
  const Decrypted d = crypto.decrypt(encrypted);
  if (d.error != CryptoError::Ok) {
    out.error = OpenError::Decrypt;
    out.crypto = d.error;
    return out;
  }
  auto msg = parse_callback_message(d.message);
  if (!msg) {
    out.error = OpenError::Payload;
    return out;
  }
  out.message = std::move(*msg);
  return out;
}

// ---------------------------------------------------------------------------------------------
// SenderRateLimiter

bool SenderRateLimiter::allow(const std::string& sender, int64_t now) {
  if (per_minute_ <= 0) return true;
  std::lock_guard lock(mu_);
  const int64_t window_start = now - 60;
  if (now - last_prune_ >= 60) {  // forget senders idle for a minute
    std::erase_if(recent_, [&](const auto& kv) {
      return kv.second.empty() || kv.second.back() <= window_start;
    });
    last_prune_ = now;
  }
  auto& times = recent_[sender];
  while (!times.empty() && times.front() <= window_start) times.pop_front();
  if (static_cast<int>(times.size()) >= per_minute_) return false;
  times.push_back(now);
  return true;
}

// ---------------------------------------------------------------------------------------------
// HttpServer

int64_t system_clock_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

http::ServerOptions core_options(const Config& config) {
  http::ServerOptions o;
  // Two event-loop threads read, parse and write for every connection; the handlers' blocking
  // work (the Store's group commit) runs on the `threads` workers.
  o.io_threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 2u));
  o.workers = config.threads;
  o.max_queue = config.limits.max_queue;
  o.max_connections = config.limits.max_connections;
  o.header_limit = kMaxHead;
  o.body_limit = kMaxBody;
  return o;
}

}  // namespace

HttpServer::HttpServer(const Config& config, handlers::Dispatcher& dispatcher,
                       storage::Store& store, const WecomCrypto& crypto, Logger& log, Clock clock)
    : HttpServer(config, dispatcher, store, log, std::move(clock)) {
  crypto_ = &crypto;
  http_->route("GET", "/wecom/callback",
               [this](const http::Request& req) { return get_callback(req); });
  http_->route_async("POST", "/wecom/callback",
                     [this](const http::Request& req, http::Reply reply) {
                       post_callback(req, std::move(reply));
                     });
}

HttpServer::HttpServer(const Config& config, handlers::Dispatcher& dispatcher,
                       storage::Store& store, Logger& log, Clock clock)
    : config_(config),
      dispatcher_(dispatcher),
      store_(store),
      crypto_(nullptr),
      log_(log),
      clock_(std::move(clock)),
      limiter_(config.limits.per_sender_per_minute),
      http_(std::make_unique<http::Server>(core_options(config), log)) {
  http_->route("GET", "/healthz", [this](const http::Request&) {
    if (!store_.healthy()) return plain(503, "database unavailable\n");
    if (health_problem_)
      if (std::string problem = health_problem_(); !problem.empty())
        return plain(503, problem + "\n");
    return plain(200, "ok\n");
  });
}

void HttpServer::set_health_check(std::function<std::string()> problem) {
  health_problem_ = std::move(problem);
}

// The office dashboard's adapter: the core's plain request in, the dashboard's answer out. All
// the dashboard's logic is in bot/office/dashboard.cpp.
void HttpServer::mount_office(office::Dashboard& dashboard) {
  mount("/office", [this, &dashboard](const http::Request& req) {
    office::Request in;
    in.method = req.method;
    in.path = req.path;
    if (req.method != "POST") in.query = office::parse_form(req.query);
    for (const auto& [k, v] : req.headers) {
      std::string name = k;
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      in.headers.emplace(std::move(name), v);  // the first of a repeated header wins
    }
    in.body = req.body;
    in.remote_address = req.remote_addr;
    in.is_tls = false;  // this server speaks plain HTTP; TLS comes from a proxy (behind_proxy)
    const office::Response out = dashboard.handle(in, clock_());
    http::Response res;
    res.status = out.status;
    res.headers = out.headers;  // several Set-Cookie headers may be set
    res.body = out.body;
    return res;
  });
}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::mount(std::string prefix, http::Handler handler) {
  http_->mount(std::move(prefix), std::move(handler));
}

int HttpServer::bind(const std::string& host, int port) {
  return http_->bind(host, port);
}

bool HttpServer::run() {
  return http_->run();
}

void HttpServer::stop() {
  if (http_) http_->stop();
}

bool HttpServer::is_running() const {
  return http_->is_running();
}

bool HttpServer::fresh(const std::string& timestamp, int64_t now) const {
  if (timestamp.empty() || timestamp.size() > 12) return false;
  int64_t ts = 0;
  for (char c : timestamp) {
    if (c < '0' || c > '9') return false;
    ts = ts * 10 + (c - '0');
  }
  const int64_t skew = config_.wecom.timestamp_skew_seconds;
  return ts >= now - skew && ts <= now + skew;
}

int HttpServer::check_replay(const std::string& timestamp, const std::string& nonce,
                             const std::string& signature, int64_t now) {
  // fresh() has accepted the timestamp, so it is a number within the skew of now.
  const int64_t ts = std::stoll(timestamp);
  const int64_t skew = config_.wecom.timestamp_skew_seconds;
  std::lock_guard lock(replay_mu_);
  // An entry is needed only while its timestamp is still fresh: after that a replay is refused
  // as stale anyway.
  seen_.erase(seen_.begin(), seen_.lower_bound(now - skew));
  // The caller has checked the signature's shape: 40 hex digits.
  std::array<char, 40> sig{};
  signature.copy(sig.data(), sig.size());
  auto [it, inserted] = seen_[ts].try_emplace(nonce, sig);
  if (inserted || it->second == sig) return 0;  // new, or the same request again
  return 401;
}

http::Response HttpServer::get_callback(const http::Request& req) {
  const std::string& rid = req.id;
  auto params = req.params({"msg_signature", "timestamp", "nonce", "echostr"});
  const std::string& sig = params[0];
  const std::string& ts = params[1];
  const std::string& nonce = params[2];
  std::string& echostr = params[3];
  // A proxy may turn '+' into a space on the way (docs/protocols.md "Callback crypto"); base64 has
  // no spaces.
  for (char& c : echostr)
    if (c == ' ') c = '+';
  if (!is_signature_shape(sig) || !fresh(ts, clock_()) || !is_nonce_shape(nonce) ||
      echostr.empty() || !crypto_->verify(sig, ts, nonce, echostr)) {
    log_.warn("verify_rejected", {{"rid", rid}, {"reason", "signature"}});
    return plain(401, "unauthorized\n");
  }
  const Decrypted d = crypto_->decrypt(echostr);
  if (d.error != CryptoError::Ok) {
    log_.warn(
        "verify_rejected",
        {{"rid", rid}, {"reason", "decrypt"}, {"code", std::to_string(static_cast<int>(d.error))}});
    return plain(400, "bad request\n");
  }
  log_.info("verify_ok", {{"rid", rid}});
  return http::Response::with(200, d.message, "text/plain");
}

void HttpServer::post_callback(const http::Request& req, http::Reply reply) {
  const std::string& rid = req.id;
  const int64_t now = clock_();
  const auto params = req.params({"msg_signature", "timestamp", "nonce"});
  const std::string& sig = params[0];
  const std::string& ts = params[1];
  const std::string& nonce = params[2];
  // A 401 says no more than that (which check failed is for the log); a 400 says what to mend.
  auto reject = [&](int status, const char* reason, const char* what = "unauthorized\n") {
    log_.warn("callback_rejected", {{"rid", rid}, {"reason", reason}});
    reply.send(plain(status, what));
  };
  // The core has refused larger bodies already; this keeps the handler safe on its own.
  if (req.body.size() > kMaxBody) return reply.send(plain(413, "payload too large\n"));
  if (!is_signature_shape(sig) || !is_nonce_shape(nonce)) return reject(401, "signature");
  if (!fresh(ts, now)) return reject(401, "stale_timestamp");

  // The envelope must be read to find the signed field; nothing inside it is trusted yet.
  const auto encrypted = envelope_encrypt(req.body);
  if (!encrypted)
    return reject(400, "envelope",
                  "bad request: the body must be JSON with the encrypted message in \"encrypt\"\n");
  if (!crypto_->verify(sig, ts, nonce, *encrypted)) return reject(401, "signature");
  if (check_replay(ts, nonce, sig, now) != 0) return reject(401, "replay");

  OpenedCallback opened = open_callback(*crypto_, *encrypted);
  if (opened.error == OpenError::Decrypt) {
    log_.warn("callback_rejected", {{"rid", rid},
                                    {"reason", "decrypt"},
                                    {"code", std::to_string(static_cast<int>(opened.crypto))}});
    return reply.send(plain(400,
                            "bad request: the message does not decrypt with this bot's "
                            "EncodingAESKey and receive_id\n"));
  }
  if (opened.error != OpenError::Ok)
    return reject(400, "payload", "bad request: the decrypted message is not a callback's JSON\n");
  CallbackMessage& msg = opened.message;

  // The answer, encrypted for WeCom: made on the connection's event-loop thread.
  auto envelope = [this, now, nonce](const std::string& plaintext) {
    return http::Response::with(200, crypto_->reply_envelope(plaintext, now, nonce),
                                "application/json");
  };
  // A write's failure: nothing was acknowledged, so WeCom retries and the retry is handled.
  auto failed = [this, rid](std::exception_ptr error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      log_.error("request_failed", {{"rid", rid}, {"error", e.what()}});
    } catch (...) {
      log_.error("request_failed", {{"rid", rid}, {"error", "unknown"}});
    }
    return plain(500, "internal error\n");
  };

  if (msg.msgtype == "event") {
    log_.info("event", {{"rid", rid}, {"eventtype", msg.event_type}});
    if (msg.event_type == "enter_chat") {
      return reply.send(envelope(
          text_reply(dispatcher_.service_answer("welcome", {{"bot_name", config_.bot_name}}))));
    }
    return reply.send(http::Response{});  // other events need no answer: 200, empty
  }

  if (msg.msgtype == "stream") {
    // A refresh of a stream we already finished: answer with the same finished content (a read
    // that may wait for the writer: on a worker).
    if (msg.stream_id.empty()) return reply.send(http::Response{});
    return reply.on_worker([this, reply, envelope, id = msg.stream_id] {
      auto stored = store_.reply_for(id);
      reply.send(stored ? envelope(stream_reply(id, *stored)) : http::Response{});
    });
  }

  if (msg.msgid.empty() || msg.msgid.size() > 256 || msg.userid.empty())
    return reject(400, "payload");

  const storage::InboundMessage in = inbound_of(msg, now);

  if (!limiter_.allow(msg.userid, now)) {
    // Over the limit: keep the raw message and answer politely, record nothing else. The
    // answer is stored as the message's reply, so a WeCom retry gets the same one (and a retry
    // of a message answered before gets that earlier answer).
    auto answer = std::make_shared<std::string>(dispatcher_.service_answer(
        "rate_limited", {{"per_minute", std::to_string(config_.limits.per_sender_per_minute)}}));
    log_.warn("rate_limited", {{"rid", rid}, {"msgid", msg.msgid}, {"from", msg.userid}});
    store_.submit_async(
        [in, answer](storage::Store::Tx& tx) { *answer = keep_rate_limited(tx, in, *answer); },
        [reply, envelope, failed, answer, id = msg.msgid](std::exception_ptr error) {
          if (error)
            return reply.send_from([failed, error = std::move(error)] { return failed(error); });
          reply.send_from([envelope, answer, id] { return envelope(stream_reply(id, *answer)); });
        });
    return;
  }

  if (!msg.text) {
    // Photos, voice and files are not needed: keep the record that something came, and say so.
    log_.info("non_text", {{"rid", rid}, {"msgid", msg.msgid}, {"msgtype", msg.msgtype}});
    store_.submit_async(
        [in](storage::Store::Tx& tx) { tx.save_inbound(in); },
        [this, reply, envelope, failed, id = msg.msgid](std::exception_ptr error) {
          if (error)
            return reply.send_from([failed, error = std::move(error)] { return failed(error); });
          reply.send_from([this, envelope, id] {
            return envelope(stream_reply(id, dispatcher_.service_answer("not_text")));
          });
        });
    return;
  }
  dispatcher_.handle_async(
      in, storage::LocalTime{now, config_.utc_offset_seconds},
      [reply](std::function<void()> work) { reply.on_worker(std::move(work)); },
      [this, reply, envelope, failed, rid, id = msg.msgid, from = msg.userid](
          handlers::Outcome outcome, std::exception_ptr error) {
        if (error)
          return reply.send_from([failed, error = std::move(error)] { return failed(error); });
        // On the event loop: the log line and the encryption, off the writer's thread.
        reply.send_from([this, envelope, rid, id, from, outcome = std::move(outcome)] {
          log_message(log_, rid, id, from, outcome);
          return envelope(stream_reply(id, outcome.reply));
        });
      });
}

// The synchronous form of the callback's answer, for the long connection's workers (bot/wecom/):
// the same steps as post_callback's, waiting for the commit.
std::string answer_message(const CallbackMessage& msg, int64_t now, const std::string& rid,
                           const Config& config, handlers::Dispatcher& dispatcher,
                           storage::Store& store, SenderRateLimiter& limiter, Logger& log) {
  const storage::InboundMessage in = inbound_of(msg, now);

  if (!limiter.allow(msg.userid, now)) {
    // As in post_callback: kept, answered politely, the answer stored for a redelivery.
    const std::string slow_down = dispatcher.service_answer(
        "rate_limited", {{"per_minute", std::to_string(config.limits.per_sender_per_minute)}});
    const std::string answer = store.transaction(
        [&](storage::Store::Tx& tx) { return keep_rate_limited(tx, in, slow_down); });
    log.warn("rate_limited", {{"rid", rid}, {"msgid", msg.msgid}, {"from", msg.userid}});
    return answer;
  }

  if (!msg.text) {
    store.save_inbound(in);
    log.info("non_text", {{"rid", rid}, {"msgid", msg.msgid}, {"msgtype", msg.msgtype}});
    return dispatcher.service_answer("not_text");
  }
  const auto outcome = dispatcher.handle(in, storage::LocalTime{now, config.utc_offset_seconds});
  log_message(log, rid, msg.msgid, msg.userid, outcome);
  return outcome.reply;
}

}  // namespace bot
