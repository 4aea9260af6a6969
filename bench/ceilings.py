"""Two ceilings measured on the same machine in the same run, so the mesh's figures can be read as a
fraction of what its parts could do with no business logic at all.

(a) `kafka`: a raw aiokafka pipe. One producer configured like the services' outbox relay (idempotent,
    acks=all, linger 5 ms) sends M messages of S bytes, keyed, to a fresh topic with the mesh's partition
    count; F consumer groups (the mesh's fan-out: events consumed / events produced) each read all of
    them with `getmany`, committing after each batch like the services do. Timed from the first send to
    the last message read by the slowest group.

        python -m bench.ceilings kafka --bootstrap HOST:PORT --messages M --size S --fanout F --out R.json

(b) `bare`: `bench.bare_app`, a FastAPI app with the gateway's document routes that parses each JSON body
    and answers 202 with the same small body, served by uvicorn with the gateway's settings (see
    `deploy.mesh.Mesh.start_service`). The load generator drives it with the same documents and client
    concurrency as the mesh (`--no-poll`); the controller starts it (`bench.__main__`).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid


async def kafka_pipe(bootstrap: str, messages: int, size: int, fanout: int, partitions: int) -> dict:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: PLC0415
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: PLC0415

    topic = f"bench.pipe.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()
    value = os.urandom(size // 2).hex().encode()[:size].ljust(size, b"x")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all",
                                linger_ms=5, max_batch_size=262144)
    consumers = [AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"{topic}.g{n}",
                                  enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=500)
                 for n in range(fanout)]
    await producer.start()
    for c in consumers:
        await c.start()
    read_done: list[float] = []

    async def consume(c: AIOKafkaConsumer) -> None:
        seen = 0
        while seen < messages:
            batch = await c.getmany(timeout_ms=500)
            n = sum(len(v) for v in batch.values())
            if n:
                seen += n
                await c.commit()
        read_done.append(time.monotonic())

    try:
        readers = [asyncio.create_task(consume(c)) for c in consumers]
        await asyncio.sleep(1.0)  # let the groups settle their assignment before the clock starts
        started = time.monotonic()
        pending = []
        for i in range(messages):
            pending.append(await producer.send(topic, value, key=f"k{i % 1024}".encode()))
            if len(pending) >= 1000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        produced = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*readers), timeout=600)
        elapsed = max(read_done) - started
    finally:
        await producer.stop()
        for c in consumers:
            await c.stop()
    return {"messages": messages, "message_bytes": size, "fanout": fanout, "partitions": partitions,
            "produce_seconds": round(produced - started, 3), "seconds": round(elapsed, 3),
            "messages_per_s": round(messages / elapsed, 1),
            "megabytes_per_s": round(messages * size / elapsed / 1e6, 2)}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ceilings")
    sub = p.add_subparsers(dest="what", required=True)
    k = sub.add_parser("kafka")
    k.add_argument("--bootstrap", required=True)
    k.add_argument("--messages", type=int, required=True)
    k.add_argument("--size", type=int, default=1000)
    k.add_argument("--fanout", type=int, default=1)
    k.add_argument("--partitions", type=int, default=4)
    k.add_argument("--out", required=True)
    a = p.parse_args(argv)
    result = asyncio.run(kafka_pipe(a.bootstrap, a.messages, a.size, a.fanout, a.partitions))
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
