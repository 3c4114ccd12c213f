#!/usr/bin/env bash
# Installs what is missing, builds, and starts bangfu on the demo config with a simulated district
# (seed 1, the shape of docs/domain.md): its roster, and its helpers' messages for the last two full
# quarters and this quarter up to yesterday, fed through the real dispatcher at their own times.
# The database demo/run/bangfu.db is made afresh on every run. Stop the service with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DBOT_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target bangfu

rm -rf demo/run
mkdir -p demo/run
today=$(TZ=Asia/Shanghai date +%F)
# From the start of the quarter before the previous one, so that the last full quarter's review
# has a previous quarter to compare with.
month=$((10#${today:5:2}))
quarter_start=$(printf '%s-%02d-01' "${today:0:4}" $(( (month - 1) / 3 * 3 + 1 )))
from=$(date -d "$quarter_start -6 months" +%F)
to=$(date -d "$today -1 day" +%F)
./build/bangfu simulate roster --scale 1 --seed 1 --as-of "$today" --out demo/run/roster.csv
./build/bangfu roster import --config demo/config.json demo/run/roster.csv
./build/bangfu simulate traffic --config demo/config.json --roster demo/run/roster.csv \
  --from "$from" --to "$to" --seed 1 --apply

# A real helper of the simulated roster: the first cadre and the head of their first household.
IFS=, read -r userid helper _ _ _ _ head _ < <(sed -n 2p demo/run/roster.csv)
echo
echo "Try it from another terminal, as helper $helper (userid $userid):"
echo "  ./build/bangfu say --config demo/config.json --from $userid '走访 ${head}户 今天 送去棉被'"
echo "  ./build/bangfu say --config demo/config.json --from $userid '本月进度'"
echo "  ./build/bangfu say --config demo/config.json --from $userid '我的结对'"
echo
exec ./build/bangfu serve --config demo/config.json
