"""The mesh runtime on a real broker and a real PostgreSQL: dead letters, redeliveries, the outbox.

The gateway's Service is run in-process on its own database and consumer group, and records are
produced straight onto one of its input topics."""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timezone

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import func, select

from contracts.topics import CUSTOMS_DECISION
from contracts.v1.events import CustomsDecision
from shared.outbox import build_envelope
from shared.settings import settings
from shared.tables import OUTBOX
from tests.conftest import create_database
from tests.support import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
async def gateway(postgres_port, kafka_bootstrap, monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", create_database(postgres_port, f"rt_{uuid.uuid4().hex[:10]}"))
    monkeypatch.setenv("SW_BATCH_WAIT_MS", "50")
    settings.cache_clear()
    from services.gateway.app import service

    service.settings = settings()
    service.group_id = f"runtime-test-{uuid.uuid4().hex[:8]}"
    await service.start()
    yield service
    await service.stop()
    settings.cache_clear()


def decision(order_no: str) -> CustomsDecision:
    return CustomsDecision(platform_code="P", order_no=order_no, order_version=1, ecommerce_code="E",
                           direction="import", trade_mode="9610", status="released", channel="green",
                           decided_at=datetime.now(timezone.utc))


async def produce(bootstrap: str, topic: str, key: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value=value, key=key.encode(), headers=[("type", b"x")])
    finally:
        await producer.stop()


async def trace_count(service, correlation_id: str) -> int:
    from services.gateway.tables import trace

    async with service.sessions() as session:
        return await session.scalar(select(func.count()).where(trace.c.correlation_id == correlation_id))


async def dead_letters(bootstrap: str, topic: str, key: str, expected: int) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"dlq-reader-{uuid.uuid4().hex[:8]}",
                                auto_offset_reset="earliest")
    await consumer.start()
    found = []
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(found) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            found += [r for records in batch.values() for r in records if r.key == key.encode()]
    finally:
        await consumer.stop()
    return found


async def test_poison_records_go_to_the_dead_letter_topic_and_the_partition_keeps_moving(gateway, kafka_bootstrap):
    key = f"P:ORD-{uuid.uuid4().hex[:8]}"
    topic, good = build_envelope(decision(key.split(":")[1]), "customs", key)
    bad_payload = good.model_copy(update={"event_id": uuid.uuid4(), "payload": {"status": "teleported"}})
    await produce(kafka_bootstrap, topic, key, [b"\x00 not json", bad_payload.model_dump_json().encode(),
                                                 good.model_dump_json().encode()])
    # the valid record behind the two poison ones is handled: the partition was not blocked
    await wait_until(lambda: trace_count(gateway, key))
    letters = await dead_letters(kafka_bootstrap, CUSTOMS_DECISION.dead_letter, key, expected=2)
    assert len(letters) == 2
    headers = [dict((k, v.decode()) for k, v in r.headers) for r in letters]
    assert letters[0].value == b"\x00 not json"  # the record, untouched
    assert "not an event envelope" in headers[0]["dlq.error"]
    assert "payload does not match customs.decision v1" in headers[1]["dlq.error"]
    assert all(h["dlq.source"] == "gateway" and h["dlq.original_topic"] == topic for h in headers)


async def test_a_redelivered_event_has_one_effect(gateway, kafka_bootstrap):
    key = f"P:ORD-{uuid.uuid4().hex[:8]}"
    topic, envelope = build_envelope(decision(key.split(":")[1]), "customs", key)
    value = envelope.model_dump_json().encode()
    await produce(kafka_bootstrap, topic, key, [value, value, value])
    marker = f"P:ORD-{uuid.uuid4().hex[:8]}"
    _, after = build_envelope(decision(marker.split(":")[1]), "customs", marker)
    await produce(kafka_bootstrap, topic, key, [after.model_dump_json().encode()])  # same partition, behind them
    await wait_until(lambda: trace_count(gateway, marker))
    assert await trace_count(gateway, key) == 1


async def test_the_outbox_row_is_published_and_marked(gateway, kafka_bootstrap):
    key = f"P:ORD-{uuid.uuid4().hex[:8]}"
    async with gateway.unit_of_work() as uow:
        uow.emit(decision(key.split(":")[1]), correlation_id=key)

    async def published():
        async with gateway.sessions() as session:
            return await session.scalar(select(func.count()).where(OUTBOX.c.key == key, OUTBOX.c.published_at.isnot(None)))

    await wait_until(published)
    consumer = AIOKafkaConsumer(CUSTOMS_DECISION.name, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                                group_id=f"outbox-reader-{uuid.uuid4().hex[:8]}")
    await consumer.start()
    try:
        seen = []
        deadline = asyncio.get_running_loop().time() + 30
        while not seen and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            seen = [r for rs in batch.values() for r in rs if r.key == key.encode()]
    finally:
        await consumer.stop()
    assert len(seen) == 1
    headers = dict((k, v.decode()) for k, v in seen[0].headers)
    assert headers["type"] == "customs.decision" and headers["version"] == "1" and headers["traceparent"].startswith("00-")
    body = json.loads(seen[0].value)
    assert body["correlation_id"] == key and body["source"] == "gateway" and body["payload"]["status"] == "released"


async def test_a_rolled_back_unit_of_work_publishes_nothing(gateway):
    key = f"P:ORD-{uuid.uuid4().hex[:8]}"
    with pytest.raises(RuntimeError):
        async with gateway.unit_of_work() as uow:
            uow.emit(decision(key.split(":")[1]), correlation_id=key)
            await uow.flush_events()
            raise RuntimeError("the state change failed")
    async with gateway.sessions() as session:
        assert await session.scalar(select(func.count()).where(OUTBOX.c.key == key)) == 0
