#!/usr/bin/env bash
# Installs the Debian 12 packages bangfu builds and tests with, only those missing.
set -euo pipefail
pkgs=(build-essential cmake pkg-config
      libcpp-httplib-dev nlohmann-json3-dev libsqlitecpp-dev libsqlite3-dev libssl-dev
      catch2 libkainjow-mustache-dev libxlsxwriter-dev libbenchmark-dev sqlite3
      time  # /usr/bin/time: wall and peak RSS in bench/bulletins.sh
      clang libclang-rt-14-dev  # clang and its runtimes: libFuzzer (scripts/fuzz.sh)
      libboost1.81-dev  # Beast and Asio: the HTTP core (bot/http)
      libgoogle-perftools-dev  # tcmalloc_minimal, the service's allocator (BOT_TCMALLOC)
      clang-format git  # the formatting check in scripts/test.sh
      # scripts/package-test.sh and integration.nginx: cpack's Depends (dpkg-shlibdeps), the
      # package's postinst, `systemd-analyze verify`, nginx and a self-signed certificate
      dpkg-dev adduser systemd nginx openssl
      libcairo2-dev libpango1.0-dev libfontconfig-dev fonts-noto-cjk  # the coverage charts
      libsodium-dev  # Argon2id password hashes of the office dashboard
      chromium)  # headless browser for tests/integration/dashboard.test.mjs (CJK font: above)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi
