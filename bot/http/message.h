#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bot::http {

/// One complete HTTP request as a handler sees it: framework-neutral plain data, so a handler
/// (the WeCom callback, the office dashboard) does not depend on the library that parsed it.
struct Request {
  std::string method;  // "GET", "POST", … as sent
  std::string target;  // the request target as sent: path and query, still percent-encoded
  std::string path;    // the target's path, percent-decoded
  std::string query;   // the target's query without '?', still percent-encoded ("" if none)
  std::vector<std::pair<std::string, std::string>> headers;  // in arrival order, names as sent
  std::string body;
  std::string remote_addr;  // the peer's IP address
  std::string id;           // this request's id (also sent back as X-Request-Id and logged)

  /// The first header of that name (case-insensitive), or nullopt.
  std::optional<std::string> header(std::string_view name) const;
  /// The first query parameter of that name, percent-decoded ('+' reads as a space); "" when
  /// absent or when the query is malformed.
  std::string param(std::string_view name) const;
  /// param() of each name, in the order given, from one pass over the query: a callback reads
  /// three, and each pass was about 0.6 µs of an event loop's time per request.
  std::vector<std::string> params(std::initializer_list<std::string_view> names) const;
};

/// The answer a handler gives. The core adds Content-Length, Connection and X-Request-Id.
struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. Content-Type, Retry-After
  std::string body;

  /// A response with a body of `content_type`.
  static Response with(int status, std::string body,
                       std::string content_type = "text/plain; charset=utf-8");
  /// Replaces (or adds) the header `name` (case-insensitive).
  void set_header(std::string name, std::string value);
};

/// Handlers run on the server's worker threads (they may block on the Store), several at once:
/// they must be thread-safe. An exception thrown by a handler is logged and answered 500.
using Handler = std::function<Response(const Request&)>;

/// The way to answer one request given to an AsyncHandler. Copyable; every copy answers the
/// same request, and only the first answer counts (later ones are ignored). If every copy is
/// gone without an answer, the request is answered 500 and logged. Holding one keeps the
/// server's run() from returning. Thread-safe.
class Reply {
 public:
  /// Answers now, from any thread.
  void send(Response res) const;
  /// Runs `make` on the connection's event-loop thread and answers with what it returns (500
  /// if it throws). For short work after a slow step elsewhere, e.g. encrypting an answer that
  /// the Store's writer has just committed, so that the writer's thread is free at once.
  void send_from(std::function<Response()> make) const;
  /// Runs `work` on one of the server's workers (it may block); `work` answers through this
  /// Reply, then or later (500 if it throws before answering).
  void on_worker(std::function<void()> work) const;

  struct State;  // the connection and the request's id (bot/http/server.cpp)
  explicit Reply(std::shared_ptr<State> state) : state_(std::move(state)) {}

 private:
  std::shared_ptr<State> state_;
};

/// A handler that runs on the connection's event-loop thread and must not block: it answers
/// through `reply`, at once or later from any thread (e.g. when the Store's writer has committed
/// the request's write). An exception thrown before it answered is logged and answered 500.
/// Until answered the request counts against the server's max_queue (beyond it: 503).
using AsyncHandler = std::function<void(const Request&, Reply reply)>;

}  // namespace bot::http
