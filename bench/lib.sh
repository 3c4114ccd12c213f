# Shared by the load benchmarks (compare.sh, ab.sh, e2e.sh); sourced, not run. Functions only:
# nothing happens on sourcing. Paths are relative to the repository root (the scripts cd there).

# The WeCom secrets of the comparison load: gen.mjs signs with WECOM_*, bangfu reads BANGFU_*.
bench_export_secrets() {
  export WECOM_TOKEN=benchCompareToken
  export WECOM_AES_KEY=jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C
  export BANGFU_WECOM_TOKEN=$WECOM_TOKEN BANGFU_WECOM_AES_KEY=$WECOM_AES_KEY
}

# BIN DIR: the comparison load's district, DIR/roster.csv (scale 1), and six months of its
# messages ending yesterday, DIR/traffic.jsonl (texts name dates relative to the day they were
# written, so none is in the future when the service reads it now).
bench_prepare_load() {
  local bin=$1 dir=$2 today
  today=$(TZ=Asia/Shanghai date +%F)
  "$bin" simulate roster --scale 1 --seed 1 --as-of "$today" --out "$dir/roster.csv" >/dev/null
  "$bin" simulate traffic --roster "$dir/roster.csv" --from "$(date -d "$today -6 months" +%F)" \
    --to "$(date -d "$today -1 day" +%F)" --seed 1 --out "$dir/traffic.jsonl" >/dev/null
}

# DB: the shipped config.example.json on stdout, with only what a benchmark must change: listen
# on any free port, the database DB, no deliveries (webhook_url ""), and no per-sender limit (a
# guard for people, off for a synthetic load).
bench_config() {
  node -e '
    const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    c.listen = "127.0.0.1:0"; c.database = process.argv[2];
    c.wecom.webhook_url = ""; c.limits = { ...(c.limits || {}), per_sender_per_minute: 0 };
    process.stdout.write(JSON.stringify(c, null, 2));' config.example.json "$1"
}

# STAT: the user + system CPU ticks in a /proc stat file (/proc/PID/stat, /proc/PID/task/TID/stat).
bench_ticks() { awk '{print $14 + $15}' "$1"; }

# The median of the numbers on stdin, one a line (the mean of the middle two for an even count).
bench_median() {
  sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# The machine's idle and I/O-wait ticks, then its total ticks, all cores (/proc/stat).
bench_machine_ticks() { awk '/^cpu / {t = 0; for (i = 2; i <= 9; i++) t += $i; print $5 + $6, t}' /proc/stat; }

# FILE: the user + system seconds of the shell's finished children, from the `times` builtin's
# output saved in FILE (its second line, e.g. "0m1.250s 0m0.375s"). Run `times >FILE` in the
# shell itself (not in $(…)) before and after a command to get that command's CPU.
bench_children_seconds() {
  # (bash writes the locale's decimal separator: "0m1,250s" in some)
  sed -n 2p "$1" | tr , . |
    awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, a, /m|s/); s += a[1] * 60 + a[2] } print s }'
}

# FILE PID: waits until FILE (the first reply file load.lua writes) has a byte in it, or until
# process PID (wrk) has ended. wrk reads its prepared requests (a few seconds) before its first
# request: a window measured from wrk's start would count that time, with the server idle.
bench_wait_first_reply() {
  while [ ! -s "$1" ] && kill -0 "$2" 2>/dev/null; do sleep 0.01; done
}

# OUT LOG NAME: the port a server just started prints to OUT ("listening on http://127.0.0.1:P"),
# waited for up to 10 s; otherwise says NAME did not start, shows LOG and exits.
bench_wait_port() {
  local out=$1 log=$2 name=$3 port=""
  for _ in $(seq 100); do
    port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$out" 2>/dev/null | sed 's/.*://' || true)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "$name did not start:" >&2; cat "$log" >&2; exit 1; }
  echo "$port"
}

# PID: stops a server this shell started, if it still runs (an exit trap's cleanup): SIGTERM,
# then waits for it to finish.
bench_stop_server() {
  if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}
