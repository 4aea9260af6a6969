#!/usr/bin/env bash
# Stops the broker that deploy/kafka/start.sh started in DATA_DIR.
set -u
pidfile="$1/kafka.pid"
[ -f "$pidfile" ] || exit 0
pid="$(cat "$pidfile")"
kill "$pid" 2>/dev/null || { rm -f "$pidfile"; exit 0; }
for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
kill -9 "$pid" 2>/dev/null || true
rm -f "$pidfile"
