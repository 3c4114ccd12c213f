#!/usr/bin/env bash
# Two bangfu binaries on the load of bench/compare.sh, in alternating rounds, to see what one
# change does (BENCHMARKS.md §9, "Less work per message"). Each round: a fresh database with
# the scale-1 roster, the shipped config (only listen, database, secrets, webhook_url "" and
# limits.per_sender_per_minute 0 changed), 2 s of warm-up, 10 s measured by wrk over 32
# keep-alive connections (one wrk thread; counters read from the first reply to wrk's end).
# Per round it prints requests/s, p99, the server's CPU per request (/proc/PID/stat), KiB
# written and read and write calls per request (/proc/PID/io: the WAL, the database and the
# sockets), the CPU ticks of each busy thread by name (/proc/PID/task/*/stat) and how long it
# was runnable but waited for a core (schedstat), peak RSS and the group commits of the
# `stopped` log line; then the median CPU per request of each binary and their ratio.
#
#   bench/ab.sh OLD_BINARY NEW_BINARY        # ROUNDS=3 CONNECTIONS=32 SECONDS_MEASURED=10
#
# A binary finds its templates next to itself as usual (a copy of build/bangfu kept in build/
# works). Rounds far apart in time do not compare on a shared machine: only the alternating
# pairs of one run do. Needs wrk, node (npm ci in bench/peer), a POSIX /proc.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: bench/ab.sh OLD_BINARY NEW_BINARY" >&2; exit 2; }
A=$(realpath "$1")
B=$(realpath "$2")
cd "$(dirname "$0")/.."
. bench/lib.sh
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
WARMUP=${WARMUP:-2}
SECONDS_MEASURED=${SECONDS_MEASURED:-10}
# One wrk thread, as in compare.sh (which says why).
WRK_THREADS=${WRK_THREADS:-1}
[ -d bench/peer/node_modules ] || (cd bench/peer && npm ci --no-audit --no-fund >/dev/null)

bench_export_secrets

WORK=$(mktemp -d /tmp/bangfu-ab.XXXXXX)
pid=""
cleanup() {
  bench_stop_server "$pid"
  rm -rf "$WORK"
}
trap cleanup EXIT

bench_prepare_load "$A" "$WORK"

io() { awk -v k="$2" '$1 == k ":" {print $2}' "/proc/$1/io"; }
# Per thread: "TID TICKS WAIT_NS NAME", the CPU ticks and the nanoseconds spent runnable but
# waiting for a core (/proc/PID/task/TID/schedstat, field 2).
thread_ticks() {
  for t in /proc/"$1"/task/*; do
    echo "${t##*/} $(bench_ticks "$t/stat") $(cut -d' ' -f2 "$t/schedstat") $(cat "$t/comm")"
  done | sort
}

# One round of binary $1 labelled $2; appends "label us_per_req" to $WORK/results.
round() {
  local bin=$1 label=$2 dir="$WORK/$2"
  mkdir -p "$dir"
  # Signed now: the server refuses timestamps outside its replay window.
  node bench/peer/gen.mjs "$WORK/traffic.jsonl" 30000 "w$label" "$dir/warm.tsv"
  node bench/peer/gen.mjs "$WORK/traffic.jsonl" 150000 "m$label" "$dir/main.tsv"
  bench_config "$dir/bangfu.db" >"$dir/config.json"
  "$bin" roster import --config "$dir/config.json" "$WORK/roster.csv" >/dev/null
  "$bin" serve --config "$dir/config.json" >"$dir/serve.out" 2>"$dir/serve.log" &
  pid=$!
  local port
  port=$(bench_wait_port "$dir/serve.out" "$dir/serve.log" "$label")
  wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s bench/peer/load.lua \
    "http://127.0.0.1:$port" -- "$dir/warm.tsv" "$WRK_THREADS" "$dir/warm-replies" >/dev/null
  local c0 w0 r0 s0 c1 w1 r1 s1 wrk_pid
  wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${SECONDS_MEASURED}s" --latency \
    -s bench/peer/load.lua "http://127.0.0.1:$port" -- "$dir/main.tsv" "$WRK_THREADS" \
    "$dir/replies" >"$dir/wrk.txt" 2>&1 &
  wrk_pid=$!
  # From the first reply: the threads' sleep then counts no time spent waiting for wrk to read
  # its requests.
  bench_wait_first_reply "$dir/replies-0.txt" "$wrk_pid"
  c0=$(bench_ticks "/proc/$pid/stat")
  w0=$(io "$pid" wchar) r0=$(io "$pid" rchar) s0=$(io "$pid" syscw)
  thread_ticks "$pid" >"$dir/ticks0"
  wait "$wrk_pid"
  c1=$(bench_ticks "/proc/$pid/stat")
  w1=$(io "$pid" wchar) r1=$(io "$pid" rchar) s1=$(io "$pid" syscw)
  thread_ticks "$pid" >"$dir/ticks1"
  local hwm
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"
  wait "$pid" || true
  pid=""
  local line n p99 groups threads
  line=$(grep '^wrk:' "$dir/wrk.txt")
  n=$(echo "$line" | sed 's/.*requests \([0-9]*\) in.*/\1/')
  p99=$(echo "$line" | sed 's/.*p99 \([0-9.]*\) ms.*/\1/')
  groups=$(grep -o 'commit_groups=[0-9]* commit_units=[0-9]*' "$dir/serve.log" || echo "-")
  threads=$(join "$dir/ticks0" "$dir/ticks1" |
    awk '{ d = $5 - $2; if (d > 20) printf "%s %d (waited %.0f ms) ", $4, d, ($6 - $3) / 1e6 }')
  awk -v l="$label" -v n="$n" -v s="$SECONDS_MEASURED" -v p99="$p99" -v hz="$(getconf CLK_TCK)" \
      -v c=$((c1 - c0)) -v w=$((w1 - w0)) -v r=$((r1 - r0)) -v sc=$((s1 - s0)) -v hwm="$hwm" \
      -v g="$groups" -v th="$threads" 'BEGIN {
    us = c / hz * 1e6 / n
    printf "%-5s %6.0f req/s  p99 %5.1f ms  %6.1f us/req  written %5.1f KiB/req  read %5.1f KiB/req  %4.1f writes/req  peak RSS %3.0f MiB  %s  threads: %s\n",
      l, n / s, p99, us, w / 1024 / n, r / 1024 / n, sc / n, hwm / 1024, g, th
    printf "%s %f\n", substr(l, 1, 1), us >> "/dev/stderr"
  }' 2>>"$WORK/results"
  rm -rf "$dir"
}

echo "== $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== A $A"
echo "== B $B"
for r in $(seq "$ROUNDS"); do
  round "$A" "A$r"
  round "$B" "B$r"
done
echo "== load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
median() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/results" | bench_median; }
a=$(median A)
b=$(median B)
awk -v a="$a" -v b="$b" 'BEGIN {
  printf "median CPU per request: A %.1f us, B %.1f us; B / A = %.3f\n", a, b, b / a }'
