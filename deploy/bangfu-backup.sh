#!/bin/sh
# One backup of bangfu's database, then the retention rule (README "Deploy", "Backups").
#   BANGFU_CONFIG       the service's config (default /etc/bangfu/config.json)
#   BANGFU_BACKUP_DIR   where the copies go (default /var/backups/bangfu)
#   BANGFU_KEEP_DAYS    copies younger than this many days are kept (default 30)
#   BANGFU_KEEP_MIN     the newest this many copies are kept whatever their age (default 7)
# Copies are bangfu-YYYYMMDD-HHMMSS.db; only files of that name are ever deleted. Exit non-zero
# when the backup fails (then nothing is deleted).
set -eu
config=${BANGFU_CONFIG:-/etc/bangfu/config.json}
dir=${BANGFU_BACKUP_DIR:-/var/backups/bangfu}
keep_days=${BANGFU_KEEP_DAYS:-30}
keep_min=${BANGFU_KEEP_MIN:-7}
bangfu=${BANGFU_BIN:-bangfu}
case "$keep_days$keep_min" in *[!0-9]*|'') echo "BANGFU_KEEP_DAYS and BANGFU_KEEP_MIN must be whole numbers" >&2; exit 2;; esac

mkdir -p "$dir"
out="$dir/bangfu-$(date +%Y%m%d-%H%M%S).db"
"$bangfu" backup --config "$config" "$out"

# Retention: newest first; the first $keep_min always stay, older ones go once past $keep_days.
n=0
ls -1 "$dir" | grep -E '^bangfu-[0-9]{8}-[0-9]{6}\.db$' | sort -r | while read -r name; do
  n=$((n + 1))
  [ "$n" -le "$keep_min" ] && continue
  if [ -n "$(find "$dir/$name" -maxdepth 0 -mtime +"$keep_days")" ]; then
    rm -f -- "$dir/$name"
    echo "removed $dir/$name (older than $keep_days days)"
  fi
done
