#pragma once

// The figures of the monthly bulletin (一月一通报) and the quarterly review (一季度一点评),
// computed by pure functions from plain data and an explicit `today`. The rules, as the README
// states them:
//
// - Months are calendar months in the configured time zone; `today` is the local date of `now`.
// - A visit is a check-in that is not undone and whose mode is not phone. Check-ins of the same
//   pairing on the same day are one visit. Phone contact is reported separately, never counted.
// - A pairing is DUE in a month if it was in force on at least 15 days of that month, or if it
//   was visited that month (a visit always counts). A pairing in force on fewer than 15 days and
//   not visited is neither counted nor named: one that starts on the 25th is not "missed".
//   Coverage = due pairings visited / due pairings.
// - A month not over yet (today <= its last day) shows the figures so far: due is judged on the
//   whole month, unvisited pairings are "not visited yet" rather than missed, and there is no
//   comparison with the previous period (a part month against a whole one would mislead).
// - Percentages have one decimal and come from integers: round half up of visited*1000/due,
//   except that 100.0% is shown only when every due pairing was visited and 0.0% only when none
//   was. Changes in percentage points are the difference of the shown values, so the figures a
//   reader sees add up.
// - Units (单位) with due pairings are ranked by coverage (descending; equal fractions share a
//   rank), then by due (descending), then by name. Units at 100% are commended; units below the
//   threshold are named with how many due pairings were not visited. Helpers with due pairings
//   not visited are named with missed/due (config bulletin.name_helpers), per (helper, unit).
// - A must-visit occasion (五必访) is one (pairing, kind, date) reported by a check-in that is not
//   undone (any mode), dated by the check-in's visit_date. It is followed up when the pairing
//   has a visit dated in [date, date + window] and not after today (the reporting check-in counts
//   if it is itself a visit); overdue when it is not and today is past date + window; pending
//   otherwise.
// - A policy report is one (pairing, month, kind).
// - A problem is one tracked item (README "Problems"), dated by the visit that reported it. Items
//   set to not_a_problem (by the office, or because their check-in was undone, corrected or
//   voided) are not problems and count nowhere. New in a period: reported in it. Resolved in a
//   period: its status is resolved and it was resolved in it. Open at the period's end: reported
//   by then and not resolved by then (open and in_progress alike). Open for more than 30 days:
//   open at the end, where the end of a running period is today, and reported more than 30 days
//   before it. The 应享未享 gaps are the items open at the end in that category, by policy.
//   Quarterly only: share resolved = resolved in the quarter / (open at its start + new in it);
//   days to resolve = resolved day - reported day, median over the items resolved in the
//   quarter (the mean of the two middle ones for an even count, in tenths of a day).
// - Quarter coverage = sum of visited due pairing-months / sum of due pairing-months over the
//   quarter's months that have begun. A helper "missed the same pairing repeatedly" when that
//   pairing was due and not visited in two or more months of the quarter that are over. The
//   units that improved most are the (up to) three with the largest positive change in shown
//   quarter coverage against the previous quarter.

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "handlers/bulletin.h"
#include "storage/bulletin_queries.h"
#include "storage/date.h"
#include "storage/model.h"
#include "storage/problems.h"

namespace handlers {

/// The minimum number of days in force that makes an unvisited pairing due in a month.
inline constexpr int kDueMinDays = 15;

/// Due pairings and how many of them were visited.
struct Coverage {
  int due = 0;
  int visited = 0;
  Coverage& operator+=(const Coverage& o) {
    due += o.due;
    visited += o.visited;
    return *this;
  }
  bool operator==(const Coverage&) const = default;
};

/// visited/due in tenths of a percent (see the rounding rule above); 0 when due is 0.
int permille(const Coverage& c);
/// "91.7%" for 917.
std::string percent_text(int permille);
/// "4.5" for 45 or -45 (the sign is said in words).
std::string points_text(int delta_permille);
/// The days of month `m` on which `p` is in force (0 if none).
int days_in_force(const storage::Pairing& p, storage::Month m);

/// One must-visit kind in a period.
struct OccasionTally {
  std::string kind;  // code, as in kOccasionCodes
  int reported = 0;
  int followed = 0;  // a visit within the window
  int pending = 0;   // not yet visited, window still open
  int overdue = 0;   // not visited, window over
  bool operator==(const OccasionTally&) const = default;
};

/// An occasion whose window passed without a visit; names the helper and the masked whom.
struct OverdueOccasion {
  std::string unit, helper_id, helper_name;
  std::string whom;  // masked: 王*英户, or 刘* for a person
  std::string kind;
  storage::Date date;
  bool operator==(const OverdueOccasion&) const = default;
};

struct UnitFigure {
  std::string unit;
  Coverage coverage;
  int rank = 0;  // 1-based; equal coverage shares a rank (1, 2, 2, 4)
  bool operator==(const UnitFigure&) const = default;
};

/// A helper with due pairings not visited in the month.
struct HelperFigure {
  std::string helper_id, helper_name, unit;
  int missed = 0;  // due and not visited (not visited yet, in a running month)
  int due = 0;
  bool operator==(const HelperFigure&) const = default;
};

struct PolicyTally {
  std::string kind;  // code, as in kPolicyCodes
  int count = 0;
  bool operator==(const PolicyTally&) const = default;
};

/// A problem open for more than kLongOpenDays days at the end of the period.
struct LongOpenProblem {
  int64_t id = 0;
  std::string unit;
  std::string whom;  // masked
  int days = 0;
  bool operator==(const LongOpenProblem&) const = default;
};

struct UnitProblems {
  std::string unit;
  int fresh = 0, resolved = 0, open = 0;
  bool operator==(const UnitProblems&) const = default;
};

/// 应享未享 items open at the end of the period, for one policy ("" when none was named).
struct PolicyGap {
  std::string policy;
  int open = 0;
  bool operator==(const PolicyGap&) const = default;
};

inline constexpr int kLongOpenDays = 30;

/// The problem figures of one ledger (units and lists filled) or of the district (counts).
struct ProblemFigures {
  int fresh = 0;                  // reported in the period
  int resolved = 0;               // resolved in the period
  int open = 0;                   // open at its end
  int long_open = 0;              // of those, open more than kLongOpenDays days
  int carried = 0;                // open at its start (reported before it, not resolved before it)
  std::vector<int> resolve_days;  // of the items resolved in the period, ascending
  std::vector<UnitProblems> units;         // units with any figure, by name
  std::vector<LongOpenProblem> long_list;  // days desc, then number
  std::vector<PolicyGap> gaps;             // open desc, then policy; "" last
  /// resolved / (carried + fresh) in tenths of a percent (permille's rounding); nullopt when
  /// nothing was open in the period.
  std::optional<int> resolved_permille() const;
  /// Median of resolve_days in tenths of a day; nullopt when none was resolved.
  std::optional<int> median_tenths() const;
  bool any() const { return fresh + resolved + open > 0; }
};

/// Changes to an earlier period of this ledger made after its bulletin was posted, listed in the
/// next bulletin (README "A bulletin is a published record"): 10月通报后补报 3 条、更正 1 条，
/// 10月覆盖率由 78.3% 修正为 79.1%.
struct LateCorrection {
  std::string period_label;  // "10月", "2025年12月", "第三季度"
  storage::LateChanges changes;
  std::optional<int> posted_permille;  // coverage as posted; nullopt when nothing was due
  std::optional<int> today_permille;   // coverage now
  bool operator==(const LateCorrection& o) const {
    return period_label == o.period_label && posted_permille == o.posted_permille &&
           today_permille == o.today_permille && changes.late == o.changes.late &&
           changes.corrected == o.changes.corrected && changes.undone == o.changes.undone &&
           changes.voided == o.changes.voided;
  }
};

/// Totals for one ledger, or for the district, in one month.
struct MonthTotals {
  Coverage coverage;
  int not_counted = 0;                   // in force that month, fewer than 15 days, not visited
  int visits = 0;                        // distinct (pairing, day) visits
  int phone_contacts = 0;                // distinct (pairing, day) phone contacts not undone
  int phone_only = 0;                    // due pairings not visited but contacted by phone
  int undone = 0;                        // check-ins dated in the month and undone
  std::vector<OccasionTally> occasions;  // the five kinds in fixed order, then any others
  std::vector<PolicyTally> policies;     // the four kinds in fixed order (0 included), then others
  ProblemFigures problems;
};

struct LedgerMonthFigures {
  storage::Ledger ledger = storage::Ledger::Cadre;
  MonthTotals totals;
  std::optional<Coverage> previous;         // last month's coverage; nullopt when nothing was due
  std::vector<UnitFigure> units;            // ranked
  std::vector<std::string> commended;       // units at 100%, in rank order
  std::vector<UnitFigure> below;            // units below the threshold, in rank order
  std::vector<HelperFigure> helpers;        // missed desc, due desc, unit, name, id
  std::vector<OverdueOccasion> overdue;     // by date, unit, helper, whom
  std::vector<LateCorrection> corrections;  // filled by render_bulletin from the store
};

struct MonthlyFigures {
  storage::Month month;
  bool running = false;  // today <= the month's last day: figures so far
  storage::Date today;
  std::optional<storage::Ledger> only;  // nullopt: the district view, all three ledgers
  std::vector<LedgerMonthFigures> ledgers;
  MonthTotals district;  // sums of the ledgers
  std::optional<Coverage> district_previous;
};

struct UnitQuarterFigure {
  std::string unit;
  std::array<std::optional<Coverage>, 3> months;  // nullopt: not begun, or nothing due
  Coverage quarter;
  std::optional<Coverage> previous;  // the previous quarter; nullopt when nothing was due
  int rank = 0;
  /// Shown change against the previous quarter in tenths of a point, when there is one.
  std::optional<int> change() const;
  bool operator==(const UnitQuarterFigure&) const = default;
};

/// A pairing due and not visited in two or more months of the quarter that are over.
struct RepeatedMiss {
  std::string unit, helper_id, helper_name;
  std::string whom;  // masked
  int months = 0;
  bool operator==(const RepeatedMiss&) const = default;
};

struct QuarterTotals {
  std::array<std::optional<Coverage>, 3> months;  // nullopt: the month has not begun
  Coverage quarter;
  std::optional<Coverage> previous;
  std::vector<OccasionTally> occasions;
  ProblemFigures problems;
};

struct LedgerQuarterFigures {
  storage::Ledger ledger = storage::Ledger::Cadre;
  QuarterTotals totals;
  std::vector<UnitQuarterFigure> units;     // ranked by quarter coverage
  std::vector<UnitQuarterFigure> improved;  // up to 3, largest positive change first
  std::vector<RepeatedMiss> repeated;       // months desc, unit, helper, whom
  std::vector<LateCorrection> corrections;  // filled by render_bulletin from the store
};

struct QuarterlyFigures {
  int year = 1970;
  int quarter = 1;
  std::array<storage::Month, 3> months;
  bool running = false;
  storage::Date today;
  std::optional<storage::Ledger> only;
  std::vector<LedgerQuarterFigures> ledgers;
  QuarterTotals district;
};

/// The dates a monthly / quarterly snapshot must cover: the period and the one before it.
std::pair<storage::Date, storage::Date> monthly_range(storage::Month m);
std::pair<storage::Date, storage::Date> quarterly_range(int year, int quarter);

/// The month's figures from a snapshot covering at least monthly_range(month). Pure.
MonthlyFigures compute_monthly(const storage::BulletinSnapshot& data, storage::Month month,
                               std::optional<storage::Ledger> only, const BulletinOptions& options,
                               storage::Date today);

/// The quarter's figures from a snapshot covering at least quarterly_range(year, quarter). Pure.
QuarterlyFigures compute_quarterly(const storage::BulletinSnapshot& data, int year, int quarter,
                                   std::optional<storage::Ledger> only,
                                   const BulletinOptions& options, storage::Date today);

/// The summary sheet (汇总) of the ledger workbook: a header row, then per ledger and unit in
/// rank order: 台账, 单位, 排名, 应走访, 已走访, 未走访, 覆盖率; then one 合计 row per ledger.
std::vector<std::vector<std::string>> coverage_summary_rows(const MonthlyFigures& f);

}  // namespace handlers
