"""The mesh runtime: one way for every service to consume, decide, store and publish.

A service is its tables, its handlers (one per consumed event type), its periodic jobs and its HTTP
routes. The runtime around them:

- consumes its topics in batches (`getmany`), handles a batch in ONE database transaction, with a
  savepoint per record, and commits offsets only after that transaction is committed;
- skips events whose `event_id` is already in the inbox (written in the same transaction as the effects);
- sends a record that cannot be parsed, or whose handler keeps failing, to `<topic>.dlq` (through the
  outbox, in the same transaction) with the error in headers, so the partition keeps moving;
- relays the outbox to Kafka (see shared/outbox.py);
- serves /healthz and /metrics.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.envelope import Envelope
from contracts.topics import EVENT_TYPES, TOPICS, event_type_of
from shared import logs, metrics
from shared.db import create_engine, is_sqlite, session_factory
from shared.migrations import upgrade
from shared.outbox import OutboxRelay, dead_letter_row, outbox_row, stage_rows
from shared.settings import Settings, settings
from shared.tables import INBOX
from shared.tracing import continue_trace, end_trace

log = logging.getLogger(__name__)

# Registrations and ratings first: an order in the same batch may name the enterprise they describe.
_TOPIC_PRIORITY = {t.name: i for i, t in enumerate(
    sorted(TOPICS, key=lambda t: 0 if t.name.startswith(("sw.enterprise", "credit.")) else 1))}


class UnitOfWork:
    """One database transaction and the events it will publish; nothing is visible until it commits."""

    def __init__(self, session: AsyncSession, source: str):
        self.session = session
        self.source = source
        self._staged: list[dict] = []

    def emit(self, payload: BaseModel, correlation_id: str, key: str | None = None) -> None:
        self._staged.append(outbox_row(payload, self.source, correlation_id, key))

    async def flush_events(self) -> int:
        staged, self._staged = self._staged, []
        await stage_rows(self.session, staged)
        return len(staged)


Handler = Callable[[UnitOfWork, Envelope, Any], Awaitable[None]]


class Handlers:
    """Handlers by event type: `@handlers.on(OrderSubmitted)`; the type's topic is subscribed to."""

    def __init__(self) -> None:
        self.by_type: dict[tuple[str, int], Handler] = {}  # (event type, version): one version of a type has one handler
        self.topics: set[str] = set()

    def on(self, model: type[BaseModel]) -> Callable[[Handler], Handler]:
        et = event_type_of(model)

        def register(fn: Handler) -> Handler:
            self.by_type[(et.name, et.version)] = fn
            self.topics.add(et.topic)
            return fn

        return register


@dataclass
class PeriodicJob:
    seconds: Callable[[Settings], float]
    run: Callable[[UnitOfWork], Awaitable[None]]


class TransientError(Exception):
    """The database or broker is unreachable: retry the whole batch later, do not dead-letter."""


def _is_transient(err: BaseException) -> bool:
    if isinstance(err, (OSError, asyncio.TimeoutError, ConnectionError)):
        return True
    if isinstance(err, sa_exc.DBAPIError) and err.connection_invalidated:
        return True
    if isinstance(err, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return True
    if isinstance(err, sa_exc.DBAPIError):
        # A deadlock, serialization failure or lock timeout is about timing, not the record: retry the whole batch.
        code = getattr(err.orig, "sqlstate", None) or getattr(err.orig, "pgcode", None)
        if code in ("40P01", "40001", "55P03"):
            return True
    return isinstance(err, TransientError)


@dataclass
class Service:
    name: str
    handlers: Handlers = field(default_factory=Handlers)
    jobs: list[PeriodicJob] = field(default_factory=list)
    on_start: list[Callable[["Service"], Awaitable[None]]] = field(default_factory=list)
    group_id: str | None = None  # the consumer group; the service name unless a test needs its own

    def __post_init__(self) -> None:
        self.settings = settings()
        self.engine = None
        self.sessions: async_sessionmaker[AsyncSession] | None = None
        self.reader_engine = None
        self.readers: async_sessionmaker[AsyncSession] | None = None  # for queries that write nothing
        self.producer: AIOKafkaProducer | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.relay: OutboxRelay | None = None
        self._tasks: list[asyncio.Task] = []

    # --- units of work --------------------------------------------------------------------

    @asynccontextmanager
    async def unit_of_work(self):
        """A transaction for an HTTP request or a job: state and outbox commit together, or neither."""
        assert self.sessions is not None, "service not started"
        async with self.sessions() as session:
            async with session.begin():
                uow = UnitOfWork(session, self.name)
                yield uow
                await uow.flush_events()
        if self.relay:
            self.relay.wake.set()

    def every(self, seconds: Callable[[Settings], float]):
        def register(fn: Callable[[UnitOfWork], Awaitable[None]]):
            self.jobs.append(PeriodicJob(seconds, fn))
            return fn
        return register

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        s.refuse_unsafe_production_defaults()
        logs.configure_logging(self.name, s.log_level)
        url = s.database_url(self.name)
        await asyncio.to_thread(upgrade, self.name, url)
        self.engine = create_engine(url)
        self.sessions = session_factory(self.engine)
        if is_sqlite(url):
            self.reader_engine = create_engine(url, read_only=True)
            self.readers = session_factory(self.reader_engine)
        else:
            self.readers = self.sessions
        for hook in self.on_start:
            await hook(self)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap_servers, enable_idempotence=True, acks="all",
            linger_ms=5, max_batch_size=262144, client_id=f"{self.name}-producer",
        )
        await self._retry_until_up(self.producer.start)
        self.relay = OutboxRelay(self.name, self.sessions, self.producer)
        self._tasks.append(asyncio.create_task(self.relay.run(), name=f"{self.name}-relay"))
        if self.handlers.topics:
            self.consumer = AIOKafkaConsumer(
                *sorted(self.handlers.topics), bootstrap_servers=s.kafka_bootstrap_servers,
                group_id=self.group_id or self.name, client_id=f"{self.name}-consumer", enable_auto_commit=False,
                auto_offset_reset="earliest", max_poll_records=s.sw_batch_max_records,
                session_timeout_ms=10000, heartbeat_interval_ms=1000,
            )
            await self._retry_until_up(self.consumer.start)
            self._tasks.append(asyncio.create_task(self._consume(), name=f"{self.name}-consumer"))
        for job in self.jobs:
            self._tasks.append(asyncio.create_task(self._run_job(job), name=f"{self.name}-{job.run.__name__}"))
        log.info("service started", extra={"topic": ",".join(sorted(self.handlers.topics))})

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.consumer:
            await self.consumer.stop()
        if self.producer:
            await self.producer.stop()
        if self.engine:
            await self.engine.dispose()
        if self.reader_engine:
            await self.reader_engine.dispose()

    @staticmethod
    async def _retry_until_up(start: Callable[[], Awaitable[None]], attempts: int = 60) -> None:
        for attempt in range(attempts):
            try:
                await start()
                return
            except Exception:
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(1)

    # --- consuming ------------------------------------------------------------------------

    async def _consume(self) -> None:
        assert self.consumer is not None
        while True:
            batch = await self.consumer.getmany(
                timeout_ms=self.settings.sw_batch_wait_ms, max_records=self.settings.sw_batch_max_records
            )
            if not batch:
                continue
            records = [r for tp in sorted(batch, key=lambda tp: (_TOPIC_PRIORITY.get(tp.topic, 9), tp.partition))
                       for r in batch[tp]]
            metrics.BATCH_SIZE.labels(self.name).observe(len(records))
            delay = 0.5
            while True:
                try:
                    await self.handle_batch(records)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as err:
                    # The database (or the outbox write) is down: keep the batch and try again; the
                    # offsets are not committed, so nothing is lost even if we die here.
                    log.warning("batch failed, retrying", extra={"error": repr(err)})
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10)
            offsets = {tp: recs[-1].offset + 1 for tp, recs in batch.items()}
            try:
                await self.consumer.commit(offsets)
            except Exception as err:
                # A rebalance took the partitions: their new owner will see these records again and
                # the inbox will recognise them.
                log.warning("offset commit failed", extra={"error": repr(err)})

    async def handle_batch(self, records: Iterable[ConsumerRecord]) -> None:
        records = list(records)
        assert self.sessions is not None
        parsed: list[tuple[ConsumerRecord, Envelope | None, str | None]] = []
        for record in records:
            try:
                parsed.append((record, Envelope.model_validate_json(record.value), None))
            except (ValidationError, ValueError, TypeError) as err:
                parsed.append((record, None, f"not an event envelope: {_short(err)}"))
        async with self.sessions() as session:
            async with session.begin():
                ids = [str(e.event_id) for _, e, _ in parsed if e is not None]
                seen: set[str] = set()
                if ids:
                    seen = set((await session.execute(
                        select(INBOX.c.event_id).where(INBOX.c.event_id.in_(ids)))).scalars())
                inbox_rows: list[dict] = []
                dead_letters: list[dict] = []
                uow = UnitOfWork(session, self.name)
                for record, envelope, problem in parsed:
                    if envelope is None:
                        dead_letters.append(self._dead_letter(record, problem or "unparseable"))
                        continue
                    event_id = str(envelope.event_id)
                    if event_id in seen:
                        metrics.EVENTS_DUPLICATE.labels(self.name, record.topic).inc()
                        continue
                    seen.add(event_id)
                    outcome, problem = await self._handle_record(uow, record, envelope)
                    if outcome == "dead_letter":
                        dead_letters.append(self._dead_letter(record, problem or "failed"))
                    inbox_rows.append({"event_id": event_id, "topic": record.topic, "outcome": outcome,
                                       "handled_at": datetime.now(timezone.utc)})
                await uow.flush_events()
                if inbox_rows:
                    await session.execute(insert(INBOX), inbox_rows)
                await stage_rows(session, dead_letters)
        if self.relay:
            self.relay.wake.set()

    async def _handle_record(self, uow: UnitOfWork, record: ConsumerRecord, envelope: Envelope) -> tuple[str, str | None]:
        metrics.EVENTS_CONSUMED.labels(self.name, record.topic, envelope.type).inc()
        et = EVENT_TYPES.get((envelope.type, envelope.version))
        if et is None or et.topic != record.topic:
            return "dead_letter", f"unknown event type {envelope.type} v{envelope.version} on {record.topic}"
        handler = self.handlers.by_type.get((envelope.type, envelope.version))
        if handler is None:
            return "ignored", None
        try:
            payload = et.model.model_validate(envelope.payload)
        except ValidationError as err:
            return "dead_letter", f"payload does not match {et.name} v{et.version}: {_short(err)}"
        cid_token = logs.correlation_id.set(envelope.correlation_id)
        headers = dict(record.headers or [])
        trace_token = continue_trace((headers.get("traceparent") or b"").decode() or None)
        try:
            last_error = None
            for _ in range(max(1, self.settings.sw_handler_retries)):
                staged_before = len(uow._staged)
                started = time.perf_counter()
                try:
                    async with uow.session.begin_nested():
                        await handler(uow, envelope, payload)
                    metrics.HANDLER_SECONDS.labels(self.name, envelope.type).observe(time.perf_counter() - started)
                    return "handled", None
                except Exception as err:
                    del uow._staged[staged_before:]
                    if _is_transient(err):
                        raise
                    last_error = err
                    log.warning("handler failed", extra={"event_type": envelope.type, "error": repr(err)})
            return "dead_letter", f"{type(last_error).__name__}: {last_error}"
        finally:
            logs.correlation_id.reset(cid_token)
            end_trace(trace_token)

    def _dead_letter(self, record: ConsumerRecord, problem: str) -> dict:
        log.error("dead-lettering a record", extra={"topic": record.topic, "error": problem})
        return dead_letter_row(record.topic, record.key, record.value, list(record.headers or []),
                               problem, self.name, record.partition, record.offset)

    # --- jobs -------------------------------------------------------------------------------

    async def _run_job(self, job: PeriodicJob) -> None:
        while True:
            await asyncio.sleep(job.seconds(self.settings))
            try:
                async with self.unit_of_work() as uow:
                    await job.run(uow)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("periodic job failed", extra={"event_type": job.run.__name__})

    # --- HTTP -------------------------------------------------------------------------------

    async def health(self) -> tuple[bool, dict]:
        checks = {"database": "ok", "broker": "ok"}
        try:
            async with self.readers() as session:  # type: ignore[misc]
                await asyncio.wait_for(session.execute(text("SELECT 1")), 3)
        except Exception as err:
            checks["database"] = f"down: {type(err).__name__}"
        try:
            assert self.producer is not None
            await asyncio.wait_for(self.producer.client.fetch_all_metadata(), 3)
        except Exception as err:
            checks["broker"] = f"down: {type(err).__name__}"
        return all(v == "ok" for v in checks.values()), checks

    def http(self, *routers, title: str | None = None, **fastapi_kwargs) -> FastAPI:
        service = self

        @asynccontextmanager
        async def lifespan(_app: FastAPI):
            await service.start()
            try:
                yield
            finally:
                await service.stop()

        app = FastAPI(title=title or f"single window: {self.name}", lifespan=lifespan, **fastapi_kwargs)
        app.state.service = self

        @app.get("/healthz", tags=["operations"])
        async def healthz():
            ok, checks = await service.health()
            return JSONResponse({"status": "ok" if ok else "unavailable", "service": service.name, **checks},
                                status_code=200 if ok else 503)

        @app.get("/metrics", tags=["operations"])
        async def prometheus_metrics():
            return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

        from shared.http import install_problem_details  # noqa: PLC0415 - avoids an import cycle

        install_problem_details(app)
        for router in routers:
            app.include_router(router)
        return app


def _short(err: Exception) -> str:
    if isinstance(err, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(body)'}: {e['msg']}" for e in err.errors()[:5])
    return str(err)[:500]


def json_dumps(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))


__all__ = ["Service", "Handlers", "UnitOfWork", "TransientError", "Path"]
