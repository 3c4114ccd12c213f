#include "bot/log.h"

#include <ctime>

#include "storage/thread_name.h"

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

// Held request lines past this size are written by the caller at once rather than kept.
constexpr std::size_t kMaxHeld = 256 * 1024;

}  // namespace

StreamLogger::StreamLogger(std::ostream& out, std::chrono::milliseconds batch)
    : out_(out), batch_(batch) {
  if (batch_.count() > 0) {
    batches_ = std::thread([this] { run_batches(); });
    storage::name_thread(batches_, "bangfu-log");
  }
}

StreamLogger::~StreamLogger() {
  if (batches_.joinable()) {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake_.notify_one();
    batches_.join();
  }
  write_held_then({});
}

std::string StreamLogger::format(std::string_view level, std::string_view event, Fields fields) {
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
  return line;
}

void StreamLogger::write_held_then(std::string_view line) {
  std::lock_guard out_lock(out_mu_);
  std::string held;
  {
    std::lock_guard lock(mu_);
    held.swap(held_);
  }
  if (held.empty() && line.empty()) return;
  held += line;
  out_.write(held.data(), static_cast<std::streamsize>(held.size()));
  out_.flush();
}

void StreamLogger::log(std::string_view level, std::string_view event, Fields fields) {
  write_held_then(format(level, event, fields));
}

void StreamLogger::request(std::string_view event, Fields fields) {
  if (batch_.count() <= 0) return log("info", event, fields);
  std::string line = format("info", event, fields);
  bool first = false;
  {
    std::lock_guard lock(mu_);
    if (held_.size() + line.size() <= kMaxHeld) {
      first = held_.empty();
      held_ += line;
      line.clear();
    }
  }
  if (!line.empty()) return write_held_then(line);  // too much held: write it all now
  if (first) wake_.notify_one();
}

void StreamLogger::run_batches() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait(lock, [this] { return stopping_ || !held_.empty(); });
    if (stopping_) break;
    // Let the batch fill for one interval (cut short by the destructor), then write it.
    wake_.wait_for(lock, batch_, [this] { return stopping_; });
    lock.unlock();
    write_held_then({});
    lock.lock();
  }
}

}  // namespace bot
