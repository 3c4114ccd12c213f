#include "charts/chart.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <pango/pangocairo.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string_view>

namespace charts {
namespace {

using handlers::Coverage;
using handlers::permille;
using kainjow::mustache::data;

// --- RAII over the C handles ------------------------------------------------------------------

struct CairoDeleter {
  void operator()(cairo_t* p) const { cairo_destroy(p); }
  void operator()(cairo_surface_t* p) const { cairo_surface_destroy(p); }
};
struct GObjectDeleter {
  void operator()(void* p) const { g_object_unref(p); }
};
struct FontDescDeleter {
  void operator()(PangoFontDescription* p) const { pango_font_description_free(p); }
};
struct FcDeleter {
  void operator()(FcPattern* p) const { FcPatternDestroy(p); }
  void operator()(FcObjectSet* p) const { FcObjectSetDestroy(p); }
  void operator()(FcFontSet* p) const { FcFontSetDestroy(p); }
  void operator()(FcCharSet* p) const { FcCharSetDestroy(p); }
  void operator()(FcConfig* p) const { FcConfigDestroy(p); }
};
using Cairo = std::unique_ptr<cairo_t, CairoDeleter>;
using Surface = std::unique_ptr<cairo_surface_t, CairoDeleter>;
using Layout = std::unique_ptr<PangoLayout, GObjectDeleter>;
using FontDesc = std::unique_ptr<PangoFontDescription, FontDescDeleter>;

// --- Geometry (pixels) --------------------------------------------------------------------------

constexpr double kMargin = 40;
constexpr double kLabelWidth = 370;  // unit names, ellipsized beyond this (13 characters fit)
constexpr double kValueWidth = 130;  // the column of values at the right: "100.0%"
constexpr double kTitlePx = 42;
constexpr double kTextPx = kMinFontPx;
constexpr double kBarsLeft = kMargin + kLabelWidth + 16;
constexpr double kBarsRight = kWidth - kMargin - kValueWidth;
constexpr double kValueRight = kWidth - kMargin;  // values are right-aligned here

constexpr unsigned kInk = 0x222222;
constexpr unsigned kMuted = 0x666666;
constexpr unsigned kGrid = 0xDDDDDD;
constexpr unsigned kThresholdInk = 0xC0002A;
constexpr unsigned kPreviousInk = 0x222222;

int x_of(int value_permille) {
  return static_cast<int>(std::lround(
      kBarsLeft + (kBarsRight - kBarsLeft) * std::clamp(value_permille, 0, 1000) / 1000.0));
}

std::string percent(int v) {
  return handlers::percent_text(v);
}

// The drawing primitives, over one cairo context.
class Canvas {
 public:
  // Each canvas has its own pango font map and context, not pango's per-thread default: no
  // state outlives a chart (the default map's caches are never freed, which LeakSanitizer
  // reports), and threads never share one.
  Canvas(cairo_t* cr, const ChartStyle& style)
      : cr_(cr),
        family_(style.font_family),
        font_map_(pango_cairo_font_map_new()),
        context_(pango_font_map_create_context(font_map_.get())) {
    pango_cairo_update_context(cr_, context_.get());
  }

  void colour(unsigned rgb) {
    cairo_set_source_rgb(cr_, ((rgb >> 16) & 0xFF) / 255.0, ((rgb >> 8) & 0xFF) / 255.0,
                         (rgb & 0xFF) / 255.0);
  }
  void rect(double x, double y, double w, double h, unsigned rgb) {
    colour(rgb);
    cairo_rectangle(cr_, x, y, w, h);
    cairo_fill(cr_);
  }
  void line(double x0, double y0, double x1, double y1, unsigned rgb, double width,
            bool dashed = false) {
    colour(rgb);
    cairo_set_line_width(cr_, width);
    const double dash[] = {12, 8};
    cairo_set_dash(cr_, dash, dashed ? 2 : 0, 0);
    cairo_move_to(cr_, x0, y0);
    cairo_line_to(cr_, x1, y1);
    cairo_stroke(cr_);
    cairo_set_dash(cr_, nullptr, 0, 0);
  }
  // A diamond of half-size r centred on (x, y), dark with a white rim so it shows on any bar.
  void diamond(double x, double y, double r, unsigned rgb) {
    cairo_move_to(cr_, x, y - r);
    cairo_line_to(cr_, x + r, y);
    cairo_line_to(cr_, x, y + r);
    cairo_line_to(cr_, x - r, y);
    cairo_close_path(cr_);
    colour(rgb);
    cairo_fill_preserve(cr_);
    colour(0xFFFFFF);
    cairo_set_line_width(cr_, 2);
    cairo_stroke(cr_);
  }
  void dot(double x, double y, double r, unsigned rgb) {
    colour(rgb);
    cairo_arc(cr_, x, y, r, 0, 2 * M_PI);
    cairo_fill(cr_);
  }

  enum class Align { Left, Right, Centre };
  // Draws `text` with its top-left (or top-right / top-centre) at (x, y); at most `max_width`
  // wide (ellipsized), wrapping when `wrap`. Returns the height drawn.
  double text(std::string_view text, double x, double y, double px, unsigned rgb, bool bold = false,
              Align align = Align::Left, double max_width = 0, bool wrap = false) {
    Layout layout(pango_layout_new(context_.get()));
    FontDesc desc(pango_font_description_new());
    pango_font_description_set_family(desc.get(), family_.c_str());
    pango_font_description_set_absolute_size(desc.get(), px * PANGO_SCALE);
    pango_font_description_set_weight(desc.get(), bold ? PANGO_WEIGHT_BOLD : PANGO_WEIGHT_NORMAL);
    pango_layout_set_font_description(layout.get(), desc.get());
    pango_layout_set_text(layout.get(), text.data(), static_cast<int>(text.size()));
    if (max_width > 0) {
      pango_layout_set_width(layout.get(), static_cast<int>(max_width * PANGO_SCALE));
      if (wrap)
        pango_layout_set_wrap(layout.get(), PANGO_WRAP_WORD_CHAR);
      else
        pango_layout_set_ellipsize(layout.get(), PANGO_ELLIPSIZE_END);
    }
    int w = 0, h = 0;
    pango_layout_get_pixel_size(layout.get(), &w, &h);
    double left = x;
    if (align == Align::Right) left = x - w;
    if (align == Align::Centre) left = x - w / 2.0;
    colour(rgb);
    cairo_move_to(cr_, left, y);
    pango_cairo_show_layout(cr_, layout.get());
    return h;
  }
  // The width `text` takes on one line at `px`.
  double width(std::string_view text, double px) {
    Layout layout(pango_layout_new(context_.get()));
    FontDesc desc(pango_font_description_new());
    pango_font_description_set_family(desc.get(), family_.c_str());
    pango_font_description_set_absolute_size(desc.get(), px * PANGO_SCALE);
    pango_layout_set_font_description(layout.get(), desc.get());
    pango_layout_set_text(layout.get(), text.data(), static_cast<int>(text.size()));
    int w = 0, h = 0;
    pango_layout_get_pixel_size(layout.get(), &w, &h);
    return w;
  }

  cairo_t* cr() const { return cr_; }

 private:
  cairo_t* cr_;
  std::string family_;
  std::unique_ptr<PangoFontMap, GObjectDeleter> font_map_;
  std::unique_ptr<PangoContext, GObjectDeleter> context_;
};

// Each chart is drawn twice: once on a throwaway surface to measure its height, then for real.
// A `Draw` paints onto a canvas and returns the height used and the layout it chose.
template <typename Draw>
Rendered render(Format format, const ChartStyle& style, Draw draw) {
  double height = 0;
  {
    Surface probe(cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1));
    Cairo cr(cairo_create(probe.get()));
    Canvas canvas(cr.get(), style);
    Rendered ignored;
    height = draw(canvas, ignored);
  }
  const int h = static_cast<int>(std::ceil(height));
  Rendered out;
  out.width = kWidth;
  out.height = h;
  out.x_zero = x_of(0);
  out.x_full = x_of(1000);
  auto write = [](void* closure, const unsigned char* d, unsigned int n) {
    static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(d), n);
    return CAIRO_STATUS_SUCCESS;
  };
  Surface surface(format == Format::Png
                      ? cairo_image_surface_create(CAIRO_FORMAT_RGB24, kWidth, h)
                      : cairo_svg_surface_create_for_stream(write, &out.bytes, kWidth, h));
  if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS)
    throw std::runtime_error(std::string("chart: cannot create the surface: ") +
                             cairo_status_to_string(cairo_surface_status(surface.get())));
  {
    Cairo cr(cairo_create(surface.get()));
    Canvas canvas(cr.get(), style);
    canvas.rect(0, 0, kWidth, h, 0xFFFFFF);
    draw(canvas, out);
    if (cairo_status(cr.get()) != CAIRO_STATUS_SUCCESS)
      throw std::runtime_error(std::string("chart: drawing failed: ") +
                               cairo_status_to_string(cairo_status(cr.get())));
  }
  if (format == Format::Png) {
    cairo_surface_flush(surface.get());
    const auto status = cairo_surface_write_to_png_stream(surface.get(), write, &out.bytes);
    if (status != CAIRO_STATUS_SUCCESS)
      throw std::runtime_error(std::string("chart: PNG encoding failed: ") +
                               cairo_status_to_string(status));
  } else {
    cairo_surface_finish(surface.get());
  }
  return out;
}

// Title, subtitle and legend; returns the y below them.
double header(Canvas& c, const std::string& title, const std::string& subtitle) {
  double y = kMargin;
  y += c.text(title, kMargin, y, kTitlePx, kInk, true, Canvas::Align::Left, kWidth - 2 * kMargin,
              true);
  y += 8;
  if (!subtitle.empty())
    y += c.text(subtitle, kMargin, y, kTextPx, kMuted, false, Canvas::Align::Left,
                kWidth - 2 * kMargin, true);
  return y + 20;
}

// The percentage axis over the bars: 0% … 100% with light grid lines down to `bottom`.
void axis(Canvas& c, double top, double bottom) {
  for (int p = 0; p <= 100; p += 20) {
    const double x = x_of(p * 10);
    c.line(x, top + 40, x, bottom, kGrid, 1.5);
    c.text(std::to_string(p) + "%", x, top, kTextPx, kMuted, false, Canvas::Align::Centre);
  }
}

// A legend entry: a short sample of the threshold line or a marker, then its words.
double legend(Canvas& c, double x, double y, const std::string& words, bool threshold) {
  const double mid = y + kTextPx * 0.75;
  if (threshold) {
    c.line(x + 16, y, x + 16, y + kTextPx * 1.5, kThresholdInk, 3, true);
  } else {
    c.diamond(x + 16, mid, 12, kPreviousInk);
  }
  c.text(words, x + 40, y, kTextPx, kInk);
  return x + 40 + c.width(words, kTextPx) + 40;
}

std::string read_line(const std::vector<std::string>& lines, size_t i) {
  return i < lines.size() ? lines[i] : std::string();
}

// The template's output, one text per line (blank lines kept: an empty text is allowed).
std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find('\n', start);
    if (end == std::string::npos) end = s.size();
    std::string line = s.substr(start, end - start);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    out.push_back(std::move(line));
    start = end + 1;
  }
  while (!out.empty() && out.back().empty()) out.pop_back();
  // A template's leading comment leaves blank lines: the first text (the title) is never empty.
  out.erase(out.begin(),
            std::find_if(out.begin(), out.end(), [](const std::string& l) { return !l.empty(); }));
  return out;
}

data str(const std::string& s) {
  return data(s);
}

std::string chinese_day(storage::Date d) {
  return std::to_string(d.month) + "月" + std::to_string(d.day) + "日";
}

// The keys both charts' templates have (templates/chart_*.mustache): the period's year, the
// ledger, the threshold, how many units there are and are shown, whether the period is still
// running (and today), the totals and the previous period's coverage (shown only for a period
// that is over).
data shared_words(int year, storage::Ledger ledger, const handlers::BulletinOptions& options,
                  size_t all_units, size_t shown, bool running, storage::Date today,
                  const handlers::Coverage& total,
                  const std::optional<handlers::Coverage>& previous) {
  data d;
  d.set("year", str(std::to_string(year)));
  d.set("ledger", str(std::string(storage::ledger_label(ledger))));
  d.set("threshold", str(std::to_string(options.unit_threshold_percent)));
  d.set("units", str(std::to_string(all_units)));
  d.set("has_omitted", all_units > shown);
  d.set("shown", str(std::to_string(shown)));
  d.set("running", running);
  d.set("today", str(chinese_day(today)));
  d.set("due", str(std::to_string(total.due)));
  d.set("visited", str(std::to_string(total.visited)));
  d.set("pct", str(percent(permille(total))));
  d.set("has_previous", previous.has_value() && !running);
  d.set("previous_pct", str(previous ? percent(permille(*previous)) : ""));
  return d;
}

}  // namespace

std::optional<std::string> find_cjk_font() {
  // Fonts whose character set holds what the charts write (中文 labels, 覆盖率, 月).
  static const char32_t kNeeded[] = {U'中', U'文', U'覆', U'盖', U'率', U'月', U'单', U'位'};
  std::unique_ptr<FcConfig, FcDeleter> config(FcInitLoadConfigAndFonts());
  if (!config) return std::nullopt;
  std::unique_ptr<FcCharSet, FcDeleter> chars(FcCharSetCreate());
  for (char32_t ch : kNeeded) FcCharSetAddChar(chars.get(), static_cast<FcChar32>(ch));
  std::unique_ptr<FcPattern, FcDeleter> pattern(FcPatternCreate());
  FcPatternAddCharSet(pattern.get(), FC_CHARSET, chars.get());
  std::unique_ptr<FcObjectSet, FcDeleter> objects(FcObjectSetBuild(FC_FAMILY, nullptr));
  std::unique_ptr<FcFontSet, FcDeleter> fonts(
      FcFontList(config.get(), pattern.get(), objects.get()));
  if (!fonts || fonts->nfont == 0) return std::nullopt;
  std::vector<std::string> families;
  for (int i = 0; i < fonts->nfont; ++i) {
    FcChar8* family = nullptr;
    if (FcPatternGetString(fonts->fonts[i], FC_FAMILY, 0, &family) == FcResultMatch)
      families.emplace_back(reinterpret_cast<const char*>(family));
  }
  // Prefer the simplified-Chinese sans face, then any sans that is not monospaced.
  for (const char* want : {"Noto Sans CJK SC", "WenQuanYi Micro Hei", "Source Han Sans SC"})
    if (std::find(families.begin(), families.end(), want) != families.end()) return want;
  std::sort(families.begin(), families.end());
  for (const auto& f : families)
    if (f.find("Sans") != std::string::npos && f.find("Mono") == std::string::npos) return f;
  if (families.empty()) return std::nullopt;
  return families.front();
}

Rendered render_monthly(const MonthlyChart& chart, const ChartStyle& style, Format format) {
  return render(format, style, [&](Canvas& c, Rendered& out) {
    constexpr double kRow = 64, kBar = 40;
    double y = header(c, chart.title, chart.subtitle);
    double lx = legend(c, kMargin, y, chart.legend_threshold, true);
    legend(c, lx, y, chart.legend_previous, false);
    y += kTextPx * 1.5 + 24;
    const double axis_top = y;
    const double rows_top = axis_top + 48;
    const double rows_bottom = rows_top + kRow * static_cast<double>(chart.rows.size());
    axis(c, axis_top, rows_bottom);
    out.rows.clear();
    for (size_t i = 0; i < chart.rows.size(); ++i) {
      const auto& r = chart.rows[i];
      const double top = rows_top + kRow * static_cast<double>(i) + (kRow - kBar) / 2;
      const double mid = top + kBar / 2;
      c.text(r.unit, kMargin + kLabelWidth, mid - kTextPx * 0.72, kTextPx, kInk, false,
             Canvas::Align::Right, kLabelWidth);
      const bool below = r.value < chart.threshold_percent * 10;
      const int x_end = x_of(r.value);
      if (x_end > x_of(0))
        c.rect(x_of(0), top, x_end - x_of(0), kBar, below ? kColourBelow : kColourOk);
      c.text(percent(r.value), kValueRight, mid - kTextPx * 0.72, kTextPx,
             below ? kThresholdInk : kInk, below, Canvas::Align::Right);
      out.rows.push_back({r.unit, {static_cast<int>(mid), 0, 0}});
    }
    const double tx = x_of(chart.threshold_percent * 10);
    c.line(tx, rows_top - 6, tx, rows_bottom + 6, kThresholdInk, 3, true);
    // The markers last, over the threshold line.
    for (size_t i = 0; i < chart.rows.size(); ++i) {
      if (!chart.rows[i].previous) continue;
      const double mid = rows_top + kRow * static_cast<double>(i) + kRow / 2;
      c.diamond(x_of(*chart.rows[i].previous), mid, 12, kPreviousInk);
    }
    y = rows_bottom + 24;
    if (!chart.footer.empty())
      y += c.text(chart.footer, kMargin, y, kTextPx, kInk, false, Canvas::Align::Left,
                  kWidth - 2 * kMargin, true);
    return y + kMargin;
  });
}

Rendered render_quarterly(const QuarterlyChart& chart, const ChartStyle& style, Format format) {
  return render(format, style, [&](Canvas& c, Rendered& out) {
    double y = header(c, chart.title, chart.subtitle);

    // The 12-month line.
    y += c.text(chart.trend_title, kMargin, y, kTextPx + 4, kInk, true);
    y += 16;
    constexpr double kPlot = 360;
    const double left = kMargin + 90, right = kWidth - kMargin - 30;
    const double top = y + 20, bottom = top + kPlot;
    auto py = [&](int v) { return bottom - kPlot * std::clamp(v, 0, 1000) / 1000.0; };
    for (int p = 0; p <= 100; p += 20) {
      c.line(left, py(p * 10), right, py(p * 10), kGrid, 1.5);
      c.text(std::to_string(p) + "%", left - 12, py(p * 10) - kTextPx * 0.7, kTextPx, kMuted, false,
             Canvas::Align::Right);
    }
    c.line(left, py(chart.threshold_percent * 10), right, py(chart.threshold_percent * 10),
           kThresholdInk, 3, true);
    const size_t n = chart.trend.size();
    auto px = [&](size_t i) {
      return n <= 1 ? (left + right) / 2
                    : left + 30 + (right - left - 60) * double(i) / double(n - 1);
    };
    // The line, broken where a month has no figure.
    c.colour(kColourMonths[2]);
    cairo_set_line_width(c.cr(), 5);
    bool drawing = false;
    for (size_t i = 0; i < n; ++i) {
      if (!chart.trend[i].value) {
        drawing = false;
        continue;
      }
      if (drawing)
        cairo_line_to(c.cr(), px(i), py(*chart.trend[i].value));
      else
        cairo_move_to(c.cr(), px(i), py(*chart.trend[i].value));
      drawing = true;
    }
    cairo_stroke(c.cr());
    for (size_t i = 0; i < n; ++i) {
      c.text(chart.trend[i].label, px(i), bottom + 10, kTextPx, kMuted, false,
             Canvas::Align::Centre);
      if (!chart.trend[i].value) continue;
      const int v = *chart.trend[i].value;
      c.dot(px(i), py(v), 8, kColourMonths[2]);
      // Whole percent above each point: one decimal for 12 points does not fit a phone's width.
      const bool last = i + 1 == n;
      c.text(std::to_string((v + 5) / 10), px(i), py(v) - 46, kTextPx,
             v < chart.threshold_percent * 10 ? kThresholdInk : kInk, last, Canvas::Align::Centre);
    }
    y = bottom + 10 + kTextPx * 1.5 + 36;

    // The units, three months each.
    y += c.text(chart.units_title, kMargin, y, kTextPx + 4, kInk, true);
    y += 12;
    double lx = kMargin;
    for (size_t m = 0; m < 3; ++m) {
      c.rect(lx, y + 6, 32, 28, kColourMonths[m]);
      c.text(chart.month_labels[m], lx + 42, y, kTextPx, kInk);
      lx += 42 + 110;
    }
    legend(c, lx, y, chart.legend_threshold, true);
    y += kTextPx * 1.5 + 24;
    constexpr double kBar = 22, kGap = 3, kGroupGap = 24;
    constexpr double kGroup = 3 * kBar + 2 * kGap + kGroupGap;
    const double axis_top = y;
    const double rows_top = axis_top + 48;
    const double rows_bottom = rows_top + kGroup * static_cast<double>(chart.rows.size());
    axis(c, axis_top, rows_bottom);
    c.text(chart.quarter_label, kValueRight, axis_top, kTextPx, kInk, true, Canvas::Align::Right);
    out.rows.clear();
    for (size_t i = 0; i < chart.rows.size(); ++i) {
      const auto& r = chart.rows[i];
      const double g = rows_top + kGroup * static_cast<double>(i) + kGroupGap / 2;
      const double mid = g + (3 * kBar + 2 * kGap) / 2;
      c.text(r.unit, kMargin + kLabelWidth, mid - kTextPx * 0.72, kTextPx, kInk, false,
             Canvas::Align::Right, kLabelWidth);
      BarRow row{r.unit, {}};
      for (size_t m = 0; m < 3; ++m) {
        const double top = g + (kBar + kGap) * static_cast<double>(m);
        row.y[m] = static_cast<int>(top + kBar / 2);
        if (!r.months[m]) continue;
        const int x_end = x_of(*r.months[m]);
        if (x_end > x_of(0)) c.rect(x_of(0), top, x_end - x_of(0), kBar, kColourMonths[m]);
      }
      const bool below = r.quarter < chart.threshold_percent * 10;
      c.text(percent(r.quarter), kValueRight, mid - kTextPx * 0.72, kTextPx,
             below ? kThresholdInk : kInk, true, Canvas::Align::Right);
      out.rows.push_back(row);
    }
    const double tx = x_of(chart.threshold_percent * 10);
    c.line(tx, rows_top - 6, tx, rows_bottom + 6, kThresholdInk, 3, true);
    y = rows_bottom + 24;
    if (!chart.footer.empty())
      y += c.text(chart.footer, kMargin, y, kTextPx, kInk, false, Canvas::Align::Left,
                  kWidth - 2 * kMargin, true);
    return y + kMargin;
  });
}

const std::vector<std::string>& chart_template_names() {
  static const std::vector<std::string> names = {"chart_monthly", "chart_quarterly"};
  return names;
}

MonthlyChart monthly_chart(const handlers::LedgerMonthFigures& figures,
                           const handlers::LedgerMonthFigures* previous,
                           const handlers::MonthlyFigures& period,
                           const handlers::Templates& templates,
                           const handlers::BulletinOptions& options) {
  MonthlyChart chart;
  chart.threshold_percent = options.unit_threshold_percent;
  for (const auto& u : figures.units) {
    MonthlyRow row{u.unit, permille(u.coverage), std::nullopt};
    if (previous)
      for (const auto& p : previous->units)
        if (p.unit == u.unit && p.coverage.due > 0) row.previous = permille(p.coverage);
    chart.rows.push_back(std::move(row));
  }
  // Lowest first; equal values keep the bulletin's order (more due pairings first, then name).
  std::stable_sort(chart.rows.begin(), chart.rows.end(),
                   [](const MonthlyRow& a, const MonthlyRow& b) { return a.value < b.value; });
  const size_t all_units = chart.rows.size();
  if (chart.rows.size() > kMaxRows) chart.rows.resize(kMaxRows);

  data d = shared_words(period.month.year, figures.ledger, options, all_units, chart.rows.size(),
                        period.running, period.today, figures.totals.coverage, figures.previous);
  d.set("month", str(std::to_string(period.month.month)));
  d.set("below", str(std::to_string(figures.below.size())));
  d.set("has_below", !figures.below.empty());
  auto lines = lines_of(templates.render("chart_monthly", d));
  chart.title = read_line(lines, 0);
  chart.subtitle = read_line(lines, 1);
  chart.legend_threshold = read_line(lines, 2);
  chart.legend_previous = read_line(lines, 3);
  chart.footer = read_line(lines, 4);
  return chart;
}

QuarterlyChart quarterly_chart(
    const handlers::LedgerQuarterFigures& figures, const handlers::QuarterlyFigures& period,
    const std::array<const handlers::LedgerQuarterFigures*, 3>& before,
    const std::array<const handlers::QuarterlyFigures*, 3>& before_periods,
    const handlers::Templates& templates, const handlers::BulletinOptions& options) {
  QuarterlyChart chart;
  chart.threshold_percent = options.unit_threshold_percent;
  for (size_t m = 0; m < 3; ++m)
    chart.month_labels[m] = std::to_string(period.months[m].month) + "月";
  for (const auto& u : figures.units) {
    QuarterlyRow row{u.unit, {}, permille(u.quarter)};
    for (size_t m = 0; m < 3; ++m)
      if (u.months[m] && u.months[m]->due > 0) row.months[m] = permille(*u.months[m]);
    chart.rows.push_back(std::move(row));
  }
  std::stable_sort(
      chart.rows.begin(), chart.rows.end(),
      [](const QuarterlyRow& a, const QuarterlyRow& b) { return a.quarter < b.quarter; });
  const size_t all_units = chart.rows.size();
  if (chart.rows.size() > kMaxRows) chart.rows.resize(kMaxRows);
  auto add_quarter = [&](const handlers::LedgerQuarterFigures* f,
                         const handlers::QuarterlyFigures* p) {
    if (!p) return;
    for (size_t m = 0; m < 3; ++m) {
      TrendPoint point{std::to_string(p->months[m].month) + "月", std::nullopt};
      if (f && f->totals.months[m] && f->totals.months[m]->due > 0)
        point.value = permille(*f->totals.months[m]);
      chart.trend.push_back(std::move(point));
    }
  };
  for (size_t q = 0; q < 3; ++q) add_quarter(before[q], before_periods[q]);
  add_quarter(&figures, &period);

  static const char* const kQuarterNames[] = {"一", "二", "三", "四"};
  const auto& t = figures.totals.quarter;
  const storage::Month first_trend =
      before_periods[0] ? before_periods[0]->months[0] : period.months[0];
  data d = shared_words(period.year, figures.ledger, options, all_units, chart.rows.size(),
                        period.running, period.today, t, figures.totals.previous);
  d.set("quarter", str(kQuarterNames[std::clamp(period.quarter, 1, 4) - 1]));
  d.set("trend_from",
        str(std::to_string(first_trend.year) + "年" + std::to_string(first_trend.month) + "月"));
  d.set("trend_to", str(std::to_string(period.months[2].year) + "年" +
                        std::to_string(period.months[2].month) + "月"));
  auto lines = lines_of(templates.render("chart_quarterly", d));
  chart.title = read_line(lines, 0);
  chart.subtitle = read_line(lines, 1);
  chart.trend_title = read_line(lines, 2);
  chart.units_title = read_line(lines, 3);
  chart.legend_threshold = read_line(lines, 4);
  chart.quarter_label = read_line(lines, 5);
  chart.footer = read_line(lines, 6);
  return chart;
}

std::vector<ChartFile> bulletin_charts(storage::Store& store, const handlers::Templates& templates,
                                       const handlers::Period& period,
                                       std::optional<storage::Ledger> ledger,
                                       const handlers::BulletinOptions& options,
                                       const ChartStyle& style, storage::LocalTime now) {
  std::vector<ChartFile> out;
  auto name = [&](storage::Ledger l) {
    return period.str() +
           (period.kind == handlers::BulletinKind::Monthly ? "-monthly-" : "-quarterly-") +
           std::string(storage::ledger_code(l)) + ".png";
  };
  auto find = [](const auto& ledgers, storage::Ledger l) -> decltype(&ledgers.front()) {
    for (const auto& x : ledgers)
      if (x.ledger == l) return &x;
    return nullptr;
  };
  if (period.kind == handlers::BulletinKind::Monthly) {
    const storage::Month month{period.year, period.index};
    const auto f = handlers::monthly_figures(store, month, ledger, options, now);
    const auto p = handlers::monthly_figures(store, month.prev(), ledger, options, now);
    for (const auto& l : f.ledgers) {
      if (l.units.empty()) continue;
      const auto chart = monthly_chart(l, find(p.ledgers, l.ledger), f, templates, options);
      out.push_back({l.ledger, name(l.ledger), render_monthly(chart, style).bytes});
    }
    return out;
  }
  const auto f =
      handlers::quarterly_figures(store, period.year, period.index, ledger, options, now);
  std::array<handlers::QuarterlyFigures, 3> before;
  handlers::Period q = period;
  for (int i = 2; i >= 0; --i) {
    q = q.prev();
    before[static_cast<size_t>(i)] =
        handlers::quarterly_figures(store, q.year, q.index, ledger, options, now);
  }
  for (const auto& l : f.ledgers) {
    if (l.units.empty()) continue;
    std::array<const handlers::LedgerQuarterFigures*, 3> lb{};
    std::array<const handlers::QuarterlyFigures*, 3> pb{};
    for (size_t i = 0; i < 3; ++i) {
      lb[i] = find(before[i].ledgers, l.ledger);
      pb[i] = &before[i];
    }
    const auto chart = quarterly_chart(l, f, lb, pb, templates, options);
    out.push_back({l.ledger, name(l.ledger), render_quarterly(chart, style).bytes});
  }
  return out;
}

}  // namespace charts
