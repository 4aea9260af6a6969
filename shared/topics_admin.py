"""Creates every topic of the catalogue (and its dead-letter topic) on the broker, idempotently, and on a
secured broker applies the services' ACLs (shared/kafka_acls.py).

`python -m shared.topics_admin` — run by `make up`, docker-compose.yml and the test harness; topics are never
auto-created. Topics get SW_TOPIC_PARTITIONS partitions, SW_TOPIC_REPLICATION_FACTOR replicas and
`min.insync.replicas` = SW_TOPIC_MIN_INSYNC_REPLICAS (1/1 on the single local broker; 3/2 on a cluster: an
acks=all write is then on two brokers before it is acknowledged, and a broker can be lost without losing
either a write or the ability to write). Existing topics are left as they are (their replication is changed
with Kafka's own tools: kafka-reassign-partitions, kafka-configs)."""
from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from contracts.topics import all_topic_names
from shared import kafka_acls
from shared.kafka import client_options
from shared.settings import settings


def new_topics(names: list[str], partitions: int | None = None, replication_factor: int | None = None,
               min_insync_replicas: int | None = None) -> list[NewTopic]:
    """The topics to create, with the settings' partitions, replication factor and min.insync.replicas
    unless given."""
    s = settings()
    return [NewTopic(name, num_partitions=partitions or s.sw_topic_partitions,
                     replication_factor=replication_factor or s.sw_topic_replication_factor,
                     topic_configs={"min.insync.replicas": str(min_insync_replicas or s.sw_topic_min_insync_replicas)})
            for name in names]


async def _started_admin(bootstrap: str | None, options: dict[str, Any] | None) -> AIOKafkaAdminClient:
    s = settings()
    options = client_options() if options is None else options
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap or s.kafka_bootstrap_servers, **options)
    for attempt in range(60):
        try:
            await admin.start()
            return admin
        except Exception:
            if attempt == 59:
                raise
            await asyncio.sleep(1)
    raise AssertionError("unreachable")


async def create_topics(bootstrap: str | None = None, partitions: int | None = None,
                        options: dict[str, Any] | None = None, acls: bool | None = None) -> list[str]:
    """Creates the catalogue's missing topics; returns their names. `options`: the admin client's security
    options (default: this process's, shared/kafka.py). `acls`: also apply the services' ACLs (default:
    when the client authenticates with SASL, i.e. the broker is a secured one)."""
    options = client_options() if options is None else options
    admin = await _started_admin(bootstrap, options)
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in all_topic_names() if t not in existing]
        if wanted:
            await admin.create_topics(new_topics(wanted, partitions))
        if acls if acls is not None else str(options.get("security_protocol", "")).startswith("SASL"):
            await kafka_acls.apply(admin, kafka_acls.acls_for(kafka_acls.subscriptions()))
        return wanted
    finally:
        await admin.close()


if __name__ == "__main__":
    created = asyncio.run(create_topics())
    print(f"topics created: {len(created)}")
