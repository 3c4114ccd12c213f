#include <httplib.h>
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bot/http/server.h"

namespace {

using bot::http::Request;
using bot::http::Response;

// A real core on 127.0.0.1 with an OS-assigned port, stopped and joined on scope exit.
struct Running {
  std::ostringstream logged;
  bot::StreamLogger log{logged};
  bot::http::Server server;
  int port = -1;
  std::thread thread;

  explicit Running(bot::http::ServerOptions o = {}) : server(o, log) {}
  void start() {
    port = server.bind("127.0.0.1", 0);
    REQUIRE(port > 0);
    thread = std::thread([this] { server.run(); });
    while (!server.is_running()) std::this_thread::yield();
  }
  ~Running() {
    server.stop();
    if (thread.joinable()) thread.join();
  }
};

}  // namespace

TEST_CASE("A query parameter is found by its decoded name, its value decoded", "[http]") {
  const auto param = [](std::string target, std::string_view name) {
    Request q;
    q.target = target;
    q.query = target.substr(target.find('?') + 1);
    return q.param(name);
  };
  CHECK(param("/cb?msg_signature=ab12&timestamp=1765000000&nonce=n1", "timestamp") == "1765000000");
  CHECK(param("/cb?a=x%2By+z", "a") == "x+y z");
  CHECK(param("/cb?%61=1", "a") == "1");          // the name percent-encoded
  CHECK(param("/cb?my+key=2", "my key") == "2");  // '+' in a name is a space too
  CHECK(param("/cb?a=1&a=2", "a") == "1");        // the first one
  CHECK(param("/cb?a&b=2", "a") == "");
  CHECK(param("/cb?ab=1", "a") == "");
  CHECK(param("/cb?a=1", "ab") == "");
  CHECK(param("/cb?b=1", "a") == "");
}

TEST_CASE("Several query parameters from one pass, as param() finds each", "[http]") {
  const auto params = [](std::string target, std::initializer_list<std::string_view> names) {
    Request q;
    q.query = target.substr(target.find('?') + 1);
    return q.params(names);
  };
  using V = std::vector<std::string>;
  // In the order asked, whatever the query's order; absent ones "".
  CHECK(params("/cb?nonce=n1&timestamp=1765000000&msg_signature=ab12",
               {"msg_signature", "timestamp", "nonce", "echostr"}) ==
        V{"ab12", "1765000000", "n1", ""});
  CHECK(params("/cb?a=1&a=2&b=3", {"a", "b"}) == V{"1", "3"});       // the first of each
  CHECK(params("/cb?%61=x%2By+z&b", {"b", "a"}) == V{"", "x+y z"});  // decoded, no value
  CHECK(params("/cb?a=1", {"a", "a"}) == V{"1", "1"});               // a name asked twice
  CHECK(params("/cb?", {"a"}) == V{""});
}

TEST_CASE("routes, mounts, 404, 405 and a failing handler", "[http]") {
  Running r;
  r.server.route("GET", "/healthz", [](const Request&) { return Response::with(200, "ok\n"); });
  r.server.route("POST", "/echo", [](const Request& q) {
    return Response::with(200, q.method + " " + q.path + " " + q.param("a") + " " + q.body + " " +
                                   q.header("x-ThinG").value_or("-"));
  });
  r.server.mount("/office/", [](const Request& q) {
    return Response::with(200, "office " + q.path + " " + q.param("q") + " " + q.remote_addr);
  });
  r.server.mount("/office/api/", [](const Request& q) {
    return Response::with(201, "api " + q.target, "application/json");
  });
  r.server.route("GET", "/boom",
                 [](const Request&) -> Response { throw std::runtime_error("disk on fire"); });
  r.start();
  httplib::Client c("127.0.0.1", r.port);
  c.set_url_encode(false);  // the targets below are sent as written

  auto res = c.Post("/echo?a=x%2By+z", {{"X-Thing", "t"}}, "body", "text/plain");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->body == "POST /echo x+y z body t");
  CHECK(res->has_header("X-Request-Id"));

  res = c.Get("/office/%E5%B8%AE?q=%E6%89%B6");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->body == "office /office/%E5%B8%AE 扶 127.0.0.1");

  res = c.Delete("/office/api/x?y=1");  // the longest prefix wins, any method
  REQUIRE(res);
  CHECK(res->status == 201);
  CHECK(res->body == "api /office/api/x?y=1");
  CHECK(res->get_header_value("Content-Type") == "application/json");

  res = c.Get("/nowhere");
  REQUIRE(res);
  CHECK(res->status == 404);
  res = c.Post("/healthz", "", "text/plain");
  REQUIRE(res);
  CHECK(res->status == 405);
  CHECK(res->get_header_value("Allow") == "GET, HEAD");  // a 405 says what the path takes
  res = c.Get("/echo");
  REQUIRE(res);
  CHECK(res->status == 405);
  CHECK(res->get_header_value("Allow") == "POST");

  res = c.Get("/boom");
  REQUIRE(res);
  CHECK(res->status == 500);
  CHECK(res->body == "internal error\n");
  CHECK(r.logged.str().find("event=request_failed") != std::string::npos);
  CHECK(r.logged.str().find("disk on fire") != std::string::npos);
  CHECK(r.server.counters().requests == 7);
}

TEST_CASE("a full queue is answered 503 with Retry-After, and the core drains on stop", "[http]") {
  bot::http::ServerOptions o;
  o.workers = 1;
  o.max_queue = 1;
  Running r(o);
  std::atomic<int> entered{0};
  std::atomic<bool> release{false};
  r.server.route("GET", "/slow", [&](const Request&) {
    ++entered;
    while (!release) std::this_thread::yield();
    return Response::with(200, "done\n");
  });
  r.start();
  // The first occupies the worker, the second waits in the queue, the third is refused.
  std::atomic<int> first{0}, second{0};  // statuses; -1: no answer
  auto get_slow = [&](std::atomic<int>& status) {
    auto res = httplib::Client("127.0.0.1", r.port).Get("/slow");
    status = res ? res->status : -1;
  };
  std::thread a([&] { get_slow(first); });
  while (entered < 1) std::this_thread::yield();
  std::thread b([&] { get_slow(second); });
  // The second is queued once the core counts it; poll the counters rather than sleep.
  while (r.server.counters().requests < 2) std::this_thread::yield();
  auto third = httplib::Client("127.0.0.1", r.port).Get("/slow");
  REQUIRE(third);
  CHECK(third->status == 503);
  CHECK(third->get_header_value("Retry-After") == "1");
  // stop() while both are in flight: both are still answered.
  r.server.stop();
  release = true;
  a.join();
  b.join();
  CHECK(first == 200);
  CHECK(second == 200);
  CHECK(r.server.counters().busy_503 == 1);
}

namespace {

// What a plain socket to 127.0.0.1:port got after sending `bytes`: every byte the server sent,
// in order, and how long after the sending it closed the connection (nullopt if it did not
// within `limit`).
struct Exchanged {
  std::string got;
  std::optional<std::chrono::milliseconds> closed_after;
};

Exchanged exchange(int port, const std::string& bytes,
                   std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  namespace net = boost::asio;
  net::io_context ioc;
  net::ip::tcp::socket s(ioc);
  s.connect({net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  if (!bytes.empty()) net::write(s, net::buffer(bytes));
  const auto t0 = std::chrono::steady_clock::now();
  s.non_blocking(true);
  Exchanged out;
  char buf[4096];
  while (std::chrono::steady_clock::now() - t0 < limit) {
    boost::system::error_code ec;
    const auto n = s.read_some(net::buffer(buf), ec);
    if (ec == net::error::would_block) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    if (ec || n == 0) {
      out.closed_after = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - t0);
      break;
    }
    out.got.append(buf, n);
  }
  return out;
}

// Sends `bytes` and waits (up to `limit`) for the server to close; how long that took, or
// nullopt if it did not close in time.
std::optional<std::chrono::milliseconds> closed_after(int port, const std::string& bytes,
                                                      std::chrono::milliseconds limit) {
  return exchange(port, bytes, limit).closed_after;
}

// The answers in what exchange() read, each from its status line to the next one's.
std::vector<std::string> answers_in(const std::string& got) {
  std::vector<std::string> answers;
  for (std::size_t at = got.find("HTTP/1.1 "); at != std::string::npos;) {
    const std::size_t next = got.find("HTTP/1.1 ", at + 1);
    answers.push_back(got.substr(at, next == std::string::npos ? std::string::npos : next - at));
    at = next;
  }
  return answers;
}

}  // namespace

TEST_CASE("idle and slow connections are closed at their deadlines and counted", "[http]") {
  bot::http::ServerOptions o;
  o.idle_timeout = std::chrono::milliseconds(300);
  o.header_timeout = std::chrono::milliseconds(300);
  o.body_timeout = std::chrono::milliseconds(300);
  Running r(o);
  r.server.route("POST", "/x", [](const Request&) { return Response::with(200, "ok\n"); });
  r.start();
  const auto limit = std::chrono::milliseconds(5000);
  // Nothing sent; half a head; a head and half its body. Each is closed no earlier than its
  // deadline (and, on any machine, long before the 5 s limit).
  const auto idle = closed_after(r.port, "", limit);
  const auto head = closed_after(r.port, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Le", limit);
  const auto body =
      closed_after(r.port, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc", limit);
  REQUIRE(idle);
  REQUIRE(head);
  REQUIRE(body);
  CHECK(idle->count() >= 250);
  CHECK(head->count() >= 250);
  CHECK(body->count() >= 250);
  const auto c = r.server.counters();
  CHECK(c.idle_closed == 1);
  CHECK(c.slow_closed == 2);
  CHECK(c.requests == 0);
}

TEST_CASE("when every connection is taken, one not serving a request makes room", "[http]") {
  bot::http::ServerOptions o;
  o.max_connections = 4;
  Running r(o);
  r.server.route("GET", "/healthz", [](const Request&) { return Response::with(200, "ok\n"); });
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  r.server.route("GET", "/slow", [released](const Request&) {
    released.wait();
    return Response::with(200, "slow\n");
  });
  r.start();
  namespace net = boost::asio;
  net::io_context ioc;
  const net::ip::tcp::endpoint at{net::ip::make_address("127.0.0.1"),
                                  static_cast<unsigned short>(r.port)};
  auto wait_for = [&](auto done) {
    for (int i = 0; i < 500 && !done(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return done();
  };

  // Four connections that send nothing hold every place.
  std::vector<net::ip::tcp::socket> idle;
  for (int i = 0; i < 4; ++i) {
    idle.emplace_back(ioc).connect(at);
    REQUIRE(wait_for([&] { return r.server.counters().accepted == static_cast<uint64_t>(i + 1); }));
  }
  // A new client is still served: the connection idle the longest is closed for it.
  httplib::Client c("127.0.0.1", r.port);
  auto res = c.Get("/healthz");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(wait_for([&] { return r.server.counters().evicted == 1; }));
  // Whether the server has closed `sock` (read without blocking: nothing to read is "open").
  auto closed = [](net::ip::tcp::socket& sock) {
    sock.non_blocking(true);
    char byte;
    boost::system::error_code ec;
    sock.read_some(net::buffer(&byte, 1), ec);
    return ec && ec != net::error::would_block;
  };
  CHECK(wait_for([&] { return closed(idle[0]); }));  // the oldest
  for (int i = 1; i < 4; ++i) CHECK_FALSE(closed(idle[i]));
  c.stop();

  // Four requests being served hold every place: a fifth connection is closed unanswered, and
  // none of the four is cut.
  std::vector<std::thread> slow;
  std::vector<std::string> answers(4);
  for (int i = 0; i < 4; ++i)
    slow.emplace_back([&, i] {
      answers[i] =
          exchange(r.port, "GET /slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").got;
    });
  REQUIRE(wait_for([&] { return r.server.counters().requests == 5; }));
  const auto refused = exchange(r.port, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
  CHECK(refused.got.empty());
  CHECK(refused.closed_after.has_value());
  CHECK(r.server.counters().refused_connections == 1);
  release.set_value();
  for (auto& t : slow) t.join();
  for (const auto& a : answers) CHECK(a.ends_with("\r\n\r\nslow\n"));
}

TEST_CASE("an async route answers from another thread, once; an unanswered one gets 500",
          "[http]") {
  bot::http::ServerOptions o;
  o.max_queue = 1;
  Running r(o);
  // Answers from a thread of its own, the way the Store's writer does; keeps a copy of the
  // Reply to answer twice (the second is ignored).
  std::mutex mu;
  std::vector<std::thread> answerers;
  std::atomic<bool> release{false};
  r.server.route_async("POST", "/later", [&](const Request& q, bot::http::Reply reply) {
    std::lock_guard lock(mu);
    answerers.emplace_back([&release, reply, body = q.body] {
      while (!release) std::this_thread::yield();
      reply.send_from([body] { return Response::with(200, "committed " + body); });
      reply.send(Response::with(409, "second answer\n"));
    });
  });
  r.server.route_async("GET", "/forgotten", [](const Request&, bot::http::Reply) {});
  r.server.route_async("GET", "/worker", [](const Request&, bot::http::Reply reply) {
    reply.on_worker([reply] { reply.send(Response::with(200, "from a worker\n")); });
  });
  r.start();

  std::atomic<int> first{0};
  std::thread a([&] {
    auto res = httplib::Client("127.0.0.1", r.port).Post("/later", "m1", "text/plain");
    first = res && res->body == "committed m1" ? res->status : -1;
  });
  while (r.server.counters().requests < 1) std::this_thread::yield();
  // The first waits for its answer and holds the only place in the queue: the next is refused.
  auto busy = httplib::Client("127.0.0.1", r.port).Get("/worker");
  REQUIRE(busy);
  CHECK(busy->status == 503);
  release = true;
  a.join();
  CHECK(first == 200);

  httplib::Client c("127.0.0.1", r.port);
  auto res = c.Get("/forgotten");
  REQUIRE(res);
  CHECK(res->status == 500);
  CHECK(r.logged.str().find("error=\"no answer\"") != std::string::npos);
  res = c.Get("/worker");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->body == "from a worker\n");
  for (auto& t : answerers) t.join();
}

TEST_CASE("connections are dealt out to every event loop, and stop() ends them all", "[http]") {
  bot::http::ServerOptions o;
  o.io_threads = 2;
  Running r(o);
  // An async route runs on its connection's loop: the thread that runs it names the loop.
  std::mutex mu;
  std::set<std::thread::id> loops;
  r.server.route_async("GET", "/where", [&](const Request&, bot::http::Reply reply) {
    {
      std::lock_guard lock(mu);
      loops.insert(std::this_thread::get_id());
    }
    reply.send(Response::with(200, "here\n"));
  });
  r.start();
  // Four keep-alive connections, each answered and then left open and idle.
  std::vector<std::unique_ptr<httplib::Client>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<httplib::Client>("127.0.0.1", r.port));
    clients.back()->set_keep_alive(true);
    auto res = clients.back()->Get("/where");
    REQUIRE(res);
    CHECK(res->status == 200);
  }
  {
    std::lock_guard lock(mu);
    CHECK(loops.size() == 2);
  }
  // Idle connections on both loops are closed and run() returns, well before any deadline
  // (idle_timeout is 5 s).
  const auto t0 = std::chrono::steady_clock::now();
  r.server.stop();
  r.thread.join();
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
  CHECK_FALSE(r.server.is_running());
}

TEST_CASE("a HEAD gets the GET's head and no body, on a connection that goes on", "[http]") {
  Running r;
  r.server.route("GET", "/healthz", [](const Request&) { return Response::with(200, "ok\n"); });
  r.server.route("POST", "/only-post", [](const Request&) { return Response::with(200, "p\n"); });
  r.server.mount("/office/", [](const Request& q) {
    return Response::with(200, "office page for " + q.method + "\n");
  });
  r.start();
  // Pipelined on one keep-alive connection: a body sent after any HEAD's head would be read as
  // the start of the next answer.
  const std::string got = exchange(r.port,
                                   "HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
                                   "HEAD /nowhere HTTP/1.1\r\nHost: a\r\n\r\n"
                                   "HEAD /only-post HTTP/1.1\r\nHost: a\r\n\r\n"
                                   "HEAD /office/x HTTP/1.1\r\nHost: a\r\n\r\n"
                                   "GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                              .got;
  const std::vector<std::string> answers = answers_in(got);
  REQUIRE(answers.size() == 5);
  CHECK(got.starts_with("HTTP/1.1 200 OK\r\n"));
  // The head a GET gets, Content-Length included, and nothing after the blank line.
  CHECK(answers[0].find("Content-Length: 3\r\n") != std::string::npos);
  CHECK(answers[0].ends_with("\r\n\r\n"));
  CHECK(answers[1].starts_with("HTTP/1.1 404 "));
  CHECK(answers[1].find("Content-Length: 10\r\n") != std::string::npos);
  CHECK(answers[1].ends_with("\r\n\r\n"));
  CHECK(answers[2].starts_with("HTTP/1.1 405 "));
  CHECK(answers[2].ends_with("\r\n\r\n"));
  // A mount sees the HEAD as it is and answers as for a GET; the body is dropped all the same.
  CHECK(answers[3].starts_with("HTTP/1.1 200 "));
  CHECK(answers[3].find("Content-Length: 21\r\n") != std::string::npos);
  CHECK(answers[3].ends_with("\r\n\r\n"));
  // The GET after them gets its body.
  CHECK(answers[4].starts_with("HTTP/1.1 200 "));
  CHECK(answers[4].ends_with("\r\n\r\nok\n"));
  CHECK(r.server.counters().requests == 5);
}

TEST_CASE("an HTTP/1.0 client that asks for keep-alive is told it has it", "[http]") {
  Running r;
  r.server.route("GET", "/healthz", [](const Request&) { return Response::with(200, "ok\n"); });
  r.start();
  // ab -k and some monitors speak HTTP/1.0 and keep a connection only when the answer says
  // "Connection: keep-alive"; without it they wait for the close, and each request took the
  // idle timeout.
  const auto kept = exchange(r.port,
                             "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                             "GET /healthz HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"
                             "GET /healthz HTTP/1.0\r\n\r\n");
  const auto answers = answers_in(kept.got);
  REQUIRE(answers.size() == 3);
  for (int i : {0, 1}) {
    CHECK(answers[i].starts_with("HTTP/1.1 200 "));
    CHECK(answers[i].find("\r\nConnection: keep-alive\r\n") != std::string::npos);
  }
  // The third asked for nothing: HTTP/1.0 closes after it.
  CHECK(answers[2].find("\r\nConnection: close\r\n") != std::string::npos);
  CHECK(kept.closed_after.has_value());
  // An HTTP/1.1 client is not told what it assumes.
  const auto v11 =
      exchange(r.port, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", std::chrono::milliseconds(300));
  CHECK(v11.got.starts_with("HTTP/1.1 200 "));
  CHECK(v11.got.find("Connection:") == std::string::npos);
  CHECK_FALSE(v11.closed_after.has_value());
}

TEST_CASE("a method no route has is 501, before any handler runs", "[http]") {
  Running r;
  int called = 0;
  r.server.route("GET", "/healthz", [&](const Request&) {
    ++called;
    return Response::with(200, "ok\n");
  });
  r.server.mount("/office/", [&](const Request&) {
    ++called;
    return Response::with(200, "office\n");
  });
  r.start();
  // Methods are case-sensitive: "get" is not GET, and a mount (which takes any method it knows)
  // does not see one nobody knows either.
  for (const std::string head :
       {"get /healthz HTTP/1.1\r\nHost: a\r\n\r\n", "BREW /office/x HTTP/1.1\r\nHost: a\r\n\r\n"}) {
    const auto answers = answers_in(exchange(r.port, head).got);
    REQUIRE(answers.size() == 1);
    CHECK(answers[0].starts_with("HTTP/1.1 501 "));
    CHECK(answers[0].ends_with("\r\n\r\nmethod not implemented\n"));
  }
  CHECK(called == 0);
  CHECK(r.server.counters().unsupported == 2);
}

TEST_CASE("a target in absolute form reaches the route of its path, its query intact", "[http]") {
  Running r;
  r.server.route("GET", "/healthz", [](const Request&) { return Response::with(200, "ok\n"); });
  r.server.route("POST", "/echo", [](const Request& q) {
    return Response::with(200, q.target + " " + q.path + " " + q.param("a") + "\n");
  });
  r.start();
  const std::string got =
      exchange(r.port,
               "GET http://127.0.0.1/healthz HTTP/1.1\r\nHost: a\r\n\r\n"
               "POST HTTPS://bot.example:8443/echo?a=%E5%B8%AE HTTP/1.1\r\nHost: a\r\n"
               "Content-Length: 0\r\n\r\n"
               "GET http://127.0.0.1 HTTP/1.1\r\nHost: a\r\n\r\n"
               "GET other:/healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
          .got;
  const std::vector<std::string> answers = answers_in(got);
  REQUIRE(answers.size() == 4);
  CHECK(answers[0].starts_with("HTTP/1.1 200 "));
  CHECK(answers[0].ends_with("\r\n\r\nok\n"));
  CHECK(answers[1].starts_with("HTTP/1.1 200 "));
  CHECK(answers[1].ends_with("\r\n\r\n/echo?a=%E5%B8%AE /echo 帮\n"));
  // No path is the root; a scheme other than http(s) is not taken apart.
  CHECK(answers[2].starts_with("HTTP/1.1 404 "));
  CHECK(answers[3].starts_with("HTTP/1.1 404 "));
}

TEST_CASE("a request the parser refuses is told what to mend", "[http]") {
  Running r;
  r.server.route("POST", "/echo", [](const Request& q) { return Response::with(200, q.body); });
  r.start();
  struct Case {
    std::string bytes;
    std::string status;
    std::string body;
  };
  const std::vector<Case> cases = {
      {"GET /echo HTTP/2.0\r\nHost: a\r\n\r\n", "505",
       "HTTP version not supported: send HTTP/1.1\n"},
      {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "505", "HTTP version not supported: send HTTP/1.1\n"},
      {"GET /echo HTTP/1.1\nHost: a\n\n", "400",
       "bad request: the request line must end with HTTP/1.1, then CRLF\n"},
      {"GET /echo\r\n\r\n", "400", "bad request: the request target is malformed\n"},
      {"GET /echo HTTP/1.1\r\nHost : a\r\n\r\n", "400",
       "bad request: a header field's name is malformed\n"},
      {"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", "400",
       "bad request: Content-Length must be one decimal number\n"},
      {"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
       "400", "bad request: Content-Length is given more than once\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.bytes);
    const auto answers = answers_in(exchange(r.port, c.bytes).got);
    REQUIRE(answers.size() == 1);
    CHECK(answers[0].starts_with("HTTP/1.1 " + c.status + " "));
    CHECK(answers[0].ends_with("\r\n\r\n" + c.body));
  }
  const auto counts = r.server.counters();
  CHECK(counts.unsupported == 2);
  CHECK(counts.bad_request == 5);
  CHECK(counts.requests == 0);
}

TEST_CASE("empty lines before a request line are passed over, a few of them", "[http]") {
  bot::http::ServerOptions o;
  o.idle_timeout = std::chrono::milliseconds(300);
  Running r(o);
  r.server.route("GET", "/healthz", [](const Request&) { return Response::with(200, "ok\n"); });
  r.server.route("POST", "/echo", [](const Request& q) { return Response::with(200, q.body); });
  r.start();
  // RFC 9112 2.2: a client may end a POST's body with a CRLF its Content-Length does not count;
  // the next request on the connection is still served.
  const auto answers = answers_in(exchange(r.port,
                                           "\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
                                           "POST /echo HTTP/1.1\r\nHost: a\r\n"
                                           "Content-Length: 2\r\n\r\nhi\r\n"
                                           "GET /healthz HTTP/1.1\r\nHost: a\r\n"
                                           "Connection: close\r\n\r\n")
                                      .got);
  REQUIRE(answers.size() == 3);
  CHECK(answers[0].starts_with("HTTP/1.1 200 "));
  CHECK(answers[1].ends_with("\r\n\r\nhi"));
  CHECK(answers[2].starts_with("HTTP/1.1 200 "));

  // The same in pieces, a CR apart from its LF: the request waits for the rest.
  {
    namespace net = boost::asio;
    net::io_context ioc;
    net::ip::tcp::socket s(ioc);
    s.connect({net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(r.port)});
    for (const std::string piece :
         {"\r", "\n\r", "\n", "GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"}) {
      net::write(s, net::buffer(piece));
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
    std::string got;
    boost::system::error_code ec;
    char buf[1024];
    while (!ec) got.append(buf, s.read_some(net::buffer(buf), ec));
    CHECK(got.starts_with("HTTP/1.1 200 "));
    CHECK(got.ends_with("\r\n\r\nok\n"));
  }

  // More than a few is not a client being lenient: refused. And empty lines alone leave a
  // connection idle: closed at the idle deadline, which they do not extend.
  std::string many;
  for (int i = 0; i < 9; ++i) many += "\r\n";
  const auto refused =
      answers_in(::exchange(r.port, many + "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").got);
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].starts_with("HTTP/1.1 400 "));
  const auto held = closed_after(r.port, "\r\n\r\n", std::chrono::milliseconds(5000));
  REQUIRE(held);
  CHECK(held->count() >= 250);
  // An empty line every 100 ms, six at most: closed at the first deadline (300 ms), not kept
  // alive by them (which would close it 300 ms after the sixth).
  {
    namespace net = boost::asio;
    net::io_context ioc;
    net::ip::tcp::socket s(ioc);
    s.connect({net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(r.port)});
    s.non_blocking(true);
    int sent = 0;
    bool closed = false;
    for (int tick = 1; tick <= 300 && !closed; ++tick) {
      boost::system::error_code ec;
      if (tick % 10 == 0 && sent < 6 && net::write(s, net::buffer(std::string("\r\n")), ec) == 2)
        ++sent;
      char c;
      s.read_some(net::buffer(&c, 1), ec);
      closed = ec && ec != net::error::would_block;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(closed);
    CHECK(sent < 6);
  }
  CHECK(r.server.counters().idle_closed == 2);
  CHECK(r.server.counters().slow_closed == 0);
}
