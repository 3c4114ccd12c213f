#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "storage/model.h"

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace storage {

/// Outcome of a roster import.
struct ImportSummary {
  int inserted = 0;   // new pairings
  int updated = 0;    // existing pairings whose fields changed
  int unchanged = 0;
  int ended = 0;      // pairings absent from the file, now ended on the import date
};

/// What happened to an inbound message when it was saved.
enum class SaveInbound { New, Duplicate };

/// The one owner of the SQLite database. Opens (creating if needed) the file, sets WAL,
/// synchronous=FULL and foreign keys, applies migrations (PRAGMA user_version). All methods are
/// thread-safe: a mutex serialises them, since the HTTP server calls from a thread pool.
/// Throws SQLite::Exception on infrastructure failure.
class Store {
 public:
  explicit Store(const std::string& path);  // ":memory:" works
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  /// True when a trivial query succeeds.
  bool healthy();

  // --- roster -------------------------------------------------------------------------------
  /// Upserts `rows` (all validated already) in one transaction. Pairings in the database that are
  /// still open (no end date) and absent from `rows` get end_date = import_date - 1 day... see .cpp
  /// contract: they end on `import_date`. A row's explicit end_date wins.
  ImportSummary import_roster(const std::vector<Pairing>& rows, Date import_date);
  /// Pairings of `helper_id` in force on `on`, ordered by household_head, person.
  std::vector<Pairing> pairings_of(const std::string& helper_id, Date on);
  /// Every pairing in force at any day of [from, to], all helpers (for bulletins).
  std::vector<Pairing> pairings_between(Date from, Date to);
  std::optional<Pairing> pairing(int64_t id);
  /// Name of the helper if the userid appears in any pairing (ended ones included).
  std::optional<std::string> helper_name(const std::string& helper_id);

  // --- inbound messages ---------------------------------------------------------------------
  /// Stores the raw message (committed, durable) unless its msgid is already there.
  SaveInbound save_inbound(const InboundMessage& m);
  /// The reply recorded for msgid, if it was handled.
  std::optional<std::string> reply_for(const std::string& msgid);

  // --- check-ins (call inside one transaction per handled message; see `transaction`) --------
  /// Runs `fn` inside one SQLite transaction, committed if fn returns normally, rolled back if
  /// it throws. Holds the store's lock for the whole call, so fn must use only the `_locked`
  /// methods below through the given reference.
  class Tx;
  template <class Fn>
  auto transaction(Fn&& fn) -> decltype(fn(std::declval<Tx&>()));

  /// All check-ins whose visit_date is in [from, to], undone ones included.
  std::vector<CheckinRecord> checkins_between(Date from, Date to);
  /// The ledger export rows for month `m`, optionally one ledger, ordered by visit_date, id.
  std::vector<LedgerRow> ledger(Month m, std::optional<Ledger> only);

 private:
  friend class Tx;
  void begin_locked();
  void commit_locked();
  void rollback_locked();

  std::mutex mu_;
  std::unique_ptr<SQLite::Database> db_;
  struct Statements;
  std::unique_ptr<Statements> st_;
};

/// Operations valid inside Store::transaction. Not thread-safe on its own; lives only for the
/// duration of the callback.
class Store::Tx {
 public:
  /// Inserts the check-in; returns its id.
  int64_t add_checkin(const CheckinRecord& c);
  /// The helper's most recent (by received_at, then id) check-in that is not undone.
  std::optional<CheckinRecord> last_active_checkin(const std::string& helper_id);
  /// Marks the check-in undone (kept, not deleted). False if it was already undone.
  bool mark_undone(int64_t checkin_id, const std::string& by, int64_t at);
  /// Visits that count for the pairing in month m: not undone, mode != phone, distinct visit days.
  int counted_visits(int64_t pairing_id, Month m);
  /// Records the reply sent for an inbound message (for retries).
  void set_reply(const std::string& msgid, const std::string& reply);
  /// Records that handling the message failed (kept for the office to see).
  void set_failed(const std::string& msgid, const std::string& reason);

 private:
  friend class Store;
  explicit Tx(Store& s) : s_(s) {}
  Store& s_;
};

template <class Fn>
auto Store::transaction(Fn&& fn) -> decltype(fn(std::declval<Tx&>())) {
  std::lock_guard lock(mu_);
  begin_locked();
  Tx tx(*this);
  try {
    if constexpr (std::is_void_v<decltype(fn(tx))>) {
      fn(tx);
      commit_locked();
    } else {
      auto r = fn(tx);
      commit_locked();
      return r;
    }
  } catch (...) {
    rollback_locked();
    throw;
  }
}

}  // namespace storage
