#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "storage/model.h"

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace storage {

class Checkpointer;
class WalWriteGather;

/// One ledger's share of a roster import.
struct LedgerImport {
  int inserted = 0, updated = 0, unchanged = 0;
  int ended = 0;        // open pairings absent from the file, ended on the import date
  int open_before = 0;  // pairings of the ledger open after the import date, before the import
};

/// How a roster import may end pairings.
struct ImportOptions {
  /// The ledgers whose pairings absent from the file end. nullopt: the ledgers that have at least
  /// one row in the file (so importing only the health office's sheet ends no cadre pairing).
  std::optional<std::vector<Ledger>> ledgers;
  /// Ending more than this share of a ledger's open pairings is refused (nothing changes)...
  double max_end_share = 0.10;
  /// ...unless forced.
  bool force = false;
  /// Work out and report everything, then roll back: nothing changes.
  bool dry_run = false;
};

/// Outcome of a roster import.
struct ImportSummary {
  int inserted = 0;  // new pairings
  int updated = 0;   // existing pairings whose fields changed
  int unchanged = 0;
  int ended = 0;  // pairings absent from the file, now ended on the import date
  std::map<Ledger, LedgerImport> by_ledger;  // the same counts per ledger (ledger after import)
  std::vector<Pairing> ended_pairings;       // as they were before the import
  std::vector<Ledger> refused;  // ledgers over max_end_share without force: nothing changed
  bool applied = false;         // committed (false for a dry run or a refusal)
};

/// One row of the audit trail: who changed what, and when.
struct AuditEntry {
  int64_t id = 0;
  int64_t at = 0;       // unix seconds
  std::string actor;    // userid, or "roster-import" when no one was named
  std::string action;   // roster_import, pairing_update, pairing_reopen, pairing_end,
                        // checkin_undo, checkin_correct, checkin_void, checkin_add
  std::string subject;  // "roster", "pairing:<id>", "checkin:<id>"
  std::string detail;   // JSON; for changes {"field": [old, new], ...}
};

/// What happened to an inbound message when it was saved.
enum class SaveInbound { New, Duplicate };

/// What the bot made of a handled message, stored as inbound.outcome:
///  recorded (a check-in), corrected (更正), undone (撤销), answered (a command such as 帮助),
///  not_understood (answered with a question or an error: nothing recorded), rate_limited.
enum class InboundOutcome { Recorded, Corrected, Undone, Answered, NotUnderstood, RateLimited };
std::string_view inbound_outcome_code(InboundOutcome o);

/// A check-in joined with its pairing, as the office lists it.
struct CheckinListRow {
  CheckinRecord checkin;
  Pairing pairing;
};

/// Which check-ins `Store::checkins` lists; every field set narrows the list.
struct CheckinFilter {
  std::optional<std::string> helper_id;
  std::optional<std::string> household_id;
  std::optional<Month> month;  // by visit_date
};

/// A message the bot did not record (bangfu inbox list).
struct InboxEntry {
  InboundMessage message;
  std::string status;  // not_understood, failed, rate_limited
  std::string reply;   // what the bot answered ("" when it failed before answering)
  std::string error;   // why handling failed (failed only)
  std::optional<int64_t> handled_at;
};

/// A helper's side of the roster: the name and every pairing (ended ones included), as of the
/// last roster change (Store::roster_of).
struct HelperRoster {
  std::optional<std::string> name;  // as helper_name(): none if the userid is in no pairing
  std::vector<Pairing> pairings;    // every pairing, ordered by household_head, person, id
};

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
  /// The applied migration version (PRAGMA user_version).
  int schema_version();

  // --- roster -------------------------------------------------------------------------------
  /// Upserts `rows` (all validated already) by (helper_id, household_id, person) in one
  /// transaction; never deletes. A pairing in the database that is absent from `rows` and still
  /// open after `import_date` (no end date, or a later one) ends on `import_date`. A row's own
  /// end_date is stored as given, so an ended pairing that reappears is reopened with it. Writes
  /// one audit row for the import and one per updated, reopened or ended pairing.
  ImportSummary import_roster(const std::vector<Pairing>& rows, Date import_date);
  /// The same, naming who imported and when (unix seconds) in the audit trail.
  ImportSummary import_roster(const std::vector<Pairing>& rows, Date import_date,
                              const std::string& actor, int64_t at);
  /// The office's import (bangfu roster import): ends only pairings of the ledgers in scope
  /// (`options.ledgers`, else those present in `rows`), refuses to end more than
  /// `max_end_share` of a ledger's open pairings unless `force` (summary.refused lists them, and
  /// nothing changes), and with `dry_run` reports what would change and rolls back. The two
  /// overloads above replace the whole roster (every ledger, no limit): for tools and tests.
  ImportSummary import_roster(const std::vector<Pairing>& rows, Date import_date,
                              const std::string& actor, int64_t at, const ImportOptions& options);
  /// Pairings of `helper_id` in force on `on`, ordered by household_head, person.
  std::vector<Pairing> pairings_of(const std::string& helper_id, Date on);
  /// Every pairing in force at any day of [from, to], all helpers (for bulletins).
  std::vector<Pairing> pairings_between(Date from, Date to);
  std::optional<Pairing> pairing(int64_t id);
  /// Every pairing (ended ones included) of `helper_id` with `household_id`, by person, id.
  std::vector<Pairing> pairings_with(const std::string& helper_id, const std::string& household_id);
  /// Name of the helper if the userid appears in any pairing (ended ones included).
  std::optional<std::string> helper_name(const std::string& helper_id);
  /// The helper's name and pairings from the roster cache: read from the database the first
  /// time, then kept until the roster changes. Every roster change goes through import_roster,
  /// which writes an audit row with subject "roster" in its transaction; the cache is dropped
  /// when this process commits one (before import_roster returns) and when a lookup finds a
  /// newer such row (an import by another process, e.g. `bangfu roster import`), so a message
  /// after a change sees it. pairings_of() and helper_name() answer from it. Costs one
  /// indexed lookup of the audit table, at most once a millisecond (calls within a millisecond
  /// of that lookup share it: an import by another process is seen from 1 ms after its commit);
  /// never waits for the writer (WAL readers). Thread-safe.
  std::shared_ptr<const HelperRoster> roster_of(const std::string& helper_id);

  // --- inbound messages ---------------------------------------------------------------------
  /// Stores the raw message (committed, durable) unless its msgid is already there.
  SaveInbound save_inbound(const InboundMessage& m);
  /// The reply recorded for msgid, if it was handled.
  std::optional<std::string> reply_for(const std::string& msgid);

  // --- check-ins: group-committed write transactions -----------------------------------------
  /// Runs `fn` as one unit of a group commit and returns its result once the commit that holds
  /// it is on disk (synchronous=FULL: one fsync per group, not per call). A single writer thread
  /// takes every unit queued while the previous group was being committed, runs each inside its
  /// own SAVEPOINT in one transaction, then commits. If `fn` throws, only its own changes roll
  /// back and the exception reaches this caller; if the commit fails, every caller in the group
  /// gets the error. `fn` runs on the writer thread, so it must use only the Tx methods (calling
  /// a Store method from fn deadlocks).
  class Tx;
  template <class Fn>
  auto transaction(Fn&& fn) -> decltype(fn(std::declval<Tx&>()));

  /// Queues `fn` as one unit of the group commit, like transaction(), and returns at once. The
  /// writer calls `done` exactly once, on its own thread: with nullptr after the commit that holds
  /// the unit is on disk, with the exception `fn` threw (its own changes rolled back, the group
  /// committed), or with the commit's failure (nothing of the group is kept). `fn` runs on the
  /// writer thread (Tx methods only). `done` must be quick and must not block or call the Store
  /// (the next group waits for it): hand the result to another thread. Throws
  /// SQLite::Exception, without calling `done`, if the store is closing.
  void submit_async(std::function<void(Tx&)> fn, std::function<void(std::exception_ptr)> done);

  /// How many groups and units have been committed (for benchmarks and tests).
  struct CommitStats {
    uint64_t groups = 0;
    uint64_t units = 0;
    // WAL checkpoints (storage/checkpointer.h): passes off the writer thread, and inside a
    // commit (one per restart of the WAL under continuous writes).
    uint64_t checkpoints_background = 0;
    uint64_t checkpoints_tail = 0;
  };
  CommitStats commit_stats();

  /// The writer thread asks for this many nice steps fewer than the process's: every answer
  /// waits for it in turn, and on a small machine it otherwise waited for a core among the event
  /// loops (BENCHMARKS.md §9). Granted to root, to CAP_SYS_NICE, or by an RLIMIT_NICE that
  /// reaches (the shipped systemd unit's LimitNICE=-10); otherwise it keeps the process's.
  static constexpr int kWriterNiceSteps = -10;
  /// The writer thread's nice value, as it set it on starting.
  int writer_nice() const { return writer_nice_; }

  /// All check-ins whose visit_date is in [from, to], undone ones included.
  std::vector<CheckinRecord> checkins_between(Date from, Date to);
  /// The ledger export rows for month `m`, optionally one ledger, ordered by visit_date, id.
  std::vector<LedgerRow> ledger(Month m, std::optional<Ledger> only);
  /// Per ledger, the check-ins that count (not undone) dated in month `m` and received at or
  /// after `received_from` (unix seconds): late reports (补报) when that is the month's end.
  std::map<Ledger, int> late_reports(Month m, int64_t received_from);
  /// Audit rows with id > after_id, oldest first.
  std::vector<AuditEntry> audit_entries(int64_t after_id = 0);
  /// Audit rows written at or after `since` (unix seconds), oldest first.
  std::vector<AuditEntry> audit_since(int64_t since);

  /// Check-ins matching `filter`, every status, ordered by visit_date, id.
  std::vector<CheckinListRow> checkins(const CheckinFilter& filter);
  /// One check-in by id.
  std::optional<CheckinRecord> checkin(int64_t id);
  /// Messages received at or after `since` (unix seconds) that the bot did not record: failed,
  /// or handled as not_understood or rate_limited. `status` narrows to one of those; nullopt
  /// for all. Oldest first.
  std::vector<InboxEntry> inbox(std::optional<std::string> status, int64_t since);

 private:
  friend class Tx;
  // Query sets kept in their own files, sharing this connection and lock:
  friend class BulletinQueries;     // storage/bulletin_queries.h
  friend class Outbox;              // storage/outbox.h
  friend class Problems;            // storage/problems.h
  friend class PublishedBulletins;  // storage/problems.h
  struct Job {
    std::function<void(Tx&)> fn;
    std::function<void(std::exception_ptr)> done;
    std::exception_ptr error;
  };
  /// Queues the unit and blocks until its group is committed; rethrows its failure.
  void submit(const std::function<void(Tx&)>& fn);
  void writer_loop();
  void run_group(std::vector<Job>& jobs);
  void rollback_locked();
  /// A statement of db_ prepared once and kept for the connection's life (by its SQL text), for
  /// the friends' fixed statements that run per message. Call with mu_ held, and use it under
  /// a `Use` guard: the same object comes back for the same text.
  SQLite::Statement& prepared(std::string_view sql);

  std::mutex mu_;  // guards the connection and prepared statements
  // db_'s VFS (null for ":memory:"): declared first, so it outlives the connection.
  std::unique_ptr<WalWriteGather> wal_gather_;
  std::unique_ptr<SQLite::Database> db_;
  std::unique_ptr<Checkpointer> checkpointer_;  // db_'s WAL copied back off the writer thread
  struct Statements;
  std::unique_ptr<Statements> st_;

  struct Reader;
  std::vector<std::unique_ptr<Reader>> readers_;  // empty for ":memory:": reads use db_ under mu_
  std::unique_lock<std::mutex> lock_reader(Reader*& out);

  struct RosterCache;
  std::unique_ptr<RosterCache> roster_;
  /// Drops the roster cache; called after this process commits a roster change.
  void roster_changed();

  std::mutex queue_mu_;                // guards queue_, stopping_, stats_
  std::condition_variable writer_cv_;  // wakes the writer: work queued or stopping
  std::vector<Job> queue_;
  bool stopping_ = false;
  CommitStats stats_;
  int writer_nice_ = 0;
  std::thread writer_;  // last member: started when everything above is ready
};

/// Operations valid inside Store::transaction. Not thread-safe on its own; lives only for the
/// duration of the callback.
class Store::Tx {
 public:
  /// Stores the raw message unless its msgid is already there (committed with the group).
  SaveInbound save_inbound(const InboundMessage& m);
  /// The reply recorded for msgid, if it was handled.
  std::optional<std::string> reply_for(const std::string& msgid);
  /// Runs `fn` in a nested SAVEPOINT: if it throws, its changes roll back and the exception
  /// propagates, while the unit's earlier changes (e.g. the raw message) stay.
  template <class Fn>
  auto attempt(Fn&& fn) -> decltype(fn());
  /// Inserts the check-in; returns its id.
  int64_t add_checkin(const CheckinRecord& c);
  /// The helper's most recent (by received_at, then id) check-in from a message (not an office
  /// entry) that still counts, received at or after `since` (unix seconds). The lookup reads
  /// back from the newest check-in of all helpers, so `since` must be a short window.
  std::optional<CheckinRecord> last_active_checkin(const std::string& helper_id, int64_t since);
  /// The helper's active check-ins that came from messages received at or after `since`
  /// (office entries excluded), newest first (received_at, then id). Reads every helper's
  /// check-ins since then: a short window.
  std::vector<CheckinRecord> active_checkins_since(const std::string& helper_id, int64_t since);
  /// One check-in by id.
  std::optional<CheckinRecord> checkin(int64_t id);
  /// Marks the check-in undone (kept, not deleted). False if it was already undone.
  bool mark_undone(int64_t checkin_id, const std::string& by, int64_t at);
  /// Replaces active check-in `old_id` by `replacement`: inserts it, marks the old one corrected
  /// (kept, with corrected_by = the new id) and audits both as one checkin_correct row with
  /// before and after. Returns the new id, or nullopt (nothing changed) if old_id is not active.
  std::optional<int64_t> correct_checkin(int64_t old_id, const CheckinRecord& replacement,
                                         const std::string& by, int64_t at);
  /// The office voids an active check-in (kept, status void), auditing `reason`. False (nothing
  /// changed) if it does not exist or no longer counts.
  bool void_checkin(int64_t checkin_id, const std::string& by, int64_t at,
                    const std::string& reason);
  /// Records a check-in the office entered (paper record): no message, entered_by = `by`,
  /// audited with `reason`. Returns its id.
  int64_t add_office_checkin(CheckinRecord c, const std::string& by, int64_t at,
                             const std::string& reason);
  /// Visits that count for the pairing in month m: not undone, mode != phone, distinct visit days.
  int counted_visits(int64_t pairing_id, Month m);
  /// Records the reply sent for an inbound message (for retries) and what the bot made of it.
  void set_reply(const std::string& msgid, const std::string& reply, InboundOutcome outcome);
  /// Records that handling the message failed (kept for the office to see).
  void set_failed(const std::string& msgid, const std::string& reason);

 private:
  friend class Store;
  friend class Problems;  // storage/problems.h: its writes run inside a unit
  friend class PublishedBulletins;
  explicit Tx(Store& s) : s_(s) {}
  void savepoint();
  void release();
  void rollback_to();
  Store& s_;
};

template <class Fn>
auto Store::transaction(Fn&& fn) -> decltype(fn(std::declval<Tx&>())) {
  using R = decltype(fn(std::declval<Tx&>()));
  if constexpr (std::is_void_v<R>) {
    submit([&](Tx& tx) { fn(tx); });
  } else {
    std::optional<R> result;
    submit([&](Tx& tx) { result.emplace(fn(tx)); });
    return std::move(*result);
  }
}

template <class Fn>
auto Store::Tx::attempt(Fn&& fn) -> decltype(fn()) {
  savepoint();
  try {
    if constexpr (std::is_void_v<decltype(fn())>) {
      fn();
      release();
    } else {
      auto r = fn();
      release();
      return r;
    }
  } catch (...) {
    rollback_to();
    throw;
  }
}

}  // namespace storage
