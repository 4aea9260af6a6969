# Sourced (POSIX sh) by deploy/kafka/start.sh (`make up` with SW_KAFKA_SECURE=1) and
# deploy/kafka/compose-broker.sh (docker-compose.yml): the listener and security part of server.properties of
# a secured single-node KRaft broker, so both run the broker the same way.
#
#   secure_listeners ADVERTISED_HOST PORT CONTROLLER_HOST CONTROLLER_PORT BIND_HOST
#
# Clients authenticate with SASL/SCRAM-SHA-512 on PORT and are authorised by ACLs (StandardAuthorizer; nothing
# is allowed without an ACL; the super user `admin` is the broker itself and the topic/ACL step). KRaft
# controllers cannot use SCRAM, so the controller listener uses SASL/PLAIN with the admin user alone.
# Needs KAFKA_ADMIN_PASSWORD (no quote or backslash in it: it goes into a JAAS string).
secure_listeners() {
  _scram="org.apache.kafka.common.security.scram.ScramLoginModule"
  _plain="org.apache.kafka.common.security.plain.PlainLoginModule"
  cat <<PROPS
listeners=SASL_PLAINTEXT://$5:$2,CONTROLLER://$5:$4
advertised.listeners=SASL_PLAINTEXT://$1:$2
controller.quorum.voters=1@$3:$4
controller.listener.names=CONTROLLER
listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
inter.broker.listener.name=SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=$_scram required username="admin" password="$KAFKA_ADMIN_PASSWORD";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=$_plain required username="admin" password="$KAFKA_ADMIN_PASSWORD" user_admin="$KAFKA_ADMIN_PASSWORD";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
PROPS
}

# The kafka-storage format arguments creating the SCRAM users: admin and KAFKA_SCRAM_USERS
# ("name=password name=password ..."), one per line (read them with `while read`).
scram_users() {
  for _user in "admin=$KAFKA_ADMIN_PASSWORD" ${KAFKA_SCRAM_USERS:-}; do
    printf '%s\n' "SCRAM-SHA-512=[name=${_user%%=*},password=${_user#*=}]"
  done
}
