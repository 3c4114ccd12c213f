#include "handlers/published.h"

#include <algorithm>
#include <map>

#include "handlers/labels.h"
#include "storage/problems.h"

namespace handlers {
namespace {

using nlohmann::json;
using storage::Ledger;
using storage::LocalTime;
using storage::Month;

json coverage_json(const Coverage& c) {
  return json{{"due", c.due}, {"visited", c.visited}};
}

json problems_json(const ProblemFigures& p) {
  return json{
      {"problems_new", p.fresh}, {"problems_resolved", p.resolved}, {"problems_open", p.open}};
}

std::string kind_code(BulletinKind k) {
  return k == BulletinKind::Monthly ? "monthly" : "quarterly";
}

std::string period_label(const Period& p, storage::Date today) {
  if (p.kind == BulletinKind::Monthly) return chinese_month(Month{p.year, p.index}, today);
  static constexpr const char* kQuarters[] = {"第一季度", "第二季度", "第三季度", "第四季度"};
  std::string q = kQuarters[p.index - 1];
  return p.year == today.year ? q : std::to_string(p.year) + "年" + q;
}

json figures_of(storage::Store& store, const Period& period, std::optional<Ledger> ledger,
                const BulletinOptions& options, LocalTime now) {
  if (period.kind == BulletinKind::Monthly)
    return posted_figures(
        monthly_figures(store, Month{period.year, period.index}, ledger, options, now));
  return posted_figures(quarterly_figures(store, period.year, period.index, ledger, options, now));
}

std::optional<int> permille_of(const json& coverage) {
  const Coverage c{coverage.value("due", 0), coverage.value("visited", 0)};
  if (c.due == 0) return std::nullopt;
  return permille(c);
}

std::string pct_or_dash(std::optional<int> pm) {
  return pm ? percent_text(*pm) : std::string("—");
}

// Appends the differences between two figure objects of one scope.
void diff(const json& today, const json& posted, std::vector<FigureDifference>& out) {
  auto pct = [&](std::optional<Ledger> ledger, const std::string& unit, const json& a,
                 const json& b) {
    const auto x = permille_of(a), y = permille_of(b);
    if (a.value("due", 0) != b.value("due", 0) || a.value("visited", 0) != b.value("visited", 0))
      out.push_back({ledger, unit, "coverage",
                     pct_or_dash(x) + "（" + std::to_string(a.value("visited", 0)) + "/" +
                         std::to_string(a.value("due", 0)) + "）",
                     pct_or_dash(y) + "（" + std::to_string(b.value("visited", 0)) + "/" +
                         std::to_string(b.value("due", 0)) + "）"});
  };
  auto count = [&](Ledger ledger, const json& a, const json& b, const char* key) {
    if (!a.contains(key) && !b.contains(key)) return;
    const int x = a.value(key, 0), y = b.value(key, 0);
    if (x != y) out.push_back({ledger, "", key, std::to_string(x), std::to_string(y)});
  };
  if (today.contains("district") || posted.contains("district"))
    pct(std::nullopt, "", today.value("district", json::object()),
        posted.value("district", json::object()));
  for (Ledger l : {Ledger::Cadre, Ledger::Health, Ledger::Education}) {
    const std::string code(storage::ledger_code(l));
    const json a = today.value("ledgers", json::object()).value(code, json::object());
    const json b = posted.value("ledgers", json::object()).value(code, json::object());
    if (a.empty() && b.empty()) continue;
    pct(l, "", a, b);
    for (const char* key : {"visits", "problems_new", "problems_resolved", "problems_open"})
      count(l, a, b, key);
    std::map<std::string, std::pair<json, json>> units;
    const json a_units = a.value("units", json::object()),
               b_units = b.value("units", json::object());
    for (const auto& [u, v] : a_units.items()) units[u].first = v;
    for (const auto& [u, v] : b_units.items()) units[u].second = v;
    for (const auto& [u, v] : units) {
      auto cov = [](const json& pair) {
        return pair.is_array() && pair.size() == 2
                   ? json{{"due", pair[0].get<int>()}, {"visited", pair[1].get<int>()}}
                   : json{{"due", 0}, {"visited", 0}};
      };
      pct(l, u, cov(v.first), cov(v.second));
    }
  }
}

template <class Figures>
void fill(storage::Store& store, Figures& f, const Period& period, const BulletinOptions& options,
          LocalTime now) {
  const std::string scope = scope_code(f.only);
  const auto earlier =
      storage::PublishedBulletins::before(store, kind_code(period.kind), scope, period.str(), 3);
  int64_t later_posting = 0;            // the latest posting of a period after the one at hand
  for (const auto& record : earlier) {  // newest period first
    const int64_t since = std::max(record.posted_at, later_posting);
    later_posting = std::max(later_posting, record.posted_at);
    const auto p = Period::parse(record.period);
    if (!p) continue;
    std::optional<json> today;  // computed once, when some ledger has changes
    for (auto& lf : f.ledgers) {
      const auto changes = storage::PublishedBulletins::changes_since(store, p->first(), p->last(),
                                                                      lf.ledger, since);
      if (!changes.any()) continue;
      if (!today) today = figures_of(store, *p, f.only, options, now);
      const std::string code(storage::ledger_code(lf.ledger));
      const json posted = json::parse(record.figures, nullptr, false);
      const json before = posted.is_object()
                              ? posted.value("ledgers", json::object()).value(code, json::object())
                              : json::object();
      const json after = today->value("ledgers", json::object()).value(code, json::object());
      lf.corrections.push_back(
          {period_label(*p, now.date()), changes, permille_of(before), permille_of(after)});
    }
  }
}

}  // namespace

std::string scope_code(std::optional<Ledger> ledger) {
  return ledger ? std::string(storage::ledger_code(*ledger)) : std::string("all");
}

json posted_figures(const MonthlyFigures& f) {
  json out{{"kind", "monthly"}, {"period", f.month.str()}, {"ledgers", json::object()}};
  if (!f.only) out["district"] = coverage_json(f.district.coverage);
  for (const auto& l : f.ledgers) {
    json x = coverage_json(l.totals.coverage);
    x["visits"] = l.totals.visits;
    x.update(problems_json(l.totals.problems));
    json units = json::object();
    for (const auto& u : l.units) units[u.unit] = json::array({u.coverage.due, u.coverage.visited});
    x["units"] = units;
    out["ledgers"][std::string(storage::ledger_code(l.ledger))] = x;
  }
  return out;
}

json posted_figures(const QuarterlyFigures& f) {
  json out{{"kind", "quarterly"},
           {"period", Period{BulletinKind::Quarterly, f.year, f.quarter}.str()},
           {"ledgers", json::object()}};
  if (!f.only) out["district"] = coverage_json(f.district.quarter);
  for (const auto& l : f.ledgers) {
    json x = coverage_json(l.totals.quarter);
    x.update(problems_json(l.totals.problems));
    json units = json::object();
    for (const auto& u : l.units) units[u.unit] = json::array({u.quarter.due, u.quarter.visited});
    x["units"] = units;
    out["ledgers"][std::string(storage::ledger_code(l.ledger))] = x;
  }
  return out;
}

void record_posted(storage::Store& store, const Period& period, std::optional<Ledger> ledger,
                   const BulletinOptions& options, LocalTime now) {
  const json figures = figures_of(store, period, ledger, options, now);
  storage::PublishedBulletins::record(
      store, {0, kind_code(period.kind), period.str(), scope_code(ledger),
              figures.dump(-1, ' ', false, json::error_handler_t::replace), now.unix_seconds});
}

std::optional<PostedComparison> compare_with_posted(storage::Store& store, const Period& period,
                                                    std::optional<Ledger> ledger,
                                                    const BulletinOptions& options, LocalTime now) {
  const auto record = storage::PublishedBulletins::latest(store, kind_code(period.kind),
                                                          period.str(), scope_code(ledger));
  if (!record) return std::nullopt;
  PostedComparison c;
  c.posted_at = record->posted_at;
  const json posted = json::parse(record->figures, nullptr, false);
  diff(figures_of(store, period, ledger, options, now),
       posted.is_object() ? posted : json::object(), c.differences);
  return c;
}

std::string render_comparison(const Templates& templates, const PostedComparison& c,
                              LocalTime now) {
  using kainjow::mustache::data;
  data d;
  const LocalTime at{c.posted_at, now.utc_offset_seconds};
  std::string posted_at = at.iso().substr(0, 16);  // "2026-12-01T09:00" → "2026-12-01 09:00"
  posted_at[10] = ' ';
  d.set("posted_at", posted_at);
  d.set("same", c.differences.empty());
  data lines{data::type::list};
  for (const auto& x : c.differences) {
    // Every key set on each line, so none is looked up around it.
    data line;
    if (x.ledger)
      line.set("ledger", std::string(storage::ledger_label(*x.ledger)));
    else
      line.set("ledger", false);
    if (x.unit.empty())
      line.set("unit", false);
    else
      line.set("unit", x.unit);
    for (const char* f :
         {"coverage", "visits", "problems_new", "problems_resolved", "problems_open"})
      line.set(f, x.figure == f);
    line.set("today", x.today);
    line.set("posted", x.posted);
    lines.push_back(line);
  }
  d.set("lines", lines);
  return templates.render("posted.md", d);
}

void fill_late_corrections(storage::Store& store, MonthlyFigures& f, const BulletinOptions& options,
                           LocalTime now) {
  fill(store, f, Period{BulletinKind::Monthly, f.month.year, f.month.month}, options, now);
}

void fill_late_corrections(storage::Store& store, QuarterlyFigures& f,
                           const BulletinOptions& options, LocalTime now) {
  fill(store, f, Period{BulletinKind::Quarterly, f.year, f.quarter}, options, now);
}

}  // namespace handlers
