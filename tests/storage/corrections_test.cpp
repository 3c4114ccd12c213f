// Corrections, office entries, the inbox and guarded roster imports (issue 10), on real SQLite.
#include <catch2/catch.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "storage/store.h"
#include "tests/support/storage_seed.h"
#include "tests/support/temp_dir.h"

using nlohmann::json;
using storage::CheckinRecord;
using storage::CheckinStatus;
using storage::Date;
using storage::ImportOptions;
using storage::InboundOutcome;
using storage::Ledger;
using storage::Mode;
using storage::Month;
using storage::Pairing;
using storage::Store;

namespace {

using bangfu_test::inbound;
using bangfu_test::pairing;
using bangfu_test::with_action;

int64_t id_of(Store& store, const std::string& helper, const std::string& household) {
  const auto ps = store.pairings_with(helper, household);
  REQUIRE(ps.size() == 1);
  return ps.front().id;
}

CheckinRecord checkin(int64_t pairing_id, const std::string& helper, const std::string& msgid,
                      Date visit, int64_t at) {
  CheckinRecord c;
  c.msgid = msgid;
  c.pairing_id = pairing_id;
  c.helper_id = helper;
  c.visit_date = visit;
  c.received_at = at;
  return c;
}

// Saves the message and records the check-in from it; returns the check-in's id.
int64_t send(Store& store, int64_t pairing_id, const std::string& helper, const std::string& msgid,
             Date visit, int64_t at) {
  return store.transaction([&](Store::Tx& tx) {
    tx.save_inbound(inbound(msgid, helper, at));
    const int64_t id = tx.add_checkin(checkin(pairing_id, helper, msgid, visit, at));
    tx.set_reply(msgid, "已记下", InboundOutcome::Recorded);
    return id;
  });
}

}  // namespace

TEST_CASE("A correction keeps the old check-in, marked corrected, and audits before and after",
          "[storage]") {
  Store store(":memory:");
  store.import_roster({pairing("zw", "H1"), pairing("zw", "H2")}, Date{2026, 1, 1});
  const int64_t h1 = id_of(store, "zw", "H1"), h2 = id_of(store, "zw", "H2");
  const int64_t old_id = send(store, h1, "zw", "m1", Date{2026, 12, 4}, 5000);

  const auto new_id = store.transaction([&](Store::Tx& tx) {
    tx.save_inbound(inbound("m2", "zw", 6000));
    return tx.correct_checkin(old_id, checkin(h2, "zw", "m2", Date{2026, 12, 3}, 6000), "zw", 6000);
  });
  REQUIRE(new_id);
  const auto old = store.checkin(old_id);
  REQUIRE(old);
  CHECK(old->status == CheckinStatus::Corrected);
  CHECK(old->corrected_by == *new_id);
  CHECK(old->undone_at == 6000);  // stops counting, so every bulletin query skips it
  CHECK(old->undone_by == "zw");
  const auto fresh = store.checkin(*new_id);
  CHECK(fresh->status == CheckinStatus::Active);
  CHECK(fresh->pairing_id == h2);
  CHECK(fresh->visit_date == Date{2026, 12, 3});
  CHECK(fresh->msgid == "m2");

  const auto audit = with_action(store.audit_entries(), "checkin_correct");
  REQUIRE(audit.size() == 1);
  CHECK(audit[0].actor == "zw");
  CHECK(audit[0].subject == "checkin:" + std::to_string(old_id));
  const json detail = json::parse(audit[0].detail);
  CHECK(detail.at("before").at("visit_date") == "2026-12-04");
  CHECK(detail.at("before").at("pairing_id") == h1);
  CHECK(detail.at("after").at("id") == *new_id);
  CHECK(detail.at("after").at("checkin").at("visit_date") == "2026-12-03");
  CHECK(detail.at("changes").at("status") == json::array({"active", "corrected"}));

  // A corrected check-in cannot be corrected again, and nothing changes.
  const auto again = store.transaction([&](Store::Tx& tx) {
    tx.save_inbound(inbound("m3", "zw", 7000));
    return tx.correct_checkin(old_id, checkin(h1, "zw", "m3", Date{2026, 12, 1}, 7000), "zw", 7000);
  });
  CHECK_FALSE(again);
  CHECK(store.checkins({}).size() == 2);
}

TEST_CASE("The window lists a helper's active check-ins from messages, newest first", "[storage]") {
  Store store(":memory:");
  store.import_roster({pairing("zw", "H1"), pairing("ww", "H2")}, Date{2026, 1, 1});
  const int64_t h1 = id_of(store, "zw", "H1"), h2 = id_of(store, "ww", "H2");
  const int64_t a = send(store, h1, "zw", "m1", Date{2026, 11, 20}, 1000);
  const int64_t b = send(store, h1, "zw", "m2", Date{2026, 11, 25}, 2000);
  const int64_t c = send(store, h1, "zw", "m3", Date{2026, 11, 26}, 3000);
  send(store, h2, "ww", "m4", Date{2026, 11, 26}, 3500);
  store.transaction([&](Store::Tx& tx) {
    CHECK(tx.mark_undone(c, "zw", 3100));
    tx.add_office_checkin(checkin(h1, "zw", "", Date{2026, 11, 27}, 0), "office:li", 4000, "纸质");
  });
  const auto recent =
      store.transaction([&](Store::Tx& tx) { return tx.active_checkins_since("zw", 1500); });
  REQUIRE(recent.size() == 1);  // a is too old, c undone, the office entry has no message
  CHECK(recent[0].id == b);
  // Plain 撤销 cannot take back what the office entered either.
  CHECK(store.transaction([&](Store::Tx& tx) { return tx.last_active_checkin("zw", 0)->id; }) == b);
  const auto all =
      store.transaction([&](Store::Tx& tx) { return tx.active_checkins_since("zw", 0); });
  REQUIRE(all.size() == 2);
  CHECK(all[0].id == b);
  CHECK(all[1].id == a);
}

TEST_CASE("The office voids and adds check-ins, each audited with its reason", "[storage]") {
  Store store(":memory:");
  store.import_roster({pairing("zw", "H1")}, Date{2026, 1, 1}, "admin", 1);
  const int64_t h1 = id_of(store, "zw", "H1");
  const int64_t sent = send(store, h1, "zw", "m1", Date{2026, 11, 20}, 1000);

  store.transaction([&](Store::Tx& tx) {
    CHECK(tx.void_checkin(sent, "office:li", 2000, "重复打卡"));
    CHECK_FALSE(tx.void_checkin(sent, "office:li", 2001, "again"));  // already void
    CHECK_FALSE(tx.void_checkin(999, "office:li", 2002, "no such"));
  });
  const auto voided = store.checkin(sent);
  CHECK(voided->status == CheckinStatus::Void);
  CHECK(voided->undone_by == "office:li");
  CHECK(store.transaction([&](Store::Tx& tx) {
    return tx.counted_visits(h1, Month{2026, 11});
  }) == 0);

  const int64_t added = store.transaction([&](Store::Tx& tx) {
    return tx.add_office_checkin(checkin(h1, "zw", "ignored", Date{2026, 11, 21}, 0), "office:li",
                                 3000, "纸质记录补录");
  });
  const auto row = store.checkin(added);
  CHECK(row->msgid.empty());  // stored NULL: no message
  CHECK(row->entered_by == "office:li");
  CHECK(row->received_at == 3000);
  CHECK(store.transaction([&](Store::Tx& tx) {
    return tx.counted_visits(h1, Month{2026, 11});
  }) == 1);

  const auto audit = store.audit_since(2000);
  REQUIRE(audit.size() == 2);
  CHECK(audit[0].action == "checkin_void");
  CHECK(json::parse(audit[0].detail).at("reason") == "重复打卡");
  CHECK(json::parse(audit[0].detail).at("before").at("msgid") == "m1");
  CHECK(audit[1].action == "checkin_add");
  CHECK(audit[1].actor == "office:li");
  CHECK(json::parse(audit[1].detail).at("reason") == "纸质记录补录");
  CHECK(json::parse(audit[1].detail).at("after").at("msgid").is_null());
  CHECK(store.audit_since(3001).empty());
}

TEST_CASE("The office lists check-ins by helper, household and month, every status", "[storage]") {
  Store store(":memory:");
  store.import_roster(
      {pairing("zw", "H1"), pairing("zw", "H2"), pairing("doc", "H1", Ledger::Health)},
      Date{2026, 1, 1});
  const int64_t h1 = id_of(store, "zw", "H1"), h2 = id_of(store, "zw", "H2"),
                d1 = id_of(store, "doc", "H1");
  const int64_t a = send(store, h1, "zw", "m1", Date{2026, 11, 30}, 1000);
  send(store, h2, "zw", "m2", Date{2026, 12, 1}, 1001);
  send(store, d1, "doc", "m3", Date{2026, 12, 2}, 1002);
  store.transaction([&](Store::Tx& tx) { tx.mark_undone(a, "zw", 1100); });

  CHECK(store.checkins({}).size() == 3);
  const auto zw = store.checkins({"zw", std::nullopt, std::nullopt});
  REQUIRE(zw.size() == 2);
  CHECK(zw[0].checkin.status == CheckinStatus::Undone);
  CHECK(zw[0].pairing.household_id == "H1");
  const auto hh = store.checkins({std::nullopt, "H1", std::nullopt});
  REQUIRE(hh.size() == 2);
  CHECK(hh[1].pairing.ledger == Ledger::Health);
  const auto dec = store.checkins({std::nullopt, std::nullopt, Month{2026, 12}});
  REQUIRE(dec.size() == 2);
  CHECK(dec[0].checkin.visit_date == Date{2026, 12, 1});
  CHECK(store.checkins({"zw", "H1", Month{2026, 12}}).empty());
}

TEST_CASE("The inbox lists what was not recorded: not understood, failed, rate limited",
          "[storage]") {
  Store store(":memory:");
  store.import_roster({pairing("zw", "H1")}, Date{2026, 1, 1}, "admin", 1);
  send(store, id_of(store, "zw", "H1"), "zw", "ok", Date{2026, 11, 30}, 1000);
  store.transaction([&](Store::Tx& tx) {
    tx.save_inbound(inbound("huh", "zw", 1001));
    tx.set_reply("huh", "没看懂", InboundOutcome::NotUnderstood);
    tx.save_inbound(inbound("fast", "zw", 1002));
    tx.set_reply("fast", "发得太快了", InboundOutcome::RateLimited);
    tx.save_inbound(inbound("boom", "zw", 1003));
    tx.set_failed("boom", "disk I/O error");
    tx.save_inbound(inbound("help", "zw", 1004));
    tx.set_reply("help", "帮助", InboundOutcome::Answered);
    tx.save_inbound(inbound("old", "zw", 10));
    tx.set_reply("old", "没看懂", InboundOutcome::NotUnderstood);
  });
  const auto all = store.inbox(std::nullopt, 1000);
  REQUIRE(all.size() == 3);
  CHECK(all[0].message.msgid == "huh");
  CHECK(all[0].status == "not_understood");
  CHECK(all[0].reply == "没看懂");
  CHECK(all[1].status == "rate_limited");
  CHECK(all[2].status == "failed");
  CHECK(all[2].error == "disk I/O error");
  CHECK(store.inbox("failed", 0).size() == 1);
  CHECK(store.inbox("not_understood", 0).size() == 2);
  CHECK(store.inbox("rate_limited", 1003).empty());
}

TEST_CASE("Migration 8 classifies the messages handled before it", "[storage]") {
  bangfu_test::TempDir dir;
  const std::string path = dir.file("bangfu.db");
  {
    Store store(path);
    store.import_roster({pairing("zw", "H1")}, Date{2026, 1, 1}, "admin", 1);
    send(store, id_of(store, "zw", "H1"), "zw", "ok", Date{2026, 11, 30}, 1000);
    store.transaction([&](Store::Tx& tx) {
      tx.save_inbound(inbound("fast", "zw", 1002));
      tx.set_reply("fast", "发得太快了（每人每分钟最多 20 条）", InboundOutcome::RateLimited);
      tx.save_inbound(inbound("help", "zw", 1004));
      tx.set_reply("help", "帮助", InboundOutcome::Answered);
    });
  }
  {
    // Back to the schema of version 6 (the last step before 8; 7 is reserved): no outcome
    // column.
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    raw.exec("DROP INDEX inbound_not_recorded");
    raw.exec("ALTER TABLE inbound DROP COLUMN outcome");
    raw.exec("PRAGMA user_version = 6");
  }
  Store store(path);
  CHECK(store.schema_version() == Store(":memory:").schema_version());
  SQLite::Database raw(path, SQLite::OPEN_READONLY);
  auto outcome = [&](const char* msgid) {
    SQLite::Statement q(raw, "SELECT outcome FROM inbound WHERE msgid = ?");
    q.bind(1, msgid);
    REQUIRE(q.executeStep());
    return q.getColumn(0).isNull() ? std::string("NULL") : q.getColumn(0).getString();
  };
  CHECK(outcome("ok") == "recorded");
  CHECK(outcome("fast") == "rate_limited");
  CHECK(outcome("help") == "NULL");  // unknown: a command, or a question back
}

TEST_CASE("A roster import ends only pairings of the ledgers it covers", "[storage]") {
  Store store(":memory:");
  std::vector<Pairing> all;
  for (int i = 0; i < 20; ++i)
    all.push_back(pairing("c" + std::to_string(i), "C" + std::to_string(i)));
  for (int i = 0; i < 20; ++i)
    all.push_back(pairing("d" + std::to_string(i), "D" + std::to_string(i), Ledger::Health));
  store.import_roster(all, Date{2026, 1, 1});

  // The health office's sheet alone, one doctor fewer: no cadre pairing ends.
  std::vector<Pairing> health(all.begin() + 20, all.end() - 1);
  ImportOptions options;
  const auto s = store.import_roster(health, Date{2026, 11, 1}, "office:li", 100, options);
  CHECK(s.applied);
  CHECK(s.ended == 1);
  CHECK(s.by_ledger.count(Ledger::Cadre) == 0);
  CHECK(s.by_ledger.at(Ledger::Health).ended == 1);
  CHECK(s.by_ledger.at(Ledger::Health).unchanged == 19);
  CHECK(s.by_ledger.at(Ledger::Health).open_before == 20);
  CHECK(store.pairings_between(Date{2026, 11, 2}, Date{2026, 11, 2}).size() == 39);
  const auto ended = with_action(store.audit_entries(), "pairing_end");
  REQUIRE(ended.size() == 1);
  CHECK(ended[0].actor == "office:li");
  CHECK(json::parse(ended[0].detail).at("household_id") == "D19");

  // Naming the cadre ledger too would end all 20 of its pairings: refused, nothing changes.
  options.ledgers = std::vector<Ledger>{Ledger::Cadre, Ledger::Health};
  const size_t audit_before = store.audit_entries().size();
  const auto refused = store.import_roster(health, Date{2026, 11, 2}, "office:li", 200, options);
  CHECK_FALSE(refused.applied);
  REQUIRE(refused.refused == std::vector<Ledger>{Ledger::Cadre});
  CHECK(refused.by_ledger.at(Ledger::Cadre).ended == 20);
  CHECK(refused.by_ledger.at(Ledger::Cadre).open_before == 20);
  CHECK(store.audit_entries().size() == audit_before);
  CHECK(store.pairings_between(Date{2026, 11, 3}, Date{2026, 11, 3}).size() == 39);

  // A dry run reports the same and changes nothing either.
  options.force = true;
  options.dry_run = true;
  const auto dry = store.import_roster(health, Date{2026, 11, 2}, "office:li", 200, options);
  CHECK_FALSE(dry.applied);
  CHECK(dry.refused.empty());
  CHECK(dry.ended == 20);
  CHECK(dry.ended_pairings.size() == 20);
  CHECK(store.audit_entries().size() == audit_before);
  CHECK(store.pairings_between(Date{2026, 11, 3}, Date{2026, 11, 3}).size() == 39);

  // Forced, it ends them, each in the audit list.
  options.dry_run = false;
  const auto forced = store.import_roster(health, Date{2026, 11, 2}, "office:li", 300, options);
  CHECK(forced.applied);
  CHECK(forced.ended == 20);
  CHECK(with_action(store.audit_entries(), "pairing_end").size() == 21);
  CHECK(store.pairings_between(Date{2026, 11, 3}, Date{2026, 11, 3}).size() == 19);
}

TEST_CASE("Ending up to 10% of a ledger's open pairings needs no --force", "[storage]") {
  Store store(":memory:");
  std::vector<Pairing> all;
  for (int i = 0; i < 20; ++i)
    all.push_back(pairing("c" + std::to_string(i), "C" + std::to_string(i)));
  store.import_roster(all, Date{2026, 1, 1});
  const std::vector<Pairing> minus2(all.begin(), all.end() - 2);  // 2 of 20: 10%, allowed
  const auto ok = store.import_roster(minus2, Date{2026, 11, 1}, "office:li", 1, {});
  CHECK(ok.applied);
  CHECK(ok.ended == 2);
  const std::vector<Pairing> minus4(all.begin(), all.end() - 4);  // 2 more of 18: 11%
  const auto no = store.import_roster(minus4, Date{2026, 11, 2}, "office:li", 2, {});
  CHECK_FALSE(no.applied);
  CHECK(no.refused.size() == 1);
  CHECK(store.pairings_between(Date{2026, 11, 3}, Date{2026, 11, 3}).size() == 18);
}
