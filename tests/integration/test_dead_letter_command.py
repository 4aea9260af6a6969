"""The dead-letter command (shared/deadletters.py) on a real broker: what it lists, what a replay writes
where, and how it follows a replay (pending, handled, failed again). The dead letters here are written as
the batch core writes them (shared/outbox.py dead_letter_row), for a service name of the test's own."""
from __future__ import annotations

import json
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts.topics import CUSTOMS_DECISION
from shared import deadletters
from shared.batch import REPLAY_FOR, REPLAY_OF
from shared.outbox import build_envelope, dead_letter_row
from tests.integration.test_batch_core import decision

pytestmark = pytest.mark.integration


async def write_dead_letter(bootstrap: str, service: str, key: str, value: bytes, extra: dict | None = None) -> None:
    row = dead_letter_row(CUSTOMS_DECISION.name, key.encode(), value, [("type", b"customs.decision")],
                          "RuntimeError: a bug", service, 1, 42)
    headers = {**json.loads(row["headers"]), **(extra or {})}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(row["topic"], row["value"], key=row["key"].encode(),
                                     headers=[(k, v.encode()) for k, v in headers.items()])
    finally:
        await producer.stop()


async def record_at(bootstrap: str, topic: str, partition: int, offset: int):  # noqa: ANN201
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        return await consumer.getone()
    finally:
        await consumer.stop()


async def commit(bootstrap: str, group: str, topic: str, partition: int, offset: int) -> None:
    """`group` has handled everything of the partition before `offset`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        await consumer.commit({tp: offset})
    finally:
        await consumer.stop()


async def test_list_replay_and_follow_a_dead_letter(kafka_bootstrap):
    service = f"svc-{uuid.uuid4().hex[:8]}"
    key = f"P:ORD-{uuid.uuid4().hex[:8]}"
    _, envelope = build_envelope(decision(key.split(":")[1]), "customs", key)
    value = envelope.model_dump_json().encode()
    await write_dead_letter(kafka_bootstrap, service, key, value)

    [letter] = await deadletters.dead_letters(kafka_bootstrap, service)
    assert letter.status == "open" and letter.key == key and letter.error == "RuntimeError: a bug"
    assert (letter.original_topic, letter.original_partition, letter.original_offset) == (CUSTOMS_DECISION.name, 1, 42)
    assert letter.id.startswith(CUSTOMS_DECISION.dead_letter + ":")

    [done] = await deadletters.replay([letter], kafka_bootstrap, by="test")
    assert (done.topic, done.partition, done.dead_letter) == (CUSTOMS_DECISION.name, 1, letter.id)
    replayed = await record_at(kafka_bootstrap, done.topic, done.partition, done.offset)
    headers = {k: v.decode() for k, v in replayed.headers}
    assert replayed.value == value and replayed.key == key.encode()  # untouched, in its key's partition
    assert headers[REPLAY_OF] == letter.id and headers[REPLAY_FOR] == service and headers["type"] == "customs.decision"
    assert not any(k.startswith("dlq.") for k in headers)

    [letter] = await deadletters.dead_letters(kafka_bootstrap, service)
    assert letter.status == "replayed, pending" and [r.by for r in letter.replays] == ["test"]
    await commit(kafka_bootstrap, service, done.topic, done.partition, done.offset + 1)  # the service consumed it
    [letter] = await deadletters.dead_letters(kafka_bootstrap, service)
    assert letter.status == "replayed, handled"

    # the replay failed after all: the service dead-lettered it again, naming what it replayed
    await write_dead_letter(kafka_bootstrap, service, key, value, extra={REPLAY_OF: letter.id, REPLAY_FOR: service})
    first, second = await deadletters.dead_letters(kafka_bootstrap, service)
    assert first.status == f"replayed, failed again as {second.id}" and second.status == "open"
    assert second.replay_of == first.id
    assert deadletters.why_not_replay(first) and deadletters.why_not_replay(second) is None
    assert await deadletters._main(["--bootstrap", kafka_bootstrap, "replay", "--service", service, "--id", first.id]) == 2
    assert await deadletters._main(["--bootstrap", kafka_bootstrap, "replay", "--service", "other", "--id", second.id]) == 2
    [again] = await deadletters.replay([second], kafka_bootstrap)
    headers = {k: v.decode() for k, v in (await record_at(kafka_bootstrap, again.topic, again.partition, again.offset)).headers}
    assert headers[REPLAY_OF] == second.id  # the marks of the earlier replay are replaced, not kept


async def test_a_back_office_replay_is_handled_in_place_once_and_recorded(kafka_bootstrap, tmp_path):
    from services.gateway.tables import trace  # noqa: PLC0415
    from shared.runtime import Service  # noqa: PLC0415
    from shared.settings import settings  # noqa: PLC0415
    from shared.testing import LocalRunner  # noqa: PLC0415
    from tests.integration.test_batch_core import Recorder, count  # noqa: PLC0415

    recorder = Recorder()
    service = Service("gateway", handlers=recorder.handlers)
    service.settings = settings().model_copy(update={"kafka_bootstrap_servers": kafka_bootstrap})
    key = f"P:ORD-{uuid.uuid4().hex[:8]}"
    _, envelope = build_envelope(decision(key.split(":")[1]), "customs", key)
    await write_dead_letter(kafka_bootstrap, "gateway", key, envelope.model_dump_json().encode())
    [letter] = [d for d in await deadletters.dead_letters(kafka_bootstrap, "gateway") if d.key == key]
    async with LocalRunner(service, tmp_path) as runner:
        [done] = await deadletters.replay_in_place(service, [letter])
        assert (done.outcome, done.offset, done.by) == ("handled", -1, "back office")
        [again] = await deadletters.replay_in_place(service, [letter])
        assert again.outcome == "handled"
        assert await count(runner, trace, trace.c.correlation_id == key) == 1  # once
    [letter] = [d for d in await deadletters.dead_letters(kafka_bootstrap, "gateway") if d.key == key]
    assert letter.status == "replayed, handled" and len(letter.replays) == 2
