#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "bot/http/message.h"
#include "bot/log.h"

namespace bot::http {

/// Limits and deadlines of the core. The defaults are the service's.
struct ServerOptions {
  int io_threads = 2;   // threads running the event loop (reads, parsing, writes)
  int workers = 8;      // threads running handlers (config `threads`)
  int max_queue = 256;  // complete requests waiting for a worker (or, async, for their answer)
  int max_connections = 1024;  // connections held at once; beyond: one not serving a request
                               // is closed for the new one (or, if all are, the new one)
  std::size_t header_limit = 16 * 1024;            // request line + headers; beyond: 431
  std::size_t body_limit = 64 * 1024;              // beyond: 413 (a declared length at once)
  std::chrono::milliseconds idle_timeout{5000};    // waiting for a request's first byte
  std::chrono::milliseconds header_timeout{5000};  // first byte → end of the header
  std::chrono::milliseconds body_timeout{5000};    // end of the header → end of the body
  std::chrono::milliseconds write_timeout{5000};   // writing one response
  std::chrono::milliseconds drain_timeout{2000};   // reading a refused client's rest
  int keep_alive_max = 100;                        // requests per connection
  std::chrono::milliseconds report_every{10000};   // period of the `http_limits` log line
};

/// What the core has refused or cut since it started (for tests, benchmarks and the log).
struct ServerCounters {
  uint64_t accepted = 0;
  uint64_t refused_connections = 0;  // over max_connections, every connection serving a request
  uint64_t requests = 0;             // complete requests handed to a handler
  uint64_t busy_503 = 0;             // queue full
  uint64_t too_large = 0;            // 413 and 431
  uint64_t bad_request = 0;          // 400 (unparsable)
  uint64_t unsupported = 0;          // 411, 417, 501
  uint64_t idle_closed = 0;          // no request started within idle_timeout
  uint64_t slow_closed = 0;          // a header or body not complete within its deadline
  uint64_t evicted = 0;  // closed while waiting for (or reading) a request, to make room
};

/// The HTTP/1.1 core: Boost.Beast over `io_threads` Boost.Asio event loops (an io_context each,
/// run by one thread); connections are dealt out to them in turn and stay on theirs. Each
/// connection is read into its own buffer by Beast's parser, under the header and body limits
/// and the idle, header and body deadlines; no socket is polled again until new bytes arrive
/// (Asio's reactor). A request reaches a worker only when complete; the worker runs the handler
/// (which may block) and posts the answer back to the connection's loop. An async route's
/// handler runs on the loop itself and answers through a Reply from whichever thread finishes
/// its work (message.h), with no worker in between. Keep-alive and pipelined requests are
/// served in order. Refused, before a handler sees them: a POST/PUT/PATCH without
/// Content-Length (411), any Transfer-Encoding (501), any Expect (417), a head over the limit
/// (431), a declared body over the limit (413), an unparsable request (400); a full queue gets
/// 503 with Retry-After: 1. A HEAD without a route of its own goes to the GET route of its path,
/// and no answer to a HEAD carries a body (its Content-Length is the body's that was dropped).
/// A target in absolute form (`http://host/path?query`) is handled as its path and query.
/// Knows nothing of WeCom: policies live in the handlers mounted on it.
class Server {
 public:
  Server(ServerOptions options, Logger& log);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Routes `method` + exact `path` to `handler`. Call before run().
  void route(std::string method, std::string path, Handler handler);
  /// Routes `method` + exact `path` to `handler`, run on the event loop without a worker (it
  /// must not block; message.h). Call before run().
  void route_async(std::string method, std::string path, AsyncHandler handler);
  /// Routes every request whose path starts with `prefix` (e.g. "/office/") to `handler`, any
  /// method. Exact routes win; among prefixes the longest wins. Call before run().
  void mount(std::string prefix, Handler handler);

  /// Binds host:port (port 0: any free port) and listens. Returns the bound port, or -1.
  int bind(const std::string& host, int port);
  /// Serves until stop(); blocks (the calling thread is one of the io threads). False if not
  /// bound.
  bool run();
  /// Stops accepting; connections waiting for (or in the middle of) a request are closed, and
  /// requests already complete are answered; then run() returns. Thread-safe, idempotent.
  void stop();
  bool is_running() const;
  ServerCounters counters() const;

 private:
  friend class Session;  // a connection (server.cpp)
  friend struct Reply::State;
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace bot::http
