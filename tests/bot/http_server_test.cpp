#include <httplib.h>
#include <catch2/catch.hpp>

#include <sstream>
#include <stdexcept>
#include <thread>

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

  res = c.Get("/boom");
  REQUIRE(res);
  CHECK(res->status == 500);
  CHECK(res->body == "internal error\n");
  CHECK(r.logged.str().find("event=request_failed") != std::string::npos);
  CHECK(r.logged.str().find("disk on fire") != std::string::npos);
  CHECK(r.server.counters().requests == 6);
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
