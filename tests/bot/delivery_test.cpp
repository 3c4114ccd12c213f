#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bot/delivery.h"
#include "bot/groups.h"
#include "bot/scheduler.h"
#include "bot/wecom/crypto.h"
#include "bot/wecom/webhook_channel.h"
#include "bot/wecom/webhook_sender.h"
#include "storage/outbox.h"
#include "storage/store.h"
#include "tests/support/temp_dir.h"

using bot::Moment;
using bot::OutboxWorker;
using bot::ReminderEntry;
using bot::ScheduleConfig;
using bot::SendDecision;
using bot::split_message;
using handlers::SendResult;
using nlohmann::json;
using storage::Date;
using storage::Outbox;
using storage::OutboxStatus;
using storage::Store;

CATCH_REGISTER_ENUM(bot::SendDecision::Action, bot::SendDecision::Action::Sent,
                    bot::SendDecision::Action::Retry, bot::SendDecision::Action::Fail,
                    bot::SendDecision::Action::Unknown)
CATCH_REGISTER_ENUM(storage::OutboxStatus, storage::OutboxStatus::Pending,
                    storage::OutboxStatus::Sending, storage::OutboxStatus::Sent,
                    storage::OutboxStatus::Failed, storage::OutboxStatus::Unknown,
                    storage::OutboxStatus::Cancelled)
CATCH_REGISTER_ENUM(bot::OutboxWorker::Step::Kind, bot::OutboxWorker::Step::Kind::Idle,
                    bot::OutboxWorker::Step::Kind::Wait, bot::OutboxWorker::Step::Kind::Posted)

using bangfu_test::TempDir;

namespace {

constexpr int kOffset = 8 * 3600;

// The shipped reminder wording (templates/reminder.mustache), loaded as the service loads it.
const handlers::Templates& shipped() {
  static const handlers::Templates kTemplates =
      handlers::Templates::load(BANGFU_SOURCE_DIR "/templates", {"reminder"});
  return kTemplates;
}

// --- fakes for the outside world ---------------------------------------------------------------

// A clock the test moves by hand.
struct FakeClock {
  std::shared_ptr<std::atomic<int64_t>> now;
  explicit FakeClock(int64_t t) : now(std::make_shared<std::atomic<int64_t>>(t)) {}
  bot::DeliveryClock fn() const {
    return [n = now] { return n->load(); };
  }
  void advance(int64_t s) { *now += s; }
  void set(int64_t t) { *now = t; }
  int64_t get() const { return now->load(); }
};

SendResult ok() {
  SendResult r;
  r.http_status = 200;
  r.errcode = 0;
  r.errmsg = "ok";
  return r;
}

SendResult errcode(int code, std::string msg = "") {
  SendResult r;
  r.http_status = 200;
  r.errcode = code;
  r.errmsg = std::move(msg);
  return r;
}

SendResult http(int status) {
  SendResult r;
  r.http_status = status;
  return r;
}

SendResult transport(bool maybe_delivered) {
  SendResult r;
  r.error = maybe_delivered ? "Read" : "Connection";
  r.maybe_delivered = maybe_delivered;
  return r;
}

// Records every POST with the clock reading; answers from a script, then ok.
class RecordingSender : public handlers::Sender {
 public:
  explicit RecordingSender(FakeClock clock) : clock_(std::move(clock)) {}
  SendResult post(const std::string& body) override {
    std::lock_guard lock(mu_);
    posts.push_back({clock_.get(), body});
    if (script.empty()) return ok();
    auto r = script.front();
    script.pop_front();
    return r;
  }
  struct Post {
    int64_t at;
    std::string body;
  };
  std::vector<Post> posts;
  std::deque<SendResult> script;

 private:
  FakeClock clock_;
  std::mutex mu_;
};

// The group robot channel over `sender`, whatever the group's URL.
bot::WebhookChannel via(handlers::Sender& sender) {
  return bot::WebhookChannel([&sender](const std::string&) -> handlers::Sender& { return sender; });
}

// The one implicit group of wecom.webhook_url (a config without `groups`).
std::vector<bot::Target> one_group() {
  return {bot::Target{"", "", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"}};
}

// The one implicit group as the scheduler routes to it: every ledger.
std::vector<bot::GroupConfig> one_group_config() {
  return {bot::GroupConfig{"", "", {"cadre", "health", "education"}, one_group()[0].webhook_url}};
}

// The retry policy over what the group robot answered.
SendDecision decide(const SendResult& r, int attempts) {
  return bot::decide(bot::webhook_result(r), attempts);
}

class RecordingLogger : public bot::Logger {
 public:
  void log(std::string_view level, std::string_view event, Fields fields) override {
    std::lock_guard lock(mu_);
    std::string line = std::string(level) + " " + std::string(event);
    for (const auto& [k, v] : fields) line += " " + std::string(k) + "=" + v;
    lines.push_back(line);
  }
  bool has(const std::string& needle) {
    std::lock_guard lock(mu_);
    for (const auto& l : lines)
      if (l.find(needle) != std::string::npos) return true;
    return false;
  }
  std::vector<std::string> lines;

 private:
  std::mutex mu_;
};

// --- helpers -----------------------------------------------------------------------------------

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    auto nl = s.find('\n', start);
    out.push_back(s.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) return out;
    start = nl + 1;
  }
}

std::string numbered(size_t k, size_t n) {
  return "（" + std::to_string(k) + "/" + std::to_string(n) + "）";
}

// A bulletin-like text: a title, then `n` lines of Chinese text with a heading every 10 lines.
std::string bulletin_text(int n) {
  std::string s = "## 2026年11月结对帮扶通报·区直台账\n统计期：11月1日—11月30日\n";
  for (int i = 0; i < n; ++i) {
    if (i % 10 == 0) s += "\n**单位排名 第" + std::to_string(i / 10 + 1) + "组**\n";
    s += std::to_string(i + 1) + ". 区财政局 张伟 未走访 **3**/5 个结对，请及时走访\n";
  }
  return s;
}

// Unix seconds of a local (+08:00) time.
int64_t local(int y, int m, int d, int hh = 0, int mm = 0, int ss = 0) {
  return bot::unix_at(Date{y, m, d}, hh, mm, kOffset) + ss;
}

std::vector<std::string> keys(const std::vector<Moment>& ms) {
  std::vector<std::string> out;
  for (const auto& m : ms) out.push_back(m.key);
  return out;
}

std::vector<storage::OutboxMessage> markdown_parts(const std::vector<std::string>& names) {
  std::vector<storage::OutboxMessage> out;
  for (const auto& n : names) out.push_back({"markdown", bot::markdown_body(n)});
  return out;
}

std::string content_of(const std::string& body) {
  const json j = json::parse(body);
  const std::string type = j.at("msgtype").get<std::string>();
  return j.at(type).at("content").get<std::string>();
}

}  // namespace

// --- splitting ---------------------------------------------------------------------------------

TEST_CASE("A text within the limit is one part, unchanged and unnumbered", "[delivery]") {
  const std::string text = "## 标题\n第一行\n\n第二行\n";
  const auto parts = split_message(text, 4096);
  REQUIRE(parts.size() == 1);
  CHECK(parts[0] == "## 标题\n第一行\n\n第二行");  // trailing newline dropped
  CHECK(split_message("", 4096).empty());
  CHECK(split_message("\n\n", 4096).empty());
}

TEST_CASE("A long bulletin splits on lines into numbered parts within the limit", "[delivery]") {
  auto [lines, limit] = GENERATE(table<int, size_t>({
      {120, 4096}, {400, 4096}, {60, 2048}, {900, 1000},  // ≥ 10 parts: the number is wider
  }));
  const std::string text = bulletin_text(lines);
  CAPTURE(lines, limit, text.size());
  const auto parts = split_message(text, limit);
  REQUIRE(parts.size() >= 2);
  const std::string title = "## 2026年11月结对帮扶通报·区直台账";
  std::vector<std::string> rebuilt;
  for (size_t k = 0; k < parts.size(); ++k) {
    CAPTURE(k);
    CHECK(parts[k].size() <= limit);
    CHECK(valid_utf8(parts[k]));
    auto ls = lines_of(parts[k]);
    // The number sits in each part's first line; later parts repeat the title.
    CHECK(ls[0] == title + numbered(k + 1, parts.size()));
    CHECK(ls.back().find_first_not_of(' ') != std::string::npos);  // no blank last line
    if (k > 0) CHECK_FALSE(ls[1].empty());                         // no blank first line
    for (size_t j = 1; j < ls.size(); ++j) rebuilt.push_back(ls[j]);
  }
  // Nothing is lost or reordered: apart from the titles, numbers and blank lines at the cuts,
  // the parts hold the original lines in order.
  std::vector<std::string> original, got;
  for (const auto& l : lines_of(text))
    if (!l.empty()) original.push_back(l);
  for (const auto& l : rebuilt)
    if (!l.empty()) got.push_back(l);
  original.erase(original.begin());  // the title, numbered in part 1
  CHECK(got == original);
}

TEST_CASE("A heading is not left alone at the bottom of a part", "[delivery]") {
  const auto parts = split_message(bulletin_text(400), 4096);
  for (size_t k = 0; k + 1 < parts.size(); ++k) {
    const auto ls = lines_of(parts[k]);
    CAPTURE(k, ls.back());
    CHECK(ls.back().rfind("**单位排名", 0) != 0);
  }
}

TEST_CASE("An over-long line is cut at a UTF-8 code-point boundary", "[delivery]") {
  // 3-byte characters with a 2-byte and a 4-byte one mixed in, so no fixed stride lines up.
  std::string line;
  for (int i = 0; i < 3000; ++i) line += i % 7 == 0 ? "é" : i % 11 == 0 ? "😀" : "走";
  const std::string text = "## 标题\n" + line + "\n末行";
  auto limit = GENERATE(as<size_t>{}, 4096, 2048, 1001);
  CAPTURE(limit);
  const auto parts = split_message(text, limit);
  REQUIRE(parts.size() >= 2);
  std::string joined;
  for (size_t k = 0; k < parts.size(); ++k) {
    CHECK(parts[k].size() <= limit);
    CHECK(valid_utf8(parts[k]));
    auto ls = lines_of(parts[k]);
    CHECK(ls[0].find(numbered(k + 1, parts.size())) != std::string::npos);
    for (size_t j = 1; j < ls.size(); ++j) joined += ls[j];
  }
  CHECK(joined == line + "末行");  // every byte kept, in order
}

TEST_CASE("Message bodies are the robot's JSON", "[delivery]") {
  const json md = json::parse(bot::markdown_body("## 标题\n**粗体**"));
  CHECK(md == json{{"msgtype", "markdown"}, {"markdown", {{"content", "## 标题\n**粗体**"}}}});
  const json text = json::parse(bot::text_body("提醒", {"zhangwei", "wangfang"}));
  CHECK(text ==
        json{{"msgtype", "text"},
             {"text", {{"content", "提醒"}, {"mentioned_list", {"zhangwei", "wangfang"}}}}});
  CHECK_FALSE(json::parse(bot::text_body("无人", {}))["text"].contains("mentioned_list"));
}

TEST_CASE("Image bodies carry the base64 and the md5 of the raw bytes", "[delivery]") {
  // RFC 1321's vector for "abc".
  const json abc = json::parse(bot::image_body("abc"));
  CHECK(abc == json{{"msgtype", "image"},
                    {"image", {{"base64", "YWJj"}, {"md5", "900150983cd24fb0d6963f7d28e17f72"}}}});
  // Binary bytes (NUL, high bytes) survive: the base64 decodes to exactly the input.
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xff\xfe", 18);
  const json body = json::parse(bot::image_body(png));
  CHECK(bot::base64_decode(body["image"]["base64"].get<std::string>()) == png);
  CHECK(body["image"]["md5"].get<std::string>().size() == 32);
  // The robot takes at most 2 MB.
  CHECK_NOTHROW(bot::image_body(std::string(bot::kImageLimit, 'x')));
  CHECK_THROWS_AS(bot::image_body(std::string(bot::kImageLimit + 1, 'x')), std::length_error);
}

TEST_CASE("A bulletin's parts: its text first, then its charts; too large ones left out",
          "[delivery]") {
  const std::string text = "## 标题\n" + std::string(5000, 'x');
  std::vector<size_t> too_large;
  const auto m = bot::bulletin_messages(
      text, {"png-1", std::string(bot::kImageLimit + 1, 'y'), "png-3"}, &too_large);
  std::vector<std::string> types;
  for (const auto& x : m) types.push_back(x.msgtype);
  CHECK(types == std::vector<std::string>{"markdown", "markdown", "image", "image"});
  CHECK(json::parse(m[2].body)["image"]["base64"] == bot::base64_encode("png-1"));
  CHECK(json::parse(m[3].body)["image"]["base64"] == bot::base64_encode("png-3"));
  CHECK(too_large == std::vector<size_t>{1});
  CHECK(bot::bulletin_messages("", {"png"}).empty());  // no text, no pictures
  CHECK(bot::bulletin_messages(text, {}).size() == 2);
}

// --- reminders ---------------------------------------------------------------------------------

TEST_CASE("Reminders mention only helpers with unvisited pairings, with the count each",
          "[delivery]") {
  const Date day{2026, 11, 20};
  CHECK(bot::reminder_messages({}, day, shipped()).empty());
  CHECK(bot::reminder_messages({{"u1", "张伟", "区财政局", 0, "cadre"}}, day, shipped())
            .empty());  // all done

  const auto msgs = bot::reminder_messages({{"u2", "王芳", "区民政局", 2, "cadre"},
                                            {"u1", "张伟", "区财政局", 3, "cadre"},
                                            {"u3", "赵磊", "区人民医院", 0, "cadre"},
                                            {"u1", "张伟", "区财政局", 1, "cadre"}},
                                           day, shipped());
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0].msgtype == "text");
  const json j = json::parse(msgs[0].body);
  CHECK(j["msgtype"] == "text");
  const auto content = j["text"]["content"].get<std::string>();
  CHECK(content.find("截至11月20日") != std::string::npos);
  CHECK(content.find("张伟（区财政局）未走访 4 个") != std::string::npos);  // one line per helper
  CHECK(content.find("王芳（区民政局）未走访 2 个") != std::string::npos);
  CHECK(content.find("赵磊") == std::string::npos);
  CHECK(j["text"]["mentioned_list"] == json{"u2", "u1"});  // grouped by unit (区民政局 < 区财政局)
  CHECK(content ==
        "【及时提醒】截至11月20日，以下帮扶人本月还有结对未走访：\n王芳（区民政局）未走访 2 个\n"
        "张伟（区财政局）未走访 4 个\n请在月底前上门走访，走访后发一句话打卡即可。");
}

TEST_CASE("A deployment's edited reminder template changes the reminder", "[delivery]") {
  const auto edited = handlers::Templates::from_strings(
      {{"reminder",
        "{{#heading}}{{month}}/{{day}} 提醒{{/heading}}\n{{#helper}}@{{name}} {{unit}} "
        "差{{unvisited}}{{/helper}}\n{{#closing}}抓紧{{/closing}}"}});
  const auto msgs =
      bot::reminder_messages({{"u1", "张伟", "区财政局", 3, "cadre"}}, Date{2026, 11, 20}, edited);
  REQUIRE(msgs.size() == 1);
  const json j = json::parse(msgs[0].body);
  CHECK(j["text"]["content"] == "11/20 提醒\n@张伟 区财政局 差3\n抓紧");
  CHECK(j["text"]["mentioned_list"] == json{"u1"});
  // Without the template the reminder is refused, not posted with words of its own.
  CHECK_THROWS_AS(bot::reminder_messages({{"u1", "张伟", "区财政局", 3, "cadre"}},
                                         Date{2026, 11, 20}, handlers::Templates::from_strings({})),
                  handlers::TemplateError);
}

TEST_CASE("A long reminder splits into messages of at most 2048 bytes, each mentioning its own",
          "[delivery]") {
  std::vector<ReminderEntry> entries;
  for (int i = 0; i < 300; ++i)
    entries.push_back({"user" + std::to_string(i), "帮扶人" + std::to_string(i),
                       "单位" + std::to_string(i % 40), 1 + i % 4, "cadre"});
  const auto msgs = bot::reminder_messages(entries, Date{2026, 11, 28}, shipped());
  REQUIRE(msgs.size() >= 3);
  std::multiset<std::string> mentioned;
  for (size_t k = 0; k < msgs.size(); ++k) {
    const json j = json::parse(msgs[k].body);
    const auto content = j["text"]["content"].get<std::string>();
    CAPTURE(k, content);
    CHECK(content.size() <= bot::kTextLimit);
    CHECK(lines_of(content)[0].find(numbered(k + 1, msgs.size())) != std::string::npos);
    for (const auto& id : j["text"]["mentioned_list"]) {
      const auto uid = id.get<std::string>();
      mentioned.insert(uid);
      // Mentioned here, so named here.
      const int i = std::stoi(uid.substr(4));
      CHECK(content.find("帮扶人" + std::to_string(i) + "（") != std::string::npos);
    }
  }
  CHECK(mentioned.size() == 300);
  CHECK(std::set<std::string>(mentioned.begin(), mentioned.end()).size() == 300);  // once each
}

// --- schedule maths ----------------------------------------------------------------------------

TEST_CASE("Day specs resolve across month lengths", "[delivery]") {
  auto [y, m, spec, day] = GENERATE(table<int, int, int, int>({
      {2026, 11, -3, 28},  // 30 days
      {2026, 12, -3, 29},  // 31 days
      {2027, 2, -3, 26},   // 28 days
      {2028, 2, -3, 27},   // leap year
      {2026, 2, -1, 28},
      {2028, 2, -1, 29},
      {2026, 4, 20, 20},
      {2026, 4, 1, 1},
      {2027, 2, -28, 1},
  }));
  CAPTURE(y, m, spec);
  CHECK(bot::resolve_day(y, m, spec) == Date{y, m, day});
}

TEST_CASE("Due moments: first run, catch-up, once only, reminders in their month", "[delivery]") {
  const ScheduleConfig cfg;  // monthly 1st 09:00, quarterly 3rd 09:00, reminders 20 and -3 16:00
  using Keys = std::vector<std::string>;
  struct Row {
    const char* why;
    int64_t first_run, now;
    std::set<std::string> fired;
    Keys due;
  };
  const Row rows[] = {
      {"new deployment: October's bulletin (Nov 1) predates it",
       local(2026, 11, 15, 10),
       local(2026, 11, 15, 10),
       {},
       {}},
      {"a second before the moment (November's reminders are stale by now)",
       local(2026, 11, 15, 10),
       local(2026, 12, 1, 8, 59, 59),
       {},
       {}},
      {"at the moment",
       local(2026, 11, 15, 10),
       local(2026, 12, 1, 9),
       {"reminder:2026-11-28"},
       {"monthly:2026-11"}},
      {"fired already", local(2026, 11, 15, 10), local(2026, 12, 1, 12), {"monthly:2026-11"}, {}},
      {"down over three moments: each bulletin once; the old reminders are stale",
       local(2026, 10, 10),
       local(2027, 1, 4, 10),
       {},
       {"monthly:2026-10", "monthly:2026-11", "monthly:2026-12", "quarterly:2026-Q4"}},
      {"first run on the moment itself counts",
       local(2026, 12, 1, 9),
       local(2026, 12, 1, 9),
       {},
       {"monthly:2026-11"}},
      {"the quarterly review on the 3rd",
       local(2026, 12, 10),
       local(2027, 1, 3, 9, 0, 1),
       {"monthly:2026-12"},
       {"quarterly:2026-Q4"}},
      {"Q3 review (Oct 3) predates a first run on Oct 10",
       local(2026, 10, 10),
       local(2026, 10, 12),
       {},
       {}},
      {"reminder on the 20th",
       local(2026, 11, 1),
       local(2026, 11, 20, 16),
       {"monthly:2026-10"},
       {"reminder:2026-11-20"}},
      {"reminder catch-up within the month",
       local(2026, 11, 1),
       local(2026, 11, 22, 8),
       {"monthly:2026-10"},
       {"reminder:2026-11-20"}},
      {"two reminders missed: only the latest",
       local(2026, 11, 1),
       local(2026, 11, 29, 10),
       {"monthly:2026-10"},
       {"reminder:2026-11-28"}},
      {"the 3rd-last day of February",
       local(2027, 2, 1, 12),
       local(2027, 2, 26, 16),
       {"reminder:2027-02-20"},
       {"reminder:2027-02-26"}},
      {"the 3rd-last day of a leap February",
       local(2028, 2, 1, 12),
       local(2028, 2, 27, 16),
       {"reminder:2028-02-20"},
       {"reminder:2028-02-27"}},
      {"not on the 26th of a leap February",
       local(2028, 2, 1, 12),
       local(2028, 2, 26, 16),
       {"reminder:2028-02-20"},
       {}},
      {"a reminder before the first run is not caught up",
       local(2026, 11, 21),
       local(2026, 11, 22),
       {},
       {}},
      {"the clock went back before the first run", local(2026, 11, 21), local(2026, 11, 1), {}, {}},
  };
  for (const Row& r : rows) {
    CAPTURE(r.why);
    CHECK(keys(bot::due_moments(cfg, kOffset, r.first_run, r.now, r.fired)) == r.due);
  }
}

TEST_CASE("Due moments carry their period, day and local time", "[delivery]") {
  ScheduleConfig cfg;
  cfg.monthly = {-1, 18, 30, true};  // the last day of the next month at 18:30
  cfg.quarterly.enabled = false;
  cfg.reminder_days = {};
  const auto due =
      bot::due_moments(cfg, kOffset, local(2026, 1, 1), local(2026, 3, 31, 18, 30), {});
  REQUIRE(keys(due) ==
          std::vector<std::string>{"monthly:2025-12", "monthly:2026-01", "monthly:2026-02"});
  CHECK(due[0].at == local(2026, 1, 31, 18, 30));
  CHECK(due[1].at == local(2026, 2, 28, 18, 30));
  CHECK(due[2].at == local(2026, 3, 31, 18, 30));
  CHECK(due[2].period == handlers::Period{handlers::BulletinKind::Monthly, 2026, 2});
  CHECK(due[2].kind == Moment::Kind::Monthly);
  // 09:00 in Shanghai is 01:00 UTC.
  CHECK(bot::unix_at(Date{2026, 12, 1}, 9, 0, kOffset) % 86400 == 3600);

  ScheduleConfig off;
  off.monthly.enabled = false;
  off.quarterly.enabled = false;
  off.reminder_days = {};
  CHECK(bot::due_moments(off, kOffset, local(2025, 1, 1), local(2027, 1, 1), {}).empty());
  CHECK(bot::period_code({handlers::BulletinKind::Quarterly, 2026, 4}) == "2026-Q4");
  CHECK(bot::period_code({handlers::BulletinKind::Monthly, 2026, 3}) == "2026-03");
}

// --- retry policy ------------------------------------------------------------------------------

TEST_CASE("Each answer maps to sent, retry, fail or unknown", "[delivery]") {
  using A = SendDecision::Action;
  struct Row {
    const char* why;
    SendResult result;
    int attempts;
    A action;
    int64_t delay;
  };
  const Row rows[] = {
      {"ok", ok(), 1, A::Sent, 0},
      {"rate limited", errcode(45009, "api freq out of limit"), 1, A::Retry, 30},
      {"rate limited again", errcode(45009), 2, A::Retry, 60},
      {"rate limited a third time", errcode(45009), 3, A::Retry, 120},
      {"rate limited for hours", errcode(45009), 50, A::Fail, 0},
      {"system busy", errcode(-1, "system busy"), 1, A::Retry, 30},
      {"system busy, third retry", errcode(-1), 3, A::Retry, 120},
      {"system busy, a fourth time", errcode(-1), 4, A::Fail, 0},
      {"invalid webhook url", errcode(93000, "invalid webhook url"), 1, A::Fail, 0},
      {"content too long", errcode(40058, "markdown.content exceed max length 4096"), 1, A::Fail,
       0},
      {"invalid msgtype", errcode(40008), 1, A::Fail, 0},
      {"any other errcode", errcode(12345), 1, A::Fail, 0},
      {"HTTP 502", http(502), 1, A::Retry, 30},
      {"HTTP 200 but not JSON", http(200), 2, A::Retry, 60},
      {"cannot connect", transport(false), 4, A::Retry, 240},
      {"the answer never came", transport(true), 1, A::Unknown, 0},
  };
  for (const Row& r : rows) {
    CAPTURE(r.why, r.attempts);
    const auto d = decide(r.result, r.attempts);
    CHECK(d.action == r.action);
    CHECK(d.delay_seconds == r.delay);
    if (r.action != A::Sent) CHECK_FALSE(d.reason.empty());
  }
  CHECK(decide(errcode(93000, "invalid webhook url"), 1).reason ==
        "errcode 93000: invalid webhook url");
}

TEST_CASE("Backoff doubles from 30 s and stops at 10 minutes", "[delivery]") {
  const std::vector<int64_t> expected = {30, 60, 120, 240, 480, 600, 600};
  for (int n = 1; n <= 7; ++n) {
    CAPTURE(n);
    CHECK(bot::backoff_seconds(n) == expected[static_cast<size_t>(n - 1)]);
  }
  CHECK(bot::backoff_seconds(1000) == 600);
}

// --- the worker on a real database -------------------------------------------------------------

TEST_CASE("The worker retries 45009 with backoff, in order, and sends each part once",
          "[delivery]") {
  TempDir dir;
  FakeClock clock(local(2026, 12, 1, 9));
  const int64_t t0 = clock.get();
  Store store(dir.file("bangfu.db"));
  Outbox outbox(store);
  RecordingSender sender(clock);
  RecordingLogger log;
  sender.script = {errcode(45009, "api freq out of limit"),
                   errcode(45009, "api freq out of limit")};
  auto channel = via(sender);
  OutboxWorker worker(outbox, channel, one_group(), log, clock.fn());
  const auto q =
      outbox.enqueue("monthly", "2026-11", "cadre", markdown_parts({"p1", "p2", "p3"}), t0, false);

  using K = OutboxWorker::Step::Kind;
  CHECK(worker.step().kind == K::Posted);  // 45009
  auto s = worker.step();
  CHECK(s.kind == K::Wait);
  CHECK(s.wake_at == t0 + 30);
  CHECK(sender.posts.size() == 1);  // part 2 does not overtake part 1
  clock.advance(29);
  CHECK(worker.step().kind == K::Wait);
  clock.advance(1);
  CHECK(worker.step().kind == K::Posted);  // 45009 again
  s = worker.step();
  CHECK(s.kind == K::Wait);
  CHECK(s.wake_at == t0 + 30 + 60);
  clock.set(t0 + 90);
  for (int i = 0; i < 3; ++i) CHECK(worker.step().kind == K::Posted);
  CHECK(worker.step().kind == K::Idle);

  std::vector<std::string> got;
  for (const auto& p : sender.posts) got.push_back(content_of(p.body));
  CHECK(got == std::vector<std::string>{"p1", "p1", "p1", "p2", "p3"});
  const auto parts = outbox.parts_of("monthly", "2026-11", "cadre", q.generation);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].attempts == 3);
  for (const auto& p : parts) {
    CHECK(p.status == OutboxStatus::Sent);
    CHECK(p.last_error.empty());
  }
  CHECK(log.has("warn outbox_retry"));
  CHECK(log.has("info outbox_sent id=" + std::to_string(q.ids[2])));
}

TEST_CASE("Permanent errors fail the part with the reason; the queue moves on", "[delivery]") {
  TempDir dir;
  FakeClock clock(local(2026, 12, 1, 9));
  Store store(dir.file("bangfu.db"));
  Outbox outbox(store);
  RecordingSender sender(clock);
  RecordingLogger log;
  auto code = GENERATE(93000, 40058, 40008);
  CAPTURE(code);
  sender.script = {errcode(code, "bad")};
  auto channel = via(sender);
  OutboxWorker worker(outbox, channel, one_group(), log, clock.fn());
  const auto q = outbox.enqueue("monthly", "2026-11", "cadre", markdown_parts({"p1", "p2"}),
                                clock.get(), false);
  CHECK(worker.step().kind == OutboxWorker::Step::Kind::Posted);
  CHECK(worker.step().kind == OutboxWorker::Step::Kind::Posted);
  CHECK(worker.step().kind == OutboxWorker::Step::Kind::Idle);
  const auto p1 = *outbox.part(q.ids[0]);
  CHECK(p1.status == OutboxStatus::Failed);
  CHECK(p1.last_error == "errcode " + std::to_string(code) + ": bad");
  CHECK(outbox.part(q.ids[1])->status == OutboxStatus::Sent);
  CHECK(sender.posts.size() == 2);
  CHECK(log.has("error outbox_failed id=" + std::to_string(q.ids[0])));
}

// A channel that is not the group robot: what the worker hands it, decoded from the outbox.
class RecordingChannel : public bot::OutboundChannel {
 public:
  bot::PostResult post_markdown(const bot::Target& t, std::string_view md) override {
    calls.push_back(t.group + "|" + t.chat_id + "|markdown|" + std::string(md));
    return answer();
  }
  bot::PostResult post_image(const bot::Target& t, std::string_view png) override {
    calls.push_back(t.group + "|" + t.chat_id + "|image|" + std::string(png));
    return answer();
  }
  std::string name() const override { return "recording"; }
  bot::PostResult answer() {
    if (script.empty()) return {bot::PostResult::Status::Sent, 0, "", 0};
    auto r = script.front();
    script.pop_front();
    return r;
  }
  std::vector<std::string> calls;
  std::deque<bot::PostResult> script;
};

TEST_CASE("The worker posts through any channel: markdown, text and images as they were queued",
          "[delivery]") {
  TempDir dir;
  FakeClock clock(local(2026, 12, 1, 9));
  Store store(dir.file("bangfu.db"));
  Outbox outbox(store);
  RecordingChannel channel;
  RecordingLogger log;
  // A busy answer, then a retry hint longer than the backoff: the part waits the longer one.
  channel.script = {{bot::PostResult::Status::Busy, -1, "errcode -1: busy", 0},
                    {bot::PostResult::Status::Retry, 45009, "rate limited", 300}};
  OutboxWorker worker(outbox, channel, {bot::Target{"", "chat-1", ""}}, log, clock.fn());
  const std::string png("\x89PNG\r\n\x1a\n\0binary", 15);
  std::vector<storage::OutboxMessage> parts = {{"markdown", bot::markdown_body("## 通报")},
                                               {"text", bot::text_body("提醒", {"u1", "u2"})},
                                               {"image", bot::image_body(png)}};
  const auto q = outbox.enqueue("monthly", "2026-11", "cadre", parts, clock.get(), false);
  using K = OutboxWorker::Step::Kind;
  CHECK(worker.step().kind == K::Posted);  // busy
  CHECK(outbox.part(q.ids[0])->next_attempt_at == clock.get() + 30);
  clock.advance(30);
  CHECK(worker.step().kind == K::Posted);  // rate limited, asked to wait 300 s
  CHECK(outbox.part(q.ids[0])->next_attempt_at == clock.get() + 300);
  clock.advance(300);
  while (worker.step().kind == K::Posted) {
  }
  CHECK(channel.calls ==
        std::vector<std::string>{"|chat-1|markdown|## 通报", "|chat-1|markdown|## 通报",
                                 "|chat-1|markdown|## 通报",
                                 // the default post_text: markdown with the mentions
                                 "|chat-1|markdown|提醒\n<@u1><@u2>", "|chat-1|image|" + png});
  for (int64_t id : q.ids) CHECK(outbox.part(id)->status == OutboxStatus::Sent);
}

TEST_CASE("A part with no group to go to, or a body that cannot be read, fails and says why",
          "[delivery]") {
  TempDir dir;
  FakeClock clock(local(2026, 12, 1, 9));
  Store store(dir.file("bangfu.db"));
  Outbox outbox(store);
  RecordingChannel channel;
  RecordingLogger log;
  SECTION("no group") {
    OutboxWorker worker(outbox, channel, {}, log, clock.fn());
    const auto q =
        outbox.enqueue("monthly", "2026-11", "cadre", markdown_parts({"p1"}), clock.get(), false);
    CHECK(worker.step().kind == OutboxWorker::Step::Kind::Posted);
    const auto p = *outbox.part(q.ids[0]);
    CHECK(p.status == OutboxStatus::Failed);
    CHECK(p.last_error.find("no group to post to") != std::string::npos);
  }
  SECTION("unreadable bodies") {
    OutboxWorker worker(outbox, channel, one_group(), log, clock.fn());
    const auto q = outbox.enqueue("monthly", "2026-11", "cadre",
                                  {{"markdown", "not json"},
                                   {"text", R"({"text":{"content":1}})"},
                                   {"image", R"({"image":{"base64":"@@@"}})"}},
                                  clock.get(), false);
    while (worker.step().kind == OutboxWorker::Step::Kind::Posted) {
    }
    const std::vector<std::string> why = {"not JSON", "no text.content",
                                          "image.base64 is not base64"};
    for (size_t i = 0; i < q.ids.size(); ++i) {
      const auto p = *outbox.part(q.ids[i]);
      CAPTURE(i, p.last_error);
      CHECK(p.status == OutboxStatus::Failed);
      CHECK(p.last_error.find(why[i]) != std::string::npos);
    }
  }
  CHECK(channel.calls.empty());
}

TEST_CASE("A POST whose answer never came is unknown and never resent", "[delivery]") {
  TempDir dir;
  FakeClock clock(local(2026, 12, 1, 9));
  Store store(dir.file("bangfu.db"));
  Outbox outbox(store);
  RecordingSender sender(clock);
  RecordingLogger log;
  sender.script = {transport(true)};
  auto channel = via(sender);
  OutboxWorker worker(outbox, channel, one_group(), log, clock.fn());
  const auto q = outbox.enqueue("monthly", "2026-11", "cadre", markdown_parts({"p1", "p2"}),
                                clock.get(), false);
  CHECK(worker.step().kind == OutboxWorker::Step::Kind::Posted);
  CHECK(outbox.part(q.ids[0])->status == OutboxStatus::Unknown);
  clock.advance(3600);
  CHECK(worker.step().kind == OutboxWorker::Step::Kind::Posted);
  CHECK(worker.step().kind == OutboxWorker::Step::Kind::Idle);
  CHECK(sender.posts.size() == 2);
  CHECK(log.has("warn outbox_unknown id=" + std::to_string(q.ids[0])));
}

TEST_CASE("At most 20 posts in any rolling minute, across a restart", "[delivery]") {
  TempDir dir;
  const auto path = dir.file("bangfu.db");
  FakeClock clock(local(2026, 12, 1, 9));
  const int64_t t0 = clock.get();
  RecordingSender sender(clock);
  RecordingLogger log;
  using K = OutboxWorker::Step::Kind;
  {
    Store store(path);
    Outbox outbox(store);
    for (int i = 0; i < 30; ++i)
      outbox.enqueue("reminder", "2026-12-" + std::to_string(10 + i), "all",
                     {{"text", bot::text_body("r" + std::to_string(i), {})}}, t0, false);
    auto channel = via(sender);
    OutboxWorker worker(outbox, channel, one_group(), log, clock.fn());
    for (int i = 0; i < 12; ++i) {
      CHECK(worker.step().kind == K::Posted);
      clock.advance(1);
    }
  }  // restart: a new process must not get a fresh budget
  Store store(path);
  Outbox outbox(store);
  auto channel = via(sender);
  OutboxWorker worker(outbox, channel, one_group(), log, clock.fn());
  for (int i = 0; i < 8; ++i) CHECK(worker.step().kind == K::Posted);
  auto s = worker.step();
  CHECK(s.kind == K::Wait);
  CHECK(s.wake_at == t0 + 60);  // when the first post leaves the window
  CHECK(sender.posts.size() == 20);
  clock.set(t0 + 60);
  CHECK(worker.step().kind == K::Posted);
  CHECK(worker.step().kind == K::Wait);  // the post at t0+1 is still in the window
  clock.set(t0 + 200);
  while (worker.step().kind == K::Posted) {
  }
  CHECK(sender.posts.size() == 30);
  // Any 60-second window holds at most 20 posts.
  for (size_t i = 0; i < sender.posts.size(); ++i) {
    int in_window = 0;
    for (const auto& p : sender.posts)
      if (p.at >= sender.posts[i].at && p.at < sender.posts[i].at + 60) ++in_window;
    CAPTURE(i);
    CHECK(in_window <= 20);
  }
}

TEST_CASE("A restart resumes pending parts; a part in flight at a crash is not resent",
          "[delivery]") {
  TempDir dir;
  const auto path = dir.file("bangfu.db");
  FakeClock clock(local(2026, 12, 1, 9));
  RecordingSender sender(clock);
  RecordingLogger log;
  std::vector<int64_t> ids;
  {
    Store store(path);
    Outbox outbox(store);
    ids = outbox
              .enqueue("monthly", "2026-11", "cadre", markdown_parts({"p1", "p2", "p3", "p4"}),
                       clock.get(), false)
              .ids;
    auto channel = via(sender);
    OutboxWorker worker(outbox, channel, one_group(), log, clock.fn());
    CHECK(worker.step().kind == OutboxWorker::Step::Kind::Posted);  // p1 sent
    // p2 is claimed and the process dies during its POST (it may have reached the robot).
    REQUIRE(outbox.claim(ids[1], clock.get(), 20, 60).outcome ==
            storage::ClaimResult::Outcome::Claimed);
  }
  Store store(path);
  Outbox outbox(store);
  auto channel = via(sender);
  OutboxWorker worker(outbox, channel, one_group(), log, clock.fn());
  // Right after the restart the claim may still belong to a live POST elsewhere: wait.
  auto s = worker.step();
  CHECK(s.kind == OutboxWorker::Step::Kind::Wait);
  CHECK(s.wake_at == clock.get() + OutboxWorker::kClaimTimeout);
  clock.advance(OutboxWorker::kClaimTimeout + 1);
  while (worker.step().kind == OutboxWorker::Step::Kind::Posted) {
  }
  std::vector<std::string> got;
  for (const auto& p : sender.posts) got.push_back(content_of(p.body));
  CHECK(got == std::vector<std::string>{"p1", "p3", "p4"});
  CHECK(outbox.part(ids[1])->status == OutboxStatus::Unknown);
  CHECK(log.has("warn outbox_unknown id=" + std::to_string(ids[1])));
}

TEST_CASE("The worker thread posts what is queued and stops cleanly", "[delivery]") {
  TempDir dir;
  FakeClock clock(local(2026, 12, 1, 9));
  Store store(dir.file("bangfu.db"));
  Outbox outbox(store);
  RecordingSender sender(clock);
  RecordingLogger log;
  OutboxWorker::Options opt;
  opt.max_wait = std::chrono::milliseconds(20);
  {
    auto channel = via(sender);
    OutboxWorker worker(outbox, channel, one_group(), log, clock.fn(), opt);
    worker.start();
    outbox.enqueue("monthly", "2026-11", "cadre", markdown_parts({"a", "b"}), clock.get(), false);
    worker.notify();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (outbox.list()[1].status != OutboxStatus::Sent &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }  // the destructor stops and joins
  CHECK(log.has("outbox_sent"));
  CHECK(outbox.list()[1].status == OutboxStatus::Sent);
}

// --- the scheduler on a real database ----------------------------------------------------------

TEST_CASE("The scheduler queues each due moment once, per ledger, and survives restarts",
          "[delivery]") {
  TempDir dir;
  const auto path = dir.file("bangfu.db");
  FakeClock clock(local(2026, 11, 15, 10));
  RecordingLogger log;
  int renders = 0, wakes = 0;
  std::vector<ReminderEntry> unvisited = {{"u1", "张伟", "区财政局", 2, "cadre"}};
  bot::SchedulerSources sources;
  sources.render = [&](const handlers::Period& p, std::optional<storage::Ledger> l,
                       storage::LocalTime) {
    ++renders;
    return "## " + bot::period_code(p) + " " + (l ? std::string(storage::ledger_code(*l)) : "all") +
           "\n" + std::string(l == storage::Ledger::Cadre ? 5000 : 10, 'x');
  };
  sources.unvisited = [&](storage::LocalTime) { return unvisited; };
  sources.templates = &shipped();
  std::vector<std::string> posted;  // the bulletins whose figures were stored as posted
  sources.posted = [&](const handlers::Period& p, std::optional<storage::Ledger> l,
                       storage::LocalTime) {
    posted.push_back(bot::period_code(p) + " " +
                     (l ? std::string(storage::ledger_code(*l)) : "all"));
  };
  auto make = [&](Outbox& outbox) {
    return std::make_unique<bot::Scheduler>(
        outbox, ScheduleConfig{}, one_group_config(), kOffset, sources, clock.fn(), log,
        [&] { ++wakes; }, bot::Scheduler::Options{});
  };
  {
    Store store(path);
    Outbox outbox(store);
    auto sched = make(outbox);
    CHECK(sched->run_once().empty());  // first run: October's bulletin is not posted
    CHECK(outbox.state("first_run") == std::to_string(clock.get()));
    clock.set(local(2026, 11, 20, 16));
    CHECK(keys(sched->run_once()) == std::vector<std::string>{"reminder:2026-11-20"});
    CHECK(sched->run_once().empty());
  }
  {
    // Down from the 21st to December 2nd: the 28th's reminder is stale, November's bulletin is
    // caught up once.
    clock.set(local(2026, 12, 2, 10));
    Store store(path);
    Outbox outbox(store);
    auto sched = make(outbox);
    CHECK(keys(sched->run_once()) == std::vector<std::string>{"monthly:2026-11"});
    CHECK(sched->run_once().empty());
    const auto rows = outbox.list();
    std::vector<std::string> what;
    for (const auto& r : rows)
      what.push_back(r.kind + " " + r.period + " " + r.ledger + " " + std::to_string(r.part) + "/" +
                     std::to_string(r.parts) + " " + r.msgtype);
    CHECK(what == std::vector<std::string>{
                      "reminder 2026-11-20 all 1/1 text",
                      "monthly 2026-11 cadre 1/2 markdown",
                      "monthly 2026-11 cadre 2/2 markdown",
                      "monthly 2026-11 health 1/1 markdown",
                      "monthly 2026-11 education 1/1 markdown",
                  });
    const json reminder = json::parse(rows[0].body);
    CHECK(reminder["text"]["mentioned_list"] == json{"u1"});
  }
  {
    // Another restart at the same moment: nothing again.
    Store store(path);
    Outbox outbox(store);
    auto sched = make(outbox);
    CHECK(sched->run_once().empty());
    CHECK(outbox.list().size() == 5);
    CHECK(outbox.state("first_run") == std::to_string(local(2026, 11, 15, 10)));
  }
  CHECK(renders == 3);
  CHECK(wakes == 2);
  // Each queued bulletin's figures are stored once, the reminder's never.
  CHECK(posted == std::vector<std::string>{"2026-11 cadre", "2026-11 health", "2026-11 education"});
}

TEST_CASE(
    "Several groups: each ledger's bulletins and reminders to every group that lists it, "
    "once per group",
    "[delivery]") {
  TempDir dir;
  const auto path = dir.file("bangfu.db");
  FakeClock clock(local(2026, 11, 15, 10));
  RecordingLogger log;
  int renders = 0;
  bot::SchedulerSources sources;
  sources.render = [&](const handlers::Period& p, std::optional<storage::Ledger> l,
                       storage::LocalTime) {
    ++renders;
    return "## " + bot::period_code(p) + " " + (l ? std::string(storage::ledger_code(*l)) : "all");
  };
  sources.unvisited = [](storage::LocalTime) {
    return std::vector<ReminderEntry>{{"u1", "张伟", "区财政局", 2, "cadre"},
                                      {"u2", "赵医生", "区人民医院", 1, "health"}};
  };
  sources.templates = &shipped();
  std::vector<std::string> posted;
  sources.posted = [&](const handlers::Period& p, std::optional<storage::Ledger> l,
                       storage::LocalTime) {
    posted.push_back(bot::period_code(p) + " " +
                     (l ? std::string(storage::ledger_code(*l)) : "all"));
  };
  ScheduleConfig schedule;
  schedule.ledgers = {"cadre", "health", "education", "all"};
  const std::vector<bot::GroupConfig> groups = {
      {"district", "", {"cadre", "health", "education"}, "https://qyapi.weixin.qq.com/x?key=d"},
      {"health", "", {"health"}, "https://qyapi.weixin.qq.com/x?key=h"},
      {"schools", "", {"education"}, "https://qyapi.weixin.qq.com/x?key=s"}};
  auto make = [&](Outbox& outbox) {
    return std::make_unique<bot::Scheduler>(outbox, schedule, groups, kOffset, sources, clock.fn(),
                                            log, nullptr, bot::Scheduler::Options{});
  };
  {
    Store store(path);
    Outbox outbox(store);
    CHECK(make(outbox)->run_once().empty());  // the first run
  }
  clock.set(local(2026, 11, 20, 16));
  {
    Store store(path);
    Outbox outbox(store);
    CHECK(keys(make(outbox)->run_once()) == std::vector<std::string>{"reminder:2026-11-20"});
    std::vector<std::string> what;
    for (const auto& r : outbox.list())
      what.push_back(r.group + ": " + json::parse(r.body)["text"]["mentioned_list"].dump());
    // schools: nobody of the education ledger has anything left: no reminder at all.
    CHECK(what == std::vector<std::string>{R"(district: ["u2","u1"])", R"(health: ["u2"])"});
  }
  clock.set(local(2026, 12, 1, 9, 30));
  for (int restart = 0; restart < 2; ++restart) {
    Store store(path);
    Outbox outbox(store);
    make(outbox)->run_once();
    std::vector<std::string> what;
    for (const auto& r : outbox.list())
      if (r.kind == "monthly")
        what.push_back(r.group + " " + r.ledger + " gen " + std::to_string(r.generation));
    CAPTURE(restart);
    CHECK(what == std::vector<std::string>{"district cadre gen 1", "district health gen 1",
                                           "health health gen 1", "district education gen 1",
                                           "schools education gen 1", "district all gen 1"});
  }
  CHECK(renders == 4);  // each bulletin rendered once, whatever the number of groups
  CHECK(posted == std::vector<std::string>{"2026-11 cadre", "2026-11 health", "2026-11 education",
                                           "2026-11 all"});

  // Delivery: each row to its own group's robot; a group gone from the config fails its rows.
  Store store(path);
  Outbox outbox(store);
  std::vector<std::string> urls;
  RecordingSender sender(clock);
  bot::WebhookChannel channel([&](const std::string& url) -> handlers::Sender& {
    urls.push_back(url.substr(url.find("key=") + 4));
    return sender;
  });
  auto targets = bot::targets_of(groups);
  targets.pop_back();  // "schools" removed from the config since its rows were queued
  OutboxWorker worker(outbox, channel, targets, log, clock.fn());
  while (worker.step().kind == OutboxWorker::Step::Kind::Posted) {
  }
  CHECK(urls == std::vector<std::string>{"d", "h", "d", "d", "h", "d", "d"});
  for (const auto& r : outbox.list()) {
    CAPTURE(r.group, r.ledger);
    if (r.group == "schools") {
      CHECK(r.status == OutboxStatus::Failed);
      CHECK(r.last_error == "group 'schools' is not in the config (any more)");
    } else {
      CHECK(r.status == OutboxStatus::Sent);
    }
  }
}

TEST_CASE(
    "The scheduler queues each bulletin's charts after its text, once, and posts them in order",
    "[delivery]") {
  TempDir dir;
  const auto path = dir.file("bangfu.db");
  FakeClock clock(local(2026, 11, 15, 10));
  RecordingLogger log;
  int charts = 0;
  bot::SchedulerSources sources;
  sources.render = [&](const handlers::Period& p, std::optional<storage::Ledger> l,
                       storage::LocalTime) {
    return "## " + bot::period_code(p) + " " + std::string(storage::ledger_code(*l)) + "\n" +
           std::string(l == storage::Ledger::Cadre ? 5000 : 10, 'x');
  };
  sources.charts = [&](const handlers::Period& p, std::optional<storage::Ledger> l,
                       storage::LocalTime) {
    ++charts;
    // Health has no unit due: no chart.
    if (l == storage::Ledger::Health) return std::vector<std::string>{};
    return std::vector<std::string>{"PNG " + bot::period_code(p) + " " +
                                    std::string(storage::ledger_code(*l))};
  };
  sources.unvisited = [](storage::LocalTime) { return std::vector<ReminderEntry>{}; };
  auto make = [&](Outbox& outbox) {
    return std::make_unique<bot::Scheduler>(
        outbox, ScheduleConfig{}, one_group_config(), kOffset, sources, clock.fn(), log, [] {},
        bot::Scheduler::Options{});
  };
  {
    Store store(path);
    Outbox outbox(store);
    CHECK(make(outbox)->run_once().empty());  // the first run
  }
  clock.set(local(2026, 12, 1, 9, 30));
  for (int restart = 0; restart < 2; ++restart) {
    Store store(path);
    Outbox outbox(store);
    auto sched = make(outbox);
    sched->run_once();
    std::vector<std::string> what;
    for (const auto& r : outbox.list())
      what.push_back(r.ledger + " " + std::to_string(r.part) + "/" + std::to_string(r.parts) + " " +
                     r.msgtype);
    CAPTURE(restart);
    CHECK(what == std::vector<std::string>{"cadre 1/3 markdown", "cadre 2/3 markdown",
                                           "cadre 3/3 image", "health 1/1 markdown",
                                           "education 1/2 markdown", "education 2/2 image"});
  }
  CHECK(charts == 3);  // rendered once per ledger, not again after the restart

  // The worker posts them in that order, each once, the images with their md5.
  Store store(path);
  Outbox outbox(store);
  RecordingSender sender(clock);
  auto channel = via(sender);
  OutboxWorker worker(outbox, channel, one_group(), log, clock.fn());
  while (worker.step().kind == OutboxWorker::Step::Kind::Posted) {
  }
  std::vector<std::string> types;
  for (const auto& p : sender.posts)
    types.push_back(json::parse(p.body)["msgtype"].get<std::string>());
  CHECK(types ==
        std::vector<std::string>{"markdown", "markdown", "image", "markdown", "markdown", "image"});
  const json image = json::parse(sender.posts[2].body);
  CHECK(bot::base64_decode(image["image"]["base64"].get<std::string>()) == "PNG 2026-11 cadre");
  CHECK(image["image"]["md5"] == json::parse(bot::image_body("PNG 2026-11 cadre"))["image"]["md5"]);
  for (const auto& p : outbox.list()) CHECK(p.status == OutboxStatus::Sent);
}

TEST_CASE("A chart that cannot be drawn does not hold the bulletin's text back", "[delivery]") {
  Store store(":memory:");
  Outbox outbox(store);
  FakeClock clock(local(2026, 11, 15, 10));
  RecordingLogger log;
  bot::SchedulerSources sources;
  sources.render = [](const handlers::Period&, std::optional<storage::Ledger>, storage::LocalTime) {
    return std::string("## 通报\n正文");
  };
  sources.charts = [](const handlers::Period&, std::optional<storage::Ledger>,
                      storage::LocalTime) -> std::vector<std::string> {
    throw std::runtime_error("chart: cannot create the surface");
  };
  sources.unvisited = [](storage::LocalTime) { return std::vector<ReminderEntry>{}; };
  ScheduleConfig schedule;
  schedule.ledgers = {"cadre"};
  bot::Scheduler sched(
      outbox, schedule, one_group_config(), kOffset, sources, clock.fn(), log, [] {},
      bot::Scheduler::Options{});
  sched.run_once();
  clock.set(local(2026, 12, 1, 9, 30));
  CHECK(keys(sched.run_once()) == std::vector<std::string>{"monthly:2026-11"});
  const auto rows = outbox.list();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].msgtype == "markdown");
  CHECK(log.has("error chart_failed"));
}

TEST_CASE("A reminder with everyone done posts nothing; a failed render is tried again",
          "[delivery]") {
  Store store(":memory:");
  Outbox outbox(store);
  FakeClock clock(local(2026, 11, 1, 10));  // after October's bulletin moment
  RecordingLogger log;
  bool broken = true;
  bot::SchedulerSources sources;
  sources.render = [&](const handlers::Period&, std::optional<storage::Ledger>,
                       storage::LocalTime) -> std::string {
    if (broken) throw std::runtime_error("template exploded");
    return "## ok";
  };
  sources.unvisited = [](storage::LocalTime) { return std::vector<ReminderEntry>{}; };
  bot::Scheduler sched(outbox, ScheduleConfig{}, one_group_config(), kOffset, sources, clock.fn(),
                       log, nullptr, bot::Scheduler::Options{});
  CHECK(sched.run_once().empty());
  clock.set(local(2026, 11, 20, 16));
  CHECK(keys(sched.run_once()) == std::vector<std::string>{"reminder:2026-11-20"});
  CHECK(outbox.list().empty());
  CHECK(log.has("reminder_none"));

  clock.set(local(2026, 12, 1, 9));
  CHECK_THROWS_AS(sched.run_once(), std::runtime_error);
  CHECK_FALSE(outbox.state("fired:monthly:2026-11"));
  broken = false;
  CHECK(keys(sched.run_once()) == std::vector<std::string>{"monthly:2026-11"});
  CHECK(outbox.list().size() == 3);
}

// --- the real sender against a local robot ----------------------------------------------------

namespace {

// A fake robot on an OS-assigned port; answers from `answer`; stops and joins on scope exit.
class LocalRobot {
 public:
  explicit LocalRobot(std::function<void(const httplib::Request&, httplib::Response&)> answer) {
    server_.Post("/cgi-bin/webhook/send",
                 [this, answer](const httplib::Request& req, httplib::Response& res) {
                   {
                     std::lock_guard lock(mu_);
                     bodies_.push_back(req.body);
                     keys_.push_back(req.get_param_value("key"));
                   }
                   answer(req, res);
                 });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 500 && !server_.is_running(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    REQUIRE(server_.is_running());
  }
  ~LocalRobot() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  std::string url(const std::string& key) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/cgi-bin/webhook/send?key=" + key;
  }
  std::vector<std::string> bodies() {
    std::lock_guard lock(mu_);
    return bodies_;
  }
  std::vector<std::string> keys() {
    std::lock_guard lock(mu_);
    return keys_;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> bodies_, keys_;
};

// Accepts one connection, reads the request and closes without answering: the request was
// delivered, the answer never comes.
class SilentPeer {
 public:
  SilentPeer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 4) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        ++connections;
        char buf[4096];
        std::string got;
        // Read the whole request (headers, then Content-Length bytes of body).
        for (;;) {
          const auto end = got.find("\r\n\r\n");
          const auto cl = got.find("Content-Length: ");
          if (end != std::string::npos && cl != std::string::npos &&
              got.size() >= end + 4 + std::stoul(got.substr(cl + 16)))
            break;
          const auto n = ::read(c, buf, sizeof buf);
          if (n <= 0) break;
          got.append(buf, static_cast<size_t>(n));
        }
        if (got.find("\"msgtype\"") != std::string::npos) ++received;
        ::close(c);
      }
    });
  }
  ~SilentPeer() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  std::atomic<int> connections{0};
  std::atomic<int> received{0};

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace

TEST_CASE("The webhook sender reads the robot's answers, errors included", "[delivery]") {
  const std::string key = "SECRET-KEY-42";
  std::atomic<int> mode{0};
  LocalRobot robot([&](const httplib::Request&, httplib::Response& res) {
    switch (mode.load()) {
      case 0:
        res.set_content(R"({"errcode":0,"errmsg":"ok"})", "application/json");
        break;
      case 1:
        res.set_content(R"({"errcode":45009,"errmsg":"api freq out of limit"})",
                        "application/json");
        break;
      case 2:
        res.set_content(R"({"errcode":93000,"errmsg":"invalid webhook url, key=SECRET-KEY-42"})",
                        "application/json");
        break;
      case 3:
        res.status = 502;
        res.set_content("bad gateway", "text/plain");
        break;
      default:
        res.set_content("<html>portal</html>", "text/html");
    }
  });
  bot::WebhookSender sender(robot.url(key));
  CHECK(sender.host().find("127.0.0.1:") == 0);
  CHECK(sender.host().find(key) == std::string::npos);
  const std::string body = bot::markdown_body("## 通报\n走访");

  auto r = sender.post(body);
  CHECK(r.ok());
  CHECK(robot.bodies() == std::vector<std::string>{body});
  CHECK(robot.keys() == std::vector<std::string>{key});

  mode = 1;
  r = sender.post(body);
  CHECK_FALSE(r.ok());
  CHECK(r.http_status == 200);
  CHECK(r.errcode == 45009);
  CHECK(decide(r, 1).action == SendDecision::Action::Retry);

  mode = 2;
  r = sender.post(body);
  CHECK(r.errcode == 93000);
  CHECK(r.errmsg.find(key) == std::string::npos);  // the key is blanked out
  CHECK(r.errmsg.find("***") != std::string::npos);
  CHECK(decide(r, 1).action == SendDecision::Action::Fail);

  mode = 3;
  r = sender.post(body);
  CHECK(r.http_status == 502);
  CHECK_FALSE(r.errcode);
  CHECK(decide(r, 1).action == SendDecision::Action::Retry);

  mode = 4;
  r = sender.post(body);
  CHECK(r.http_status == 200);
  CHECK_FALSE(r.errcode);
  CHECK_FALSE(r.error.empty());
  CHECK(decide(r, 1).action == SendDecision::Action::Retry);
}

TEST_CASE("The webhook sender tells 'not sent' from 'maybe sent'", "[delivery]") {
  SECTION("nobody listening: not sent, retried") {
    int port = 0;
    {
      LocalRobot gone([](const httplib::Request&, httplib::Response&) {});
      port = gone.port();
    }
    bot::WebhookSender sender("http://127.0.0.1:" + std::to_string(port) +
                              "/cgi-bin/webhook/send?key=k");
    const auto r = sender.post(bot::markdown_body("x"));
    CHECK(r.http_status == 0);
    CHECK_FALSE(r.maybe_delivered);
    CHECK(decide(r, 1).action == SendDecision::Action::Retry);
  }
  SECTION("the request went out, the answer never came: unknown, never resent") {
    SilentPeer peer;
    bot::WebhookSender sender("http://127.0.0.1:" + std::to_string(peer.port()) +
                              "/cgi-bin/webhook/send?key=k");
    const auto r = sender.post(bot::markdown_body("x"));
    CHECK(r.http_status == 0);
    CHECK(r.maybe_delivered);
    CHECK(peer.connections == 1);
    CHECK(peer.received == 1);
    CHECK(decide(r, 1).action == SendDecision::Action::Unknown);
  }
  SECTION("https to a peer that does not speak TLS: not sent") {
    LocalRobot plain([](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"errcode":0,"errmsg":"ok"})", "application/json");
    });
    const std::string url = plain.url("k");
    bot::WebhookSender sender("https://" + url.substr(7));
    const auto r = sender.post(bot::markdown_body("x"));
    CHECK_FALSE(r.ok());
    CHECK(r.http_status == 0);
    CHECK_FALSE(r.maybe_delivered);
    CHECK(plain.bodies().empty());
  }
}

TEST_CASE("The webhook channel answers a group it cannot post to with a failure, not a throw",
          "[delivery]") {
  bot::WebhookChannel channel;
  using S = bot::PostResult::Status;
  auto r = channel.post_markdown({"卫生健康", "", ""}, "x");
  CHECK(r.status == S::Failed);
  CHECK(r.message == "group '卫生健康' has no webhook_url");
  r = channel.post_text({"卫生健康", "", "http://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"},
                        "x", {"u1"});
  CHECK(r.status == S::Failed);
  CHECK(r.message ==
        "group '卫生健康': config key 'webhook_url' must use https:// (plain http:// is allowed "
        "only to 127.0.0.1 or localhost)");
  r = channel.post_image({"g", "", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"},
                         std::string(bot::kImageLimit + 1, 'x'));
  CHECK(r.status == S::Failed);
}

TEST_CASE("The webhook sender refuses URLs it must not use", "[delivery]") {
  auto url = GENERATE(as<std::string>{}, "http://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
                      "http://10.0.0.1/send?key=k", "qyapi.weixin.qq.com/send?key=k",
                      "https://qyapi.weixin.qq.com", "https:///send?key=k");
  CAPTURE(url);
  CHECK_THROWS_AS(bot::WebhookSender(url), bot::ConfigError);
}
