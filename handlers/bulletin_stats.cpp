#include "handlers/bulletin_stats.h"

#include <algorithm>
#include <map>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include "handlers/labels.h"
#include "handlers/understanding.h"

namespace handlers {
namespace {

using storage::BulletinSnapshot;
using storage::Date;
using storage::Ledger;
using storage::Month;
using storage::Pairing;
using storage::PairingMonthActivity;

constexpr std::array<Ledger, 3> kLedgers = {Ledger::Cadre, Ledger::Health, Ledger::Education};

std::vector<Ledger> ledgers_in_scope(std::optional<Ledger> only) {
  if (only) return {*only};
  return {kLedgers.begin(), kLedgers.end()};
}

// How one pairing stands in one month.
struct MonthState {
  int days = 0;  // in force
  int visit_days = 0;
  int phone_days = 0;
  int undone = 0;
  bool visited() const { return visit_days > 0; }
  bool due() const { return visited() || days >= kDueMinDays; }
};

struct ViewPairHash {
  size_t operator()(const std::pair<std::string_view, std::string_view>& k) const {
    const size_t a = std::hash<std::string_view>{}(k.first);
    return a ^
           (std::hash<std::string_view>{}(k.second) + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
  }
};

// The snapshot, indexed once: pairings by id, each pairing's activity rows, and units and
// helpers numbered so that per-month sums are array additions, not map lookups by string
// (a province has ~100,000 pairings).
class Prepared {
 public:
  explicit Prepared(const BulletinSnapshot& d) : d_(d) {
    const size_t n = d.pairings.size();
    by_id_.resize(n);
    for (size_t i = 0; i < n; ++i) by_id_[i] = i;
    std::sort(by_id_.begin(), by_id_.end(),
              [&](size_t a, size_t b) { return d.pairings[a].id < d.pairings[b].id; });

    std::vector<const PairingMonthActivity*> acts;
    acts.reserve(d.activity.size());
    for (const auto& a : d.activity) acts.push_back(&a);
    std::stable_sort(acts.begin(), acts.end(),
                     [](const auto* a, const auto* b) { return a->pairing_id < b->pairing_id; });
    slices_.assign(n, {0, 0});
    activity_ = std::move(acts);
    for (size_t k = 0; k < activity_.size();) {
      size_t e = k;
      while (e < activity_.size() && activity_[e]->pairing_id == activity_[k]->pairing_id) ++e;
      if (auto i = position(activity_[k]->pairing_id)) slices_[*i] = {k, e};
      k = e;
    }

    // Keys are views into the snapshot, which outlives this: no string copies per pairing.
    std::map<std::string_view, int> units;
    for (const auto& p : d.pairings) units.emplace(p.unit, 0);
    for (auto& [name, id] : units) {  // numbered in name order
      id = static_cast<int>(unit_names_.size());
      unit_names_.emplace_back(name);
    }
    // (helper_id, unit) numbered in order of appearance: figures per helper are sorted later.
    std::unordered_map<std::pair<std::string_view, std::string_view>, int, ViewPairHash> helpers;
    helpers.reserve(n);
    unit_of_.resize(n);
    helper_of_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const auto& p = d.pairings[i];
      unit_of_[i] = units.find(p.unit)->second;
      const int next = static_cast<int>(helpers.size());
      helper_of_[i] = helpers.try_emplace({p.helper_id, p.unit}, next).first->second;
    }
    helper_count_ = helpers.size();
  }

  const BulletinSnapshot& data() const { return d_; }
  size_t size() const { return d_.pairings.size(); }
  const Pairing& pairing(size_t i) const { return d_.pairings[i]; }
  /// The index of the pairing with this id, if the snapshot has it.
  std::optional<size_t> position(int64_t id) const {
    auto it = std::lower_bound(by_id_.begin(), by_id_.end(), id,
                               [&](size_t i, int64_t v) { return d_.pairings[i].id < v; });
    if (it == by_id_.end() || d_.pairings[*it].id != id) return std::nullopt;
    return *it;
  }
  const Pairing* find(int64_t id) const {
    auto i = position(id);
    return i ? &d_.pairings[*i] : nullptr;
  }
  MonthState state(size_t i, Month m) const {
    MonthState s;
    s.days = days_in_force(d_.pairings[i], m);
    for (size_t k = slices_[i].first; k < slices_[i].second; ++k) {
      if (activity_[k]->month != m) continue;
      s.visit_days += activity_[k]->visit_days;
      s.phone_days += activity_[k]->phone_days;
      s.undone += activity_[k]->undone;
    }
    return s;
  }
  int unit_of(size_t i) const { return unit_of_[i]; }
  int helper_of(size_t i) const { return helper_of_[i]; }
  const std::vector<std::string>& unit_names() const { return unit_names_; }
  size_t helper_count() const { return helper_count_; }

 private:
  const BulletinSnapshot& d_;
  std::vector<size_t> by_id_;  // pairing indices in id order
  std::vector<const PairingMonthActivity*> activity_;
  std::vector<std::pair<size_t, size_t>> slices_;  // per pairing: its range in activity_
  std::vector<std::string> unit_names_;
  std::vector<int> unit_of_, helper_of_;
  size_t helper_count_ = 0;
};

// Compares a's and b's coverage as exact fractions (by cross-multiplying): -1, 0 or 1.
int compare_coverage(const Coverage& a, const Coverage& b) {
  const int64_t l = static_cast<int64_t>(a.visited) * b.due;
  const int64_t r = static_cast<int64_t>(b.visited) * a.due;
  return l < r ? -1 : (l > r ? 1 : 0);
}

// Sorts by coverage desc, due desc, name, then assigns competition ranks on equal coverage.
template <class T, class CoverageOf>
void rank_units(std::vector<T>& units, CoverageOf coverage_of) {
  std::sort(units.begin(), units.end(), [&](const T& a, const T& b) {
    const int c = compare_coverage(coverage_of(a), coverage_of(b));
    if (c != 0) return c > 0;
    if (coverage_of(a).due != coverage_of(b).due) return coverage_of(a).due > coverage_of(b).due;
    return a.unit < b.unit;
  });
  for (size_t i = 0; i < units.size(); ++i) {
    const bool tie =
        i > 0 && compare_coverage(coverage_of(units[i]), coverage_of(units[i - 1])) == 0;
    units[i].rank = tie ? units[i - 1].rank : static_cast<int>(i) + 1;
  }
}

std::vector<OccasionTally> empty_occasions() {
  std::vector<OccasionTally> out;
  for (auto k : kOccasionCodes) out.push_back({std::string(k)});
  return out;
}

std::vector<PolicyTally> empty_policies() {
  std::vector<PolicyTally> out;
  for (auto k : kPolicyCodes) out.push_back({std::string(k)});
  return out;
}

template <class T>
T& tally_for(std::vector<T>& v, const std::string& kind) {
  for (auto& t : v)
    if (t.kind == kind) return t;
  v.push_back({kind});
  return v.back();
}

void add_tallies(std::vector<OccasionTally>& into, const std::vector<OccasionTally>& from) {
  for (const auto& t : from) {
    auto& x = tally_for(into, t.kind);
    x.reported += t.reported;
    x.followed += t.followed;
    x.pending += t.pending;
    x.overdue += t.overdue;
  }
}

enum class Followed { Yes, Pending, Overdue };

Followed follow_up(const storage::OccasionReport& o, int window_days, Date today) {
  const Date window_end = o.date.plus_days(window_days);
  if (o.first_visit && *o.first_visit <= window_end && *o.first_visit <= today)
    return Followed::Yes;
  return today > window_end ? Followed::Overdue : Followed::Pending;
}

// Occasion tallies (and the overdue list) of ledger `l` for dates in [from, to].
std::vector<OccasionTally> occasions_of(const Prepared& prep, Ledger l, Date from, Date to,
                                        const BulletinOptions& options, Date today,
                                        std::vector<OverdueOccasion>* overdue) {
  auto tallies = empty_occasions();
  for (const auto& o : prep.data().occasions) {
    if (o.date < from || to < o.date) continue;
    const Pairing* p = prep.find(o.pairing_id);
    if (!p || p->ledger != l) continue;
    auto& t = tally_for(tallies, o.kind);
    ++t.reported;
    switch (follow_up(o, options.occasion_window_days, today)) {
      case Followed::Yes:
        ++t.followed;
        break;
      case Followed::Pending:
        ++t.pending;
        break;
      case Followed::Overdue:
        ++t.overdue;
        if (overdue)
          overdue->push_back(
              {p->unit, p->helper_id, p->helper_name, masked_whom(*p), o.kind, o.date});
        break;
    }
  }
  if (overdue) {
    std::sort(overdue->begin(), overdue->end(), [](const auto& a, const auto& b) {
      return std::tie(a.date, a.unit, a.helper_name, a.helper_id, a.whom, a.kind) <
             std::tie(b.date, b.unit, b.helper_name, b.helper_id, b.whom, b.kind);
    });
  }
  return tallies;
}

// The problem figures of ledger `l` for [from, to] (rules in the header); `end` is the last day
// that has begun (today in a running period).
ProblemFigures problems_of(const BulletinSnapshot& d, Ledger l, Date from, Date to, Date end) {
  ProblemFigures f;
  std::map<std::string, UnitProblems> units;
  std::map<std::string, int> gaps;
  for (const auto& p : d.problems) {
    if (p.ledger != l || to < p.reported_on) continue;
    const bool resolved_before = p.resolved && p.closed_on && *p.closed_on < from;
    if (resolved_before) continue;
    const bool fresh = !(p.reported_on < from);
    const bool resolved_in = p.resolved && p.closed_on && !(to < *p.closed_on);
    const bool open_at_end = !resolved_in;
    UnitProblems& u = units[p.unit];
    u.unit = p.unit;
    if (fresh) {
      ++f.fresh;
      ++u.fresh;
    } else {
      ++f.carried;
    }
    if (resolved_in) {
      ++f.resolved;
      ++u.resolved;
      f.resolve_days.push_back(static_cast<int>(p.closed_on->days() - p.reported_on.days()));
    }
    if (open_at_end) {
      ++f.open;
      ++u.open;
      if (p.category == "应享未享") ++gaps[p.policy];
      const int days = static_cast<int>(end.days() - p.reported_on.days());
      if (days > kLongOpenDays) {
        ++f.long_open;
        Pairing who;
        who.household_head = p.household_head;
        who.person = p.person;
        f.long_list.push_back({p.id, p.unit, masked_whom(who), days});
      }
    }
  }
  std::sort(f.resolve_days.begin(), f.resolve_days.end());
  for (auto& [name, u] : units) f.units.push_back(std::move(u));
  std::sort(f.long_list.begin(), f.long_list.end(), [](const auto& a, const auto& b) {
    return a.days != b.days ? a.days > b.days : a.id < b.id;
  });
  for (const auto& [policy, n] : gaps) f.gaps.push_back({policy, n});
  std::sort(f.gaps.begin(), f.gaps.end(), [](const PolicyGap& a, const PolicyGap& b) {
    if (a.policy.empty() != b.policy.empty()) return b.policy.empty();
    return a.open != b.open ? a.open > b.open : a.policy < b.policy;
  });
  return f;
}

// The district's problem counts: sums of the ledgers (units and lists stay per ledger).
void add_problems(ProblemFigures& into, const ProblemFigures& from) {
  into.fresh += from.fresh;
  into.resolved += from.resolved;
  into.open += from.open;
  into.long_open += from.long_open;
  into.carried += from.carried;
  into.resolve_days.insert(into.resolve_days.end(), from.resolve_days.begin(),
                           from.resolve_days.end());
  std::sort(into.resolve_days.begin(), into.resolve_days.end());
  for (const auto& g : from.gaps) {
    auto it = std::find_if(into.gaps.begin(), into.gaps.end(),
                           [&](const PolicyGap& x) { return x.policy == g.policy; });
    if (it == into.gaps.end())
      into.gaps.push_back(g);
    else
      it->open += g.open;
  }
  std::sort(into.gaps.begin(), into.gaps.end(), [](const PolicyGap& a, const PolicyGap& b) {
    if (a.policy.empty() != b.policy.empty()) return b.policy.empty();
    return a.open != b.open ? a.open > b.open : a.policy < b.policy;
  });
}

// Coverage of ledger `l` in month m, in total and per unit (indexed by unit number).
struct MonthCoverage {
  Coverage total;
  std::vector<Coverage> units;
};

MonthCoverage coverage_in(const Prepared& prep, Ledger l, Month m) {
  MonthCoverage out;
  out.units.resize(prep.unit_names().size());
  for (size_t i = 0; i < prep.size(); ++i) {
    if (prep.pairing(i).ledger != l) continue;
    const MonthState s = prep.state(i, m);
    if (!s.due()) continue;
    const Coverage c{1, s.visited() ? 1 : 0};
    out.total += c;
    out.units[static_cast<size_t>(prep.unit_of(i))] += c;
  }
  return out;
}

std::optional<Coverage> if_due(const Coverage& c) {
  if (c.due == 0) return std::nullopt;
  return c;
}

LedgerMonthFigures ledger_month(const Prepared& prep, Ledger l, Month m,
                                const BulletinOptions& options, Date today) {
  LedgerMonthFigures f;
  f.ledger = l;
  MonthTotals& t = f.totals;
  std::vector<Coverage> units(prep.unit_names().size());
  std::vector<HelperFigure> helpers(prep.helper_count());
  for (size_t i = 0; i < prep.size(); ++i) {
    const Pairing& p = prep.pairing(i);
    if (p.ledger != l) continue;
    const MonthState s = prep.state(i, m);
    t.visits += s.visit_days;
    t.phone_contacts += s.phone_days;
    t.undone += s.undone;
    if (!s.due()) {
      if (s.days > 0) ++t.not_counted;
      continue;
    }
    const Coverage c{1, s.visited() ? 1 : 0};
    t.coverage += c;
    units[static_cast<size_t>(prep.unit_of(i))] += c;
    auto& h = helpers[static_cast<size_t>(prep.helper_of(i))];
    if (h.due == 0) {
      h.helper_id = p.helper_id;
      h.helper_name = p.helper_name;
      h.unit = p.unit;
    }
    ++h.due;
    if (!s.visited()) {
      ++h.missed;
      if (s.phone_days > 0) ++t.phone_only;
    }
  }
  f.previous = if_due(coverage_in(prep, l, m.prev()).total);

  for (size_t u = 0; u < units.size(); ++u)
    if (units[u].due > 0) f.units.push_back({prep.unit_names()[u], units[u], 0});
  rank_units(f.units, [](const UnitFigure& u) -> const Coverage& { return u.coverage; });
  for (const auto& u : f.units) {
    if (u.coverage.visited == u.coverage.due) f.commended.push_back(u.unit);
    if (static_cast<int64_t>(u.coverage.visited) * 100 <
        static_cast<int64_t>(options.unit_threshold_percent) * u.coverage.due)
      f.below.push_back(u);
  }
  for (auto& h : helpers)
    if (h.missed > 0) f.helpers.push_back(std::move(h));
  std::sort(f.helpers.begin(), f.helpers.end(), [](const HelperFigure& a, const HelperFigure& b) {
    const int am = -a.missed, ad = -a.due, bm = -b.missed, bd = -b.due;
    return std::tie(am, ad, a.unit, a.helper_name, a.helper_id) <
           std::tie(bm, bd, b.unit, b.helper_name, b.helper_id);
  });

  t.occasions = occasions_of(prep, l, m.first(), m.last(), options, today, &f.overdue);
  t.policies = empty_policies();
  for (const auto& r : prep.data().policies) {
    if (r.month != m) continue;
    const Pairing* p = prep.find(r.pairing_id);
    if (p && p->ledger == l) ++tally_for(t.policies, r.kind).count;
  }
  t.problems = problems_of(prep.data(), l, m.first(), m.last(), std::min(m.last(), today));
  return f;
}

void add_totals(MonthTotals& into, const MonthTotals& from) {
  into.coverage += from.coverage;
  into.not_counted += from.not_counted;
  into.visits += from.visits;
  into.phone_contacts += from.phone_contacts;
  into.phone_only += from.phone_only;
  into.undone += from.undone;
  add_tallies(into.occasions, from.occasions);
  for (const auto& p : from.policies) tally_for(into.policies, p.kind).count += p.count;
  add_problems(into.problems, from.problems);
}

std::array<Month, 3> quarter_months(int year, int quarter) {
  const Month first{year, (quarter - 1) * 3 + 1};
  return {first, first.next(), first.next().next()};
}

std::pair<int, int> previous_quarter(int year, int quarter) {
  return quarter == 1 ? std::pair{year - 1, 4} : std::pair{year, quarter - 1};
}

}  // namespace

int permille(const Coverage& c) {
  if (c.due <= 0) return 0;
  const int64_t v = c.visited, d = c.due;
  int64_t p = (v * 1000 + d / 2) / d;
  if (p >= 1000 && v < d) p = 999;  // never round up to 100.0% with a pairing missed
  if (p <= 0 && v > 0) p = 1;       // never round down to 0.0% with a pairing visited
  return static_cast<int>(p);
}

std::string percent_text(int pm) {
  return points_text(pm) + "%";
}

std::string points_text(int delta) {
  const int a = delta < 0 ? -delta : delta;
  return std::to_string(a / 10) + "." + std::to_string(a % 10);
}

int days_in_force(const Pairing& p, Month m) {
  Date from = m.first(), to = m.last();
  if (p.start_date && from < *p.start_date) from = *p.start_date;
  if (p.end_date && *p.end_date < to) to = *p.end_date;
  return to < from ? 0 : static_cast<int>(to.days() - from.days() + 1);
}

std::optional<int> UnitQuarterFigure::change() const {
  if (!previous || quarter.due == 0) return std::nullopt;
  return permille(quarter) - permille(*previous);
}

std::pair<Date, Date> monthly_range(Month m) {
  return {m.prev().first(), m.last()};
}

std::pair<Date, Date> quarterly_range(int year, int quarter) {
  const auto [py, pq] = previous_quarter(year, quarter);
  return {quarter_months(py, pq)[0].first(), quarter_months(year, quarter)[2].last()};
}

MonthlyFigures compute_monthly(const BulletinSnapshot& data, Month month,
                               std::optional<Ledger> only, const BulletinOptions& options,
                               Date today) {
  MonthlyFigures f;
  f.month = month;
  f.today = today;
  f.running = !(month.last() < today);
  f.only = only;
  const Prepared prep(data);
  f.district.occasions = empty_occasions();
  f.district.policies = empty_policies();
  Coverage previous;
  for (Ledger l : ledgers_in_scope(only)) {
    f.ledgers.push_back(ledger_month(prep, l, month, options, today));
    add_totals(f.district, f.ledgers.back().totals);
    if (f.ledgers.back().previous) previous += *f.ledgers.back().previous;
  }
  f.district_previous = if_due(previous);
  return f;
}

QuarterlyFigures compute_quarterly(const BulletinSnapshot& data, int year, int quarter,
                                   std::optional<Ledger> only, const BulletinOptions& options,
                                   Date today) {
  QuarterlyFigures f;
  f.year = year;
  f.quarter = quarter;
  f.months = quarter_months(year, quarter);
  f.today = today;
  f.running = !(f.months[2].last() < today);
  f.only = only;
  const auto [py, pq] = previous_quarter(year, quarter);
  const auto prev_months = quarter_months(py, pq);
  const Prepared prep(data);
  auto begun = [&](Month m) { return !(today < m.first()); };
  auto over = [&](Month m) { return m.last() < today; };

  f.district.occasions = empty_occasions();
  std::array<Coverage, 3> district_months;
  Coverage district_previous;
  for (Ledger l : ledgers_in_scope(only)) {
    LedgerQuarterFigures lf;
    lf.ledger = l;
    QuarterTotals& t = lf.totals;
    const size_t unit_count = prep.unit_names().size();
    std::vector<UnitQuarterFigure> units(unit_count);
    for (size_t i = 0; i < 3; ++i) {
      if (!begun(f.months[i])) continue;
      const MonthCoverage mc = coverage_in(prep, l, f.months[i]);
      t.months[i] = mc.total;
      t.quarter += mc.total;
      district_months[i] += mc.total;
      for (size_t u = 0; u < unit_count; ++u) {
        units[u].months[i] = if_due(mc.units[u]);
        units[u].quarter += mc.units[u];
      }
    }
    Coverage prev_total;
    std::vector<Coverage> prev_units(unit_count);
    for (Month m : prev_months) {
      if (!begun(m)) continue;
      const MonthCoverage mc = coverage_in(prep, l, m);
      prev_total += mc.total;
      for (size_t u = 0; u < unit_count; ++u) prev_units[u] += mc.units[u];
    }
    t.previous = if_due(prev_total);
    district_previous += prev_total;
    for (size_t u = 0; u < unit_count; ++u) {
      if (units[u].quarter.due == 0) continue;  // nothing due in the quarter: not ranked
      units[u].unit = prep.unit_names()[u];
      units[u].previous = if_due(prev_units[u]);
      lf.units.push_back(std::move(units[u]));
    }
    rank_units(lf.units, [](const UnitQuarterFigure& u) -> const Coverage& { return u.quarter; });

    for (const auto& u : lf.units)
      if (u.change() && *u.change() > 0) lf.improved.push_back(u);
    std::stable_sort(lf.improved.begin(), lf.improved.end(),
                     [](const UnitQuarterFigure& a, const UnitQuarterFigure& b) {
                       if (*a.change() != *b.change()) return *a.change() > *b.change();
                       return a.rank < b.rank;  // then quarter coverage, due, name
                     });
    if (lf.improved.size() > 3) lf.improved.resize(3);

    for (size_t i = 0; i < prep.size(); ++i) {
      const Pairing& p = prep.pairing(i);
      if (p.ledger != l) continue;
      int missed = 0;
      for (Month m : f.months) {
        if (!over(m)) continue;
        const MonthState s = prep.state(i, m);
        if (s.due() && !s.visited()) ++missed;
      }
      if (missed >= 2)
        lf.repeated.push_back({p.unit, p.helper_id, p.helper_name, masked_whom(p), missed});
    }
    std::sort(lf.repeated.begin(), lf.repeated.end(), [](const auto& a, const auto& b) {
      const int am = -a.months, bm = -b.months;
      return std::tie(am, a.unit, a.helper_name, a.helper_id, a.whom) <
             std::tie(bm, b.unit, b.helper_name, b.helper_id, b.whom);
    });

    const Date from = f.months[0].first(), to = f.months[2].last();
    t.occasions = occasions_of(prep, l, from, to, options, today, nullptr);
    t.problems = problems_of(data, l, from, to, std::min(to, today));
    add_tallies(f.district.occasions, t.occasions);
    add_problems(f.district.problems, t.problems);
    f.ledgers.push_back(std::move(lf));
  }
  for (size_t i = 0; i < 3; ++i) {
    if (!begun(f.months[i])) continue;
    f.district.months[i] = district_months[i];
    f.district.quarter += district_months[i];
  }
  f.district.previous = if_due(district_previous);
  return f;
}

std::optional<int> ProblemFigures::resolved_permille() const {
  if (carried + fresh == 0) return std::nullopt;
  return permille(Coverage{carried + fresh, resolved});
}

std::optional<int> ProblemFigures::median_tenths() const {
  const size_t n = resolve_days.size();
  if (n == 0) return std::nullopt;
  if (n % 2 == 1) return resolve_days[n / 2] * 10;
  return (resolve_days[n / 2 - 1] + resolve_days[n / 2]) * 5;
}

std::vector<std::vector<std::string>> coverage_summary_rows(const MonthlyFigures& f) {
  std::vector<std::vector<std::string>> rows = {
      {"台账", "单位", "排名", "应走访", "已走访", "未走访", "覆盖率"}};
  for (const auto& l : f.ledgers) {
    const std::string ledger(storage::ledger_label(l.ledger));
    for (const auto& u : l.units) {
      const Coverage& c = u.coverage;
      rows.push_back({ledger, u.unit, std::to_string(u.rank), std::to_string(c.due),
                      std::to_string(c.visited), std::to_string(c.due - c.visited),
                      percent_text(permille(c))});
    }
    const Coverage& c = l.totals.coverage;
    rows.push_back({ledger, "合计", "", std::to_string(c.due), std::to_string(c.visited),
                    std::to_string(c.due - c.visited),
                    c.due ? percent_text(permille(c)) : std::string("—")});
  }
  return rows;
}

}  // namespace handlers
