#!/usr/bin/env bash
# Fuzzes bangfu's input readers with libFuzzer (clang 14, ASan + UBSan): message understanding,
# the roster CSV reader, the WeCom envelope and decryption, config loading, template rendering.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]    SECONDS per target (default 20, as in CI)
#
# Longer by hand: `scripts/fuzz.sh 1800` (half an hour each). Builds in build-fuzz (or
# $BOT_FUZZ_BUILD_DIR, used as it is when already configured for fuzzing). The seed corpus
# fuzz/corpus/<target> is read, never written; what the fuzzer finds is kept in
# <build>/fuzz-corpus/<target> for the next run. A crash, leak or hang (10 s per input) stops
# that target and fails the script, with the reproducer in <build>/fuzz-artifacts/<target>/: fix
# the bug, then copy the file into fuzz/corpus/<target>/ as a regression case (ctest's
# fuzz.<target> replays it in every sanitizer build).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(understand roster_csv callback config templates)
build="${BOT_FUZZ_BUILD_DIR:-build-fuzz}"
jobs="$(nproc)"

# A build dir already configured for libFuzzer (clang, fuzz targets, ASan + UBSan) is used as it
# is: CI points BOT_FUZZ_BUILD_DIR at scripts/sanitize.sh's build-asan, built moments before.
cache="$build/CMakeCache.txt"
if ! { [ -f "$cache" ] && grep -q '^CMAKE_CXX_COMPILER:.*clang' "$cache" &&
       grep -q '^BOT_BUILD_FUZZ:BOOL=ON' "$cache" &&
       grep -q '^BOT_SANITIZE:STRING=address,undefined' "$cache"; }; then
  CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" -DBOT_BUILD_FUZZ=ON \
    -DBOT_BUILD_TESTS=OFF -DBOT_SANITIZE=address,undefined >/dev/null
fi
if ! cmake --build "$build" -j"$jobs" --target "${targets[@]/#/fuzz_}" >"$build/fuzz-build.log" 2>&1; then
  tail -40 "$build/fuzz-build.log"
  exit 1
fi

# Inputs longer than any real one only slow the search: a chat message is at most a few KiB, a
# POST body 64 KiB (its encrypted content ~48 KiB), a roster a few hundred KiB (a prefix is enough).
declare -A max_len=([understand]=4096 [roster_csv]=65536 [callback]=65536 [config]=16384
                    [templates]=16384)
declare -A dict=([understand]=fuzz/understand.dict [roster_csv]=fuzz/roster_csv.dict
                 [callback]=fuzz/json.dict [config]=fuzz/json.dict
                 [templates]=fuzz/templates.dict)
# UBSan findings abort (and so count as crashes); leaks are findings too.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
status=0
summary=""
for t in "${targets[@]}"; do
  mkdir -p "$build/fuzz-corpus/$t" "$build/fuzz-artifacts/$t"
  log="$build/fuzz-$t.log"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="${max_len[$t]}"
        -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$t/")
  [ -n "${dict[$t]:-}" ] && args+=(-dict="${dict[$t]}")
  if "$build/fuzz/fuzz_$t" "${args[@]}" "$build/fuzz-corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1; then
    result="ok"
  else
    result="FAILED (see $log and $build/fuzz-artifacts/$t/)"
    status=1
    grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$log" | head -20 || true
  fi
  execs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}' | tail -1)"
  corpus="$(find "$build/fuzz-corpus/$t" -type f | wc -l)"
  line="fuzz $t: ${execs:-?} executions in ${seconds} s, corpus $corpus, $result"
  echo "$line"
  summary+="$line"$'\n'
done
printf '%s' "$summary" >"$build/fuzz-summary.txt"
exit $status
