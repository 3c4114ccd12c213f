#include "bot/scheduler.h"

#include <algorithm>
#include <cstdio>
#include <tuple>

#include "bot/groups.h"
#include "storage/thread_name.h"

namespace bot {
namespace {

using storage::Date;
using storage::Month;

constexpr const char* kFirstRunKey = "first_run";
constexpr const char* kFiredPrefix = "fired:";

int quarter_of(int month) {
  return (month - 1) / 3 + 1;
}

// Quarters as one running number, so ranges are plain loops.
int quarter_number(int year, int quarter) {
  return year * 4 + (quarter - 1);
}

handlers::Period quarter_period(int number) {
  return {handlers::BulletinKind::Quarterly, number / 4, number % 4 + 1};
}

int month_number(Month m) {
  return m.year * 12 + (m.month - 1);
}

Month month_from(int number) {
  return {number / 12, number % 12 + 1};
}

}  // namespace

std::string_view kind_code(Moment::Kind k) {
  switch (k) {
    case Moment::Kind::Monthly:
      return "monthly";
    case Moment::Kind::Quarterly:
      return "quarterly";
    case Moment::Kind::Reminder:
      return "reminder";
  }
  return "monthly";
}

std::string period_code(const handlers::Period& p) {
  char buf[16];
  if (p.kind == handlers::BulletinKind::Monthly)
    std::snprintf(buf, sizeof buf, "%04d-%02d", p.year, p.index);
  else
    std::snprintf(buf, sizeof buf, "%04d-Q%d", p.year, p.index);
  return buf;
}

Date resolve_day(int year, int month, int spec) {
  const int last = storage::days_in_month(year, month);
  const int day = spec > 0 ? std::min(spec, last) : std::max(1, last + 1 + spec);
  return {year, month, day};
}

int64_t unix_at(Date d, int hour, int minute, int utc_offset_seconds) {
  return d.days() * 86400 + hour * 3600 + minute * 60 - utc_offset_seconds;
}

std::vector<Moment> due_moments(const ScheduleConfig& s, int offset, int64_t first_run, int64_t now,
                                const std::set<std::string>& fired) {
  std::vector<Moment> due;
  if (now < first_run) return due;  // the clock went back: nothing can be due
  const Date first_day = storage::LocalTime{first_run, offset}.date();
  const Date today = storage::LocalTime{now, offset}.date();
  auto consider = [&](Moment m) {
    if (m.at >= first_run && m.at <= now && !fired.count(m.key)) due.push_back(std::move(m));
  };

  if (s.monthly.enabled) {
    // The bulletin for month P is posted in month P+1: from the month before first_run's to the
    // month before today's.
    const int from = month_number(Month::of(first_day)) - 1;
    const int to = month_number(Month::of(today)) - 1;
    for (int n = from; n <= to; ++n) {
      const Month p = month_from(n), post = p.next();
      Moment m;
      m.kind = Moment::Kind::Monthly;
      m.period = {handlers::BulletinKind::Monthly, p.year, p.month};
      m.at = unix_at(resolve_day(post.year, post.month, s.monthly.day), s.monthly.hour,
                     s.monthly.minute, offset);
      m.key = "monthly:" + period_code(m.period);
      consider(std::move(m));
    }
  }
  if (s.quarterly.enabled) {
    // The review of quarter Q is posted in the first month of Q+1.
    const int from = quarter_number(first_day.year, quarter_of(first_day.month)) - 1;
    const int to = quarter_number(today.year, quarter_of(today.month)) - 1;
    for (int n = from; n <= to; ++n) {
      const handlers::Period next = quarter_period(n + 1);
      Moment m;
      m.kind = Moment::Kind::Quarterly;
      m.period = quarter_period(n);
      m.at = unix_at(resolve_day(next.year, (next.index - 1) * 3 + 1, s.quarterly.day),
                     s.quarterly.hour, s.quarterly.minute, offset);
      m.key = "quarterly:" + period_code(m.period);
      consider(std::move(m));
    }
  }
  // Reminders: only this month's, and of those only the latest that has come.
  std::optional<Moment> latest;
  for (int spec : s.reminder_days) {
    Moment m;
    m.kind = Moment::Kind::Reminder;
    m.day = resolve_day(today.year, today.month, spec);
    m.at = unix_at(m.day, s.reminder_hour, s.reminder_minute, offset);
    m.key = "reminder:" + m.day.iso();
    if (m.at <= now && (!latest || m.at > latest->at)) latest = std::move(m);
  }
  if (latest) consider(std::move(*latest));

  std::sort(due.begin(), due.end(), [](const Moment& a, const Moment& b) {
    return std::tie(a.at, a.kind, a.key) < std::tie(b.at, b.kind, b.key);
  });
  return due;
}

// --- Scheduler ---------------------------------------------------------------------------------

Scheduler::Scheduler(storage::Outbox& outbox, ScheduleConfig schedule,
                     std::vector<GroupConfig> groups, int utc_offset_seconds,
                     SchedulerSources sources, DeliveryClock clock, Logger& log,
                     std::function<void()> on_enqueued, Options options)
    : outbox_(outbox),
      schedule_(std::move(schedule)),
      groups_(std::move(groups)),
      utc_offset_(utc_offset_seconds),
      sources_(std::move(sources)),
      clock_(std::move(clock)),
      log_(log),
      on_enqueued_(std::move(on_enqueued)),
      options_(options) {}

Scheduler::~Scheduler() {
  stop();
}

std::vector<Moment> Scheduler::run_once() {
  const int64_t now = clock_();
  const std::string stored = outbox_.state_init(kFirstRunKey, std::to_string(now), now);
  int64_t first_run = now;
  try {
    first_run = std::stoll(stored);
  } catch (const std::exception&) {
    throw std::runtime_error("scheduler_state first_run is not a number: " + stored);
  }
  std::set<std::string> fired;
  for (const auto& [key, value] : outbox_.states(kFiredPrefix))
    fired.insert(key.substr(std::char_traits<char>::length(kFiredPrefix)));
  auto due = due_moments(schedule_, utc_offset_, first_run, now, fired);
  for (const Moment& m : due) {
    fire(m, now);
    outbox_.set_state(kFiredPrefix + m.key, std::to_string(now), now);
    if (on_enqueued_) on_enqueued_();
  }
  return due;
}

void Scheduler::fire(const Moment& m, int64_t now) {
  const storage::LocalTime local{now, utc_offset_};
  const std::string at = storage::LocalTime{m.at, utc_offset_}.iso();
  if (m.kind == Moment::Kind::Reminder) {
    const auto entries = sources_.unvisited(local);
    for (const auto& group : groups_) {
      auto to_remind = reminder_entries_for(group, entries);
      if (!to_remind.empty() && !sources_.templates)
        throw std::logic_error("scheduler: a reminder is due but no templates were given");
      const auto messages =
          to_remind.empty()
              ? std::vector<storage::OutboxMessage>{}
              : reminder_messages(std::move(to_remind), local.date(), *sources_.templates);
      if (messages.empty()) {
        log_.info("reminder_none",
                  {{"key", m.key}, {"moment", at}, {"group", group_label(group.name)}});
        continue;
      }
      outbox_.enqueue("reminder", m.day.iso(), "all", messages, now, false, group.name);
      log_.info("scheduled", {{"key", m.key},
                              {"moment", at},
                              {"group", group_label(group.name)},
                              {"messages", std::to_string(messages.size())}});
    }
    return;
  }
  for (const std::string& ledger : schedule_.ledgers) {
    const auto to = groups_for(groups_, ledger);
    if (to.empty()) {
      log_.info("no_group", {{"key", m.key}, {"ledger", ledger}});
      continue;
    }
    const std::optional<storage::Ledger> only =
        ledger == "all" ? std::nullopt : storage::ledger_from(ledger);
    const std::string markdown = sources_.render(m.period, only, local);
    std::vector<std::string> images;
    if (sources_.charts && !markdown.empty()) {
      // The pictures illustrate the text; a failure to draw them must not hold the text back
      // (the moment would be retried forever). Logged, and the text goes alone.
      try {
        images = sources_.charts(m.period, only, local);
      } catch (const std::exception& e) {
        log_.error("chart_failed", {{"key", m.key}, {"ledger", ledger}, {"error", e.what()}});
      }
    }
    std::vector<size_t> too_large;
    const auto messages = bulletin_messages(markdown, images, &too_large);
    for (size_t i : too_large)
      log_.warn("chart_too_large", {{"key", m.key},
                                    {"ledger", ledger},
                                    {"chart", std::to_string(i + 1)},
                                    {"bytes", std::to_string(images[i].size())}});
    if (messages.empty()) continue;
    bool created = false;
    for (const auto& group : to) {
      const auto r = outbox_.enqueue(std::string(kind_code(m.kind)), period_code(m.period), ledger,
                                     messages, now, false, group.name);
      created = created || r.created;
      log_.info("scheduled", {{"key", m.key},
                              {"moment", at},
                              {"ledger", ledger},
                              {"group", group_label(group.name)},
                              {"parts", std::to_string(messages.size())},
                              {"charts", std::to_string(images.size() - too_large.size())},
                              {"queued", r.created ? "1" : "0 (already queued)"}});
    }
    if (created && sources_.posted) sources_.posted(m.period, only, local);
  }
}

void Scheduler::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { run(); });
  storage::name_thread(thread_, "bangfu-schedule");
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void Scheduler::notify() {
  {
    std::lock_guard lock(mu_);
    notified_ = true;
  }
  cv_.notify_all();
}

void Scheduler::run() {
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    auto wait = options_.max_wait;
    try {
      run_once();
    } catch (const std::exception& e) {
      // The loop top is a catch site (STYLE 11): the moment stays unfired and is tried again.
      log_.error("scheduler_error", {{"error", e.what()}});
      wait = options_.error_wait;
    }
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, wait, [&] { return stopping_ || notified_; });
    notified_ = false;
  }
}

}  // namespace bot
