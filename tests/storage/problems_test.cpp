#include <catch2/catch.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include <string>
#include <vector>

#include "storage/problems.h"
#include "storage/store.h"
#include "tests/support/storage_seed.h"
#include "tests/support/temp_dir.h"

using storage::CheckinRecord;
using storage::Date;
using storage::Ledger;
using storage::Pairing;
using storage::Problem;
using storage::Problems;
using storage::ProblemStatus;
using storage::Store;

using bangfu_test::TempDir;

namespace {

using bangfu_test::pairing;

std::vector<Pairing> seed(Store& store, std::vector<Pairing> rows) {
  store.import_roster(rows, Date{2026, 1, 1}, "admin", 1);
  auto stored = store.pairings_between(Date{1, 1, 1}, Date{9999, 12, 31});
  for (auto& p : rows)
    for (const auto& s : stored)
      if (s.helper_id == p.helper_id && s.household_id == p.household_id) p = s;
  return rows;
}

// A check-in of `p` reporting `problems` (kept in checkins.problems, as before migration 6).
int64_t checkin(Store& store, const Pairing& p, const std::string& msgid, Date visit,
                std::vector<std::string> problems, std::vector<std::string> policies = {},
                int64_t at = 1000) {
  store.save_inbound(bangfu_test::inbound(msgid, p.helper_id, at));
  CheckinRecord c;
  c.msgid = msgid;
  c.pairing_id = p.id;
  c.helper_id = p.helper_id;
  c.visit_date = visit;
  c.problems = std::move(problems);
  c.policies = std::move(policies);
  c.received_at = at;
  return store.transaction([&](Store::Tx& tx) { return tx.add_checkin(c); });
}

}  // namespace

TEST_CASE("problems are classified into the categories", "[storage]") {
  using Row = std::tuple<std::string, std::vector<std::string>, std::string, std::string>;
  auto [phrase, policies, category, policy] =
      GENERATE(table<std::string, std::vector<std::string>, std::string, std::string>({
          Row{"应享未享低保", {}, "应享未享", "低保"},
          Row{"医疗救助没落实", {}, "应享未享", "医疗救助"},
          Row{"孩子助学金未发放", {}, "应享未享", "助学"},
          Row{"危房改造未纳入", {}, "应享未享", "住房"},
          Row{"应享未享", {"medical_aid"}, "应享未享", "医疗救助"},
          Row{"应享未享", {"medical_aid", "housing"}, "应享未享", ""},
          Row{"房屋漏雨需要修缮", {}, "住房安全", ""},
          Row{"老人看病困难", {}, "医疗", ""},
          Row{"孩子上学路远有困难", {}, "就学", ""},
          Row{"家里缺收入来源", {}, "收入就业", ""},
          Row{"需要轮椅", {}, "其他", ""},
      }));
  CAPTURE(phrase);
  const auto c = storage::classify_problem(phrase, policies);
  CHECK(c.category == category);
  CHECK(c.policy == policy);
}

TEST_CASE("a problem item is numbered and changed with history and audit", "[storage]") {
  Store store(":memory:");
  auto ps = seed(store, {pairing("u1", "H1"), pairing("u2", "H2", Ledger::Health)});
  const int64_t c1 = checkin(store, ps[0], "m1", Date{2026, 11, 3}, {"应享未享低保"});
  auto items = store.transaction([&](Store::Tx& tx) {
    return Problems::record(tx, c1, ps[0], "u1", Date{2026, 11, 3}, {"应享未享低保", "房屋漏雨"},
                            {}, 1000);
  });
  REQUIRE(items.size() == 2);
  CHECK(items[0].id == 1);
  CHECK(items[1].id == 2);
  CHECK(items[0].category.category == "应享未享");
  CHECK(items[0].category.policy == "低保");
  CHECK(items[0].household_head == "户主H1");
  CHECK(items[0].status == ProblemStatus::Open);

  const bool changed = store.transaction([&](Store::Tx& tx) {
    return Problems::set_status(tx, 1, ProblemStatus::InProgress, "u1", "已报民政局",
                                Date{2026, 11, 5}, 2000);
  });
  CHECK(changed);
  CHECK_FALSE(store.transaction([&](Store::Tx& tx) {
    return Problems::set_status(tx, 1, ProblemStatus::InProgress, "u1", "again", Date{2026, 11, 5},
                                2000);
  }));
  store.transaction([&](Store::Tx& tx) {
    Problems::set_status(tx, 1, ProblemStatus::Resolved, "office:li", "低保已批",
                         Date{2026, 11, 20}, 3000);
  });
  auto one = Problems::get(store, 1);
  REQUIRE(one);
  CHECK(one->status == ProblemStatus::Resolved);
  CHECK(one->closed_on == Date{2026, 11, 20});
  REQUIRE(one->history.size() == 3);
  CHECK(one->history[1].to_status == "in_progress");
  CHECK(one->history[2].actor == "office:li");
  CHECK(one->history[2].note == "低保已批");
  int status_audits = 0;
  for (const auto& a : store.audit_entries())
    if (a.action == "problem_status" && a.subject == "problem:1") ++status_audits;
  CHECK(status_audits == 2);

  CHECK(Problems::list(store, ProblemStatus::Open, std::nullopt).size() == 1);
  CHECK(Problems::list(store, std::nullopt, Ledger::Health).empty());
  CHECK_FALSE(Problems::get(store, 99));
  CHECK_THROWS(store.transaction([&](Store::Tx& tx) {
    return Problems::set_status(tx, 99, ProblemStatus::Resolved, "u1", "", Date{2026, 11, 5}, 1);
  }));

  // The next number follows the highest ever given (AUTOINCREMENT; see the migration test for
  // a file whose last item was deleted).
  store.transaction([&](Store::Tx& tx) {
    auto more = Problems::record(tx, c1, ps[0], "u1", Date{2026, 11, 3}, {"需要轮椅"}, {}, 4000);
    CHECK(more.at(0).id == 3);
  });
}

TEST_CASE("undoing a check-in closes its untouched open problems with an audit row", "[storage]") {
  Store store(":memory:");
  auto ps = seed(store, {pairing("u1", "H1")});
  const int64_t c1 = checkin(store, ps[0], "m1", Date{2026, 11, 3}, {"应享未享低保", "房屋漏雨"});
  store.transaction([&](Store::Tx& tx) {
    Problems::record(tx, c1, ps[0], "u1", Date{2026, 11, 3}, {"应享未享低保", "房屋漏雨"}, {},
                     1000);
    // The second one is already being followed: it stays as it is.
    Problems::set_status(tx, 2, ProblemStatus::InProgress, "u1", "已联系", Date{2026, 11, 3}, 1100);
  });
  // 2026-11-04 23:30 in China is 15:30 UTC: the close is dated the 4th (UTC+8), not the 5th.
  const int64_t undo_at = 1793806200;  // 2026-11-04T15:30:00Z
  store.transaction([&](Store::Tx& tx) { CHECK(tx.mark_undone(c1, "u1", undo_at)); });
  auto first = Problems::get(store, 1);
  auto second = Problems::get(store, 2);
  CHECK(first->status == ProblemStatus::NotAProblem);
  CHECK(first->closed_on == Date{2026, 11, 4});
  CHECK(first->history.back().note == "打卡已撤销");
  CHECK(first->history.back().actor == "u1");
  CHECK(second->status == ProblemStatus::InProgress);
  bool audited = false;
  for (const auto& a : store.audit_entries())
    audited = audited || (a.action == "problem_status" && a.subject == "problem:1" &&
                          a.detail.find("打卡已撤销") != std::string::npos);
  CHECK(audited);
}

TEST_CASE("migration 6 turns the problems of a v5 database into open items", "[storage]") {
  TempDir dir;
  const std::string path = dir.file("v5.db");
  {
    Store store(path);
    auto ps = seed(store, {pairing("u1", "H1"), pairing("u2", "H2", Ledger::Education)});
    checkin(store, ps[0], "m1", Date{2026, 10, 9}, {"应享未享", "房屋漏雨"}, {"minimum_living"});
    checkin(store, ps[1], "m2", Date{2026, 10, 12}, {"孩子上学路远"});
    const int64_t undone = checkin(store, ps[1], "m3", Date{2026, 10, 13}, {"需要轮椅"});
    checkin(store, ps[1], "m4", Date{2026, 10, 14}, {});
    store.transaction([&](Store::Tx& tx) { tx.mark_undone(undone, "u2", 2000); });
  }
  {
    // Take the file back to what version 5 left: no problem tables, user_version 5 …
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    raw.exec(
        "DROP TRIGGER checkin_stops_closes_problems; DROP TABLE problem_history; "
        "DROP TABLE problems; DROP TABLE bulletin_records; DROP INDEX checkins_corrected_by; "
        "DELETE FROM sqlite_sequence; "
        // (version 10 merged version 6's checkins_changes into checkins_visit_cover: back to
        // the narrower index version 4 made)
        "DROP INDEX checkins_visit_cover; "
        "CREATE INDEX checkins_visit_cover ON checkins (visit_date, pairing_id, mode, undone_at); "
        // … and before migration 8 (inbound.outcome), which runs after 6 again.
        "DROP INDEX inbound_not_recorded; ALTER TABLE inbound DROP COLUMN outcome; "
        "PRAGMA user_version = 5;");
  }
  Store store(path);
  CHECK(store.schema_version() == 14);
  const auto items = Problems::list(store, std::nullopt, std::nullopt);
  REQUIRE(items.size() == 3);  // the undone check-in's problem is not carried over
  CHECK(items[0].text == "应享未享");
  CHECK(items[0].category.category == "应享未享");
  CHECK(items[0].category.policy == "低保");  // from the check-in's one policy
  CHECK(items[1].category.category == "住房安全");
  CHECK(items[2].category.category == "就学");
  CHECK(items[2].ledger == Ledger::Education);
  CHECK(items[2].reported_on == Date{2026, 10, 12});
  for (const auto& i : items) CHECK(i.status == ProblemStatus::Open);
  CHECK(Problems::get(store, 1)->history.at(0).actor == "migration");
}

TEST_CASE("posted bulletins are kept and later changes to their period counted", "[storage]") {
  Store store(":memory:");
  auto ps = seed(store, {pairing("u1", "H1"), pairing("u2", "H2", Ledger::Health)});
  const int64_t before1 = checkin(store, ps[0], "m1", Date{2026, 10, 9}, {}, {}, 1000);
  checkin(store, ps[0], "m2", Date{2026, 10, 10}, {}, {}, 1000);
  storage::PublishedBulletins::record(store, {0, "monthly", "2026-10", "cadre", "{\"a\":1}", 5000});
  storage::PublishedBulletins::record(store, {0, "monthly", "2026-10", "cadre", "{\"a\":2}", 6000});
  CHECK(storage::PublishedBulletins::latest(store, "monthly", "2026-10", "cadre")->figures ==
        "{\"a\":2}");
  CHECK_FALSE(storage::PublishedBulletins::latest(store, "monthly", "2026-10", "health"));
  const auto before = storage::PublishedBulletins::before(store, "monthly", "cadre", "2026-11", 3);
  REQUIRE(before.size() == 1);
  CHECK(before[0].posted_at == 6000);

  // After posting: two late reports (one of another ledger), one undo; one check-in of November.
  checkin(store, ps[0], "m3", Date{2026, 10, 20}, {}, {}, 7000);
  checkin(store, ps[0], "m4", Date{2026, 10, 21}, {}, {}, 7001);
  checkin(store, ps[1], "m5", Date{2026, 10, 21}, {}, {}, 7002);
  checkin(store, ps[0], "m6", Date{2026, 11, 2}, {}, {}, 7003);
  store.transaction([&](Store::Tx& tx) { tx.mark_undone(before1, "u1", 7004); });
  const auto cadre = storage::PublishedBulletins::changes_since(
      store, Date{2026, 10, 1}, Date{2026, 10, 31}, Ledger::Cadre, 6000);
  CHECK(cadre.late == 2);
  CHECK(cadre.undone == 1);
  CHECK(cadre.corrected == 0);
  const auto all = storage::PublishedBulletins::changes_since(
      store, Date{2026, 10, 1}, Date{2026, 10, 31}, std::nullopt, 6000);
  CHECK(all.late == 3);
  CHECK_FALSE(storage::PublishedBulletins::changes_since(store, Date{2026, 10, 1},
                                                         Date{2026, 10, 31}, Ledger::Cadre, 8000)
                  .any());
}

TEST_CASE("a corrected or voided check-in closes its open problems with its own note",
          "[storage]") {
  TempDir dir;
  const std::string path = dir.file("close.db");
  Store store(path);
  auto ps = seed(store, {pairing("u1", "H1")});
  const int64_t c1 = checkin(store, ps[0], "m1", Date{2026, 11, 3}, {"房屋漏雨"});
  const int64_t c2 = checkin(store, ps[0], "m2", Date{2026, 11, 4}, {"需要轮椅"});
  store.transaction([&](Store::Tx& tx) {
    Problems::record(tx, c1, ps[0], "u1", Date{2026, 11, 3}, {"房屋漏雨"}, {}, 1000);
    Problems::record(tx, c2, ps[0], "u1", Date{2026, 11, 4}, {"需要轮椅"}, {}, 1000);
  });
  {
    // As the office's `checkin void` and a helper's 更正 write it (migration 5's columns).
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    raw.exec(
        "UPDATE checkins SET status = 'void', undone_at = 1793806200, "
        "undone_by = 'office:li' WHERE id = " +
        std::to_string(c1));
    raw.exec(
        "UPDATE checkins SET status = 'corrected', undone_at = 1793806200, "
        "undone_by = 'u1', corrected_by = NULL WHERE id = " +
        std::to_string(c2));
  }
  const auto voided = Problems::get(store, 1);
  const auto corrected = Problems::get(store, 2);
  CHECK(voided->status == ProblemStatus::NotAProblem);
  CHECK(voided->history.back().note == "打卡已作废");
  CHECK(voided->history.back().actor == "office:li");
  CHECK(corrected->status == ProblemStatus::NotAProblem);
  CHECK(corrected->history.back().note == "打卡已更正");
}
