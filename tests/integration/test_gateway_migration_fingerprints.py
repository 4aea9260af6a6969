"""Migration 0006 of the gateway: fingerprints stored before 1.1 (plain SHA-256 of the canonical document,
reversible into the identity number it covers) become keyed, and a document resubmitted after the
migration still has the fingerprint stored for it (idempotency kept), on SQLite and on PostgreSQL."""
from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from alembic import command
from sqlalchemy import JSON, Column, MetaData, String, Table, insert, select

from contracts.examples import IMPORT_ORDER_IN as ORDER_EXAMPLE
from contracts.v1.documents import OrderIn, TrackingEventIn
from services.gateway.rules import fingerprint
from shared.db import create_engine
from shared.migrations import alembic_config
from shared.tables import ExactDecimal, UtcDateTime
from tests.conftest import create_database

pytestmark = pytest.mark.integration

BEFORE, AFTER = "7e3c91a4b2d8", "2f8b6d0c4e15"
T0 = datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc)


def plain(document) -> str:  # noqa: ANN001
    """The fingerprint as 1.0 stored it."""
    canonical = json.dumps(document.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


ORDER = OrderIn.model_validate(ORDER_EXAMPLE)
EVENTS = [TrackingEventIn(event=e, at=T0, location="Hangzhou") for e in ("picked_up", "departed", "arrived_port")]


async def migrate(url: str) -> tuple[dict, set]:
    await asyncio.to_thread(command.upgrade, alembic_config("gateway", url), BEFORE)
    engine = create_engine(url)
    async with engine.begin() as conn:
        orders, tracking, waybills = await conn.run_sync(lambda c: (
            Table("orders", MetaData(), Column("actual_paid", ExactDecimal(18, 2)), Column("submitted_at", UtcDateTime()),
                  Column("updated_at", UtcDateTime()), Column("document", JSON), autoload_with=c),
            Table("tracking_events", MetaData(), Column("at", UtcDateTime()), Column("received_at", UtcDateTime()),
                  autoload_with=c),
            Table("waybills", MetaData(), Column("received_at", UtcDateTime()), Column("document", JSON),
                  autoload_with=c)))
        await conn.execute(insert(waybills), [
            {"logistics_code": "L", "waybill_no": "W1", "platform_code": "P", "order_no": "A",
             "content_hash": plain(EVENTS[0]), "document": {}, "received_at": T0}])
        await conn.execute(insert(orders), [
            {"platform_code": "P", "order_no": n, "version": 1, "content_hash": plain(ORDER), "document": {},
             "ecommerce_code": "E", "direction": "import", "trade_mode": "9610", "currency": "CNY",
             "actual_paid": Decimal("1.00"), "country": "FR", "submitted_at": T0, "updated_at": T0}
            for n in ("A", "B")])
        await conn.execute(insert(tracking), [
            {"logistics_code": "L", "waybill_no": w, "content_hash": plain(e), "event": e.event, "at": T0,
             "received_at": T0} for w in ("W1", "W2") for e in EVENTS])
    await asyncio.to_thread(command.upgrade, alembic_config("gateway", url), AFTER)
    async with engine.connect() as conn:
        o = Table("orders", MetaData(), Column("order_no", String), Column("content_hash", String))
        t = Table("tracking_events", MetaData(), Column("waybill_no", String), Column("content_hash", String))
        order_hashes = {r.order_no: r.content_hash for r in await conn.execute(select(o))}
        w = Table("waybills", MetaData(), Column("waybill_no", String), Column("content_hash", String))
        order_hashes.update({r.waybill_no: r.content_hash for r in await conn.execute(select(w))})
        tracking_hashes = {(r.waybill_no, r.content_hash) for r in await conn.execute(select(t))}
    await engine.dispose()
    return order_hashes, tracking_hashes


def check(order_hashes: dict, tracking_hashes: set) -> None:
    assert order_hashes == {"A": fingerprint(ORDER), "B": fingerprint(ORDER), "W1": fingerprint(EVENTS[0])}
    assert fingerprint(ORDER) != plain(ORDER)
    assert tracking_hashes == {(w, fingerprint(e)) for w in ("W1", "W2") for e in EVENTS}  # each keyed once


async def test_stored_fingerprints_become_keyed_on_sqlite(tmp_path):
    check(*await migrate(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"))


async def test_stored_fingerprints_become_keyed_on_postgresql(postgres_port):
    check(*await migrate(create_database(postgres_port, f"mig_{uuid.uuid4().hex[:10]}")))
