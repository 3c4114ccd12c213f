#!/usr/bin/env bash
# The Debian package, built and tried on this machine (README "Deploy"; CI runs it from
# scripts/test.sh): `cpack -G DEB` in BUILD (default build/, already built), install it with
# apt-get, run `bangfu --version` and `bangfu config check` on the installed files, verify the
# systemd units, then remove and purge it. Needs root (or sudo) for apt-get. A bangfu package
# already installed, or an existing /etc/bangfu, /var/lib/bangfu or /var/backups/bangfu, is
# left alone: the script then stops, changing nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
apt_get() { DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get -o DPkg::Lock::Timeout=300 -y -qq "$@"; }
fail() { echo "package-test: $*" >&2; exit 1; }

if dpkg-query -W -f='${Status}' bangfu 2>/dev/null | grep -q "install ok installed"; then
  echo "package-test: a bangfu package is installed on this machine; not touching it" >&2
  exit 1
fi
for d in /var/lib/bangfu /var/backups/bangfu /etc/bangfu; do
  # A deployment made without the package (cmake --install): its records are not ours to remove.
  [ ! -e "$d" ] || { echo "package-test: $d exists on this machine; not touching it" >&2; exit 1; }
done

rm -rf "$build/packages"
(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls "$build"/packages/bangfu_*_amd64.deb)
echo "== $deb"
dpkg-deb -f "$deb" Package Version Architecture Depends
[ "$(dpkg-deb -I "$deb" conffiles)" = /etc/bangfu/config.json ] || fail "no conffile"
dpkg-deb -f "$deb" Depends | grep -q libsqlite3 || fail "Depends lacks libsqlite3"
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
stray=$(grep -Ev '^\./(usr|etc)/' <<<"$contents" || true)
[ -z "$stray" ] || fail "files outside /usr and /etc: $stray"
grep -qx './etc/bangfu/config.json' <<<"$contents" || fail "no /etc/bangfu/config.json"

cleanup() {
  apt_get purge bangfu >/dev/null 2>&1 || true
  $sudo_cmd rm -rf /var/lib/bangfu /var/backups/bangfu
}
trap cleanup EXIT
apt_get install "./$deb" >/dev/null

echo "== bangfu --version"
bangfu --version
[ "$(command -v bangfu)" = /usr/bin/bangfu ] || fail "bangfu is not /usr/bin/bangfu"
getent passwd bangfu >/dev/null || fail "postinst made no bangfu user"
[ "$(stat -c %U:%G:%a /etc/bangfu/config.json)" = root:bangfu:640 ] || fail "config.json mode"

echo "== bangfu config check on the shipped config (secrets missing: exit 2, each listed)"
set +e
out=$($sudo_cmd runuser -u bangfu -- bangfu config check --config /etc/bangfu/config.json)
rc=$?
set -e
echo "$out"
[ $rc -eq 2 ] || fail "config check exited $rc, not 2"
for key in wecom.token wecom.encoding_aes_key wecom.callback_url; do
  grep -q "config key '$key'" <<<"$out" || fail "config check did not name $key"
done
grep -q "templates: 9 templates compile, from /usr/share/bangfu/templates" <<<"$out" ||
  grep -q "templates compile, from /usr/share/bangfu/templates" <<<"$out" || fail "templates"
[ "$(stat -c %U /var/lib/bangfu/bangfu.db)" = bangfu ] || fail "database not the service user's"

echo "== with the secrets (from the environment, as the unit's EnvironmentFile gives them)"
out=$($sudo_cmd runuser -u bangfu -- env BANGFU_WECOM_TOKEN=PkgTestToken1 \
  BANGFU_WECOM_AES_KEY=jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C \
  bangfu config check --config /etc/bangfu/config.json || true)
grep -q "wecom.token *\*\*\*" <<<"$out" || fail "the token is not shown as ***"
! grep -q PkgTestToken1 <<<"$out" || fail "config check printed the token"

echo "== systemd-analyze verify"
units=(/usr/lib/systemd/system/bangfu.service /usr/lib/systemd/system/bangfu-backup.service
       /usr/lib/systemd/system/bangfu-backup.timer)
verify=$(systemd-analyze verify "${units[@]}" 2>&1) || { echo "$verify"; fail "systemd-analyze verify"; }
# Warnings about the host (no systemd running here) are not about our units; any line that
# names one of our files is.
if grep -q "bangfu" <<<"$verify"; then echo "$verify"; fail "systemd-analyze verify complained"; fi
echo "units verified: ${units[*]}"

echo "== upgrade keeps an edited config (dpkg conffile)"
$sudo_cmd sed -i 's/"admins": \[\]/"admins": ["pkg-test-admin"]/' /etc/bangfu/config.json
apt_get install --reinstall "./$deb" >/dev/null
grep -q pkg-test-admin /etc/bangfu/config.json || fail "reinstall overwrote the config"

echo "== remove and purge"
apt_get remove bangfu >/dev/null
[ ! -e /usr/bin/bangfu ] || fail "remove left /usr/bin/bangfu"
[ -e /etc/bangfu/config.json ] || fail "remove (not purge) deleted the config"
apt_get purge bangfu >/dev/null
[ ! -e /etc/bangfu/config.json ] || fail "purge left the config"
[ -e /var/lib/bangfu/bangfu.db ] || fail "purge deleted the database (it must keep the records)"
trap - EXIT
cleanup
echo "package-test: ok"
