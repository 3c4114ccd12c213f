#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "storage/model.h"
#include "storage/store.h"

namespace SQLite {
class Database;
}

namespace storage {

/// What one pairing's check-ins add up to in one calendar month.
struct PairingMonthActivity {
  int64_t pairing_id = 0;
  Month month;
  int visit_days = 0;  // distinct visit_date of check-ins not undone with mode != phone
  int phone_days = 0;  // distinct visit_date of phone check-ins not undone
  int undone = 0;      // check-ins undone (each one counted)
};

/// A must-visit occasion (五必访) as reported: one per (pairing, kind, date), however many
/// check-ins (not undone) named it that day.
struct OccasionReport {
  int64_t pairing_id = 0;
  Date date;         // the visit_date of the check-in that reported it
  std::string kind;  // wedding_funeral, exam, illness, accident, festival
  /// The earliest counted visit (not undone, mode != phone) of the pairing on or after `date`,
  /// whatever `now` is; the caller decides whether it falls in the window.
  std::optional<Date> first_visit;
};

/// A policy (应享未享 …) reported for a pairing in a month; one per (pairing, month, kind).
struct PolicyReport {
  int64_t pairing_id = 0;
  Month month;
  std::string kind;  // medical_aid, education_aid, housing, minimum_living
};

/// A tracked problem (storage/problems.h) as bulletins read it. Items now not_a_problem are not
/// read at all: they were not problems.
struct ProblemReport {
  int64_t id = 0;
  int64_t pairing_id = 0;
  Ledger ledger = Ledger::Cadre;
  std::string unit;
  std::string household_head, person;  // for the masked household only, never shown in full
  std::string category, policy;        // 应享未享 and its policy (may be ""), 住房安全, …
  bool resolved = false;               // status resolved (else open or in_progress)
  Date reported_on;
  std::optional<Date> closed_on;  // the day it was resolved
};

/// Everything a bulletin needs for the dates [from, to], read in one snapshot.
struct BulletinSnapshot {
  /// Pairings in force on some day of [from, to] or with any check-in dated in it, ordered by
  /// id. Only id, helper_id, helper_name, ledger, unit, household_id, household_head, person,
  /// start_date and end_date are filled: the person's category (患病/残疾) is never read, so it
  /// cannot reach the chat.
  std::vector<Pairing> pairings;
  /// One row per (pairing, month) with any check-in dated in [from, to], for the pairings
  /// above only, ordered by pairing id, then month.
  std::vector<PairingMonthActivity> activity;
  /// Occasions reported on dates in [from, to], for the pairings above, ordered by pairing id,
  /// date, kind.
  std::vector<OccasionReport> occasions;
  /// Policies reported on dates in [from, to], for the pairings above.
  std::vector<PolicyReport> policies;
  /// Every problem item reported on or before `to` and not closed before `from`, except
  /// not_a_problem ones, by number.
  std::vector<ProblemReport> problems;
};

/// Read queries for bulletins, on a read-only connection of their own to the Store's file (in
/// WAL mode a snapshot reads while check-ins keep being written: a bulletin at province scale
/// never holds up the chat), or on the Store's connection and under its lock for ":memory:".
/// Check-ins are never loaded as records: they are aggregated per pairing and month (in SQL, or
/// while streaming a narrow projection), so memory grows with pairings × months, not with
/// check-ins. One object per thread; must not outlive `store`. Throws SQLite::Exception.
class BulletinQueries {
 public:
  explicit BulletinQueries(Store& store);
  ~BulletinQueries();
  BulletinQueries(const BulletinQueries&) = delete;
  BulletinQueries& operator=(const BulletinQueries&) = delete;

  /// Reads everything for [from, to] (one ledger, or all with nullopt) inside one read
  /// transaction, so the parts agree with each other.
  BulletinSnapshot snapshot(Date from, Date to, std::optional<Ledger> only);

  /// SQLite's plan for each query snapshot() runs (EXPLAIN QUERY PLAN), as it would run on
  /// this database now: one line per step, indented under its parent. For benchmarks and
  /// operators checking that the indexes are used.
  struct QueryPlan {
    std::string name;
    std::string sql;
    std::vector<std::string> steps;
  };
  std::vector<QueryPlan> plans();

 private:
  struct Statements;
  Store& store_;
  std::unique_ptr<SQLite::Database> own_;  // null for ":memory:": the Store's connection is used
  std::unique_ptr<Statements> st_;
};

}  // namespace storage
