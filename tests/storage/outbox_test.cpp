#include <catch2/catch.hpp>

#include <SQLiteCpp/SQLiteCpp.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "storage/outbox.h"
#include "storage/store.h"
#include "tests/support/temp_dir.h"

using storage::ClaimResult;
using storage::Outbox;
using storage::OutboxMessage;
using storage::OutboxStatus;
using storage::Store;

CATCH_REGISTER_ENUM(storage::OutboxStatus, storage::OutboxStatus::Pending,
                    storage::OutboxStatus::Sending, storage::OutboxStatus::Sent,
                    storage::OutboxStatus::Failed, storage::OutboxStatus::Unknown,
                    storage::OutboxStatus::Cancelled)
CATCH_REGISTER_ENUM(storage::ClaimResult::Outcome, storage::ClaimResult::Outcome::Claimed,
                    storage::ClaimResult::Outcome::RateLimited,
                    storage::ClaimResult::Outcome::NotPending)

using bangfu_test::TempDir;

namespace {

std::vector<OutboxMessage> messages(int n, const std::string& tag = "m") {
  std::vector<OutboxMessage> out;
  for (int i = 1; i <= n; ++i)
    out.push_back({"markdown", R"({"msgtype":"markdown","markdown":{"content":")" + tag +
                                   std::to_string(i) + R"("}})"});
  return out;
}

constexpr int64_t T0 = 1'800'000'000;

}  // namespace

TEST_CASE("Outbox tables come with migration 2", "[storage]") {
  TempDir dir;
  const auto path = dir.file("bangfu.db");
  {
    Store store(path);
    CHECK(store.schema_version() >= 2);
  }
  SQLite::Database raw(path, SQLite::OPEN_READONLY);
  for (const char* table : {"outbox", "outbox_attempts", "scheduler_state"}) {
    CAPTURE(table);
    CHECK(raw.tableExists(table));
  }
}

TEST_CASE("Migration 7: the outbox takes images, keeping every row, status and attempt",
          "[storage]") {
  TempDir dir;
  const auto path = dir.file("bangfu.db");
  { Store store(path); }
  {
    // Put the database back as it was at version 6 (migration 6's problem tables stay): the
    // outbox of migration 2, with rows, and the inbound table before migration 8 added its
    // outcome.
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    raw.exec("PRAGMA foreign_keys = ON");
    raw.exec(R"sql(
DROP INDEX inbound_not_recorded;
ALTER TABLE inbound DROP COLUMN outcome;
DROP TABLE outbox_attempts;
DROP TABLE outbox;
CREATE TABLE outbox (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('monthly', 'quarterly', 'reminder')),
  period TEXT NOT NULL,
  ledger TEXT NOT NULL CHECK (ledger IN ('cadre', 'health', 'education', 'all')),
  generation INTEGER NOT NULL CHECK (generation >= 1),
  part INTEGER NOT NULL, parts INTEGER NOT NULL,
  msgtype TEXT NOT NULL CHECK (msgtype IN ('markdown', 'text')),
  body TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
    ('pending', 'sending', 'sent', 'failed', 'unknown', 'cancelled')),
  attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL,
  claim_id INTEGER, claimed_at INTEGER, last_error TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL, sent_at INTEGER,
  CHECK (part BETWEEN 1 AND parts), UNIQUE (kind, period, ledger, part, generation));
CREATE INDEX outbox_open ON outbox (id) WHERE status IN ('pending', 'sending');
CREATE TABLE outbox_attempts (id INTEGER PRIMARY KEY,
  outbox_id INTEGER NOT NULL REFERENCES outbox (id), started_at INTEGER NOT NULL,
  finished_at INTEGER, outcome TEXT);
CREATE INDEX outbox_attempts_started ON outbox_attempts (started_at);
INSERT INTO outbox VALUES (7, 'monthly', '2026-11', 'cadre', 1, 1, 2, 'markdown', '{}', 'sent',
  1, 100, 3, 100, '', 90, 101);
INSERT INTO outbox VALUES (9, 'monthly', '2026-11', 'cadre', 1, 2, 2, 'markdown', '{}', 'unknown',
  1, 100, 4, 102, 'gone', 90, NULL);
INSERT INTO outbox_attempts VALUES (3, 7, 100, 101, 'sent'), (4, 9, 102, NULL, NULL);
PRAGMA user_version = 6;
)sql");
    CHECK_THROWS(raw.exec(
        "INSERT INTO outbox (kind, period, ledger, generation, part, parts, msgtype, body, "
        "next_attempt_at, created_at) VALUES ('monthly', '2026-12', 'all', 1, 1, 1, 'image', "
        "'{}', 1, 1)"));
  }
  Store store(path);
  CHECK(store.schema_version() == Store(":memory:").schema_version());
  Outbox outbox(store);
  const auto rows = outbox.list();
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].id == 7);
  CHECK(rows[0].status == OutboxStatus::Sent);
  CHECK(rows[0].sent_at == 101);
  CHECK(rows[1].id == 9);
  CHECK(rows[1].status == OutboxStatus::Unknown);
  CHECK(rows[1].last_error == "gone");
  CHECK(outbox.requeue(9, 200));  // the attempts and the claim still line up
  const auto q =
      outbox.enqueue("monthly", "2026-12", "all",
                     {{"markdown", "{}"}, {"image", R"({"msgtype":"image"})"}}, 300, false);
  REQUIRE(q.ids.size() == 2);
  CHECK(outbox.part(q.ids[1])->msgtype == "image");
  SQLite::Database raw(path, SQLite::OPEN_READONLY);
  CHECK(raw.execAndGet("SELECT count(*) FROM outbox_attempts").getInt() == 2);
  SQLite::Statement fk(raw, "PRAGMA foreign_key_check");
  CHECK_FALSE(fk.executeStep());
  CHECK(raw.execAndGet("SELECT sql FROM sqlite_schema WHERE name = 'outbox_attempts'")
            .getString()
            .find("REFERENCES \"outbox\"") != std::string::npos);
}

TEST_CASE("Enqueue is idempotent per (kind, period, ledger); --force adds a generation",
          "[storage]") {
  Store store(":memory:");
  Outbox outbox(store);
  const auto first = outbox.enqueue("monthly", "2026-11", "cadre", messages(3), T0, false);
  CHECK(first.created);
  CHECK(first.generation == 1);
  REQUIRE(first.ids.size() == 3);

  // Again, even with different text: nothing is added, the existing generation is returned.
  const auto again = outbox.enqueue("monthly", "2026-11", "cadre", messages(2, "x"), T0 + 5, false);
  CHECK_FALSE(again.created);
  CHECK(again.generation == 1);
  CHECK(again.ids == first.ids);
  CHECK(outbox.list().size() == 3);

  // Another ledger or period is another bulletin.
  CHECK(outbox.enqueue("monthly", "2026-11", "health", messages(1), T0, false).created);
  CHECK(outbox.enqueue("monthly", "2026-10", "cadre", messages(1), T0, false).created);
  CHECK(outbox.enqueue("quarterly", "2026-Q4", "cadre", messages(1), T0, false).created);

  // Part 1 is sent, parts 2 and 3 are still pending when --force posts it again.
  auto c = outbox.claim(first.ids[0], T0, 20, 60);
  REQUIRE(c.outcome == ClaimResult::Outcome::Claimed);
  REQUIRE(outbox.finish_sent(first.ids[0], c.claim_id, T0 + 1));
  const auto forced = outbox.enqueue("monthly", "2026-11", "cadre", messages(2, "f"), T0 + 9, true);
  CHECK(forced.created);
  CHECK(forced.generation == 2);
  CHECK(forced.ids.size() == 2);
  CHECK(outbox.part(first.ids[0])->status == OutboxStatus::Sent);
  CHECK(outbox.part(first.ids[1])->status == OutboxStatus::Cancelled);
  CHECK(outbox.part(first.ids[2])->status == OutboxStatus::Cancelled);
  const auto gen2 = outbox.parts_of("monthly", "2026-11", "cadre", 2);
  REQUIRE(gen2.size() == 2);
  CHECK(gen2[0].part == 1);
  CHECK(gen2[1].part == 2);
  CHECK(gen2[1].parts == 2);
  CHECK(gen2[0].body.find("f1") != std::string::npos);
}

TEST_CASE("Each group has its own generations: once per group, --force per group", "[storage]") {
  Store store(":memory:");
  Outbox outbox(store);
  const auto a = outbox.enqueue("monthly", "2026-11", "health", messages(2), T0, false, "A");
  const auto b = outbox.enqueue("monthly", "2026-11", "health", messages(2), T0, false, "B");
  const auto implicit = outbox.enqueue("monthly", "2026-11", "health", messages(1), T0, false);
  CHECK(a.created);
  CHECK(b.created);
  CHECK(implicit.created);
  CHECK(a.generation == 1);
  CHECK(b.generation == 1);
  CHECK_FALSE(outbox.enqueue("monthly", "2026-11", "health", messages(2), T0, false, "A").created);
  const auto forced = outbox.enqueue("monthly", "2026-11", "health", messages(2), T0, true, "B");
  CHECK(forced.generation == 2);
  // Forcing B cancels B's pending parts only.
  for (int64_t id : a.ids) CHECK(outbox.part(id)->status == OutboxStatus::Pending);
  for (int64_t id : b.ids) CHECK(outbox.part(id)->status == OutboxStatus::Cancelled);
  CHECK(outbox.part(implicit.ids[0])->status == OutboxStatus::Pending);
  CHECK(outbox.part(a.ids[0])->group == "A");
  CHECK(outbox.part(implicit.ids[0])->group.empty());
  CHECK(outbox.parts_of("monthly", "2026-11", "health", 2, "B").size() == 2);
  CHECK(outbox.parts_of("monthly", "2026-11", "health", 2, "A").empty());
  CHECK(outbox.parts_of("monthly", "2026-11", "health", 1).size() == 1);
}

TEST_CASE("Migration 9: outbox rows get their group (''), every row, status and attempt kept",
          "[storage]") {
  TempDir dir;
  const auto path = dir.file("bangfu.db");
  { Store store(path); }
  {
    // Put the outbox back as migration 7 left it (version 8), with rows and attempts.
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    raw.exec("PRAGMA foreign_keys = ON");
    raw.exec(R"sql(
DROP TABLE outbox_attempts;
DROP TABLE outbox;
CREATE TABLE outbox (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('monthly', 'quarterly', 'reminder')),
  period TEXT NOT NULL,
  ledger TEXT NOT NULL CHECK (ledger IN ('cadre', 'health', 'education', 'all')),
  generation INTEGER NOT NULL CHECK (generation >= 1),
  part INTEGER NOT NULL, parts INTEGER NOT NULL,
  msgtype TEXT NOT NULL CHECK (msgtype IN ('markdown', 'text', 'image')),
  body TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
    ('pending', 'sending', 'sent', 'failed', 'unknown', 'cancelled')),
  attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL,
  claim_id INTEGER, claimed_at INTEGER, last_error TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL, sent_at INTEGER,
  CHECK (part BETWEEN 1 AND parts), UNIQUE (kind, period, ledger, part, generation));
CREATE INDEX outbox_open ON outbox (id) WHERE status IN ('pending', 'sending');
CREATE TABLE outbox_attempts (id INTEGER PRIMARY KEY,
  outbox_id INTEGER NOT NULL REFERENCES outbox (id), started_at INTEGER NOT NULL,
  finished_at INTEGER, outcome TEXT);
CREATE INDEX outbox_attempts_started ON outbox_attempts (started_at);
INSERT INTO outbox VALUES (7, 'monthly', '2026-11', 'cadre', 1, 1, 2, 'markdown', '{}', 'sent',
  1, 100, 3, 100, '', 90, 101);
INSERT INTO outbox VALUES (9, 'monthly', '2026-11', 'cadre', 1, 2, 2, 'image', '{}', 'pending',
  1, 150, 4, 102, 'HTTP 502', 90, NULL);
INSERT INTO outbox_attempts VALUES (3, 7, 100, 101, 'sent'), (4, 9, 102, 103, 'retry');
PRAGMA user_version = 8;
)sql");
  }
  Store store(path);
  CHECK(store.schema_version() == Store(":memory:").schema_version());
  Outbox outbox(store);
  const auto rows = outbox.list();
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].id == 7);
  CHECK(rows[0].status == OutboxStatus::Sent);
  CHECK(rows[0].sent_at == 101);
  CHECK(rows[1].id == 9);
  CHECK(rows[1].msgtype == "image");
  CHECK(rows[1].status == OutboxStatus::Pending);
  CHECK(rows[1].last_error == "HTTP 502");
  CHECK(rows[1].next_attempt_at == 150);
  for (const auto& r : rows) CHECK(r.group.empty());  // the one group of wecom.webhook_url
  CHECK(outbox.head()->id == 9);                      // still queued
  // Queued before groups: the same bulletin is not queued again for that group, but is for a
  // named one.
  CHECK_FALSE(outbox.enqueue("monthly", "2026-11", "cadre", messages(1), 300, false).created);
  CHECK(outbox.enqueue("monthly", "2026-11", "cadre", messages(1), 300, false, "A").created);
  SQLite::Database raw(path, SQLite::OPEN_READONLY);
  CHECK(raw.execAndGet("SELECT count(*) FROM outbox_attempts").getInt() == 2);
  SQLite::Statement fk(raw, "PRAGMA foreign_key_check");
  CHECK_FALSE(fk.executeStep());
}

TEST_CASE("A part is claimed once, then finished by the claim that holds it", "[storage]") {
  Store store(":memory:");
  Outbox outbox(store);
  const auto q = outbox.enqueue("monthly", "2026-11", "cadre", messages(2), T0, false);
  REQUIRE(outbox.head()->id == q.ids[0]);

  const auto c1 = outbox.claim(q.ids[0], T0, 20, 60);
  REQUIRE(c1.outcome == ClaimResult::Outcome::Claimed);
  // A second claimer (another process) loses.
  CHECK(outbox.claim(q.ids[0], T0, 20, 60).outcome == ClaimResult::Outcome::NotPending);
  auto p = *outbox.part(q.ids[0]);
  CHECK(p.status == OutboxStatus::Sending);
  CHECK(p.attempts == 1);
  CHECK(p.claim_id == c1.claim_id);
  CHECK(p.claimed_at == T0);
  // The head stays on the part in flight, so part 2 cannot overtake it.
  CHECK(outbox.head()->id == q.ids[0]);

  // Rate limited: retry later, keeping the error.
  CHECK(outbox.finish_retry(q.ids[0], c1.claim_id, T0 + 30, "errcode 45009: freq", T0 + 1));
  p = *outbox.part(q.ids[0]);
  CHECK(p.status == OutboxStatus::Pending);
  CHECK(p.next_attempt_at == T0 + 30);
  CHECK(p.last_error == "errcode 45009: freq");
  // A stale claim id no longer finishes anything.
  CHECK_FALSE(outbox.finish_sent(q.ids[0], c1.claim_id, T0 + 2));

  const auto c2 = outbox.claim(q.ids[0], T0 + 30, 20, 60);
  REQUIRE(c2.outcome == ClaimResult::Outcome::Claimed);
  CHECK(c2.claim_id != c1.claim_id);
  CHECK(outbox.finish_sent(q.ids[0], c2.claim_id, T0 + 31));
  p = *outbox.part(q.ids[0]);
  CHECK(p.status == OutboxStatus::Sent);
  CHECK(p.attempts == 2);
  CHECK(p.sent_at == T0 + 31);
  CHECK(p.last_error.empty());
  // Sent is final: no more claims.
  CHECK(outbox.claim(q.ids[0], T0 + 40, 20, 60).outcome == ClaimResult::Outcome::NotPending);
  CHECK(outbox.head()->id == q.ids[1]);

  const auto c3 = outbox.claim(q.ids[1], T0 + 40, 20, 60);
  CHECK(outbox.finish_failed(q.ids[1], c3.claim_id, "errcode 93000: invalid webhook url", T0));
  CHECK(outbox.part(q.ids[1])->status == OutboxStatus::Failed);
  CHECK_FALSE(outbox.head());
  // Failed parts can be queued again by an operator, attempts reset.
  CHECK(outbox.requeue(q.ids[1], T0 + 100));
  p = *outbox.part(q.ids[1]);
  CHECK(p.status == OutboxStatus::Pending);
  CHECK(p.attempts == 0);
  CHECK(p.next_attempt_at == T0 + 100);
  CHECK_FALSE(outbox.requeue(q.ids[0], T0));  // a sent part is never resent
  CHECK_FALSE(outbox.requeue(9999, T0));
}

TEST_CASE("At most N claims start in a rolling window", "[storage]") {
  Store store(":memory:");
  Outbox outbox(store);
  const auto q = outbox.enqueue("reminder", "2026-11-20", "all", messages(5), T0, false);
  // Claims at T0, T0+10, T0+20 with a budget of 3 per 60 s.
  for (int i = 0; i < 3; ++i) {
    const auto c = outbox.claim(q.ids[static_cast<size_t>(i)], T0 + 10 * i, 3, 60);
    REQUIRE(c.outcome == ClaimResult::Outcome::Claimed);
    REQUIRE(outbox.finish_sent(q.ids[static_cast<size_t>(i)], c.claim_id, T0 + 10 * i));
  }
  const auto limited = outbox.claim(q.ids[3], T0 + 30, 3, 60);
  CHECK(limited.outcome == ClaimResult::Outcome::RateLimited);
  CHECK(limited.retry_at == T0 + 60);  // when the claim at T0 leaves the window
  CHECK(outbox.part(q.ids[3])->status == OutboxStatus::Pending);
  CHECK(outbox.part(q.ids[3])->attempts == 0);
  CHECK(outbox.claim(q.ids[3], T0 + 59, 3, 60).outcome == ClaimResult::Outcome::RateLimited);
  CHECK(outbox.claim(q.ids[3], T0 + 60, 3, 60).outcome == ClaimResult::Outcome::Claimed);
}

TEST_CASE("A claim left by a dead process becomes unknown and is not resent", "[storage]") {
  TempDir dir;
  const auto path = dir.file("bangfu.db");
  int64_t id = 0, claim = 0;
  {
    Store store(path);
    Outbox outbox(store);
    const auto q = outbox.enqueue("monthly", "2026-11", "cadre", messages(2), T0, false);
    id = q.ids[0];
    const auto c = outbox.claim(id, T0, 20, 60);
    REQUIRE(c.outcome == ClaimResult::Outcome::Claimed);
    claim = c.claim_id;
    // The process dies here, during the POST: nothing else is written.
  }
  Store store(path);
  Outbox outbox(store);
  CHECK(outbox.part(id)->status == OutboxStatus::Sending);
  CHECK(outbox.expire_claims(T0 - 1, T0 + 10).empty());  // not old enough yet
  const auto expired = outbox.expire_claims(T0 + 1, T0 + 200);
  REQUIRE(expired.size() == 1);
  CHECK(expired[0].id == id);
  const auto p = *outbox.part(id);
  CHECK(p.status == OutboxStatus::Unknown);
  CHECK_FALSE(p.last_error.empty());
  CHECK(outbox.head()->part == 2);  // the queue moves on; the unknown part is not retried
  CHECK(outbox.claim(id, T0 + 300, 20, 60).outcome == ClaimResult::Outcome::NotPending);
  // If the answer does arrive late (a live process), errcode 0 is still recorded as sent.
  CHECK(outbox.finish_sent(id, claim, T0 + 301));
  CHECK(outbox.part(id)->status == OutboxStatus::Sent);
}

TEST_CASE("Scheduler state: first run is stored once; keys by prefix", "[storage]") {
  TempDir dir;
  const auto path = dir.file("bangfu.db");
  {
    Store store(path);
    Outbox outbox(store);
    CHECK_FALSE(outbox.state("first_run"));
    CHECK(outbox.state_init("first_run", "100", 100) == "100");
    CHECK(outbox.state_init("first_run", "200", 200) == "100");
    outbox.set_state("fired:monthly:2026-11", "300", 300);
    outbox.set_state("fired:reminder:2026-11-20", "301", 301);
    outbox.set_state("fired:monthly:2026-11", "302", 302);
  }
  Store store(path);
  Outbox outbox(store);
  CHECK(outbox.state("first_run") == "100");
  const auto fired = outbox.states("fired:");
  REQUIRE(fired.size() == 2);
  CHECK(fired.at("fired:monthly:2026-11") == "302");
  CHECK(fired.at("fired:reminder:2026-11-20") == "301");
  CHECK(outbox.states("fired:monthly").size() == 1);
}

TEST_CASE("The outbox rejects rows the schema does not allow", "[storage]") {
  Store store(":memory:");
  Outbox outbox(store);
  CHECK_THROWS_AS(outbox.enqueue("weekly", "2026-11", "cadre", messages(1), T0, false),
                  SQLite::Exception);
  CHECK_THROWS_AS(outbox.enqueue("monthly", "2026-11", "everyone", messages(1), T0, false),
                  SQLite::Exception);
  CHECK_THROWS_AS(outbox.enqueue("monthly", "2026-11", "cadre", {{"voice", "{}"}}, T0, false),
                  SQLite::Exception);
  CHECK_THROWS_AS(outbox.enqueue("monthly", "2026-11", "cadre", {}, T0, false),
                  std::invalid_argument);
  CHECK(outbox.list().empty());  // each failed enqueue rolled back whole
}
