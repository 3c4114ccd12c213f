#!/usr/bin/env bash
# End-to-end benchmark (see BENCHMARKS.md). Builds Release, simulates a district, imports it,
# starts `bangfu serve` on a fresh temporary database with its real durability settings (WAL,
# synchronous=FULL, one transaction per message), drives it with `bangfu simulate traffic --post`
# over keep-alive connections on 127.0.0.1, then reports sustained check-ins/s, latency, the
# server's CPU and peak RSS, and checks that every acknowledged check-in is on disk.
#
# Knobs (environment): CONNECTIONS=32 THREADS=CONNECTIONS+8 (server worker pool) PER_SENDER=0
# (limits.per_sender_per_minute) MONTHS=6
# (traffic window ending yesterday) LIMIT=0 (send only the first N messages; 0 = all) SCALE=1
# RATE=0 (messages/s, 0 = flat out) BUILD=build-release
# JOBS=2 KEEP=1 (keep the temporary directory) BIN=path/to/bangfu (skip the build, use that one)
# SERVE_PRELOAD=lib.so (LD_PRELOAD for the server only, for experiments; see BENCHMARKS.md). Exits 1 if a check-in was acknowledged but is not
# on disk, or if any request failed.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-$((CONNECTIONS + 8))}
# The replay squeezes months of each helper's messages into seconds, which the per-sender limit
# (30 a minute by default) would mostly refuse; it is off unless asked for.
PER_SENDER=${PER_SENDER:-0}
MONTHS=${MONTHS:-6}
SCALE=${SCALE:-1}
LIMIT=${LIMIT:-0}
RATE=${RATE:-0}
BUILD=${BUILD:-build-release}
JOBS=${JOBS:-2}

if [ -z "${BIN:-}" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBOT_BUILD_TESTS=OFF >/dev/null
  cmake --build "$BUILD" -j"$JOBS" --target bangfu >/dev/null
  BIN="$PWD/$BUILD/bangfu"
fi

work=$(mktemp -d /tmp/bangfu-e2e.XXXXXX)
server_pid=""
cleanup() {
  bench_stop_server "$server_pid"
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# Texts name dates relative to the day they were "written": end the window yesterday so that
# none of them is in the future when the service reads it now.
today=$(TZ=Asia/Shanghai date +%F)
from=$(date -d "$today -$MONTHS months" +%F)
to=$(date -d "$today -1 day" +%F)

cat >"$work/config.json" <<EOF
{
  "listen": "127.0.0.1:0",
  "database": "$work/bangfu.db",
  "timezone": "Asia/Shanghai",
  "bot_name": "帮扶助手",
  "admins": [],
  "threads": $THREADS,
  "limits": {"per_sender_per_minute": $PER_SENDER},
  "wecom": {
    "token": "e2eBenchToken",
    "encoding_aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "receive_id": "",
    "webhook_url": ""
  }
}
EOF

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN" simulate roster --scale "$SCALE" --seed 1 --as-of "$today" --out "$work/roster.csv"
"$BIN" roster import --config "$work/config.json" "$work/roster.csv"

env ${SERVE_PRELOAD:+LD_PRELOAD="$SERVE_PRELOAD"} "$BIN" serve --config "$work/config.json" \
  >"$work/serve.out" 2>"$work/serve.log" &
server_pid=$!
port=$(bench_wait_port "$work/serve.out" "$work/serve.log" server)
echo "== server pid $server_pid on port $port, $THREADS worker threads; traffic $from .. $to, $CONNECTIONS connections"

ticks=$(getconf CLK_TCK)
cpu0=$(bench_ticks "/proc/$server_pid/stat")
t0=$(date +%s.%N)
set +e
TIMEFORMAT='%U %S'
{ time "$BIN" simulate traffic --roster "$work/roster.csv" --from "$from" --to "$to" --seed 1 \
  --config "$work/config.json" --post "http://127.0.0.1:$port" --limit "$LIMIT" \
  --connections "$CONNECTIONS" --rate "$RATE" --duration 200 >"$work/post.txt" ; } 2>"$work/client.time"
post_status=$?
set -e
cat "$work/post.txt"
client_cpu=$(tail -1 "$work/client.time" | awk '{print $1 + $2}')
t1=$(date +%s.%N)
cpu1=$(bench_ticks "/proc/$server_pid/stat")
hwm_kib=$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")
kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=""

summary=$(grep '^summary ' "$work/post.txt" | sed 's/^summary //')
field() { echo "$summary" | grep -o "\"$1\":[0-9.e+-]*" | cut -d: -f2; }
acknowledged=$(field acknowledged_checkins)
seconds=$(field seconds)
on_disk=$(sqlite3 "$work/bangfu.db" 'SELECT count(*) FROM checkins')
inbound=$(sqlite3 "$work/bangfu.db" 'SELECT count(*) FROM inbound')

awk -v ack="$acknowledged" -v s="$seconds" -v c0="$cpu0" -v c1="$cpu1" -v hz="$ticks" \
    -v t0="$t0" -v t1="$t1" -v hwm="$hwm_kib" -v disk="$on_disk" -v in_="$inbound" \
    -v client="$client_cpu" \
    -v p50="$(field p50_ms)" -v p99="$(field p99_ms)" -v rate="$(field msgs_per_s)" 'BEGIN {
  cpu = (c1 - c0) / hz
  printf "== result\n"
  printf "messages/s            %.0f\n", rate
  printf "check-ins/s (acked)   %.0f  (%d acknowledged in %.2f s)\n", ack / s, ack, s
  printf "latency p50 / p99     %.2f / %.2f ms\n", p50, p99
  printf "server CPU            %.2f s over %.2f s wall = %.2f cores\n", cpu, t1 - t0, cpu / (t1 - t0)
  printf "load generator CPU    %.2f s = %.2f cores\n", client, client / (t1 - t0)
  printf "server peak RSS       %.1f MiB (VmHWM)\n", hwm / 1024
  printf "on disk               %d check-ins, %d inbound messages\n", disk, in_
}'
if [ "$on_disk" -lt "$acknowledged" ]; then
  echo "FAIL: $acknowledged check-ins acknowledged but only $on_disk on disk"
  exit 1
fi
echo "every acknowledged check-in is on disk"
exit "$post_status"
