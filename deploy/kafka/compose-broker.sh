#!/bin/sh
# The broker of docker-compose.yml (image apache/kafka, run with this script instead of the image's own
# configuration): a single-node KRaft broker secured exactly like `make up` with SW_KAFKA_SECURE=1
# (secure.properties.sh): SASL/SCRAM-SHA-512, ACLs, each service its own principal.
# Environment: KAFKA_ADMIN_PASSWORD, KAFKA_SCRAM_USERS ("name=password ..."), CLUSTER_ID.
# The SCRAM users are created when the data volume is first formatted; to change a password later use
# kafka-configs.sh --alter --add-config 'SCRAM-SHA-512=[password=...]' --entity-type users --entity-name NAME.
set -eu
. /opt/sw/secure.properties.sh
: "${KAFKA_ADMIN_PASSWORD:?set KAFKA_ADMIN_PASSWORD}"
: "${CLUSTER_ID:?set CLUSTER_ID}"
props=/tmp/server.properties
umask 077
{
  printf 'process.roles=broker,controller\nnode.id=1\n'
  secure_listeners kafka 9092 kafka 9093 ""
  cat <<PROPS
log.dirs=/var/lib/kafka/data
num.partitions=4
auto.create.topics.enable=false
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
} > "$props"
# The healthcheck's client configuration (the admin principal).
cat > /tmp/admin.properties <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$KAFKA_ADMIN_PASSWORD";
PROPS
set --
while read -r user; do set -- "$@" --add-scram "$user"; done <<USERS
$(scram_users)
USERS
/opt/kafka/bin/kafka-storage.sh format --ignore-formatted -t "$CLUSTER_ID" -c "$props" "$@"
exec /opt/kafka/bin/kafka-server-start.sh "$props"
