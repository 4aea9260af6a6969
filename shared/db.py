"""Async SQLAlchemy engines and sessions for a service's own database (SQLite file or PostgreSQL)."""
from __future__ import annotations

import asyncio
from collections.abc import Iterable

from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


# --- outage or the record's fault: one classification for the consumer core and the HTTP services ---


class TransientError(Exception):
    """The database or broker is unreachable: retry the whole batch later, do not dead-letter."""


# PostgreSQL SQLSTATE classes (PostgreSQL manual, appendix A) that say the database cannot do the work now,
# whatever the record: 08 connection exception, 40 transaction rollback (serialization failure, deadlock),
# 53 insufficient resources (disk full, out of memory, too many connections), 57 operator intervention
# (shutdown, cannot connect now, statement timeout), 58 system error (I/O), XX internal error (corruption);
# and 55P03 lock_not_available (a lock timeout). Every other class is about the statement and its values:
# 22 data exception (a value too long for its column, a numeric overflow), 23 integrity constraint (check,
# unique, foreign key, not null), 42 syntax or access rule, 54 program limit, ...
OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58", "XX"})
OUTAGE_SQLSTATES = frozenset({"55P03"})
# SQLite primary result codes (sqlite.org/rescode.html) that are about the database file or the process, not
# the statement: PERM, ABORT, BUSY ("database is locked"), LOCKED, NOMEM, READONLY, INTERRUPT, IOERR
# ("disk I/O error"), CORRUPT, FULL, CANTOPEN, PROTOCOL, SCHEMA, NOLFS, AUTH, NOTADB. The others (ERROR,
# e.g. "integer overflow" or "no such column"; TOOBIG; CONSTRAINT; MISMATCH; RANGE; ...) are the statement's.
OUTAGE_SQLITE_CODES = frozenset({3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 17, 22, 23, 26})


def is_transient(err: BaseException) -> bool:
    """True when `err` is an outage: the database (or broker) cannot do the work now, whatever the record, so
    the batch is kept whole, its offsets stay uncommitted, and it is tried again. False when it is about the
    record (or the handler given that record): the core then isolates the record and dead-letters it alone.

    By kind: network and OS errors, timeouts and a pool with no free connection are outages; a database error
    is classified by its PostgreSQL SQLSTATE (`OUTAGE_SQLSTATE_CLASSES`, `OUTAGE_SQLSTATES`) or its SQLite result
    code (`OUTAGE_SQLITE_CODES`); a driver error that carries neither (a connection the driver lost) is an
    outage; any other exception (a handler's own ValueError, an int too large for SQLite) is the record's."""
    if isinstance(err, TransientError):
        return True
    if isinstance(err, (OSError, asyncio.TimeoutError, ConnectionError, sa_exc.TimeoutError)):
        return True
    if not isinstance(err, sa_exc.DBAPIError):
        return False
    if err.connection_invalidated:
        return True
    orig = err.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(sqlstate, str) and len(sqlstate) == 5:
        return sqlstate in OUTAGE_SQLSTATES or sqlstate[:2] in OUTAGE_SQLSTATE_CLASSES
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        return sqlite_code & 0xFF in OUTAGE_SQLITE_CODES  # extended codes keep the primary one in the low byte
    if isinstance(orig, (OSError, asyncio.TimeoutError)):
        return True
    return isinstance(err, (sa_exc.OperationalError, sa_exc.InterfaceError))


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, *, read_only: bool = False) -> AsyncEngine:
    """`read_only` engines are for queries: on SQLite their transactions are deferred, so readers never
    queue for the write lock (WAL lets them read beside the writer)."""
    # hide_parameters: a failed statement's error (logged, and written into dead-letter headers) names the
    # statement but not the row's values, which may hold names and documents (spec §7.2).
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=5, max_overflow=5,
                                     hide_parameters=True)
        _make_sqlite_transactional(engine, "BEGIN" if read_only else "BEGIN IMMEDIATE")
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True, hide_parameters=True)


def _make_sqlite_transactional(engine: AsyncEngine, begin: str) -> None:
    # The sqlite3 driver manages transactions itself and breaks SAVEPOINT; take over (SQLAlchemy's
    # documented recipe). BEGIN IMMEDIATE takes the write lock up front, so two writers queue on
    # busy_timeout instead of deadlocking on a lock upgrade.
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection, _record):  # noqa: ANN001
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn):  # noqa: ANN001
        conn.exec_driver_sql(begin)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


def _insert(session: AsyncSession, table):  # noqa: ANN001, ANN202
    return (pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert)(table)


def _primary_key(table) -> list[str]:  # noqa: ANN001
    return [c.name for c in table.primary_key.columns]


async def insert_if_absent(session: AsyncSession, table, values: dict | list[dict],  # noqa: ANN001
                           keys: list[str] | None = None) -> int:
    """`INSERT … ON CONFLICT (keys) DO NOTHING` for one row or many (no keys: any unique conflict);
    returns how many rows were written (truthy when a single row was).

    Many rows go as one executemany of one cached statement, not as a `VALUES (…), (…)` built per call:
    SQLAlchemy compiles the latter anew for every row count, which cost about 0.1 ms a row."""
    if isinstance(values, dict):
        stmt = _insert(session, table).values(values).on_conflict_do_nothing(index_elements=keys)
        return (await session.execute(stmt)).rowcount or 0
    if not values:
        return 0
    # RETURNING counts what was written: executemany's rowcount is not reported by every driver.
    stmt = _insert(session, table).on_conflict_do_nothing(index_elements=keys).returning(
        *(table.c[k] for k in keys or _primary_key(table)))
    return len((await session.execute(stmt, values)).all())


async def upsert(session: AsyncSession, table, rows: dict | list[dict], keys: list[str] | None = None,  # noqa: ANN001
                 *, unless_newer: str | None = None) -> None:
    """`INSERT … ON CONFLICT (keys) DO UPDATE` for one row or many, as one executemany of one cached
    statement: a row whose key exists has every other column given overwritten. All rows must name the
    same columns. Keys: the primary key unless given. Fold rows with one key first (last one wins): the
    result of two in one call is not defined.
    `unless_newer="version"`: a held row is overwritten only when its `version` is not greater than the
    new one's (`… DO UPDATE … WHERE t.version <= excluded.version`), so an older version never wins."""
    rows = [rows] if isinstance(rows, dict) else rows
    if not rows:
        return
    keys = keys or _primary_key(table)
    stmt = _insert(session, table)
    where = table.c[unless_newer] <= stmt.excluded[unless_newer] if unless_newer else None
    await session.execute(stmt.on_conflict_do_update(
        index_elements=keys, set_={c: stmt.excluded[c] for c in rows[0] if c not in keys}, where=where), rows)


async def lock_keys(session: AsyncSession, keys: Iterable[str]) -> None:
    """Takes the transaction's advisory lock of every key (PostgreSQL; SQLite has one writer at a time
    anyway) in ONE statement, in hash order, so two transactions locking overlapping keys queue instead of
    deadlocking. The locks are held until the transaction ends.

    What it is for: one key's events travel on several topics (an order and customs' decision about it),
    which two instances of a service may consume at the same moment. A handler that joins them locks
    the key before it reads, so whichever transaction comes second reads what the first committed (READ
    COMMITTED takes a fresh snapshot per statement) and sees both halves. Locking a key whose rows do not
    exist yet works too, which `SELECT … FOR UPDATE` cannot do. Two keys with one hash share a lock:
    harmless, they only queue."""
    keys = sorted(set(keys))
    if keys and session.get_bind().dialect.name == "postgresql":
        await session.execute(text(
            "SELECT count(pg_advisory_xact_lock(h)) FROM (SELECT DISTINCT hashtext(k) AS h "
            "FROM unnest(CAST(:keys AS text[])) AS k ORDER BY h) AS ordered"), {"keys": keys})
