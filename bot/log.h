#pragma once

#include <initializer_list>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace bot {

/// Structured log: one line per event, `ts=… level=… event=… key=value …`. Values with spaces or
/// quotes are quoted. Never pass secrets or decrypted message bodies. Thread-safe.
class Logger {
 public:
  using Fields = std::initializer_list<std::pair<std::string_view, std::string>>;
  virtual ~Logger() = default;
  virtual void log(std::string_view level, std::string_view event, Fields fields) = 0;
  void info(std::string_view event, Fields f = {}) { log("info", event, f); }
  void warn(std::string_view event, Fields f = {}) { log("warn", event, f); }
  void error(std::string_view event, Fields f = {}) { log("error", event, f); }
};

/// Writes to a stream (stderr in the service).
class StreamLogger : public Logger {
 public:
  explicit StreamLogger(std::ostream& out) : out_(out) {}
  void log(std::string_view level, std::string_view event, Fields fields) override;

 private:
  std::mutex mu_;  // guards out_ and the two below
  std::ostream& out_;
  long long ts_second_ = -1;  // the unix second ts_text_ shows
  std::string ts_text_;
};

}  // namespace bot
