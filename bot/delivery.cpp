#include "bot/delivery.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include <openssl/evp.h>

#include "bot/groups.h"
#include "bot/wecom/crypto.h"
#include "storage/thread_name.h"

namespace bot {
namespace {

using nlohmann::json;

constexpr size_t kTitleMax = 300;  // bytes of the title repeated atop later parts
constexpr int kMaxAttempts = 50;   // transient failures: about 7 hours at the 10-minute cap
constexpr int kBusyAttempts = 4;   // errcode -1: the first try and at most 3 retries
constexpr int64_t kRateWindow = 60;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// The longest prefix of s of at most max bytes that ends on a UTF-8 code-point boundary.
size_t cut_at(std::string_view s, size_t max) {
  if (s.size() <= max) return s.size();
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n > 0 ? n : max;  // not UTF-8 at all: cut anyway rather than loop
}

std::string number(size_t k, size_t n) {
  return "（" + std::to_string(k) + "/" + std::to_string(n) + "）";
}

bool is_blank(const std::string& line) {
  return line.find_first_not_of(" \t\r") == std::string::npos;
}

// A line that introduces what follows: a heading or a line that is all bold. Better moved to the
// next part than left alone at the bottom of this one.
bool is_lead_in(const std::string& line) {
  if (!line.empty() && line[0] == '#') return true;
  return line.size() > 4 && line.rfind("**", 0) == 0 && line.compare(line.size() - 2, 2, "**") == 0;
}

struct Piece {
  std::string text;
  size_t source = 0;  // index of the input line it comes from
};

struct Packed {
  std::string text;
  std::vector<size_t> sources;  // input lines (indices) with anything in this part
};

size_t joined_size(const std::vector<Piece>& ps) {
  size_t n = 0;
  for (const auto& p : ps) n += p.text.size();
  return ps.empty() ? 0 : n + ps.size() - 1;
}

// Greedy packing of pieces into parts. Part 1 keeps `reserve` bytes free for its number; later
// parts start with `title` plus the number on a line of their own.
std::vector<std::vector<Piece>> pack(const std::vector<Piece>& pieces, size_t limit,
                                     size_t title_size, size_t reserve) {
  const size_t first_budget = limit - reserve;
  const size_t later_budget = limit - (title_size + reserve + 1);
  std::vector<std::vector<Piece>> parts(1);
  for (const Piece& p : pieces) {
    auto& cur = parts.back();
    const size_t budget = parts.size() == 1 ? first_budget : later_budget;
    if (cur.empty() && parts.size() > 1 && is_blank(p.text)) continue;  // no blank lead lines
    if (cur.empty() || joined_size(cur) + 1 + p.text.size() <= budget) {
      cur.push_back(p);
      continue;
    }
    std::vector<Piece> next;
    // Trailing blank lines stay behind (and are dropped); a lead-in line moves on with what it
    // introduces when both fit.
    while (!cur.empty() && is_blank(cur.back().text)) cur.pop_back();
    if (cur.size() > 1 && is_lead_in(cur.back().text) &&
        cur.back().text.size() + 1 + p.text.size() <= later_budget) {
      next.push_back(cur.back());
      cur.pop_back();
      while (!cur.empty() && is_blank(cur.back().text)) cur.pop_back();
    }
    if (!is_blank(p.text)) next.push_back(p);
    parts.push_back(std::move(next));
  }
  while (!parts.empty()) {
    auto& last = parts.back();
    while (!last.empty() && is_blank(last.back().text)) last.pop_back();
    if (!last.empty()) break;
    parts.pop_back();
  }
  return parts;
}

// Splits `lines` into numbered parts of at most `limit` bytes (see split_message).
std::vector<Packed> split_lines(const std::vector<std::string>& lines, size_t limit) {
  if (limit < 400) throw std::invalid_argument("split limit below 400 bytes");
  std::vector<Packed> out;
  size_t total = 0;
  for (const auto& l : lines) total += l.size() + 1;
  if (lines.empty()) return out;
  if (total - 1 <= limit) {
    Packed p;
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) p.text += '\n';
      p.text += lines[i];
      p.sources.push_back(i);
    }
    while (!p.text.empty() && p.text.back() == '\n') p.text.pop_back();
    out.push_back(std::move(p));
    return out;
  }
  const std::string title = lines[0].substr(0, cut_at(lines[0], kTitleMax));
  // The number's width depends on how many parts there are: try 1 digit, then 2, …
  for (size_t digits = 1;; ++digits) {
    size_t most = 1;
    for (size_t i = 0; i < digits; ++i) most *= 10;
    const size_t reserve = number(most - 1, most - 1).size();
    const size_t smallest = limit - (title.size() + reserve + 1);
    std::vector<Piece> pieces;
    for (size_t i = 0; i < lines.size(); ++i) {
      std::string_view rest = lines[i];
      do {
        const size_t n = cut_at(rest, smallest);
        pieces.push_back({std::string(rest.substr(0, n)), i});
        rest.remove_prefix(n);
      } while (!rest.empty());
    }
    const auto parts = pack(pieces, limit, title.size(), reserve);
    if (parts.size() >= most) continue;
    for (size_t k = 0; k < parts.size(); ++k) {
      Packed p;
      const std::string num = number(k + 1, parts.size());
      if (k > 0) p.text = title + num + "\n";
      for (size_t j = 0; j < parts[k].size(); ++j) {
        if (j) p.text += '\n';
        p.text += parts[k][j].text;
        if (k == 0 && j == 0) p.text += num;
        if (p.sources.empty() || p.sources.back() != parts[k][j].source)
          p.sources.push_back(parts[k][j].source);
      }
      out.push_back(std::move(p));
    }
    return out;
  }
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::string::size_type start = 0;
  while (start <= text.size()) {
    auto nl = text.find('\n', start);
    if (nl == std::string::npos) {
      if (start < text.size()) lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  while (!lines.empty() && is_blank(lines.back())) lines.pop_back();
  return lines;
}

}  // namespace

std::vector<std::string> split_message(const std::string& text, size_t limit) {
  std::vector<std::string> out;
  for (auto& p : split_lines(lines_of(text), limit)) out.push_back(std::move(p.text));
  return out;
}

std::string markdown_body(const std::string& content) {
  return dump({{"msgtype", "markdown"}, {"markdown", {{"content", content}}}});
}

std::string image_body(std::string_view image) {
  if (image.size() > kImageLimit)
    throw std::length_error("image_body: " + std::to_string(image.size()) +
                            " bytes is above the robot's 2 MB");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(image.data(), image.size(), digest, &n, EVP_md5(), nullptr) != 1)
    throw std::runtime_error("image_body: MD5 failed");
  static const char kHex[] = "0123456789abcdef";
  std::string md5;
  for (unsigned int i = 0; i < n; ++i) {
    md5 += kHex[digest[i] >> 4];
    md5 += kHex[digest[i] & 0xF];
  }
  return dump({{"msgtype", "image"}, {"image", {{"base64", base64_encode(image)}, {"md5", md5}}}});
}

std::vector<storage::OutboxMessage> bulletin_messages(const std::string& markdown,
                                                      const std::vector<std::string>& images,
                                                      std::vector<size_t>* too_large) {
  std::vector<storage::OutboxMessage> out;
  for (const auto& part : split_message(markdown, kMarkdownLimit))
    out.push_back({"markdown", markdown_body(part)});
  if (out.empty()) return out;  // no text, no pictures: a chart alone says too little
  for (size_t i = 0; i < images.size(); ++i) {
    if (images[i].size() > kImageLimit) {
      if (too_large) too_large->push_back(i);
      continue;
    }
    out.push_back({"image", image_body(images[i])});
  }
  return out;
}

std::string text_body(const std::string& content, const std::vector<std::string>& mentioned) {
  json text = {{"content", content}};
  if (!mentioned.empty()) text["mentioned_list"] = mentioned;
  return dump({{"msgtype", "text"}, {"text", text}});
}

std::vector<storage::OutboxMessage> reminder_messages(std::vector<ReminderEntry> entries,
                                                      storage::Date day,
                                                      const handlers::Templates& templates) {
  // One line per helper: a helper in two units (or ledgers) is one person to remind.
  std::map<std::string, ReminderEntry> by_id;
  std::vector<std::string> order;
  for (auto& e : entries) {
    if (e.unvisited <= 0) continue;
    auto [it, inserted] = by_id.try_emplace(e.helper_id, e);
    if (inserted) {
      order.push_back(e.helper_id);
    } else {
      it->second.unvisited += e.unvisited;
      if (it->second.unit != e.unit) it->second.unit += "、" + e.unit;
    }
  }
  std::vector<storage::OutboxMessage> out;
  if (order.empty()) return out;
  std::stable_sort(order.begin(), order.end(), [&](const std::string& a, const std::string& b) {
    const auto &x = by_id.at(a), &y = by_id.at(b);
    return std::tie(x.unit, x.helper_name, x.helper_id) <
           std::tie(y.unit, y.helper_name, y.helper_id);
  });
  // Line k (1 ≤ k ≤ order.size()) is helper order[k - 1]'s: the mentions below depend on it.
  const auto line = [&templates](const char* code, std::map<std::string, std::string> fields) {
    kainjow::mustache::data d;
    d.set(code, true);
    for (const auto& [k, v] : fields) d.set(k, v);
    return templates.render_trimmed("reminder", d);
  };
  std::vector<std::string> lines;
  lines.push_back(
      line("heading", {{"month", std::to_string(day.month)}, {"day", std::to_string(day.day)}}));
  for (const auto& id : order) {
    const auto& e = by_id.at(id);
    lines.push_back(line(
        "helper",
        {{"name", e.helper_name}, {"unit", e.unit}, {"unvisited", std::to_string(e.unvisited)}}));
  }
  lines.push_back(line("closing", {}));
  for (const auto& part : split_lines(lines, kTextLimit)) {
    std::vector<std::string> mentioned;
    for (size_t src : part.sources)
      if (src >= 1 && src <= order.size()) mentioned.push_back(order[src - 1]);
    out.push_back({"text", text_body(part.text, mentioned)});
  }
  return out;
}

int64_t backoff_seconds(int attempts) {
  int64_t d = 30;
  for (int i = 1; i < attempts && d < 600; ++i) d *= 2;
  return std::min<int64_t>(d, 600);
}

SendDecision decide(const PostResult& r, int attempts) {
  using A = SendDecision::Action;
  using S = PostResult::Status;
  auto retry = [&](int max_attempts) -> SendDecision {
    if (attempts >= max_attempts)
      return {A::Fail, 0, "gave up after " + std::to_string(attempts) + " attempts: " + r.message};
    return {A::Retry, std::max(backoff_seconds(attempts), r.retry_after_seconds), r.message};
  };
  switch (r.status) {
    case S::Sent:
      return {A::Sent, 0, ""};
    case S::Unknown:
      return {A::Unknown, 0,
              r.message +
                  " after the request was sent: it may have been posted, so it "
                  "is not resent"};
    case S::Busy:
      return retry(kBusyAttempts);
    case S::Failed:
      return {A::Fail, 0, r.message};  // sending the same again won't help
    case S::Retry:
      break;
  }
  return retry(kMaxAttempts);
}

// --- OutboxWorker ------------------------------------------------------------------------------

OutboxWorker::OutboxWorker(storage::Outbox& outbox, OutboundChannel& channel,
                           std::vector<Target> targets, Logger& log, DeliveryClock clock,
                           Options options)
    : outbox_(outbox),
      channel_(channel),
      targets_(std::move(targets)),
      log_(log),
      clock_(std::move(clock)),
      options_(options) {}

OutboxWorker::OutboxWorker(storage::Outbox& outbox, OutboundChannel& channel,
                           std::vector<Target> targets, Logger& log, DeliveryClock clock)
    : OutboxWorker(outbox, channel, std::move(targets), log, std::move(clock), Options{}) {}

// The stored body is the group robot's JSON (storage/outbox.h OutboxMessage): read back into
// what it says, so any channel can post it.
PostResult OutboxWorker::post(const storage::OutboxPart& p) {
  const auto target = find_target(targets_, p.group);
  if (!target)
    return {PostResult::Status::Failed, std::nullopt,
            p.group.empty() ? "no group to post to: the config has neither wecom.webhook_url nor "
                              "this message's group"
                            : "group '" + p.group + "' is not in the config (any more)",
            0};
  auto unreadable = [&](const std::string& why) {
    return PostResult{PostResult::Status::Failed, std::nullopt,
                      "the stored " + p.msgtype + " message cannot be read: " + why, 0};
  };
  const json body = json::parse(p.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) return unreadable("not JSON");
  const auto content = [&](const char* key, const char* field) -> std::optional<std::string> {
    const auto m = body.find(key);
    if (m == body.end() || !m->is_object()) return std::nullopt;
    const auto c = m->find(field);
    if (c == m->end() || !c->is_string()) return std::nullopt;
    return c->get<std::string>();
  };
  if (p.msgtype == "markdown") {
    const auto md = content("markdown", "content");
    if (!md) return unreadable("no markdown.content");
    return channel_.post_markdown(*target, *md);
  }
  if (p.msgtype == "text") {
    const auto text = content("text", "content");
    if (!text) return unreadable("no text.content");
    std::vector<std::string> mentioned;
    if (const auto m = body["text"].find("mentioned_list"); m != body["text"].end()) {
      if (!m->is_array()) return unreadable("text.mentioned_list is not a list");
      for (const auto& id : *m) {
        if (!id.is_string()) return unreadable("text.mentioned_list is not a list of userids");
        mentioned.push_back(id.get<std::string>());
      }
    }
    return channel_.post_text(*target, *text, mentioned);
  }
  if (p.msgtype == "image") {
    const auto b64 = content("image", "base64");
    if (!b64) return unreadable("no image.base64");
    const auto png = base64_decode(*b64);
    if (!png) return unreadable("image.base64 is not base64");
    return channel_.post_image(*target, *png);
  }
  return unreadable("unknown msgtype");
}

OutboxWorker::~OutboxWorker() {
  stop();
}

OutboxWorker::Step OutboxWorker::step() {
  using Kind = Step::Kind;
  const int64_t now = clock_();
  for (const auto& p : outbox_.expire_claims(now - kClaimTimeout, now))
    log_.warn("outbox_unknown", {{"id", std::to_string(p.id)},
                                 {"kind", p.kind},
                                 {"period", p.period},
                                 {"ledger", p.ledger},
                                 {"group", group_label(p.group)},
                                 {"part", std::to_string(p.part) + "/" + std::to_string(p.parts)},
                                 {"reason", p.last_error}});
  const auto head = outbox_.head();
  if (!head) return {Kind::Idle, 0, std::nullopt};
  if (head->status == storage::OutboxStatus::Sending)  // in flight in another process
    return {Kind::Wait, head->claimed_at.value_or(now) + kClaimTimeout, std::nullopt};
  if (head->next_attempt_at > now) return {Kind::Wait, head->next_attempt_at, std::nullopt};
  const auto claim = outbox_.claim(head->id, now, kRatePerMinute, kRateWindow);
  if (claim.outcome == storage::ClaimResult::Outcome::RateLimited)
    return {Kind::Wait, claim.retry_at, std::nullopt};
  if (claim.outcome == storage::ClaimResult::Outcome::NotPending)
    return {Kind::Wait, now, std::nullopt};  // someone else took it: look again

  const PostResult result = post(*head);
  const int64_t after = clock_();
  const SendDecision d = decide(result, head->attempts + 1);
  const std::string id = std::to_string(head->id);
  const std::string part = std::to_string(head->part) + "/" + std::to_string(head->parts);
  const std::string attempts = std::to_string(head->attempts + 1);
  switch (d.action) {
    case SendDecision::Action::Sent:
      outbox_.finish_sent(head->id, claim.claim_id, after);
      log_.info("outbox_sent", {{"id", id},
                                {"kind", head->kind},
                                {"period", head->period},
                                {"ledger", head->ledger},
                                {"group", group_label(head->group)},
                                {"part", part},
                                {"attempts", attempts}});
      break;
    case SendDecision::Action::Retry:
      outbox_.finish_retry(head->id, claim.claim_id, after + d.delay_seconds, d.reason, after);
      log_.warn("outbox_retry", {{"id", id},
                                 {"part", part},
                                 {"attempts", attempts},
                                 {"retry_in", std::to_string(d.delay_seconds)},
                                 {"error", d.reason}});
      break;
    case SendDecision::Action::Fail:
      outbox_.finish_failed(head->id, claim.claim_id, d.reason, after);
      log_.error("outbox_failed", {{"id", id},
                                   {"kind", head->kind},
                                   {"period", head->period},
                                   {"ledger", head->ledger},
                                   {"group", group_label(head->group)},
                                   {"part", part},
                                   {"attempts", attempts},
                                   {"error", d.reason}});
      break;
    case SendDecision::Action::Unknown:
      outbox_.finish_unknown(head->id, claim.claim_id, d.reason, after);
      log_.warn("outbox_unknown", {{"id", id},
                                   {"kind", head->kind},
                                   {"period", head->period},
                                   {"ledger", head->ledger},
                                   {"group", group_label(head->group)},
                                   {"part", part},
                                   {"reason", d.reason}});
      break;
  }
  return {Kind::Posted, 0, outbox_.part(head->id)};
}

void OutboxWorker::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { run(); });
  storage::name_thread(thread_, "bangfu-delivery");
}

void OutboxWorker::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void OutboxWorker::notify() {
  {
    std::lock_guard lock(mu_);
    notified_ = true;
  }
  cv_.notify_all();
}

void OutboxWorker::run() {
  using namespace std::chrono;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    Step s;
    milliseconds wait = options_.max_wait;
    try {
      s = step();
      if (s.kind == Step::Kind::Posted) continue;
      if (s.kind == Step::Kind::Wait)
        wait = std::clamp<milliseconds>(seconds(s.wake_at - clock_()), milliseconds(10),
                                        options_.max_wait);
    } catch (const std::exception& e) {
      // The loop top is a catch site (STYLE 11): a database hiccup must not end delivery.
      log_.error("outbox_worker_error", {{"error", e.what()}});
    }
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, wait, [&] { return stopping_ || notified_; });
    notified_ = false;
  }
}

// --- clock -------------------------------------------------------------------------------------

DeliveryClock delivery_clock(bool& fake) {
  const char* path = std::getenv("BANGFU_FAKE_CLOCK_FILE");
  fake = path != nullptr && *path != '\0';
  if (!fake) {
    return [] {
      return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
    };
  }
  auto read = [file = std::string(path)]() -> std::optional<int64_t> {
    std::ifstream in(file);
    long long v = 0;
    if (in >> v) return static_cast<int64_t>(v);
    return std::nullopt;
  };
  auto first = read();
  for (int i = 0; !first && i < 20; ++i) {  // a test may be halfway through writing it
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    first = read();
  }
  if (!first) throw std::runtime_error("BANGFU_FAKE_CLOCK_FILE: cannot read unix seconds from it");
  // The last good reading: a test may be halfway through rewriting the file.
  auto last = std::make_shared<std::atomic<int64_t>>(*first);
  return [read, last] {
    if (auto v = read()) last->store(*v);
    return last->load();
  };
}

}  // namespace bot
