"""What the batch core does with a record the database refuses, on SQLite and on PostgreSQL, and how it
takes a replayed dead letter (shared/db.py is_transient; shared/batch.py, the replay headers; shared/deadletters.py).

A refusal about the record (a value longer than its column, a numeric overflow, a constraint) dead-letters
that record alone and the batch goes on; an outage (a lock timeout, a lost connection, a locked file) keeps
the whole batch, commits nothing, and is raised for the consumer to try again. The errors here are the
databases' own, not built by hand."""
from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from aiokafka.structs import ConsumerRecord
from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import create_async_engine

from contracts.envelope import Envelope
from contracts.topics import CUSTOMS_DECISION
from contracts.v1.events import CustomsDecision
from services.gateway.tables import trace
from services.tax.handlers import handlers as tax_handlers
from services.tax.tables import orders
from shared.batch import REPLAY_FOR, REPLAY_OF, Received, is_transient, replay_inbox_id
from shared.deadletters import DeadLetter, _dead_letter, replay_headers
from shared.outbox import build_envelope
from shared.runtime import Service, UnitOfWork
from shared.tables import INBOX
from shared.testing import LocalRunner
from tests.conftest import create_database
from tests.integration.test_batch_core import Recorder, count, decision
from tests.integration.test_tax_handlers import decision as tax_decision
from tests.integration.test_tax_handlers import envelope as tax_envelope
from tests.integration.test_tax_handlers import worked_example_1

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, tmp_path):
    """A factory of fresh database URLs on the parametrised kind (PostgreSQL: the session's test cluster)."""
    if request.param == "sqlite":
        return lambda name: f"sqlite+aiosqlite:///{tmp_path / (name + '.db')}"
    port = request.getfixturevalue("postgres_port")
    return lambda name: create_database(port, f"{name}_{uuid.uuid4().hex[:10]}")


def runner(service: Service, tmp_path: Path, url: str) -> LocalRunner:
    return LocalRunner(service, tmp_path, url=url)


# --- is_transient on real errors -------------------------------------------------------------------------

async def error_of(url: str, *statements: str, setup: tuple[str, ...] = ()) -> Exception:
    """The error the last of `statements` raises on a fresh engine on `url` (after `setup`)."""
    engine = create_async_engine(url)
    try:
        if setup:
            async with engine.begin() as conn:
                for statement in setup:
                    await conn.execute(text(statement))
        try:
            async with engine.begin() as conn:
                for statement in statements:
                    await conn.execute(text(statement))
        except Exception as err:  # noqa: BLE001 - the error is what the test looks at
            return err
        raise AssertionError(f"{statements[-1]} did not fail")
    finally:
        await engine.dispose()


TABLE = ("CREATE TABLE t (k VARCHAR(4) PRIMARY KEY, n BIGINT, d NUMERIC(5, 2), c INT CHECK (c > 0), "
         "p VARCHAR(4) REFERENCES t (k))",
         "INSERT INTO t (k) VALUES ('u')")

RECORD_FAULTS = {  # statement -> what the database says (PostgreSQL SQLSTATE / SQLite error)
    "postgres": [
        ("INSERT INTO t (k) VALUES ('longer than four')", "22001 value too long"),
        ("INSERT INTO t (k, d) VALUES ('a', 123456)", "22003 numeric field overflow"),
        ("INSERT INTO t (k, n) VALUES ('a', 2 ^ 70)", "22003 bigint out of range"),
        ("INSERT INTO t (k, c) VALUES ('a', -1)", "23514 check violation"),
        ("INSERT INTO t (k) VALUES ('u')", "23505 unique violation"),
        ("INSERT INTO t (k, p) VALUES ('a', 'none')", "23503 foreign key violation"),
        ("SELECT nosuchcolumn FROM t", "42703 undefined column"),
    ],
    "sqlite": [
        ("SELECT abs(-9223372036854775807 - 1)", "SQLITE_ERROR integer overflow"),
        ("SELECT zeroblob(2000000000)", "SQLITE_TOOBIG string or blob too big"),
        ("INSERT INTO t (k, c) VALUES ('a', -1)", "SQLITE_CONSTRAINT_CHECK"),
        ("INSERT INTO t (k) VALUES ('u')", "SQLITE_CONSTRAINT_PRIMARYKEY"),
        ("SELECT nosuchcolumn FROM t", "SQLITE_ERROR no such column"),
    ],
}


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_refusal_about_the_values_is_not_an_outage(kind, request, tmp_path):
    for i, (statement, what) in enumerate(RECORD_FAULTS[kind]):
        if kind == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / f'faults{i}.db'}"
        else:
            url = create_database(request.getfixturevalue("postgres_port"), f"faults_{uuid.uuid4().hex[:10]}")
        setup = TABLE if kind == "postgres" else ("PRAGMA foreign_keys = ON", *TABLE)
        err = await error_of(url, statement, setup=setup)
        assert not is_transient(err), f"{what}: {err!r}"


async def test_outages_on_postgresql_keep_the_batch(postgres_port):
    url = create_database(postgres_port, f"outage_{uuid.uuid4().hex[:10]}")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (k INT)"))
        async with engine.connect() as holder:  # another transaction holds the table: a lock timeout (55P03)
            await holder.begin()
            await holder.execute(text("LOCK TABLE t IN ACCESS EXCLUSIVE MODE"))
            lock_timeout = await error_of(url, "SET LOCAL lock_timeout = '50ms'", "INSERT INTO t VALUES (1)")
            await holder.rollback()
        statement_timeout = await error_of(url, "SET LOCAL statement_timeout = 50", "SELECT pg_sleep(2)")  # 57014
        async with engine.connect() as victim:  # an administrator ends the session (57P01, connection lost)
            pid = (await victim.execute(text("SELECT pg_backend_pid()"))).scalar()
            async with engine.begin() as admin:
                await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await asyncio.sleep(0.2)
            try:
                await victim.execute(text("SELECT 1"))
                raise AssertionError("the terminated session still answers")
            except Exception as err:  # noqa: BLE001
                terminated = err
        refused = await error_of(url.replace(f":{postgres_port}/", ":1/"), "SELECT 1")  # nobody listens
    finally:
        await engine.dispose()
    for name, err in [("lock timeout", lock_timeout), ("statement timeout", statement_timeout),
                      ("terminated", terminated), ("refused", refused)]:
        assert is_transient(err), f"{name}: {err!r}"


async def test_outages_on_sqlite_keep_the_batch(tmp_path):
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (k INT)")
    holder.execute("BEGIN EXCLUSIVE")  # another process writes: "database is locked" (SQLITE_BUSY)
    try:
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}", connect_args={"timeout": 0.05})
        try:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (1)"))
            raise AssertionError("the write went through a held lock")
        except Exception as err:  # noqa: BLE001
            locked = err
        finally:
            await engine.dispose()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    cannot_open = await error_of(f"sqlite+aiosqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}", "SELECT 1")
    for name, err in [("locked", locked), ("cannot open", cannot_open)]:
        assert is_transient(err), f"{name}: {err!r}"


# --- an agency handler given a value longer than its column ------------------------------------------------

async def test_an_order_number_longer_than_its_column_is_dead_lettered_alone(database, tmp_path):
    """Tax keeps order numbers in VARCHAR(64) and emits keyed by the correlation id (the outbox key is
    VARCHAR(200)). An order event with a 300-character number (it did not come through the gateway) used to
    wedge tax on PostgreSQL: its dead letter, keyed by that id, could not be stored either, so the batch was
    retried for ever and the partition stopped. SQLite does not enforce column lengths: there it is handled."""
    url = database("tax")
    long_no = "ORD-" + "9" * 296
    async with runner(Service("tax", handlers=tax_handlers), tmp_path, url) as tax:
        emitted = await tax.deliver(tax_envelope(worked_example_1("ORD-1"), "ORD-1"),
                                    tax_envelope(worked_example_1(long_no), long_no),
                                    tax_envelope(worked_example_1("ORD-2"), "ORD-2"),
                                    tax_envelope(tax_decision("ORD-1"), "ORD-1"),
                                    tax_envelope(tax_decision("ORD-2"), "ORD-2"))
        assert sorted(e.payload["order_no"] for e in emitted) == ["ORD-1", "ORD-2"]  # its neighbours went on
        letters = await tax.dead_letters()
        if url.startswith("sqlite"):
            assert letters == [] and await count(tax, orders) == 3
            return
        [letter] = letters
        assert letter["topic"] == "sw.order.submitted.v2.dlq"
        assert letter["dlq.error"].startswith("DBAPIError [22001]: value too long for type character varying(64)")
        assert "INSERT" not in letter["dlq.error"]  # the driver's message, not the statement and its values
        assert letter["dlq.original_key"] == f"PLAT:{long_no}" and len(letter["key"]) == 200
        assert await count(tax, orders) == 2 and await count(tax, INBOX) == 5


async def test_a_record_whose_answer_cannot_be_stored_is_dead_lettered_alone(database, tmp_path):
    """A handler that keys what it emits by the record's correlation id (the outbox key is VARCHAR(200)):
    given a 250-character one, its effects can be stored but not its answer (PostgreSQL). The answer is
    written in the record's own savepoint, so the record is dead-lettered and its neighbours answered."""
    recorder = Recorder()

    async def on_decisions(uow: UnitOfWork, events: list[Received[CustomsDecision]]) -> None:
        now = datetime.now(timezone.utc)
        await uow.session.execute(insert(trace), [
            {"correlation_id": f"P:{e.payload.order_no}", "at": now, "source": "test", "type": "decision",
             "summary": e.payload.order_no} for e in events])
        for e in events:
            uow.emit(e.payload, correlation_id=e.correlation_id, cause=e)

    recorder.handlers.by_type[("customs.decision", 1)] = on_decisions
    url = database("gateway")
    async with runner(Service("gateway", handlers=recorder.handlers), tmp_path, url) as gateway:
        odd = build_envelope(decision("O1"), "customs", "P:O1/" + "x" * 250)[1]
        emitted = await gateway.deliver(decision("O0"), odd, decision("O2"), correlation_id="P:O")
        if url.startswith("sqlite"):
            assert len(emitted) == 3
            return
        assert [e.payload["order_no"] for e in emitted] == ["O0", "O2"]
        [letter] = await gateway.dead_letters()
        assert letter["topic"] == "customs.decision.v1.dlq" and "[22001]" in letter["dlq.error"]
        assert letter["dlq.original_key"] == "P:O1/" + "x" * 250
        assert await count(gateway, trace) == 2


def overflowing() -> Recorder:
    """The batch core's test handlers, with decisions first run through SQL arithmetic: a decision whose
    order number is `OVERFLOW` overflows the database's integers (abs of the smallest 64-bit integer), a
    stand-in for any record whose values the database refuses in a computation."""
    recorder = Recorder()

    async def on_decisions(uow: UnitOfWork, events: list[Received[CustomsDecision]]) -> None:
        values = " UNION ALL ".join(
            f"SELECT {'-9223372036854775807 - 1' if e.payload.order_no == 'OVERFLOW' else '1'} AS n" for e in events)
        await uow.session.execute(text(f"SELECT max(abs(n)) FROM ({values}) AS v"))  # noqa: S608 - test literals
        await recorder.write(uow, "customs.decision", events)

    recorder.handlers.by_type[("customs.decision", 1)] = on_decisions
    return recorder


async def test_a_record_the_database_cannot_compute_is_dead_lettered_alone(database, tmp_path):
    """SQLite reports an integer overflow as an OperationalError, which used to count as an outage: the
    batch was raised and retried for ever. PostgreSQL reports 22003."""
    recorder = overflowing()
    async with runner(Service("gateway", handlers=recorder.handlers), tmp_path, database("gateway")) as gateway:
        emitted = await gateway.deliver(decision("A"), decision("OVERFLOW"), decision("B"), correlation_id="P:x")
        assert [e.payload["order_no"] for e in emitted] == ["A", "B"]
        [letter] = await gateway.dead_letters()
        assert "overflow" in letter["dlq.error"] or "out of range" in letter["dlq.error"]
        assert await count(gateway, trace) == 2


async def test_a_locked_database_keeps_the_whole_batch(database, tmp_path):
    """A real outage inside a handler (PostgreSQL: a lock timeout; SQLite: the file locked by another writer)
    commits nothing and is raised, not dead-lettered; once the lock is gone the same batch is handled."""
    url = database("gateway")
    recorder = Recorder()
    async with runner(Service("gateway", handlers=recorder.handlers), tmp_path, url) as gateway:
        @event.listens_for(gateway.service.engine.sync_engine, "connect")
        def impatient(dbapi_connection, _record):  # noqa: ANN001 - a lock held over 100 ms is an outage here
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout = 100" if url.startswith("sqlite") else "SET lock_timeout = '100ms'")
            cursor.close()

        await gateway.service.engine.dispose()  # connections from now on are impatient
        if url.startswith("sqlite"):  # another process writes
            holder = sqlite3.connect(url.removeprefix("sqlite+aiosqlite:///"), isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
        else:  # another transaction holds the table
            holder_engine = create_async_engine(url)
            holder = await holder_engine.connect()
            await holder.begin()
            await holder.execute(text("LOCK TABLE trace IN ACCESS EXCLUSIVE MODE"))
        first, second = build_envelope(decision("L1"), "customs", "P:L1")[1], build_envelope(decision("L2"), "customs", "P:L2")[1]
        try:
            with pytest.raises(Exception) as raised:
                await gateway.deliver(first, second)
            assert is_transient(raised.value), repr(raised.value)
        finally:
            if url.startswith("sqlite"):
                holder.execute("ROLLBACK")
                holder.close()
            else:
                await holder.rollback()
                await holder.close()
                await holder_engine.dispose()
        assert await gateway.dead_letters() == []
        assert await count(gateway, INBOX) == 0
        assert len(await gateway.deliver(first, second)) == 2


# --- replays ---------------------------------------------------------------------------------------------

def as_dead_letter(row: dict, offset: int) -> DeadLetter:
    """A dead letter staged in the outbox (LocalRunner.dead_letters) as the broker would hand it to the
    replay command, at `offset` of partition 0 of its .dlq topic."""
    headers = [(k, v.encode()) for k, v in row.items() if k not in ("topic", "value", "key")]
    record = ConsumerRecord(topic=row["topic"], partition=0, offset=offset, timestamp=0, timestamp_type=0,
                            key=row["key"].encode(), value=row["value"], checksum=None, serialized_key_size=0,
                            serialized_value_size=0, headers=headers)
    return _dead_letter(record)


def replayed(letter: DeadLetter, offset: int = 1000) -> ConsumerRecord:
    """The record `shared.deadletters.replay` writes for `letter` on its original topic."""
    value = letter.value
    return ConsumerRecord(topic=letter.original_topic, partition=letter.original_partition, offset=offset,
                          timestamp=0, timestamp_type=0, key=(letter.key or "").encode(), value=value, checksum=None,
                          serialized_key_size=0, serialized_value_size=len(value),
                          headers=replay_headers(letter, datetime.now(timezone.utc).isoformat()))


async def test_a_replayed_dead_letter_is_handled_once_by_the_service_that_dead_lettered_it(database, tmp_path):
    recorder = Recorder(poison={"R"})
    async with runner(Service("gateway", handlers=recorder.handlers), tmp_path, database("gateway")) as gateway:
        await gateway.deliver(decision("Q"), decision("R"), correlation_id="P:R")
        [row] = await gateway.dead_letters()
        letter = as_dead_letter(row, offset=7)
        assert letter.service == "gateway" and letter.original_topic == CUSTOMS_DECISION.name
        recorder.poison = set()  # the fix
        # the inbox holds the event id as dead-lettered: the original again is still a duplicate ...
        assert await gateway.deliver(gateway.record(Envelope.model_validate_json(letter.value))) == []
        # ... the replay is a new delivery, handled once however often it comes
        emitted = await gateway.deliver(replayed(letter), replayed(letter, offset=1001))
        assert [e.payload["order_no"] for e in emitted] == ["R"]
        assert await gateway.deliver(replayed(letter, offset=1002)) == []  # the operator replays it again
        assert await count(gateway, trace, trace.c.summary == "R") == 1
        assert await count(gateway, INBOX, INBOX.c.event_id == replay_inbox_id(letter.id)) == 1


async def test_a_replay_for_another_service_is_ignored(database, tmp_path):
    recorder = Recorder()
    async with runner(Service("gateway", handlers=recorder.handlers), tmp_path, database("gateway")) as gateway:
        record = gateway.record(decision("S"), "P:S")
        record.headers.extend([(REPLAY_OF, b"customs.decision.v1.dlq:0:3"), (REPLAY_FOR, b"tax")])
        assert await gateway.deliver(record) == []
        assert recorder.calls == [] and await count(gateway, trace) == 0


async def test_a_replay_that_fails_again_is_dead_lettered_again_naming_what_it_replayed(database, tmp_path):
    recorder = Recorder(poison={"T"})
    async with runner(Service("gateway", handlers=recorder.handlers), tmp_path, database("gateway")) as gateway:
        await gateway.deliver(decision("T"), correlation_id="P:T")
        [first] = await gateway.dead_letters()
        letter = as_dead_letter(first, offset=3)
        await gateway.deliver(replayed(letter))  # the fix did not cover it
        _, again = await gateway.dead_letters()
        assert again[REPLAY_OF] == letter.id and "cannot handle T" in again["dlq.error"]
        second = as_dead_letter(again, offset=4)
        assert second.replay_of == letter.id
        recorder.poison = set()
        emitted = await gateway.deliver(replayed(second))  # replaying the newer dead letter after the next fix
        assert [e.payload["order_no"] for e in emitted] == ["T"]
