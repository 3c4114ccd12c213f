#include "bot/log.h"

#include <chrono>
#include <ctime>

namespace bot {
namespace {

void put_value(std::string& line, std::string_view v) {
  const bool plain = !v.empty() && v.find_first_of(" \"=\n\t") == std::string_view::npos;
  if (plain) {
    line += v;
    return;
  }
  line += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') line += '\\';
    if (c == '\n') {
      line += "\\n";
      continue;
    }
    line += c;
  }
  line += '"';
}

}  // namespace

void StreamLogger::log(std::string_view level, std::string_view event, Fields fields) {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  // "ts=YYYY-MM-DDTHH:MM:SSZ" is filled in under the lock, from the second's text kept there.
  std::string line = "ts=....-..-..T..:..:..Z level=";
  constexpr std::size_t kTsAt = 3, kTsLen = 20;
  line += level;
  line += " event=";
  line += event;
  for (const auto& [k, v] : fields) {
    line += ' ';
    line += k;
    line += '=';
    put_value(line, v);
  }
  line += '\n';
  std::lock_guard lock(mu_);
  if (t != ts_second_) {
    // gmtime_r and strftime once a second rather than for every line (two lines a message).
    std::tm tm{};
    gmtime_r(&t, &tm);
    char ts[32];
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    ts_text_ = ts;
    ts_second_ = t;
  }
  line.replace(kTsAt, kTsLen, ts_text_);
  out_.write(line.data(), static_cast<std::streamsize>(line.size()));
  out_.flush();
}

}  // namespace bot
