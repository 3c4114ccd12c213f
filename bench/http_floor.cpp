// bangfu's HTTP core with nothing behind it: GET /floor is answered "ok" at once, on the event
// loop (an async route), with the service's defaults (bot::http::ServerOptions), request ids
// and access log (batched to stderr, as `bangfu serve` logs). What it costs per request is what
// the core costs before any of the callback's work; bench/http_floor.sh sets it beside nginx
// answering the same request. See BENCHMARKS.md §9, "What 60 µs leaves".
//
//   bangfu_http_floor [PORT]     # prints "listening on http://127.0.0.1:PORT"; SIGTERM stops it
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "bot/http/server.h"
#include "bot/log.h"

int main(int argc, char** argv) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // before any thread starts

  bot::StreamLogger log(std::cerr, std::chrono::milliseconds(20));
  bot::http::Server server(bot::http::ServerOptions{}, log);
  server.route_async("GET", "/floor", [](const bot::http::Request&, bot::http::Reply reply) {
    reply.send(bot::http::Response::with(200, "ok\n"));
  });
  const int port = server.bind("127.0.0.1", argc > 1 ? std::atoi(argv[1]) : 0);
  if (port < 0) {
    std::cerr << "bangfu_http_floor: cannot listen on 127.0.0.1\n";
    return 1;
  }
  std::cout << "listening on http://127.0.0.1:" << port << std::endl;
  std::thread waiter([&] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    server.stop();
  });
  server.run();
  waiter.join();
}
