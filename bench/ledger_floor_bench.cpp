// The least a durable ledger can spend per check-in on this machine under issue 11's storage
// rules (WAL, synchronous=FULL, group commit): per message, the raw message with its unique
// msgid and its answer, and one check-in row with one index; N messages per transaction, the
// WAL's writes gathered as the service gathers them (storage/wal_gather.h), SQLite's own
// checkpoints in the same thread. No other index, no problem, no count, no template: bangfu's
// writer does all of this and more, so what this costs is a floor under its CPU per request,
// not an estimate of it. The table starts with 100,000 messages (the simulator's scale-1 district
// writes about 14,700 in six months), so its B-trees are as deep as a district's after a few
// years.
//
// Google Benchmark's CPU column is the thread's user + system time for one group (the fsync's
// CPU included, not its wait); `cpu_per_message` divides it by N. The database goes in
// BANGFU_BENCH_DIR, else the current directory: run it on the disk a database would use.
// See BENCHMARKS.md §9, "What 60 µs leaves".
#include <benchmark/benchmark.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "storage/wal_gather.h"

namespace {

constexpr int kStartingMessages = 100'000;

// A helper's check-in as WeCom delivers it (about 60 bytes of text) and the bot's answer.
const std::string kText = "@帮扶助手 今天去了张德福家，送去棉被，聊了聊收成";
const std::string kAnswer = "已记下：张*福户 12月7日 走访。本月已走访 1 次。有问题可直接回复。";

struct Ledger {
  SQLite::Database& db;
  SQLite::Statement inbound, checkin, begin, commit;
  std::uint64_t next = 0;  // the next message's number (its msgid is made from it)

  explicit Ledger(SQLite::Database& database)
      : db(database),
        inbound(db,
                "INSERT INTO inbound(msgid, userid, received_at, text, reply) "
                "VALUES (?, ?, ?, ?, ?)"),
        checkin(db,
                "INSERT INTO checkins(inbound_id, pairing_id, visit_date, mode) "
                "VALUES (?, ?, ?, 'visit')"),
        begin(db, "BEGIN IMMEDIATE"),
        commit(db, "COMMIT") {}

  // One message and its check-in. msgids are spread over the index as WeCom's random ones are,
  // and so are the pairings (the next helper to write is anyone).
  void add() {
    const std::uint64_t n = next++;
    const std::uint64_t h = n * 0x9E3779B97F4A7C15ULL;
    char msgid[40];
    std::snprintf(msgid, sizeof msgid, "%016llx-%llu", static_cast<unsigned long long>(h),
                  static_cast<unsigned long long>(n));
    inbound.bind(1, msgid);
    inbound.bind(2, "c00123");
    inbound.bind(3, static_cast<std::int64_t>(1'780'000'000 + n));
    inbound.bindNoCopy(4, kText);
    inbound.bindNoCopy(5, kAnswer);
    inbound.exec();
    inbound.reset();
    checkin.bind(1, static_cast<std::int64_t>(db.getLastInsertRowid()));
    checkin.bind(2, static_cast<std::int64_t>((h >> 20) % 1'706));
    checkin.bind(3, "2026-12-07");
    checkin.exec();
    checkin.reset();
  }
  void group(int n) {
    begin.exec();
    begin.reset();
    for (int i = 0; i < n; ++i) add();
    commit.exec();
    commit.reset();
  }
};

void BM_LedgerFloor(benchmark::State& state) {
  const char* dir = std::getenv("BANGFU_BENCH_DIR");
  const std::string path = std::string(dir ? dir : ".") + "/bangfu-ledger-floor.db";
  auto remove_database = [&] {
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
  };
  remove_database();  // a run stopped midway may have left one
  const int per_group = static_cast<int>(state.range(0));
  {
    storage::WalWriteGather gather;  // outlives the connection, as the VFS requires
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE, 0, gather.name());
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec(
        "CREATE TABLE inbound(id INTEGER PRIMARY KEY, msgid TEXT NOT NULL UNIQUE, userid TEXT "
        "NOT NULL, received_at INTEGER NOT NULL, text TEXT NOT NULL, reply TEXT);"
        "CREATE TABLE checkins(id INTEGER PRIMARY KEY, inbound_id INTEGER NOT NULL, pairing_id "
        "INTEGER NOT NULL, visit_date TEXT NOT NULL, mode TEXT NOT NULL);"
        "CREATE INDEX checkins_pairing ON checkins(pairing_id, visit_date);");
    Ledger ledger(db);
    ledger.group(kStartingMessages);  // one transaction: the table's history, not measured
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    for (auto _ : state) ledger.group(per_group);
  }
  remove_database();
  state.counters["cpu_per_message"] = benchmark::Counter(
      static_cast<double>(per_group),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
// Groups of 8: what 32 connections give the service's group commit (7.2–7.7 a group in §9).
BENCHMARK(BM_LedgerFloor)->Arg(1)->Arg(8)->Arg(16)->Arg(32)->Iterations(3000);

}  // namespace
