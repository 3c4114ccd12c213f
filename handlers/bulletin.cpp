#include "handlers/bulletin.h"

#include <algorithm>
#include <cstdio>

#include "handlers/bulletin_stats.h"
#include "handlers/labels.h"
#include "handlers/published.h"
#include "storage/bulletin_queries.h"

namespace handlers {
namespace {

using kainjow::mustache::data;
using storage::Date;
using storage::Month;

// Names joined on one line stay below this many bytes, so that no line of a bulletin comes near
// the 4096-byte part the delivery side splits on (it splits on line boundaries only).
constexpr size_t kMaxJoinedLineBytes = 600;

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

int to_int(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

// kainjow 4.1 keeps the line break after the closing tag of a section it skips, so a left-out
// section leaves an empty line. Templates therefore put sections at paragraph edges, and the
// rendered text is tidied: lines of only spaces become empty, runs of empty lines become one,
// leading and trailing ones go, and the text ends with one line break.
std::string tidy(const std::string& text) {
  std::string out;
  size_t pos = 0;
  bool pending_blank = false;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) {
      pending_blank = !out.empty();
      continue;
    }
    if (pending_blank) out += '\n';
    pending_blank = false;
    out += line;
    out += '\n';
  }
  return out;
}

data list() {
  return data(data::type::list);
}

// Sets `key` to the first max_list_lines items (all with 0), each made into template data by
// `make` (only those shown are made: at province scale a list has ~10,000 entries), and
// has_more_<key> / more_<key> to what was left out.
template <class T, class Make>
void set_capped(data& d, const std::string& key, const std::vector<T>& items,
                const BulletinOptions& options, Make make) {
  const size_t cap =
      options.max_list_lines > 0 ? static_cast<size_t>(options.max_list_lines) : items.size();
  data shown(data::type::list);
  for (size_t i = 0; i < items.size() && i < cap; ++i) shown.push_back(make(items[i]));
  d.set(key, shown);
  const size_t left = items.size() > cap ? items.size() - cap : 0;
  d.set("has_more_" + key, left > 0);
  d.set("more_" + key, data(std::to_string(left)));
}

data str(const std::string& s) {
  return data(s);
}

data num(int v) {
  return data(std::to_string(v));
}

// "4.5" for 45 tenths, "3" for 30.
std::string tenths_text(int tenths) {
  std::string s = std::to_string(tenths / 10);
  if (tenths % 10) s.append(".").append(std::to_string(tenths % 10));
  return s;
}

// corrections: one per earlier posted period changed since (label, parts: word/count/more,
// changed, from, to).
void set_corrections(data& d, const std::vector<LateCorrection>& corrections) {
  data list_of = list();
  for (const auto& c : corrections) {
    data x;
    x.set("label", str(c.period_label));
    data parts = list();
    // Each part flags its kind (the template words it: 补报, 更正, 撤销, 作废); all four are set
    // so that none is looked up in the sections around it (a ledger has `undone` too).
    std::vector<std::pair<const char*, int>> counts = {{"late", c.changes.late},
                                                       {"corrected", c.changes.corrected},
                                                       {"undone", c.changes.undone},
                                                       {"voided", c.changes.voided}};
    counts.erase(
        std::remove_if(counts.begin(), counts.end(), [](auto& p) { return p.second == 0; }),
        counts.end());
    for (size_t i = 0; i < counts.size(); ++i) {
      data part;
      for (const char* kind : {"late", "corrected", "undone", "voided"})
        part.set(kind, std::string_view(kind) == counts[i].first);
      part.set("count", num(counts[i].second));
      part.set("more", i + 1 < counts.size());
      parts.push_back(part);
    }
    x.set("parts", parts);
    const bool changed = c.posted_permille != c.today_permille;
    x.set("changed", changed);
    x.set("from", str(c.posted_permille ? percent_text(*c.posted_permille) : "—"));
    x.set("to", str(c.today_permille ? percent_text(*c.today_permille) : "—"));
    list_of.push_back(x);
  }
  d.set("has_corrections", !corrections.empty());
  d.set("corrections", list_of);
}

// The problem keys of a ledger or the district (README "Bulletins"): problems_new,
// problems_resolved, problems_open, problems_long, has_problems, has_long_open, has_gaps, gaps
// (policy, count, more), and for a ledger problem_units and long_list; quarterly adds
// problems_share and problems_median (days) when there is one.
void set_problems(data& d, const ProblemFigures& p, const BulletinOptions& options,
                  bool with_lists) {
  d.set("problems_new", num(p.fresh));
  d.set("problems_resolved", num(p.resolved));
  d.set("problems_open", num(p.open));
  d.set("problems_long", num(p.long_open));
  d.set("has_problems", p.any());
  d.set("has_long_open", p.long_open > 0);
  data gaps = list();
  for (size_t i = 0; i < p.gaps.size(); ++i) {
    data g;
    g.set("policy", str(p.gaps[i].policy));
    g.set("unnamed_policy", p.gaps[i].policy.empty());  // the template says 未注明政策
    g.set("count", num(p.gaps[i].open));
    g.set("more", i + 1 < p.gaps.size());
    gaps.push_back(g);
  }
  d.set("has_gaps", !p.gaps.empty());
  d.set("gaps", gaps);
  if (auto share = p.resolved_permille())
    d.set("problems_share", str(percent_text(*share)));
  else
    d.set("problems_share", false);
  if (auto median = p.median_tenths())
    d.set("problems_median", str(tenths_text(*median)));
  else
    d.set("problems_median", false);
  if (!with_lists) return;
  data units = list();
  for (const auto& u : p.units) {
    data x;
    x.set("unit", str(u.unit));
    x.set("fresh", num(u.fresh));
    x.set("resolved", num(u.resolved));
    x.set("open", num(u.open));
    units.push_back(x);
  }
  d.set("problem_units", units);
  d.set("has_long_list", !p.long_list.empty());
  set_capped(d, "long_list", p.long_list, options, [](const LongOpenProblem& l) {
    data x;
    x.set("id", num(static_cast<int>(l.id)));
    x.set("unit", str(l.unit));
    x.set("whom", str(l.whom));
    x.set("days", num(l.days));
    return x;
  });
}

// Joins items with "、", starting a new line before a line would pass kMaxJoinedLineBytes.
data wrapped_lines(const std::vector<std::string>& items) {
  data lines = list();
  std::string line;
  for (const auto& item : items) {
    if (!line.empty() && line.size() + 3 + item.size() > kMaxJoinedLineBytes) {
      lines.push_back(str(line));
      line.clear();
    }
    if (!line.empty()) line += "、";
    line += item;
  }
  if (!line.empty()) lines.push_back(str(line));
  return lines;
}

// {up, flat, points} for a change in tenths of a point, or false when there is none to show.
data change_data(std::optional<int> delta) {
  if (!delta) return data(false);
  data d;
  d.set("up", *delta > 0);
  d.set("flat", *delta == 0);
  d.set("points", points_text(*delta));
  return d;
}

std::optional<int> change_of(bool running, const Coverage& now,
                             const std::optional<Coverage>& before) {
  // A period not over is not compared: a part month against a whole one would mislead.
  if (running || !before || now.due == 0) return std::nullopt;
  return permille(now) - permille(*before);
}

void set_coverage(data& d, const Coverage& c) {
  d.set("due", num(c.due));
  d.set("visited", num(c.visited));
  d.set("missed", num(c.due - c.visited));
  d.set("pct", str(percent_text(permille(c))));
}

std::string plain_date(Date d) {
  return chinese_date(d, d);  // "11月26日": the heading carries the year
}

std::string range_text(Date from, Date to) {
  return plain_date(from) + "—" + plain_date(to);
}

data occasion_list(const std::vector<OccasionTally>& tallies) {
  data out = list();
  for (const auto& t : tallies) {
    if (t.reported == 0) continue;
    data o;
    o.set("label", str(std::string(occasion_label(t.kind))));
    o.set("reported", num(t.reported));
    o.set("followed", num(t.followed));
    o.set("pending", num(t.pending));
    o.set("overdue", num(t.overdue));
    o.set("has_pending", t.pending > 0);
    o.set("has_overdue", t.overdue > 0);
    out.push_back(o);
  }
  return out;
}

void set_occasion_totals(data& d, const std::vector<OccasionTally>& tallies) {
  OccasionTally sum;
  for (const auto& t : tallies) {
    sum.reported += t.reported;
    sum.followed += t.followed;
    sum.pending += t.pending;
    sum.overdue += t.overdue;
  }
  d.set("has_occasions", sum.reported > 0);
  d.set("occ_reported", num(sum.reported));
  d.set("occ_followed", num(sum.followed));
  d.set("occ_pending", num(sum.pending));
  d.set("occ_overdue", num(sum.overdue));
  d.set("occ_has_pending", sum.pending > 0);
  d.set("occ_has_overdue", sum.overdue > 0);
  d.set("occasions", occasion_list(tallies));
}

data month_ledger_data(const LedgerMonthFigures& l, bool running, const BulletinOptions& options) {
  data d;
  const MonthTotals& t = l.totals;
  d.set("name", str(std::string(storage::ledger_label(l.ledger))));
  d.set("empty", t.coverage.due == 0);
  set_coverage(d, t.coverage);
  d.set("change", change_data(change_of(running, t.coverage, l.previous)));
  d.set("visits", num(t.visits));
  d.set("phone", num(t.phone_contacts));
  d.set("phone_only", num(t.phone_only));
  d.set("has_phone_only", t.phone_only > 0);
  d.set("undone", num(t.undone));
  d.set("has_undone", t.undone > 0);
  d.set("not_counted", num(t.not_counted));
  d.set("has_not_counted", t.not_counted > 0);

  data units = list();
  data units_missed = list();
  for (const auto& u : l.units) {
    data x;
    x.set("rank", num(u.rank));
    x.set("unit", str(u.unit));
    set_coverage(x, u.coverage);
    units.push_back(x);
    if (u.coverage.visited < u.coverage.due) units_missed.push_back(x);
  }
  d.set("units", units);
  d.set("has_commended", !l.commended.empty());
  d.set("commended_lines", wrapped_lines(l.commended));
  data below = list();
  for (const auto& u : l.below) {
    data x;
    x.set("unit", str(u.unit));
    set_coverage(x, u.coverage);
    below.push_back(x);
  }
  d.set("has_below", !l.below.empty());
  d.set("below", below);

  // 及时提醒: helpers by name, or (config name_helpers = false) only units.
  d.set("has_helpers", options.name_helpers && !l.helpers.empty());
  set_capped(d, "helpers", l.helpers, options, [](const auto& h) {
    data x;
    x.set("unit", str(h.unit));
    x.set("name", str(h.helper_name));
    x.set("missed", num(h.missed));
    x.set("due", num(h.due));
    return x;
  });
  d.set("has_units_missed", !options.name_helpers && !units_missed.is_empty_list());
  d.set("units_missed", units_missed);

  set_occasion_totals(d, t.occasions);
  d.set("has_overdue_list", !l.overdue.empty());
  set_capped(d, "overdue_list", l.overdue, options, [&](const auto& o) {
    data x;
    x.set("unit", str(o.unit));
    x.set("helper", options.name_helpers ? str(o.helper_name) : data(false));
    x.set("whom", str(o.whom));
    x.set("kind", str(std::string(occasion_label(o.kind))));
    x.set("date", str(plain_date(o.date)));
    return x;
  });

  data policies = list();
  std::vector<const PolicyTally*> shown;
  for (const auto& p : t.policies)
    if (p.count > 0) shown.push_back(&p);
  for (size_t i = 0; i < shown.size(); ++i) {
    data x;
    x.set("label", str(std::string(policy_label(shown[i]->kind))));
    x.set("count", num(shown[i]->count));
    x.set("more", i + 1 < shown.size());
    policies.push_back(x);
  }
  d.set("has_policies", !shown.empty());
  d.set("policies", policies);
  set_problems(d, t.problems, options, true);
  set_corrections(d, l.corrections);
  return d;
}

// `year`; `ledger` (区直, 卫生, 教育) for one ledger's bulletin, false for the district's.
data base_data(int year, std::optional<storage::Ledger> only, Date from, Date to, bool running,
               Date today, const BulletinOptions& options) {
  data d;
  d.set("year", num(year));
  if (only)
    d.set("ledger", str(std::string(storage::ledger_label(*only))));
  else
    d.set("ledger", false);
  d.set("range", str(range_text(from, to)));
  d.set("running", running);
  d.set("as_of", str(plain_date(today)));
  d.set("threshold", num(options.unit_threshold_percent));
  d.set("window", num(options.occasion_window_days));
  d.set("min_days", num(kDueMinDays));
  d.set("name_helpers", options.name_helpers);
  return d;
}

std::string month_label(Month m) {
  return std::to_string(m.month) + "月";
}

data month_cells(const std::array<std::optional<Coverage>, 3>& months) {
  data cells = list();
  for (size_t i = 0; i < 3; ++i) {
    data c;
    c.set("text", str(months[i] ? percent_text(permille(*months[i])) : "—"));
    c.set("more", i + 1 < 3);
    cells.push_back(c);
  }
  return cells;
}

data month_rows(const QuarterlyFigures& f, const std::array<std::optional<Coverage>, 3>& months) {
  data rows = list();
  for (size_t i = 0; i < 3; ++i) {
    data r;
    r.set("label", str(month_label(f.months[i])));
    r.set("begun", months[i].has_value());
    r.set("has_due", months[i] && months[i]->due > 0);
    set_coverage(r, months[i].value_or(Coverage{}));
    r.set("more", i + 1 < 3);
    rows.push_back(r);
  }
  return rows;
}

data quarter_ledger_data(const QuarterlyFigures& f, const LedgerQuarterFigures& l,
                         const BulletinOptions& options) {
  data d;
  const QuarterTotals& t = l.totals;
  d.set("name", str(std::string(storage::ledger_label(l.ledger))));
  d.set("empty", t.quarter.due == 0);
  set_coverage(d, t.quarter);
  d.set("change", change_data(change_of(f.running, t.quarter, t.previous)));
  d.set("months", month_rows(f, t.months));

  data units = list();
  for (const auto& u : l.units) {
    data x;
    x.set("rank", num(u.rank));
    x.set("unit", str(u.unit));
    set_coverage(x, u.quarter);
    x.set("cells", month_cells(u.months));
    x.set("change", change_data(f.running ? std::nullopt : u.change()));
    x.set("new", !f.running && !u.previous);
    units.push_back(x);
  }
  d.set("units", units);

  data improved = list();
  for (const auto& u : l.improved) {
    data x;
    x.set("unit", str(u.unit));
    x.set("points", str(points_text(*u.change())));
    x.set("prev_pct", str(percent_text(permille(*u.previous))));
    x.set("pct", str(percent_text(permille(u.quarter))));
    improved.push_back(x);
  }
  d.set("has_improved", !f.running && !l.improved.empty());
  d.set("improved", improved);

  d.set("has_repeated", !l.repeated.empty());
  set_capped(d, "repeated", l.repeated, options, [&](const auto& r) {
    data x;
    x.set("unit", str(r.unit));
    x.set("helper", options.name_helpers ? str(r.helper_name) : data(false));
    x.set("whom", str(r.whom));
    x.set("months", num(r.months));
    return x;
  });

  set_occasion_totals(d, t.occasions);
  set_problems(d, t.problems, options, true);
  set_corrections(d, l.corrections);
  return d;
}

}  // namespace

// --- Period ----------------------------------------------------------------------------------

std::optional<Period> Period::parse(std::string_view text) {
  if (auto m = Month::parse(text)) return Period{BulletinKind::Monthly, m->year, m->month};
  // 2026-Q4, 2026Q4, 2026q4, 2026-q4
  if (text.size() < 6 || !all_digits(text.substr(0, 4))) return std::nullopt;
  std::string_view rest = text.substr(4);
  if (rest.front() == '-') rest.remove_prefix(1);
  if (rest.size() != 2 || (rest[0] != 'Q' && rest[0] != 'q') || rest[1] < '1' || rest[1] > '4')
    return std::nullopt;
  const int year = to_int(text.substr(0, 4));
  if (year < 1) return std::nullopt;
  return Period{BulletinKind::Quarterly, year, rest[1] - '0'};
}

Period Period::containing(BulletinKind kind, Date d) {
  if (kind == BulletinKind::Monthly) return {kind, d.year, d.month};
  return {kind, d.year, (d.month - 1) / 3 + 1};
}

std::string Period::str() const {
  char buf[24];
  if (kind == BulletinKind::Monthly)
    std::snprintf(buf, sizeof buf, "%04d-%02d", year, index);
  else
    std::snprintf(buf, sizeof buf, "%04d-Q%d", year, index);
  return buf;
}

Date Period::first() const {
  if (kind == BulletinKind::Monthly) return Month{year, index}.first();
  return Month{year, (index - 1) * 3 + 1}.first();
}

Date Period::last() const {
  if (kind == BulletinKind::Monthly) return Month{year, index}.last();
  return Month{year, index * 3}.last();
}

Period Period::prev() const {
  const int count = kind == BulletinKind::Monthly ? 12 : 4;
  return index == 1 ? Period{kind, year - 1, count} : Period{kind, year, index - 1};
}

Period Period::next() const {
  const int count = kind == BulletinKind::Monthly ? 12 : 4;
  return index == count ? Period{kind, year + 1, 1} : Period{kind, year, index + 1};
}

// --- figures and rendering -------------------------------------------------------------------

MonthlyFigures monthly_figures(storage::Store& store, Month month,
                               std::optional<storage::Ledger> ledger,
                               const BulletinOptions& options, storage::LocalTime now) {
  const auto [from, to] = monthly_range(month);
  storage::BulletinQueries queries(store);
  return compute_monthly(queries.snapshot(from, to, ledger), month, ledger, options, now.date());
}

QuarterlyFigures quarterly_figures(storage::Store& store, int year, int quarter,
                                   std::optional<storage::Ledger> ledger,
                                   const BulletinOptions& options, storage::LocalTime now) {
  const auto [from, to] = quarterly_range(year, quarter);
  storage::BulletinQueries queries(store);
  return compute_quarterly(queries.snapshot(from, to, ledger), year, quarter, ledger, options,
                           now.date());
}

std::string render_monthly(const Templates& templates, const MonthlyFigures& f,
                           const BulletinOptions& options) {
  data d =
      base_data(f.month.year, f.only, f.month.first(), f.month.last(), f.running, f.today, options);
  d.set("month", num(f.month.month));
  if (!f.only) {
    data district;
    set_coverage(district, f.district.coverage);
    district.set("change",
                 change_data(change_of(f.running, f.district.coverage, f.district_previous)));
    set_occasion_totals(district, f.district.occasions);
    set_problems(district, f.district.problems, options, false);
    d.set("district", district);
  } else {
    d.set("district", false);
  }
  data ledgers = list();
  for (const auto& l : f.ledgers) ledgers.push_back(month_ledger_data(l, f.running, options));
  d.set("ledgers", ledgers);
  return tidy(templates.render("monthly.md", d));
}

std::string render_quarterly(const Templates& templates, const QuarterlyFigures& f,
                             const BulletinOptions& options) {
  data d = base_data(f.year, f.only, f.months[0].first(), f.months[2].last(), f.running, f.today,
                     options);
  static const char* const kQuarterNames[] = {"一", "二", "三", "四"};  // 第三季度
  d.set("quarter", str(kQuarterNames[std::clamp(f.quarter, 1, 4) - 1]));
  data header = list();
  for (size_t i = 0; i < 3; ++i) {
    data h;
    h.set("label", str(month_label(f.months[i])));
    h.set("more", i + 1 < 3);
    header.push_back(h);
  }
  d.set("month_header", header);
  if (!f.only) {
    data district;
    set_coverage(district, f.district.quarter);
    district.set("change",
                 change_data(change_of(f.running, f.district.quarter, f.district.previous)));
    district.set("months", month_rows(f, f.district.months));
    set_occasion_totals(district, f.district.occasions);
    set_problems(district, f.district.problems, options, false);
    d.set("district", district);
  } else {
    d.set("district", false);
  }
  data ledgers = list();
  for (const auto& l : f.ledgers) ledgers.push_back(quarter_ledger_data(f, l, options));
  d.set("ledgers", ledgers);
  return tidy(templates.render("quarterly.md", d));
}

std::string render_bulletin(storage::Store& store, const Templates& templates, const Period& period,
                            std::optional<storage::Ledger> ledger, const BulletinOptions& options,
                            storage::LocalTime now) {
  if (period.kind == BulletinKind::Monthly) {
    auto f = monthly_figures(store, Month{period.year, period.index}, ledger, options, now);
    fill_late_corrections(store, f, options, now);
    return render_monthly(templates, f, options);
  }
  auto f = quarterly_figures(store, period.year, period.index, ledger, options, now);
  fill_late_corrections(store, f, options, now);
  return render_quarterly(templates, f, options);
}

const std::vector<std::string>& bulletin_template_names() {
  // reminder: the monthly 及时提醒 the scheduler posts with the bulletins (bot/delivery).
  static const std::vector<std::string> kNames = {"monthly.md", "quarterly.md", "posted.md",
                                                  "reminder"};
  return kNames;
}

}  // namespace handlers
