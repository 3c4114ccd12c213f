#include <catch2/catch.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "storage/checkpointer.h"
#include "tests/support/temp_dir.h"

using bangfu_test::TempDir;
using storage::Checkpointer;

namespace {

int64_t wal_bytes(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path + "-wal", ec);
  return ec ? 0 : static_cast<int64_t>(n);
}

}  // namespace

TEST_CASE("the checkpointer copies the WAL back and it starts over under continuous commits",
          "[storage][wal]") {
  TempDir dir;
  const std::string path = dir.file("ckpt.db");
  // A busy timeout as the Store's writer has: a transaction that begins while the thread's
  // checkpoint holds one of the WAL's locks waits for it instead of failing (seen under TSan).
  SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE, 5000);
  REQUIRE(db.execAndGet("PRAGMA journal_mode = WAL").getString() == "wal");
  // Commits without an fsync each: far quicker than a pass (which ends with one), so the thread
  // alone never finds the WAL wholly copied between two commits.
  db.exec("PRAGMA synchronous = NORMAL");
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
  const int64_t page = db.execAndGet("PRAGMA page_size").getInt64();
  constexpr int kBackground = 40, kTail = 200;
  int64_t most = 0;
  Checkpointer::Counts counts;
  {
    Checkpointer checkpointer(path, db, kBackground, kTail);
    SQLite::Statement insert(db, "INSERT INTO t (body) VALUES (randomblob(1500))");
    // One commit after another, never a pause for the thread to catch up in.
    for (int i = 0; i < 3000; ++i) {
      insert.exec();
      insert.reset();
      most = std::max(most, wal_bytes(path));
    }
    counts = checkpointer.counts();
  }
  CHECK(counts.background > 0);
  CHECK(counts.tail > 0);
  // The WAL file keeps its longest length. Without starting over it would hold every commit,
  // some 6,000 pages; it stays near kTail plus what came in during the thread's last pass
  // (400-800 pages here; the bound leaves room for a slow disk).
  CAPTURE(most / (page + 24));
  CHECK(most < 3000 * (page + 24));
  SQLite::Database other(path, SQLite::OPEN_READONLY);
  CHECK(other.execAndGet("SELECT count(*) FROM t").getInt() == 3000);
  CHECK(other.execAndGet("PRAGMA integrity_check").getString() == "ok");
  // After it is gone, commits go on (no hook into a destroyed object).
  db.exec("INSERT INTO t (body) VALUES (randomblob(10))");
  CHECK(db.execAndGet("SELECT count(*) FROM t").getInt() == 3001);
}
