#pragma once

#include <chrono>
#include <condition_variable>
#include <initializer_list>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
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
  /// An info line of which there is one or two per request (`http`, `message`): a logger may hold
  /// it briefly to write many at once (StreamLogger with a batch interval). Its order among the
  /// other lines is kept.
  virtual void request(std::string_view event, Fields f) { log("info", event, f); }
};

/// Writes to a stream (stderr in the service), each line as one write.
///
/// With a `batch` interval above zero, request() lines are held and written together at most
/// `batch` after the first of them, by a thread of the logger's own; any other line first writes
/// what is held, then itself, at once. Under load that is one write for hundreds of lines instead
/// of two per message (those two were 4.7% of the service's CPU in a profile, BENCHMARKS.md §9).
/// What is held when the logger is destroyed is written then; a crash loses the request lines
/// still held (those of the last `batch`, never more than 256 KiB).
class StreamLogger : public Logger {
 public:
  explicit StreamLogger(std::ostream& out, std::chrono::milliseconds batch = {});
  ~StreamLogger() override;
  StreamLogger(const StreamLogger&) = delete;
  StreamLogger& operator=(const StreamLogger&) = delete;

  void log(std::string_view level, std::string_view event, Fields fields) override;
  void request(std::string_view event, Fields fields) override;

 private:
  // The line with its "ts=" filled in (takes mu_ for the second's text).
  std::string format(std::string_view level, std::string_view event, Fields fields);
  void write_held_then(std::string_view line);  // takes out_mu_, then mu_
  void run_batches();

  std::ostream& out_;
  const std::chrono::milliseconds batch_;
  std::mutex out_mu_;         // guards out_; taken before mu_, so held lines keep their order
  std::mutex mu_;             // guards the five below
  long long ts_second_ = -1;  // the unix second ts_text_ shows
  std::string ts_text_;
  std::string held_;  // request lines not yet written
  bool stopping_ = false;
  std::condition_variable wake_;  // the batch thread: held_ became non-empty, or stopping_
  std::thread batches_;           // only with batch_ > 0
};

}  // namespace bot
