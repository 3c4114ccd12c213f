#include <catch2/catch.hpp>

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "storage/wal_gather.h"
#include "tests/support/temp_dir.h"

using bangfu_test::TempDir;
using storage::WalWriteGather;

namespace {

void open_wal(SQLite::Database& db, const std::string& synchronous) {
  REQUIRE(db.execAndGet("PRAGMA journal_mode = WAL").getString() == "wal");
  db.exec("PRAGMA synchronous = " + synchronous);
}

// Rows and bytes of t as a connection through the default VFS reads them.
std::pair<int64_t, int64_t> seen_by_other(const std::string& path) {
  SQLite::Database other(path, SQLite::OPEN_READONLY);
  SQLite::Statement q(other, "SELECT count(*), coalesce(sum(length(body)), 0) FROM t");
  REQUIRE(q.executeStep());
  return {q.getColumn(0).getInt64(), q.getColumn(1).getInt64()};
}

}  // namespace

TEST_CASE("frames gathered for the WAL are in the file before another connection sees them",
          "[storage][wal]") {
  // NORMAL and OFF commit without syncing the WAL: then only the shared-memory barrier writes
  // the gathered frames before they are published.
  const std::string synchronous = GENERATE("FULL", "NORMAL", "OFF");
  TempDir dir;
  const std::string path = dir.file("gather.db");
  WalWriteGather gather;
  SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE, 0, gather.name());
  open_wal(db, synchronous);
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
  SQLite::Statement insert(db, "INSERT INTO t (body) VALUES (randomblob(?1))");
  int64_t rows = 0, bytes = 0;
  // Small rows (a frame or two per commit) and rows of 70 to 300 KiB (more than one piece).
  for (int i = 0; i < 40; ++i) {
    const int size = i % 8 == 7 ? 70'000 + i * 6'000 : 100 + i * 37;
    insert.bind(1, size);
    insert.exec();
    insert.reset();
    ++rows;
    bytes += size;
    CHECK(seen_by_other(path) == std::make_pair(rows, bytes));
  }
  CHECK(db.execAndGet("PRAGMA integrity_check").getString() == "ok");
}

TEST_CASE("a transaction larger than what the WAL VFS gathers reads back whole", "[storage][wal]") {
  TempDir dir;
  const std::string path = dir.file("big.db");
  WalWriteGather gather;
  SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE, 0, gather.name());
  open_wal(db, "FULL");
  // A page cache of 64 pages: the transaction spills frames into the WAL before its commit and
  // reads them back from there.
  db.exec("PRAGMA cache_size = 64");
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
  {
    SQLite::Transaction tx(db);
    for (int i = 0; i < 60; ++i) db.exec("INSERT INTO t (body) VALUES (randomblob(50000))");
    db.exec("UPDATE t SET body = zeroblob(60000) WHERE id % 3 = 0");
    tx.commit();
  }
  const int64_t bytes = 40 * 50'000 + 20 * 60'000;
  CHECK(db.execAndGet("SELECT sum(length(body)) FROM t").getInt64() == bytes);
  CHECK(seen_by_other(path) == std::make_pair(int64_t{60}, bytes));
  CHECK(db.execAndGet("PRAGMA integrity_check").getString() == "ok");
  // A checkpoint copies the frames into the database file, read back through another VFS.
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  CHECK(seen_by_other(path) == std::make_pair(int64_t{60}, bytes));
}

TEST_CASE("what a process committed through the WAL VFS is on file when it dies",
          "[storage][wal]") {
  const std::string synchronous = GENERATE("FULL", "NORMAL");
  TempDir dir;
  const std::string path = dir.file("crash.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    open_wal(db, "FULL");
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
  }
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Commits and vanishes without closing: no checkpoint, the WAL holds everything.
    // _exit: no destructor runs (the connection is never closed) and Catch2 does not go on in
    // the child.
    try {
      WalWriteGather gather;
      SQLite::Database db(path, SQLite::OPEN_READWRITE, 0, gather.name());
      db.exec("PRAGMA synchronous = " + synchronous);
      for (int i = 0; i < 25; ++i) db.exec("INSERT INTO t (body) VALUES (randomblob(3000))");
      _exit(0);
    } catch (...) {
      _exit(1);
    }
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  CHECK(seen_by_other(path) == std::make_pair(int64_t{25}, int64_t{25 * 3000}));
}

TEST_CASE("the WAL VFS is registered while it lives", "[storage][wal]") {
  std::string name;
  {
    WalWriteGather a, b;
    name = a.name();
    CHECK(a.name() != b.name());
    CHECK(sqlite3_vfs_find(name.c_str()) != nullptr);
  }
  CHECK(sqlite3_vfs_find(name.c_str()) == nullptr);
}
