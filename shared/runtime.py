"""The mesh runtime: one way for every service to consume, decide, store and publish.

A service is its tables, its handlers (one per consumed event type), its periodic jobs and its HTTP
routes. The runtime around them:

- consumes its topics in batches (`getmany`) and hands each batch to the exactly-once batch core
  (shared/batch.py: one transaction, inbox, dead letters), committing offsets only after it committed;
- relays the outbox to Kafka (see shared/outbox.py);
- runs periodic jobs, each in a unit of work;
- serves /healthz and /metrics, and measures its consumer group's lag every few seconds;
- traces all of it with OpenTelemetry when asked to (shared/telemetry.py).
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import kafka, logs, metrics, telemetry, tracing
from shared.batch import BatchProcessor, Handlers, Received, UnitOfWork
from shared.db import TransientError, create_engine, is_sqlite, is_transient, session_factory
from shared.migrations import upgrade
from shared.outbox import OutboxRelay, Pruner, count_set_aside
from shared.settings import Settings, settings

log = logging.getLogger(__name__)


@dataclass
class PeriodicJob:
    seconds: Callable[[Settings], float]
    run: Callable[[UnitOfWork], Awaitable[None]]


@dataclass
class Service:
    name: str
    handlers: Handlers = field(default_factory=Handlers)
    jobs: list[PeriodicJob] = field(default_factory=list)
    on_start: list[Callable[["Service"], Awaitable[None]]] = field(default_factory=list)
    group_id: str | None = None  # the consumer group; the service name unless a test needs its own
    # How often the consumer group's lag is measured (seconds): one ListOffsets request to the broker each
    # time, never per message.
    lag_every: float = 5.0

    def __post_init__(self) -> None:
        self.settings = settings()
        self.engine = None
        self.sessions: async_sessionmaker[AsyncSession] | None = None
        self.reader_engine = None
        self.readers: async_sessionmaker[AsyncSession] | None = None  # for queries that write nothing
        self.producer: AIOKafkaProducer | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.relay: OutboxRelay | None = None
        self.pruner: Pruner | None = None
        self.processor: BatchProcessor | None = None
        self._tasks: list[asyncio.Task] = []
        # The next offset to consume of each assigned partition as this group last committed it: the
        # consumer commits them itself, so the lag needs no round trip for them.
        self._committed: dict[TopicPartition, int] = {}
        self._lag_reported: set[TopicPartition] = set()

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

    async def open_database(self, url: str | None = None) -> None:
        """Migrate and open the service's own database (`url`, default from the settings), and make the
        batch core ready: all a service needs to handle events, without a broker (shared/testing.py)."""
        s = self.settings
        url = url or s.database_url(self.name)
        await asyncio.to_thread(upgrade, self.name, url)
        self.engine = create_engine(url)
        telemetry.instrument_engine(self.name, self.engine)
        self.sessions = session_factory(self.engine)
        if is_sqlite(url):
            self.reader_engine = create_engine(url, read_only=True)
            self.readers = session_factory(self.reader_engine)
        else:
            self.readers = self.sessions
        self.processor = BatchProcessor(self.name, self.handlers, self.sessions, s.sw_handler_retries)
        for hook in self.on_start:
            await hook(self)

    async def close_database(self) -> None:
        for engine in (self.engine, self.reader_engine):
            if engine is not None:
                await engine.dispose()
        self.engine = self.reader_engine = None

    async def start(self) -> None:
        s = self.settings
        s.refuse_unsafe_production_defaults(self.name)
        logs.configure_logging(self.name, s.log_level)
        telemetry.configure(self.name)
        await self.open_database()
        self.producer = self._new_producer()
        await self._retry_until_up(self.producer.start)
        self.relay = OutboxRelay(self.name, self.sessions, self.producer, renew_producer=self.renew_producer)
        self._tasks.append(asyncio.create_task(self.relay.run(), name=f"{self.name}-relay"))
        self.pruner = Pruner(self.name, self.sessions, outbox_keep=timedelta(minutes=s.sw_outbox_keep_minutes),
                             inbox_keep=timedelta(hours=s.sw_inbox_keep_hours), chunk=s.sw_prune_chunk)
        self._tasks.append(asyncio.create_task(self.pruner.run(), name=f"{self.name}-pruner"))
        if self.handlers.topics:
            self.consumer = AIOKafkaConsumer(
                *sorted(self.handlers.topics), bootstrap_servers=s.kafka_bootstrap_servers,
                group_id=self.group_id or self.name, client_id=f"{self.name}-consumer", enable_auto_commit=False,
                auto_offset_reset="earliest", max_poll_records=s.sw_batch_max_records,
                session_timeout_ms=10000, heartbeat_interval_ms=1000, **kafka.client_options(s),
            )
            await self._retry_until_up(self.consumer.start)
            self._tasks.append(asyncio.create_task(self._consume(), name=f"{self.name}-consumer"))
            self._tasks.append(asyncio.create_task(self._watch_lag(), name=f"{self.name}-lag"))
        for job in self.jobs:
            self._tasks.append(asyncio.create_task(self._run_job(job), name=f"{self.name}-{job.run.__name__}"))
        log.info("service started", extra={"topic": ",".join(sorted(self.handlers.topics))})

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers, enable_idempotence=True, acks="all",
            linger_ms=5, max_batch_size=262144, client_id=f"{self.name}-producer",
            **kafka.client_options(self.settings),
        )

    async def renew_producer(self) -> AIOKafkaProducer:
        """Replaces the producer with a new, started one (a new producer id): the relay's way out after the
        broker refused a record batch and put the old one's sequence numbers out of step."""
        fresh = self._new_producer()
        await fresh.start()
        old, self.producer = self.producer, fresh
        if old is not None:
            try:
                await asyncio.wait_for(old.stop(), 10)
            except Exception as err:
                log.warning("closing failed", extra={"error": f"old producer: {err!r}"})
        return fresh

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        # Each part is closed even if another fails: a broker that is already gone makes aiokafka's
        # stop raise (even CancelledError from its own tasks), and the database must still be released.
        for part, close in (("consumer", self.consumer and self.consumer.stop), ("producer", self.producer and self.producer.stop),
                            ("database", self.close_database)):
            if close is None:
                continue
            try:
                await asyncio.wait_for(close(), 30)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # we are being cancelled ourselves
                log.warning("closing failed", extra={"error": f"{part}: cancelled inside the client"})
            except Exception as err:
                log.warning("closing failed", extra={"error": f"{part}: {err!r}"})
        self._committed.clear()
        telemetry.flush(self.name)

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
        assert self.consumer is not None and self.processor is not None
        while True:
            batch = await self.consumer.getmany(
                timeout_ms=self.settings.sw_batch_wait_ms, max_records=self.settings.sw_batch_max_records
            )
            if not batch:
                continue
            records = self.processor.consumption_order(batch)
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
                self._committed.update(offsets)
            except Exception as err:
                # A rebalance took the partitions: their new owner will see these records again and
                # the inbox will recognise them.
                log.warning("offset commit failed", extra={"error": repr(err)})

    async def handle_batch(self, records: Iterable[ConsumerRecord]) -> None:
        """One batch, exactly once in effect (shared/batch.py), then wake the relay for what it emitted."""
        assert self.processor is not None, "database not open"
        await self.processor.handle_batch(records)
        if self.relay:
            self.relay.wake.set()

    async def _watch_lag(self) -> None:
        while True:
            await asyncio.sleep(self.lag_every)
            try:
                await self.observe_lag()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the broker is away: the gauge keeps its last values meanwhile
                log.warning("consumer lag not measured", extra={"error": repr(err)})

    async def observe_lag(self) -> dict[TopicPartition, int]:
        """The group's lag per assigned partition (log end offset minus the committed offset; a partition
        the group never committed counts from its first offset), also set as `sw_consumer_lag_records`
        {group, topic, partition}. One ListOffsets request for the end offsets; committed offsets are the
        ones this consumer committed, fetched from the broker only for a partition newly assigned."""
        assert self.consumer is not None, "no consumer"
        consumer, group = self.consumer, self.group_id or self.name
        assigned = set(consumer.assignment())
        for tp in set(self._committed) - assigned:
            del self._committed[tp]  # another instance owns it now; fetched afresh if it comes back
        if not assigned:
            ends: dict[TopicPartition, int] = {}
        else:
            ends = await consumer.end_offsets(list(assigned))
            unknown = [tp for tp in assigned if tp not in self._committed]
            never = []
            for tp in unknown:
                offset = await consumer.committed(tp)
                if offset is None:
                    never.append(tp)
                else:
                    self._committed.setdefault(tp, offset)
            if never:
                self._committed.update({tp: offset for tp, offset in (await consumer.beginning_offsets(never)).items()
                                        if tp not in self._committed})
        lag = {tp: max(0, ends[tp] - self._committed.get(tp, ends[tp])) for tp in assigned if tp in ends}
        for tp, value in lag.items():
            metrics.CONSUMER_LAG.labels(group, tp.topic, str(tp.partition)).set(value)
        for tp in self._lag_reported - set(lag):
            try:
                metrics.CONSUMER_LAG.remove(group, tp.topic, str(tp.partition))
            except KeyError:
                pass
        self._lag_reported = set(lag)
        return lag

    # --- jobs -------------------------------------------------------------------------------

    async def _run_job(self, job: PeriodicJob) -> None:
        while True:
            await asyncio.sleep(job.seconds(self.settings))
            # Each run is a trace of its own (a span when tracing is on), not one trace for the process's life.
            with telemetry.tracer(self.name).start_as_current_span(f"{self.name} job {job.run.__name__}"):
                token = None if trace.get_current_span().is_recording() else tracing.continue_trace(None)
                try:
                    async with self.unit_of_work() as uow:
                        await job.run(uow)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("periodic job failed", extra={"event_type": job.run.__name__})
                finally:
                    tracing.end_trace(token)

    # --- HTTP -------------------------------------------------------------------------------

    async def health(self) -> tuple[bool, dict]:
        """(up, checks). Up (HTTP 200) when the database and the broker answer. `checks["outbox"]` tells
        how many rows are set aside (refused by the broker for good) and what the relay is doing
        (`publishing`, `standby` while another instance holds the lease, `stalled: <error>`); either makes
        the status `degraded` but stays 200: intake must go on while an operator looks (docs/outbox.md)."""
        checks: dict = {"database": "ok", "broker": "ok"}
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
        up = all(v == "ok" for v in checks.values())
        if checks["database"] == "ok":
            checks["outbox"] = await self.outbox_health()
        return up, checks

    async def outbox_health(self) -> dict:
        """{"set_aside": rows set aside, "relay": publishing | standby | stalled: <error>, "degraded": bool}."""
        try:
            set_aside = await asyncio.wait_for(count_set_aside(self.readers), 3)  # type: ignore[arg-type]
        except Exception as err:
            return {"set_aside": None, "relay": f"unknown: {type(err).__name__}", "degraded": True}
        metrics.OUTBOX_SET_ASIDE.labels(self.name).set(set_aside)
        relay = "stopped"
        if self.relay is not None:
            relay = ("standby" if self.relay.standby else
                     f"stalled: {self.relay.last_error}" if self.relay.last_error else "publishing")
        return {"set_aside": set_aside, "relay": relay, "degraded": set_aside > 0 or relay.startswith("stalled")}

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
        if telemetry.configure(self.name):
            telemetry.instrument_app(self.name, app)

        @app.get("/healthz", tags=["operations"], responses={503: {
            "description": "the database or the broker does not answer (the same JSON, `status`: `unavailable`)",
            "content": {"application/json": {"schema": {"type": "object"}}}}})
        async def healthz():
            ok, checks = await service.health()
            degraded = checks.get("outbox", {}).get("degraded", False)
            status = "unavailable" if not ok else "degraded" if degraded else "ok"
            return JSONResponse({"status": status, "service": service.name, **checks},
                                status_code=200 if ok else 503)

        # Prometheus' text exposition format, described as what it is (not FastAPI's default JSON).
        @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse,
                 responses={200: {"description": "Prometheus text exposition format 0.0.4",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}}})
        async def prometheus_metrics():
            return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

        from shared.http import install_problem_details  # noqa: PLC0415 - avoids an import cycle

        install_problem_details(app)
        from shared.deadletters import back_office  # noqa: PLC0415 - it builds on this module's Service

        app.include_router(back_office(self))
        for router in routers:
            app.include_router(router)
        return app


def json_dumps(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))


__all__ = ["Service", "Handlers", "UnitOfWork", "Received", "TransientError", "is_transient", "Path"]
