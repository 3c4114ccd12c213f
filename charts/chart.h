#pragma once

// Coverage charts posted with the bulletins (README "Charts"): pictures of the same figures the
// bulletin's text gives, for leaders who read on a phone.
//
// - Monthly (一月一通报): one chart per ledger: each unit's coverage as a horizontal bar, sorted
//   from the lowest, the threshold (bulletin.unit_threshold_percent) as a dashed line, and the
//   unit's coverage of the month before as a marker.
// - Quarterly (一季度一点评): one chart per ledger: the ledger's coverage in each of the last 12
//   months as a line, then each unit's three months side by side, sorted by the quarter's
//   coverage from the lowest.
//
// Only units, ledgers and percentages are drawn: never a helper's or a beneficiary's name.
// The figures come from handlers/bulletin_stats (the code the bulletin's text uses), so a chart
// never disagrees with the text; the words come from templates/chart_*.mustache.
//
// Drawing is cairo + pango (vector text shaped by pango, rasterised by cairo) with a CJK font
// found through fontconfig. The render_* functions are pure apart from reading the font files.

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "handlers/bulletin.h"
#include "handlers/bulletin_stats.h"
#include "handlers/templates.h"
#include "storage/date.h"
#include "storage/model.h"
#include "storage/store.h"

namespace charts {

/// The width of every chart in pixels (a phone screen's width at full resolution); the height
/// follows from the number of units.
inline constexpr int kWidth = 1080;
/// The smallest text size used anywhere, in pixels.
inline constexpr int kMinFontPx = 28;
/// At most this many units are drawn, the lowest first: a district has 37; a group covering a
/// city has hundreds, which no phone screen can show (and a PNG would pass the robot's 2 MB and
/// cairo's 32767 px). The words say how many were left out.
inline constexpr size_t kMaxRows = 40;

/// The first installed font family that covers the Chinese the charts draw (fontconfig), the
/// Noto Sans CJK SC family when installed; nullopt when none is. Reads the fontconfig cache.
std::optional<std::string> find_cjk_font();

struct ChartStyle {
  std::string font_family = "Noto Sans CJK SC";
};

enum class Format { Png, Svg };

/// One unit's bar in a monthly chart; values in tenths of a percent (handlers::permille).
struct MonthlyRow {
  std::string unit;
  int value = 0;
  std::optional<int> previous;  // the month before; nullopt when the unit had nothing due then
};

/// Everything a monthly chart shows, words included (from the template).
struct MonthlyChart {
  int threshold_percent = 80;
  std::vector<MonthlyRow> rows;  // drawn top to bottom: lowest coverage first
  std::string title, subtitle;   // e.g. 2026年11月 区直台账 各单位走访覆盖率
  std::string legend_threshold;  // next to the dashed line's sample: 低于80%需加快
  std::string legend_previous;   // next to the marker's sample: 上月
  std::string footer;            // the ledger's totals
};

/// One unit's three months in a quarterly chart; nullopt: not begun, or nothing due.
struct QuarterlyRow {
  std::string unit;
  std::array<std::optional<int>, 3> months;
  int quarter = 0;
};

struct TrendPoint {
  std::string label;         // 1月
  std::optional<int> value;  // nullopt: nothing due that month (or not begun)
};

struct QuarterlyChart {
  int threshold_percent = 80;
  std::array<std::string, 3> month_labels;  // 10月, 11月, 12月
  std::vector<QuarterlyRow> rows;           // drawn top to bottom: lowest quarter first
  std::vector<TrendPoint> trend;            // oldest first, normally 12
  std::string title, subtitle, trend_title, units_title, legend_threshold, quarter_label, footer;
};

/// Where the bars were drawn, so tests can read the picture back.
struct BarRow {
  std::string unit;
  std::array<int, 3> y{};  // pixel rows through the middle of each bar (monthly: y[0] only)
};

struct Rendered {
  std::string bytes;  // PNG or SVG
  int width = 0, height = 0;
  int x_zero = 0, x_full = 0;  // pixel columns of 0% and 100% on the bars' axis
  std::vector<BarRow> rows;
};

/// The colours of the bars (0xRRGGBB), for tests that read pixels back.
inline constexpr unsigned kColourOk = 0x3B75AF;     // at or above the threshold
inline constexpr unsigned kColourBelow = 0xE8743B;  // below the threshold
inline constexpr std::array<unsigned, 3> kColourMonths = {0xA6C8E6, 0x5B9BD0, 0x1F5A94};

/// Draws a chart. Throws std::runtime_error when cairo fails (out of memory).
Rendered render_monthly(const MonthlyChart& chart, const ChartStyle& style,
                        Format format = Format::Png);
Rendered render_quarterly(const QuarterlyChart& chart, const ChartStyle& style,
                          Format format = Format::Png);

/// The template names the charts need ("chart_monthly", "chart_quarterly").
const std::vector<std::string>& chart_template_names();

/// A monthly chart's data from the figures of a ledger in a month and (when there is one) in the
/// month before; the words from the `chart_monthly` template. Pure. Throws TemplateError.
MonthlyChart monthly_chart(const handlers::LedgerMonthFigures& figures,
                           const handlers::LedgerMonthFigures* previous,
                           const handlers::MonthlyFigures& period,
                           const handlers::Templates& templates,
                           const handlers::BulletinOptions& options);

/// A quarterly chart's data from the figures of a ledger in the quarter and in the three
/// quarters before (oldest first, for the 12-month line; entries may be null when the ledger has
/// no figures then); the words from the `chart_quarterly` template. Pure. Throws TemplateError.
QuarterlyChart quarterly_chart(
    const handlers::LedgerQuarterFigures& figures, const handlers::QuarterlyFigures& period,
    const std::array<const handlers::LedgerQuarterFigures*, 3>& before,
    const std::array<const handlers::QuarterlyFigures*, 3>& before_periods,
    const handlers::Templates& templates, const handlers::BulletinOptions& options);

/// One picture to post or write.
struct ChartFile {
  storage::Ledger ledger = storage::Ledger::Cadre;
  std::string name;  // "2026-11-monthly-cadre.png", "2026-Q4-quarterly-health.png"
  std::string png;
};

/// The charts that go with the bulletin of `period` for one ledger, or for the district (nullopt:
/// one per ledger). A ledger with no unit due gets no chart. Reads `store` through
/// handlers::monthly_figures / quarterly_figures. Throws SQLite::Exception, TemplateError,
/// std::runtime_error.
std::vector<ChartFile> bulletin_charts(storage::Store& store, const handlers::Templates& templates,
                                       const handlers::Period& period,
                                       std::optional<storage::Ledger> ledger,
                                       const handlers::BulletinOptions& options,
                                       const ChartStyle& style, storage::LocalTime now);

}  // namespace charts
