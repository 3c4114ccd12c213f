#!/usr/bin/env bash
# bangfu against a Node.js peer (bench/peer: express 5 + @wecom/crypto + better-sqlite3, WAL,
# synchronous=NORMAL, one process) on the same load, in alternating rounds (see BENCHMARKS.md).
#
# Load: signed, AES-encrypted WeCom text callbacks made from `bangfu simulate traffic` (scale 1,
# six months of a district's messages taken in turn, each with its own msgid and nonce), sent by
# wrk over 32 keep-alive connections: 2 s of warm-up, then 10 s measured. Every acknowledged
# reply is then decrypted and its msgid looked up in the server's database (bench/peer/verify.mjs).
# bangfu runs with the SHIPPED config.example.json; only listen, database, the secrets,
# webhook_url ("" : no deliveries) and limits.per_sender_per_minute (0: a guard for people, off
# for a synthetic load) are changed.
#
# Each round's line also gives the client's CPU (wrk's) and how much of the machine stayed idle
# (idle and I/O wait in /proc/stat) while the requests ran: on two cores the client and the
# server share them. Those and the server's CPU are measured from the first reply to wrk's end,
# not over wrk's reading of its prepared requests before it.
#
# One wrk thread: wrk starts each thread as soon as that thread has read its requests, and its
# clock only after the last one has, so with two threads the first sent alone for 1.3 s (16 of
# the connections) before the 10 s began, and its requests counted in them.
#
# Knobs (environment): ROUNDS=3 CONNECTIONS=32 WARMUP=2 SECONDS_MEASURED=10 WRK_THREADS=1
# BIN=path/to/bangfu (default: a Release build in build-release) PERF=1 (perf record -g the
# bangfu server during its first measured run; report in $WORK/perf.txt) KEEP=1.
# Needs: wrk, node/npm (npm ci in bench/peer), sqlite3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. bench/lib.sh
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
WARMUP=${WARMUP:-2}
SECONDS_MEASURED=${SECONDS_MEASURED:-10}
WRK_THREADS=${WRK_THREADS:-1}

if [ -z "${BIN:-}" ]; then
  cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DBOT_BUILD_TESTS=OFF >/dev/null
  cmake --build build-release -j2 --target bangfu >/dev/null
  BIN=$ROOT/build-release/bangfu
fi
[ -d bench/peer/node_modules ] || (cd bench/peer && npm ci --no-audit --no-fund >/dev/null)

bench_export_secrets

WORK=$(mktemp -d /tmp/bangfu-compare.XXXXXX)
pid=""
cleanup() {
  bench_stop_server "$pid"
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

bench_prepare_load "$BIN" "$WORK"

ticks=$(getconf CLK_TCK)

# One round: SERVER (bangfu|peer) and the number of requests to prepare for it. Appends a line
# "server rps p50 p99 cores us_per_req rss_mib acked checkins" to $WORK/results.
round() {
  local server=$1 n=$2 r=$3 dir="$WORK/$1-$3"
  mkdir -p "$dir"
  node bench/peer/gen.mjs "$WORK/traffic.jsonl" $((n / 5)) "w$r$server" "$dir/warm.tsv"
  node bench/peer/gen.mjs "$WORK/traffic.jsonl" "$n" "m$r$server" "$dir/main.tsv"
  if [ "$server" = bangfu ]; then
    bench_config "$dir/bangfu.db" >"$dir/config.json"
    "$BIN" roster import --config "$dir/config.json" "$WORK/roster.csv" >/dev/null
    "$BIN" serve --config "$dir/config.json" >"$dir/serve.out" 2>"$dir/serve.log" &
  else
    node bench/peer/server.mjs "$dir/peer.db" >"$dir/serve.out" 2>"$dir/serve.log" &
  fi
  pid=$!
  local port
  port=$(bench_wait_port "$dir/serve.out" "$dir/serve.log" "$server")
  wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s bench/peer/load.lua \
    "http://127.0.0.1:$port" -- "$dir/warm.tsv" "$WRK_THREADS" "$dir/warm-replies" >/dev/null
  local c0 t0 c1 t1 m0 m1 w0 wrk_pid
  times >"$dir/times0"
  wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${SECONDS_MEASURED}s" --latency -s bench/peer/load.lua \
    "http://127.0.0.1:$port" -- "$dir/main.tsv" "$WRK_THREADS" "$dir/replies" >"$dir/wrk.txt" 2>&1 &
  wrk_pid=$!
  bench_wait_first_reply "$dir/replies-0.txt" "$wrk_pid"
  local perf_pid=""
  if [ "${PERF:-0}" = 1 ] && [ "$server" = bangfu ] && [ ! -e "$WORK/perf.data" ]; then
    perf record -g -o "$WORK/perf.data" -p "$pid" -- sleep "$((SECONDS_MEASURED - 1))" 2>/dev/null &
    perf_pid=$!
  fi
  c0=$(bench_ticks "/proc/$pid/stat")
  m0=$(bench_machine_ticks)
  t0=$(date +%s.%N)
  w0=$(bench_ticks "/proc/$wrk_pid/stat" 2>/dev/null || echo 0)
  wait "$wrk_pid"
  times >"$dir/times1"
  c1=$(bench_ticks "/proc/$pid/stat")
  m1=$(bench_machine_ticks)
  t1=$(date +%s.%N)
  # The client's own CPU over the requests (wrk's whole run less its reading of the prepared
  # requests) and how much of the machine stayed idle: on two cores the client competes with
  # the server.
  local client idle
  client=$(echo "$(bench_children_seconds "$dir/times1") $(bench_children_seconds "$dir/times0")" |
    awk -v w0="$w0" -v hz="$ticks" '{print $1 - $2 - w0 / hz}')
  idle=$(echo "$m0 $m1" | awk '{printf "%.0f", ($3 - $1) * 100 / ($4 - $2)}')
  [ -z "$perf_pid" ] || wait "$perf_pid" || true
  local hwm
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"
  wait "$pid" || true
  pid=""
  local db="$dir/bangfu.db"
  [ "$server" = bangfu ] || db="$dir/peer.db"
  node bench/peer/verify.mjs "$db" "$dir"/replies-*.txt "$dir"/warm-replies-*.txt >"$dir/verify.txt" || {
    cat "$dir/verify.txt"; echo "FAIL: $server lost acknowledged messages"; exit 1; }
  local line requests p50 p99
  line=$(grep '^wrk:' "$dir/wrk.txt")
  requests=$(echo "$line" | sed 's/.*requests \([0-9]*\) in.*/\1/')
  p50=$(echo "$line" | sed 's/.*p50 \([0-9.]*\) ms.*/\1/')
  p99=$(echo "$line" | sed 's/.*p99 \([0-9.]*\) ms.*/\1/')
  local ran_out=""
  grep -q 'ran out of requests' "$dir/wrk.txt" && ran_out=" (ran out of prepared requests: raise N)"
  awk -v s="$server" -v req="$requests" -v p50="$p50" -v p99="$p99" -v c0="$c0" -v c1="$c1" \
      -v hz="$ticks" -v t0="$t0" -v t1="$t1" -v hwm="$hwm" -v secs="$SECONDS_MEASURED" \
      -v ver="$(tail -1 "$dir/verify.txt")" -v note="$ran_out" -v client="$client" -v idle="$idle" 'BEGIN {
    cpu = (c1 - c0) / hz; wall = t1 - t0
    printf "%-7s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  CPU %.2f cores  %6.1f us/req  peak RSS %6.1f MiB  (client %.2f cores, machine idle %d%%) | %s%s\n",
      s, req / secs, p50, p99, cpu / wall, cpu * 1e6 / req, hwm / 1024, client / wall, idle, ver, note
    printf "%s %f %s %s %f %f %f\n", s, req / secs, p50, p99, cpu / wall, cpu * 1e6 / req, hwm / 1024 >> "/dev/stderr"
  }' 2>>"$WORK/results"
}

echo "== $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $ROUNDS alternating rounds, $CONNECTIONS connections, ${WARMUP} s warm-up + ${SECONDS_MEASURED} s measured each; bangfu $BIN"
for r in $(seq "$ROUNDS"); do
  round bangfu "${BANGFU_REQUESTS:-400000}" "$r"
  round peer "${PEER_REQUESTS:-100000}" "$r"
done
echo "== load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
awk '$1 == "bangfu" { b[++nb] = $2 } $1 == "peer" { p[++np] = $2 }
  END { for (i = 1; i <= nb && i <= np; i++) printf "round %d: bangfu / peer = %.2fx\n", i, b[i] / p[i] }' \
  "$WORK/results" | tee "$WORK/ratios"
awk -v n="$(wc -l <"$WORK/ratios")" -v m="$(sed 's/.*= //; s/x$//' "$WORK/ratios" | bench_median)" \
  'BEGIN { printf "median ratio over %d rounds: %.2fx\n", n, m }'
if [ -e "$WORK/perf.data" ]; then
  perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null | head -80 >"$WORK/perf.txt"
  echo "perf report: $WORK/perf.txt (KEEP=1 to keep it)"
fi
