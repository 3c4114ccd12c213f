#include <catch2/catch.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "storage/checkpointer.h"
#include "tests/support/temp_dir.h"
#include "tests/support/threads.h"

using bangfu_test::own_nice;
using bangfu_test::TempDir;
using bangfu_test::thread_nice;
using storage::Checkpointer;

namespace {

int64_t wal_bytes(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path + "-wal", ec);
  return ec ? 0 : static_cast<int64_t>(n);
}

// Appends `commits` rows of 1,500 bytes to table t, one transaction each.
void insert_rows(SQLite::Database& db, int commits, const std::function<void()>& after_each) {
  SQLite::Statement insert(db, "INSERT INTO t (body) VALUES (randomblob(1500))");
  for (int i = 0; i < commits; ++i) {
    insert.exec();
    insert.reset();
    after_each();
  }
}

SQLite::Database open_wal(const std::string& path) {
  // A busy timeout as the Store's writer has: a transaction that begins while the thread's
  // checkpoint holds one of the WAL's locks waits for it instead of failing (seen under TSan).
  SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE, 5000);
  REQUIRE(db.execAndGet("PRAGMA journal_mode = WAL").getString() == "wal");
  // Commits without an fsync each: far quicker than a pass (which ends with one), so the thread
  // alone never finds the WAL wholly copied between two commits.
  db.exec("PRAGMA synchronous = NORMAL");
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
  return db;
}

}  // namespace

TEST_CASE("the checkpointer copies the WAL back and it starts over under continuous commits",
          "[storage][wal]") {
  TempDir dir;
  const std::string path = dir.file("ckpt.db");
  SQLite::Database db = open_wal(path);
  const int64_t page = db.execAndGet("PRAGMA page_size").getInt64();
  constexpr int kBackground = 40, kTail = 200;
  int64_t most = 0;
  int commits = 0;
  Checkpointer::Counts counts;
  {
    Checkpointer checkpointer(path, db, kBackground, kTail);
    // One commit after another, never a pause for the thread to catch up in, until commits have
    // run both before and after a tail pass (each is followed by the WAL starting over). On a
    // loaded machine the thread may not have run by then: later batches leave it a moment.
    while (commits < 3000 || (checkpointer.counts().tail < 2 && commits < 10000)) {
      if (commits >= 3000) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      insert_rows(db, 100, [&] { most = std::max(most, wal_bytes(path)); });
      commits += 100;
    }
    counts = checkpointer.counts();
  }
  CHECK(counts.background > 0);
  REQUIRE(counts.tail >= 2);
  // The same commits without any checkpoint: the WAL holds every one of them.
  const std::string control_path = dir.file("control.db");
  int64_t all = 0;
  {
    SQLite::Database control = open_wal(control_path);
    control.exec("PRAGMA wal_autocheckpoint = 0");
    insert_rows(control, commits, [] {});
    all = wal_bytes(control_path);
  }
  // The WAL file keeps its longest length, so it is shorter than the control's only if the WAL
  // started over. How much shorter depends on the thread's speed (near kTail plus one pass's
  // commits on a quiet machine), so only the fact is asserted.
  CAPTURE(commits, most / (page + 24), all / (page + 24));
  CHECK(most < all);
  SQLite::Database other(path, SQLite::OPEN_READONLY);
  CHECK(other.execAndGet("SELECT count(*) FROM t").getInt() == commits);
  CHECK(other.execAndGet("PRAGMA integrity_check").getString() == "ok");
  // After it is gone, commits go on (no hook into a destroyed object).
  db.exec("INSERT INTO t (body) VALUES (randomblob(10))");
  CHECK(db.execAndGet("SELECT count(*) FROM t").getInt() == commits + 1);
}

TEST_CASE("the checkpointer's thread runs nicer than the thread that made it", "[storage][wal]") {
  TempDir dir;
  const std::string path = dir.file("nice.db");
  SQLite::Database db = open_wal(path);
  const int own = own_nice();
  Checkpointer checkpointer(path, db);
  // The thread lowers itself as it starts: wait for it (a state, not a time, is checked).
  std::optional<int> nice;
  for (int i = 0; i < 200; ++i) {
    nice = thread_nice("bangfu-ckpt");
    if (nice && *nice != own) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(nice);
  CHECK(*nice == std::min(own + Checkpointer::kThreadNice, 19));
  // This thread (the Store's constructing one) keeps its own.
  CHECK(own_nice() == own);
}
