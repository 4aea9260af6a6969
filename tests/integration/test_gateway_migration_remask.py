"""Migration 0005 of the gateway: documents stored under 1.0 with a passport masked as E123*5678 come out
masked as spec 1.1 §7.2 says (*******78), and the customs views lose the names and half-masked numbers 1.0
reasons carried, on SQLite and on PostgreSQL; other fields and rows untouched."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from alembic import command
from sqlalchemy import JSON, Column, MetaData, String, Table, insert, select

from shared.db import create_engine
from shared.migrations import alembic_config
from shared.tables import ExactDecimal, UtcDateTime
from tests.conftest import create_database

pytestmark = pytest.mark.integration

BEFORE, AFTER = "61a2a9a2c8b8", "7e3c91a4b2d8"
T0 = datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc)


def person(masked: str) -> dict:
    return {"name": "Zhang San", "id_type": "passport", "id_number_masked": masked, "id_number_sealed": "s"}


async def migrate(url: str) -> tuple[dict, dict]:
    await asyncio.to_thread(command.upgrade, alembic_config("gateway", url), BEFORE)
    engine = create_engine(url)
    async with engine.begin() as conn:
        # Reflected at the revision before, with the project's column types where SQLite needs them.
        orders, payments = await conn.run_sync(lambda c: (
            Table("orders", MetaData(), Column("actual_paid", ExactDecimal(18, 2)), Column("submitted_at", UtcDateTime()),
                  Column("updated_at", UtcDateTime()), Column("document", JSON), autoload_with=c),
            Table("payments", MetaData(), Column("received_at", UtcDateTime()), Column("document", JSON),
                  autoload_with=c)))
        base = {"version": 1, "content_hash": "h", "ecommerce_code": "E", "direction": "import", "trade_mode": "9610",
                "currency": "CNY", "actual_paid": Decimal("1.00"), "country": "FR", "submitted_at": T0,
                "updated_at": T0}
        await conn.execute(insert(orders), [
            {**base, "platform_code": "P", "order_no": f"O{i}", "document": {"order_no": f"O{i}", "buyer": person(m)}}
            for i, m in enumerate(["E123*5678", "1101**********0011", "X123*******4567"])
        ] + [{**base, "platform_code": "P", "order_no": "EXPORT", "document": {"order_no": "EXPORT", "buyer": None}}])
        await conn.execute(insert(payments), [
            {"payment_code": "PAY", "payment_no": "N1", "platform_code": "P", "order_no": "O0", "content_hash": "h",
             "document": {"payment_no": "N1", "payer": person("E123*5678")}, "received_at": T0}])
        views = await conn.run_sync(lambda c: Table("agency_views", MetaData(), Column("view", JSON),
                                                    Column("updated_at", UtcDateTime()), autoload_with=c))
        await conn.execute(insert(views), [
            {"platform_code": "P", "order_no": "O0", "agency": "customs", "version": 1, "updated_at": T0, "view": {
                "status": "rejected", "channel": None, "reasons": [
                    {"code": "IDENTITY_MISMATCH", "message": "payer id number E123*5678 differs from buyer id number "
                     "G765*4321; payer name 'Li Si' differs from buyer name \"Zhang O'Neil\""},
                    {"code": "SELECTED_FOR_INSPECTION", "message": "inspection failed: zhang san refused"}]}},
            {"platform_code": "P", "order_no": "O1", "agency": "customs", "version": 1, "updated_at": T0,
             "view": {"status": "released", "channel": "green", "reasons": []}},
            {"platform_code": "P", "order_no": "O1", "agency": "tax", "version": 1, "updated_at": T0,
             "view": {"status": "assessed", "note": "Zhang San"}},
        ])
    await asyncio.to_thread(command.upgrade, alembic_config("gateway", url), AFTER)
    docs = Table("orders", MetaData(), Column("order_no", String), Column("document", JSON))
    pays = Table("payments", MetaData(), Column("payment_no", String), Column("document", JSON))
    async with engine.connect() as conn:
        order_docs = {r.order_no: r.document for r in await conn.execute(select(docs))}
        payment_docs = {r.payment_no: r.document for r in await conn.execute(select(pays))}
        views = Table("agency_views", MetaData(), Column("order_no", String), Column("agency", String),
                      Column("view", JSON))
        agency_views = {(r.order_no, r.agency): r.view for r in await conn.execute(select(views))}
    await engine.dispose()
    return order_docs, payment_docs, agency_views


def check(order_docs: dict, payment_docs: dict, agency_views: dict) -> None:
    assert agency_views == {
        ("O0", "customs"): {"status": "rejected", "channel": None, "reasons": [
            {"code": "IDENTITY_MISMATCH", "message": "payer id number *******78 differs from buyer id number "
             "*******21; payer name differs from buyer name"},
            {"code": "SELECTED_FOR_INSPECTION", "message": "inspection failed: [name withheld] refused"}]},
        ("O1", "customs"): {"status": "released", "channel": "green", "reasons": []},
        ("O1", "tax"): {"status": "assessed", "note": "Zhang San"},  # not a customs view: untouched
    }
    assert {k: (d["buyer"] or {}).get("id_number_masked") for k, d in order_docs.items()} == {
        "O0": "*******78", "O1": "1101**********0011", "O2": "X12*********567", "EXPORT": None}
    assert order_docs["O0"] == {"order_no": "O0", "buyer": person("*******78")}
    assert payment_docs == {"N1": {"payment_no": "N1", "payer": person("*******78")}}


async def test_stored_documents_are_masked_again_on_sqlite(tmp_path):
    check(*await migrate(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"))


async def test_stored_documents_are_masked_again_on_postgresql(postgres_port):
    check(*await migrate(create_database(postgres_port, f"mig_{uuid.uuid4().hex[:10]}")))
