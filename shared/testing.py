"""A single-threaded runner for tests: a service's batch core on its own database, fed synthetic records.

No broker and no background task: `deliver` builds the Kafka records a producer would have written
(envelope, key, headers) and hands them to the same `handle_batch` the consumer calls, so a test sees
exactly what the service would do with that batch, and reads what it emitted from its outbox.

    async with LocalRunner(service, tmp_path) as runner:
        emitted = await runner.deliver(order_event, payment_event)     # one batch
        assert emitted[0].type == "customs.decision"
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any
from unittest.mock import patch

from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel
from sqlalchemy import select

from contracts.envelope import Envelope
from contracts.topics import EVENT_TYPES
from shared.batch import BatchProcessor
from shared.outbox import build_envelope
from shared.runtime import Service
from shared.tables import OUTBOX


class LocalRunner:
    """Drives `service` (its handlers, tables and migrations) on an SQLite file in `directory`, or on the
    database at `url` (e.g. PostgreSQL, where several runners on one database race like instances)."""

    def __init__(self, service: Service, directory: Path, source: str = "test", url: str | None = None):
        self.service = service
        self.url = url or f"sqlite+aiosqlite:///{Path(directory) / (service.name + '.db')}"
        self.source = source
        self._offsets: dict[str, int] = defaultdict(int)
        self._last_outbox_id = 0

    async def __aenter__(self) -> "LocalRunner":
        await self.service.open_database(self.url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.service.close_database()

    def record(self, event: BaseModel | Envelope | bytes, correlation_id: str = "test", *, topic: str | None = None,
               partition: int = 0) -> ConsumerRecord:
        """The record a producer would write for `event` (a payload, a whole envelope, or raw bytes on `topic`)."""
        if isinstance(event, BaseModel) and not isinstance(event, Envelope):
            topic, event = build_envelope(event, self.source, correlation_id)
        if isinstance(event, Envelope):
            topic = topic or EVENT_TYPES[(event.type, event.version)].topic
            value = event.model_dump_json().encode()
            headers = [("type", event.type.encode()), ("version", str(event.version).encode())]
            key = event.correlation_id.encode()
        else:
            value, headers, key = event, [], correlation_id.encode()
        assert topic is not None, "raw bytes need a topic"
        offset = self._offsets[topic]
        self._offsets[topic] += 1
        return ConsumerRecord(topic=topic, partition=partition, offset=offset, timestamp=0, timestamp_type=0,
                              key=key, value=value, checksum=None, serialized_key_size=len(key),
                              serialized_value_size=len(value), headers=headers)

    async def deliver(self, *events: BaseModel | Envelope | ConsumerRecord, correlation_id: str = "test") -> list[Envelope]:
        """Hand `events` to the service as ONE batch; returns the events it emitted (not dead letters)."""
        records = [e if isinstance(e, ConsumerRecord) else self.record(e, correlation_id) for e in events]
        await self.service.handle_batch(records)
        return [Envelope.model_validate_json(r.value) for r in await self.new_outbox_rows() if not r.topic.endswith(".dlq")]

    async def new_outbox_rows(self) -> list:
        """Outbox rows written since the last call (topic, key, value, headers)."""
        async with self.service.sessions() as session:  # type: ignore[misc]
            rows = (await session.execute(select(OUTBOX).where(OUTBOX.c.id > self._last_outbox_id)
                                          .order_by(OUTBOX.c.id))).all()
        if rows:
            self._last_outbox_id = rows[-1].id
        return rows

    async def dead_letters(self) -> list[dict]:
        """Every dead letter the service wrote: its topic, key, the untouched value and the headers (`dlq.*`)."""
        async with self.service.sessions() as session:  # type: ignore[misc]
            rows = (await session.execute(select(OUTBOX).where(OUTBOX.c.topic.like("%.dlq")).order_by(OUTBOX.c.id))).all()
        return [{"topic": r.topic, "key": r.key, "value": r.value, **json.loads(r.headers)} for r in rows]


async def batch_equals_one_by_one(runner_for: Callable[[Path], LocalRunner], directory: Path, events: Sequence,
                                  emitted_view: Callable[[list[Envelope]], Any],
                                  stored_view: Callable[[LocalRunner], Awaitable[Any]],
                                  handled_whole: bool = True) -> tuple[Any, Any]:
    """Delivers `events` as ONE batch and, on a fresh database, one batch each, and asserts both emitted
    and stored the same (as seen through `emitted_view` and `stored_view`); returns (emitted, stored).
    `handled_whole`: the one batch must also have gone through without the core isolating records after
    a failure (a set-based handler that only works record by record fails this)."""
    (Path(directory) / "together").mkdir(parents=True, exist_ok=True)
    (Path(directory) / "apart").mkdir(parents=True, exist_ok=True)
    async with runner_for(Path(directory) / "together") as runner:
        isolating = (patch.object(BatchProcessor, "_handle_alone", side_effect=AssertionError("the batch failed"))
                     if handled_whole else nullcontext())
        with isolating:
            together = emitted_view(await runner.deliver(*events))
        together_stored = await stored_view(runner)
    async with runner_for(Path(directory) / "apart") as runner:
        apart: list[Envelope] = []
        for event in events:
            apart += await runner.deliver(event)
        apart_stored = await stored_view(runner)
    assert together == emitted_view(apart)
    assert together_stored == apart_stored
    return together, together_stored
