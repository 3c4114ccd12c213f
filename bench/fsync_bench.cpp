// What one group commit's fsync costs on the disk a benchmark runs on: N pages written into a
// file that already exists (as SQLite writes WAL frames over a restarted WAL), then fdatasync.
// Google Benchmark's CPU column is the thread's user + system time, so it shows what the call
// costs the machine besides the wait (on a virtual disk, the notification to the host is
// counted there). The file goes in BANGFU_BENCH_DIR, else the current directory: run it where
// the database would live. See BENCHMARKS.md §9, "The fsync's price per call".
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kFileBytes = std::size_t{16} << 20;  // the writes cycle through 16 MiB

void BM_WalSync(benchmark::State& state) {
  const char* dir = std::getenv("BANGFU_BENCH_DIR");
  const std::string path = std::string(dir ? dir : ".") + "/bangfu-fsync-bench.tmp";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    state.SkipWithError(("cannot create " + path).c_str());
    return;
  }
  const std::vector<char> zeros(kFileBytes, 0);
  const bool ready =
      ::pwrite(fd, zeros.data(), zeros.size(), 0) == static_cast<ssize_t>(zeros.size()) &&
      ::fsync(fd) == 0;
  const auto pages = static_cast<std::size_t>(state.range(0));
  const std::vector<char> frames(pages * kPage, 7);
  off_t at = 0;
  bool failed = !ready;
  for (auto _ : state) {
    if (failed) break;
    if (at + static_cast<off_t>(frames.size()) > static_cast<off_t>(kFileBytes)) at = 0;
    failed =
        ::pwrite(fd, frames.data(), frames.size(), at) != static_cast<ssize_t>(frames.size()) ||
        ::fdatasync(fd) != 0;
    at += static_cast<off_t>(frames.size());
  }
  ::close(fd);
  ::unlink(path.c_str());
  if (failed) state.SkipWithError(("write or fdatasync failed on " + path).c_str());
  state.counters["pages"] = static_cast<double>(pages);
}
BENCHMARK(BM_WalSync)->Arg(1)->Arg(8)->Arg(16)->Arg(32)->Arg(64)->Iterations(1000);

}  // namespace
