#include <catch2/catch.hpp>

#include <array>

#include <SQLiteCpp/SQLiteCpp.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "handlers/bulletin.h"
#include "handlers/bulletin_stats.h"
#include "handlers/labels.h"
#include "handlers/published.h"
#include "handlers/templates.h"
#include "storage/bulletin_queries.h"
#include "storage/problems.h"
#include "storage/store.h"
#include "tests/support/temp_dir.h"

using handlers::BulletinKind;
using handlers::BulletinOptions;
using handlers::Coverage;
using handlers::MonthlyFigures;
using handlers::Period;
using handlers::QuarterlyFigures;
using storage::CheckinRecord;
using storage::Date;
using storage::InboundMessage;
using storage::Ledger;
using storage::LocalTime;
using storage::Mode;
using storage::Month;
using storage::Pairing;
using storage::Store;

using bangfu_test::TempDir;

namespace {

// ------------------------------------------------------------------------------------------
// A small district, built through the real Store API on a temporary file (so that the oracle
// below can open a second, independent connection to it).

Date d(const char* iso) {
  auto x = Date::parse_iso(iso);
  REQUIRE(x);
  return *x;
}

LocalTime at(const char* iso) {
  auto t = LocalTime::parse(iso, 8 * 3600);
  REQUIRE(t);
  return *t;
}

struct Row {
  const char* key;  // household_id
  const char* helper_id;
  const char* helper_name;
  Ledger ledger;
  const char* unit;
  const char* head;
  const char* person;
  const char* category;
  const char* start;  // "" for none
  const char* end;
};

// Cadre, health and education pairings; H5 starts on the 25th, H16 on the 20th, H8 on the 10th,
// H17 on the 16th (15 days: due) and H18 on the 17th (14 days: not), H6 ends on the 5th and H15
// on the 8th of November 2026. Beneficiary names are distinct from
// each other and from every helper and unit, so the privacy test cannot hit a false positive.
const Row kRoster[] = {
    {"H1", "zhangwei", "张伟", Ledger::Cadre, "区财政局", "王秀英", "", "", "", ""},
    {"H2", "zhangwei", "张伟", Ledger::Cadre, "区财政局", "李德明", "", "", "", ""},
    {"H3", "zhangwei", "张伟", Ledger::Cadre, "区财政局", "孙大海", "", "", "", ""},
    {"H4", "wangfang", "王芳", Ledger::Cadre, "区民政局", "陈玉兰", "", "", "", ""},
    {"H5", "wangfang", "王芳", Ledger::Cadre, "区民政局", "赵桂兰", "", "", "2026-11-25", ""},
    {"H6", "wangfang", "王芳", Ledger::Cadre, "区民政局", "刘长顺", "", "", "", "2026-11-05"},
    {"H15", "wangfang", "王芳", Ledger::Cadre, "区民政局", "褚亮", "", "", "", "2026-11-08"},
    {"H7", "lijun", "李军", Ledger::Cadre, "区发改局", "周福", "", "", "", ""},
    {"H8", "lijun", "李军", Ledger::Cadre, "区发改局", "吴秀珍", "", "", "2026-11-10", ""},
    {"H16", "lijun", "李军", Ledger::Cadre, "区发改局", "蒋金贵", "", "", "2026-11-20", ""},
    {"H17", "lijun", "李军", Ledger::Cadre, "区发改局", "孔祥云", "", "", "2026-11-16", ""},
    {"H18", "wangfang", "王芳", Ledger::Cadre, "区民政局", "严春花", "", "", "2026-11-17", ""},
    {"H9", "drzhao", "赵医生", Ledger::Health, "区人民医院", "钱明", "钱小红", "患病", "", ""},
    {"H10", "drzhao", "赵医生", Ledger::Health, "区人民医院", "郑强", "郑强", "残疾", "", ""},
    {"H11", "drsun", "孙医生", Ledger::Health, "镇卫生院", "冯刚", "冯丽", "患病", "", ""},
    {"H12", "tli", "李老师", Ledger::Education, "区实验中学", "何平", "何洋", "学生", "", ""},
    {"H13", "tli", "李老师", Ledger::Education, "区实验中学", "吕军", "吕晨", "学生", "", ""},
    {"H14", "tma", "马老师", Ledger::Education, "区第二小学", "施红", "施乐", "学生", "", ""},
};

class District {
 public:
  District() : path_(dir_.file("bangfu.db")), store_(std::make_unique<Store>(path_)) {
    std::vector<Pairing> rows;
    for (const auto& r : kRoster) {
      Pairing p;
      p.helper_id = r.helper_id;
      p.helper_name = r.helper_name;
      p.phone = "13800000000";
      p.ledger = r.ledger;
      p.unit = r.unit;
      p.household_id = r.key;
      p.household_head = r.head;
      p.person = r.person;
      p.person_category = r.category;
      p.village = "张庄村";
      p.street = "高新街道";
      if (*r.start) p.start_date = d(r.start);
      if (*r.end) p.end_date = d(r.end);
      rows.push_back(p);
    }
    store_->import_roster(rows, Date{2026, 6, 1}, "admin", 1);
    for (const auto& p : store_->pairings_between(Date{1, 1, 1}, Date{9999, 12, 31}))
      ids_[p.household_id] = p.id;
    REQUIRE(ids_.size() == std::size(kRoster));
    seed();
  }

  Store& store() { return *store_; }
  const std::string& path() const { return path_; }

 private:
  // Adds a check-in (and its raw message) for household `key`; undoes it when asked.
  void checkin(const char* key, const char* date, Mode mode,
               std::vector<std::string> occasions = {}, std::vector<std::string> policies = {},
               std::vector<std::string> problems = {}, bool undo = false) {
    const std::string msgid = "m" + std::to_string(++seq_);
    const auto pairing = store_->pairing(ids_.at(key));
    REQUIRE(pairing);
    InboundMessage m;
    m.msgid = msgid;
    m.userid = pairing->helper_id;
    m.chatid = "chat1";
    m.chattype = "group";
    m.text = "@帮扶助手 走访 " + msgid;
    m.received_at = 1'790'000'000 + seq_;
    CheckinRecord c;
    c.msgid = msgid;
    c.pairing_id = pairing->id;
    c.helper_id = pairing->helper_id;
    c.visit_date = d(date);
    c.mode = mode;
    c.occasions = std::move(occasions);
    c.policies = std::move(policies);
    c.problems = std::move(problems);
    c.received_at = m.received_at;
    store_->transaction([&](Store::Tx& tx) {
      tx.save_inbound(m);
      const int64_t id = tx.add_checkin(c);
      // As the dispatcher does: each problem becomes a tracked item (numbered in seed order).
      if (!c.problems.empty())
        storage::Problems::record(tx, id, *pairing, c.helper_id, c.visit_date, c.problems,
                                  c.policies, c.received_at);
      if (undo) REQUIRE(tx.mark_undone(id, c.helper_id, m.received_at + 60));
    });
  }

  void seed() {
    const auto V = Mode::Visit, P = Mode::Phone, S = Mode::Service, HV = Mode::HomeVisit,
               SV = Mode::SchoolVisit;
    // Q3 2026: the previous quarter.
    checkin("H1", "2026-07-05", V);
    checkin("H1", "2026-08-05", V);
    checkin("H1", "2026-09-05", V);
    checkin("H2", "2026-07-06", V);
    checkin("H4", "2026-08-01", V);
    checkin("H7", "2026-09-02", V);
    checkin("H9", "2026-09-09", S);
    checkin("H10", "2026-09-20", S, {}, {}, {"行动不便"});
    checkin("H12", "2026-07-07", HV);
    checkin("H12", "2026-08-07", HV);
    checkin("H14", "2026-09-14", HV);
    checkin("H14", "2026-08-14", HV);
    checkin("H13", "2026-09-13", SV);
    // October 2026: the previous month.
    checkin("H1", "2026-10-10", V);
    checkin("H2", "2026-10-11", V);
    checkin("H4", "2026-10-02", V);
    checkin("H6", "2026-10-03", V);
    checkin("H15", "2026-10-09", V);
    checkin("H7", "2026-10-12", P, {}, {}, {"低保未落实"});
    checkin("H7", "2026-10-13", V, {}, {}, {"旧问题已撤销"}, true);
    checkin("H9", "2026-10-05", S);
    checkin("H11", "2026-10-20", S);
    checkin("H12", "2026-10-08", HV);
    checkin("H14", "2026-10-15", V);
    // November 2026: the month under test.
    checkin("H1", "2026-11-03", V);
    checkin("H1", "2026-11-03", V);  // a retry the same day: one visit
    checkin("H1", "2026-11-20", V);
    checkin("H2", "2026-11-10", P);                          // phone only: not a visit
    checkin("H3", "2026-11-05", P, {"illness"});             // never visited: overdue
    checkin("H3", "2026-11-15", V, {}, {}, {"漏水"}, true);  // undone: no visit, no problem
    checkin("H4", "2026-11-08", V, {"wedding_funeral"});     // the occasion's own visit
    checkin("H6", "2026-11-02", V);                          // ended on the 5th, visited: counts
    checkin("H7", "2026-11-12", HV, {}, {"minimum_living"}, {"危房待修"});
    checkin("H7", "2026-11-20", V, {"accident"}, {"housing"}, {}, true);  // undone
    checkin("H16", "2026-11-22", V);  // started on the 20th, visited: counts
    checkin("H9", "2026-11-06", P, {"illness"});
    checkin("H9", "2026-11-10", S);  // within the window
    checkin("H10", "2026-11-18", S, {}, {"medical_aid"});
    checkin("H10", "2026-11-25", S, {}, {"medical_aid"});  // the same policy again
    checkin("H11", "2026-11-28", P, {"accident"});         // pending on Dec 1, followed Dec 3
    checkin("H12", "2026-11-05", HV, {"exam"}, {"education_aid"}, {"数学成绩下滑"});
    checkin("H12", "2026-11-05", HV, {"exam"});  // the same occasion again
    checkin("H13", "2026-11-13", P, {"exam", "festival"});
    checkin("H13", "2026-11-20", SV);               // exactly 7 days later: in the window
    checkin("H14", "2026-11-01", P, {"festival"});  // visited on the 12th: too late
    checkin("H14", "2026-11-12", V);
    // December 2026.
    checkin("H1", "2026-12-05", V);
    checkin("H2", "2026-12-06", V);
    checkin("H9", "2026-12-01", S);
    checkin("H10", "2026-12-02", S);
    checkin("H11", "2026-12-03", S);
    checkin("H12", "2026-12-04", HV, {}, {}, {"数学成绩下滑"});
    checkin("H14", "2026-12-10", V, {"festival"});
    checkin("H16", "2026-12-11", V);
    checkin("H7", "2026-12-12", V);
    // Problems followed up: #1 行动不便 (09-20) resolved on 11-18, #2 低保未落实 (10-12) on
    // 12-08, #6 数学成绩下滑 (11-05) in progress; #3 and #4 were closed when their check-ins
    // were undone; #5 and #7 stay open.
    using storage::ProblemStatus;
    store_->transaction([&](Store::Tx& tx) {
      storage::Problems::set_status(tx, 1, ProblemStatus::Resolved, "office:li", "已配轮椅",
                                    d("2026-11-18"), 1'790'100'000);
      storage::Problems::set_status(tx, 2, ProblemStatus::Resolved, "office:li", "低保已批",
                                    d("2026-12-08"), 1'790'200'000);
      storage::Problems::set_status(tx, 6, ProblemStatus::InProgress, "h12", "已联系学校",
                                    d("2026-11-10"), 1'790'050'000);
    });
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
  std::map<std::string, int64_t> ids_;
  int seq_ = 0;
};

// ------------------------------------------------------------------------------------------
// The oracle: the rules written once more, as plain SQL over the tables, on its own connection.

std::string pm_sql(const std::string& v, const std::string& d) {
  return "(CASE WHEN " + d + " = 0 THEN 0 WHEN " + v + " = " + d + " THEN 1000 WHEN " + v +
         " = 0 THEN 0 ELSE min(999, max(1, (" + v + " * 1000 + " + d + " / 2) / " + d + ")) END)";
}

std::string pct_sql(const std::string& pm) {
  return "printf('%d.%d%%', " + pm + " / 10, " + pm + " % 10)";
}

class Oracle {
 public:
  explicit Oracle(const std::string& path) : db_(path, SQLite::OPEN_READONLY) {}

  // Per pairing and month (of `months`): days in force, counted visit days, phone days, undone;
  // `due` keeps the pairings that count (>= 15 days in force, or visited).
  static std::string states(const std::vector<Month>& months) {
    std::string values;
    for (const auto& m : months) {
      if (!values.empty()) values += ", ";
      values += "('" + m.first().iso() + "', '" + m.last().iso() + "')";
    }
    return "WITH months(first, last) AS (VALUES " + values + R"sql(),
st AS (
  SELECT p.id, p.ledger, p.unit, p.helper_id, p.helper_name, p.household_head, p.person,
    m.first AS month,
    max(0, CAST(julianday(min(coalesce(p.end_date, '9999-12-31'), m.last))
              - julianday(max(coalesce(p.start_date, '0001-01-01'), m.first)) AS INTEGER) + 1)
      AS days,
    (SELECT count(DISTINCT c.visit_date) FROM checkins c WHERE c.pairing_id = p.id
      AND c.visit_date BETWEEN m.first AND m.last AND c.undone_at IS NULL AND c.mode <> 'phone')
      AS vdays,
    (SELECT count(DISTINCT c.visit_date) FROM checkins c WHERE c.pairing_id = p.id
      AND c.visit_date BETWEEN m.first AND m.last AND c.undone_at IS NULL AND c.mode = 'phone')
      AS pdays,
    (SELECT count(*) FROM checkins c WHERE c.pairing_id = p.id
      AND c.visit_date BETWEEN m.first AND m.last AND c.undone_at IS NOT NULL) AS undone
  FROM pairings p, months m
  WHERE :ledger IS NULL OR p.ledger = :ledger),
due AS (SELECT *, vdays > 0 AS visited FROM st WHERE days >= 15 OR vdays > 0)
)sql";
  }

  SQLite::Statement query(const std::string& sql, std::optional<Ledger> l) {
    SQLite::Statement s(db_, sql);  // every oracle query names :ledger
    if (l)
      s.bind(":ledger", std::string(storage::ledger_code(*l)));
    else
      s.bind(":ledger");
    return s;
  }

  Coverage coverage(const std::vector<Month>& months, std::optional<Ledger> l) {
    auto s = query(states(months) + "SELECT count(*), coalesce(sum(visited), 0) FROM due", l);
    REQUIRE(s.executeStep());
    return {s.getColumn(0).getInt(), s.getColumn(1).getInt()};
  }

  struct UnitRow {
    std::string unit;
    Coverage c;
    int rank;
    std::string pct;
  };
  std::vector<UnitRow> units(const std::vector<Month>& months, Ledger l) {
    const std::string pm = pm_sql("v", "n");
    auto s = query(states(months) +
                       ", u AS (SELECT unit, count(*) AS n, sum(visited) AS v FROM due GROUP BY "
                       "unit) SELECT unit, n, v, RANK() OVER (ORDER BY v * 1.0 / n DESC), " +
                       pct_sql(pm) + " FROM u ORDER BY v * 1.0 / n DESC, n DESC, unit",
                   l);
    std::vector<UnitRow> out;
    while (s.executeStep())
      out.push_back({s.getColumn(0).getString(),
                     {s.getColumn(1).getInt(), s.getColumn(2).getInt()},
                     s.getColumn(3).getInt(),
                     s.getColumn(4).getString()});
    return out;
  }

  std::map<std::string, int> totals(Month m, Ledger l) {
    auto s = query(states({m}) +
                       "SELECT (SELECT coalesce(sum(vdays), 0) FROM st), "
                       "(SELECT coalesce(sum(pdays), 0) FROM st), "
                       "(SELECT coalesce(sum(undone), 0) FROM st), "
                       "(SELECT count(*) FROM st WHERE days BETWEEN 1 AND 14 AND vdays = 0), "
                       "(SELECT count(*) FROM due WHERE NOT visited AND pdays > 0)",
                   l);
    REQUIRE(s.executeStep());
    return {{"visits", s.getColumn(0).getInt()},
            {"phone", s.getColumn(1).getInt()},
            {"undone", s.getColumn(2).getInt()},
            {"not_counted", s.getColumn(3).getInt()},
            {"phone_only", s.getColumn(4).getInt()}};
  }

  std::vector<handlers::HelperFigure> helpers(Month m, Ledger l) {
    auto s = query(states({m}) +
                       "SELECT helper_id, helper_name, unit, sum(NOT visited) AS missed, "
                       "count(*) AS n FROM due GROUP BY helper_id, unit HAVING missed > 0 "
                       "ORDER BY missed DESC, n DESC, unit, helper_name, helper_id",
                   l);
    std::vector<handlers::HelperFigure> out;
    while (s.executeStep())
      out.push_back({s.getColumn(0).getString(), s.getColumn(1).getString(),
                     s.getColumn(2).getString(), s.getColumn(3).getInt(), s.getColumn(4).getInt()});
    return out;
  }

  static std::string occasions_cte(Date from, Date to, Date today, int window) {
    return R"sql(
WITH occ AS (
  SELECT DISTINCT c.pairing_id, c.visit_date AS day, j.value AS kind
  FROM checkins c JOIN pairings p ON p.id = c.pairing_id, json_each(c.occasions) j
  WHERE c.undone_at IS NULL AND c.visit_date BETWEEN ')sql" +
           from.iso() + "' AND '" + to.iso() + R"sql('
    AND (:ledger IS NULL OR p.ledger = :ledger)),
f AS (
  SELECT occ.*,
    EXISTS (SELECT 1 FROM checkins v WHERE v.pairing_id = occ.pairing_id
      AND v.undone_at IS NULL AND v.mode <> 'phone' AND v.visit_date >= occ.day
      AND julianday(v.visit_date) <= julianday(occ.day) + )sql" +
           std::to_string(window) + " AND v.visit_date <= '" + today.iso() +
           "') AS followed, julianday('" + today.iso() + "') > julianday(occ.day) + " +
           std::to_string(window) + " AS over FROM occ)\n";
  }

  std::vector<handlers::OccasionTally> occasions(Date from, Date to, Date today, int window,
                                                 std::optional<Ledger> l) {
    auto s = query(occasions_cte(from, to, today, window) +
                       "SELECT kind, count(*), sum(followed), sum(NOT followed AND NOT over), "
                       "sum(NOT followed AND over) FROM f GROUP BY kind",
                   l);
    std::map<std::string, handlers::OccasionTally> by_kind;
    while (s.executeStep())
      by_kind[s.getColumn(0).getString()] = {s.getColumn(0).getString(), s.getColumn(1).getInt(),
                                             s.getColumn(2).getInt(), s.getColumn(3).getInt(),
                                             s.getColumn(4).getInt()};
    std::vector<handlers::OccasionTally> out;
    for (const char* k : {"wedding_funeral", "exam", "illness", "accident", "festival"}) {
      auto it = by_kind.find(k);
      out.push_back(it == by_kind.end() ? handlers::OccasionTally{k} : it->second);
    }
    return out;
  }

  std::vector<handlers::OverdueOccasion> overdue(Date from, Date to, Date today, int window,
                                                 Ledger l) {
    auto s = query(occasions_cte(from, to, today, window) +
                       "SELECT p.unit, p.helper_id, p.helper_name, p.household_head, p.person, "
                       "f.kind, f.day FROM f JOIN pairings p ON p.id = f.pairing_id "
                       "WHERE NOT followed AND over "
                       "ORDER BY f.day, p.unit, p.helper_name, p.helper_id, f.kind",
                   l);
    std::vector<handlers::OverdueOccasion> out;
    while (s.executeStep()) {
      const std::string head = s.getColumn(3).getString(), person = s.getColumn(4).getString();
      out.push_back(
          {s.getColumn(0).getString(), s.getColumn(1).getString(), s.getColumn(2).getString(),
           person.empty() ? handlers::mask_name(head) + "户" : handlers::mask_name(person),
           s.getColumn(5).getString(), d(s.getColumn(6).getString().c_str())});
    }
    return out;
  }

  std::vector<handlers::PolicyTally> policies(Month m, Ledger l) {
    auto s = query(
        "SELECT j.value, count(DISTINCT c.pairing_id) FROM checkins c "
        "JOIN pairings p ON p.id = c.pairing_id, json_each(c.policies) j "
        "WHERE c.undone_at IS NULL AND c.visit_date BETWEEN '" +
            m.first().iso() + "' AND '" + m.last().iso() +
            "' AND p.ledger = :ledger GROUP BY j.value",
        l);
    std::map<std::string, int> by_kind;
    while (s.executeStep()) by_kind[s.getColumn(0).getString()] = s.getColumn(1).getInt();
    std::vector<handlers::PolicyTally> out;
    for (const char* k : {"medical_aid", "education_aid", "housing", "minimum_living"})
      out.push_back({k, by_kind.count(k) ? by_kind[k] : 0});
    return out;
  }

  // {new in [from, to], resolved in it, open at `to`, of those open more than 30 days at `end`,
  // open at `from`}, from the problems table; not_a_problem items are no problems.
  std::array<int, 5> problems(Date from, Date to, Date end, std::optional<Ledger> l) {
    const std::string f = "'" + from.iso() + "'", t = "'" + to.iso() + "'",
                      e = "'" + end.iso() + "'";
    const std::string open_at_to = "NOT (status = 'resolved' AND closed_on <= " + t + ")";
    auto s =
        query("SELECT coalesce(sum(reported_on >= " + f +
                  "), 0), coalesce(sum(status = 'resolved' AND closed_on BETWEEN " + f + " AND " +
                  t + "), 0), coalesce(sum(" + open_at_to + "), 0), coalesce(sum(" + open_at_to +
                  " AND julianday(" + e +
                  ") - julianday(reported_on) > 30), 0), coalesce(sum(reported_on < " + f +
                  " AND NOT (status = 'resolved' AND closed_on < " + f +
                  ")), 0) FROM problems WHERE status <> 'not_a_problem' AND reported_on <= " + t +
                  " AND (:ledger IS NULL OR ledger = :ledger)",
              l);
    REQUIRE(s.executeStep());
    return {s.getColumn(0).getInt(), s.getColumn(1).getInt(), s.getColumn(2).getInt(),
            s.getColumn(3).getInt(), s.getColumn(4).getInt()};
  }

  // Units of the quarter: quarter and previous-quarter sums, the shown change, rank.
  struct UnitQuarter {
    std::string unit;
    Coverage quarter;
    std::optional<Coverage> previous;
    int rank;
    std::optional<int> change;
  };
  std::vector<UnitQuarter> quarter_units(const std::vector<Month>& q,
                                         const std::vector<Month>& prev, Ledger l) {
    std::string prev_values;
    for (const auto& m : prev) {
      if (!prev_values.empty()) prev_values += ", ";
      prev_values += "('" + m.first().iso() + "')";
    }
    std::string q_values;
    for (const auto& m : q) {
      if (!q_values.empty()) q_values += ", ";
      q_values += "('" + m.first().iso() + "')";
    }
    std::vector<Month> all = prev;
    all.insert(all.end(), q.begin(), q.end());
    const std::string sql =
        states(all) + ", qu AS (SELECT unit, count(*) AS n, sum(visited) AS v FROM due " +
        "WHERE month IN (VALUES " + q_values + ") GROUP BY unit), " +
        "pu AS (SELECT unit, count(*) AS n, sum(visited) AS v FROM due WHERE month IN (VALUES " +
        prev_values + ") GROUP BY unit) " +
        "SELECT qu.unit, qu.n, qu.v, pu.n, pu.v, RANK() OVER (ORDER BY qu.v * 1.0 / qu.n DESC), " +
        "CASE WHEN pu.n IS NULL THEN NULL ELSE " + pm_sql("qu.v", "qu.n") + " - " +
        pm_sql("pu.v", "pu.n") + " END " +
        "FROM qu LEFT JOIN pu ON pu.unit = qu.unit ORDER BY qu.v * 1.0 / qu.n DESC, qu.n DESC, "
        "qu.unit";
    auto s = query(sql, l);
    std::vector<UnitQuarter> out;
    while (s.executeStep()) {
      UnitQuarter u{s.getColumn(0).getString(),
                    {s.getColumn(1).getInt(), s.getColumn(2).getInt()},
                    std::nullopt,
                    s.getColumn(5).getInt(),
                    std::nullopt};
      if (!s.getColumn(3).isNull()) {
        u.previous = Coverage{s.getColumn(3).getInt(), s.getColumn(4).getInt()};
        u.change = s.getColumn(6).getInt();
      }
      out.push_back(u);
    }
    return out;
  }

  std::vector<handlers::RepeatedMiss> repeated(const std::vector<Month>& over, Ledger l) {
    auto s = query(states(over) +
                       "SELECT unit, helper_id, helper_name, household_head, person, "
                       "sum(NOT visited) AS n FROM due GROUP BY id HAVING n >= 2 "
                       "ORDER BY n DESC, unit, helper_name, helper_id",
                   l);
    std::vector<handlers::RepeatedMiss> out;
    while (s.executeStep()) {
      const std::string head = s.getColumn(3).getString(), person = s.getColumn(4).getString();
      out.push_back(
          {s.getColumn(0).getString(), s.getColumn(1).getString(), s.getColumn(2).getString(),
           person.empty() ? handlers::mask_name(head) + "户" : handlers::mask_name(person),
           s.getColumn(5).getInt()});
    }
    return out;
  }

 private:
  SQLite::Database db_;
};

const Ledger kAll[] = {Ledger::Cadre, Ledger::Health, Ledger::Education};

handlers::Templates real_templates() {
  return handlers::Templates::load(std::string(BANGFU_SOURCE_DIR) + "/templates",
                                   handlers::bulletin_template_names());
}

std::optional<Coverage> if_due(const Coverage& c) {
  return c.due ? std::optional<Coverage>(c) : std::nullopt;
}

// Checks every figure of one month against the oracle.
void check_month(Oracle& o, const MonthlyFigures& f, Month m, Date today,
                 const BulletinOptions& options) {
  CHECK(f.month == m);
  CHECK(f.running == !(m.last() < today));
  REQUIRE(f.ledgers.size() == (f.only ? 1u : 3u));
  Coverage district, district_prev;
  for (const auto& lf : f.ledgers) {
    const Ledger l = lf.ledger;
    CAPTURE(storage::ledger_code(l));
    const auto& t = lf.totals;
    CHECK(t.coverage == o.coverage({m}, l));
    CHECK(lf.previous == if_due(o.coverage({m.prev()}, l)));
    district += t.coverage;
    district_prev += o.coverage({m.prev()}, l);

    auto totals = o.totals(m, l);
    CHECK(t.visits == totals["visits"]);
    CHECK(t.phone_contacts == totals["phone"]);
    CHECK(t.undone == totals["undone"]);
    CHECK(t.not_counted == totals["not_counted"]);
    CHECK(t.phone_only == totals["phone_only"]);

    const auto units = o.units({m}, l);
    REQUIRE(lf.units.size() == units.size());
    std::vector<std::string> commended, below;
    for (size_t i = 0; i < units.size(); ++i) {
      CAPTURE(units[i].unit);
      CHECK(lf.units[i].unit == units[i].unit);
      CHECK(lf.units[i].coverage == units[i].c);
      CHECK(lf.units[i].rank == units[i].rank);
      CHECK(handlers::percent_text(handlers::permille(lf.units[i].coverage)) == units[i].pct);
      if (units[i].c.visited == units[i].c.due) commended.push_back(units[i].unit);
      if (units[i].c.visited * 100 < options.unit_threshold_percent * units[i].c.due)
        below.push_back(units[i].unit);
    }
    CHECK(lf.commended == commended);
    std::vector<std::string> below_got;
    for (const auto& u : lf.below) below_got.push_back(u.unit);
    CHECK(below_got == below);
    CHECK(lf.helpers == o.helpers(m, l));

    CHECK(t.occasions == o.occasions(m.first(), m.last(), today, options.occasion_window_days, l));
    CHECK(lf.overdue == o.overdue(m.first(), m.last(), today, options.occasion_window_days, l));
    CHECK(t.policies == o.policies(m, l));
    const auto pr = o.problems(m.first(), m.last(), std::min(m.last(), today), l);
    CHECK(t.problems.fresh == pr[0]);
    CHECK(t.problems.resolved == pr[1]);
    CHECK(t.problems.open == pr[2]);
    CHECK(t.problems.long_open == pr[3]);
    CHECK(t.problems.carried == pr[4]);
  }
  if (!f.only) {
    CHECK(f.district.coverage == o.coverage({m}, std::nullopt));
    CHECK(f.district.coverage == district);
    CHECK(f.district_previous == if_due(district_prev));
    CHECK(f.district.occasions ==
          o.occasions(m.first(), m.last(), today, options.occasion_window_days, std::nullopt));
    const auto pr = o.problems(m.first(), m.last(), std::min(m.last(), today), std::nullopt);
    CHECK(f.district.problems.fresh == pr[0]);
    CHECK(f.district.problems.resolved == pr[1]);
    CHECK(f.district.problems.open == pr[2]);
    CHECK(f.district.problems.long_open == pr[3]);
  }
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Compares `text` byte-exactly with tests/golden/<name>; BANGFU_UPDATE_GOLDEN=1 rewrites it.
void check_golden(const std::string& name, const std::string& text) {
  const std::string path = std::string(BANGFU_SOURCE_DIR) + "/tests/golden/" + name;
  if (const char* u = std::getenv("BANGFU_UPDATE_GOLDEN"); u && std::string(u) == "1") {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << text;
  }
  REQUIRE(std::filesystem::exists(path));
  const std::string want = read_text(path);
  if (text != want) {
    // Show the first differing line, which is what a reviewer needs.
    std::istringstream a(text), b(want);
    std::string la, lb;
    int line = 0;
    while (true) {
      ++line;
      const bool ga = static_cast<bool>(std::getline(a, la));
      const bool gb = static_cast<bool>(std::getline(b, lb));
      if (!ga && !gb) break;
      if (la != lb || ga != gb) {
        INFO(name << ":" << line << "\n got: " << la << "\nwant: " << lb);
        CHECK(text == want);
        return;
      }
    }
  }
  CHECK(text == want);
}

void check_lines(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    CAPTURE(line);
    CHECK(line.size() <= 1000);
  }
}

void check_private(const std::string& text) {
  for (const auto& r : kRoster) {
    for (const char* name : {r.head, r.person}) {
      if (!*name) continue;
      CAPTURE(name);
      CHECK(text.find(name) == std::string::npos);
    }
  }
  CHECK(text.find("患病") == std::string::npos);
  CHECK(text.find("残疾") == std::string::npos);
}

}  // namespace

// ------------------------------------------------------------------------------------------

TEST_CASE("Period parses, prints and steps", "[bulletin]") {
  using K = BulletinKind;
  auto [text, ok, kind, year, index, str] =
      GENERATE(table<const char*, bool, K, int, int, const char*>({
          {"2026-11", true, K::Monthly, 2026, 11, "2026-11"},
          {"2026-01", true, K::Monthly, 2026, 1, "2026-01"},
          {"2026-Q4", true, K::Quarterly, 2026, 4, "2026-Q4"},
          {"2026Q3", true, K::Quarterly, 2026, 3, "2026-Q3"},
          {"2026q1", true, K::Quarterly, 2026, 1, "2026-Q1"},
          {"2026-q2", true, K::Quarterly, 2026, 2, "2026-Q2"},
          {"2026-13", false, K::Monthly, 0, 0, ""},
          {"2026-00", false, K::Monthly, 0, 0, ""},
          {"2026-Q5", false, K::Monthly, 0, 0, ""},
          {"2026-Q0", false, K::Monthly, 0, 0, ""},
          {"2026-11-01", false, K::Monthly, 0, 0, ""},
          {"26-11", false, K::Monthly, 0, 0, ""},
          {"2026Q", false, K::Monthly, 0, 0, ""},
          {"", false, K::Monthly, 0, 0, ""},
          {"abcd-Q1", false, K::Monthly, 0, 0, ""},
      }));
  CAPTURE(text);
  const auto p = Period::parse(text);
  REQUIRE(p.has_value() == ok);
  if (!ok) return;
  CHECK(p->kind == kind);
  CHECK(p->year == year);
  CHECK(p->index == index);
  CHECK(p->str() == str);
  CHECK(Period::parse(p->str()) == p);
}

TEST_CASE("Period bounds, prev and next", "[bulletin]") {
  const auto m = *Period::parse("2026-01");
  CHECK(m.first() == Date{2026, 1, 1});
  CHECK(m.last() == Date{2026, 1, 31});
  CHECK(m.prev().str() == "2025-12");
  CHECK(m.next().str() == "2026-02");
  CHECK(Period::parse("2025-12")->next().str() == "2026-01");
  CHECK(Period::parse("2028-02")->last() == Date{2028, 2, 29});

  const auto q = *Period::parse("2026-Q1");
  CHECK(q.first() == Date{2026, 1, 1});
  CHECK(q.last() == Date{2026, 3, 31});
  CHECK(q.prev().str() == "2025-Q4");
  CHECK(q.next().str() == "2026-Q2");
  CHECK(Period::parse("2026-Q4")->next().str() == "2027-Q1");
  CHECK(Period::parse("2026-Q4")->first() == Date{2026, 10, 1});
  CHECK(Period::parse("2026-Q4")->last() == Date{2026, 12, 31});

  CHECK(Period::containing(BulletinKind::Monthly, Date{2026, 11, 30}).str() == "2026-11");
  CHECK(Period::containing(BulletinKind::Quarterly, Date{2026, 11, 30}).str() == "2026-Q4");
  CHECK(Period::containing(BulletinKind::Quarterly, Date{2026, 3, 31}).str() == "2026-Q1");
  CHECK(Period::containing(BulletinKind::Quarterly, Date{2026, 4, 1}).str() == "2026-Q2");
}

TEST_CASE("Percentages come from integers and never overstate", "[bulletin]") {
  auto [visited, due, text] = GENERATE(table<int, int, const char*>({
      {0, 0, "0.0%"},
      {0, 5, "0.0%"},
      {5, 5, "100.0%"},
      {1, 3, "33.3%"},
      {2, 3, "66.7%"},
      {1, 8, "12.5%"},        // exactly half a tenth rounds up
      {1999, 2000, "99.9%"},  // 99.95 would round to 100.0: never shown unless all visited
      {1, 3000, "0.1%"},      // 0.03 would round to 0.0: never shown if one was visited
      {11, 12, "91.7%"},
  }));
  CAPTURE(visited, due);
  CHECK(handlers::percent_text(handlers::permille(Coverage{due, visited})) == text);
  CHECK(handlers::points_text(-45) == "4.5");
  CHECK(handlers::points_text(1000) == "100.0");
}

TEST_CASE("Days in force count only the days a pairing existed", "[bulletin]") {
  auto [start, end, days] = GENERATE(table<const char*, const char*, int>({
      {"", "", 30},
      {"2026-11-25", "", 6},
      {"2026-11-16", "", 15},
      {"", "2026-11-05", 5},
      {"2026-11-10", "2026-11-12", 3},
      {"2026-12-01", "", 0},
      {"", "2026-10-31", 0},
      {"2026-11-20", "2026-11-10", 0},  // ended before it began
  }));
  CAPTURE(start, end);
  Pairing p;
  if (*start) p.start_date = d(start);
  if (*end) p.end_date = d(end);
  CHECK(handlers::days_in_force(p, Month{2026, 11}) == days);
}

TEST_CASE("Monthly figures match the independent SQL", "[bulletin]") {
  District district;
  Oracle oracle(district.path());
  const BulletinOptions options;
  const Month nov{2026, 11};

  SECTION("the whole district, after the month") {
    const auto now = at("2026-12-01T09:00:00+08:00");
    const auto f = handlers::monthly_figures(district.store(), nov, std::nullopt, options, now);
    check_month(oracle, f, nov, now.date(), options);
    // The scenario exercises what it is meant to (figures from the oracle, not hard-coded).
    const auto cadre = oracle.totals(nov, Ledger::Cadre);
    CHECK(cadre.at("not_counted") == 3);  // H5 and H18 start late, H15 ended on the 8th
    CHECK(cadre.at("phone_only") == 2);
    CHECK(f.ledgers[0].helpers.size() == 2);
    CHECK(f.ledgers[2].units.size() == 2);
    CHECK(f.ledgers[2].units[0].rank == f.ledgers[2].units[1].rank);  // a tie at 100%
    CHECK_FALSE(f.ledgers[0].overdue.empty());
    CHECK(f.district.occasions[3].pending == 1);  // H11's accident on the 28th
    CHECK_FALSE(f.running);
  }
  SECTION("each ledger alone") {
    const auto now = at("2026-12-01T09:00:00+08:00");
    for (Ledger l : kAll) {
      const auto f = handlers::monthly_figures(district.store(), nov, l, options, now);
      REQUIRE(f.ledgers.size() == 1);
      CHECK(f.ledgers[0].ledger == l);
      check_month(oracle, f, nov, now.date(), options);
    }
  }
  SECTION("a running month, with a wider window and a higher threshold") {
    BulletinOptions other;
    other.occasion_window_days = 10;
    other.unit_threshold_percent = 100;
    const auto now = at("2026-11-20T18:00:00+08:00");
    const auto f = handlers::monthly_figures(district.store(), nov, std::nullopt, other, now);
    CHECK(f.running);
    check_month(oracle, f, nov, now.date(), other);
  }
  SECTION("the previous month and a month with nothing") {
    const auto now = at("2026-12-01T09:00:00+08:00");
    for (Month m : {Month{2026, 10}, Month{2026, 12}, Month{2026, 9}, Month{2025, 1}}) {
      CAPTURE(m.str());
      const auto f = handlers::monthly_figures(district.store(), m, std::nullopt, options, now);
      check_month(oracle, f, m, now.date(), options);
    }
  }
}

TEST_CASE("Quarterly figures match the independent SQL", "[bulletin]") {
  District district;
  Oracle oracle(district.path());
  const BulletinOptions options;
  const auto now = at("2027-01-03T09:00:00+08:00");
  const Date today = now.date();
  const std::vector<Month> q = {{2026, 10}, {2026, 11}, {2026, 12}};
  const std::vector<Month> prev = {{2026, 7}, {2026, 8}, {2026, 9}};

  const QuarterlyFigures f =
      handlers::quarterly_figures(district.store(), 2026, 4, std::nullopt, options, now);
  CHECK_FALSE(f.running);
  REQUIRE(f.ledgers.size() == 3);
  bool any_improved = false, any_repeated = false;
  for (const auto& lf : f.ledgers) {
    const Ledger l = lf.ledger;
    CAPTURE(storage::ledger_code(l));
    const auto& t = lf.totals;
    for (size_t i = 0; i < 3; ++i)
      CHECK(t.months[i] == std::optional<Coverage>(oracle.coverage({q[i]}, l)));
    CHECK(t.quarter == oracle.coverage(q, l));
    CHECK(t.previous == if_due(oracle.coverage(prev, l)));

    const auto units = oracle.quarter_units(q, prev, l);
    REQUIRE(lf.units.size() == units.size());
    for (size_t i = 0; i < units.size(); ++i) {
      CAPTURE(units[i].unit);
      CHECK(lf.units[i].unit == units[i].unit);
      CHECK(lf.units[i].quarter == units[i].quarter);
      CHECK(lf.units[i].previous == units[i].previous);
      CHECK(lf.units[i].rank == units[i].rank);
      CHECK(lf.units[i].change() == units[i].change);
      for (size_t m = 0; m < 3; ++m) {
        std::optional<Coverage> want;
        for (const auto& u : oracle.units({q[m]}, l))
          if (u.unit == units[i].unit) want = u.c;
        CHECK(lf.units[i].months[m] == want);
      }
    }
    // Improved most: the oracle's units with a positive change, largest first, top three.
    std::vector<Oracle::UnitQuarter> up;
    for (const auto& u : units)
      if (u.change && *u.change > 0) up.push_back(u);
    std::stable_sort(up.begin(), up.end(),
                     [](const auto& a, const auto& b) { return *a.change > *b.change; });
    if (up.size() > 3) up.resize(3);
    REQUIRE(lf.improved.size() == up.size());
    for (size_t i = 0; i < up.size(); ++i) CHECK(lf.improved[i].unit == up[i].unit);
    any_improved = any_improved || !up.empty();

    CHECK(lf.repeated == oracle.repeated(q, l));
    any_repeated = any_repeated || !lf.repeated.empty();
    CHECK(t.occasions ==
          oracle.occasions(q[0].first(), q[2].last(), today, options.occasion_window_days, l));
    const auto pr = oracle.problems(q[0].first(), q[2].last(), q[2].last(), l);
    CHECK(t.problems.fresh == pr[0]);
    CHECK(t.problems.resolved == pr[1]);
    CHECK(t.problems.open == pr[2]);
    CHECK(t.problems.long_open == pr[3]);
    CHECK(t.problems.carried == pr[4]);
  }
  CHECK(any_improved);
  CHECK(any_repeated);
  {
    // Share resolved and median days to resolve, from the table.
    const auto pr = oracle.problems(q[0].first(), q[2].last(), q[2].last(), std::nullopt);
    REQUIRE(pr[0] + pr[4] > 0);
    REQUIRE(pr[1] > 0);  // the scenario resolves problems in the quarter
    CHECK(f.district.problems.resolved_permille() ==
          handlers::permille(handlers::Coverage{pr[0] + pr[4], pr[1]}));
    auto s = oracle.query(
        "SELECT CAST(julianday(closed_on) - julianday(reported_on) AS INTEGER) FROM problems "
        "WHERE status = 'resolved' AND closed_on BETWEEN '2026-10-01' AND '2026-12-31' "
        "AND (:ledger IS NULL OR ledger = :ledger) ORDER BY 1",
        std::nullopt);
    std::vector<int> days;
    while (s.executeStep()) days.push_back(s.getColumn(0).getInt());
    const size_t n = days.size();
    CHECK(f.district.problems.median_tenths() ==
          (n % 2 ? days[n / 2] * 10 : (days[n / 2 - 1] + days[n / 2]) * 5));
  }
  for (size_t i = 0; i < 3; ++i)
    CHECK(f.district.months[i] == oracle.coverage({q[i]}, std::nullopt));
  CHECK(f.district.quarter == oracle.coverage(q, std::nullopt));
  CHECK(f.district.previous == if_due(oracle.coverage(prev, std::nullopt)));
  CHECK(f.district.occasions == oracle.occasions(q[0].first(), q[2].last(), today,
                                                 options.occasion_window_days, std::nullopt));

  SECTION("each ledger alone gives the same figures as its section of the district") {
    for (const auto& whole : f.ledgers) {
      const auto one =
          handlers::quarterly_figures(district.store(), 2026, 4, whole.ledger, options, now);
      REQUIRE(one.ledgers.size() == 1);
      const auto& lf = one.ledgers[0];
      CHECK(lf.totals.months == whole.totals.months);
      CHECK(lf.totals.quarter == whole.totals.quarter);
      CHECK(lf.totals.previous == whole.totals.previous);
      CHECK(lf.totals.occasions == whole.totals.occasions);
      CHECK(lf.totals.problems.fresh == whole.totals.problems.fresh);
      CHECK(lf.totals.problems.open == whole.totals.problems.open);
      CHECK(lf.totals.problems.long_list == whole.totals.problems.long_list);
      CHECK(lf.units == whole.units);
      CHECK(lf.improved == whole.improved);
      CHECK(lf.repeated == whole.repeated);
    }
  }
  SECTION("a running quarter counts only the months begun, and misses only months over") {
    const auto mid = at("2026-11-20T09:00:00+08:00");
    const auto r =
        handlers::quarterly_figures(district.store(), 2026, 4, std::nullopt, options, mid);
    CHECK(r.running);
    CHECK_FALSE(r.district.months[2].has_value());
    CHECK(r.district.quarter == oracle.coverage({q[0], q[1]}, std::nullopt));
    for (const auto& lf : r.ledgers) CHECK(lf.repeated.empty());  // only October is over
  }
}

TEST_CASE("Rendered bulletins match the golden files", "[bulletin]") {
  District district;
  const auto templates = real_templates();
  const BulletinOptions options;
  const std::string monthly =
      handlers::render_bulletin(district.store(), templates, *Period::parse("2026-11"),
                                std::nullopt, options, at("2026-12-01T09:00:00+08:00"));
  check_golden("monthly.md", monthly);
  const std::string quarterly =
      handlers::render_bulletin(district.store(), templates, *Period::parse("2026-Q4"),
                                std::nullopt, options, at("2027-01-03T09:00:00+08:00"));
  check_golden("quarterly.md", quarterly);
}

TEST_CASE("Bulletins name no beneficiary and no health category", "[bulletin]") {
  District district;
  const auto templates = real_templates();
  BulletinOptions named, unnamed;
  unnamed.name_helpers = false;
  std::vector<std::string> texts;
  for (const char* now :
       {"2026-12-01T09:00:00+08:00", "2026-11-20T09:00:00+08:00", "2027-01-03T09:00:00+08:00"}) {
    for (const char* period : {"2026-10", "2026-11", "2026-12", "2026-Q4"}) {
      std::vector<std::optional<Ledger>> scopes = {std::nullopt, Ledger::Cadre, Ledger::Health,
                                                   Ledger::Education};
      for (const auto& scope : scopes)
        for (const auto* o : {&named, &unnamed})
          texts.push_back(handlers::render_bulletin(district.store(), templates,
                                                    *Period::parse(period), scope, *o, at(now)));
    }
  }
  for (const auto& text : texts) {
    CAPTURE(text);
    check_private(text);
    check_lines(text);
  }
  // The masked forms are there, so the check above is not vacuous.
  const std::string nov =
      handlers::render_bulletin(district.store(), templates, *Period::parse("2026-11"),
                                std::nullopt, named, at("2026-12-01T09:00:00+08:00"));
  CHECK(nov.find("孙*海户") != std::string::npos);
  CHECK(nov.find("施*") != std::string::npos);
}

TEST_CASE("Helpers are named only when configured", "[bulletin]") {
  District district;
  const auto templates = real_templates();
  BulletinOptions unnamed;
  unnamed.name_helpers = false;
  const auto now = at("2026-12-01T09:00:00+08:00");
  const auto period = *Period::parse("2026-11");
  const std::string named_text = handlers::render_bulletin(district.store(), templates, period,
                                                           std::nullopt, BulletinOptions{}, now);
  const std::string unnamed_text =
      handlers::render_bulletin(district.store(), templates, period, std::nullopt, unnamed, now);
  const auto f = handlers::monthly_figures(district.store(), Month{2026, 11}, std::nullopt,
                                           BulletinOptions{}, now);
  for (const auto& l : f.ledgers) {
    for (const auto& h : l.helpers) {
      CAPTURE(h.helper_name);
      CHECK(named_text.find(h.helper_name + " **") != std::string::npos);
      CHECK(unnamed_text.find(h.helper_name) == std::string::npos);
    }
  }
  CHECK(unnamed_text.find("区财政局 **2**/3") != std::string::npos);
}

TEST_CASE("A running month says so far, not missed", "[bulletin]") {
  District district;
  const auto templates = real_templates();
  const std::string text =
      handlers::render_bulletin(district.store(), templates, *Period::parse("2026-11"),
                                std::nullopt, BulletinOptions{}, at("2026-11-20T18:00:00+08:00"));
  CHECK(text.find("截至11月20日") != std::string::npos);
  CHECK(text.find("尚未走访") != std::string::npos);
  CHECK(text.find("揭短亮丑") == std::string::npos);
  CHECK(text.find("比上月") == std::string::npos);
  const std::string over =
      handlers::render_bulletin(district.store(), templates, *Period::parse("2026-11"),
                                std::nullopt, BulletinOptions{}, at("2026-12-01T09:00:00+08:00"));
  CHECK(over.find("截至") == std::string::npos);
  CHECK(over.find("揭短亮丑") != std::string::npos);
  const std::string quarter =
      handlers::render_bulletin(district.store(), templates, *Period::parse("2026-Q4"),
                                Ledger::Cadre, BulletinOptions{}, at("2026-11-20T18:00:00+08:00"));
  CHECK(quarter.find("截至11月20日") != std::string::npos);
}

TEST_CASE("The summary rows list each unit's coverage in rank order", "[bulletin]") {
  District district;
  const auto f = handlers::monthly_figures(district.store(), Month{2026, 11}, std::nullopt,
                                           BulletinOptions{}, at("2026-12-01T09:00:00+08:00"));
  const auto rows = handlers::coverage_summary_rows(f);
  REQUIRE(!rows.empty());
  CHECK(rows[0] ==
        std::vector<std::string>{"台账", "单位", "排名", "应走访", "已走访", "未走访", "覆盖率"});
  size_t i = 1;
  for (const auto& l : f.ledgers) {
    for (const auto& u : l.units) {
      REQUIRE(i < rows.size());
      CHECK(rows[i] ==
            std::vector<std::string>{std::string(storage::ledger_label(l.ledger)), u.unit,
                                     std::to_string(u.rank), std::to_string(u.coverage.due),
                                     std::to_string(u.coverage.visited),
                                     std::to_string(u.coverage.due - u.coverage.visited),
                                     handlers::percent_text(handlers::permille(u.coverage))});
      ++i;
    }
    REQUIRE(i < rows.size());
    CHECK(rows[i][1] == "合计");
    CHECK(rows[i][3] == std::to_string(l.totals.coverage.due));
    ++i;
  }
  CHECK(i == rows.size());
}

TEST_CASE("Lists of people can be capped for a large district", "[bulletin]") {
  District district;
  const auto templates = real_templates();
  BulletinOptions capped;
  capped.max_list_lines = 1;
  const auto now = at("2026-12-01T09:00:00+08:00");
  const auto f =
      handlers::monthly_figures(district.store(), Month{2026, 11}, Ledger::Cadre, capped, now);
  REQUIRE(f.ledgers[0].helpers.size() == 2);
  const std::string text = handlers::render_bulletin(
      district.store(), templates, *Period::parse("2026-11"), Ledger::Cadre, capped, now);
  CHECK(text.find(f.ledgers[0].helpers[0].helper_name + " **") != std::string::npos);
  CHECK(text.find(f.ledgers[0].helpers[1].helper_name + " **") == std::string::npos);
  CHECK(text.find("另有 1 人") != std::string::npos);
  const std::string all =
      handlers::render_bulletin(district.store(), templates, *Period::parse("2026-11"),
                                Ledger::Cadre, BulletinOptions{}, now);
  CHECK(all.find(f.ledgers[0].helpers[1].helper_name + " **") != std::string::npos);
  CHECK(all.find("另有") == std::string::npos);
}

TEST_CASE("A change to a posted month is listed in the next bulletin, once", "[bulletin]") {
  District district;
  Store& store = district.store();
  const auto templates = real_templates();
  const BulletinOptions options;
  const Month oct{2026, 10};
  const auto posted_at = at("2026-11-01T09:00:00+08:00");
  handlers::record_posted(store, *Period::parse("2026-10"), std::nullopt, options, posted_at);
  const auto before = handlers::monthly_figures(store, oct, std::nullopt, options, posted_at);

  // After posting: a late report for October of a cadre pairing not visited then (coverage
  // rises), and an undo of an October check-in that does not change coverage (a phone call, or a
  // second visit day of its pairing).
  std::map<int64_t, int> visit_days;
  for (const auto& c : store.checkins_between(oct.first(), oct.last()))
    if (!c.undone_at && c.mode != Mode::Phone) ++visit_days[c.pairing_id];
  std::optional<Pairing> late;
  for (const auto& p : store.pairings_between(oct.first(), oct.last()))
    if (p.ledger == Ledger::Cadre && p.active_on(oct.first()) && p.active_on(oct.last()) &&
        !visit_days.count(p.id) && !late)
      late = p;
  REQUIRE(late);
  const int64_t t1 = posted_at.unix_seconds + 3600;
  store.transaction([&](Store::Tx& tx) {
    InboundMessage m;
    m.msgid = "late-1";
    m.userid = late->helper_id;
    m.text = "补报";
    m.received_at = t1;
    tx.save_inbound(m);
    CheckinRecord c;
    c.msgid = "late-1";
    c.pairing_id = late->id;
    c.helper_id = late->helper_id;
    c.visit_date = Date{2026, 10, 25};
    c.received_at = t1;
    tx.add_checkin(c);
  });
  int64_t undone_id = 0;
  for (const auto& c : store.checkins_between(oct.first(), oct.last())) {
    const auto p = store.pairing(c.pairing_id);
    if (!undone_id && !c.undone_at && p->ledger == Ledger::Cadre && c.msgid != "late-1" &&
        (c.mode == Mode::Phone || visit_days[c.pairing_id] > 1))
      undone_id = c.id;
  }
  REQUIRE(undone_id);
  store.transaction([&](Store::Tx& tx) { REQUIRE(tx.mark_undone(undone_id, "u", t1 + 60)); });

  const auto now = at("2026-12-01T09:00:00+08:00");
  const auto after = handlers::monthly_figures(store, oct, std::nullopt, options, now);
  auto nov = handlers::monthly_figures(store, Month{2026, 11}, std::nullopt, options, now);
  handlers::fill_late_corrections(store, nov, options, now);
  for (const auto& lf : nov.ledgers) {
    CAPTURE(storage::ledger_code(lf.ledger));
    if (lf.ledger != Ledger::Cadre) {
      CHECK(lf.corrections.empty());
      continue;
    }
    REQUIRE(lf.corrections.size() == 1);
    const auto& c = lf.corrections[0];
    CHECK(c.period_label == "10月");
    CHECK(c.changes.late == 1);
    CHECK(c.changes.undone == 1);
    CHECK(c.changes.corrected == 0);
    CHECK(c.posted_permille == handlers::permille(before.ledgers[0].totals.coverage));
    CHECK(c.today_permille == handlers::permille(after.ledgers[0].totals.coverage));
  }
  const std::string text = handlers::render_bulletin(store, templates, *Period::parse("2026-11"),
                                                     std::nullopt, options, now);
  const std::string line =
      "> 10月通报后补报 1 条、撤销 1 条，10月覆盖率" +
      (before.ledgers[0].totals.coverage == after.ledgers[0].totals.coverage
           ? "不变（" +
                 handlers::percent_text(handlers::permille(after.ledgers[0].totals.coverage)) + "）"
           : "由 " + handlers::percent_text(handlers::permille(before.ledgers[0].totals.coverage)) +
                 " 修正为 " +
                 handlers::percent_text(handlers::permille(after.ledgers[0].totals.coverage)));
  CHECK_THAT(text, Catch::Contains(line));

  // `bangfu bulletin` for October now: today's figures beside the posted ones.
  const auto cmp =
      handlers::compare_with_posted(store, *Period::parse("2026-10"), std::nullopt, options, now);
  REQUIRE(cmp);
  CHECK(cmp->posted_at == posted_at.unix_seconds);
  bool cadre_line = false;
  for (const auto& d : cmp->differences)
    cadre_line =
        cadre_line || (d.ledger == Ledger::Cadre && d.unit.empty() && d.figure == "coverage");
  CHECK(cadre_line);
  CHECK(before.ledgers[0].totals.coverage.visited + 1 == after.ledgers[0].totals.coverage.visited);
  const std::string printed = handlers::render_comparison(templates, *cmp, now);
  CHECK_THAT(printed, Catch::Contains("本期已于 2026-11-01 09:00 通报"));
  CHECK_THAT(
      printed,
      Catch::Contains("\n- 区直台账 覆盖率：" +
                      handlers::percent_text(handlers::permille(after.ledgers[0].totals.coverage)) +
                      "（"));
  CHECK_FALSE(
      handlers::compare_with_posted(store, *Period::parse("2026-09"), std::nullopt, options, now));

  // Once November is posted, December's bulletin does not list October's changes again.
  handlers::record_posted(store, *Period::parse("2026-11"), std::nullopt, options, now);
  auto dec = handlers::monthly_figures(store, Month{2026, 12}, std::nullopt, options,
                                       at("2027-01-02T09:00:00+08:00"));
  handlers::fill_late_corrections(store, dec, options, at("2027-01-02T09:00:00+08:00"));
  for (const auto& lf : dec.ledgers) CHECK(lf.corrections.empty());
  // A posting with nothing changed since compares as the same.
  const auto same =
      handlers::compare_with_posted(store, *Period::parse("2026-11"), std::nullopt, options, now);
  REQUIRE(same);
  CHECK(same->differences.empty());
}

TEST_CASE("A bulletin's title, scope and unnamed policy are the template's words", "[bulletin]") {
  MonthlyFigures f;
  f.month = Month{2026, 11};
  f.today = Date{2026, 12, 1};
  f.only = Ledger::Cadre;
  handlers::LedgerMonthFigures l;
  l.ledger = Ledger::Cadre;
  l.totals.problems.fresh = 3;
  l.totals.problems.open = 3;
  l.totals.problems.gaps = {{"低保", 2}, {"", 1}};
  f.ledgers.push_back(l);
  const std::string shipped = handlers::render_monthly(real_templates(), f, BulletinOptions{});
  CAPTURE(shipped);
  CHECK(shipped.starts_with("## 2026年11月结对帮扶通报·区直台账\n"));
  CHECK(shipped.find("\n应享未享待落实：低保 2 条、未注明政策 1 条\n") != std::string::npos);
  // A deployment's own words.
  const auto edited = handlers::Templates::from_strings(
      {{"monthly.md",
        "{{year}}-{{month}} {{#ledger}}{{ledger}}{{/ledger}}{{^ledger}}全区{{/ledger}}"
        "{{#ledgers}}{{#gaps}} {{#unnamed_policy}}其他{{/unnamed_policy}}{{policy}}"
        "={{count}}{{/gaps}}{{/ledgers}}"}});
  // (tidy ends a bulletin with one newline.)
  CHECK(handlers::render_monthly(edited, f, BulletinOptions{}) == "2026-11 区直 低保=2 其他=1\n");
  f.only.reset();
  CHECK(handlers::render_monthly(edited, f, BulletinOptions{}).starts_with("2026-11 全区"));
}
