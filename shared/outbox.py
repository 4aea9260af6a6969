"""The transactional outbox: events are written with the state change, then relayed to Kafka.

`stage_rows` adds rows to the caller's transaction. `OutboxRelay` publishes unpublished rows in id
order, in batches, and marks them published only after the broker acknowledged them, so a crash at any
point loses nothing and at worst publishes a row twice (consumers' inboxes drop the copy).

One record cannot wedge the outbox (docs/outbox.md):
- every row of a batch has its own outcome: the acknowledged rows are marked published even when another
  row of the batch fails;
- a row the broker refuses for good (`refusal`: too large, invalid topic, corrupt record, ...) is *set
  aside*: `set_aside_at` and `set_aside_reason` are written, `sw_outbox_set_aside_total` counts it,
  /healthz shows it, and the rows behind it go on. It is never retried by itself nor pruned;
- a retriable failure (broker down, timeout, unknown topic) stops the pass at that row: nothing after it
  is sent, the pass is retried from it, so one key's rows are never published out of order;
- on PostgreSQL only one relay per database publishes at a time (`RelayLease`: a session-level advisory
  lock held on one connection), so two instances of a service keep each key's order;
- `Pruner` deletes published outbox rows and old inbox rows in bounded chunks, busy or idle."""
from __future__ import annotations

import asyncio
import json
import logging
import re
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from aiokafka import AIOKafkaProducer
from aiokafka import errors as kafka_errors
from opentelemetry.trace import SpanKind
from pydantic import BaseModel
from sqlalchemy import bindparam, delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from contracts.envelope import Envelope
from contracts.topics import event_type_of
from shared import metrics, telemetry, tracing
from shared.tables import INBOX, OUTBOX
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



# --- what the broker refuses for good -------------------------------------------------------------

# Errors that say the record itself can never be written, whatever we wait for. Kafka's own `retriable`
# flag is not the test: aiokafka marks KafkaTimeoutError, BrokerNotAvailableError or ProducerClosed as not
# retriable, yet they say nothing about the record; and an authorization failure is a configuration to
# fix (setting the topic's rows aside would throw away its traffic), so it stalls the relay, visibly.
PERMANENT_ERRORS: tuple[type[Exception], ...] = (
    kafka_errors.MessageSizeTooLargeError,   # larger than max_request_size (checked by the client)
    kafka_errors.RecordTooLargeError,        # larger than the broker's or the topic's max.message.bytes
    kafka_errors.RecordListTooLargeError,
    kafka_errors.InvalidTopicError,
    kafka_errors.CorruptRecordException,
    kafka_errors.InvalidMessageError,
    kafka_errors.InvalidTimestampError,
    kafka_errors.PolicyViolationError,
)
# Kafka's rule for a legal topic name (org.apache.kafka.common.internals.Topic): the client would only
# time out waiting for metadata of an illegal one, so it is refused here without a round trip.
LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")


def refusal(error: BaseException) -> str | None:
    """The reason a row is refused for good, or None when the failure may pass (retry the row later).

    Permanent: the errors of `PERMANENT_ERRORS`, and a row that cannot even be turned into a record
    (unreadable headers, a key that is not text: ValueError, TypeError, UnicodeError)."""
    if isinstance(error, PERMANENT_ERRORS):
        return f"{type(error).__name__}: {error}"[:2000]
    if isinstance(error, (ValueError, TypeError, UnicodeError)) and not isinstance(error, kafka_errors.KafkaError):
        return f"unreadable outbox row: {type(error).__name__}: {error}"[:2000]
    return None


def topic_refusal(topic: str) -> str | None:
    """Why `topic` can never be written to (an illegal Kafka topic name), or None."""
    if LEGAL_TOPIC.fullmatch(topic) and topic not in (".", ".."):
        return None
    return f"InvalidTopicError: {topic[:300]!r} is not a legal Kafka topic name"


# After the broker refused a record batch, an idempotent aiokafka producer's sequence numbers for that
# partition no longer match the broker's: every later send there fails with one of these, for ever. The
# Java client resets itself; with aiokafka the relay replaces the producer (a new producer id).
PRODUCER_OUT_OF_STEP: tuple[type[Exception], ...] = (
    kafka_errors.OutOfOrderSequenceNumber,
    kafka_errors.UnknownProducerId,
    kafka_errors.InvalidProducerEpoch,
)


class RelayStalled(Exception):
    """A pass stopped at a row whose failure may pass (the broker is down, a topic is missing, a
    timeout): the rows before it were settled, the row and those behind it will be sent again."""


# --- one relay per database --------------------------------------------------------------------------


class RelayLease:
    """Only one relay publishes a database's outbox at a time, so one key's rows leave in id order even
    when two instances of a service share the database.

    On PostgreSQL the lease is a session-level advisory lock (`pg_try_advisory_lock`) held on one
    dedicated connection, and the relay reads and marks rows through that very connection: if the
    connection is lost, so is the lock, and the relay's next statement fails instead of publishing beside
    the new holder. A process that dies loses its connection and the lock with it; a standby relay takes
    over within `OutboxRelay.lease_wait` seconds. The lock is released by closing the DBAPI connection
    (invalidate), never by returning it to the pool, where it would keep the lock.

    On SQLite there is no lease: a SQLite database belongs to one instance of one service."""

    LOCK_CLASS = 724352  # beside shared/migrations.py's 724351 (migrations); the second key is the service

    def __init__(self, service: str, engine: AsyncEngine):
        self.engine = engine
        self.key = zlib.crc32(f"outbox-relay:{service}".encode()) & 0x7FFFFFFF
        self.conn: AsyncConnection | None = None

    @property
    def needed(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @property
    def held(self) -> bool:
        return not self.needed or self.conn is not None

    async def acquire(self) -> bool:
        """True when this relay may publish (it holds the lock, or none is needed)."""
        if self.held:
            return True
        conn = await self.engine.connect()
        try:
            got = await conn.scalar(text("SELECT pg_try_advisory_lock(:c, :k)"), {"c": self.LOCK_CLASS, "k": self.key})
            await conn.commit()
        except BaseException:
            await self._discard(conn)
            raise
        if not got:
            await conn.close()  # it holds no lock: back to the pool
            return False
        self.conn = conn
        log.info("outbox relay holds the lease")
        return True

    def session(self, sessions: async_sessionmaker[AsyncSession]) -> AsyncSession:
        """A session on the lease's connection (PostgreSQL), or an ordinary one."""
        if self.conn is not None:
            return AsyncSession(bind=self.conn, expire_on_commit=False)
        return sessions()

    async def release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            await self._discard(conn)

    @staticmethod
    async def _discard(conn: AsyncConnection) -> None:
        try:
            await conn.invalidate()  # closes the DBAPI connection: PostgreSQL drops the session's locks
        finally:
            await conn.close()


# --- the relay ---------------------------------------------------------------------------------------


@dataclass
class PassOutcome:
    published: list  # rows
    set_aside: list[tuple[object, str]]  # (row, reason)
    stalled: BaseException | None


class OutboxRelay:
    """Publishes a service's outbox in id order (see the module's docstring for the guarantees).

    `last_error` is what stopped the last pass (None after a good pass) and `standby` is True while
    another instance holds the lease; /healthz shows both."""

    def __init__(self, service: str, sessions: async_sessionmaker[AsyncSession], producer: AIOKafkaProducer,
                 batch_size: int = 1000, idle_wait: float = 0.25, lease_wait: float = 2.0,
                 renew_producer: Callable[[], Awaitable[AIOKafkaProducer]] | None = None):
        """`renew_producer` stops the producer and returns a new, started one (the Service's); without it a
        producer put out of step by a refused batch stays so (tests that need no renewal)."""
        self.service = service
        self.sessions = sessions
        self.producer = producer
        self.renew_producer = renew_producer
        self.batch_size = batch_size
        self.idle_wait = idle_wait
        self.lease_wait = lease_wait
        self.wake = asyncio.Event()
        self.lease = RelayLease(service, sessions.kw["bind"])
        self.last_error: str | None = None
        self.standby = False

    async def run(self) -> None:
        try:
            while True:
                try:
                    if not await self.lease.acquire():
                        self.standby = True
                        await asyncio.sleep(self.lease_wait)
                        continue
                    self.standby = False
                    published = await self.publish_once()
                    self.last_error = None
                except asyncio.CancelledError:
                    raise
                except RelayStalled as err:
                    self.last_error = str(err)
                    log.warning("outbox relay stalled; retrying", extra={"error": str(err)})
                    await asyncio.sleep(1)
                    continue
                except Exception as err:
                    self.last_error = repr(err)
                    log.exception("outbox relay failed; retrying")
                    # The database may be gone, and the lock with it: take the lease afresh.
                    await self._release_quietly()
                    await asyncio.sleep(1)
                    continue
                if published < self.batch_size:
                    self.wake.clear()
                    try:
                        await asyncio.wait_for(self.wake.wait(), self.idle_wait)
                    except asyncio.TimeoutError:
                        pass
        finally:
            await self._release_quietly()

    async def _release_quietly(self) -> None:
        try:
            await self.lease.release()
        except Exception as err:  # the connection may be broken already; PostgreSQL then freed the lock
            log.warning("outbox relay lease release failed", extra={"error": repr(err)})

    async def publish_once(self) -> int:
        """One pass: up to `batch_size` unsettled rows in id order, sent, then settled in one
        transaction (one UPDATE for the published rows, one for the set-aside ones). Returns how many
        rows were settled; raises RelayStalled after settling what it could when a row failed in a way
        that may pass."""
        async with self.lease.session(self.sessions) as session:
            rows = (await session.execute(
                select(OUTBOX.c.id, OUTBOX.c.topic, OUTBOX.c.key, OUTBOX.c.value, OUTBOX.c.headers, OUTBOX.c.created_at)
                .where(OUTBOX.c.published_at.is_(None), OUTBOX.c.set_aside_at.is_(None))
                .order_by(OUTBOX.c.id).limit(self.batch_size)
            )).all()
            await session.rollback()  # no lock is held while we talk to the broker
        await self._observe_lag(rows)
        if not rows:
            return 0
        if telemetry.enabled(self.service):
            # One span per pass, linked to the traces of the records it publishes (each record's own
            # `traceparent` header was written when it was staged and goes out unchanged).
            parents = tracing.links(json.loads(r.headers).get("traceparent") for r in rows[:tracing.MAX_LINKS])
            with telemetry.tracer(self.service).start_as_current_span(
                    f"{self.service} outbox publish", kind=SpanKind.PRODUCER, links=parents,
                    attributes={"messaging.system": "kafka", "messaging.batch.message_count": len(rows)}) as span:
                outcome = await self._send(rows)
                await self._settle(outcome)
                span.set_attribute("sw.set_aside", len(outcome.set_aside))
        else:
            outcome = await self._send(rows)
            await self._settle(outcome)
        if outcome.stalled is not None:
            raise RelayStalled(f"{type(outcome.stalled).__name__}: {outcome.stalled}")
        return len(outcome.published) + len(outcome.set_aside)

    async def _send(self, rows) -> PassOutcome:  # noqa: ANN001
        sent: list[tuple[object, asyncio.Future]] = []
        set_aside: list[tuple[object, str]] = []
        stalled: BaseException | None = None
        for row in rows:
            reason = topic_refusal(row.topic)
            if reason is None:
                try:
                    future = await self._send_row(row)
                except asyncio.CancelledError:
                    raise
                except Exception as err:
                    reason = refusal(err)
                    if reason is None:
                        # Send nothing after it: a later row of the same key must not overtake it.
                        stalled = err
                        break
                else:
                    sent.append((row, future))
                    continue
            set_aside.append((row, reason))
        published: list = []
        suspects: list = []
        out_of_step = False
        results = await asyncio.gather(*(future for _, future in sent), return_exceptions=True)
        for (row, _), result in zip(sent, results):
            if not isinstance(result, BaseException):
                published.append(row)
            elif refusal(result) is not None:
                suspects.append(row)
            else:
                out_of_step = out_of_step or isinstance(result, PRODUCER_OUT_OF_STEP)
                # With the idempotent producer a retriable produce error is retried inside the client and
                # never comes back here; what does (the producer closing, or out of step after a refused
                # batch) leaves the row unmarked, to be sent again on the next pass.
                stalled = stalled or result
        # The broker answers for a whole record batch: one row too large for a topic's max.message.bytes
        # fails the rows that shared its batch. Each is sent again alone, on a fresh producer (the refusal
        # put the old one out of step); only a row refused alone is set aside.
        renew = bool(suspects)
        for row in suspects:
            if renew:
                renew = False
                failed = await self._renew()
                if failed is not None:
                    stalled = stalled or failed
                    break  # the rest stay open, for the next pass, in order
            try:
                await (await self._send_row(row))
            except asyncio.CancelledError:
                raise
            except Exception as err:
                reason = refusal(err)
                if reason is not None:
                    set_aside.append((row, reason))
                    renew = True
                else:
                    stalled = stalled or err
                    break  # the rest stay open, for the next pass, in order
            else:
                published.append(row)
        if renew or (out_of_step and not suspects):
            stalled = stalled or await self._renew()
        return PassOutcome(published, set_aside, stalled)

    async def _send_row(self, row) -> asyncio.Future:  # noqa: ANN001
        """Hands one outbox row to the producer; returns the future of the broker's acknowledgement. Raises
        what the producer raises at once (a row whose headers are not JSON: ValueError)."""
        headers = [(k, str(v).encode()) for k, v in json.loads(row.headers).items()]
        return await self.producer.send(row.topic, value=row.value, key=row.key.encode(), headers=headers)

    async def _renew(self) -> Exception | None:
        """A new producer (see PRODUCER_OUT_OF_STEP); the error if none could be started (the pass then
        settles what it has and stalls, rather than losing the marks of the rows already acknowledged)."""
        if self.renew_producer is None:
            log.warning("outbox relay: the producer may be out of step and cannot be renewed here")
            return None
        try:
            self.producer = await self.renew_producer()
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.warning("outbox relay: could not renew the producer", extra={"error": repr(err)})
            return err
        return None

    async def _settle(self, outcome: PassOutcome) -> None:
        now = datetime.now(timezone.utc)
        if outcome.published or outcome.set_aside:
            async with self.lease.session(self.sessions) as session, session.begin():
                if outcome.published:
                    await session.execute(update(OUTBOX).where(OUTBOX.c.id.in_([row.id for row in outcome.published]))
                                          .values(published_at=now))
                if outcome.set_aside:
                    await session.execute(
                        update(OUTBOX).where(OUTBOX.c.id == bindparam("row_id"))
                        .values(set_aside_at=now, set_aside_reason=bindparam("reason")),
                        [{"row_id": row.id, "reason": reason} for row, reason in outcome.set_aside],
                    )
        for row in outcome.published:
            metrics.EVENTS_PRODUCED.labels(self.service, row.topic).inc()
            if row.topic.endswith(".dlq"):
                metrics.EVENTS_DEAD_LETTERED.labels(self.service, row.topic[:-4]).inc()
        for row, reason in outcome.set_aside:
            metrics.OUTBOX_SET_ASIDE_TOTAL.labels(self.service, row.topic[:200]).inc()
            log.error("outbox row set aside: the broker refuses it for good",
                      extra={"topic": row.topic[:200], "error": f"outbox id {row.id}, key {row.key[:200]}: {reason}"})
        if outcome.set_aside:
            metrics.OUTBOX_SET_ASIDE.labels(self.service).set(await count_set_aside(self.sessions))

    async def _observe_lag(self, rows) -> None:  # noqa: ANN001
        if len(rows) < self.batch_size:
            metrics.OUTBOX_LAG.labels(self.service).set(len(rows))
        else:
            async with self.sessions() as session:
                count = await session.scalar(select(func.count()).where(
                    OUTBOX.c.published_at.is_(None), OUTBOX.c.set_aside_at.is_(None)))
                metrics.OUTBOX_LAG.labels(self.service).set(count or 0)
        oldest = rows[0].created_at if rows else None
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=timezone.utc)
        age = (datetime.now(timezone.utc) - oldest).total_seconds() if oldest else 0
        metrics.OUTBOX_OLDEST_SECONDS.labels(self.service).set(age)


async def count_set_aside(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Outbox rows set aside and still there (ix_outbox_set_aside makes this an index count)."""
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).where(OUTBOX.c.set_aside_at.is_not(None))) or 0)


# --- pruning -----------------------------------------------------------------------------------------


class Pruner:
    """Deletes published outbox rows older than `outbox_keep` and inbox rows older than `inbox_keep`, in
    chunks of at most `chunk` rows, each chunk its own short transaction, oldest first.

    It runs beside the consumer and the relay whether they are idle or busy: after a full chunk it goes on
    at once (yielding between chunks), so under sustained load it deletes as fast as rows age out, and
    no statement ever holds locks on more than `chunk` rows. After a short chunk it sleeps `interval`.
    Set-aside outbox rows are kept (they wait for an operator). The inbox is kept long enough for any
    redelivery the broker can still make: a record older than the topics' retention (Kafka's default,
    7 days) cannot come back."""

    def __init__(self, service: str, sessions: async_sessionmaker[AsyncSession], *,
                 outbox_keep: timedelta = timedelta(minutes=10), inbox_keep: timedelta = timedelta(days=7),
                 chunk: int = 2000, interval: float = 30.0):
        self.service = service
        self.sessions = sessions
        self.outbox_keep = outbox_keep
        self.inbox_keep = inbox_keep
        self.chunk = chunk
        self.interval = interval

    async def run(self) -> None:
        while True:
            try:
                full = await self.prune_once()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("pruning failed; retrying", extra={"error": repr(err)})
                full = False
            await asyncio.sleep(0.05 if full else self.interval)

    async def prune_once(self, now: datetime | None = None) -> bool:
        """One chunk of each table. True when a table gave a full chunk (more may be waiting)."""
        now = now or datetime.now(timezone.utc)
        outbox = await self._chunk(
            OUTBOX, OUTBOX.c.id, OUTBOX.c.published_at, now - self.outbox_keep)
        inbox = await self._chunk(INBOX, INBOX.c.event_id, INBOX.c.handled_at, now - self.inbox_keep)
        return outbox >= self.chunk or inbox >= self.chunk

    async def _chunk(self, table, key, stamp, before: datetime) -> int:  # noqa: ANN001
        oldest = select(key).where(stamp < before).order_by(stamp).limit(self.chunk)
        async with self.sessions() as session, session.begin():
            deleted = (await session.execute(delete(table).where(key.in_(oldest.scalar_subquery())))).rowcount or 0
        if deleted:
            metrics.ROWS_PRUNED.labels(self.service, table.name).inc(deleted)
        return deleted


# --- the operator's side of set-aside rows -------------------------------------------------------------


async def list_set_aside(sessions: async_sessionmaker[AsyncSession]) -> list[dict]:
    """Every set-aside row, oldest first: id, topic, key, bytes, set_aside_at, reason."""
    async with sessions() as session:
        rows = (await session.execute(
            select(OUTBOX.c.id, OUTBOX.c.topic, OUTBOX.c.key, func.length(OUTBOX.c.value).label("bytes"),
                   OUTBOX.c.set_aside_at, OUTBOX.c.set_aside_reason)
            .where(OUTBOX.c.set_aside_at.is_not(None)).order_by(OUTBOX.c.id))).all()
    return [{"id": r.id, "topic": r.topic, "key": r.key, "bytes": r.bytes, "set_aside_at": r.set_aside_at.isoformat(),
             "reason": r.set_aside_reason} for r in rows]


async def release_set_aside(sessions: async_sessionmaker[AsyncSession], ids: list[int]) -> int:
    """Puts set-aside rows back in the relay's way (after the cause was fixed, e.g. a topic's
    max.message.bytes raised): the relay sends them again on its next pass, after the rows of their key
    that went on meanwhile (docs/outbox.md). Returns how many rows were released."""
    async with sessions() as session, session.begin():
        result = await session.execute(update(OUTBOX).where(OUTBOX.c.id.in_(ids), OUTBOX.c.set_aside_at.is_not(None))
                                       .values(set_aside_at=None, set_aside_reason=None))
    return result.rowcount or 0


def main(argv: list[str]) -> int:
    """python -m shared.outbox SERVICE set-aside            list the rows set aside (JSON lines)
    python -m shared.outbox SERVICE release ID [ID ...]    let the relay send them again"""
    from shared.db import create_engine, session_factory  # noqa: PLC0415
    from shared.settings import settings  # noqa: PLC0415

    if len(argv) < 2 or argv[1] not in ("set-aside", "release") or (argv[1] == "release" and len(argv) < 3):
        print(main.__doc__)
        return 2

    async def run() -> int:
        engine = create_engine(settings().database_url(argv[0]))
        try:
            sessions = session_factory(engine)
            if argv[1] == "set-aside":
                for row in await list_set_aside(sessions):
                    print(json.dumps(row))
            else:
                print(f"released {await release_set_aside(sessions, [int(i) for i in argv[2:]])}")
        finally:
            await engine.dispose()
        return 0

    return asyncio.run(run())


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
