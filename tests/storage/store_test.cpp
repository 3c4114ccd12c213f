#include <catch2/catch.hpp>

#include <SQLiteCpp/SQLiteCpp.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "storage/bulletin_queries.h"
#include "storage/problems.h"
#include "storage/store.h"
#include "tests/support/storage_seed.h"
#include "tests/support/temp_dir.h"
#include "tests/support/threads.h"

using storage::AuditEntry;
using storage::CheckinRecord;
using storage::Date;
using storage::ImportSummary;
using storage::InboundMessage;
using storage::InboundOutcome;
using storage::Ledger;
using storage::Mode;
using storage::Month;
using storage::Pairing;
using storage::Problems;
using storage::ProblemStatus;
using storage::SaveInbound;
using storage::Store;

using bangfu_test::own_nice;
using bangfu_test::TempDir;
using bangfu_test::thread_names;
using bangfu_test::thread_nice;

namespace {

using bangfu_test::inbound;
using bangfu_test::with_action;

Pairing pairing(std::string helper, std::string household, std::string person = "") {
  Pairing p;
  p.helper_id = std::move(helper);
  p.helper_name = "干部" + p.helper_id;
  p.phone = "13800000000";
  p.ledger = Ledger::Cadre;
  p.unit = "区发改局";
  p.household_id = std::move(household);
  p.household_head = "户主" + p.household_id;
  p.person = std::move(person);
  p.village = "张庄村";
  p.street = "高新街道";
  return p;
}

// Saves the inbound message the check-in refers to, then adds the check-in; returns its id.
int64_t add(Store& store, const Pairing& p, const std::string& msgid, Date visit,
            Mode mode = Mode::Visit, int64_t received_at = 1000) {
  REQUIRE(store.save_inbound(inbound(msgid, p.helper_id, received_at)) == SaveInbound::New);
  CheckinRecord c;
  c.msgid = msgid;
  c.pairing_id = p.id;
  c.helper_id = p.helper_id;
  c.visit_date = visit;
  c.mode = mode;
  c.received_at = received_at;
  return store.transaction([&](Store::Tx& tx) { return tx.add_checkin(c); });
}

// Imports `rows` and returns them as stored (with ids), in the same order.
std::vector<Pairing> seed(Store& store, std::vector<Pairing> rows, Date on = {2026, 1, 1}) {
  store.import_roster(rows, on, "admin", 1);
  for (auto& p : rows) {
    for (const auto& s : store.pairings_between(Date{1, 1, 1}, Date{9999, 12, 31}))
      if (s.helper_id == p.helper_id && s.household_id == p.household_id && s.person == p.person)
        p.id = s.id;
    REQUIRE(p.id != 0);
  }
  return rows;
}

std::vector<std::string> heads(const std::vector<Pairing>& ps) {
  std::vector<std::string> out;
  for (const auto& p : ps) out.push_back(p.household_id + (p.person.empty() ? "" : "/" + p.person));
  return out;
}

}  // namespace

TEST_CASE("Store migrates a fresh file and reopens it", "[storage]") {
  TempDir dir;
  const std::string path = dir.file("bangfu.db");
  {
    Store store(path);
    CHECK(store.schema_version() == 14);
    CHECK(store.healthy());
    store.import_roster({pairing("u1", "H1")}, Date{2026, 1, 1});
  }
  {
    SQLite::Database raw(path, SQLite::OPEN_READONLY);
    CHECK(raw.execAndGet("PRAGMA user_version").getInt() == 14);
    CHECK(raw.execAndGet("PRAGMA journal_mode").getString() == "wal");
    for (const char* table : {"pairings", "inbound", "checkins", "audit"}) {
      CAPTURE(table);
      CHECK(raw.tableExists(table));
    }
  }
  Store again(path);  // the migration is not applied twice (it would fail on CREATE TABLE)
  CHECK(again.schema_version() == 14);
  CHECK(heads(again.pairings_of("u1", Date{2026, 6, 1})) == std::vector<std::string>{"H1"});
}

TEST_CASE("A database that cannot be opened is named, with what is wrong", "[storage]") {
  TempDir dir;
  const std::string missing_folder = dir.file("nowhere/bangfu.db");
  CHECK_THROWS_WITH(Store(missing_folder),
                    Catch::Contains(missing_folder) && Catch::Contains("does not exist"));
  CHECK_THROWS_WITH(Store(dir.path().string()), Catch::Contains("it is a folder, not a file"));
  const std::string text = dir.file("notes.txt");
  std::ofstream(text) << "not a database, but longer than a header would be\n";
  CHECK_THROWS_WITH(Store(text),
                    Catch::Contains(text) && Catch::Contains("not an SQLite database"));
  std::ifstream still(text);
  std::string line;
  std::getline(still, line);
  CHECK(line == "not a database, but longer than a header would be");  // left as it was
}

TEST_CASE("The Store's threads carry names an operator can tell apart", "[storage]") {
  // What top -H and ps -L show, and bench/ab.sh reports per thread.
  TempDir dir;
  CHECK(thread_names().count("bangfu-writer") == 0);
  {
    Store store(dir.file("bangfu.db"));
    const auto now = thread_names();
    CHECK(now.count("bangfu-writer") == 1);
    CHECK(now.count("bangfu-ckpt") == 1);
  }
  CHECK(thread_names().count("bangfu-writer") == 0);
}

TEST_CASE("Store on :memory: is migrated", "[storage]") {
  Store store(":memory:");
  CHECK(store.schema_version() == 14);
  CHECK(store.healthy());
  CHECK(store.pairings_between(Date{2026, 1, 1}, Date{2026, 12, 31}).empty());
}

TEST_CASE("Migration 12: a helper's latest check-in is one seek again", "[storage]") {
  TempDir dir;
  const std::string path = dir.file("v11.db");
  int64_t last = 0;
  {
    Store store(path);
    auto ps = seed(store, {pairing("u1", "H1"), pairing("u2", "H2")});
    add(store, ps[0], "m1", Date{2026, 11, 1}, Mode::Visit, 100);
    last = add(store, ps[0], "m2", Date{2026, 11, 2}, Mode::Visit, 200);
    add(store, ps[1], "m3", Date{2026, 11, 2}, Mode::Visit, 300);
  }
  {
    // Back to what version 11 left: the index led by received_at.
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    raw.exec(
        "DROP INDEX checkins_helper_received; "
        "CREATE INDEX checkins_received ON checkins (received_at, helper_id); "
        "PRAGMA user_version = 11;");
  }
  Store store(path);
  CHECK(store.schema_version() == 14);
  CHECK(store.transaction([](Store::Tx& tx) { return tx.last_active_checkin("u1", 0)->id; }) ==
        last);
  SQLite::Database raw(path, SQLite::OPEN_READONLY);
  CHECK_FALSE(raw.execAndGet("SELECT count(*) FROM sqlite_master WHERE name = 'checkins_received'")
                  .getInt());
  // 撤销 and 更正 seek the helper's rows instead of reading everyone's since the helper's last.
  SQLite::Statement plan(raw,
                         "EXPLAIN QUERY PLAN SELECT id FROM checkins WHERE helper_id = 'u1' "
                         "AND received_at >= 0 AND undone_at IS NULL AND msgid IS NOT NULL "
                         "ORDER BY received_at DESC, id DESC LIMIT 1");
  std::string steps;
  while (plan.executeStep()) steps += plan.getColumn(3).getString() + "\n";
  CHECK(steps ==
        "SEARCH checkins USING INDEX checkins_helper_received (helper_id=? AND "
        "received_at>?)\n");
}

TEST_CASE("Migration 14: a day's new check-ins go together at its end of the date index",
          "[storage]") {
  TempDir dir;
  const std::string path = dir.file("v13.db");
  {
    Store store(path);
    auto ps = seed(store, {pairing("u1", "H1"), pairing("u2", "H2")});
    add(store, ps[1], "m1", Date{2026, 11, 2}, Mode::Visit, 100);
    add(store, ps[0], "m2", Date{2026, 11, 2}, Mode::Phone, 200);
  }
  {
    // Back to what version 13 left: pairing_id second, and the problems' cover.
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    raw.exec(
        "DROP INDEX checkins_visit_cover; "
        "CREATE INDEX checkins_visit_cover "
        "  ON checkins (visit_date, pairing_id, mode, undone_at, received_at, status); "
        "DROP INDEX checkins_reports; "
        "CREATE INDEX checkins_reports "
        "  ON checkins (visit_date, pairing_id, occasions, policies, undone_at) "
        "  WHERE undone_at IS NULL AND (occasions <> '[]' OR policies <> '[]'); "
        "CREATE INDEX checkins_problems_cover ON checkins (visit_date, pairing_id, problems, "
        "  undone_at) WHERE problems <> '[]' AND undone_at IS NULL; "
        "PRAGMA user_version = 13;");
  }
  Store store(path);
  CHECK(store.schema_version() == 14);
  SQLite::Database raw(path, SQLite::OPEN_READONLY);
  const auto columns = [&](const char* index) {
    std::vector<std::string> out;
    SQLite::Statement info(raw, "SELECT name FROM pragma_index_info(?1)");
    info.bind(1, index);
    while (info.executeStep()) out.push_back(info.getColumn(0).getString());
    return out;
  };
  CHECK(columns("checkins_visit_cover") == std::vector<std::string>{"visit_date", "received_at",
                                                                    "pairing_id", "mode",
                                                                    "undone_at", "status"});
  CHECK(columns("checkins_reports") == std::vector<std::string>{"visit_date", "received_at",
                                                                "pairing_id", "occasions",
                                                                "policies", "undone_at"});
  CHECK(columns("checkins_problems_cover").empty());
  // Its entries of a day in the order they came, whatever their pairings.
  SQLite::Statement day(raw,
                        "SELECT msgid FROM checkins INDEXED BY checkins_visit_cover "
                        "WHERE visit_date = '2026-11-02'");
  std::vector<std::string> order;
  while (day.executeStep()) order.push_back(day.getColumn(0).getString());
  CHECK(order == std::vector<std::string>{"m1", "m2"});
  CHECK(store.checkins_between(Date{2026, 11, 1}, Date{2026, 11, 30}).size() == 2);
}

namespace {
// Every row of inbound (with its rowid) and of checkins, as text: what a rebuild must keep.
std::vector<std::string> rows_of(const std::string& path) {
  SQLite::Database raw(path, SQLite::OPEN_READONLY);
  std::vector<std::string> out;
  for (const char* q :
       {"SELECT rowid, * FROM inbound ORDER BY rowid", "SELECT * FROM checkins ORDER BY id",
        "SELECT * FROM problems ORDER BY id"}) {
    SQLite::Statement s(raw, q);
    while (s.executeStep()) {
      std::string row;
      for (int i = 0; i < s.getColumnCount(); ++i)
        row += (s.getColumn(i).isNull() ? std::string("NULL") : s.getColumn(i).getString()) + "|";
      out.push_back(row);
    }
  }
  return out;
}
}  // namespace

TEST_CASE("Migration 13 rebuilds inbound and checkins with the same rows, checks and keys",
          "[storage]") {
  TempDir dir;
  const std::string path = dir.file("v12.db");
  int64_t kept = 0;
  {
    Store store(path);
    auto ps = seed(store, {pairing("u1", "H1"), pairing("u2", "H2")});
    const int64_t first = add(store, ps[0], "m1", Date{2026, 11, 1}, Mode::Visit, 100);
    kept = add(store, ps[1], "m2", Date{2026, 11, 2}, Mode::Phone, 200);
    store.transaction([&](Store::Tx& tx) {
      tx.set_reply("m1", "已记下", InboundOutcome::Recorded);
      Problems::record(tx, kept, ps[1], "u2", Date{2026, 11, 2}, {"房顶漏雨"}, {}, 200);
      tx.save_inbound(inbound("m3", "u1", 300));  // the 更正 message
      CheckinRecord r = *tx.checkin(first);
      r.msgid = "m3";
      r.visit_date = Date{2026, 11, 3};
      REQUIRE(tx.correct_checkin(first, r, "u1", 300));  // corrected_by points inside checkins
    });
  }
  const auto before = rows_of(path);
  REQUIRE(before.size() == 7);  // 3 messages, 3 check-ins, 1 problem
  {
    // Version 12 again, so that step 13 runs over these rows (the rebuild is the same whatever
    // the CHECKs' text was).
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    raw.exec("PRAGMA user_version = 12");
  }
  Store store(path);
  CHECK(store.schema_version() == 14);
  CHECK(rows_of(path) == before);
  {
    SQLite::Database raw(path, SQLite::OPEN_READONLY);
    // No CHECK of theirs is an IN list any more (each built a table per write).
    CHECK(raw.execAndGet("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                         "('inbound', 'checkins') AND sql LIKE '% IN (%'")
              .getInt() == 0);
    CHECK(raw.execAndGet("SELECT count(*) FROM sqlite_master WHERE tbl_name = 'checkins' AND "
                         "type IN ('index', 'trigger')")
              .getInt() == 7);  // the UNIQUE key, five indexes, the trigger
  }
  // The checks and the keys hold as before.
  CheckinRecord bad;
  bad.msgid = "m2";
  bad.pairing_id = 424242;
  bad.helper_id = "u2";
  bad.visit_date = Date{2026, 11, 4};
  CHECK_THROWS_AS(store.transaction([&](Store::Tx& tx) { return tx.add_checkin(bad); }),
                  SQLite::Exception);
  {
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    CHECK_THROWS_AS(raw.exec("UPDATE checkins SET mode = 'walk' WHERE id = 1"), SQLite::Exception);
    CHECK_THROWS_AS(raw.exec("UPDATE inbound SET status = 'lost'"), SQLite::Exception);
    CHECK_THROWS_AS(raw.exec("UPDATE inbound SET outcome = 'guessed'"), SQLite::Exception);
  }
  // The trigger came back: the check-in with a problem stops counting, its item closes.
  store.transaction([&](Store::Tx& tx) { REQUIRE(tx.mark_undone(kept, "u2", 400)); });
  CHECK(store.transaction([](Store::Tx& tx) { return Problems::find(tx, 1)->status; }) ==
        ProblemStatus::NotAProblem);
}

TEST_CASE("A migration that would leave a broken reference changes nothing", "[storage]") {
  TempDir dir;
  const std::string path = dir.file("broken.db");
  {
    Store store(path);
    auto ps = seed(store, {pairing("u1", "H1")});
    add(store, ps[0], "m1", Date{2026, 11, 1});
  }
  {
    // A check-in of a pairing that is not there (written with foreign keys off), at version 12.
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    raw.exec(
        "PRAGMA foreign_keys = OFF; UPDATE checkins SET pairing_id = 999; "
        "PRAGMA user_version = 12");
  }
  REQUIRE_THROWS_WITH(Store(path), Catch::Contains("checkins") && Catch::Contains("pairings"));
  SQLite::Database raw(path, SQLite::OPEN_READONLY);
  CHECK(raw.execAndGet("PRAGMA user_version").getInt() == 12);
  CHECK(raw.execAndGet("SELECT count(*) FROM sqlite_master WHERE name = 'checkins_v13'").getInt() ==
        0);
}

TEST_CASE("Store refuses a database from a newer schema", "[storage]") {
  TempDir dir;
  const std::string path = dir.file("newer.db");
  {
    SQLite::Database raw(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    raw.exec("PRAGMA user_version = 99");
  }
  CHECK_THROWS_AS(Store(path), SQLite::Exception);
}

TEST_CASE("Store enforces foreign keys", "[storage]") {
  Store store(":memory:");
  auto ps = seed(store, {pairing("u1", "H1")});
  CheckinRecord c;
  c.msgid = "never-saved";
  c.pairing_id = ps[0].id;
  c.helper_id = "u1";
  c.visit_date = Date{2026, 11, 3};
  CHECK_THROWS_AS(store.transaction([&](Store::Tx& tx) { return tx.add_checkin(c); }),
                  SQLite::Exception);
  REQUIRE(store.save_inbound(inbound("m1", "u1")) == SaveInbound::New);
  c.msgid = "m1";
  c.pairing_id = 424242;
  CHECK_THROWS_AS(store.transaction([&](Store::Tx& tx) { return tx.add_checkin(c); }),
                  SQLite::Exception);
  CHECK(store.checkins_between(Date{2026, 1, 1}, Date{2026, 12, 31}).empty());
}

TEST_CASE("Roster import counts inserted, updated, unchanged and ended pairings", "[storage]") {
  Store store(":memory:");
  const Date first{2026, 10, 1}, second{2026, 11, 15}, third{2026, 12, 1};

  auto a = pairing("u1", "H1"), b = pairing("u1", "H2"), c = pairing("u2", "H3", "刘洋");
  ImportSummary s1 = store.import_roster({a, b, c}, first);
  CHECK(s1.inserted == 3);
  CHECK(s1.updated == 0);
  CHECK(s1.unchanged == 0);
  CHECK(s1.ended == 0);

  // b changes unit, c is gone, d is new; a is the same.
  auto b2 = b;
  b2.unit = "区财政局";
  auto d = pairing("u2", "H4");
  ImportSummary s2 = store.import_roster({a, b2, d}, second);
  CHECK(s2.inserted == 1);
  CHECK(s2.updated == 1);
  CHECK(s2.unchanged == 1);
  CHECK(s2.ended == 1);

  // c is kept, ended on the import date (inclusive), and no longer in force the day after.
  auto all = store.pairings_between(Date{2000, 1, 1}, Date{2100, 1, 1});
  REQUIRE(all.size() == 4);
  auto c_stored = all[2];
  REQUIRE(c_stored.person == "刘洋");
  CHECK(c_stored.end_date == second);
  CHECK(heads(store.pairings_of("u2", second)) == std::vector<std::string>{"H3/刘洋", "H4"});
  CHECK(heads(store.pairings_of("u2", second.plus_days(1))) == std::vector<std::string>{"H4"});
  CHECK(store.pairing(all[1].id)->unit == "区财政局");

  // The same file again the same day changes nothing.
  ImportSummary same = store.import_roster({a, b2, d}, second);
  CHECK(same.unchanged == 3);
  CHECK(same.ended == 0);
  CHECK(same.inserted + same.updated == 0);

  // c reappears: reopened, with the file's end date (none), under the same id.
  ImportSummary s3 = store.import_roster({a, b2, c, d}, third);
  CHECK(s3.updated == 1);
  CHECK(s3.unchanged == 3);
  CHECK(s3.ended == 0);
  auto c_again = store.pairing(c_stored.id);
  REQUIRE(c_again);
  CHECK_FALSE(c_again->end_date);
  CHECK(store.pairings_between(Date{2000, 1, 1}, Date{2100, 1, 1}).size() == 4);

  auto audit = store.audit_entries();
  REQUIRE(with_action(audit, "pairing_reopen").size() == 1);
  CHECK(with_action(audit, "pairing_reopen")[0].subject ==
        "pairing:" + std::to_string(c_stored.id));
}

TEST_CASE("Roster import stores a row's explicit end date and ends open ones early", "[storage]") {
  Store store(":memory:");
  auto a = pairing("u1", "H1"), b = pairing("u1", "H2");
  a.end_date = Date{2026, 12, 31};
  b.end_date = Date{2027, 6, 30};
  store.import_roster({a, b}, Date{2026, 10, 1});

  // a stays with a different end date from the file; b, absent, ends on the import date even
  // though it was planned to run longer.
  a.end_date = Date{2026, 11, 20};
  ImportSummary s = store.import_roster({a}, Date{2026, 11, 1});
  CHECK(s.updated == 1);
  CHECK(s.ended == 1);
  auto all = store.pairings_between(Date{2000, 1, 1}, Date{2100, 1, 1});
  REQUIRE(all.size() == 2);
  CHECK(all[0].end_date == Date{2026, 11, 20});
  CHECK(all[1].end_date == Date{2026, 11, 1});

  // A pairing that already ended before the import date is left alone.
  ImportSummary later = store.import_roster({}, Date{2026, 12, 15});
  CHECK(later.ended == 0);
  CHECK(store.pairing(all[0].id)->end_date == Date{2026, 11, 20});
}

TEST_CASE("Roster import writes who changed what to the audit trail", "[storage]") {
  Store store(":memory:");
  auto a = pairing("u1", "H1"), b = pairing("u1", "H2");
  store.import_roster({a, b}, Date{2026, 10, 1}, "office-li", 1700000000);
  const auto after_first = store.audit_entries();
  REQUIRE(after_first.size() == 1);  // inserts are summed up, not listed
  CHECK(after_first[0].action == "roster_import");
  CHECK(after_first[0].actor == "office-li");
  CHECK(after_first[0].at == 1700000000);

  a.household_head = "王秀英";
  a.start_date = Date{2026, 10, 8};
  store.import_roster({a}, Date{2026, 11, 1}, "office-wang", 1700000100);
  auto entries = store.audit_entries(after_first.back().id);
  REQUIRE(entries.size() == 3);
  for (const auto& e : entries) {
    CAPTURE(e.action, e.detail);
    CHECK(e.actor == "office-wang");
    CHECK(e.at == 1700000100);
  }
  using nlohmann::json;
  auto update = with_action(entries, "pairing_update");
  REQUIRE(update.size() == 1);
  json u = json::parse(update[0].detail);
  CHECK(u.at("household_id").get<std::string>() == "H1");
  CHECK(u.at("changes").at("household_head") == json::array({"户主H1", "王秀英"}));
  CHECK(u.at("changes").at("start_date") == json::array({nullptr, "2026-10-08"}));
  CHECK_FALSE(u.at("changes").contains("unit"));

  auto end = with_action(entries, "pairing_end");
  REQUIRE(end.size() == 1);
  json e = json::parse(end[0].detail);
  CHECK(e.at("household_id").get<std::string>() == "H2");
  CHECK(e.at("changes").at("end_date") == json::array({nullptr, "2026-11-01"}));

  auto summary = with_action(entries, "roster_import");
  REQUIRE(summary.size() == 1);
  json sm = json::parse(summary[0].detail);
  CHECK(sm.at("updated").get<int>() == 1);
  CHECK(sm.at("ended").get<int>() == 1);
  CHECK(sm.at("inserted").get<int>() == 0);
  CHECK(sm.at("import_date").get<std::string>() == "2026-11-01");
}

TEST_CASE("pairings_of respects start and end dates", "[storage]") {
  Store store(":memory:");
  auto open = pairing("u1", "H1");
  auto late = pairing("u1", "H2");
  late.start_date = Date{2026, 11, 25};
  auto ended = pairing("u1", "H3");
  ended.start_date = Date{2026, 3, 1};
  ended.end_date = Date{2026, 10, 31};
  auto other = pairing("u2", "H4");
  store.import_roster({open, late, ended, other}, Date{2026, 1, 1});

  auto [on, expected] = GENERATE(table<Date, std::vector<std::string>>({
      {Date{2026, 2, 28}, {"H1"}},
      {Date{2026, 3, 1}, {"H1", "H3"}},
      {Date{2026, 10, 31}, {"H1", "H3"}},
      {Date{2026, 11, 1}, {"H1"}},
      {Date{2026, 11, 24}, {"H1"}},
      {Date{2026, 11, 25}, {"H1", "H2"}},
  }));
  CAPTURE(on.iso());
  CHECK(heads(store.pairings_of("u1", on)) == expected);
  CHECK(store.pairings_of("nobody", on).empty());
}

TEST_CASE("pairings_between finds pairings in force on any day of a range", "[storage]") {
  Store store(":memory:");
  auto open = pairing("u1", "H1");
  auto late = pairing("u1", "H2");
  late.start_date = Date{2026, 11, 25};
  auto ended = pairing("u2", "H3");
  ended.start_date = Date{2026, 3, 1};
  ended.end_date = Date{2026, 10, 31};
  store.import_roster({open, late, ended}, Date{2026, 1, 1});

  auto [from, to, expected] = GENERATE(table<Date, Date, std::vector<std::string>>({
      {Date{2026, 1, 1}, Date{2026, 1, 31}, {"H1"}},
      {Date{2026, 10, 1}, Date{2026, 10, 31}, {"H1", "H3"}},
      {Date{2026, 10, 31}, Date{2026, 11, 24}, {"H1", "H3"}},
      {Date{2026, 11, 1}, Date{2026, 11, 30}, {"H1", "H2"}},
      {Date{2026, 10, 1}, Date{2026, 12, 31}, {"H1", "H2", "H3"}},
  }));
  CAPTURE(from.iso(), to.iso());
  CHECK(heads(store.pairings_between(from, to)) == expected);
}

TEST_CASE("A future pairing ended before it began is in force on no day", "[storage]") {
  Store store(":memory:");
  auto future = pairing("u1", "H1");
  future.start_date = Date{2026, 12, 10};
  store.import_roster({future}, Date{2026, 11, 1});
  store.import_roster({}, Date{2026, 12, 1});  // dropped before its start
  CHECK(store.pairings_between(Date{2026, 11, 1}, Date{2026, 12, 31}).empty());
  CHECK(store.pairings_of("u1", Date{2026, 12, 15}).empty());
  CHECK(store.helper_name("u1") == "干部u1");  // still known as a helper
}

TEST_CASE("helper_name knows roster helpers only", "[storage]") {
  Store store(":memory:");
  store.import_roster({pairing("u1", "H1")}, Date{2026, 1, 1});
  CHECK(store.helper_name("u1") == "干部u1");
  CHECK_FALSE(store.helper_name("u9"));
  CHECK_FALSE(store.pairing(999));
}

TEST_CASE("save_inbound keeps the first copy of a message", "[storage]") {
  TempDir dir;
  const std::string path = dir.file("inbound.db");
  Store store(path);
  auto m = inbound("msg-1", "u1");
  CHECK(store.save_inbound(m) == SaveInbound::New);
  m.text = "retry with other text";
  CHECK(store.save_inbound(m) == SaveInbound::Duplicate);
  CHECK(store.save_inbound(inbound("msg-2", "u1")) == SaveInbound::New);

  // Committed at once: another connection sees it while the store is still open.
  SQLite::Database raw(path, SQLite::OPEN_READONLY);
  SQLite::Statement q(raw, "SELECT text, status FROM inbound WHERE msgid = 'msg-1'");
  REQUIRE(q.executeStep());
  CHECK(q.getColumn(0).getString() == "@帮扶助手 走访 msg-1");
  CHECK(q.getColumn(1).getString() == "received");
  CHECK(raw.execAndGet("SELECT count(*) FROM inbound").getInt() == 2);
}

TEST_CASE("Replies and failures are recorded on the inbound message", "[storage]") {
  TempDir dir;
  const std::string path = dir.file("reply.db");
  Store store(path);
  store.save_inbound(inbound("ok", "u1"));
  store.save_inbound(inbound("bad", "u1"));
  CHECK_FALSE(store.reply_for("ok"));
  store.transaction([](Store::Tx& tx) {
    tx.set_reply("ok", "已记录：走访 王*英户", storage::InboundOutcome::Recorded);
  });
  store.transaction([](Store::Tx& tx) { tx.set_failed("bad", "parser crashed"); });
  CHECK(store.reply_for("ok") == "已记录：走访 王*英户");
  CHECK_FALSE(store.reply_for("bad"));
  CHECK_FALSE(store.reply_for("unknown"));
  CHECK_THROWS(store.transaction(
      [](Store::Tx& tx) { tx.set_reply("unknown", "x", storage::InboundOutcome::Recorded); }));

  SQLite::Database raw(path, SQLite::OPEN_READONLY);
  SQLite::Statement q(raw, "SELECT status, error FROM inbound WHERE msgid = 'bad'");
  REQUIRE(q.executeStep());
  CHECK(q.getColumn(0).getString() == "failed");
  CHECK(q.getColumn(1).getString() == "parser crashed");
}

TEST_CASE("A transaction that throws leaves nothing behind", "[storage]") {
  Store store(":memory:");
  auto ps = seed(store, {pairing("u1", "H1")});
  REQUIRE(store.save_inbound(inbound("m1", "u1")) == SaveInbound::New);
  CheckinRecord c;
  c.msgid = "m1";
  c.pairing_id = ps[0].id;
  c.helper_id = "u1";
  c.visit_date = Date{2026, 11, 3};

  CHECK_THROWS_WITH(store.transaction([&](Store::Tx& tx) {
    tx.add_checkin(c);
    tx.set_reply("m1", "已记录", storage::InboundOutcome::Recorded);
    throw std::runtime_error("handler failed");
  }),
                    "handler failed");
  CHECK(store.checkins_between(Date{2026, 11, 1}, Date{2026, 11, 30}).empty());
  CHECK_FALSE(store.reply_for("m1"));

  // The store is usable afterwards and a normal transaction commits.
  const int64_t id = store.transaction([&](Store::Tx& tx) {
    tx.set_reply("m1", "已记录", storage::InboundOutcome::Recorded);
    return tx.add_checkin(c);
  });
  auto rows = store.checkins_between(Date{2026, 11, 1}, Date{2026, 11, 30});
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].id == id);
  CHECK(store.reply_for("m1") == "已记录");
}

TEST_CASE("counted_visits counts distinct visit days, not calls, undone or other months",
          "[storage]") {
  Store store(":memory:");
  auto ps = seed(store, {pairing("u1", "H1"), pairing("u1", "H2")});
  const Month nov{2026, 11};
  add(store, ps[0], "base", Date{2026, 11, 3});  // every row starts from one visit on the 3rd

  auto [what, mode, visit, undone, other_pairing, expected] =
      GENERATE(table<const char*, Mode, Date, bool, bool, int>({
          {"second check-in the same day", Mode::Visit, Date{2026, 11, 3}, false, false, 1},
          {"another day", Mode::Visit, Date{2026, 11, 4}, false, false, 2},
          {"home visit on the last day", Mode::HomeVisit, Date{2026, 11, 30}, false, false, 2},
          {"school visit", Mode::SchoolVisit, Date{2026, 11, 5}, false, false, 2},
          {"doctor's service", Mode::Service, Date{2026, 11, 5}, false, false, 2},
          {"phone call", Mode::Phone, Date{2026, 11, 4}, false, false, 1},
          {"undone visit", Mode::Visit, Date{2026, 11, 4}, true, false, 1},
          {"next month", Mode::Visit, Date{2026, 12, 1}, false, false, 1},
          {"previous month", Mode::Visit, Date{2026, 10, 31}, false, false, 1},
          {"other pairing", Mode::Visit, Date{2026, 11, 4}, false, true, 1},
      }));
  CAPTURE(what);
  const int64_t id = add(store, ps[other_pairing ? 1 : 0], "extra", visit, mode);
  const bool undo = undone;  // structured bindings cannot be captured before C++20 in clang 14
  const int want = expected;
  store.transaction([&](Store::Tx& tx) {
    if (undo) REQUIRE(tx.mark_undone(id, "u1", 2000));
    CHECK(tx.counted_visits(ps[0].id, nov) == want);
  });
}

TEST_CASE("Undo marks a check-in once and last_active_checkin skips it", "[storage]") {
  Store store(":memory:");
  auto ps = seed(store, {pairing("u1", "H1"), pairing("u2", "H2")});
  const int64_t c1 = add(store, ps[0], "m1", Date{2026, 11, 1}, Mode::Visit, 100);
  const int64_t c2 = add(store, ps[0], "m2", Date{2026, 11, 2}, Mode::Visit, 200);
  const int64_t c3 = add(store, ps[0], "m3", Date{2026, 11, 1}, Mode::Phone, 200);  // same second
  add(store, ps[1], "m4", Date{2026, 11, 3}, Mode::Visit, 300);                     // other helper

  store.transaction([&](Store::Tx& tx) {
    auto last = tx.last_active_checkin("u1", 0);
    REQUIRE(last);
    CHECK(last->id == c3);  // received_at ties are broken by id
    CHECK(last->msgid == "m3");
    CHECK(last->mode == Mode::Phone);
    CHECK_FALSE(last->undone_at);

    CHECK(tx.mark_undone(c3, "u1", 500));
    CHECK_FALSE(tx.mark_undone(c3, "u1", 600));
    CHECK(tx.last_active_checkin("u1", 0)->id == c2);
    CHECK(tx.mark_undone(c2, "u1", 700));
    CHECK(tx.last_active_checkin("u1", 0)->id == c1);
    CHECK(tx.mark_undone(c1, "u1", 800));
    CHECK_FALSE(tx.last_active_checkin("u1", 0));
    CHECK(tx.last_active_checkin("u2", 0)->msgid == "m4");
    // Only what came in since the window's start.
    CHECK(tx.last_active_checkin("u2", 300)->msgid == "m4");
    CHECK_FALSE(tx.last_active_checkin("u2", 301));
  });

  auto rows = store.checkins_between(Date{2026, 11, 1}, Date{2026, 11, 1});
  REQUIRE(rows.size() == 2);
  CHECK(rows[1].id == c3);
  CHECK(rows[1].undone_at == 500);  // the second undo did not overwrite the first
  CHECK(rows[1].undone_by == "u1");

  auto undo = with_action(store.audit_entries(), "checkin_undo");
  REQUIRE(undo.size() == 3);
  CHECK(undo[0].subject == "checkin:" + std::to_string(c3));
  CHECK(undo[0].actor == "u1");
  CHECK(undo[0].at == 500);
  auto d = nlohmann::json::parse(undo[0].detail);
  CHECK(d.at("msgid").get<std::string>() == "m3");
  CHECK(d.at("visit_date").get<std::string>() == "2026-11-01");
}

TEST_CASE("Check-ins round-trip every field", "[storage]") {
  Store store(":memory:");
  auto ps = seed(store, {pairing("u1", "H1")});
  REQUIRE(store.save_inbound(inbound("m1", "u1")) == SaveInbound::New);
  CheckinRecord c;
  c.msgid = "m1";
  c.pairing_id = ps[0].id;
  c.helper_id = "u1";
  c.visit_date = Date{2026, 9, 17};
  c.mode = Mode::HomeVisit;
  c.occasions = {"festival", "illness"};
  c.policies = {"medical_aid"};
  c.problems = {"老人腿疼", "屋顶漏雨"};
  c.note = "中秋节送月饼";
  c.received_at = 1789000000;
  c.id = store.transaction([&](Store::Tx& tx) { return tx.add_checkin(c); });
  auto rows = store.checkins_between(Date{2026, 9, 1}, Date{2026, 9, 30});
  REQUIRE(rows.size() == 1);
  const auto& r = rows[0];
  CHECK(r.id == c.id);
  CHECK(r.msgid == c.msgid);
  CHECK(r.pairing_id == c.pairing_id);
  CHECK(r.helper_id == c.helper_id);
  CHECK(r.visit_date == c.visit_date);
  CHECK(r.mode == c.mode);
  CHECK(r.occasions == c.occasions);
  CHECK(r.policies == c.policies);
  CHECK(r.problems == c.problems);
  CHECK(r.note == c.note);
  CHECK(r.received_at == c.received_at);
  CHECK_FALSE(r.undone_at);
  CHECK(r.undone_by.empty());
}

TEST_CASE("The ledger lists the month's check-ins by visit date, optionally one ledger",
          "[storage]") {
  Store store(":memory:");
  auto cadre = pairing("u1", "H1");
  auto doctor = pairing("d1", "H2", "李小花");
  doctor.ledger = Ledger::Health;
  doctor.unit = "区人民医院";
  auto ps = seed(store, {cadre, doctor});

  add(store, ps[0], "late", Date{2026, 11, 20});
  add(store, ps[1], "early", Date{2026, 11, 2}, Mode::Service);
  add(store, ps[0], "same-day-a", Date{2026, 11, 10});
  const int64_t undone = add(store, ps[1], "same-day-b", Date{2026, 11, 10}, Mode::Service);
  add(store, ps[0], "december", Date{2026, 12, 1});
  add(store, ps[0], "october", Date{2026, 10, 31});
  store.transaction([&](Store::Tx& tx) { tx.mark_undone(undone, "d1", 5000); });

  auto msgids = [](const std::vector<storage::LedgerRow>& rows) {
    std::vector<std::string> out;
    for (const auto& r : rows) out.push_back(r.msgid);
    return out;
  };
  auto all = store.ledger(Month{2026, 11}, std::nullopt);
  CHECK(msgids(all) == std::vector<std::string>{"early", "same-day-a", "same-day-b", "late"});
  REQUIRE(all.size() == 4);
  CHECK(all[0].ledger == Ledger::Health);
  CHECK(all[0].helper_name == "干部d1");
  CHECK(all[0].unit == "区人民医院");
  CHECK(all[0].person == "李小花");
  CHECK(all[0].household_head == "户主H2");
  CHECK(all[0].village == "张庄村");
  CHECK(all[0].mode == Mode::Service);
  CHECK(all[0].visit_date == Date{2026, 11, 2});
  CHECK_FALSE(all[0].undone());
  CHECK(all[0].status == storage::CheckinStatus::Active);
  CHECK(all[2].undone());
  CHECK(all[2].status == storage::CheckinStatus::Undone);

  auto [only, expected] = GENERATE(table<Ledger, std::vector<std::string>>({
      {Ledger::Cadre, {"same-day-a", "late"}},
      {Ledger::Health, {"early", "same-day-b"}},
      {Ledger::Education, {}},
  }));
  CAPTURE(storage::ledger_code(only));
  CHECK(msgids(store.ledger(Month{2026, 11}, only)) == expected);
}

TEST_CASE("Store serialises calls from several threads", "[storage]") {
  TempDir dir;
  Store store(dir.file("threads.db"));
  auto ps = seed(store, {pairing("u1", "H1")});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const std::string msgid = "t" + std::to_string(t) + "-" + std::to_string(i);
        store.save_inbound(inbound(msgid, "u1"));
        CheckinRecord c;
        c.msgid = msgid;
        c.pairing_id = ps[0].id;
        c.helper_id = "u1";
        c.visit_date = Date{2026, 11, 1 + i};
        store.transaction([&](Store::Tx& tx) {
          tx.add_checkin(c);
          tx.set_reply(msgid, "ok", storage::InboundOutcome::Recorded);
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(store.checkins_between(Date{2026, 11, 1}, Date{2026, 11, 30}).size() == 100);
  store.transaction([&](Store::Tx& tx) { CHECK(tx.counted_visits(ps[0].id, {2026, 11}) == 25); });
}

TEST_CASE("group commit: concurrent units commit together, a failing unit rolls back alone",
          "[storage]") {
  TempDir dir;
  Store store(dir.file("group.db"));
  store.import_roster({pairing("u1", "H1")}, Date{2026, 11, 1});
  const Pairing p = store.pairings_of("u1", Date{2026, 11, 1}).at(0);

  constexpr int kThreads = 16, kPerThread = 20;
  std::vector<std::thread> threads;
  // Catch2 assertions are not thread-safe: count outcomes here, assert after join.
  std::atomic<int> failures{0}, unexpected{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string msgid = "m" + std::to_string(t) + "-" + std::to_string(i);
        const bool fail = i % 5 == 4;  // every fifth unit throws after writing
        try {
          const int64_t id = store.transaction([&](Store::Tx& tx) {
            if (tx.save_inbound(inbound(msgid, "u1")) != SaveInbound::New) ++unexpected;
            CheckinRecord c;
            c.msgid = msgid;
            c.pairing_id = p.id;
            c.helper_id = "u1";
            c.visit_date = Date{2026, 11, 1 + i % 28};
            c.received_at = 1000;
            const int64_t cid = tx.add_checkin(c);
            if (fail) throw std::runtime_error("boom");
            return cid;
          });
          if (id <= 0 || fail) ++unexpected;
        } catch (const std::runtime_error& e) {
          if (std::string(e.what()) != "boom" || !fail) ++unexpected;
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();

  CHECK(unexpected == 0);
  CHECK(failures == kThreads * kPerThread / 5);
  SQLite::Database db(dir.file("group.db"));
  CHECK(db.execAndGet("SELECT count(*) FROM checkins").getInt() == kThreads * kPerThread * 4 / 5);
  CHECK(db.execAndGet("SELECT count(*) FROM inbound").getInt() == kThreads * kPerThread * 4 / 5);
  const auto stats = store.commit_stats();
  CHECK(stats.units == static_cast<uint64_t>(kThreads * kPerThread));
  CAPTURE(stats.groups);
  CHECK(stats.groups < stats.units);  // concurrent callers shared fsyncs
}

TEST_CASE("Tx::attempt keeps earlier changes of the unit when the inner part throws", "[storage]") {
  Store store(":memory:");
  bool threw = false;
  store.transaction([&](Store::Tx& tx) {
    REQUIRE(tx.save_inbound(inbound("raw-1", "u1")) == SaveInbound::New);
    try {
      tx.attempt([&] {
        tx.set_reply("raw-1", "should vanish", storage::InboundOutcome::Recorded);
        throw std::runtime_error("handler failed");
      });
    } catch (const std::runtime_error&) {
      threw = true;
      tx.set_failed("raw-1", "handler failed");
    }
  });
  CHECK(threw);
  CHECK_FALSE(store.reply_for("raw-1"));
  CHECK(store.save_inbound(inbound("raw-1", "u1")) == SaveInbound::Duplicate);
}

TEST_CASE("Reads and bulletin snapshots do not wait for an open write unit", "[storage]") {
  // On a file, the per-message reads and the bulletin queries use read-only connections of
  // their own: called from inside a unit (the writer holds the write connection throughout),
  // they return at once, and see the last committed state, not the unit's own changes.
  TempDir dir;
  Store store(dir.file("readers.db"));
  auto ps = seed(store, {pairing("u1", "H1"), pairing("u1", "H2")});
  add(store, ps[0], "m1", Date{2026, 11, 2});
  storage::BulletinQueries queries(store);
  store.transaction([&](Store::Tx& tx) {
    REQUIRE(tx.save_inbound(inbound("m2", "u1")) == SaveInbound::New);
    CheckinRecord c;
    c.msgid = "m2";
    c.pairing_id = ps[1].id;
    c.helper_id = "u1";
    c.visit_date = Date{2026, 11, 3};
    tx.add_checkin(c);
    CHECK(store.pairings_of("u1", Date{2026, 11, 3}).size() == 2);
    CHECK(store.helper_name("u1") == "干部u1");
    const auto snap = queries.snapshot(Date{2026, 11, 1}, Date{2026, 11, 30}, std::nullopt);
    REQUIRE(snap.activity.size() == 1);  // m1's check-in only: the unit is not committed
    CHECK(snap.activity[0].pairing_id == ps[0].id);
  });
  const auto after = queries.snapshot(Date{2026, 11, 1}, Date{2026, 11, 30}, std::nullopt);
  CHECK(after.activity.size() == 2);
}

TEST_CASE("Bulletin queries read their indexes alone", "[storage]") {
  // At province scale a table lookup per check-in was most of a bulletin's time: each query's
  // plan must stay on a covering index (BENCHMARKS.md, "Bulletins at scale").
  TempDir dir;
  Store store(dir.file("plans.db"));
  storage::BulletinQueries queries(store);
  std::map<std::string, std::string> plan;
  for (const auto& p : queries.plans()) {
    std::string steps;
    for (const auto& s : p.steps) steps += s + "\n";
    plan[p.name] = steps;
  }
  CHECK_THAT(plan["range"], Catch::Contains("COVERING INDEX checkins_visit_cover"));
  CHECK_THAT(plan["reports"], Catch::Contains("COVERING INDEX checkins_reports"));
  CHECK_THAT(plan["first_visit"], Catch::Contains("COVERING INDEX checkins_pairing_cover"));
  CHECK_THAT(plan["problems"], Catch::Contains("COVERING INDEX problems_bulletin"));
  CHECK_THAT(plan["pairings"], Catch::Contains("COVERING INDEX checkins_pairing_cover"));
}

TEST_CASE("One message may record several pairings, each once, and undo sets the status",
          "[storage]") {
  TempDir dir;
  const std::string path = dir.file("status.db");
  Store store(path);
  auto ps = seed(store, {pairing("u1", "H1"), pairing("u1", "H2")});
  const int64_t c1 = add(store, ps[0], "m1", Date{2026, 11, 1});
  CheckinRecord second;
  second.msgid = "m1";  // the same message names a second household
  second.pairing_id = ps[1].id;
  second.helper_id = "u1";
  second.visit_date = Date{2026, 11, 1};
  second.received_at = 1000;
  const int64_t c2 = store.transaction([&](Store::Tx& tx) { return tx.add_checkin(second); });
  CHECK(c2 != c1);
  // … but not the same pairing twice from one message (a retry is not a second visit).
  CHECK_THROWS_AS(store.transaction([&](Store::Tx& tx) { return tx.add_checkin(second); }),
                  SQLite::Exception);
  store.transaction([&](Store::Tx& tx) { CHECK(tx.mark_undone(c1, "u1", 500)); });

  SQLite::Database raw(path, SQLite::OPEN_READONLY);
  auto status = [&](int64_t id) {
    return raw.execAndGet("SELECT status FROM checkins WHERE id = " + std::to_string(id))
        .getString();
  };
  CHECK(status(c1) == "undone");
  CHECK(status(c2) == "active");
}

TEST_CASE("The roster cache keeps a helper's roster until the roster changes", "[storage]") {
  TempDir dir;
  const std::string path = dir.file("cache.db");
  Store store(path);
  store.import_roster({pairing("u1", "H1")}, Date{2026, 1, 1});
  const auto first = store.roster_of("u1");
  CHECK(store.roster_of("u1").get() == first.get());  // the second lookup is the cached one
  CHECK(heads(first->pairings) == std::vector<std::string>{"H1"});
  CHECK_FALSE(store.roster_of("u2")->name);

  SECTION("an import by this process is seen by the next lookup") {
    store.import_roster({pairing("u1", "H1"), pairing("u1", "H2"), pairing("u2", "H3")},
                        Date{2026, 2, 1});
    CHECK(heads(store.pairings_of("u1", Date{2026, 2, 1})) == std::vector<std::string>{"H1", "H2"});
    CHECK(store.helper_name("u2") == "干部u2");
  }
  SECTION("an import by another process is seen by the next lookup") {
    // A second Store on the file is another connection, as `bangfu roster import` is while the
    // service runs: nothing in this process hears of the change but the database itself.
    Store other(path);
    Pairing renamed = pairing("u1", "H1");
    renamed.helper_name = "张伟";
    other.import_roster({renamed, pairing("u2", "H3")}, Date{2026, 2, 1});
    // Lookups within a millisecond of the last reading of the mark share it (roster_of).
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    CHECK(store.helper_name("u1") == "张伟");
    CHECK(heads(store.pairings_of("u2", Date{2026, 2, 1})) == std::vector<std::string>{"H3"});
  }
  SECTION("a dry run or a refused import changes nothing, so the cache stays") {
    storage::ImportOptions dry;
    dry.dry_run = true;
    const auto sum = store.import_roster({pairing("u1", "H9")}, Date{2026, 2, 1}, "admin", 5, dry);
    CHECK_FALSE(sum.applied);
    CHECK(store.roster_of("u1").get() == first.get());
  }
}

TEST_CASE("submit_async calls its completion once, after the commit is on disk", "[storage]") {
  TempDir dir;
  const std::string path = dir.file("async.db");
  Store store(path);
  std::mutex mu;
  std::condition_variable cv;
  int calls = 0;
  bool visible = false;
  std::exception_ptr error;
  store.submit_async(
      [](Store::Tx& tx) { REQUIRE(tx.save_inbound(inbound("a1", "u1")) == SaveInbound::New); },
      [&](std::exception_ptr e) {
        // A connection of its own: sees only what is committed.
        SQLite::Database reader(path, SQLite::OPEN_READONLY);
        const bool seen =
            reader.execAndGet("SELECT count(*) FROM inbound WHERE msgid = 'a1'").getInt() == 1;
        std::lock_guard lock(mu);
        ++calls;
        visible = seen;
        error = e;
        cv.notify_all();
      });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return calls > 0; });
  }
  // A unit queued after the first completion returns only after the writer has moved on.
  store.transaction([](Store::Tx& tx) { tx.save_inbound(inbound("a2", "u1")); });
  std::lock_guard lock(mu);
  CHECK(calls == 1);
  CHECK(visible);
  CHECK_FALSE(error);
}

TEST_CASE(
    "submit_async: a unit that throws gets its error, and a failed commit acknowledges "
    "nothing of its group",
    "[storage]") {
  TempDir dir;
  const std::string path = dir.file("failing.db");
  Store store(path);
  {
    // A real commit failure: a deferred foreign key is checked at COMMIT, so a unit that saves
    // the message "poison" passes, and the group's commit then fails.
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec(
        "CREATE TABLE poison (p INTEGER REFERENCES pairings (id) DEFERRABLE INITIALLY DEFERRED);"
        "CREATE TRIGGER poison_commit AFTER INSERT ON inbound WHEN NEW.msgid = 'poison' "
        "BEGIN INSERT INTO poison VALUES (-1); END;");
  }
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::vector<std::string>> outcomes;  // msgid → "ok" or the error, per call
  auto record = [&](std::string msgid) {
    return [&, msgid](std::exception_ptr e) {
      std::string what = "ok";
      if (e) try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          what = ex.what();
        }
      std::lock_guard lock(mu);
      outcomes[msgid].push_back(what);
      cv.notify_all();
    };
  };
  auto save = [](std::string msgid) {
    return [msgid](Store::Tx& tx) { tx.save_inbound(inbound(msgid, "u1")); };
  };
  // The first unit holds the writer until the next three are queued: they form one group.
  std::promise<void> started, queued;
  auto go = queued.get_future().share();
  store.submit_async(
      [&started, go](Store::Tx& tx) {
        started.set_value();
        go.wait();
        tx.save_inbound(inbound("first", "u1"));
      },
      record("first"));
  started.get_future().wait();
  store.submit_async(save("poison"), record("poison"));
  store.submit_async(save("innocent"), record("innocent"));
  store.submit_async(
      [](Store::Tx& tx) {
        tx.save_inbound(inbound("thrower", "u1"));
        throw std::runtime_error("unit failed");
      },
      record("thrower"));
  queued.set_value();
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return outcomes.size() == 4; });
  }
  // A later unit still commits: the store is usable after a failed commit.
  store.transaction([](Store::Tx& tx) { tx.save_inbound(inbound("after", "u1")); });

  std::lock_guard lock(mu);
  CHECK(outcomes["first"] == std::vector<std::string>{"ok"});
  REQUIRE(outcomes["poison"].size() == 1);
  CHECK_THAT(outcomes["poison"][0], Catch::Contains("FOREIGN KEY"));
  REQUIRE(outcomes["innocent"].size() == 1);  // same group: its commit failed too
  CHECK_THAT(outcomes["innocent"][0], Catch::Contains("FOREIGN KEY"));
  CHECK(outcomes["thrower"] == std::vector<std::string>{"unit failed"});
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  std::vector<std::string> kept;
  SQLite::Statement q(db, "SELECT msgid FROM inbound ORDER BY msgid");
  while (q.executeStep()) kept.push_back(q.getColumn(0).getString());
  CHECK(kept == std::vector<std::string>{"after", "first"});
}

TEST_CASE("the writer thread runs ten nice steps ahead of the process where that is allowed",
          "[storage]") {
  const int own = own_nice();
  const int raised = std::clamp(own + Store::kWriterNiceSteps, -20, 19);
  // Whether this process may raise a thread (root, CAP_SYS_NICE, RLIMIT_NICE): asked of a
  // thread of its own, which then ends.
  bool allowed = false;
  std::thread probe(
      [&] { allowed = setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), raised) == 0; });
  probe.join();
  TempDir dir;
  Store store(dir.file("nice.db"));
  CAPTURE(own, allowed);
  CHECK(store.writer_nice() == (allowed ? raised : own));
  CHECK(thread_nice("bangfu-writer") == store.writer_nice());
  CHECK(own_nice() == own);  // the constructing thread keeps its own
}
