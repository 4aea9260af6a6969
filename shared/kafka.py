"""How every Kafka client of a process connects: the one place producers, consumers and admin clients get
their security options from (shared/runtime.py, shared/outbox.py's producer, shared/topics_admin.py).

PLAINTEXT by default (the local broker of `make up`). On a secured broker (docker-compose.yml, `make up` with
SW_KAFKA_SECURE=1, a cluster) every service is its own SCRAM principal, named KAFKA_SASL_USERNAME, and the
broker's ACLs (shared/kafka_acls.py) let it write only its own topics and read only what it consumes."""
from __future__ import annotations

from typing import Any

from shared.settings import Settings, settings


def client_options(s: Settings | None = None) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient: the security
    protocol and, for SASL_*, the mechanism and this process's principal; for *_SSL, a default TLS context
    (system CAs, or KAFKA_SSL_CAFILE)."""
    s = s or settings()
    protocol = s.kafka_security_protocol.upper()
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol.startswith("SASL"):
        options.update(sasl_mechanism=s.kafka_sasl_mechanism.upper(), sasl_plain_username=s.kafka_sasl_username,
                       sasl_plain_password=s.kafka_sasl_password)
    if protocol.endswith("SSL"):
        from aiokafka.helpers import create_ssl_context  # noqa: PLC0415

        options["ssl_context"] = create_ssl_context(cafile=s.kafka_ssl_cafile or None)
    return options
