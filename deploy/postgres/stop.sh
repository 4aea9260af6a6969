#!/usr/bin/env bash
# Stops the cluster that deploy/postgres/start.sh started in DATA_DIR.
set -u
dir="$1"
bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
[ -f "$dir/data/postmaster.pid" ] || exit 0
if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1
else "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1; fi
true
