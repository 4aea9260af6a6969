"""The exactly-once batch core: a batch of consumed records in, one database transaction out.

This is the part of the runtime that decides what a batch of records does to a service's database, with
no broker in sight, so it can be driven in tests on SQLite with synthetic records (shared/testing.py):

- each record is parsed as an envelope, checked against its contract, and looked up in the inbox
  (one query for the whole batch); a record seen before has no second effect;
- the records to handle are cut into runs of one event type, in the order they are consumed, and each
  run goes to its handler at once: `@handlers.on_batch(Model)` receives the run as a list of `Received`,
  so it can load the state of every key with one query per table and write with one statement per table;
- the happy path is ONE transaction with no savepoint per record: effects, emitted events (the outbox),
  inbox rows and dead letters commit together, or nothing does;
- when a handler raises an error that is not about the database being unreachable, the transaction is
  rolled back and the batch is handled again record by record, each in a savepoint with a few tries:
  the offending record is dead-lettered alone, with its reason, and the rest are handled;
- an outage (`is_transient`) propagates: the caller keeps the batch and its offsets and tries again.

Events of one key keep their offset order: Kafka keeps a key in one partition, a run never reorders
records, and a handler given several events of one key must apply them in list order.
"""
from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

from aiokafka.structs import ConsumerRecord
from opentelemetry import trace
from opentelemetry.trace import Link, NonRecordingSpan, SpanKind, Status, StatusCode
from pydantic import BaseModel, ValidationError
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.envelope import Envelope
from contracts.topics import EVENT_TYPES, TOPICS, EventType, event_type_of
from shared import logs, metrics, telemetry, tracing
from shared.db import is_transient
from shared.outbox import dead_letter_row, outbox_row, stage_rows
from shared.tables import INBOX

log = logging.getLogger(__name__)

P = TypeVar("P", bound=BaseModel)

# Registrations and ratings first: an order in the same batch may name the enterprise they describe.
# That is a convenience, not a promise: the order of records of DIFFERENT topics (within a batch, between
# batches, between instances of a group) is whatever the consumers met, so a handler joining topics (an
# order and customs' decision about it) must end the same in every interleaving (tax and FX: tested over
# all of them in tests/integration/test_races.py). Only one partition's offset order is kept.
TOPIC_PRIORITY = {t.name: i for i, t in enumerate(
    sorted(TOPICS, key=lambda t: 0 if t.name.startswith(("sw.enterprise", "credit.")) else 1))}


@dataclass(frozen=True)
class Received(Generic[P]):
    """One consumed event: its envelope, its payload parsed as its contract, and the trace context that
    events emitted because of it continue (`traceparent`, W3C): the one the record carried or, with
    tracing on, that of the span handling it."""

    envelope: Envelope
    payload: P
    traceparent: str | None = None

    @property
    def correlation_id(self) -> str:
        return self.envelope.correlation_id


class UnitOfWork:
    """One database transaction and the events it will publish; nothing is visible until it commits."""

    def __init__(self, session: AsyncSession, source: str):
        self.session = session
        self.source = source
        self._staged: list[dict] = []
        # The trace each correlation id of the run being handled continues (set by the batch core), so a
        # batch handler's events join their order's trace without naming their cause.
        self.causes: dict[str, str | None] = {}

    def emit(self, payload: BaseModel, correlation_id: str, key: str | None = None,
             cause: Received | None = None, traceparent: str | None = None) -> None:
        """Stage `payload` for publication after commit, keyed by `key` (default: the correlation id).
        Its `traceparent` header: the one given; else that of `cause` (the event that led to it); else that
        of the event of the same correlation id in the run being handled; else the current trace."""
        if traceparent is None:
            traceparent = cause.traceparent if cause is not None else self.causes.get(correlation_id)
        token = tracing.resume(traceparent)
        try:
            self._staged.append(outbox_row(payload, self.source, correlation_id, key))
        finally:
            tracing.end_trace(token)

    async def flush_events(self) -> int:
        staged, self._staged = self._staged, []
        await stage_rows(self.session, staged)
        return len(staged)


BatchHandler = Callable[[UnitOfWork, list[Received[Any]]], Awaitable[None]]
RecordHandler = Callable[[UnitOfWork, Envelope, Any], Awaitable[None]]


class Handlers:
    """Handlers by event type and version; the type's topic is subscribed to.

    `@handlers.on_batch(OrderSubmittedV2)`: the handler takes `(uow, events: list[Received])`, a run of
    consecutive events of that type, oldest first. `@handlers.on(Model)`: the handler takes
    `(uow, envelope, payload)`, one event at a time (simple, for low-volume types)."""

    def __init__(self) -> None:
        self.by_type: dict[tuple[str, int], BatchHandler] = {}
        self.topics: set[str] = set()

    def on_batch(self, model: type[BaseModel]) -> Callable[[BatchHandler], BatchHandler]:
        et = event_type_of(model)

        def register(fn: BatchHandler) -> BatchHandler:
            key = (et.name, et.version)
            if key in self.by_type:
                raise ValueError(f"{et.name} v{et.version} already has a handler")
            self.by_type[key] = fn
            self.topics.add(et.topic)
            return fn

        return register

    def on(self, model: type[BaseModel]) -> Callable[[RecordHandler], RecordHandler]:
        def register(fn: RecordHandler) -> RecordHandler:
            async def one_by_one(uow: UnitOfWork, events: list[Received[Any]]) -> None:
                for event in events:
                    cid = logs.correlation_id.set(event.correlation_id)
                    context = tracing.resume(event.traceparent)
                    try:
                        await fn(uow, event.envelope, event.payload)
                    finally:
                        logs.correlation_id.reset(cid)
                        tracing.end_trace(context)

            one_by_one.__name__ = fn.__name__
            self.on_batch(model)(one_by_one)
            return fn

        return register


@dataclass
class _Item:
    """A record of the batch and what the core made of it."""

    record: ConsumerRecord
    envelope: Envelope | None = None
    event_type: EventType | None = None
    received: Received | None = None
    outcome: str = "pending"  # handled | ignored | dead_letter | duplicate
    problem: str | None = None
    replay_of: str | None = None  # the dead letter this record replays (shared/deadletters.py), if it is a replay

    @property
    def inbox_id(self) -> str:
        """The event id; a record that is no envelope is known by its place in the log instead, so that a
        redelivered one is not dead-lettered twice. A replay is known by the dead letter it replays: not the
        event id, which the inbox already holds as dead-lettered, yet the same for every copy of the replay
        (a redelivery, or the operator replaying that dead letter again), so it is handled once."""
        if self.replay_of is not None:
            return replay_inbox_id(self.replay_of)
        if self.envelope is not None:
            return str(self.envelope.event_id)
        r = self.record
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kafka:{r.topic}/{r.partition}/{r.offset}"))


class BatchProcessor:
    """Handles batches of consumed records for one service, exactly once in effect (see the module)."""

    def __init__(self, name: str, handlers: Handlers, sessions: async_sessionmaker[AsyncSession],
                 retries: int = 3):
        self.name = name
        self.handlers = handlers
        self.sessions = sessions
        self.retries = max(1, retries)

    @staticmethod
    def consumption_order(batch: dict[Any, list[ConsumerRecord]]) -> list[ConsumerRecord]:
        """The records of a `getmany` result in the order they are handled: topics by priority (see
        TOPIC_PRIORITY), then partition, each partition in offset order."""
        return [r for tp in sorted(batch, key=lambda tp: (TOPIC_PRIORITY.get(tp.topic, 9), tp.topic, tp.partition))
                for r in batch[tp]]

    async def handle_batch(self, records: Iterable[ConsumerRecord]) -> None:
        """Handle `records` (in this order) in one transaction; raises only what `is_transient` calls an
        outage, after which nothing of the batch was committed."""
        records = list(records)
        if not telemetry.enabled(self.name):
            await self._handle_batch(records)
            return
        # One span for the batch (its SQL statements are its children), linked to the records' traces.
        parents = tracing.links((dict(r.headers or []).get("traceparent") or b"").decode("latin-1") for r in records)
        with telemetry.tracer(self.name).start_as_current_span(
                f"{self.name} process", kind=SpanKind.CONSUMER, links=parents,
                attributes={"messaging.system": "kafka", "messaging.batch.message_count": len(records)}):
            await self._handle_batch(records)

    async def _handle_batch(self, records: list[ConsumerRecord]) -> None:
        try:
            await self._transaction(records, isolate=False)
        except Exception as err:
            if is_transient(err):
                raise
            log.warning("a batch failed; handling it record by record to isolate the cause",
                        extra={"error": describe_error(err)[:500]})
            await self._transaction(records, isolate=True)

    async def _transaction(self, records: list[ConsumerRecord], isolate: bool) -> None:
        items = [self._classify(record) for record in records]
        spans = self._start_spans(items) if telemetry.enabled(self.name) else []
        try:
            await self._commit(items, isolate)
        except BaseException as err:
            self._end_spans(spans, err)
            raise
        self._end_spans(spans, None)
        self._count(items)

    def _start_spans(self, items: list[_Item]) -> list[tuple[_Item, trace.Span]]:
        """With tracing on, a span per parsed and sampled record as the child of the trace it carried (so the
        record's submission, in whichever service, and its handling here share one trace id), linked to the
        batch's span; the record's `Received.traceparent` becomes this span's, for the events its handling
        emits. Off, a batch costs no span at all; on, a sampled record costs one span (docs/observability.md
        gives the figure), an unsampled one nothing but reading its header."""
        tracer = telemetry.tracer(self.name)
        batch = trace.get_current_span().get_span_context()
        batch_links = [Link(batch)] if batch.is_valid else None
        spans = []
        for item in items:
            if item.received is None:
                continue
            record, parent = item.record, tracing.span_context(item.received.traceparent)
            if parent is not None and not parent.trace_flags.sampled:
                # Sampled out where the trace began (OTEL_TRACES_SAMPLER at the gateway): no span, and the
                # trace context goes on unchanged. That is what bounds the cost of tracing on a busy mesh.
                continue
            span = tracer.start_span(
                f"{record.topic} process", kind=SpanKind.CONSUMER, links=batch_links,
                context=trace.set_span_in_context(NonRecordingSpan(parent)) if parent else None,
                attributes={"messaging.system": "kafka", "messaging.destination.name": record.topic,
                            "messaging.destination.partition.id": str(record.partition),
                            "messaging.kafka.offset": record.offset, "sw.event_type": item.received.envelope.type,
                            "sw.correlation_id": item.received.correlation_id})
            own = tracing.traceparent_of(span)
            if own is not None:
                item.received = replace(item.received, traceparent=own)
            spans.append((item, span))
        return spans

    @staticmethod
    def _end_spans(spans: list[tuple[_Item, trace.Span]], error: BaseException | None) -> None:
        for item, span in spans:
            if error is not None:
                span.set_status(Status(StatusCode.ERROR, f"batch not committed: {type(error).__name__}"))
            else:
                span.set_attribute("sw.outcome", item.outcome)
                if item.outcome == "dead_letter":
                    span.set_status(Status(StatusCode.ERROR, (item.problem or "dead-lettered")[:500]))
            span.end()

    async def _commit(self, items: list[_Item], isolate: bool) -> None:
        async with self.sessions() as session:
            async with session.begin():
                await self._drop_duplicates(session, items)
                uow = UnitOfWork(session, self.name)
                for run in self._runs(items):
                    if isolate:
                        for item in run:
                            await self._handle_alone(uow, item)
                    else:
                        await self._handle_run(uow, run)
                await uow.flush_events()
                now = datetime.now(timezone.utc)
                inbox_rows = [{"event_id": i.inbox_id, "topic": i.record.topic, "outcome": i.outcome, "handled_at": now}
                              for i in items if i.outcome != "duplicate"]
                if inbox_rows:
                    await session.execute(insert(INBOX), inbox_rows)
                await stage_rows(session, [self._dead_letter(i) for i in items if i.outcome == "dead_letter"])

    def _classify(self, record: ConsumerRecord) -> _Item:
        item = _Item(record)
        headers = dict(record.headers or [])
        if REPLAY_OF in headers:
            # A replay goes back to the original topic, read by every consumer group of it; only the service
            # that dead-lettered the record handles it, the others handled the original already.
            item.replay_of = headers[REPLAY_OF].decode("utf-8", "replace")
            if headers.get(REPLAY_FOR, b"").decode("utf-8", "replace") != self.name:
                item.outcome = "ignored"
                return item
        try:
            item.envelope = Envelope.model_validate_json(record.value)
        except (ValidationError, ValueError, TypeError) as err:
            item.outcome, item.problem = "dead_letter", f"not an event envelope: {short_error(err)}"
            return item
        envelope = item.envelope
        et = EVENT_TYPES.get((envelope.type, envelope.version))
        if et is None or et.topic != record.topic:
            item.outcome, item.problem = "dead_letter", f"unknown event type {envelope.type} v{envelope.version} on {record.topic}"
            return item
        item.event_type = et
        if (et.name, et.version) not in self.handlers.by_type:
            item.outcome = "ignored"
            return item
        try:
            payload = et.model.model_validate(envelope.payload)
        except ValidationError as err:
            item.outcome, item.problem = "dead_letter", f"payload does not match {et.name} v{et.version}: {short_error(err)}"
            return item
        traceparent = (headers.get("traceparent") or b"").decode() or None
        item.received = Received(envelope, payload, traceparent)
        return item

    @staticmethod
    async def _drop_duplicates(session: AsyncSession, items: list[_Item]) -> None:
        ids = {i.inbox_id for i in items}
        seen: set[str] = set()
        if ids:
            seen = set((await session.execute(select(INBOX.c.event_id).where(INBOX.c.event_id.in_(ids)))).scalars())
        for item in items:
            event_id = item.inbox_id
            if event_id in seen:
                item.outcome = "duplicate"
            seen.add(event_id)  # a second copy inside the batch is a duplicate too

    @staticmethod
    def _runs(items: list[_Item]) -> list[list[_Item]]:
        """Consecutive items to handle of one event type, in consumption order."""
        runs: list[list[_Item]] = []
        for item in items:
            if item.outcome != "pending":
                continue
            if runs and runs[-1][0].event_type is item.event_type:
                runs[-1].append(item)
            else:
                runs.append([item])
        return runs

    def _handler(self, item: _Item) -> BatchHandler:
        assert item.event_type is not None
        return self.handlers.by_type[(item.event_type.name, item.event_type.version)]

    async def _handle_run(self, uow: UnitOfWork, run: list[_Item]) -> None:
        started = time.perf_counter()
        uow.causes = {i.received.correlation_id: i.received.traceparent for i in run}  # type: ignore[union-attr]
        await self._handler(run[0])(uow, [i.received for i in run])  # type: ignore[misc]
        elapsed = time.perf_counter() - started
        now = datetime.now(timezone.utc)
        age = metrics.EVENT_AGE.labels(self.name, run[0].event_type.name)  # type: ignore[union-attr]
        for item in run:
            item.outcome = "handled"
            age.observe(max(0.0, (now - item.received.envelope.occurred_at).total_seconds()))  # type: ignore[union-attr]
        metrics.HANDLER_SECONDS.labels(self.name, run[0].event_type.name).observe(elapsed / len(run))

    async def _handle_alone(self, uow: UnitOfWork, item: _Item) -> None:
        """One record in its own savepoint, a few tries; dead-lettered with the last error if it keeps failing."""
        last_error: Exception | None = None
        for _ in range(self.retries):
            staged_before = len(uow._staged)
            try:
                async with uow.session.begin_nested():
                    await self._handle_run(uow, [item])
                    # The events it emitted are written inside its savepoint: one that cannot be stored (a
                    # key longer than the outbox column) is this record's fault, not the batch's.
                    await uow.flush_events()
                return
            except Exception as err:
                del uow._staged[staged_before:]
                if is_transient(err):
                    raise
                last_error = err
                log.warning("handler failed", extra={"event_type": item.envelope.type, "error": describe_error(err)[:500]})
        item.outcome, item.problem = "dead_letter", describe_error(last_error)

    def _dead_letter(self, item: _Item) -> dict:
        record = item.record
        log.error("dead-lettering a record", extra={"topic": record.topic, "error": item.problem})
        return dead_letter_row(record.topic, record.key, record.value, list(record.headers or []),
                               item.problem or "failed", self.name, record.partition, record.offset)

    def _count(self, items: Sequence[_Item]) -> None:
        for item in items:
            kind = item.envelope.type if item.envelope else "(unparseable)"
            if item.outcome == "duplicate":
                metrics.EVENTS_DUPLICATE.labels(self.name, item.record.topic).inc()
            else:
                metrics.EVENTS_CONSUMED.labels(self.name, item.record.topic, kind).inc()


# Headers of a replayed record (written by shared/deadletters.py): the dead letter it replays, as
# `<dlq topic>:<partition>:<offset>`, and the service (the `dlq.source`) that is to handle it.
REPLAY_OF = "sw.replay-of"
REPLAY_FOR = "sw.replay-for"


def replay_inbox_id(dead_letter: str) -> str:
    """The inbox id of the replay of `dead_letter` (`<dlq topic>:<partition>:<offset>`): a UUID derived from
    it, never an event id, and the same for every copy of that replay."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sw-replay:{dead_letter}"))


def describe_error(err: BaseException | None) -> str:
    """`Type: message` for a dead letter's `dlq.error`; for a database error the driver's message and its
    SQLSTATE or SQLite code, never the statement and its parameters (they may carry personal data, and the
    record itself is in the dead letter)."""
    if isinstance(err, sa_exc.DBAPIError) and err.orig is not None:
        code = getattr(err.orig, "sqlstate", None) or getattr(err.orig, "sqlite_errorname", None)
        return f"{type(err).__name__}{f' [{code}]' if code else ''}: {err.orig}"
    return f"{type(err).__name__}: {err}"


def short_error(err: Exception) -> str:
    if isinstance(err, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(body)'}: {e['msg']}" for e in err.errors()[:5])
    return str(err)[:500]
