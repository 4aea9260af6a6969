"""Pruning the outbox and the inbox (issue 9, item 8): in bounded chunks, oldest first, and also while
rows keep coming (before, the relay deleted everything old in one statement, and only when it was idle).

On SQLite and on PostgreSQL; the runtime tables are the same in every service (the credit service's
migrations are used)."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, insert, select

from shared.db import create_engine, session_factory
from shared.migrations import upgrade
from shared.outbox import Pruner
from shared.tables import INBOX, OUTBOX
from tests.conftest import create_database

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
async def sessions(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'prune.db'}"
    else:
        url = create_database(request.getfixturevalue("postgres_port"), f"pr_{uuid.uuid4().hex[:10]}")
    await asyncio.to_thread(upgrade, "credit", url)
    engine = create_engine(url)
    yield session_factory(engine)
    await engine.dispose()


def outbox_rows(n: int, published_at: datetime | None, *, set_aside: bool = False) -> list[dict]:
    return [{"topic": "t", "key": f"k{i}", "value": b"v", "headers": "{}", "created_at": NOW - timedelta(hours=2),
             "published_at": published_at, "set_aside_at": NOW - timedelta(hours=2) if set_aside else None,
             "set_aside_reason": "RecordTooLargeError" if set_aside else None} for i in range(n)]


def inbox_rows(n: int, handled_at: datetime) -> list[dict]:
    return [{"event_id": str(uuid.uuid4()), "topic": "t", "outcome": "handled", "handled_at": handled_at}
            for _ in range(n)]


async def add(sessions, table, rows: list[dict]) -> None:
    async with sessions() as session, session.begin():
        for start in range(0, len(rows), 1000):
            await session.execute(insert(table), rows[start:start + 1000])


async def count(sessions, table, *where) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(table).where(*where))


async def test_old_rows_are_deleted_in_bounded_chunks_and_the_rest_is_kept(sessions):
    await add(sessions, OUTBOX, outbox_rows(5000, NOW - timedelta(hours=1)))          # published, old: go
    await add(sessions, OUTBOX, outbox_rows(200, NOW - timedelta(minutes=1)))         # published, recent: stay
    await add(sessions, OUTBOX, outbox_rows(50, None))                                # not yet published: stay
    await add(sessions, OUTBOX, outbox_rows(3, None, set_aside=True))                 # set aside: stay
    await add(sessions, INBOX, inbox_rows(4500, NOW - timedelta(days=8)))             # older than 7 days: go
    await add(sessions, INBOX, inbox_rows(100, NOW - timedelta(days=6)))              # stay

    pruner = Pruner("prune-test", sessions, chunk=1000)
    per_call = []
    while True:
        before = (await count(sessions, OUTBOX), await count(sessions, INBOX))
        more = await pruner.prune_once(now=NOW)
        after = (await count(sessions, OUTBOX), await count(sessions, INBOX))
        per_call.append((before[0] - after[0], before[1] - after[1]))
        if not more:
            break
    assert all(o <= 1000 and i <= 1000 for o, i in per_call)  # no statement deletes more than a chunk
    assert sum(o for o, _ in per_call) == 5000 and sum(i for _, i in per_call) == 4500
    assert len(per_call) == 6  # five full outbox chunks, then one short call that says "done"
    assert await count(sessions, OUTBOX) == 253
    assert await count(sessions, OUTBOX, OUTBOX.c.set_aside_at.is_not(None)) == 3
    assert await count(sessions, OUTBOX, OUTBOX.c.published_at.is_(None)) == 53
    assert await count(sessions, INBOX) == 100


async def test_pruning_keeps_up_under_sustained_load(sessions):
    """A writer that never pauses (as under sustained intake) adds rows that are already old enough to
    prune; the pruner runs beside it and deletes them while it writes, chunk by chunk."""
    old = datetime.now(timezone.utc) - timedelta(hours=1)
    pruner = Pruner("prune-load", sessions, chunk=1000, interval=0.2)
    task = asyncio.create_task(pruner.run())
    written = 0
    peak = 0
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 4
        while loop.time() < deadline:
            await add(sessions, OUTBOX, outbox_rows(200, old))
            await add(sessions, INBOX, inbox_rows(200, old - timedelta(days=8)))
            written += 200
            if written % 2000 == 0:
                peak = max(peak, await count(sessions, OUTBOX))
        during = await count(sessions, OUTBOX), await count(sessions, INBOX)
        settle = loop.time() + 10
        while (await count(sessions, OUTBOX), await count(sessions, INBOX)) != (0, 0) and loop.time() < settle:
            await asyncio.sleep(0.1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert written >= 2000
    # Deleted while the writer was writing (never idle), not only after it stopped. (The margin leaves room
    # for a busy machine; the pruner's capacity is several times the writer's rate.)
    assert during[0] < written * 0.75 and during[1] < written * 0.75, (written, during)
    print(f"written {written}, left when the writer stopped {during}, peak outbox {peak}")
    assert peak < written
    assert await count(sessions, OUTBOX) == 0 and await count(sessions, INBOX) == 0


async def test_set_aside_rows_can_be_listed_and_released(sessions):
    """The operator's side (python -m shared.outbox SERVICE set-aside | release ID...)."""
    from shared.outbox import count_set_aside, list_set_aside, release_set_aside

    await add(sessions, OUTBOX, outbox_rows(2, None, set_aside=True) + outbox_rows(1, None))
    listed = await list_set_aside(sessions)
    assert [(r["id"], r["reason"], r["bytes"]) for r in listed] == [(1, "RecordTooLargeError", 1), (2, "RecordTooLargeError", 1)]
    assert await release_set_aside(sessions, [1, 3]) == 1  # row 3 was not set aside
    assert await count_set_aside(sessions) == 1
    async with sessions() as session:
        open_rows = (await session.execute(select(OUTBOX.c.id).where(
            OUTBOX.c.published_at.is_(None), OUTBOX.c.set_aside_at.is_(None)).order_by(OUTBOX.c.id))).scalars().all()
    assert open_rows == [1, 3]
