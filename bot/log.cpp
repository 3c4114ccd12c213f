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
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::string line = "ts=";
  line += ts;
  line += " level=";
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
  out_ << line << std::flush;
}

}  // namespace bot
