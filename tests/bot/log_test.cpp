#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>
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
