#include "storage/bulletin_queries.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <bit>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <tuple>

#include "storage/columns.h"

namespace storage {
namespace {

int month_number(Month m) {
  return m.year * 12 + (m.month - 1);
}

Month month_at(int number) {
  return Month{number / 12, number % 12 + 1};
}

std::vector<std::string> json_strings(const char* text) {
  return nlohmann::json::parse(text).get<std::vector<std::string>>();
}

// Pairing id → index in the snapshot's pairings (sorted by id). Row ids are dense in practice,
// so a direct table is used when it stays small; otherwise a binary search.
class Positions {
 public:
  explicit Positions(const std::vector<Pairing>& pairings) : pairings_(pairings) {
    if (pairings.empty()) return;
    const int64_t max_id = pairings.back().id;
    if (max_id >= 0 && max_id <= 4 * static_cast<int64_t>(pairings.size()) + 4096) {
      table_.assign(static_cast<size_t>(max_id) + 1, -1);
      for (size_t i = 0; i < pairings.size(); ++i)
        if (pairings[i].id >= 0) table_[static_cast<size_t>(pairings[i].id)] = static_cast<int>(i);
    }
  }
  /// -1 when the pairing is not in the snapshot (another ledger).
  int find(int64_t id) const {
    if (!table_.empty())
      return id >= 0 && id < static_cast<int64_t>(table_.size()) ? table_[static_cast<size_t>(id)]
                                                                 : -1;
    auto it = std::lower_bound(pairings_.begin(), pairings_.end(), id,
                               [](const Pairing& p, int64_t v) { return p.id < v; });
    return it != pairings_.end() && it->id == id ? static_cast<int>(it - pairings_.begin()) : -1;
  }

 private:
  const std::vector<Pairing>& pairings_;
  std::vector<int> table_;
};

}  // namespace

// ?1 = from, ?2 = to (ISO dates, inclusive), ?3 = ledger code or NULL. Rows of the range scan
// are kept only for pairings that `pairings` returned, which applies the ledger filter without a
// subquery per row. visit_date is ISO text, so BETWEEN on it is a date range.
struct BulletinQueries::Statements {
  explicit Statements(SQLite::Database& db)
      : pairings(
            db,
            "SELECT id, helper_id, helper_name, ledger, unit, household_id, household_head, "
            "person, start_date, end_date FROM pairings p "
            "WHERE (?3 IS NULL OR ledger = ?3) AND ("
            // In force on some day of the range (an interval ending before it starts is
            // in force on no day) …
            " ((start_date IS NULL OR start_date <= ?2) AND (end_date IS NULL OR end_date >= ?1)"
            "  AND (start_date IS NULL OR end_date IS NULL OR start_date <= end_date))"
            // … or with a check-in in the range: a visit always counts, and undone or phone
            // check-ins are reported per ledger.
            " OR EXISTS (SELECT 1 FROM checkins c WHERE c.pairing_id = p.id"
            "  AND c.visit_date BETWEEN ?1 AND ?2)) "
            "ORDER BY id"),
        // One pass over the range, aggregated per pairing and month while streaming, read from
        // the covering index checkins_visit_cover without touching the table. Grouping ~1.5
        // million rows in SQL instead (count(DISTINCT visit_date) … GROUP BY pairing_id, month)
        // spends >3 s in SQLite's sorter. Kind: 0 counted visit, 1 phone, 2 undone.
        range(db,
              "SELECT c.pairing_id, c.visit_date, "
              "CASE WHEN c.undone_at IS NOT NULL THEN 2 WHEN c.mode = 'phone' THEN 1 ELSE 0 END "
              "FROM checkins c WHERE c.visit_date BETWEEN ?1 AND ?2"),
        // Occasions and policies of check-ins not undone, from the partial index
        // checkins_reports alone, whose condition is repeated here literally so it is usable.
        reports(db,
                "SELECT c.pairing_id, c.visit_date, "
                "CASE WHEN c.occasions <> '[]' THEN c.occasions END, "
                "CASE WHEN c.policies <> '[]' THEN c.policies END "
                "FROM checkins c WHERE c.visit_date BETWEEN ?1 AND ?2 AND c.undone_at IS NULL "
                "AND (c.occasions <> '[]' OR c.policies <> '[]')"),
        // Through checkins_pairing_cover, from the index alone; may look past the range, as a
        // window can.
        first_visit(db,
                    "SELECT min(visit_date) FROM checkins WHERE pairing_id = ?1 "
                    "AND visit_date >= ?2 AND undone_at IS NULL AND mode <> 'phone'"),
        // The items open at some time in [?1, ?2] or resolved in it, from the covering index
        // problems_bulletin alone (the household's head by the pairing's key).
        problems(db,
                 "SELECT q.id, q.pairing_id, q.ledger, q.unit, p.household_head, q.person, "
                 "q.category, q.policy, q.status = 'resolved', q.reported_on, q.closed_on "
                 "FROM problems q JOIN pairings p ON p.id = q.pairing_id "
                 "WHERE q.reported_on <= ?2 AND (q.closed_on IS NULL OR q.closed_on >= ?1) "
                 "AND q.status <> 'not_a_problem' AND (?3 IS NULL OR q.ledger = ?3)") {}

  SQLite::Statement pairings, range, reports, first_visit, problems;
};

BulletinQueries::BulletinQueries(Store& store) : store_(store) {
  std::lock_guard lock(store_.mu_);
  const std::string path = store_.db_->getFilename();
  if (path.empty() || path == ":memory:") {
    st_ = std::make_unique<Statements>(*store_.db_);
  } else {
    // Used by one thread at a time (see the header), so without SQLite's per-call mutex,
    // which cost ~9% of a province-scale bulletin.
    own_ = std::make_unique<SQLite::Database>(path, SQLite::OPEN_READONLY | SQLite::OPEN_NOMUTEX,
                                              5000);
    st_ = std::make_unique<Statements>(*own_);
  }
}

BulletinQueries::~BulletinQueries() {
  // Statements on the shared connection are finalised under its lock.
  std::unique_lock lock = own_ ? std::unique_lock<std::mutex>() : std::unique_lock(store_.mu_);
  st_.reset();
}

BulletinSnapshot BulletinQueries::snapshot(Date from, Date to, std::optional<Ledger> only) {
  std::unique_lock lock = own_ ? std::unique_lock<std::mutex>() : std::unique_lock(store_.mu_);
  // A read transaction: the parts agree with each other while check-ins keep being written
  // (by this process's writer, or the CLI next to `serve`).
  SQLite::Transaction read(own_ ? *own_ : *store_.db_, SQLite::TransactionBehavior::DEFERRED);
  const std::string from_iso = from.iso(), to_iso = to.iso();
  BulletinSnapshot out;
  {
    auto& s = st_->pairings;
    Use use(s);
    bind_period(s, from, to, only);
    while (s.executeStep()) {
      Pairing p;
      p.id = s.getColumn(0).getInt64();
      p.helper_id = s.getColumn(1).getString();
      p.helper_name = s.getColumn(2).getString();
      p.ledger = ledger_col(s.getColumn(3));
      p.unit = s.getColumn(4).getString();
      p.household_id = s.getColumn(5).getString();
      p.household_head = s.getColumn(6).getString();
      p.person = s.getColumn(7).getString();
      p.start_date = date_col(s.getColumn(8));
      p.end_date = date_col(s.getColumn(9));
      out.pairings.push_back(std::move(p));
    }
  }
  const Positions positions(out.pairings);

  // Per (month, pairing) a bit per day of the month, so that several check-ins on one day count
  // once (popcount). Month-major, and visits apart from the rarer phone calls and undos, so the
  // writes of one month stay within pairings × 4 bytes (cache-friendly for ~100,000 pairings).
  const int first_month = month_number(Month::of(from));
  const size_t months =
      static_cast<size_t>(std::max(month_number(Month::of(to)) - first_month + 1, 0));
  const size_t n = out.pairings.size();
  std::vector<uint32_t> visit_days(months * n), phone_days(months * n);
  std::vector<int> undone(months * n);
  struct Found {
    int64_t pairing_id;
    Date date;
    std::string kind;
    bool operator<(const Found& o) const {
      return std::tie(pairing_id, date, kind) < std::tie(o.pairing_id, o.date, o.kind);
    }
    bool operator==(const Found& o) const = default;
  };
  std::vector<Found> occasions, policies;
  {
    auto& s = st_->range;
    Use use(s);
    s.bind(1, from_iso);
    s.bind(2, to_iso);
    while (s.executeStep()) {
      const int64_t id = s.getColumn(0).getInt64();
      const int pos = positions.find(id);
      if (pos < 0) continue;  // another ledger
      const Date day = required_date_col(s.getColumn(1));
      const size_t cell = static_cast<size_t>(month_number(Month::of(day)) - first_month) * n +
                          static_cast<size_t>(pos);
      const uint32_t bit = 1u << (day.day - 1);
      switch (s.getColumn(2).getInt()) {
        case 0:
          visit_days[cell] |= bit;
          break;
        case 1:
          phone_days[cell] |= bit;
          break;
        default:
          ++undone[cell];
          break;
      }
    }
  }
  {
    auto& s = st_->reports;
    Use use(s);
    s.bind(1, from_iso);
    s.bind(2, to_iso);
    while (s.executeStep()) {
      const int64_t id = s.getColumn(0).getInt64();
      if (positions.find(id) < 0) continue;  // another ledger
      const Date day = required_date_col(s.getColumn(1));
      if (!s.getColumn(2).isNull())
        for (auto& k : json_strings(s.getColumn(2).getText())) occasions.push_back({id, day, k});
      if (!s.getColumn(3).isNull())
        for (auto& k : json_strings(s.getColumn(3).getText()))
          policies.push_back({id, Month::of(day).first(), k});
    }
  }
  for (size_t i = 0; i < n; ++i) {
    for (size_t m = 0; m < months; ++m) {
      const size_t cell = m * n + i;
      if (visit_days[cell] == 0 && phone_days[cell] == 0 && undone[cell] == 0) continue;
      out.activity.push_back({out.pairings[i].id, month_at(first_month + static_cast<int>(m)),
                              std::popcount(visit_days[cell]), std::popcount(phone_days[cell]),
                              undone[cell]});
    }
  }
  // One report per (pairing, kind, date) for occasions and per (pairing, month, kind) for
  // policies: a retried or repeated message is not a second report.
  std::sort(occasions.begin(), occasions.end());
  occasions.erase(std::unique(occasions.begin(), occasions.end()), occasions.end());
  for (auto& o : occasions) {
    auto& s = st_->first_visit;
    Use use(s);
    s.bind(1, o.pairing_id);
    s.bind(2, o.date.iso());
    std::optional<Date> first;
    if (s.executeStep()) first = date_col(s.getColumn(0));
    out.occasions.push_back({o.pairing_id, o.date, std::move(o.kind), first});
  }
  std::sort(policies.begin(), policies.end());
  policies.erase(std::unique(policies.begin(), policies.end()), policies.end());
  for (auto& p : policies)
    out.policies.push_back({p.pairing_id, Month::of(p.date), std::move(p.kind)});
  {
    auto& s = st_->problems;
    Use use(s);
    bind_period(s, from, to, only);
    while (s.executeStep()) {
      ProblemReport r;
      r.id = s.getColumn(0).getInt64();
      r.pairing_id = s.getColumn(1).getInt64();
      r.ledger = ledger_col(s.getColumn(2));
      r.unit = s.getColumn(3).getString();
      r.household_head = s.getColumn(4).getString();
      r.person = s.getColumn(5).getString();
      r.category = s.getColumn(6).getString();
      r.policy = s.getColumn(7).getString();
      r.resolved = s.getColumn(8).getInt() != 0;
      r.reported_on = required_date_col(s.getColumn(9));
      r.closed_on = date_col(s.getColumn(10));
      out.problems.push_back(std::move(r));
    }
    // Sorted here: an ORDER BY id would make SQLite walk the table instead of the index.
    std::sort(out.problems.begin(), out.problems.end(),
              [](const ProblemReport& a, const ProblemReport& b) { return a.id < b.id; });
  }
  read.commit();
  return out;
}

std::vector<BulletinQueries::QueryPlan> BulletinQueries::plans() {
  std::unique_lock lock = own_ ? std::unique_lock<std::mutex>() : std::unique_lock(store_.mu_);
  SQLite::Database& db = own_ ? *own_ : *store_.db_;
  std::vector<QueryPlan> out;
  for (auto [name, statement] : {std::pair{"pairings", &st_->pairings},
                                 {"range", &st_->range},
                                 {"reports", &st_->reports},
                                 {"first_visit", &st_->first_visit},
                                 {"problems", &st_->problems}}) {
    QueryPlan plan{name, statement->getQuery(), {}};
    // Rows are (id, parent, notused, detail), parents before their children.
    SQLite::Statement explain(db, "EXPLAIN QUERY PLAN " + plan.sql);
    std::map<int, int> depth{{0, 0}};
    while (explain.executeStep()) {
      const int id = explain.getColumn(0).getInt(), parent = explain.getColumn(1).getInt();
      depth[id] = depth[parent] + 1;
      plan.steps.push_back(std::string(2 * (depth[id] - 1), ' ') +
                           explain.getColumn(3).getString());
    }
    out.push_back(std::move(plan));
  }
  return out;
}

}  // namespace storage
