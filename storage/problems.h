#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/model.h"
#include "storage/problem_category.h"
#include "storage/store.h"

namespace storage {

/// Where a problem stands: open → in_progress → resolved | not_a_problem. The office may set any
/// status (and reopen); the chat moves an item to in_progress or resolved.
enum class ProblemStatus { Open, InProgress, Resolved, NotAProblem };
std::string_view problem_status_code(ProblemStatus s);  // "open", "in_progress", …
std::optional<ProblemStatus> problem_status_from(std::string_view code);
std::string_view problem_status_label(ProblemStatus s);  // 待跟进, 跟进中, 已解决, 不是问题
/// resolved and not_a_problem are closed: they no longer count as open.
inline bool is_closed(ProblemStatus s) {
  return s == ProblemStatus::Resolved || s == ProblemStatus::NotAProblem;
}

/// One change of a problem's status, kept forever.
struct ProblemChange {
  Date on;                  // local date of the change
  int64_t at = 0;           // unix seconds
  std::string actor;        // userid, "office:<login>", or "migration"
  std::string from_status;  // "" for the first row (the report)
  std::string to_status;
  std::string note;
};

/// A problem followed to closure. The number (`id`) is per deployment and never reused.
struct Problem {
  int64_t id = 0;
  std::optional<int64_t> checkin_id;  // the check-in that reported it
  int64_t pairing_id = 0;
  std::string household_id, household_head, person;  // household_head from the roster
  Ledger ledger = Ledger::Cadre;
  std::string unit;
  std::string reported_by;  // the helper's userid
  Date reported_on;         // the visit date of the reporting check-in
  ProblemCategory category;
  std::string text;
  ProblemStatus status = ProblemStatus::Open;
  Date status_on;                      // date of the last status change (or of the report)
  std::optional<Date> closed_on;       // set while resolved or not_a_problem
  std::vector<ProblemChange> history;  // oldest first; filled by get() only
};

/// Problems as tracked items (README "Problems"). Static functions: the ones taking a Tx run
/// inside a write unit (Store::transaction); the others read under the Store's lock. Every status
/// change writes a history row and an audit row (action problem_open / problem_status). When a
/// check-in stops counting (undone, corrected, void) a trigger of migration 6 closes its items
/// that are still open and were never changed, as not_a_problem with the note 打卡已撤销 /
/// 打卡已更正 / 打卡已作废, dated in China time (UTC+8). Throws SQLite::Exception.
class Problems {
 public:
  /// One open item per phrase of a check-in, classified with classify_problem; returns them in
  /// phrase order (numbers ascending).
  static std::vector<Problem> record(Store::Tx& tx, int64_t checkin_id, const Pairing& pairing,
                                     const std::string& reporter, Date reported_on,
                                     const std::vector<std::string>& phrases,
                                     const std::vector<std::string>& policies, int64_t at);
  static std::optional<Problem> find(Store::Tx& tx, int64_t id);
  /// Sets the status; false when it already had it (nothing is written then).
  static bool set_status(Store::Tx& tx, int64_t id, ProblemStatus to, const std::string& actor,
                         const std::string& note, Date on, int64_t at);
  /// Items not closed whose household is one of `household_ids` or that `reporter` reported,
  /// by number.
  static std::vector<Problem> open_for(Store::Tx& tx, const std::string& reporter,
                                       const std::vector<std::string>& household_ids);
  /// For the office: by number; status nullopt lists all.
  static std::vector<Problem> list(Store& store, std::optional<ProblemStatus> status,
                                   std::optional<Ledger> ledger);
  /// One item with its history.
  static std::optional<Problem> get(Store& store, int64_t id);
};

/// The stored figures of one posted bulletin (README "A bulletin is a published record").
struct PostedBulletin {
  int64_t id = 0;
  std::string kind;     // monthly, quarterly
  std::string period;   // 2026-10, 2026-Q4
  std::string ledger;   // cadre, health, education, all
  std::string figures;  // JSON object, see handlers/published.h
  int64_t posted_at = 0;
};

/// What changed in check-ins dated in a period after a point in time.
struct LateChanges {
  int late = 0;       // 补报: check-ins received after it (replacements of corrections excluded)
  int corrected = 0;  // 更正
  int undone = 0;     // 撤销
  int voided = 0;     // 作废
  bool any() const { return late + corrected + undone + voided > 0; }
};

class PublishedBulletins {
 public:
  /// Stores the figures of a bulletin that was posted (or queued for posting) at `posted_at`.
  static void record(Store& store, const PostedBulletin& b);
  /// The latest record of (kind, period, ledger).
  static std::optional<PostedBulletin> latest(Store& store, std::string_view kind,
                                              std::string_view period, std::string_view ledger);
  /// Every record of (kind, ledger) for periods before `period` (text order is time order),
  /// latest posting of each period only, newest period first, at most `limit`.
  static std::vector<PostedBulletin> before(Store& store, std::string_view kind,
                                            std::string_view ledger, std::string_view period,
                                            int limit);
  /// Changes to check-ins dated in [from, to] of one ledger (or all) after unix time `since`.
  static LateChanges changes_since(Store& store, Date from, Date to, std::optional<Ledger> only,
                                   int64_t since);
};

}  // namespace storage
