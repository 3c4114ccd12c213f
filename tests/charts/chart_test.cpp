#include <catch2/catch.hpp>

#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "charts/chart.h"
#include "handlers/bulletin.h"
#include "handlers/bulletin_stats.h"
#include "handlers/templates.h"
#include "storage/store.h"
#include "tests/support/temp_dir.h"

using charts::ChartStyle;
using charts::Rendered;
using handlers::Coverage;
using storage::Date;
using storage::Ledger;

namespace {

// --- Reading a PNG back with cairo ----------------------------------------------------------

struct Image {
  int width = 0, height = 0, stride = 0;
  std::vector<unsigned char> data;  // CAIRO_FORMAT_RGB24/ARGB32: native-endian 32-bit pixels
  unsigned rgb(int x, int y) const {
    uint32_t px = 0;
    std::memcpy(&px, &data[static_cast<size_t>(y) * stride + static_cast<size_t>(x) * 4], 4);
    return px & 0xFFFFFF;
  }
};

struct Reader {
  const std::string* bytes;
  size_t at = 0;
};

Image decode(const std::string& png) {
  Reader r{&png};
  auto read = [](void* closure, unsigned char* out, unsigned int n) {
    auto* rd = static_cast<Reader*>(closure);
    if (rd->at + n > rd->bytes->size()) return CAIRO_STATUS_READ_ERROR;
    std::memcpy(out, rd->bytes->data() + rd->at, n);
    rd->at += n;
    return CAIRO_STATUS_SUCCESS;
  };
  std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> s(
      cairo_image_surface_create_from_png_stream(read, &r), cairo_surface_destroy);
  REQUIRE(cairo_surface_status(s.get()) == CAIRO_STATUS_SUCCESS);
  cairo_surface_flush(s.get());
  Image img;
  img.width = cairo_image_surface_get_width(s.get());
  img.height = cairo_image_surface_get_height(s.get());
  img.stride = cairo_image_surface_get_stride(s.get());
  const unsigned char* d = cairo_image_surface_get_data(s.get());
  img.data.assign(d, d + static_cast<size_t>(img.stride) * img.height);
  return img;
}

// The rightmost pixel in row y, between the 0% and the 100% columns (plus a little), that is
// exactly `colour`; -1 if none.
int bar_end(const Image& img, const Rendered& r, int y, unsigned colour) {
  int end = -1;
  for (int x = r.x_zero; x <= std::min(img.width - 1, r.x_full + 4); ++x)
    if (img.rgb(x, y) == colour) end = x + 1;
  return end;
}

// A bar's length read from the pixels, in tenths of a percent of the axis.
int pixels_to_permille(const Rendered& r, int end) {
  return static_cast<int>(std::lround(1000.0 * (end - r.x_zero) / (r.x_full - r.x_zero)));
}

ChartStyle style() {
  auto family = charts::find_cjk_font();
  REQUIRE(family);  // fonts-noto-cjk (scripts/install-deps.sh)
  return ChartStyle{*family};
}

handlers::Templates templates() {
  return handlers::Templates::load(std::string(BANGFU_SOURCE_DIR) + "/templates",
                                   charts::chart_template_names());
}

handlers::UnitFigure unit(const char* name, int due, int visited) {
  return {name, Coverage{due, visited}, 0};
}

// A month of a cadre ledger: eight units, two below the threshold, one at 100%, one tie.
struct MonthFixture {
  handlers::MonthlyFigures period;
  handlers::LedgerMonthFigures now, before;
  MonthFixture() {
    period.month = {2026, 11};
    period.today = Date{2026, 12, 5};
    now.ledger = before.ledger = Ledger::Cadre;
    // In the bulletin's rank order (coverage descending); the chart sorts from the lowest.
    now.units = {
        unit("区水务局", 12, 12), unit("区财政局", 20, 19),  unit("区人力资源和社会保障局", 30, 27),
        unit("区教育局", 10, 9),  unit("区审计局", 8, 7),    unit("区民政局", 25, 20),
        unit("区商务局", 16, 10), unit("区供销合作社", 9, 3)};
    for (const auto& u : now.units) now.totals.coverage += u.coverage;
    now.previous = Coverage{140, 110};
    before.units = {unit("区水务局", 12, 10), unit("区财政局", 20, 20), unit("区民政局", 25, 15),
                    unit("区商务局", 16, 13), unit("区供销合作社", 9, 6)};
    now.below = {now.units[6], now.units[7]};
    period.ledgers = {now};
  }
};

// A quarter of a health ledger with the three quarters before it.
struct QuarterFixture {
  handlers::QuarterlyFigures period;
  handlers::LedgerQuarterFigures now;
  std::array<handlers::QuarterlyFigures, 3> before_p;
  std::array<handlers::LedgerQuarterFigures, 3> before_l;
  static handlers::UnitQuarterFigure u(const char* name, Coverage a, Coverage b, Coverage c) {
    handlers::UnitQuarterFigure f;
    f.unit = name;
    f.months = {a, b, c};
    f.quarter = a;
    f.quarter += b;
    f.quarter += c;
    return f;
  }
  QuarterFixture() {
    period.year = 2026;
    period.quarter = 4;
    period.months = {storage::Month{2026, 10}, storage::Month{2026, 11}, storage::Month{2026, 12}};
    period.today = Date{2027, 1, 5};
    now.ledger = Ledger::Health;
    now.units = {u("区人民医院", {20, 19}, {20, 20}, {20, 18}),
                 u("区中医医院", {15, 12}, {15, 13}, {15, 14}),
                 u("区妇幼保健院", {10, 6}, {10, 7}, {10, 9}),
                 u("高新街道社区卫生服务中心", {12, 4}, {12, 8}, {12, 10})};
    for (const auto& x : now.units) now.totals.quarter += x.quarter;
    for (size_t m = 0; m < 3; ++m) {
      Coverage c;
      for (const auto& x : now.units) c += *x.months[m];
      now.totals.months[m] = c;
    }
    now.totals.previous = Coverage{150, 120};
    for (size_t q = 0; q < 3; ++q) {
      auto& p = before_p[q];
      p.year = 2026;
      p.quarter = static_cast<int>(q) + 1;
      for (size_t m = 0; m < 3; ++m) {
        p.months[m] = storage::Month{2026, static_cast<int>(q * 3 + m + 1)};
        // Rising from 50% to 80% over the nine months; nothing due in February.
        const int visited = 50 + static_cast<int>(q * 3 + m) * 4;
        if (!(q == 0 && m == 1)) before_l[q].totals.months[m] = Coverage{100, visited};
      }
      before_l[q].ledger = Ledger::Health;
    }
    period.ledgers = {now};
  }
  charts::QuarterlyChart chart(const handlers::Templates& t) const {
    return charts::quarterly_chart(now, period, {&before_l[0], &before_l[1], &before_l[2]},
                                   {&before_p[0], &before_p[1], &before_p[2]}, t,
                                   handlers::BulletinOptions{});
  }
};

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Compares with tests/golden/<name>.png: same size, and at most 1% of the pixels differ by more
// than 64 in a channel (fonts render the same on the same Debian packages; this allows for a
// hinting or antialiasing change). BANGFU_UPDATE_GOLDEN=1 rewrites the file instead.
void check_golden(const std::string& name, const std::string& png) {
  const std::string path = std::string(BANGFU_SOURCE_DIR) + "/tests/golden/" + name + ".png";
  if (const char* u = std::getenv("BANGFU_UPDATE_GOLDEN"); u && std::string(u) == "1") {
    std::ofstream(path, std::ios::binary) << png;
    WARN("rewrote " << path);
  }
  const std::string golden = read_file(path);
  REQUIRE_FALSE(golden.empty());
  const Image a = decode(png), b = decode(golden);
  REQUIRE(a.width == b.width);
  REQUIRE(a.height == b.height);
  long differing = 0;
  for (int y = 0; y < a.height; ++y)
    for (int x = 0; x < a.width; ++x) {
      const unsigned p = a.rgb(x, y), q = b.rgb(x, y);
      for (int shift : {0, 8, 16}) {
        const int d = static_cast<int>((p >> shift) & 0xFF) - static_cast<int>((q >> shift) & 0xFF);
        if (d > 64 || d < -64) {
          ++differing;
          break;
        }
      }
    }
  const long total = static_cast<long>(a.width) * a.height;
  CAPTURE(name, differing, total);
  CHECK(differing * 100 <= total);
}

}  // namespace

TEST_CASE("A font covering Chinese is found", "[charts]") {
  const auto family = charts::find_cjk_font();
  REQUIRE(family);
  CHECK(family->find("Mono") == std::string::npos);
}

TEST_CASE("The monthly chart's data: units from the lowest, last month's value, the totals",
          "[charts]") {
  const MonthFixture f;
  const auto t = templates();
  const auto c = charts::monthly_chart(f.now, &f.before, f.period, t, handlers::BulletinOptions{});
  REQUIRE(c.rows.size() == f.now.units.size());
  // Ascending; the values are the bulletin's own permille.
  std::vector<std::string> order;
  for (const auto& r : c.rows) order.push_back(r.unit);
  CHECK(order == std::vector<std::string>{"区供销合作社", "区商务局", "区民政局", "区审计局",
                                          "区人力资源和社会保障局", "区教育局", "区财政局",
                                          "区水务局"});
  CHECK(c.rows[0].value == 333);
  CHECK(c.rows[0].previous == 667);
  CHECK(c.rows[3].previous == std::nullopt);  // 区审计局 had nothing due in October
  CHECK(c.rows[7].value == 1000);
  CHECK(c.title == "2026年11月 区直台账 各单位走访覆盖率");
  CHECK(c.subtitle == "8个单位，由低到高排列");
  CHECK(c.legend_threshold == "低于80%需加快");
  CHECK(c.footer ==
        "合计：应走访 130 个结对，已走访 107 个，覆盖率 82.3%（上月 78.6%）；2个单位低于80%");
}

TEST_CASE("The monthly chart: 1080 px wide, bars in the order and length of the figures",
          "[charts]") {
  const MonthFixture f;
  const auto c =
      charts::monthly_chart(f.now, &f.before, f.period, templates(), handlers::BulletinOptions{});
  const Rendered r = charts::render_monthly(c, style());
  REQUIRE(r.bytes.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
  const Image img = decode(r.bytes);
  CHECK(img.width == 1080);
  CHECK(img.width == r.width);
  CHECK(img.height == r.height);
  CHECK(img.height > 64 * static_cast<int>(c.rows.size()));
  REQUIRE(r.rows.size() == c.rows.size());
  int last = -1;
  for (size_t i = 0; i < c.rows.size(); ++i) {
    CAPTURE(i, c.rows[i].unit, c.rows[i].value);
    // Below the marker (a diamond of half-size 12 on the bar's middle), inside the 40 px bar.
    const int y = r.rows[i].y[0] + 16;
    const unsigned colour = c.rows[i].value < 800 ? charts::kColourBelow : charts::kColourOk;
    const int end = bar_end(img, r, y, colour);
    REQUIRE(end > r.x_zero);
    const int shown = pixels_to_permille(r, end);
    // One pixel is about 2 permille; the 3 px threshold line may hide a bar's last pixels.
    CHECK(std::abs(shown - c.rows[i].value) <= 6);
    CHECK(shown >= last);  // from the lowest down
    last = shown;
    // The other colour is not on this bar.
    CHECK(bar_end(img, r, y,
                  colour == charts::kColourOk ? charts::kColourBelow : charts::kColourOk) == -1);
  }
  check_golden("chart_monthly", r.bytes);
}

TEST_CASE("The quarterly chart: three months per unit, from the lowest quarter, and the line",
          "[charts]") {
  const QuarterFixture f;
  const auto c = f.chart(templates());
  REQUIRE(c.trend.size() == 12);
  CHECK(c.trend[0].label == "1月");
  CHECK(c.trend[0].value == 500);
  CHECK(c.trend[1].value == std::nullopt);
  CHECK(c.trend[11].label == "12月");
  CHECK(c.trend[11].value == handlers::permille(*f.now.totals.months[2]));
  CHECK(c.title == "2026年第四季度 卫生台账 走访覆盖率");
  CHECK(c.month_labels == std::array<std::string, 3>{"10月", "11月", "12月"});
  REQUIRE(c.rows.size() == 4);
  CHECK(c.rows[0].unit == "高新街道社区卫生服务中心");
  CHECK(c.rows[3].unit == "区人民医院");

  const Rendered r = charts::render_quarterly(c, style());
  const Image img = decode(r.bytes);
  CHECK(img.width == 1080);
  CHECK(img.height == r.height);
  REQUIRE(r.rows.size() == 4);
  for (size_t i = 0; i < c.rows.size(); ++i)
    for (size_t m = 0; m < 3; ++m) {
      CAPTURE(i, m, c.rows[i].unit);
      const int end = bar_end(img, r, r.rows[i].y[m], charts::kColourMonths[m]);
      REQUIRE(end > r.x_zero);
      CHECK(std::abs(pixels_to_permille(r, end) - *c.rows[i].months[m]) <= 6);  // as above
    }
  for (size_t i = 1; i < c.rows.size(); ++i) CHECK(c.rows[i - 1].quarter <= c.rows[i].quarter);
  check_golden("chart_quarterly", r.bytes);
}

TEST_CASE("A chart can be SVG for a web page", "[charts]") {
  const MonthFixture f;
  const auto c =
      charts::monthly_chart(f.now, &f.before, f.period, templates(), handlers::BulletinOptions{});
  const Rendered r = charts::render_monthly(c, style(), charts::Format::Svg);
  CHECK(r.bytes.find("<svg") != std::string::npos);
  CHECK(r.bytes.find("width=\"1080") != std::string::npos);
}

TEST_CASE("Charts from a store: one per ledger with units, named by period, kind and ledger",
          "[charts]") {
  bangfu_test::TempDir dir;
  storage::Store store(dir.file("bangfu.db"));
  struct R {
    const char *helper, *helper_name, *unit, *household, *head;
    Ledger ledger;
  };
  const R roster[] = {
      {"u1", "张伟", "区财政局", "H1", "王秀英", Ledger::Cadre},
      {"u1", "张伟", "区财政局", "H2", "李德明", Ledger::Cadre},
      {"u2", "王芳", "区民政局", "H3", "陈玉兰", Ledger::Cadre},
      {"u2", "王芳", "区民政局", "H4", "赵金花", Ledger::Cadre},
      {"u3", "刘医生", "区人民医院", "H5", "孙大海", Ledger::Health},
  };
  std::vector<storage::Pairing> rows;
  for (const auto& x : roster) {
    storage::Pairing p;
    p.helper_id = x.helper;
    p.helper_name = x.helper_name;
    p.ledger = x.ledger;
    p.unit = x.unit;
    p.household_id = x.household;
    p.household_head = x.head;
    p.person = x.ledger == Ledger::Health ? "孙小梅" : "";
    p.person_category = x.ledger == Ledger::Health ? "患病" : "";
    p.village = "张庄村";
    rows.push_back(p);
  }
  store.import_roster(rows, Date{2026, 1, 1}, "admin", 1);
  int seq = 0;
  auto visit = [&](const char* household, const char* date) {
    for (const auto& p : store.pairings_between(Date{2026, 1, 1}, Date{2026, 12, 31})) {
      if (p.household_id != household) continue;
      storage::InboundMessage m;
      m.msgid = "m" + std::to_string(++seq);
      m.userid = p.helper_id;
      m.text = "走访";
      m.received_at = 1'790'000'000 + seq;
      storage::CheckinRecord c;
      c.msgid = m.msgid;
      c.pairing_id = p.id;
      c.helper_id = p.helper_id;
      c.visit_date = *Date::parse_iso(date);
      c.mode = storage::Mode::Visit;
      c.received_at = m.received_at;
      store.transaction([&](storage::Store::Tx& tx) {
        tx.save_inbound(m);
        tx.add_checkin(c);
      });
    }
  };
  visit("H1", "2026-11-03");
  visit("H2", "2026-11-04");
  visit("H3", "2026-11-05");
  visit("H3", "2026-10-05");

  const auto t = templates();
  const handlers::BulletinOptions options;
  const storage::LocalTime now{*storage::LocalTime::parse("2026-12-02T09:00:00", 8 * 3600)};
  const handlers::Period november{handlers::BulletinKind::Monthly, 2026, 11};
  const auto files =
      charts::bulletin_charts(store, t, november, std::nullopt, options, style(), now);
  REQUIRE(files.size() == 2);  // the education ledger has no pairing: no chart
  CHECK(files[0].name == "2026-11-monthly-cadre.png");
  CHECK(files[1].name == "2026-11-monthly-health.png");
  CHECK(decode(files[0].png).width == 1080);

  // The same figures as the bulletin's text: 区民政局 1/2 = 50.0% (below), 区财政局 2/2.
  const auto figures = handlers::monthly_figures(store, {2026, 11}, Ledger::Cadre, options, now);
  const auto before = handlers::monthly_figures(store, {2026, 10}, Ledger::Cadre, options, now);
  const auto c = charts::monthly_chart(figures.ledgers[0], &before.ledgers[0], figures, t, options);
  REQUIRE(c.rows.size() == 2);
  CHECK(c.rows[0].unit == "区民政局");
  CHECK(c.rows[0].value == 500);
  CHECK(c.rows[0].previous == 500);
  CHECK(c.rows[1].unit == "区财政局");
  CHECK(c.rows[1].value == 1000);
  CHECK(c.rows[1].previous == 0);
  // Units only: no helper and no beneficiary in any word of the chart.
  std::string words = c.title + c.subtitle + c.legend_threshold + c.legend_previous + c.footer;
  for (const auto& r : c.rows) words += r.unit;
  for (const auto& x : roster) {
    CHECK(words.find(x.head) == std::string::npos);
    CHECK(words.find(x.helper_name) == std::string::npos);
  }

  const auto one =
      charts::bulletin_charts(store, t, november, Ledger::Health, options, style(), now);
  REQUIRE(one.size() == 1);
  CHECK(one[0].name == "2026-11-monthly-health.png");
  const auto quarter = charts::bulletin_charts(
      store, t, {handlers::BulletinKind::Quarterly, 2026, 4}, Ledger::Cadre, options, style(), now);
  REQUIRE(quarter.size() == 1);
  CHECK(quarter[0].name == "2026-Q4-quarterly-cadre.png");
}

TEST_CASE("A city's hundreds of units: the lowest 40 are drawn, and the words say so", "[charts]") {
  MonthFixture f;
  f.now.units.clear();
  for (int i = 0; i < 45; ++i)  // unit k has k+10 of 60 visited: unit 0 is the lowest
    f.now.units.push_back({"单位" + std::to_string(i), Coverage{60, 10 + i}, 0});
  std::reverse(f.now.units.begin(), f.now.units.end());  // the bulletin's order: highest first
  const auto c = charts::monthly_chart(f.now, nullptr, f.period, templates(), {});
  REQUIRE(c.rows.size() == charts::kMaxRows);
  CHECK(c.rows.front().unit == "单位0");
  CHECK(c.rows.back().unit == "单位39");
  CHECK(c.subtitle == "45个单位，由低到高排列，只列出最低的40个");
  const Rendered r = charts::render_monthly(c, style());
  CHECK(decode(r.bytes).height == r.height);
  CHECK(r.height < 32767);
}
