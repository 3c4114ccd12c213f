#!/usr/bin/env bash
# The whole test suite from a fresh clone: install what is missing, check the formatting
# (clang-format, .clang-format), build with warnings as
# errors, run the unit tests and the integration tests against the real binary (the soak
# included: SOAK_SECONDS, default 180); then the suite again under ASan+UBSan and TSan
# (scripts/sanitize.sh), and each fuzz target for 20 s (scripts/fuzz.sh). Between the two, the
# Debian package is built, installed, checked and removed (scripts/package-test.sh).
# BANGFU_QUICK=1 stops after the normal suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# Formatting first: it is the cheapest check, and a diff that drifts from .clang-format fails here.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z '*.cpp' '*.h'
else  # a tree without its .git: the same source folders
  find storage handlers charts simulator bot tests bench fuzz -path '*/node_modules' -prune -o \
    \( -name '*.cpp' -o -name '*.h' \) -print0
fi | xargs -0 clang-format --dry-run -Werror
(cd tests/integration && npm ci --no-audit --no-fund --loglevel=error)
cmake -S . -B build -DBOT_WERROR=ON -DBOT_BUILD_TESTS=ON -DBOT_BUILD_FUZZ=ON -DBOT_BUILD_BENCH=ON >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)"
# Screenshots of the office dashboard (integration.dashboard), for CI to keep as artifacts.
ls build/artifacts/office-*.png 2>/dev/null | sed 's/^/artifact: /' || true
# The Debian package: cpack, apt-get install, --version, config check, systemd-analyze verify,
# remove and purge (README "Deploy"). On a machine where bangfu is deployed it refuses to run;
# BANGFU_SKIP_PACKAGE=1 leaves it out there, saying so.
if [ "${BANGFU_SKIP_PACKAGE:-0}" = 1 ]; then
  echo "== package test skipped (BANGFU_SKIP_PACKAGE=1)"
else
  bash scripts/package-test.sh build
fi
[ "${BANGFU_QUICK:-0}" = 1 ] && exit 0
bash scripts/sanitize.sh
# The fuzzers run from the ASan build just made (clang: its fuzz targets are libFuzzer binaries).
BOT_FUZZ_BUILD_DIR=build-asan bash scripts/fuzz.sh 20
