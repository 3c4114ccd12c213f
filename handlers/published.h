#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "handlers/bulletin.h"
#include "handlers/bulletin_stats.h"
#include "storage/store.h"

namespace handlers {

// A bulletin is a published record (README "A bulletin is a published record"): the figures of
// each bulletin are stored when it is queued for the group (scheduler, `bangfu bulletin --post`),
// with its kind, period, scope (a ledger or "all") and time. A later report, correction, undo
// or void dated in that period is listed in the next bulletin of the same scope, and
// `bangfu bulletin` for a posted period shows where today's figures differ from the posted ones.

/// The stored figures: {"coverage": {"due", "visited"} (the district's, or the ledger's),
/// "ledgers": {code: {"due", "visited", "visits" (monthly), "problems_new",
/// "problems_resolved", "problems_open", "units": {name: [due, visited]}}}}.
nlohmann::json posted_figures(const MonthlyFigures& f);
nlohmann::json posted_figures(const QuarterlyFigures& f);

/// "all" or the ledger's code: the scope a bulletin is stored under.
std::string scope_code(std::optional<storage::Ledger> ledger);

/// Computes the figures of `period` for `ledger` (nullopt: the district) at `now` and stores
/// them as posted at now. Throws SQLite::Exception.
void record_posted(storage::Store& store, const Period& period,
                   std::optional<storage::Ledger> ledger, const BulletinOptions& options,
                   storage::LocalTime now);

/// One figure that differs between today and the posting.
/// One figure that differs between today and the posting. Which one, as facts: the posted.md
/// template words it (区直台账 区发改局 覆盖率, 全区 覆盖率, 卫生台账 走访次数, …).
struct FigureDifference {
  std::optional<storage::Ledger> ledger;  // nullopt: the district as a whole
  std::string unit;                       // a unit's coverage; "" for the ledger's (district's)
  std::string figure;  // coverage, visits, problems_new, problems_resolved or problems_open
  std::string today;   // "79.1%（53/67）", "12"
  std::string posted;  // "78.3%（52/67）", "11"
};

struct PostedComparison {
  int64_t posted_at = 0;                      // unix seconds of the latest posting
  std::vector<FigureDifference> differences;  // empty: today's figures are the posted ones
};

/// nullopt when the period was never posted for this scope; else the differences between its
/// figures today and the latest posting. Throws SQLite::Exception.
std::optional<PostedComparison> compare_with_posted(storage::Store& store, const Period& period,
                                                    std::optional<storage::Ledger> ledger,
                                                    const BulletinOptions& options,
                                                    storage::LocalTime now);

/// Renders a comparison with the `posted.md` template (times in `now`'s zone).
std::string render_comparison(const Templates& templates, const PostedComparison& c,
                              storage::LocalTime now);

/// For each ledger section of a bulletin for `period`: the changes to the (up to 3) earlier
/// periods of the same kind and scope that were posted, made after each was posted and after
/// every later posting (so each change is listed once, in the first bulletin after it).
void fill_late_corrections(storage::Store& store, MonthlyFigures& f, const BulletinOptions& options,
                           storage::LocalTime now);
void fill_late_corrections(storage::Store& store, QuarterlyFigures& f,
                           const BulletinOptions& options, storage::LocalTime now);

}  // namespace handlers
