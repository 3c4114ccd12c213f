#include "bot/wecom/long_connection.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/url/parse.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

namespace bot::wecom {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using nlohmann::json;
using tcp = asio::ip::tcp;

std::optional<WsUrl> parse_ws_url(const std::string& url) {
  auto u = boost::urls::parse_uri(url);
  if (!u) return std::nullopt;
  WsUrl out;
  if (u->scheme() == "wss")
    out.tls = true;
  else if (u->scheme() != "ws")
    return std::nullopt;
  out.host = u->host_address();
  if (out.host.empty()) return std::nullopt;
  out.port = u->has_port() ? std::string(u->port()) : (out.tls ? "443" : "80");
  out.target = u->encoded_target().empty() ? "/" : std::string(u->encoded_target());
  return out;
}

std::chrono::milliseconds reconnect_delay(int attempt, std::chrono::milliseconds backoff_min,
                                          std::chrono::milliseconds backoff_max, double jitter) {
  std::chrono::milliseconds base = backoff_min;
  for (int i = 1; i < attempt && base < backoff_max; ++i) base *= 2;
  base = std::min(base, backoff_max);
  const auto d = std::chrono::milliseconds(
      static_cast<int64_t>(static_cast<double>(base.count()) * std::clamp(jitter, 0.8, 1.0)));
  return std::max(d, backoff_min);
}

namespace {

// Frames from the I/O side to the socket. `req_id` is set for request() frames, whose pending
// entry learns that the frame went out.
struct Out {
  std::string text;
  std::string req_id;
};

std::string str_at(const json& obj, const char* key) {
  if (!obj.is_object()) return {};
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// One connection's state. Lives on the I/O thread only (one thread runs the io_context, so it
// needs no lock); the coroutines of the connection each hold a shared_ptr to it.
struct Session {
  explicit Session(const asio::any_io_executor& ex, uint64_t id_) : wake(ex), ping(ex), id(id_) {}
  virtual ~Session() = default;
  /// Ends the connection: the socket closes, so the read in progress fails, and the writer and
  /// the pinger wake and return.
  virtual void close_socket() = 0;
  void close() {
    if (closed) return;
    closed = true;
    wake.cancel();
    ping.cancel();
    close_socket();
  }
  void enqueue(Out o) {
    outq.push_back(std::move(o));
    wake.cancel();
  }
  std::deque<Out> outq;
  asio::steady_timer wake;  // the writer waits on it; cancelled when outq gets something
  asio::steady_timer ping;
  const uint64_t id;
  bool closed = false;
  bool subscribed = false;
  std::string subscribe_req_id;
  int missed_pings = 0;
};

template <class Stream>
struct TypedSession : Session {
  template <class... Args>
  TypedSession(asio::io_context& ioc, uint64_t id_, Args&&... args)
      : Session(ioc.get_executor(), id_), ws(ioc, std::forward<Args>(args)...) {}
  void close_socket() override {
    boost::system::error_code ec;
    beast::get_lowest_layer(ws).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(ws).socket().close(ec);
  }
  websocket::stream<Stream> ws;
};

using PlainSession = TypedSession<beast::tcp_stream>;
using TlsSession = TypedSession<beast::ssl_stream<beast::tcp_stream>>;

}  // namespace

struct LongConnection::Impl {
  Impl(LongConnectionOptions o, Handler h, Logger& l)
      : opt(std::move(o)), handler(std::move(h)), log(l), rng(std::random_device{}()) {}

  struct Pending {
    std::promise<RequestResult> done;
    bool written = false;
    uint64_t session = 0;
  };

  LongConnectionOptions opt;
  Handler handler;
  Logger& log;
  WsUrl url;

  asio::io_context ioc;
  asio::ssl::context ssl{asio::ssl::context::tls_client};
  std::optional<asio::steady_timer> backoff;
  std::unique_ptr<asio::thread_pool> pool;
  std::thread io_thread;
  std::atomic<bool> started{false};
  std::atomic<bool> stopped{false};

  mutable std::mutex mu;  // state_, problem_
  std::condition_variable state_changed;
  LinkState state_ = LinkState::Connecting;
  std::string problem_;

  // I/O thread only:
  std::shared_ptr<Session> current;
  std::map<std::string, std::shared_ptr<Pending>> pending;
  bool stopping = false;
  bool taken_over = false;
  uint64_t next_session = 1;
  std::mt19937_64 rng;

  void set_state(LinkState s, std::string problem = {}) {
    {
      std::lock_guard lock(mu);
      if (state_ == LinkState::TakenOver) return;  // final
      state_ = s;
      if (!problem.empty()) problem_ = std::move(problem);
    }
    state_changed.notify_all();
  }

  // {prefix}_{milliseconds}_{random}, as the SDK's generateReqId (dist/index.esm.js): the
  // server echoes it in the ack, and the prefix tells acks of pings from the others.
  std::string req_id(const std::string& prefix) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    char rnd[17];
    std::snprintf(rnd, sizeof rnd, "%016llx", static_cast<unsigned long long>(rng()));
    return prefix + "_" + std::to_string(ms) + "_" + rnd;
  }

  static std::string frame(const std::string& cmd, const std::string& rid, const json* body) {
    json f = {{"cmd", cmd}, {"headers", {{"req_id", rid}}}};
    if (body) f["body"] = *body;
    return f.dump(-1, ' ', false, json::error_handler_t::replace);
  }

  void fail_pending(uint64_t session) {
    for (auto it = pending.begin(); it != pending.end();) {
      if (it->second->session != session) {
        ++it;
        continue;
      }
      RequestResult r;
      r.written = it->second->written;
      r.error = "the connection closed before the ack";
      it->second->done.set_value(r);
      it = pending.erase(it);
    }
  }

  asio::awaitable<void> run() {
    int attempt = 0;
    while (!stopping && !taken_over) {
      std::shared_ptr<Session> s;
      if (url.tls)
        s = std::make_shared<TlsSession>(ioc, next_session++, ssl);
      else
        s = std::make_shared<PlainSession>(ioc, next_session++);
      current = s;
      set_state(LinkState::Connecting);
      log.info("ws_connecting", {{"host", url.host}, {"port", url.port}});
      try {
        if (url.tls)
          co_await session(std::static_pointer_cast<TlsSession>(s));
        else
          co_await session(std::static_pointer_cast<PlainSession>(s));
      } catch (const boost::system::system_error& e) {
        if (!stopping && !taken_over && !s->closed)
          log.warn("ws_disconnected", {{"error", e.code().message()}});
      } catch (const std::exception& e) {
        if (!stopping && !taken_over && !s->closed)
          log.warn("ws_disconnected", {{"error", e.what()}});
      }
      const bool was_subscribed = s->subscribed;
      s->close();
      fail_pending(s->id);
      current.reset();
      if (stopping || taken_over) break;
      set_state(LinkState::Connecting);
      attempt = was_subscribed ? 1 : attempt + 1;
      std::uniform_real_distribution<double> jitter(0.8, 1.0);
      const auto delay = reconnect_delay(attempt, opt.backoff_min, opt.backoff_max, jitter(rng));
      log.info("ws_reconnect",
               {{"in_ms", std::to_string(delay.count())}, {"attempt", std::to_string(attempt)}});
      backoff->expires_after(delay);
      boost::system::error_code ec;
      co_await backoff->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (!taken_over) set_state(LinkState::Stopped);
  }

  template <class S>
  asio::awaitable<void> session(std::shared_ptr<S> s) {
    auto& lowest = beast::get_lowest_layer(s->ws);
    tcp::resolver resolver(ioc);
    lowest.expires_after(opt.connect_timeout);
    const auto endpoints = co_await resolver.async_resolve(url.host, url.port, asio::use_awaitable);
    co_await lowest.async_connect(endpoints, asio::use_awaitable);
    if constexpr (std::is_same_v<S, TlsSession>) {
      // SNI, and the certificate must name the host (OpenSSL checks it during the handshake).
      if (!SSL_set_tlsext_host_name(s->ws.next_layer().native_handle(), url.host.c_str()))
        throw std::runtime_error("cannot set the TLS server name");
      s->ws.next_layer().set_verify_mode(asio::ssl::verify_peer);
      s->ws.next_layer().set_verify_callback(asio::ssl::host_name_verification(url.host));
      co_await s->ws.next_layer().async_handshake(asio::ssl::stream_base::client,
                                                  asio::use_awaitable);
    }
    lowest.expires_never();  // the websocket stream keeps its own timeouts from here
    auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::client);
    timeouts.handshake_timeout = opt.connect_timeout;
    s->ws.set_option(timeouts);
    s->ws.set_option(websocket::stream_base::decorator(
        [](websocket::request_type& req) { req.set(beast::http::field::user_agent, "bangfu"); }));
    s->ws.read_message_max(4 * 1024 * 1024);
    // Named, not a temporary inside the co_await: g++ 12 mishandles temporaries of a conditional
    // expression in a co_await operand (double destruction).
    std::string host = url.host;
    if (url.port != (url.tls ? "443" : "80")) host += ":" + url.port;
    co_await s->ws.async_handshake(host, url.target, asio::use_awaitable);
    s->ws.text(true);

    // The first frame: {"cmd":"aibot_subscribe","headers":{"req_id"},"body":{"bot_id","secret"}}
    // (SDK WsConnectionManager.sendAuth).
    s->subscribe_req_id = req_id("aibot_subscribe");
    const json body = {{"bot_id", opt.bot_id}, {"secret", opt.secret}};
    s->enqueue({frame("aibot_subscribe", s->subscribe_req_id, &body), ""});
    asio::co_spawn(ioc, writer(s), asio::detached);
    asio::co_spawn(ioc, pinger(s), asio::detached);

    beast::flat_buffer buffer;
    while (!s->closed) {
      buffer.clear();
      co_await s->ws.async_read(buffer, asio::use_awaitable);
      on_frame(s, beast::buffers_to_string(buffer.data()));
    }
  }

  template <class S>
  asio::awaitable<void> writer(std::shared_ptr<S> s) {
    try {
      while (!s->closed) {
        if (s->outq.empty()) {
          s->wake.expires_at(asio::steady_timer::time_point::max());
          boost::system::error_code ec;
          co_await s->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
          continue;
        }
        Out o = std::move(s->outq.front());
        s->outq.pop_front();
        // Counted as written from the moment it starts: a frame cut off half-way may still
        // have reached the server, and a send that might have happened must not be repeated.
        if (!o.req_id.empty())
          if (auto it = pending.find(o.req_id); it != pending.end()) it->second->written = true;
        co_await s->ws.async_write(asio::buffer(o.text), asio::use_awaitable);
      }
    } catch (const boost::system::system_error& e) {
      if (!s->closed) log.warn("ws_write_failed", {{"error", e.code().message()}});
      s->close();
    } catch (const std::exception& e) {
      if (!s->closed) log.warn("ws_write_failed", {{"error", e.what()}});
      s->close();
    }
  }

  // The subscribe ack must come within connect_timeout; after it, a ping every ping_period.
  // Two pings unanswered when the next is due → the link is dead (SDK sendHeartbeat,
  // maxMissedPong = 2).
  asio::awaitable<void> pinger(std::shared_ptr<Session> s) {
    boost::system::error_code ec;
    if (!s->subscribed) {
      s->ping.expires_after(opt.connect_timeout);
      co_await s->ping.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (s->closed) co_return;
      if (!s->subscribed) {
        log.warn("ws_subscribe_timeout",
                 {{"after_ms", std::to_string(opt.connect_timeout.count())}});
        s->close();
        co_return;
      }
    }
    for (;;) {
      s->ping.expires_after(opt.ping_period);
      co_await s->ping.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (s->closed) co_return;
      if (s->missed_pings >= 2) {
        log.warn("ws_ping_timeout", {{"missed", std::to_string(s->missed_pings)}});
        s->close();
        co_return;
      }
      ++s->missed_pings;
      s->enqueue({frame("ping", req_id("ping"), nullptr), ""});
    }
  }

  void on_frame(const std::shared_ptr<Session>& s, const std::string& text) {
    const json f = json::parse(text, nullptr, false);
    if (f.is_discarded() || !f.is_object()) {
      log.warn("ws_bad_frame", {{"bytes", std::to_string(text.size())}});
      return;
    }
    const std::string cmd = str_at(f, "cmd");
    const std::string rid = f.contains("headers") ? str_at(f["headers"], "req_id") : "";
    if (cmd == "aibot_msg_callback" || cmd == "aibot_event_callback") {
      const json body = f.contains("body") && f["body"].is_object() ? f["body"] : json::object();
      if (cmd == "aibot_event_callback" && body.contains("event") &&
          str_at(body["event"], "eventtype") == "disconnected_event") {
        // Another connection of this bot took over; WeCom closes this one. Reconnecting would
        // knock the other off in turn (SDK handleFrame: isManualClose = true, no reconnect).
        const std::string reason =
            "wecom long connection taken over by another connection of this bot "
            "(disconnected_event); not reconnecting";
        log.error("ws_taken_over", {{"reason", reason}});
        taken_over = true;
        {
          std::lock_guard lock(mu);
          state_ = LinkState::TakenOver;
          problem_ = reason;
        }
        state_changed.notify_all();
        s->close();
        return;
      }
      // The handler blocks (the store's group commit): it runs on a worker, and its reply comes
      // back here to be written on the connection the frame came on.
      std::weak_ptr<Session> weak = s;
      asio::post(*pool, [this, weak, cmd, body, rid] {
        std::optional<FrameReply> reply;
        try {
          reply = handler(cmd, rid, body);
        } catch (const std::exception& e) {
          log.error("ws_handler_error", {{"req_id", rid}, {"error", e.what()}});
        }
        if (!reply) return;
        std::string text = frame(reply->cmd, rid, &reply->body);
        asio::post(ioc, [this, weak, rid, text = std::move(text)]() mutable {
          auto s = weak.lock();
          if (!s || s->closed) {
            log.warn("ws_reply_dropped", {{"req_id", rid}, {"reason", "connection closed"}});
            return;
          }
          s->enqueue({std::move(text), ""});
        });
      });
      return;
    }
    if (!cmd.empty()) {
      log.warn("ws_unknown_cmd", {{"cmd", cmd}});
      return;
    }
    // An ack: {"headers":{"req_id"},"errcode","errmsg"}.
    const int errcode =
        f.contains("errcode") && f["errcode"].is_number_integer() ? f["errcode"].get<int>() : -1;
    const std::string errmsg = str_at(f, "errmsg");
    if (rid == s->subscribe_req_id && !rid.empty()) {
      if (errcode != 0) {
        // errmsg only: the secret never goes to the log.
        log.error("ws_subscribe_failed",
                  {{"errcode", std::to_string(errcode)}, {"errmsg", errmsg}});
        s->close();
        return;
      }
      s->subscribed = true;
      s->missed_pings = 0;
      s->ping.cancel();  // the pinger moves on to pinging
      set_state(LinkState::Subscribed);
      log.info("ws_subscribed", {{"bot_id", opt.bot_id}});
      return;
    }
    if (rid.rfind("ping_", 0) == 0) {
      if (errcode == 0)
        s->missed_pings = 0;
      else
        log.warn("ws_ping_error", {{"errcode", std::to_string(errcode)}, {"errmsg", errmsg}});
      return;
    }
    if (auto it = pending.find(rid); it != pending.end()) {
      RequestResult r;
      r.written = true;
      r.errcode = errcode;
      r.errmsg = errmsg;
      if (f.contains("body")) r.body = f["body"];
      it->second->done.set_value(r);
      pending.erase(it);
      return;
    }
    if (errcode != 0)
      log.warn("ws_ack_error",
               {{"req_id", rid}, {"errcode", std::to_string(errcode)}, {"errmsg", errmsg}});
  }
};

LongConnection::LongConnection(LongConnectionOptions options, Handler handler, Logger& log)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler), log)) {}

LongConnection::~LongConnection() {
  stop();
}

void LongConnection::start() {
  auto& m = *impl_;
  auto url = parse_ws_url(m.opt.url);
  if (!url) throw std::invalid_argument("wecom.ws_url must be ws:// or wss:// with a host");
  if (m.started.exchange(true)) return;
  m.url = *url;
  if (m.url.tls) {
    m.ssl.set_default_verify_paths();
    m.ssl.set_verify_mode(asio::ssl::verify_peer);
  }
  m.backoff.emplace(m.ioc);
  m.pool = std::make_unique<asio::thread_pool>(std::max(1, m.opt.workers));
  asio::co_spawn(m.ioc, m.run(), [&m](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      m.log.error("ws_stopped", {{"error", ex.what()}});
    }
  });
  m.io_thread = std::thread([&m] { m.ioc.run(); });
}

void LongConnection::stop() {
  auto& m = *impl_;
  if (!m.started || m.stopped.exchange(true)) return;
  asio::post(m.ioc, [&m] {
    m.stopping = true;
    if (m.current) m.current->close();
    m.backoff->cancel();
  });
  m.io_thread.join();
  m.pool->join();
  // The I/O thread is gone: what is still pending gets no ack any more.
  for (auto& [rid, p] : m.pending) {
    RequestResult r;
    r.written = p->written;
    r.error = "stopped before the ack";
    p->done.set_value(r);
  }
  m.pending.clear();
  m.current.reset();
  m.set_state(LinkState::Stopped);
}

LinkState LongConnection::state() const {
  std::lock_guard lock(impl_->mu);
  return impl_->state_;
}

std::string LongConnection::problem() const {
  std::lock_guard lock(impl_->mu);
  return impl_->state_ == LinkState::TakenOver ? impl_->problem_ : std::string();
}

RequestResult LongConnection::request(const std::string& cmd, nlohmann::json body,
                                      std::chrono::milliseconds timeout) {
  auto& m = *impl_;
  RequestResult not_sent;
  not_sent.error = "not subscribed";
  if (!m.started || m.stopped) return not_sent;
  {
    // Just started or reconnecting: give the link the same time to come (back) up.
    std::unique_lock lock(m.mu);
    m.state_changed.wait_for(lock, timeout, [&] { return m.state_ != LinkState::Connecting; });
    if (m.state_ != LinkState::Subscribed) return not_sent;
  }
  auto p = std::make_shared<Impl::Pending>();
  auto done = p->done.get_future();
  auto rid = std::make_shared<std::string>();
  asio::post(m.ioc, [&m, p, rid, cmd, body = std::move(body)] {
    if (m.stopping || !m.current || !m.current->subscribed || m.current->closed) {
      RequestResult r;
      r.error = "not subscribed";
      p->done.set_value(r);
      return;
    }
    *rid = m.req_id(cmd);
    p->session = m.current->id;
    m.pending.emplace(*rid, p);
    m.current->enqueue({Impl::frame(cmd, *rid, &body), *rid});
  });
  try {
    if (done.wait_for(timeout) == std::future_status::ready) return done.get();
    // No ack in time: take the request back on the I/O thread (unless the ack came meanwhile).
    asio::post(m.ioc, [&m, rid] {
      auto it = m.pending.find(*rid);
      if (it == m.pending.end()) return;
      RequestResult r;
      r.written = it->second->written;
      r.error = "no ack within the timeout";
      it->second->done.set_value(r);
      m.pending.erase(it);
    });
    return done.get();
  } catch (const std::future_error&) {
    // The I/O thread ended before it took the request: nothing was sent.
    return not_sent;
  }
}

}  // namespace bot::wecom
