"""The outbox relay on a real broker and a real PostgreSQL (issue 9, items 2, 5 and 8).

- One record cannot wedge the outbox: a row larger than the broker accepts and a row with an illegal topic
  name are set aside with their reason, counted, shown by /healthz and a metric, and the rows behind them
  are published; the acknowledged rows before them are marked once.
- Two relays over one outbox (two instances of a service on one database) publish every row once, each
  key's rows in order, and the standby takes over when the holder goes.

Each test uses its own database (the credit service's migrations: the runtime tables are the same in every
service) and its own topic."""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timezone

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text

from shared.db import create_engine, session_factory
from shared.migrations import upgrade
from shared.outbox import OutboxRelay, RelayLease, RelayStalled, stage_rows
from shared.settings import settings
from shared.tables import OUTBOX
from tests.conftest import create_database

pytestmark = pytest.mark.integration

ONE_MIB = 1024 * 1024


async def new_topic(bootstrap: str, partitions: int = 4, **configs: str) -> str:
    name = f"outbox-test-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                            topic_configs={k.replace("_", "."): v for k, v in configs.items()})])
    finally:
        await admin.close()
    return name


@pytest.fixture
async def outbox_db(postgres_port):
    url = create_database(postgres_port, f"ob_{uuid.uuid4().hex[:10]}")
    await asyncio.to_thread(upgrade, "credit", url)
    engines = []

    def open_instance():
        """A second engine on the same database is a second instance of the service."""
        engine = create_engine(url)
        engines.append(engine)
        return session_factory(engine)

    yield open_instance
    for engine in engines:
        await engine.dispose()


async def started_producer(bootstrap: str) -> AIOKafkaProducer:
    # As the runtime's (shared/runtime.py): idempotent, acks=all.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5)
    await producer.start()
    return producer


def row(topic: str, key: str, seq: int, size: int = 0) -> dict:
    body = {"seq": seq, "key": key, "pad": "x" * size}
    return {"topic": topic, "key": key, "value": json.dumps(body).encode(), "headers": json.dumps({"type": "test"}),
            "created_at": datetime.now(timezone.utc)}


async def stage(sessions, rows: list[dict]) -> None:
    async with sessions() as session, session.begin():
        await stage_rows(session, rows)


async def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 60) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"reader-{uuid.uuid4().hex[:8]}",
                                auto_offset_reset="earliest")
    await consumer.start()
    seen = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(seen) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                seen += records
        batch = await consumer.getmany(timeout_ms=1500)  # anything more (a duplicate) would show here
        for records in batch.values():
            seen += records
    finally:
        await consumer.stop()
    return seen


def per_key(records) -> dict[str, list[int]]:
    """Each key's sequence numbers in the order its partition holds them."""
    out: dict[str, list[int]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        body = json.loads(record.value)
        out.setdefault(body["key"], []).append(body["seq"])
    return out


async def settled(sessions) -> dict:
    async with sessions() as session:
        rows = (await session.execute(select(OUTBOX.c.id, OUTBOX.c.key, OUTBOX.c.topic, OUTBOX.c.published_at,
                                             OUTBOX.c.set_aside_at, OUTBOX.c.set_aside_reason)
                                      .order_by(OUTBOX.c.id))).all()
    return {"published": [r for r in rows if r.published_at is not None],
            "set_aside": [r for r in rows if r.set_aside_at is not None],
            "open": [r for r in rows if r.published_at is None and r.set_aside_at is None]}


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_rows_the_broker_refuses_are_set_aside_and_the_rows_behind_them_go_on(outbox_db, kafka_bootstrap):
    await refused_rows_are_set_aside(outbox_db(), kafka_bootstrap)


async def test_the_same_on_sqlite(tmp_path, kafka_bootstrap):
    """`make up`'s default database: no lease is needed (one instance per SQLite file)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}"
    await asyncio.to_thread(upgrade, "credit", url)
    engine = create_engine(url)
    try:
        await refused_rows_are_set_aside(session_factory(engine), kafka_bootstrap)
    finally:
        await engine.dispose()


async def refused_rows_are_set_aside(sessions, kafka_bootstrap: str) -> None:
    topic = await new_topic(kafka_bootstrap)
    service = f"relay-test-{uuid.uuid4().hex[:6]}"
    # Key A: a row, a row of 2 MiB (over the broker's message.max.bytes and the client's max_request_size),
    # then three more. Key B: a row for an illegal topic name, then a row. Then rows of other keys.
    await stage(sessions, [
        row(topic, "A", 1), row(topic, "A", 2, size=2 * ONE_MIB), row(topic, "A", 3),
        {**row(topic, "B", 1), "topic": "no such topic!"}, row(topic, "B", 2),
        row(topic, "A", 4), row(topic, "A", 5),
        *[row(topic, f"K{i % 7}", i) for i in range(30)],
    ])
    producer = await started_producer(kafka_bootstrap)
    relay = OutboxRelay(service, sessions, producer, batch_size=10)
    try:
        # Before the fix this pass raised MessageSizeTooLargeError, marked nothing, and every later pass
        # re-sent row A1 and never reached A3.
        for _ in range(10):
            if not (await settled(sessions))["open"]:
                break
            await relay.publish_once()
    finally:
        await producer.stop()

    state = await settled(sessions)
    assert state["open"] == []
    aside = {r.key: r.set_aside_reason for r in state["set_aside"]}
    assert set(aside) == {"A", "B"} and len(state["set_aside"]) == 2
    assert aside["A"].startswith("MessageSizeTooLargeError")
    assert aside["B"].startswith("InvalidTopicError") and "no such topic!" in aside["B"]
    assert len(state["published"]) == 35

    records = await read_topic(kafka_bootstrap, topic, expected=35)
    keys = per_key(records)
    assert keys["A"] == [1, 3, 4, 5]  # once each (the first row was not re-sent), in order, the refused one left out
    assert keys["B"] == [2]
    assert sum(len(v) for v in keys.values()) == 35  # nothing published twice
    assert metric("sw_outbox_set_aside_total", service=service, topic=topic) == 1
    assert metric("sw_outbox_set_aside_total", service=service, topic="no such topic!") == 1
    assert metric("sw_outbox_set_aside_rows", service=service) == 2


async def test_a_row_over_the_topics_limit_is_set_aside_alone_not_with_its_batch(outbox_db, kafka_bootstrap):
    """The broker refuses a whole record batch when it is over the topic's max.message.bytes: the rows
    that shared a batch with the large one are sent again alone and published; only the large one is
    set aside (the broker's MESSAGE_TOO_LARGE this time, not the client's check). The refusal puts the
    idempotent producer out of step (OutOfOrderSequenceNumber for every later send), so the relay renews it."""
    sessions = outbox_db()
    topic = await new_topic(kafka_bootstrap, partitions=1, max_message_bytes="20000")
    await stage(sessions, [row(topic, "A", 1, size=3000), row(topic, "A", 2, size=3000),
                           row(topic, "A", 3, size=30000), row(topic, "A", 4, size=3000), row(topic, "A", 5, size=3000)])
    producers = [await started_producer(kafka_bootstrap)]

    async def renew():  # as Service.renew_producer: a new producer id
        await producers[-1].stop()
        producers.append(await started_producer(kafka_bootstrap))
        return producers[-1]

    try:
        relay = OutboxRelay("relay-batch-test", sessions, producers[0], renew_producer=renew)
        for _ in range(5):
            if not (await settled(sessions))["open"]:
                break
            try:
                await relay.publish_once()
            except RelayStalled:  # the rows behind the refused batch, failed out of step: sent next pass
                pass
    finally:
        await producers[-1].stop()
    state = await settled(sessions)
    assert state["open"] == []
    # The third row (ids start at 1 in a fresh database), refused by the broker: MESSAGE_TOO_LARGE.
    assert [(r.id, r.set_aside_reason.split(":")[0]) for r in state["set_aside"]] == [(3, "MessageSizeTooLargeError")]
    keys = per_key(await read_topic(kafka_bootstrap, topic, expected=4))
    assert keys == {"A": [1, 2, 4, 5]}


async def test_healthz_shows_set_aside_rows_and_stays_200(postgres_port, kafka_bootstrap, monkeypatch):
    """A service whose outbox holds a refused row answers 200 `degraded` with the count: intake goes on
    (a 503 would take the gateway out of its load balancer), and the operator sees it."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("CREDIT_DATABASE_URL", create_database(postgres_port, f"obh_{uuid.uuid4().hex[:10]}"))
    settings.cache_clear()
    from services.credit.handlers import handlers
    from shared.runtime import Service

    topic = await new_topic(kafka_bootstrap)
    service = Service("credit", handlers=handlers, group_id=f"healthz-{uuid.uuid4().hex[:8]}")
    await service.start()
    try:
        app = service.http()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://credit") as client:
            body = (await client.get("/healthz")).json()
            assert body["status"] == "ok" and body["outbox"] == {"set_aside": 0, "relay": "publishing", "degraded": False}

            await stage(service.sessions, [row(topic, "A", 1), row(topic, "A", 2, size=2 * ONE_MIB), row(topic, "A", 3)])
            service.relay.wake.set()

            async def all_settled():
                return not (await settled(service.sessions))["open"]

            deadline = asyncio.get_running_loop().time() + 30
            while not await all_settled():
                assert asyncio.get_running_loop().time() < deadline, "the relay did not get past the refused row"
                await asyncio.sleep(0.2)
            r = await client.get("/healthz")
            assert r.status_code == 200
            assert r.json()["status"] == "degraded"
            assert r.json()["outbox"] == {"set_aside": 1, "relay": "publishing", "degraded": True}
            metrics_text = (await client.get("/metrics")).text
            assert 'sw_outbox_set_aside_rows{service="credit"} 1.0' in metrics_text
    finally:
        await service.stop()
        settings.cache_clear()


async def test_two_relays_over_one_outbox_publish_each_row_once_in_order(outbox_db, kafka_bootstrap):
    """Two instances of a service share one database: only the lease holder publishes, and when it goes
    the other takes over; every row is published once and each key's rows in order."""
    topic = await new_topic(kafka_bootstrap)
    first, second = outbox_db(), outbox_db()
    producers = [await started_producer(kafka_bootstrap), await started_producer(kafka_bootstrap)]
    relays = [OutboxRelay("twin", first, producers[0], batch_size=50, idle_wait=0.05, lease_wait=0.2),
              OutboxRelay("twin", second, producers[1], batch_size=50, idle_wait=0.05, lease_wait=0.2)]
    tasks = [asyncio.create_task(relay.run()) for relay in relays]
    keys = [f"K{i}" for i in range(8)]
    seq = 0

    async def write_rows(sessions, transactions: int) -> None:
        # Both instances write, as both would handle events, each for the keys of its own partitions (one
        # key's transactions commit one after the other, so its ids rise with its sequence); small
        # transactions interleave with the relays.
        nonlocal seq
        own = keys[0::2] if sessions is first else keys[1::2]
        for t in range(transactions):
            rows = []
            for i in range(10):
                seq += 1
                rows.append(row(topic, own[(t + i) % len(own)], seq))
            await stage(sessions, rows)
            await asyncio.sleep(0.01)

    async def wait_all_published() -> None:
        deadline = asyncio.get_running_loop().time() + 60
        while (await settled(first))["open"]:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)

    try:
        await asyncio.gather(write_rows(first, 30), write_rows(second, 30))
        await wait_all_published()
        holders = [not relay.standby and relay.lease.conn is not None for relay in relays]
        assert sorted(holders) == [False, True], "exactly one relay holds the lease"
        holder = holders.index(True)

        # The holder's instance stops; the other takes over the lease and publishes what comes next.
        tasks[holder].cancel()
        await asyncio.gather(tasks[holder], return_exceptions=True)
        await asyncio.gather(write_rows(first, 20), write_rows(second, 20))
        await wait_all_published()
        assert not relays[1 - holder].standby and relays[1 - holder].lease.conn is not None

        # The new holder's lease connection is cut (as when its process dies or the network drops it):
        # PostgreSQL frees the lock, the holder's next statement fails and it stops publishing; one relay
        # (either) takes the lease and goes on.
        tasks[holder] = asyncio.create_task(relays[holder].run())  # the first instance is back, standing by
        async with first() as session:
            cut = await session.scalar(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND classid = :c"
            ), {"c": RelayLease.LOCK_CLASS})
        assert cut == 1
        await asyncio.gather(write_rows(first, 25), write_rows(second, 25))
        await wait_all_published()
        assert sum(not relay.standby and relay.lease.conn is not None for relay in relays) == 1
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for producer in producers:
            await producer.stop()

    assert seq == 1500
    records = await read_topic(kafka_bootstrap, topic, expected=seq)
    by_key = per_key(records)
    assert sum(len(v) for v in by_key.values()) == seq  # each row once: nothing doubled, nothing lost
    for key, seqs in by_key.items():
        assert seqs == sorted(seqs), f"{key} out of order"
    async with first() as session:
        assert await session.scalar(select(func.count()).where(OUTBOX.c.published_at.is_(None))) == 0
