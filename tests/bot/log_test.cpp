#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bot/log.h"

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Unix seconds of a line's "ts=YYYY-MM-DDTHH:MM:SSZ".
std::time_t ts_of(const std::string& line) {
  std::tm tm{};
  std::istringstream in(line.substr(3, 20));
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
  REQUIRE_FALSE(in.fail());
  return timegm(&tm);
}

}  // namespace

TEST_CASE("a log line: the time in UTC, level, event, then the fields, quoted when needed",
          "[log]") {
  std::ostringstream out;
  bot::StreamLogger log(out);
  const std::time_t before = std::time(nullptr);
  log.info("message", {{"rid", "r-1"}, {"note", "two words"}, {"q", "say \"hi\""}});
  log.warn("http_limits", {{"slow_closed", "1"}, {"empty", ""}});
  const std::time_t after = std::time(nullptr);

  const auto lines = lines_of(out.str());
  REQUIRE(lines.size() == 2);
  const std::regex ts(R"(^ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ )");
  for (const auto& l : lines) {
    CHECK(std::regex_search(l, ts));
    CHECK(ts_of(l) >= before);
    CHECK(ts_of(l) <= after);
  }
  CHECK(lines[0].substr(24) ==
        R"(level=info event=message rid=r-1 note="two words" q="say \"hi\"")");
  CHECK(lines[1].substr(24) == R"(level=warn event=http_limits slow_closed=1 empty="")");
}

TEST_CASE("lines logged from several threads come out whole", "[log]") {
  std::ostringstream out;
  bot::StreamLogger log(out);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&log, t] {
      for (int i = 0; i < 500; ++i)
        log.info("message", {{"thread", std::to_string(t)}, {"i", std::to_string(i)}});
    });
  for (auto& th : threads) th.join();
  const auto lines = lines_of(out.str());
  REQUIRE(lines.size() == 2000);
  const std::regex whole(
      R"(^ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ level=info event=message thread=[0-3] i=\d+$)");
  for (const auto& l : lines) REQUIRE(std::regex_match(l, whole));
}

TEST_CASE("held request lines come out in order: before the next other line, or at the end",
          "[log]") {
  std::ostringstream out;
  {
    // A batch far longer than the test: only another line or the destructor writes them.
    bot::StreamLogger log(out, std::chrono::hours(1));
    log.request("http", {{"rid", "r-1"}});
    log.request("message", {{"rid", "r-2"}});
    log.warn("http_limits", {{"slow_closed", "1"}});  // writes what is held, then itself
    REQUIRE(lines_of(out.str()).size() == 3);
    log.request("http", {{"rid", "r-3"}});
    CHECK(lines_of(out.str()).size() == 3);  // held
  }
  const auto lines = lines_of(out.str());
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].substr(24) == "level=info event=http rid=r-1");
  CHECK(lines[1].substr(24) == "level=info event=message rid=r-2");
  CHECK(lines[2].substr(24) == "level=warn event=http_limits slow_closed=1");
  CHECK(lines[3].substr(24) == "level=info event=http rid=r-3");
}

TEST_CASE("held request lines are written within the batch interval with nothing else logged",
          "[log]") {
  const auto path = std::filesystem::temp_directory_path() /
                    ("bangfu-log-test-" + std::to_string(::getpid()) + ".log");
  std::ofstream file(path);
  bot::StreamLogger log(file, std::chrono::milliseconds(20));
  log.request("http", {{"rid", "r-1"}});
  const auto read = [&] {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  // Until the whole line is there (a read may catch a write half done).
  while (!read().ends_with('\n') && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(read().substr(24) == "level=info event=http rid=r-1\n");
  std::filesystem::remove(path);
}

TEST_CASE("held and direct lines from several threads come out whole, each thread's in order",
          "[log]") {
  std::ostringstream out;
  {
    bot::StreamLogger log(out, std::chrono::milliseconds(1));
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&log, t] {
        for (int i = 0; i < 500; ++i) {
          const bot::Logger::Fields f = {{"thread", std::to_string(t)}, {"i", std::to_string(i)}};
          if (i % 7 == 0)
            log.warn("message", f);
          else
            log.request("message", f);
        }
      });
    for (auto& th : threads) th.join();
  }
  const auto lines = lines_of(out.str());
  REQUIRE(lines.size() == 2000);
  const std::regex whole(R"(^ts=\S+ level=(info|warn) event=message thread=([0-3]) i=(\d+)$)");
  int next[4] = {0, 0, 0, 0};
  for (const auto& l : lines) {
    std::smatch m;
    REQUIRE(std::regex_match(l, m, whole));
    const int t = std::stoi(m[2]), i = std::stoi(m[3]);
    REQUIRE(i == next[t]);
    CHECK((m[1] == "warn") == (i % 7 == 0));
    ++next[t];
  }
}
