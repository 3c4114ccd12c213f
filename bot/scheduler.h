#pragma once

// The scheduler inside `bangfu serve` (README "Delivery"): the monthly bulletin, the quarterly
// review and the reminders, queued into the outbox at their configured moments.
//
// Rules:
// - A moment is due when first_run <= moment <= now and it has not fired. `first_run` is the
//   first time the scheduler ran on this database (stored once, in scheduler_state), so a new
//   deployment never posts bulletins for periods that ended before it existed.
// - Bulletins catch up: a moment missed while the service was down fires once when it is back,
//   however late. A moment fires once ever: its key ("monthly:2026-11") is recorded when it has
//   been queued, and queuing is idempotent per (kind, period, ledger), so a crash between the two
//   cannot queue it twice.
// - Reminders catch up only within their month, and only the latest one missed: a reminder about
//   "this month" is stale once the month is over, and two missed reminders are one reminder.
// - Each bulletin moment queues one bulletin per entry of `schedule.ledgers`, in that order
//   (default: cadre, health, education; "all" is the district bulletin), once for each group that
//   takes it (bot/groups.h): rendered once, queued per group, exactly once per group.
// - A reminder goes to each group with the lines of the ledgers it lists.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bot/config.h"
#include "bot/delivery.h"
#include "bot/log.h"
#include "handlers/bulletin.h"
#include "storage/outbox.h"

namespace bot {

/// One scheduled moment.
struct Moment {
  enum class Kind { Monthly, Quarterly, Reminder };
  Kind kind = Kind::Monthly;
  int64_t at = 0;           // unix seconds
  std::string key;          // "monthly:2026-11", "quarterly:2026-Q4", "reminder:2026-11-20"
  handlers::Period period;  // bulletins: the period reported
  storage::Date day;        // reminders: the local day of the moment
  bool operator==(const Moment&) const = default;
};

/// "monthly" / "quarterly" / "reminder" (the outbox kind).
std::string_view kind_code(Moment::Kind k);
/// "2026-11" / "2026-Q4", as handlers::Period::str() spells them.
std::string period_code(const handlers::Period& p);

/// The date `spec` names in month (year, month): 1..28 from the start, -1..-28 from the end.
storage::Date resolve_day(int year, int month, int spec);
/// Unix seconds of a local date and time at a fixed UTC offset.
int64_t unix_at(storage::Date d, int hour, int minute, int utc_offset_seconds);

/// The moments due at `now` (see the rules above), oldest first; at equal times monthly, then
/// quarterly, then the reminder. `fired` holds the keys of moments already fired. Pure.
std::vector<Moment> due_moments(const ScheduleConfig& schedule, int utc_offset_seconds,
                                int64_t first_run, int64_t now, const std::set<std::string>& fired);

/// What the scheduler needs from the rest of the program (production: render_bulletin and
/// monthly_figures; tests: fakes).
struct SchedulerSources {
  /// The bulletin's markdown for a period and a ledger (nullopt: the district as a whole).
  std::function<std::string(const handlers::Period&, std::optional<storage::Ledger>,
                            storage::LocalTime)>
      render;
  /// The bulletin's charts as PNG bytes, posted after its text (README "Charts"). Unset, or
  /// returning nothing: the text alone. If it throws, the failure is logged and the text is
  /// queued alone.
  std::function<std::vector<std::string>(const handlers::Period&, std::optional<storage::Ledger>,
                                         storage::LocalTime)>
      charts;
  /// Helpers with pairings not visited yet in the month of `now`.
  std::function<std::vector<ReminderEntry>(storage::LocalTime)> unvisited;
  /// The reminder's words (templates/reminder.mustache, reminder_messages). Must outlive the
  /// scheduler; required once `unvisited` gives anyone.
  const handlers::Templates* templates = nullptr;
  /// Called once a bulletin is queued for the group, to store its figures as posted (README
  /// "A bulletin is a published record"). May be empty.
  std::function<void(const handlers::Period&, std::optional<storage::Ledger>, storage::LocalTime)>
      posted;
};

/// Runs the schedule on its own thread. Looks at the clock at least every `max_wait` (real
/// time), fires what is due into the outbox and calls `on_enqueued` (to wake the outbox worker).
/// start/stop/notify are thread-safe; the destructor stops and joins.
class Scheduler {
 public:
  struct Options {
    std::chrono::milliseconds max_wait{std::chrono::seconds(30)};
    std::chrono::milliseconds error_wait{std::chrono::minutes(5)};  // after a failed pass
  };

  /// `groups`: where each ledger's messages go (bot/groups.h delivery_groups).
  Scheduler(storage::Outbox& outbox, ScheduleConfig schedule, std::vector<GroupConfig> groups,
            int utc_offset_seconds, SchedulerSources sources, DeliveryClock clock, Logger& log,
            std::function<void()> on_enqueued, Options options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  /// One pass: records the first run if this is it, then queues every due moment and records it
  /// as fired. Returns the moments fired. Throws (SQLite::Exception, TemplateError) and leaves
  /// the failing moment unfired, to be tried again on the next pass.
  std::vector<Moment> run_once();

  void start();
  /// Lets a pass in progress finish, then joins. Idempotent.
  void stop();
  /// Wakes the thread to look at the clock now (tests that move time).
  void notify();

 private:
  void run();
  void fire(const Moment& m, int64_t now);

  storage::Outbox& outbox_;
  ScheduleConfig schedule_;
  std::vector<GroupConfig> groups_;
  int utc_offset_;
  SchedulerSources sources_;
  DeliveryClock clock_;
  Logger& log_;
  std::function<void()> on_enqueued_;
  Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool notified_ = false;
  std::thread thread_;
};

}  // namespace bot
