"""The transactional outbox: events are written with the state change, then relayed to Kafka.

`stage_event` adds a row to the caller's transaction. `OutboxRelay` publishes unpublished rows in id
order, in batches, and marks them published only after the broker acknowledged them, so a crash at any
point loses nothing and at worst publishes a row twice (consumers' inboxes drop the copy)."""
from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta, timezone

from aiokafka import AIOKafkaProducer
from pydantic import BaseModel
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.envelope import Envelope
from contracts.topics import event_type_of
from shared import metrics
from shared.tables import OUTBOX
from shared.tracing import current_traceparent

log = logging.getLogger(__name__)


def build_envelope(payload: BaseModel, source: str, correlation_id: str) -> tuple[str, Envelope]:
    et = event_type_of(type(payload))
    envelope = Envelope(
        type=et.name, version=et.version, source=source, correlation_id=correlation_id,
        payload=payload.model_dump(mode="json"),
    )
    return et.topic, envelope


def outbox_row(payload: BaseModel, source: str, correlation_id: str, key: str | None = None) -> dict:
    topic, envelope = build_envelope(payload, source, correlation_id)
    headers = {"type": envelope.type, "version": str(envelope.version), "source": source,
               "correlation_id": correlation_id, "traceparent": current_traceparent()}
    return {
        "topic": topic,
        "key": key or correlation_id,
        "value": envelope.model_dump_json().encode(),
        "headers": json.dumps(headers),
        "created_at": envelope.occurred_at,
    }


def dead_letter_row(topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]],
                    error: str, source: str, partition: int, offset: int) -> dict:
    # The record goes untouched; what went wrong travels in headers.
    kept = {k: v.decode("utf-8", "replace") for k, v in headers or [] if not k.startswith("dlq.")}
    kept.update({
        "dlq.error": error[:2000], "dlq.source": source, "dlq.original_topic": topic,
        "dlq.original_partition": str(partition), "dlq.original_offset": str(offset),
    })
    text_key = (key or b"").decode("utf-8", "replace")
    if len(text_key) > OUTBOX.c.key.type.length:
        # A key longer than the outbox column must not stop the record from being set aside (that would
        # wedge its partition): the dead letter is keyed by its start, the whole key travels in a header.
        kept["dlq.original_key"] = text_key
        text_key = text_key[:OUTBOX.c.key.type.length]
    return {
        "topic": f"{topic}.dlq",
        "key": text_key,
        "value": value or b"",
        "headers": json.dumps(kept),
        "created_at": datetime.now(timezone.utc),
    }


async def stage_rows(session: AsyncSession, rows: list[dict]) -> None:
    if rows:
        await session.execute(insert(OUTBOX), rows)


class OutboxRelay:
    def __init__(self, service: str, sessions: async_sessionmaker[AsyncSession], producer: AIOKafkaProducer,
                 batch_size: int = 1000, idle_wait: float = 0.25):
        self.service = service
        self.sessions = sessions
        self.producer = producer
        self.batch_size = batch_size
        self.idle_wait = idle_wait
        self.wake = asyncio.Event()
        self._last_purge = datetime.now(timezone.utc)

    async def run(self) -> None:
        while True:
            try:
                published = await self.publish_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay failed; retrying")
                await asyncio.sleep(1)
                continue
            if published < self.batch_size:
                self.wake.clear()
                try:
                    await asyncio.wait_for(self.wake.wait(), self.idle_wait)
                except asyncio.TimeoutError:
                    pass

    async def publish_once(self) -> int:
        async with self.sessions() as session:
            rows = (await session.execute(
                select(OUTBOX.c.id, OUTBOX.c.topic, OUTBOX.c.key, OUTBOX.c.value, OUTBOX.c.headers, OUTBOX.c.created_at)
                .where(OUTBOX.c.published_at.is_(None)).order_by(OUTBOX.c.id).limit(self.batch_size)
            )).all()
            await session.rollback()  # no lock is held while we talk to the broker
        await self._observe_lag(rows)
        if not rows:
            await self._purge()
            return 0
        futures = []
        for row in rows:
            headers = [(k, str(v).encode()) for k, v in json.loads(row.headers).items()]
            futures.append(await self.producer.send(row.topic, value=row.value, key=row.key.encode(), headers=headers))
        await asyncio.gather(*futures)
        now = datetime.now(timezone.utc)
        async with self.sessions() as session, session.begin():
            await session.execute(update(OUTBOX).where(OUTBOX.c.id.in_([r.id for r in rows])).values(published_at=now))
        for row in rows:
            metrics.EVENTS_PRODUCED.labels(self.service, row.topic).inc()
            if row.topic.endswith(".dlq"):
                metrics.EVENTS_DEAD_LETTERED.labels(self.service, row.topic[:-4]).inc()
        return len(rows)

    async def _observe_lag(self, rows) -> None:  # noqa: ANN001
        if len(rows) < self.batch_size:
            metrics.OUTBOX_LAG.labels(self.service).set(len(rows))
        else:
            async with self.sessions() as session:
                count = await session.scalar(select(func.count()).where(OUTBOX.c.published_at.is_(None)))
                metrics.OUTBOX_LAG.labels(self.service).set(count or 0)
        oldest = rows[0].created_at if rows else None
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=timezone.utc)
        age = (datetime.now(timezone.utc) - oldest).total_seconds() if oldest else 0
        metrics.OUTBOX_OLDEST_SECONDS.labels(self.service).set(age)

    async def _purge(self) -> None:
        now = datetime.now(timezone.utc)
        if now - self._last_purge < timedelta(seconds=60):
            return
        self._last_purge = now
        async with self.sessions() as session, session.begin():
            await session.execute(delete(OUTBOX).where(OUTBOX.c.published_at < now - timedelta(minutes=10)))
