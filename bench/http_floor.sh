#!/usr/bin/env bash
# What HTTP alone costs on this machine: bangfu's core answering GET /floor at once
# (bench/http_floor.cpp) beside nginx answering the same request with `return 200`, on the
# compare load's connections (wrk, 32 keep-alive connections, one thread, 2 s of warm-up then
# 10 s measured), in alternating rounds. Per round: requests/s and the server's CPU per request
# (/proc/PID/stat; nginx: its two workers). See BENCHMARKS.md §9, "What 60 µs leaves".
#
#   bench/http_floor.sh          # ROUNDS=3 CONNECTIONS=32 SECONDS_MEASURED=10 FLOOR=…
#
# FLOOR: the bangfu_http_floor binary (default: a Release build with the benchmarks in
# build-bench-release/). nginx is Debian's (apt-get install nginx-light); without it only
# bangfu's rounds run. Needs wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
SECONDS_MEASURED=${SECONDS_MEASURED:-10}

if [ -z "${FLOOR:-}" ]; then
  cmake -S . -B build-bench-release -DCMAKE_BUILD_TYPE=Release -DBOT_BUILD_TESTS=OFF \
    -DBOT_BUILD_BENCH=ON >/dev/null
  cmake --build build-bench-release -j2 --target bangfu_http_floor >/dev/null
  FLOOR=$PWD/build-bench-release/bangfu_http_floor
fi
NGINX=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null || true)

WORK=$(mktemp -d /tmp/bangfu-http-floor.XXXXXX)
pids=""
cleanup() {
  for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Server CPU ticks of the given PIDs, summed.
ticks() {
  local t=0
  for p in "$@"; do t=$((t + $(bench_ticks "/proc/$p/stat"))); done
  echo "$t"
}

# LABEL URL PID...: warm-up, then the measured run; prints the round's line.
measure() {
  local label=$1 url=$2
  shift 2
  wrk -t1 -c"$CONNECTIONS" -d2s "$url" >/dev/null
  local c0 c1 n
  c0=$(ticks "$@")
  wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_MEASURED}s" --latency "$url" >"$WORK/wrk.txt"
  c1=$(ticks "$@")
  n=$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")
  if [ -z "$n" ] || [ "$n" -eq 0 ]; then
    echo "$label answered nothing:" >&2
    cat "$WORK/wrk.txt" >&2
    exit 1
  fi
  awk -v l="$label" -v n="$n" -v s="$SECONDS_MEASURED" -v c=$((c1 - c0)) \
      -v hz="$(getconf CLK_TCK)" -v p99="$(awk '$1 == "99%" {print $2}' "$WORK/wrk.txt")" 'BEGIN {
    us = c / hz * 1e6 / n
    printf "%-7s %7.0f req/s  p99 %8s  %5.1f us of server CPU per request\n", l, n / s, p99, us
    printf "%s %f\n", l, us >> "/dev/stderr"
  }' 2>>"$WORK/results"
}

bangfu_round() {
  "$FLOOR" 0 >"$WORK/floor.out" 2>/dev/null &
  local pid=$!
  pids="$pids $pid"
  local port
  port=$(bench_wait_port "$WORK/floor.out" /dev/null bangfu_http_floor)
  measure "bangfu$1" "http://127.0.0.1:$port/floor" "$pid"
  kill -TERM "$pid"
  wait "$pid" || true
}

nginx_round() {
  local port
  port=$(free_port)
  mkdir -p "$WORK/nginx"
  # Two workers for two cores, no access log; keep-alive as long as the load's connections.
  cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$port;
    location = /floor { return 200 "ok\n"; }
  }
}
EOF
  "$NGINX" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" 2>/dev/null &
  local master=$!
  pids="$pids $master"
  local workers=""
  for _ in $(seq 50); do
    workers=$(pgrep -P "$master" | tr '\n' ' ' || true)
    [ "$(echo "$workers" | wc -w)" -ge 2 ] && break
    sleep 0.1
  done
  if [ "$(echo "$workers" | wc -w)" -lt 2 ]; then
    echo "nginx did not start its two workers:" >&2
    cat "$WORK/nginx/error.log" >&2 2>/dev/null || true
    exit 1
  fi
  measure "nginx$1" "http://127.0.0.1:$port/floor" $workers
  kill -TERM "$master"
  wait "$master" || true
}

echo "== $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -n "$NGINX" ] || echo "== nginx not found (apt-get install nginx-light): bangfu's rounds only"
for r in $(seq "$ROUNDS"); do
  bangfu_round "$r"
  [ -z "$NGINX" ] || nginx_round "$r"
done
median() { grep "^$1" "$WORK/results" | awk '{print $2}' | bench_median; }
b=$(median bangfu)
if [ -n "$NGINX" ]; then
  n=$(median nginx)
  awk -v b="$b" -v n="$n" 'BEGIN {
    printf "median CPU per request: bangfu %.1f us, nginx %.1f us; bangfu / nginx = %.2f\n", b, n, b / n }'
else
  echo "median CPU per request: bangfu $b us"
fi
