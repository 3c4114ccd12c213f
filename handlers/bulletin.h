#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "handlers/templates.h"
#include "storage/model.h"
#include "storage/store.h"

namespace handlers {

enum class BulletinKind { Monthly, Quarterly };

/// A bulletin period: a calendar month (一月一通报) or quarter (一季度一点评).
struct Period {
  BulletinKind kind = BulletinKind::Monthly;
  int year = 1970;
  int index = 1;  // month 1..12, or quarter 1..4

  /// "2026-11" → monthly; "2026-Q4", "2026Q4", "2026q4" → quarterly. nullopt otherwise.
  static std::optional<Period> parse(std::string_view text);
  /// The period that contains `d`.
  static Period containing(BulletinKind kind, storage::Date d);
  std::string str() const;  // "2026-11" / "2026-Q4"
  storage::Date first() const;
  storage::Date last() const;
  Period prev() const;
  Period next() const;
  bool operator==(const Period&) const = default;
};

/// Tunables from config (README "Config", key `bulletin`).
struct BulletinOptions {
  int unit_threshold_percent = 80;  // units below this coverage are named (揭短亮丑)
  bool name_helpers = true;      // name helpers with missed pairings (及时提醒), or units only
  int occasion_window_days = 7;  // a must-visit occasion is followed up if visited within this
  /// At most this many lines per list of people in the chat (helpers to remind, overdue
  /// occasions, repeated misses), then "另有 N 条…"; 0 lists everyone. Units are always listed.
  int max_list_lines = 0;
  /// Post the coverage charts (charts/chart.h) as images after each bulletin's text.
  bool charts = true;
};

/// Renders the bulletin for `period` as chat markdown, for one ledger or, with nullopt, the
/// district as a whole. A period not yet over (now inside it) renders what is known so far and
/// says so. Beneficiary names are masked; no health or disability category is attached to a
/// named person. Reads from `store`; the figures are computed in C++ and handed to the template
/// (`monthly.md` or `quarterly.md`). Throws TemplateError / SQLite::Exception on failure.
std::string render_bulletin(storage::Store& store, const Templates& templates, const Period& period,
                            std::optional<storage::Ledger> ledger, const BulletinOptions& options,
                            storage::LocalTime now);

struct MonthlyFigures;    // handlers/bulletin_stats.h
struct QuarterlyFigures;  // handlers/bulletin_stats.h

/// Reads `store` and computes the month's figures for one ledger or, with nullopt, all three
/// (also used by the ledger workbook's summary sheet and by the reminders: a running month's
/// `helpers` are those with pairings not visited yet). Throws SQLite::Exception.
MonthlyFigures monthly_figures(storage::Store& store, storage::Month month,
                               std::optional<storage::Ledger> ledger,
                               const BulletinOptions& options, storage::LocalTime now);
/// Reads `store` and computes the quarter's figures (quarter 1..4). Throws SQLite::Exception.
QuarterlyFigures quarterly_figures(storage::Store& store, int year, int quarter,
                                   std::optional<storage::Ledger> ledger,
                                   const BulletinOptions& options, storage::LocalTime now);

/// Renders computed figures with the `monthly.md` / `quarterly.md` template. Pure apart from
/// the template. Throws TemplateError.
std::string render_monthly(const Templates& templates, const MonthlyFigures& figures,
                           const BulletinOptions& options);
std::string render_quarterly(const Templates& templates, const QuarterlyFigures& figures,
                             const BulletinOptions& options);

/// The template names render_bulletin needs ("monthly.md", "quarterly.md", …), loaded from
/// `<templates_dir>/<name>.mustache`.
const std::vector<std::string>& bulletin_template_names();

}  // namespace handlers
