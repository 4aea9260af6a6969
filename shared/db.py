"""Async SQLAlchemy engines and sessions for a service's own database (SQLite file or PostgreSQL)."""
from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, *, read_only: bool = False) -> AsyncEngine:
    """`read_only` engines are for queries: on SQLite their transactions are deferred, so readers never
    queue for the write lock (WAL lets them read beside the writer)."""
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=5, max_overflow=5)
        _make_sqlite_transactional(engine, "BEGIN" if read_only else "BEGIN IMMEDIATE")
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


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


async def insert_if_absent(session: AsyncSession, table, values: dict | list[dict],  # noqa: ANN001
                           keys: list[str] | None = None) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING on PostgreSQL and SQLite; True when a row was written."""
    builder = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    result = await session.execute(builder(table).values(values).on_conflict_do_nothing(index_elements=keys))
    return bool(result.rowcount)
