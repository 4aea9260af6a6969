"""Creates every topic of the catalogue (and its dead-letter topic) on the broker, idempotently.

`python -m shared.topics_admin` — run by `make up` and the test harness; topics are never auto-created."""
from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from contracts.topics import all_topic_names
from shared.settings import settings


async def create_topics(bootstrap: str | None = None, partitions: int | None = None) -> list[str]:
    s = settings()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap or s.kafka_bootstrap_servers)
    for attempt in range(60):
        try:
            await admin.start()
            break
        except Exception:
            if attempt == 59:
                raise
            await asyncio.sleep(1)
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in all_topic_names() if t not in existing]
        if wanted:
            await admin.create_topics([
                NewTopic(name, num_partitions=partitions or s.sw_topic_partitions, replication_factor=1)
                for name in wanted
            ])
        return wanted
    finally:
        await admin.close()


if __name__ == "__main__":
    created = asyncio.run(create_topics())
    print(f"topics created: {len(created)}")
