#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster (Debian's package) in DATA_DIR on a free loopback port and
# creates one database per service (services/*/service.toml).   deploy/postgres/start.sh DATA_DIR [PORT]
# PostgreSQL refuses to run as root, so as root it runs as the `postgres` user the package created.
# Writes DATA_DIR/pg.port and prints the port.
# Tests run it with fsync, synchronous_commit and full_page_writes off (fast, not crash-safe);
# SW_PG_DURABLE=1 keeps PostgreSQL's durable defaults (all three on), as `make bench` does.
set -euo pipefail
dir="$(mkdir -p "$1" && cd "$1" && pwd)"
bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
[ -x "$bindir/initdb" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)"; exit 1; }
port="${2:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; chmod 700 "$dir"; fi
if [ ! -f "$dir/data/PG_VERSION" ]; then
  as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1
fi
if [ "${SW_PG_DURABLE:-0}" = 1 ]; then
  durability="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
else
  durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
fi
as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 $durability -c max_connections=300 -c shared_buffers=128MB" start >/dev/null
echo "$port" > "$dir/pg.port"
# One database per service of the registry (shared/registry.py): every services/<name>/service.toml.
root="$(cd "$(dirname "$0")/../.." && pwd)"
for declaration in "$root"/services/*/service.toml; do
  db="$(basename "$(dirname "$declaration")")"
  as_pg "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
    || as_pg "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres "$db"
done
echo "$port"
