#include "bot/http/server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "storage/thread_name.h"

namespace bot::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bh = boost::beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
// Each event loop is an io_context run by one thread: a connection lives on one loop, so its
// handlers never run concurrently without a strand, and the executor type is concrete (no
// type-erased any_io_executor on every hand-off).
using Executor = net::io_context::executor_type;
using Socket = tcp::socket::rebind_executor<Executor>::other;
using Stream = beast::basic_stream<tcp, Executor, beast::unlimited_rate_policy>;

std::vector<std::unique_ptr<net::io_context>> make_loops(int n) {
  std::vector<std::unique_ptr<net::io_context>> loops;
  // Concurrency hint 1: each is run by one thread (others only post to it).
  for (int i = 0; i < std::max(1, n); ++i) loops.push_back(std::make_unique<net::io_context>(1));
  return loops;
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

// A request target as a path and query. A client may send the absolute form
// (`POST http://host/wecom/callback?… HTTP/1.1`), which a server must accept (RFC 9112 3.2.2);
// handlers see the same "/path?query" either way. Any other form is passed on as it came.
std::string origin_form(std::string_view target) {
  if (target.empty() || target.front() == '/') return std::string(target);
  const auto url = boost::urls::parse_absolute_uri(target);
  if (!url || (url->scheme_id() != boost::urls::scheme::http &&
               url->scheme_id() != boost::urls::scheme::https))
    return std::string(target);
  std::string out(url->encoded_path());
  if (out.empty()) out = "/";
  if (url->has_query()) {
    out += '?';
    out += url->encoded_query();
  }
  return out;
}

// What is wrong with a request the parser refused, said so that its sender can mend it.
std::string_view what_is_bad(const error_code& ec) {
  if (ec == bh::error::bad_line_ending) return "bad request: each line must end with CRLF\n";
  if (ec == bh::error::bad_method) return "bad request: the method is not a token\n";
  if (ec == bh::error::bad_target) return "bad request: the request target is malformed\n";
  if (ec == bh::error::bad_field) return "bad request: a header field's name is malformed\n";
  if (ec == bh::error::bad_value) return "bad request: a header field's value is malformed\n";
  if (ec == bh::error::bad_version)
    return "bad request: the request line must end with HTTP/1.1, then CRLF\n";
  if (ec == bh::error::bad_obs_fold) return "bad request: a header line is folded badly\n";
  if (ec == bh::error::bad_content_length)
    return "bad request: Content-Length must be one decimal number\n";
  if (ec == bh::error::multiple_content_length)
    return "bad request: Content-Length is given more than once\n";
  return "bad request\n";
}

Response refusal(int status, std::string_view body) {
  Response r = Response::with(status, std::string(body));
  if (status == 503) r.headers.emplace_back("Retry-After", "1");
  return r;
}

// Counters as atomics; read together by counters().
struct Counts {
  std::atomic<uint64_t> accepted{0}, refused_connections{0}, requests{0}, busy_503{0}, too_large{0},
      bad_request{0}, unsupported{0}, idle_closed{0}, slow_closed{0}, evicted{0};
};

}  // namespace

class Session;

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(ServerOptions o, Logger& l)
      : options(o),
        log(l),
        loops(make_loops(o.io_threads)),
        acceptor(*loops[0]),
        report_timer(*loops[0]),
        pool(static_cast<std::size_t>(std::max(1, o.workers))),
        rid_prefix(random_hex(4)) {}

  const ServerOptions options;
  Logger& log;
  // One per io thread. The acceptor and the report timer live on the first; connections are
  // dealt out in turn.
  std::vector<std::unique_ptr<net::io_context>> loops;
  std::vector<net::executor_work_guard<Executor>> keep_running;  // from run() until stop()
  std::size_t next_loop = 0;  // touched by the acceptor's handler only
  tcp::acceptor acceptor;
  net::steady_timer report_timer;
  net::thread_pool pool;
  const std::string rid_prefix;
  std::atomic<uint64_t> rid_seq{0};

  // A handler run on a worker, or one run on the event loop (exactly one is set).
  struct Route {
    Handler handler;
    AsyncHandler async;
  };
  std::map<std::pair<std::string, std::string>, Route> routes;  // (method, path) → handler
  std::vector<std::pair<std::string, Route>> mounts;            // longest prefix first

  std::atomic<bool> bound{false}, running{false}, stopping{false};
  std::atomic<int> open{0};    // connections held
  std::atomic<int> queued{0};  // complete requests waiting for a worker
  Counts counts;
  Counts reported;  // the counts at the last report (touched by the report timer only)

  std::mutex sessions_mu;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;  // live connections, for stop()

  std::string next_id() { return rid_prefix + "-" + std::to_string(++rid_seq); }
  const Route* find(const std::string& method, const std::string& path, bool& path_known) const;
  std::shared_ptr<Session> evictable();
  std::string allowed(const std::string& path) const;
  void accept();
  void on_accept(error_code ec, Socket socket);  // on the acceptor's loop
  void report(bool last);
  void schedule_report();
};

// One connection. Every member is touched only on the connection's event loop (the executor of
// stream_, run by one thread), except while a worker runs the handler on a copy of the request.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Socket&& socket, std::shared_ptr<Server::Impl> server)
      : server_(std::move(server)), stream_(std::move(socket)) {
    error_code ec;
    const auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string();
    // Head and body of a response go out in one write, but a client's next request must not
    // wait for a delayed ACK either.
    stream_.socket().set_option(tcp::no_delay(true), ec);
  }
  ~Session() {
    --server_->open;
    std::lock_guard lock(server_->sessions_mu);
    server_->sessions.erase(this);
  }

  void start() {
    {
      std::lock_guard lock(server_->sessions_mu);
      server_->sessions.emplace(this, weak_from_this());
    }
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::wait_for_request, shared_from_this()));
  }

  // Called by stop() on any thread: a connection that is not serving a request is closed now;
  // one that is will close after writing its answer.
  void shut() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->phase_.load(std::memory_order_relaxed) != Phase::Busy) self->close();
    });
  }

  // What a connection is doing, for choosing one to close when all are taken (read on the
  // acceptor's thread, hence atomics).
  enum class Phase : std::uint8_t { Idle, Reading, Busy, Draining };

  // For Impl::evictable(), under sessions_mu: how fit this connection is to be closed for a new
  // one (0: not at all — serving a request, or already chosen; 1: part of a request read; 2:
  // waiting for a request; 3: draining a refused client) and, within a rank, since when (steady
  // clock ticks; the oldest goes first).
  std::pair<int, std::int64_t> eviction_rank() const {
    if (evicting_.load(std::memory_order_relaxed)) return {0, 0};
    const auto since = since_.load(std::memory_order_relaxed);
    switch (phase_.load(std::memory_order_relaxed)) {
      case Phase::Draining:
        return {3, since};
      case Phase::Idle:
        return {2, since};
      case Phase::Reading:
        return {1, since};
      case Phase::Busy:
        break;
    }
    return {0, 0};
  }
  // Marks this one chosen; false if another accept chose it first.
  bool claim() {
    bool no = false;
    return evicting_.compare_exchange_strong(no, true);
  }
  // Closes it on its loop, unless it has begun serving a request since it was chosen (then the
  // new connection makes one over the limit until some connection ends).
  void evict() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->phase_.load(std::memory_order_relaxed) == Phase::Busy) {
        self->evicting_ = false;
        return;
      }
      ++self->server_->counts.evicted;
      self->close();
    });
  }

 private:
  // Idle: waiting for the first byte of the next request (unless it is already buffered, as a
  // pipelined request is).
  void wait_for_request() {
    if (server_->stopping) return close();
    head_ = false;
    http10_ = false;
    empty_lines_ = 0;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_->options.header_limit));
    parser_->body_limit(server_->options.body_limit);
    if (buffer_.size() > 0) return read_header();
    set_phase(Phase::Idle);
    stream_.expires_after(server_->options.idle_timeout);
    read_while_idle();
  }

  // The next bytes of an idle connection, within the deadline already set; closed (and counted
  // idle) if none come by then.
  void read_while_idle() {
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](error_code ec, std::size_t n) {
                              if (ec) {
                                if (ec == beast::error::timeout)
                                  ++self->server_->counts.idle_closed;
                                return self->close();
                              }
                              self->buffer_.commit(n);
                              self->read_header();
                            });
  }

  void read_header() {
    if (!skip_empty_lines()) return;
    set_phase(Phase::Reading);
    stream_.expires_after(server_->options.header_timeout);
    bh::async_read_header(stream_, buffer_, *parser_,
                          beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  // Empty lines before a request line are passed over (RFC 9112 2.2: some clients end a POST's
  // body with a CRLF not counted in its length), up to kMaxEmptyLines in a row; more are left to
  // the parser, which refuses them. False when only empty lines have come: the connection is
  // still idle, and more is read within the idle deadline it already had (a connection just
  // answered gets one); empty lines never extend it.
  bool skip_empty_lines() {
    const auto* p = static_cast<const char*>(buffer_.data().data());
    const std::size_t n = buffer_.size();
    if (n == 0 || p[0] != '\r') return true;
    std::size_t i = 0;
    while (i + 1 < n && p[i] == '\r' && p[i + 1] == '\n' && empty_lines_ < kMaxEmptyLines) {
      i += 2;
      ++empty_lines_;
    }
    // Left: nothing, a lone CR (the next empty line's start, perhaps), or a request's start.
    const bool more_needed = n - i == 0 || (n - i == 1 && p[i] == '\r');
    buffer_.consume(i);
    if (empty_lines_ >= kMaxEmptyLines || !more_needed) return true;
    if (phase_.load(std::memory_order_relaxed) != Phase::Idle) {
      set_phase(Phase::Idle);
      stream_.expires_after(server_->options.idle_timeout);
    }
    read_while_idle();
    return false;
  }

  // The parser's bad version is a well-formed one other than 1.0 and 1.1 ("HTTP/2.0" and CRLF,
  // a 505) rather than a malformed line (a 400)?
  bool names_other_version() const {
    const std::string_view got(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    const auto eol = got.find("\r\n");
    if (eol == std::string_view::npos || eol < 9) return false;
    const std::string_view v = got.substr(eol - 9, 9);  // " HTTP/x.y"
    auto digit = [](char ch) { return ch >= '0' && ch <= '9'; };
    return v.substr(0, 6) == " HTTP/" && digit(v[6]) && v[7] == '.' && digit(v[8]);
  }

  void on_header(error_code ec, std::size_t) {
    auto& c = server_->counts;
    if (ec == beast::error::timeout) {
      ++c.slow_closed;
      return close();
    }
    if (ec == bh::error::header_limit) {
      ++c.too_large;
      return refuse(431, "headers too large\n");
    }
    if (ec == bh::error::bad_transfer_encoding) {
      ++c.unsupported;
      return refuse(501, "transfer-encoding not supported\n");
    }
    if (ec == bh::error::body_limit) {
      ++c.too_large;
      return refuse(413, "payload too large\n");
    }
    if (ec == bh::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::connection_reset || ec == net::error::operation_aborted)
      return close();
    if (ec == bh::error::bad_version && names_other_version()) {
      ++c.unsupported;
      return refuse(505, "HTTP version not supported: send HTTP/1.1\n");
    }
    if (ec) {
      ++c.bad_request;
      return refuse(400, what_is_bad(ec));
    }
    const auto& h = parser_->get();
    if (h.find(bh::field::transfer_encoding) != h.end()) {
      ++c.unsupported;
      return refuse(501, "transfer-encoding not supported\n");
    }
    if (h.find(bh::field::expect) != h.end()) {
      ++c.unsupported;
      return refuse(417, "expect not supported\n");
    }
    const auto method = h.method();
    // Methods are case-sensitive: "get" or "FOO" is one no resource here has (RFC 9110 15.6.2).
    if (method == bh::verb::unknown) {
      ++c.unsupported;
      return refuse(501, "method not implemented\n");
    }
    if (!parser_->content_length() &&
        (method == bh::verb::post || method == bh::verb::put || method == bh::verb::patch)) {
      ++c.unsupported;
      return refuse(411, "length required\n");
    }
    if (parser_->content_length() && *parser_->content_length() > server_->options.body_limit) {
      ++c.too_large;
      return refuse(413, "payload too large\n");
    }
    if (parser_->is_done()) return on_request();
    stream_.expires_after(server_->options.body_timeout);
    bh::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&Session::on_body, shared_from_this()));
  }

  void on_body(error_code ec, std::size_t) {
    if (ec == beast::error::timeout) {
      ++server_->counts.slow_closed;
      return close();
    }
    if (ec == bh::error::body_limit) {
      ++server_->counts.too_large;
      return refuse(413, "payload too large\n");
    }
    if (ec) return close();  // the client went away mid-body
    on_request();
  }

  // A complete request: to a worker, unless the queue is full.
  void on_request() {
    set_phase(Phase::Busy);
    stream_.expires_never();
    auto msg = parser_->release();
    parser_.reset();
    keep_alive_ = msg.keep_alive() && ++served_ < server_->options.keep_alive_max;
    head_ = msg.method() == bh::verb::head;
    http10_ = msg.version() < 11;

    Request req;
    req.method = std::string(msg.method_string());
    req.target = origin_form(msg.target());
    const auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    req.headers.reserve(std::distance(msg.begin(), msg.end()));
    for (const auto& f : msg) req.headers.emplace_back(f.name_string(), f.value());
    req.body = std::move(msg.body());
    req.remote_addr = remote_;
    req.id = server_->next_id();

    bool path_known = false;
    const Server::Impl::Route* route = server_->find(req.method, req.path, path_known);
    if (route && route->async) return start_async(*route, std::move(req));

    if (!admit(req)) return;
    net::post(server_->pool, [self = shared_from_this(), req = std::move(req), route,
                              guard = net::make_work_guard(stream_.get_executor())]() mutable {
      --self->server_->queued;
      Response res = self->handle(req, route);
      self->log_access(req, res.status);
      net::post(self->stream_.get_executor(),
                [self, id = std::move(req.id), res = std::move(res)]() mutable {
                  self->write(std::move(res), id, self->keep_alive_);
                });
    });
  }

  // Takes one of limits.max_queue places for `req` (given back when it is answered), or answers
  // 503 and returns false when they are all taken.
  bool admit(const Request& req) {
    if (server_->queued.fetch_add(1) >= server_->options.max_queue) {
      --server_->queued;
      ++server_->counts.busy_503;
      log_access(req, 503);
      refuse(503, "server busy\n", req.id);
      return false;
    }
    ++server_->counts.requests;
    return true;
  }

  // An async route: its handler runs here, on the connection's loop, and answers through a
  // Reply whenever its work is done (Reply::State below).
  void start_async(const Server::Impl::Route& route, Request req) {
    // Counted until answered: a request waiting for the Store's writer holds its memory and a
    // place in the writer's queue just as one waiting for a worker does.
    if (!admit(req)) return;
    auto state = std::make_shared<Reply::State>(shared_from_this(), req.id, req.method, req.path);
    try {
      route.async(req, Reply(state));
    } catch (const std::exception& e) {
      server_->log.error("request_failed",
                         {{"rid", req.id}, {"path", req.path}, {"error", e.what()}});
      Reply(state).send(refusal(500, "internal error\n"));
    } catch (...) {
      server_->log.error("request_failed",
                         {{"rid", req.id}, {"path", req.path}, {"error", "unknown"}});
      Reply(state).send(refusal(500, "internal error\n"));
    }
  }

 public:
  // For Reply (any thread): the answer goes out on this connection's loop (at once if called
  // there).
  template <class Fn>
  void on_loop(Fn&& fn) {
    net::dispatch(stream_.get_executor(), std::forward<Fn>(fn));
  }
  Executor executor() { return stream_.get_executor(); }
  void write_answer(Response res, const std::string& id) { write(std::move(res), id, keep_alive_); }
  Server::Impl& server() { return *server_; }
  void log_access(const std::string& rid, const std::string& method, const std::string& path,
                  int status) {
    server_->log.request(
        "http",
        {{"rid", rid}, {"method", method}, {"path", path}, {"status", std::to_string(status)}});
  }

 private:
  // On a worker. `route` is null when no route matched: 405 if the path has routes for other
  // methods, else 404 (a mount would have matched).
  Response handle(const Request& req, const Server::Impl::Route* route) {
    if (!route) {
      std::string allow = server_->allowed(req.path);
      if (allow.empty()) return refusal(404, "not found\n");
      // A 405 names the methods the path has (RFC 9110 15.5.6), as the dashboard's do.
      Response r = refusal(405, "method not allowed\n");
      r.headers.emplace_back("Allow", std::move(allow));
      return r;
    }
    try {
      return route->handler(req);
    } catch (const std::exception& e) {
      server_->log.error("request_failed",
                         {{"rid", req.id}, {"path", req.path}, {"error", e.what()}});
    } catch (...) {
      server_->log.error("request_failed",
                         {{"rid", req.id}, {"path", req.path}, {"error", "unknown"}});
    }
    return refusal(500, "internal error\n");
  }

  void log_access(const Request& req, int status) {
    log_access(req.id, req.method, req.path, status);
  }

  void write(Response res, const std::string& id, bool keep_alive) {
    if (server_->stopping) keep_alive = false;
    bh::response<bh::string_body> out;
    out.version(11);
    out.result(static_cast<unsigned>(res.status));
    for (auto& [k, v] : res.headers) out.set(k, v);
    if (!id.empty()) out.set("X-Request-Id", id);
    out.body() = std::move(res.body);
    out.keep_alive(keep_alive);
    // An HTTP/1.0 client that asked to keep the connection (ab -k, some monitors) keeps it only
    // if the answer says so; an HTTP/1.1 answer implies it for 1.1 clients alone.
    if (keep_alive && http10_) out.set(bh::field::connection, "keep-alive");
    out.prepare_payload();
    // The answer to a HEAD is the head a GET would get, Content-Length included, and nothing
    // after it (RFC 9110 9.3.2): a body here would be read as the start of the next response.
    if (head_) out.body().clear();
    // Serialized by Beast into one piece, then written as one buffer: bh::async_write walks the
    // serializer's buffer sequence (the head's pieces, the fields, the body) again in every
    // write operation, about a tenth of the core's CPU per request (BENCHMARKS.md §9).
    written_.clear();
    error_code ec;
    bh::response_serializer<bh::string_body> sr(out);
    do {
      sr.next(ec, [&](error_code& e, const auto& buffers) {
        e = {};
        for (const auto b : beast::buffers_range_ref(buffers))
          written_.append(static_cast<const char*>(b.data()), b.size());
        sr.consume(beast::buffer_bytes(buffers));
      });
    } while (!ec && !sr.is_done());
    if (ec) return close();  // a string body cannot fail to serialize; closing is the safe side
    stream_.expires_after(server_->options.write_timeout);
    net::async_write(stream_, net::buffer(written_),
                     [self = shared_from_this(), keep_alive](error_code e, std::size_t) {
                       // A large answer (an office export) is not held for the connection's
                       // next ones.
                       if (self->written_.capacity() > kKeptAnswerBytes)
                         std::string().swap(self->written_);
                       if (e) return self->close();
                       if (!keep_alive) return self->drain();
                       self->wait_for_request();
                     });
  }

  // Answers without a handler and closes: the rest of what the client sends is read and dropped
  // for a while, since closing with unread input would reset the connection before the client
  // has read the answer.
  void refuse(int status, std::string_view body, std::string id = {}) {
    // A HEAD refused before its head was read is not known to be one: its answer has a body.
    if (parser_ && parser_->is_header_done()) head_ = parser_->get().method() == bh::verb::head;
    parser_.reset();
    set_phase(Phase::Busy);
    write(refusal(status, body), id.empty() ? server_->next_id() : id, false);
  }

  void drain() {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return close();
    set_phase(Phase::Draining);
    buffer_.clear();
    stream_.expires_after(server_->options.drain_timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](error_code e, std::size_t) {
                              if (e) return self->close();
                              self->buffer_.clear();
                              self->drain_more();
                            });
  }
  void drain_more() {
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](error_code e, std::size_t) {
                              if (e) return self->close();
                              self->buffer_.clear();
                              self->drain_more();
                            });
  }

  // A phase's time is when it began: a connection waiting since it was accepted is as old as
  // its accept. A busy connection is never chosen, so its time is not kept.
  void set_phase(Phase p) {
    if (phase_.load(std::memory_order_relaxed) == p) return;
    phase_.store(p, std::memory_order_relaxed);
    if (p != Phase::Busy)
      since_.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                   std::memory_order_relaxed);
  }

  void close() {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  // Declared first, destroyed last: the last session may outlive the Server (its final reference
  // dropped on the Store's writer thread at shutdown), and the stream's socket must go while the
  // io_context it belongs to still exists.
  std::shared_ptr<Server::Impl> server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bh::request_parser<bh::string_body>> parser_;
  std::string remote_;
  // The answer being written, head and body. One at a time: the next request is read only when
  // this write has ended. Its capacity is kept for the next answer, up to kKeptAnswerBytes.
  std::string written_;
  static constexpr std::size_t kKeptAnswerBytes = 64 * 1024;
  int served_ = 0;
  bool keep_alive_ = true;
  bool head_ = false;    // the request being answered is a HEAD
  bool http10_ = false;  // ... and came as HTTP/1.0
  static constexpr int kMaxEmptyLines = 8;
  int empty_lines_ = 0;  // passed over before this request's line
  // Busy from a complete request (or a refusal) until its answer is written; stop() leaves a
  // busy connection to close after its answer.
  std::atomic<Phase> phase_{Phase::Idle};
  std::atomic<std::int64_t> since_{std::chrono::steady_clock::now().time_since_epoch().count()};
  std::atomic<bool> evicting_{false};  // chosen to make room for a new connection
};

// One request of an async route. Holds the connection (and so the server) and keeps the event
// loop running until the request is answered.
struct Reply::State {
  State(std::shared_ptr<Session> s, std::string rid, std::string m, std::string p)
      : work(net::make_work_guard(s->executor())),
        session(std::move(s)),
        id(std::move(rid)),
        method(std::move(m)),
        path(std::move(p)) {}
  ~State() {
    if (!claim()) return;
    // Every Reply is gone and none answered: a handler bug, but the client still gets an answer.
    session->server().log.error("request_failed",
                                {{"rid", id}, {"path", path}, {"error", "no answer"}});
    session->log_access(id, method, path, 500);
    session->on_loop(
        [s = session, id = id] { s->write_answer(refusal(500, "internal error\n"), id); });
  }
  // True for the first answer only; the request leaves the queue then.
  bool claim() {
    if (answered.exchange(true)) return false;
    --session->server().queued;
    return true;
  }
  // `fn`'s answer, or 500 (logged) if it throws.
  Response run_guarded(const std::function<Response()>& fn) {
    try {
      return fn();
    } catch (const std::exception& e) {
      session->server().log.error("request_failed",
                                  {{"rid", id}, {"path", path}, {"error", e.what()}});
    } catch (...) {
      session->server().log.error("request_failed",
                                  {{"rid", id}, {"path", path}, {"error", "unknown"}});
    }
    return refusal(500, "internal error\n");
  }
  // On the connection's loop, once claimed.
  void deliver(Response res) {
    session->log_access(id, method, path, res.status);
    session->write_answer(std::move(res), id);
  }

  // Released after the session is dropped: the event loop keeps running until then.
  net::executor_work_guard<Executor> work;
  std::shared_ptr<Session> session;
  const std::string id, method, path;
  std::atomic<bool> answered{false};
};

void Reply::send(Response res) const {
  if (!state_->claim()) return;
  state_->session->on_loop(
      [state = state_, res = std::move(res)]() mutable { state->deliver(std::move(res)); });
}

void Reply::send_from(std::function<Response()> make) const {
  if (!state_->claim()) return;
  state_->session->on_loop(
      [state = state_, make = std::move(make)] { state->deliver(state->run_guarded(make)); });
}

void Reply::on_worker(std::function<void()> work) const {
  // The request holds its place in the queue already (start_async).
  net::post(state_->session->server().pool, [state = state_, work = std::move(work)] {
    bool threw = true;
    const Response failed = state->run_guarded([&] {
      work();
      threw = false;
      return Response{};
    });
    if (threw) Reply(state).send(failed);  // ignored if `work` answered before it threw
  });
}

const Server::Impl::Route* Server::Impl::find(const std::string& method, const std::string& path,
                                              bool& path_known) const {
  if (auto it = routes.find({method, path}); it != routes.end()) return &it->second;
  // A HEAD without a route of its own is the GET's (its body is dropped when written).
  if (method == "HEAD")
    if (auto it = routes.find({"GET", path}); it != routes.end()) return &it->second;
  for (const auto& [key, h] : routes)
    if (key.second == path) path_known = true;
  if (path_known) return nullptr;
  for (const auto& [prefix, h] : mounts)
    if (path.compare(0, prefix.size(), prefix) == 0) return &h;
  return nullptr;
}

// The methods `path` has routes for, as an Allow header lists them ("GET, HEAD, POST").
std::string Server::Impl::allowed(const std::string& path) const {
  std::vector<std::string> methods;
  for (const auto& [key, h] : routes)
    if (key.second == path) methods.push_back(key.first);
  if (std::ranges::find(methods, "GET") != methods.end() &&
      std::ranges::find(methods, "HEAD") == methods.end())
    methods.push_back("HEAD");
  std::ranges::sort(methods);
  std::string out;
  for (const auto& m : methods) out += (out.empty() ? "" : ", ") + m;
  return out;
}

// The connection to close for a new one, claimed, or null if every one is serving a request.
std::shared_ptr<Session> Server::Impl::evictable() {
  std::lock_guard lock(sessions_mu);
  for (;;) {
    // A session whose destructor waits for this lock is going already (its place is about to
    // be free, but not yet): it is passed over.
    std::pair<int, std::int64_t> best{0, 0};
    const std::weak_ptr<Session>* pick = nullptr;
    for (const auto& [raw, weak] : sessions) {
      if (weak.expired()) continue;
      const auto rank = raw->eviction_rank();
      if (rank.first > best.first || (rank.first == best.first && rank.second < best.second)) {
        best = rank;
        pick = &weak;
      }
    }
    if (!pick || best.first == 0) return nullptr;
    // Null if it went after the scan, false if chosen meanwhile: either way it is passed over
    // on the next scan, so this ends.
    auto s = pick->lock();
    if (s && s->claim()) return s;
  }
}

void Server::Impl::accept() {
  // Each connection goes to the next loop in turn, and stays there.
  const std::size_t loop = next_loop++ % loops.size();
  acceptor.async_accept(loops[loop]->get_executor(),
                        beast::bind_front_handler(&Impl::on_accept, shared_from_this()));
}

void Server::Impl::on_accept(error_code ec, Socket socket) {
  if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
  if (!ec) {
    // All taken: a connection that is not serving a request makes room (one waiting or half
    // read, the oldest first), so that idle or trickling connections cannot lock everyone
    // out; only when every one is serving a request is the new one closed unanswered.
    std::shared_ptr<Session> room;
    if (open.load() >= options.max_connections && !(room = evictable())) {
      ++counts.refused_connections;
      error_code ignored;
      socket.close(ignored);
    } else {
      if (room) room->evict();
      ++open;
      ++counts.accepted;
      std::make_shared<Session>(std::move(socket), shared_from_this())->start();
    }
  }
  // Running out of descriptors (EMFILE) must not spin: accept again after a pause.
  if (ec == net::error::no_descriptors) {
    auto t = std::make_shared<net::steady_timer>(acceptor.get_executor(),
                                                 std::chrono::milliseconds(100));
    t->async_wait([self = shared_from_this(), t](error_code) { self->accept(); });
    return;
  }
  accept();
}

// Logs what was refused or cut since the last report, if anything (the `http_limits` line).
void Server::Impl::report(bool last) {
  auto delta = [](std::atomic<uint64_t>& now, std::atomic<uint64_t>& then) {
    const uint64_t v = now.load();
    const uint64_t d = v - then.load();
    then = v;
    return d;
  };
  const uint64_t busy = delta(counts.busy_503, reported.busy_503);
  const uint64_t large = delta(counts.too_large, reported.too_large);
  const uint64_t bad = delta(counts.bad_request, reported.bad_request);
  const uint64_t unsupported = delta(counts.unsupported, reported.unsupported);
  const uint64_t idle = delta(counts.idle_closed, reported.idle_closed);
  const uint64_t slow = delta(counts.slow_closed, reported.slow_closed);
  const uint64_t refused = delta(counts.refused_connections, reported.refused_connections);
  const uint64_t evicted = delta(counts.evicted, reported.evicted);
  if (busy + large + bad + unsupported + idle + slow + refused + evicted == 0 && !last) return;
  log.warn("http_limits", {{"busy_503", std::to_string(busy)},
                           {"too_large_413_431", std::to_string(large)},
                           {"bad_400", std::to_string(bad)},
                           {"unsupported_411_417_501", std::to_string(unsupported)},
                           {"idle_closed", std::to_string(idle)},
                           {"slow_closed", std::to_string(slow)},
                           {"refused", std::to_string(refused)},
                           {"evicted", std::to_string(evicted)},
                           {"open", std::to_string(open.load())}});
}

void Server::Impl::schedule_report() {
  report_timer.expires_after(options.report_every);
  report_timer.async_wait([self = shared_from_this()](error_code ec) {
    if (ec || self->stopping) return;
    self->report(false);
    self->schedule_report();
  });
}

Server::Server(ServerOptions options, Logger& log) : impl_(std::make_shared<Impl>(options, log)) {}

Server::~Server() {
  stop();
  impl_->pool.join();
}

void Server::route(std::string method, std::string path, Handler handler) {
  impl_->routes[{std::move(method), std::move(path)}] = Impl::Route{std::move(handler), nullptr};
}

void Server::route_async(std::string method, std::string path, AsyncHandler handler) {
  impl_->routes[{std::move(method), std::move(path)}] = Impl::Route{nullptr, std::move(handler)};
}

void Server::mount(std::string prefix, Handler handler) {
  auto& m = impl_->mounts;
  m.emplace_back(std::move(prefix), Impl::Route{std::move(handler), nullptr});
  std::stable_sort(m.begin(), m.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

int Server::bind(const std::string& host, int port) {
  error_code ec;
  const auto address = net::ip::make_address(host, ec);
  if (ec) {
    tcp::resolver resolver(*impl_->loops[0]);
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty()) return -1;
    return bind(results.begin()->endpoint().address().to_string(), port);
  }
  auto& a = impl_->acceptor;
  const tcp::endpoint ep(address, static_cast<unsigned short>(port));
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  // A long backlog absorbs bursts of new connections (each is accepted at once anyway).
  if (!ec) a.listen(1024, ec);
  if (ec) {
    error_code ignored;
    a.close(ignored);
    return -1;
  }
  impl_->bound = true;
  return a.local_endpoint().port();
}

bool Server::run() {
  Impl& s = *impl_;
  if (!s.bound) return false;
  s.running = true;
  // A loop with no connection yet must not return at once; stop() lets them go.
  for (auto& loop : s.loops) s.keep_running.push_back(net::make_work_guard(*loop));
  net::dispatch(s.acceptor.get_executor(), [self = impl_] { self->accept(); });
  s.schedule_report();
  std::vector<std::thread> extra;
  for (std::size_t i = 1; i < s.loops.size(); ++i) {
    extra.emplace_back([loop = s.loops[i].get()] { loop->run(); });
    storage::name_thread(extra.back(), "bangfu-io");
  }
  s.loops[0]->run();
  for (auto& t : extra) t.join();
  // Every handler posted its answer back before the io_context ran out of work.
  s.pool.join();
  s.report(true);
  s.running = false;
  return true;
}

void Server::stop() {
  Impl& s = *impl_;
  if (s.stopping.exchange(true)) return;
  // Collected under the lock, shut outside it: the last reference to a session may be dropped
  // here, and its destructor takes the lock. Shut before the loops are let go below: a loop
  // whose last connection ended meanwhile would otherwise return first, and the shut posted to
  // it afterwards would hold its session, and so the server, in a queue nobody runs (a cycle
  // that LeakSanitizer caught).
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(s.sessions_mu);
    for (const auto& [ptr, weak] : s.sessions)
      if (auto session = weak.lock()) live.push_back(std::move(session));
  }
  for (const auto& session : live) session->shut();
  net::post(s.acceptor.get_executor(), [self = impl_] {
    error_code ignored;
    self->acceptor.close(ignored);
    self->report_timer.cancel();
    // No connection is accepted after this (the acceptor's handlers run on this loop): each loop
    // may end once its connections have.
    for (auto& guard : self->keep_running) guard.reset();
  });
}

bool Server::is_running() const {
  return impl_->running;
}

ServerCounters Server::counters() const {
  const Counts& c = impl_->counts;
  return {c.accepted,    c.refused_connections, c.requests,    c.busy_503,    c.too_large,
          c.bad_request, c.unsupported,         c.idle_closed, c.slow_closed, c.evicted};
}

}  // namespace bot::http
