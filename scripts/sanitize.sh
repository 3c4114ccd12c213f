#!/usr/bin/env bash
# The test suite under sanitizers (CI runs it from scripts/test.sh, after the normal suite),
# built with clang++ 14 at -O1 (under ASan, g++ 12 at -O2 -g spent 406 s on the long connection's
# coroutine file, clang 111 s; BOT_ASAN_CXX / BOT_TSAN_CXX choose another compiler):
#  1. AddressSanitizer + UndefinedBehaviorSanitizer (build-asan): every Catch2 test, the
#     integration tests against the instrumented binary (its leaks and UB fail the test: the
#     server must exit 0), and the fuzz corpus replays (fuzz.*: with clang these are the libFuzzer
#     binaries themselves, which scripts/fuzz.sh then runs from this build). The soak is left to
#     the normal build: it measures memory, which ASan inflates.
#  2. ThreadSanitizer (build-tsan): the storage tests (group commit's writer thread), the bot
#     tests (scheduler, delivery, outbox worker, the HTTP core), and the server's integration
#     tests (the HTTP core's event-loop threads and workers, the dispatcher, the store) against a
#     TSan-built binary.
#
#   scripts/sanitize.sh [asan|tsan]...     (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="$(nproc)"
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(asan tsan)

build() {  # DIR CXX SANITIZERS FUZZ(ON|OFF) [targets...]
  local dir="$1" cxx="$2" san="$3" fuzz="$4"
  shift 4
  # -O1 and line tables only: what a sanitizer report needs (file:line in every frame), and
  # quicker to build and to run than -O2 -g.
  local debug="-g1"
  [[ "$cxx" == *clang* ]] && debug="-gline-tables-only"
  CXX="$cxx" cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 $debug -DNDEBUG" -DBOT_WERROR=ON \
    -DBOT_BUILD_TESTS=ON -DBOT_BUILD_FUZZ="$fuzz" -DBOT_SANITIZE="$san" >/dev/null
  if [ $# -gt 0 ]; then
    cmake --build "$dir" -j"$jobs" --target "$@"
  else
    cmake --build "$dir" -j"$jobs"
  fi
}

for part in "${parts[@]}"; do
  case "$part" in
    asan)
      echo "== ASan + UBSan"
      build build-asan "${BOT_ASAN_CXX:-clang++}" address,undefined ON
      ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:strict_string_checks=1" \
      LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp" \
      UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
        ctest --test-dir build-asan --output-on-failure -j"$jobs" -E '^integration\.soak$'
      ;;
    tsan)
      # cpp-httplib is Debian's uninstrumented shared library: TSan sees its locks (pthread
      # interceptors) but not its own memory accesses, so races inside it would go unseen.
      echo "== TSan"
      build build-tsan "${BOT_TSAN_CXX:-clang++}" thread OFF bangfu bangfu_storage_tests bangfu_bot_tests
      export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp"
      build-tsan/tests/storage/bangfu_storage_tests
      build-tsan/tests/bot/bangfu_bot_tests
      ctest --test-dir build-tsan --output-on-failure -j"$jobs" \
        -R '^integration\.(wecom_callback|wecom_ws|durability|delivery|groups|http_core)$'
      ;;
    *) echo "usage: scripts/sanitize.sh [asan|tsan]..." >&2; exit 2 ;;
  esac
done
