#!/usr/bin/env bash
# Starts a single-node Apache Kafka (KRaft, combined broker+controller) in the background.
#   deploy/kafka/start.sh DATA_DIR [PORT]
# Formats DATA_DIR on first use, writes DATA_DIR/kafka.pid and DATA_DIR/kafka.port, and returns once the
# broker accepts connections. PORT defaults to a free loopback port.
#
# SW_KAFKA_SECURE=1: clients must authenticate with SASL/SCRAM-SHA-512 and are authorised by ACLs
# (secure.properties.sh, shared with docker-compose.yml's broker). KAFKA_ADMIN_PASSWORD is the password of the
# super user `admin` (the broker itself, topic creation, ACLs); KAFKA_SCRAM_USERS ("name=password ...") are
# the SCRAM users created when DATA_DIR is formatted (deploy/mesh.py passes one per service, see
# deploy/kafka_secure.py). A data dir keeps the mode it was formatted in.
set -euo pipefail
umask 077  # server.properties may hold the admin password
here="$(cd "$(dirname "$0")" && pwd)"
dir="$(mkdir -p "$1" && cd "$1" && pwd)"
port="${2:-}"
libs="$("$here/fetch.sh")"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if [ -f "$dir/kafka.pid" ] && kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null; then
  echo "kafka already running on 127.0.0.1:$(cat "$dir/kafka.port")"; exit 0
fi
if [ -z "$port" ]; then port="$(cat "$dir/kafka.port" 2>/dev/null || free_port)"; fi
# Both ports are kept, so a restarted broker comes back where its clients and its own quorum expect it.
controller_port="$(cat "$dir/kafka.controller.port" 2>/dev/null || free_port)"
echo "$controller_port" > "$dir/kafka.controller.port"
mode=plaintext
# A data dir formatted before the modes existed was formatted for plaintext.
if [ -f "$dir/data/meta.properties" ] && [ ! -f "$dir/security.mode" ]; then echo plaintext > "$dir/security.mode"; fi
if [ "${SW_KAFKA_SECURE:-0}" = "1" ]; then mode=sasl; fi
if [ -f "$dir/security.mode" ] && [ "$(cat "$dir/security.mode")" != "$mode" ]; then
  echo "$dir was formatted for a $(cat "$dir/security.mode") broker, not $mode: remove it (make clean) to switch"; exit 1
fi
if [ "$mode" = sasl ]; then
  : "${KAFKA_ADMIN_PASSWORD:?SW_KAFKA_SECURE=1 needs KAFKA_ADMIN_PASSWORD}"
  . "$here/secure.properties.sh"
  listeners="$(secure_listeners 127.0.0.1 "$port" 127.0.0.1 "$controller_port" 127.0.0.1)"
else
  listeners="listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.quorum.voters=1@127.0.0.1:$controller_port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT"
fi
cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
$listeners
log.dirs=$dir/data
num.partitions=4
auto.create.topics.enable=false
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=168
PROPS
cp="$libs/*"
if [ ! -f "$dir/data/meta.properties" ]; then
  cluster_id="$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
  scram_args=()
  if [ "$mode" = sasl ]; then
    while read -r user; do scram_args+=(--add-scram "$user"); done < <(scram_users)
  fi
  java -cp "$cp" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" "${scram_args[@]}" \
    >"$dir/format.log" 2>&1
  echo "$mode" > "$dir/security.mode"
fi
echo "$port" > "$dir/kafka.port"
nohup java ${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m} -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
  -Dlog4j2.configurationFile="$here/log4j2.properties" \
  -cp "$cp" kafka.Kafka "$dir/server.properties" >"$dir/kafka.log" 2>&1 &
echo $! > "$dir/kafka.pid"
for _ in $(seq 1 120); do
  if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(s.connect_ex(('127.0.0.1',$port)))"; then
    echo "kafka running on 127.0.0.1:$port"; exit 0
  fi
  if ! kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null; then echo "kafka exited:"; tail -n 30 "$dir/kafka.log"; exit 1; fi
  sleep 0.5
done
echo "kafka did not open 127.0.0.1:$port in 60s"; tail -n 30 "$dir/kafka.log"; exit 1
