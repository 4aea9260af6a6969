"""The gateway's intake on its own database (SQLite, no broker): a lot of new documents is written with
one executemany per table, and a lot whose read went stale (another transaction committed one of its
business keys meanwhile) is decided again one document at a time, each answer as if it came alone."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import event, func, insert, select

from services.gateway import intake
from services.gateway.app import service
from services.gateway.auth import Caller
from services.gateway.tables import enterprises, orders
from shared.tables import OUTBOX
from tests.support import new_uscc, order_body

pytestmark = pytest.mark.integration


@pytest.fixture
async def gateway(tmp_path):
    await service.open_database(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    platform, seller = new_uscc(), new_uscc()
    async with service.unit_of_work() as uow:
        now = datetime.now(timezone.utc)
        await uow.session.execute(insert(enterprises), [
            {"code": code, "name": code, "roles": [role], "country": "CN", "customs_credit": "general",
             "api_key_hash": code, "registered_at": now} for code, role in ((platform, "platform"), (seller, "ecommerce"))])
    yield Caller(platform, frozenset({"platform"})), seller
    await service.close_database()


def prepared(caller: Caller, seller: str, order_no: str) -> intake.Prepared:
    item = intake.prepare(caller, intake.ORDER, order_body(caller.code, seller, order_no))
    assert isinstance(item, intake.Prepared)
    return item


async def accept(items):  # noqa: ANN001, ANN201
    async with service.unit_of_work() as uow:
        return await intake.accept(uow, items)


async def test_a_lot_of_new_orders_is_one_insert_and_one_completeness_stamp(gateway):
    caller, seller = gateway
    statements: list[str] = []
    listen = lambda *a: statements.append(a[2])  # noqa: E731 - (conn, cursor, statement, …)
    event.listen(service.engine.sync_engine, "before_cursor_execute", listen)
    try:
        outcomes = await accept([prepared(caller, seller, f"ORD-{i}") for i in range(50)])
    finally:
        event.remove(service.engine.sync_engine, "before_cursor_execute", listen)
    assert [o.status for o in outcomes] == [202] * 50
    assert sum(s.startswith("INSERT INTO orders") for s in statements) == 1
    assert sum(s.startswith("UPDATE orders") for s in statements) == 1
    async with service.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(orders)) == 50
        assert await session.scalar(select(func.count()).select_from(OUTBOX)) >= 50


async def test_a_stale_read_is_decided_again_one_document_at_a_time(gateway, monkeypatch):
    caller, seller = gateway
    first = prepared(caller, seller, "ORD-RACED")
    assert [o.status for o in await accept([first])] == [202]
    # The next lot reads its fingerprints before "another transaction" committed ORD-RACED: the first read
    # misses it, the set-based insert then hits the primary key, and the lot is decided again.
    real = intake._stored_fingerprints
    reads = []

    async def stale_then_real(uow, kind, keys):  # noqa: ANN001, ANN202
        reads.append(keys)
        return {} if len(reads) == 1 else await real(uow, kind, keys)

    monkeypatch.setattr(intake, "_stored_fingerprints", stale_then_real)
    changed = prepared(caller, seller, "ORD-RACED")  # another buyer: different content under the same key
    outcomes = await accept([prepared(caller, seller, "ORD-NEW"), first, changed])
    assert [o.status for o in outcomes] == [202, 200, 409]
    async with service.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(orders)) == 2
        keys = (await session.execute(select(OUTBOX.c.key).where(OUTBOX.c.topic == "sw.order.submitted.v2"))).scalars().all()
    assert sorted(keys) == sorted([f"{caller.code}:ORD-RACED", f"{caller.code}:ORD-NEW"])  # nothing published twice
