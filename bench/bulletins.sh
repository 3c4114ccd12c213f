#!/usr/bin/env bash
# Bulletins at scale (see BENCHMARKS.md, section 5). For each scale: simulates the district
# (`bangfu simulate roster`), imports it into a fresh database with the service's settings, feeds
# six months of its helpers' messages (April to September 2026) through the real dispatcher
# (`bangfu simulate traffic --apply`), then times `bangfu bulletin` for the monthly bulletin of
# September and the quarterly review of Q3 — the whole process, as an operator or the scheduler
# runs it: open, snapshot, render — and reports wall time and peak RSS (best of REPEAT runs, and
# the peak RSS over them), then prints the query plans SQLite uses on the largest database.
#
#   bash bench/bulletins.sh                 # scales 1 10 100; builds Release into build-release/
#   SCALES="1 10" REPEAT=5 bash bench/bulletins.sh
#
# Each bulletin is timed twice: with the default config (every helper with a missed pairing named:
# ~10,000 names at scale 100) and with bulletin.max_list_lines = LIST_CAP.
#
# Knobs (environment): SCALES="1 10 100" REPEAT=3 LIST_CAP=30 BUILD=build-release JOBS=2 KEEP=1 (keep the
# databases, in /tmp/bangfu-bulletins.*) BIN=path/to/bangfu PLANS=path/to/bangfu_query_plans.
# Scale 100 needs about 2 GB of memory for the traffic generator and ~5 minutes to seed.
set -euo pipefail
cd "$(dirname "$0")/.."

SCALES=${SCALES:-"1 10 100"}
REPEAT=${REPEAT:-3}
LIST_CAP=${LIST_CAP:-30}
BUILD=${BUILD:-build-release}
JOBS=${JOBS:-2}

if [ -z "${BIN:-}" ] || [ -z "${PLANS:-}" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBOT_BUILD_TESTS=OFF -DBOT_BUILD_BENCH=ON >/dev/null
  cmake --build "$BUILD" -j"$JOBS" --target bangfu bangfu_query_plans >/dev/null
  BIN="$PWD/$BUILD/bangfu"
  PLANS="$PWD/$BUILD/bangfu_query_plans"
fi

work=$(mktemp -d /tmp/bangfu-bulletins.XXXXXX)
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT

# Runs a command REPEAT times; prints "best_wall_s peak_rss_mib" (stdout of the command dropped).
measure() {
  local best="" peak=0 line wall rss
  for _ in $(seq "$REPEAT"); do
    line=$(/usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1)
    wall=${line% *}
    rss=${line#* }
    if [ -z "$best" ] || awk -v a="$wall" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$wall; fi
    [ "$rss" -gt "$peak" ] && peak=$rss
  done
  echo "$best $(awk -v k="$peak" 'BEGIN { printf "%.1f", k / 1024 }')"
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
rows=()
last_db=""
for scale in $SCALES; do
  dir="$work/scale$scale"
  mkdir -p "$dir"
  cat >"$dir/config.json" <<EOF
{
  "listen": "127.0.0.1:0",
  "database": "$dir/bangfu.db",
  "timezone": "Asia/Shanghai",
  "bot_name": "帮扶助手",
  "admins": [],
  "wecom": {"token": "benchToken", "encoding_aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
            "receive_id": "", "webhook_url": ""}
}
EOF
  echo "== scale $scale"
  "$BIN" simulate roster --scale "$scale" --seed 1 --as-of 2026-04-01 --out "$dir/roster.csv"
  "$BIN" roster import --config "$dir/config.json" "$dir/roster.csv"
  seed_start=$(date +%s.%N)
  "$BIN" simulate traffic --roster "$dir/roster.csv" --from 2026-04-01 --to 2026-09-30 --seed 1 \
    --apply --config "$dir/config.json" >"$dir/apply.txt"
  head -2 "$dir/apply.txt"
  seed_s=$(awk -v a="$seed_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  pairings=$(sqlite3 "$dir/bangfu.db" "SELECT count(*) FROM pairings")
  checkins=$(sqlite3 "$dir/bangfu.db" "SELECT count(*) FROM checkins")
  q3=$(sqlite3 "$dir/bangfu.db" \
    "SELECT count(*) FROM checkins WHERE visit_date BETWEEN '2026-07-01' AND '2026-09-30'")
  db_mib=$(du -m "$dir/bangfu.db" | cut -f1)
  read -r m_wall m_rss < <(measure "$BIN" bulletin --config "$dir/config.json" --kind monthly --period 2026-09)
  read -r q_wall q_rss < <(measure "$BIN" bulletin --config "$dir/config.json" --kind quarterly --period 2026-Q3)
  # The same with the named lists capped, as a province-sized group would configure it.
  sed 's|"admins": \[\],|"admins": [], "bulletin": {"max_list_lines": '"$LIST_CAP"'},|' "$dir/config.json" >"$dir/config-cap.json"
  read -r mc_wall mc_rss < <(measure "$BIN" bulletin --config "$dir/config-cap.json" --kind monthly --period 2026-09)
  read -r qc_wall qc_rss < <(measure "$BIN" bulletin --config "$dir/config-cap.json" --kind quarterly --period 2026-Q3)
  m_kib=$(( $("$BIN" bulletin --config "$dir/config.json" --kind monthly --period 2026-09 | wc -c) / 1024 ))
  mc_kib=$(( $("$BIN" bulletin --config "$dir/config-cap.json" --kind monthly --period 2026-09 | wc -c) / 1024 ))
  "$BIN" bulletin --config "$dir/config.json" --kind monthly --period 2026-09 >"$dir/monthly.md"
  head -5 "$dir/monthly.md"
  rows+=("| $scale | $pairings | $checkins | $q3 | ${db_mib} MiB | ${seed_s} s | $m_wall s, $m_rss MiB (${m_kib} KiB) | $q_wall s, $q_rss MiB | $mc_wall s, $mc_rss MiB (${mc_kib} KiB) | $qc_wall s, $qc_rss MiB |")
  last_db="$dir/bangfu.db"
done

echo
echo "== result (best of $REPEAT runs; peak RSS over them)"
echo "| scale | pairings | check-ins (Apr–Sep) | of them in Q3 | database | seeding | monthly 2026-09: wall, peak RSS (size) | quarterly 2026-Q3 | monthly, lists capped at $LIST_CAP | quarterly, capped |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "== query plans on the last database"
"$PLANS" "$last_db"
