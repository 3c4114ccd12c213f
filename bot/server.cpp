#include "bot/server.h"

#include "bot/office/dashboard.h"

#include <httplib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <vector>

namespace bot {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kMaxBody = 64 * 1024;
// Request line plus headers; a longer head is answered 431 by the gate. (Within it, httplib
// answers 414 for a request line over 8 KiB.)
constexpr size_t kMaxHead = 16 * 1024;
// A connection may sit without sending a byte this long (fresh, or between keep-alive requests).
constexpr auto kIdleTimeout = std::chrono::seconds(5);
// From a request's first byte to its last: a client slower than this is dropped (slowloris).
constexpr auto kRequestTimeout = std::chrono::seconds(5);
// Each write of a response must make progress within this.
constexpr auto kWriteTimeout = std::chrono::seconds(5);
// After a canned 503/413 the connection is read (and discarded) until the client closes, for at
// most this long: closing with unread input would reset the connection before the client has
// read the answer.
constexpr auto kDrainTimeout = std::chrono::seconds(2);
constexpr int kKeepAliveMax = 20;  // requests per connection
constexpr int kListenBacklog = 1024;
constexpr auto kGateReportEvery = std::chrono::seconds(10);

// ---------------------------------------------------------------------------------------------
// JSON access that never throws: a field of the wrong type reads as absent.

std::string str_field(const json& obj, const char* key) {
  if (!obj.is_object()) return {};
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const json* obj_field(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it != obj.end() && it->is_object() ? &*it : nullptr;
}

// Text a helper typed, from a text or mixed (image + text) message; nullopt for other types.
std::optional<std::string> text_of(const json& msg, const std::string& type) {
  if (type == "text") {
    const json* t = obj_field(msg, "text");
    if (t && t->contains("content") && (*t)["content"].is_string())
      return (*t)["content"].get<std::string>();
    return std::nullopt;
  }
  if (type == "mixed") {
    const json* m = obj_field(msg, "mixed");
    if (!m) return std::nullopt;
    auto items = m->find("msg_item");
    if (items == m->end() || !items->is_array()) return std::nullopt;
    std::string out;
    for (const auto& it : *items) {
      if (str_field(it, "msgtype") != "text") continue;
      const json* t = obj_field(it, "text");
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

void plain(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "text/plain; charset=utf-8");
}

std::string stream_reply(const std::string& id, const std::string& content) {
  json j = {{"msgtype", "stream"},
            {"stream", {{"id", id}, {"finish", true}, {"content", content}}}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string random_hex(int bytes) {
  std::random_device rd;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < bytes; ++i) {
    const unsigned v = rd() & 0xff;
    out += kHex[v >> 4];
    out += kHex[v & 15];
  }
  return out;
}

std::string canned(int status, const char* reason, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" + body;
}

// ---------------------------------------------------------------------------------------------
// Sockets

void close_fd(int fd) {
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
}

// Waits until fd is ready for `events` or the deadline passes. False on timeout, error or hang-up
// without data.
bool wait_for(int fd, short events, SteadyClock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 60000)));
    if (r > 0) return (p.revents & (events | POLLHUP)) != 0;
    if (r == 0) continue;  // re-check the deadline
    if (errno != EINTR) return false;
  }
}

void address_of(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  auto* sa = reinterpret_cast<sockaddr*>(&addr);
  if ((peer ? ::getpeername(fd, sa, &len) : ::getsockname(fd, sa, &len)) != 0) return;
  char host[NI_MAXHOST];
  char serv[NI_MAXSERV];
  if (::getnameinfo(sa, len, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
    ip = host;
    port = std::atoi(serv);
  }
}

// The stream a worker serves one request on. The gate has already seen the whole request in the
// socket's receive buffer (when it could tell its size), so `prefetched` holds exactly that many
// bytes, read in one call; anything more is read from the socket under the request's deadline.
// Never reads past the request, so a pipelined next request stays in the socket for the gate.
class ConnStream : public httplib::Stream {
 public:
  ConnStream(int fd, size_t request_bytes, SteadyClock::time_point read_deadline)
      : fd_(fd), read_deadline_(read_deadline) {
    if (request_bytes > 0) {
      buf_.resize(request_bytes);
      const ssize_t n = ::recv(fd_, buf_.data(), buf_.size(), MSG_DONTWAIT);
      buf_.resize(n > 0 ? static_cast<size_t>(n) : 0);
    }
  }

  bool is_readable() const override {
    return pos_ < buf_.size() || wait_for(fd_, POLLIN, read_deadline_);
  }
  bool is_writable() const override {
    return wait_for(fd_, POLLOUT, SteadyClock::now() + kWriteTimeout);
  }
  ssize_t read(char* ptr, size_t size) override {
    if (pos_ < buf_.size()) {
      const size_t n = std::min(size, buf_.size() - pos_);
      std::memcpy(ptr, buf_.data() + pos_, n);
      pos_ += n;
      return static_cast<ssize_t>(n);
    }
    if (!wait_for(fd_, POLLIN, read_deadline_)) return -1;
    ssize_t n;
    do n = ::recv(fd_, ptr, size, 0);
    while (n < 0 && errno == EINTR);
    return n;
  }
  using httplib::Stream::write;
  ssize_t write(const char* ptr, size_t size) override {
    if (!wait_for(fd_, POLLOUT, SteadyClock::now() + kWriteTimeout)) return -1;
    ssize_t n;
    do n = ::send(fd_, ptr, size, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    address_of(fd_, true, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    address_of(fd_, false, ip, port);
  }
  socket_t socket() const override { return fd_; }

 private:
  int fd_;
  SteadyClock::time_point read_deadline_;
  std::vector<char> buf_;
  size_t pos_ = 0;
};

// What the gate makes of the bytes that have arrived on a connection so far.
struct RequestShape {
  enum Kind { Incomplete, Complete, TooLarge, HeadTooLarge } kind = Incomplete;
  size_t bytes = 0;  // Complete: the whole request's size, or 0 when it cannot be told
};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Reads the request head in `seen` (bytes peeked from the socket, `full` when the peek buffer
// was filled). Complete once the head and a Content-Length body are all there; a request whose
// size cannot be told here (chunked body, Expect: 100-continue, a malformed length) counts as
// complete with an unknown size and is left to httplib, which reads it under the deadline.
RequestShape shape_of(std::string_view seen, bool full) {
  const size_t end = seen.find("\r\n\r\n");
  if (end == std::string_view::npos || end + 4 > kMaxHead) {
    if (seen.size() >= kMaxHead || full) return {RequestShape::HeadTooLarge, 0};
    return {};
  }
  const size_t head = end + 4;
  size_t length = 0;
  std::string_view rest = seen.substr(0, end);
  rest = rest.substr(std::min(rest.size(), rest.find("\r\n") + 2));  // skip the request line
  while (!rest.empty()) {
    const size_t eol = std::min(rest.find("\r\n"), rest.size());
    const std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(std::min(rest.size(), eol + 2));
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = trim(line.substr(0, colon));
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "transfer-encoding") || iequals(name, "expect"))
      return {RequestShape::Complete, 0};
    if (iequals(name, "content-length")) {
      if (value.empty() || value.size() > 12) return {RequestShape::Complete, 0};
      size_t v = 0;
      for (char c : value) {
        if (c < '0' || c > '9') return {RequestShape::Complete, 0};  // httplib answers 400
        v = v * 10 + static_cast<size_t>(c - '0');
      }
      length = v;
    }
  }
  if (length > kMaxBody) return {RequestShape::TooLarge, 0};
  if (seen.size() >= head + length) return {RequestShape::Complete, head + length};
  if (full) return {RequestShape::Complete, 0};
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Engine: httplib::Server with our own connection handling.
//
// cpp-httplib 0.11.4 gives every accepted connection to a TaskQueue, whose ThreadPool has an
// unbounded queue, and a worker then blocks reading the request with a per-read timeout only: a
// client sending a byte every few seconds holds a worker for ever. Here the TaskQueue is the
// Gate below. Its enqueue() runs httplib's task at once on the accept thread; that task calls
// process_and_close_socket(sock), which this class overrides to hand the socket to the gate. The
// gate polls all connections from one thread until a whole request has arrived, then queues it
// (bounded) for the workers, which run httplib's own request processing (process_request, with
// the handlers, logger and exception handler registered on the server) on a ConnStream. After a
// response, a keep-alive connection goes back to the gate.

class HttpServer::Engine : public httplib::Server {
 public:
  Engine(Logger& log, const LimitsConfig& limits, int threads);

  /// Runs one request on `strm` through httplib's routing (see Server::process_request).
  bool serve_one(httplib::Stream& strm, bool close_connection, bool& connection_closed) {
    return process_request(strm, close_connection, connection_closed, nullptr);
  }

  /// httplib 0.11.4 listens with a backlog of 5 (compiled in): a burst of connections then
  /// loses SYNs, and clients wait 1, 3, 7 s to retry. The gate accepts at once, so a long
  /// backlog only absorbs bursts; Linux lets listen() be called again to change it.
  void widen_backlog() {
    const socket_t s = svr_sock_;
    if (s != INVALID_SOCKET) ::listen(s, kListenBacklog);
  }

 private:
  class Gate;
  bool process_and_close_socket(socket_t sock) override;

  Logger& log_;
  const LimitsConfig limits_;
  const int threads_;
  Gate* gate_ = nullptr;  // set and cleared on the accept thread, for the time of listen
};

class HttpServer::Engine::Gate : public httplib::TaskQueue {
 public:
  explicit Gate(Engine& engine)
      : engine_(engine), wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (wake_fd_ < 0) throw std::runtime_error("eventfd failed: " + std::string(strerror(errno)));
    poller_ = std::thread([this] { poll_loop(); });
    for (int i = 0; i < engine_.threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
    engine_.gate_ = this;
  }
  ~Gate() override {
    shutdown();
    ::close(wake_fd_);
    engine_.gate_ = nullptr;
  }

  /// httplib's per-connection task only hands the socket to admit(): cheap, so it runs inline.
  void enqueue(std::function<void()> fn) override { fn(); }

  /// Stops polling (closing connections whose request has not fully arrived), lets the workers
  /// finish the requests queued, and joins every thread. Idempotent.
  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake();
    work_cv_.notify_all();
    if (poller_.joinable()) poller_.join();
    for (auto& t : workers_)
      if (t.joinable()) t.join();
  }

  /// Takes a freshly accepted socket (on the accept thread).
  void admit(int fd) {
    if (open_.load() >= engine_.limits_.max_connections) {
      ::close(fd);
      ++refused_;
      return;
    }
    ++open_;
    hand_in(Conn{fd, SteadyClock::now() + kIdleTimeout, false, 0, false});
  }

 private:
  struct Conn {
    int fd;
    SteadyClock::time_point deadline;
    bool got_bytes;  // a request has started: the deadline is the request's, not the idle one
    int served;      // requests answered on this connection
    bool draining;   // answered by the gate; reading until the client closes
  };
  struct Ready {
    int fd;
    int served;
    size_t request_bytes;  // 0: unknown, read from the socket as httplib asks
  };

  void wake() {
    const uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  }

  void hand_in(Conn c) {
    {
      std::lock_guard lock(mu_);
      if (!stopping_) {
        incoming_.push_back(c);
        c.fd = -1;
      }
    }
    if (c.fd >= 0) {
      close_fd(c.fd);
      --open_;
      return;
    }
    wake();
  }

  void drop(Conn& c) {
    close_fd(c.fd);
    --open_;
    c.fd = -1;
  }

  // Answers from the gate itself: consume what the client sent so far, write the canned
  // response, and keep reading until the client closes (or kDrainTimeout).
  void answer_and_drain(Conn& c, size_t seen, const std::string& response) {
    std::vector<char> sink(seen);
    [[maybe_unused]] auto r = ::recv(c.fd, sink.data(), sink.size(), MSG_DONTWAIT);
    [[maybe_unused]] auto w =
        ::send(c.fd, response.data(), response.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    ::shutdown(c.fd, SHUT_WR);
    c.draining = true;
    c.deadline = SteadyClock::now() + kDrainTimeout;
  }

  // One readable connection. Sets c.fd to -1 when it was closed or handed to a worker.
  void on_readable(Conn& c, std::vector<char>& peek) {
    if (c.draining) {
      for (;;) {
        const ssize_t n = ::recv(c.fd, peek.data(), peek.size(), MSG_DONTWAIT);
        if (n > 0) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        drop(c);  // the client closed: it has read the answer
        return;
      }
    }
    const ssize_t n = ::recv(c.fd, peek.data(), peek.size(), MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
      drop(c);
      return;
    }
    if (!c.got_bytes) {
      c.got_bytes = true;
      c.deadline = SteadyClock::now() + kRequestTimeout;
    }
    const auto seen = static_cast<size_t>(n);
    const RequestShape shape = shape_of(std::string_view(peek.data(), seen), seen == peek.size());
    if (shape.kind == RequestShape::Incomplete) return;
    if (shape.kind == RequestShape::TooLarge) {
      ++too_large_;
      answer_and_drain(c, seen, canned(413, "Payload Too Large", "payload too large\n"));
      return;
    }
    if (shape.kind == RequestShape::HeadTooLarge) {
      ++too_large_;
      answer_and_drain(c, seen,
                       canned(431, "Request Header Fields Too Large", "headers too large\n"));
      return;
    }
    {
      std::lock_guard lock(mu_);
      if (work_.size() < static_cast<size_t>(engine_.limits_.max_queue)) {
        work_.push_back(Ready{c.fd, c.served, shape.bytes});
        c.fd = -1;
      }
    }
    if (c.fd >= 0) {
      ++busy_;
      answer_and_drain(c, seen, canned(503, "Service Unavailable", "server busy\n"));
      return;
    }
    work_cv_.notify_one();
  }

  void poll_loop() {
    std::vector<Conn> conns;
    std::vector<pollfd> fds;
    std::vector<char> peek(kMaxHead + kMaxBody);
    auto next_report = SteadyClock::now() + kGateReportEvery;
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (stopping_) break;
        conns.insert(conns.end(), incoming_.begin(), incoming_.end());
        incoming_.clear();
      }
      const auto now = SteadyClock::now();
      auto soonest = now + std::chrono::seconds(1);
      for (auto& c : conns) {
        if (now >= c.deadline) {
          if (!c.draining) ++timed_out_;
          drop(c);
        } else {
          soonest = std::min(soonest, c.deadline);
        }
      }
      std::erase_if(conns, [](const Conn& c) { return c.fd < 0; });
      if (now >= next_report) {
        report();
        next_report = now + kGateReportEvery;
      }

      fds.assign(1, pollfd{wake_fd_, POLLIN, 0});
      for (const auto& c : conns) fds.push_back(pollfd{c.fd, POLLIN, 0});
      const auto wait =
          std::chrono::duration_cast<std::chrono::milliseconds>(soonest - now).count() + 1;
      const int r = ::poll(fds.data(), fds.size(), static_cast<int>(wait));
      if (r < 0) continue;  // EINTR
      if (fds[0].revents) {
        uint64_t v;
        [[maybe_unused]] auto n = ::read(wake_fd_, &v, sizeof v);
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (!fds[i].revents) continue;
        on_readable(conns[i - 1], peek);
      }
      std::erase_if(conns, [](const Conn& c) { return c.fd < 0; });
    }
    // Stopping: requests not fully arrived are not started.
    std::lock_guard lock(mu_);
    conns.insert(conns.end(), incoming_.begin(), incoming_.end());
    incoming_.clear();
    for (auto& c : conns) drop(c);
    report();
  }

  void worker_loop() {
    for (;;) {
      Ready r;
      {
        std::unique_lock lock(mu_);
        work_cv_.wait(lock, [&] { return stopping_ || !work_.empty(); });
        if (work_.empty()) return;  // stopping, and every queued request answered
        r = work_.front();
        work_.pop_front();
      }
      serve(r);
    }
  }

  void serve(const Ready& r) {
    ConnStream strm(r.fd, r.request_bytes, SteadyClock::now() + kRequestTimeout);
    bool stopping;
    {
      std::lock_guard lock(mu_);
      stopping = stopping_;
    }
    const bool last = stopping || r.served + 1 >= kKeepAliveMax;
    bool closed = false;
    const bool ok = engine_.serve_one(strm, last, closed);
    if (!ok || closed || last) {
      close_fd(r.fd);
      --open_;
      return;
    }
    hand_in(Conn{r.fd, SteadyClock::now() + kIdleTimeout, false, r.served + 1, false});
  }

  void report() {
    const uint64_t busy = busy_.exchange(0), large = too_large_.exchange(0),
                   slow = timed_out_.exchange(0), refused = refused_.exchange(0);
    if (busy + large + slow + refused == 0) return;
    engine_.log_.warn("gate", {{"busy_503", std::to_string(busy)},
                               {"too_large_413_431", std::to_string(large)},
                               {"timed_out", std::to_string(slow)},
                               {"refused", std::to_string(refused)},
                               {"open", std::to_string(open_.load())}});
  }

  Engine& engine_;
  const int wake_fd_;  // eventfd: wakes the poller for new connections and for stopping
  std::mutex mu_;      // guards incoming_, work_, stopping_
  std::condition_variable work_cv_;
  std::vector<Conn> incoming_;  // handed in, not yet polled
  std::deque<Ready> work_;      // whole requests waiting for a worker (≤ limits.max_queue)
  bool stopping_ = false;
  std::atomic<int> open_{0};  // connections held, in any state
  std::atomic<uint64_t> busy_{0}, too_large_{0}, timed_out_{0}, refused_{0};  // since report
  std::thread poller_;
  std::vector<std::thread> workers_;
};

HttpServer::Engine::Engine(Logger& log, const LimitsConfig& limits, int threads)
    : log_(log), limits_(limits), threads_(threads) {
  new_task_queue = [this] { return new Gate(*this); };
}

bool HttpServer::Engine::process_and_close_socket(socket_t sock) {
  // httplib writes a reply's head and body separately: with Nagle on, the body waits for the
  // client's delayed ACK (~40 ms a reply, measured in BENCHMARKS.md).
  const int one = 1;
  ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (gate_)
    gate_->admit(sock);
  else
    ::close(sock);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Pure parts of the callback

std::optional<std::string> envelope_encrypt(std::string_view body) {
  const json envelope = json::parse(body, nullptr, false);
  if (envelope.is_discarded() || !envelope.is_object()) return std::nullopt;
  auto it = envelope.find("encrypt");
  if (it == envelope.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

OpenedCallback open_callback(const WecomCrypto& crypto, std::string_view encrypted) {
  OpenedCallback out;
  const Decrypted d = crypto.decrypt(encrypted);
  if (d.error != CryptoError::Ok) {
    out.error = OpenError::Decrypt;
    out.crypto = d.error;
    return out;
  }
  const json msg = json::parse(d.message, nullptr, false);
  if (msg.is_discarded() || !msg.is_object()) {
    out.error = OpenError::Payload;
    return out;
  }
  CallbackMessage& m = out.message;
  m.msgtype = str_field(msg, "msgtype");
  m.msgid = str_field(msg, "msgid");
  if (const json* from = obj_field(msg, "from")) m.userid = str_field(*from, "userid");
  m.chatid = str_field(msg, "chatid");
  m.chattype = str_field(msg, "chattype");
  m.text = text_of(msg, m.msgtype);
  if (const json* ev = obj_field(msg, "event")) m.event_type = str_field(*ev, "eventtype");
  if (const json* st = obj_field(msg, "stream")) m.stream_id = str_field(*st, "id");
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

HttpServer::HttpServer(const Config& config, handlers::Dispatcher& dispatcher,
                       storage::Store& store, const WecomCrypto& crypto, Logger& log, Clock clock)
    : config_(config),
      dispatcher_(dispatcher),
      store_(store),
      crypto_(crypto),
      log_(log),
      clock_(std::move(clock)),
      limiter_(config.limits.per_sender_per_minute),
      rid_prefix_(random_hex(4)),
      http_(std::make_unique<Engine>(log, config.limits, config.threads)) {
  http_->set_payload_max_length(kMaxBody);
  // The gate enforces its own deadlines (kIdleTimeout, kRequestTimeout, kWriteTimeout); these
  // keep httplib's socket options in line with them.
  http_->set_read_timeout(5, 0);
  http_->set_write_timeout(5, 0);
  http_->set_keep_alive_timeout(5);
  http_->set_keep_alive_max_count(kKeepAliveMax);
  http_->set_pre_routing_handler([this](const httplib::Request&, httplib::Response& res) {
    res.set_header("X-Request-Id", next_request_id());
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http_->set_exception_handler(
      [this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        log_.error(
            "request_failed",
            {{"rid", res.get_header_value("X-Request-Id")}, {"path", req.path}, {"error", what}});
        plain(res, 500, "internal error\n");
      });
  http_->set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    // A request httplib refused before routing (a malformed request line) has no id yet.
    std::string rid = res.get_header_value("X-Request-Id");
    if (rid.empty()) rid = next_request_id();
    log_.info("http", {{"rid", rid},
                       {"method", req.method},
                       {"path", req.path},
                       {"status", std::to_string(res.status)}});
  });
  http_->Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    if (store_.healthy())
      plain(res, 200, "ok\n");
    else
      plain(res, 503, "database unavailable\n");
  });
  http_->Get("/wecom/callback", [this](const httplib::Request& req, httplib::Response& res) {
    get_callback(req, res);
  });
  http_->Post("/wecom/callback", [this](const httplib::Request& req, httplib::Response& res) {
    post_callback(req, res);
  });
}

// The office dashboard's adapter: httplib's request in, the framework-neutral handler's answer
// out. All the dashboard's logic is in bot/office/dashboard.cpp.
void HttpServer::mount_office(office::Dashboard& dashboard) {
  auto serve = [this, &dashboard](const httplib::Request& req, httplib::Response& res) {
    office::Request in;
    in.method = req.method;
    in.path = req.path;
    if (req.method != "POST") in.query.insert(req.params.begin(), req.params.end());
    for (const auto& [k, v] : req.headers) {
      std::string name = k;
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      in.headers.emplace(std::move(name), v);
    }
    in.body = req.body;
    in.remote_address = req.remote_addr;
    in.is_tls = false;  // this server speaks plain HTTP; TLS comes from a proxy (behind_proxy)
    const office::Response out = dashboard.handle(in, clock_());
    res.status = out.status;
    std::string content_type = "text/plain; charset=utf-8";
    for (const auto& [k, v] : out.headers) {
      if (k == "Content-Type")
        content_type = v;
      else
        res.headers.emplace(k, v);  // several Set-Cookie headers may be set
    }
    if (!out.body.empty() || out.status != 303) res.set_content(out.body, content_type);
  };
  http_->Get(R"(/office(/.*)?)", serve);
  http_->Post(R"(/office(/.*)?)", serve);
}

std::string HttpServer::next_request_id() {
  return rid_prefix_ + "-" + std::to_string(++request_seq_);
}

HttpServer::~HttpServer() {
  stop();
}

int HttpServer::bind(const std::string& host, int port) {
  const int bound =
      port == 0 ? http_->bind_to_any_port(host) : (http_->bind_to_port(host, port) ? port : -1);
  if (bound >= 0) http_->widen_backlog();
  return bound;
}

bool HttpServer::run() {
  return http_->listen_after_bind();
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
  // as stale anyway. Pruning every few seconds keeps the map at (callbacks per second) x skew.
  if (now - last_replay_prune_ >= 5 || now < last_replay_prune_) {
    std::erase_if(seen_, [&](const auto& kv) { return kv.second.second < now - skew; });
    last_replay_prune_ = now;
  }
  const std::string key = timestamp + "|" + nonce;
  auto [it, inserted] = seen_.try_emplace(key, signature, ts);
  if (inserted || it->second.first == signature) return 0;  // new, or the same request again
  return 401;
}

void HttpServer::get_callback(const httplib::Request& req, httplib::Response& res) {
  const std::string rid = res.get_header_value("X-Request-Id");
  const std::string sig = req.get_param_value("msg_signature");
  const std::string ts = req.get_param_value("timestamp");
  const std::string nonce = req.get_param_value("nonce");
  std::string echostr = req.get_param_value("echostr");
  // A proxy may turn '+' into a space on the way (docs/protocols.md "Callback crypto"); base64 has
  // no spaces.
  for (char& c : echostr)
    if (c == ' ') c = '+';
  if (!is_signature_shape(sig) || !fresh(ts, clock_()) || !is_nonce_shape(nonce) ||
      echostr.empty() || !crypto_.verify(sig, ts, nonce, echostr)) {
    log_.warn("verify_rejected", {{"rid", rid}, {"reason", "signature"}});
    return plain(res, 401, "unauthorized\n");
  }
  const Decrypted d = crypto_.decrypt(echostr);
  if (d.error != CryptoError::Ok) {
    log_.warn(
        "verify_rejected",
        {{"rid", rid}, {"reason", "decrypt"}, {"code", std::to_string(static_cast<int>(d.error))}});
    return plain(res, 400, "bad request\n");
  }
  log_.info("verify_ok", {{"rid", rid}});
  res.status = 200;
  res.set_content(d.message, "text/plain");
}

void HttpServer::post_callback(const httplib::Request& req, httplib::Response& res) {
  const std::string rid = res.get_header_value("X-Request-Id");
  const int64_t now = clock_();
  const std::string sig = req.get_param_value("msg_signature");
  const std::string ts = req.get_param_value("timestamp");
  const std::string nonce = req.get_param_value("nonce");
  auto reject = [&](int status, const char* reason) {
    log_.warn("callback_rejected", {{"rid", rid}, {"reason", reason}});
    plain(res, status, status == 401 ? "unauthorized\n" : "bad request\n");
  };
  if (req.body.size() > kMaxBody) return plain(res, 413, "payload too large\n");
  if (!is_signature_shape(sig) || !is_nonce_shape(nonce)) return reject(401, "signature");
  if (!fresh(ts, now)) return reject(401, "stale_timestamp");

  // The envelope must be read to find the signed field; nothing inside it is trusted yet.
  const auto encrypted = envelope_encrypt(req.body);
  if (!encrypted) return reject(400, "envelope");
  if (!crypto_.verify(sig, ts, nonce, *encrypted)) return reject(401, "signature");
  if (check_replay(ts, nonce, sig, now) != 0) return reject(401, "replay");

  const OpenedCallback opened = open_callback(crypto_, *encrypted);
  if (opened.error == OpenError::Decrypt) {
    log_.warn("callback_rejected", {{"rid", rid},
                                    {"reason", "decrypt"},
                                    {"code", std::to_string(static_cast<int>(opened.crypto))}});
    return plain(res, 400, "bad request\n");
  }
  if (opened.error != OpenError::Ok) return reject(400, "payload");
  const CallbackMessage& msg = opened.message;

  auto reply_with = [&](const std::string& plaintext) {
    res.status = 200;
    res.set_content(crypto_.reply_envelope(plaintext, now, nonce), "application/json");
  };

  if (msg.msgtype == "event") {
    log_.info("event", {{"rid", rid}, {"eventtype", msg.event_type}});
    if (msg.event_type == "enter_chat") {
      json welcome = {{"msgtype", "text"},
                      {"text",
                       {{"content", "你好，我是" + config_.bot_name +
                                        "。走访后@我发一句话就能打卡，发“帮助”看写法。"}}}};
      return reply_with(welcome.dump(-1, ' ', false, json::error_handler_t::replace));
    }
    res.status = 200;  // other events need no answer
    return;
  }

  if (msg.msgtype == "stream") {
    // A refresh of a stream we already finished: answer with the same finished content.
    auto stored = msg.stream_id.empty() ? std::nullopt : store_.reply_for(msg.stream_id);
    if (!stored) {
      res.status = 200;
      return;
    }
    return reply_with(stream_reply(msg.stream_id, *stored));
  }

  if (msg.msgid.empty() || msg.msgid.size() > 256 || msg.userid.empty())
    return reject(400, "payload");

  storage::InboundMessage in;
  in.msgid = msg.msgid;
  in.platform = "wecom";
  in.userid = msg.userid;
  in.chatid = msg.chatid;
  in.chattype = msg.chattype;
  in.received_at = now;
  in.text = msg.text ? *msg.text : "[" + msg.msgtype + "]";

  if (!limiter_.allow(msg.userid, now)) {
    // Over the limit: keep the raw message and answer politely, record nothing else. The
    // answer is stored as the message's reply, so a WeCom retry gets the same one (and a retry
    // of a message answered before gets that earlier answer).
    const std::string slow_down = "发得太快了（每人每分钟最多 " +
                                  std::to_string(config_.limits.per_sender_per_minute) +
                                  " 条）。这条已收到存档，但没有记为走访，请一分钟后再发。";
    const std::string answer = store_.transaction([&](storage::Store::Tx& tx) -> std::string {
      if (tx.save_inbound(in) == storage::SaveInbound::Duplicate)
        if (auto r = tx.reply_for(in.msgid)) return *r;
      tx.set_reply(in.msgid, slow_down, storage::InboundOutcome::RateLimited);
      return slow_down;
    });
    log_.warn("rate_limited", {{"rid", rid}, {"msgid", msg.msgid}, {"from", msg.userid}});
    return reply_with(stream_reply(msg.msgid, answer));
  }

  if (!msg.text) {
    // Photos, voice and files are not needed: keep the record that something came, and say so.
    store_.save_inbound(in);
    log_.info("non_text", {{"rid", rid}, {"msgid", msg.msgid}, {"msgtype", msg.msgtype}});
    return reply_with(stream_reply(
        msg.msgid, "收到。打卡只需要一句文字，不用发照片、语音或定位。发“帮助”看写法。"));
  }
  const auto outcome = dispatcher_.handle(in, storage::LocalTime{now, config_.utc_offset_seconds});
  log_.info("message", {{"rid", rid},
                        {"msgid", msg.msgid},
                        {"from", msg.userid},
                        {"duplicate", outcome.duplicate ? "1" : "0"},
                        {"recorded", outcome.recorded ? "1" : "0"}});
  reply_with(stream_reply(msg.msgid, outcome.reply));
}

}  // namespace bot
