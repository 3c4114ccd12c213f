// Roster import: parse the CSV, then import it into a real SQLite file (WAL, synchronous=FULL,
// as the service opens it), at scale 1, 10 and 100. rows/s counts pairings per wall-clock second
// (fsync included).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "simulator/simulate.h"
#include "storage/roster_csv.h"
#include "storage/store.h"

namespace {

// Generated before each benchmark's timed loop (about a second at scale 100).
std::string roster(int scale) {
  return simulator::roster_csv(simulator::simulate_roster(simulator::RosterOptions{scale}));
}

std::filesystem::path fresh_db() {
  const auto dir =
      std::filesystem::temp_directory_path() / ("bangfu-bench-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir / "bench.db";
}

void BM_RosterParse(benchmark::State& state) {
  const std::string csv = roster(static_cast<int>(state.range(0)));
  std::size_t rows = 0;
  for (auto _ : state) {
    auto parsed = storage::parse_roster_csv(csv);
    if (!parsed.errors.empty()) state.SkipWithError("roster has errors");
    rows = parsed.rows.size();
    benchmark::DoNotOptimize(parsed);
  }
  state.counters["rows"] = static_cast<double>(rows);
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(rows * state.iterations()),
                                                benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RosterParse)->Arg(1)->Arg(10)->Arg(100)->Unit(benchmark::kMillisecond);

// Parse + import into a new database file each iteration (the first import of a district).
void BM_RosterImport(benchmark::State& state) {
  const std::string csv = roster(static_cast<int>(state.range(0)));
  std::size_t rows = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const auto path = fresh_db();
    state.ResumeTiming();
    {
      storage::Store store(path.string());
      const auto parsed = storage::parse_roster_csv(csv);
      const auto sum = store.import_roster(parsed.rows, storage::Date{2026, 10, 1});
      rows = parsed.rows.size();
      if (static_cast<std::size_t>(sum.inserted) != rows) state.SkipWithError("not all inserted");
    }
    state.PauseTiming();
    std::filesystem::remove_all(path.parent_path());
    state.ResumeTiming();
  }
  state.counters["rows"] = static_cast<double>(rows);
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(rows * state.iterations()),
                                                benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RosterImport)->Arg(1)->Arg(10)->Arg(100)->Unit(benchmark::kMillisecond)->UseRealTime();

// Importing the same roster again (the monthly re-import: everything unchanged).
void BM_RosterReimport(benchmark::State& state) {
  const std::string csv = roster(static_cast<int>(state.range(0)));
  const auto path = fresh_db();
  storage::Store store(path.string());
  const auto rows = storage::parse_roster_csv(csv).rows;
  store.import_roster(rows, storage::Date{2026, 10, 1});
  for (auto _ : state) {
    const auto parsed = storage::parse_roster_csv(csv);
    const auto sum = store.import_roster(parsed.rows, storage::Date{2026, 11, 1});
    if (static_cast<std::size_t>(sum.unchanged) != rows.size()) state.SkipWithError("changed");
  }
  state.counters["rows/s"] = benchmark::Counter(
      static_cast<double>(rows.size() * state.iterations()), benchmark::Counter::kIsRate);
  std::filesystem::remove_all(path.parent_path());
}
BENCHMARK(BM_RosterReimport)->Arg(1)->Arg(100)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
