"""Migration 0002 of the gateway: a database with the old per-agency columns on orders and enterprises,
full of answers, comes out with the same views in agency_views and enterprise_views, on SQLite and on
PostgreSQL."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from alembic import command
from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, inspect, insert, select

from shared.db import create_engine
from shared.migrations import alembic_config
from shared.tables import ExactDecimal, UtcDateTime
from tests.conftest import create_database

pytestmark = pytest.mark.integration

BEFORE = "24727eec9012"
T0 = datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc)
DECIDED = datetime(2026, 11, 24, 3, 5, tzinfo=timezone.utc)

old = MetaData()
OLD_ORDERS = Table(
    "orders", old, *(Column(n, t) for n, t in [
        ("platform_code", String(32)), ("order_no", String(64)), ("version", Integer), ("content_hash", String(64)),
        ("document", JSON), ("ecommerce_code", String(32)), ("direction", String(8)), ("trade_mode", String(4)),
        ("currency", String(3)), ("actual_paid", ExactDecimal(18, 2)), ("country", String(2)),
        ("submitted_at", UtcDateTime()), ("updated_at", UtcDateTime()), ("documents_complete_at", UtcDateTime()),
        ("customs_status", String(16)), ("customs_channel", String(8)), ("customs_reasons", JSON),
        ("customs_version", Integer), ("decided_at", UtcDateTime()), ("tax", JSON), ("tax_version", Integer),
        ("fx", JSON), ("logistics", JSON)]))
OLD_ENTERPRISES = Table(
    "enterprises", old, *(Column(n, t) for n, t in [
        ("code", String(32)), ("name", String(200)), ("roles", JSON), ("country", String(2)),
        ("customs_credit", String(16)), ("api_key_hash", String(64)), ("registered_at", UtcDateTime()),
        ("fx_directory_status", String(32)), ("fx_year", Integer), ("fx_year_to_date_usd", ExactDecimal(18, 2)),
        ("credit_score", ExactDecimal(10, 2)), ("credit_grade", String(1)), ("negative_listed", Integer)]))


def order(order_no: str, **answers) -> dict:  # noqa: ANN003
    return {"platform_code": "P", "order_no": order_no, "version": 1, "content_hash": "x", "document": {},
            "ecommerce_code": "E", "direction": "import", "trade_mode": "9610", "currency": "CNY",
            "actual_paid": Decimal("447.50"), "country": "FR", "submitted_at": T0, "updated_at": T0,
            "documents_complete_at": T0, "customs_status": "pending", "customs_channel": None, "customs_reasons": [],
            "customs_version": 0, "decided_at": None, "tax": {}, "tax_version": 0, "fx": {}, "logistics": {}, **answers}


def enterprise(code: str, **answers) -> dict:  # noqa: ANN003
    return {"code": code, "name": code, "roles": ["ecommerce"], "country": "CN", "customs_credit": "general",
            "api_key_hash": f"h-{code}", "registered_at": T0, "fx_directory_status": None, "fx_year": None,
            "fx_year_to_date_usd": None, "credit_score": None, "credit_grade": None, "negative_listed": 0, **answers}


TAX = {"status": "assessed", "total": "81.16"}
FX = {"status": "settled", "amount_usd": "61.60"}
SHIPPED = {"status": "cleared", "waybill_no": "W1", "at": "2026-11-24T04:00:00+00:00"}


async def migrate_with_answers(url: str) -> tuple[dict, dict, set[str], set[str]]:
    await asyncio.to_thread(command.upgrade, alembic_config("gateway", url), BEFORE)
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(insert(OLD_ORDERS), [
            order("NEW"),
            order("DONE", customs_status="released", customs_channel="green", customs_version=1, decided_at=DECIDED,
                  tax=TAX, tax_version=1, fx=FX, logistics=SHIPPED),
            order("FIXED", version=2, customs_reasons=[], customs_version=1, decided_at=DECIDED),  # corrected
            order("GONE", version=2, customs_status="cancelled",
                  customs_reasons=[{"code": "AMOUNT_MISMATCH", "message": "m"}], customs_version=1),
        ])
        await conn.execute(insert(OLD_ENTERPRISES), [
            enterprise("E", fx_directory_status="registered", fx_year=2026, fx_year_to_date_usd=Decimal("200100.5"),
                       credit_score=Decimal("72.5"), credit_grade="B", negative_listed=0),
            enterprise("QUIET"),
        ])
    await asyncio.to_thread(command.upgrade, alembic_config("gateway", url), "head")
    async with engine.connect() as conn:
        views = Table("agency_views", MetaData(), Column("platform_code", String), Column("order_no", String),
                      Column("agency", String), Column("version", Integer), Column("view", JSON),
                      Column("updated_at", UtcDateTime()))
        by_enterprise = Table("enterprise_views", MetaData(), Column("enterprise_code", String),
                              Column("agency", String), Column("view", JSON))
        order_views = {(r.order_no, r.agency): (r.version, r.view, r.updated_at)
                       for r in await conn.execute(select(views))}
        enterprise_views = {(r.enterprise_code, r.agency): r.view for r in await conn.execute(select(by_enterprise))}
        columns = await conn.run_sync(lambda c: ({col["name"] for col in inspect(c).get_columns("orders")},
                                                 {col["name"] for col in inspect(c).get_columns("enterprises")}))
    await engine.dispose()
    return order_views, enterprise_views, *columns


def check(order_views: dict, enterprise_views: dict, order_columns: set[str], enterprise_columns: set[str]) -> None:
    assert order_views == {
        ("DONE", "customs"): (1, {"status": "released", "channel": "green", "reasons": []}, DECIDED),
        ("DONE", "tax"): (1, TAX, T0),
        ("DONE", "fx"): (1, FX, T0),
        ("DONE", "logistics"): (1, SHIPPED, datetime(2026, 11, 24, 4, 0, tzinfo=timezone.utc)),
        ("FIXED", "customs"): (2, {"status": "pending", "channel": None, "reasons": []}, DECIDED),
        ("GONE", "customs"): (2, {"status": "cancelled", "channel": None,
                                  "reasons": [{"code": "AMOUNT_MISMATCH", "message": "m"}]}, T0),
    }
    assert enterprise_views == {
        ("E", "fx"): {"directory_status": "registered", "year": 2026, "year_to_date_usd": "200100.50"},
        ("E", "credit"): {"score": enterprise_views[("E", "credit")]["score"], "grade": "B", "negative_listed": False,
                          "on_negative_list": False},
    }
    assert Decimal(enterprise_views[("E", "credit")]["score"]) == Decimal("72.5")
    assert not order_columns & {"customs_status", "customs_channel", "customs_reasons", "customs_version",
                                "decided_at", "tax", "tax_version", "fx", "logistics"}
    assert {"version", "updated_at", "documents_complete_at"} <= order_columns
    assert not enterprise_columns & {"fx_directory_status", "fx_year", "fx_year_to_date_usd", "credit_score",
                                     "credit_grade", "negative_listed"}


async def test_the_migration_copies_every_answer_on_sqlite(tmp_path):
    check(*await migrate_with_answers(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"))


async def test_the_migration_copies_every_answer_on_postgresql(postgres_port):
    check(*await migrate_with_answers(create_database(postgres_port, f"mig_{uuid.uuid4().hex[:10]}")))
