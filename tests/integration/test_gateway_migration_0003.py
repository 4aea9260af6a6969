"""Migration 0003 of the gateway (spec §7.2): registration keys become rows of api_keys (so an enterprise
keeps working with the key it has), every order with payments or waybills is bound to its first one by
arrival, orders get the columns of the firms they may name; and back down again. SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from alembic import command
from sqlalchemy import JSON, Column, MetaData, String, Table, inspect, insert, select

from services.gateway.rules import api_key_hash
from shared.db import create_engine
from shared.migrations import alembic_config
from shared.tables import UtcDateTime
from tests.conftest import create_database

pytestmark = pytest.mark.integration

BEFORE = "5b1f0c7a9d2e"
T0 = datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc)

m = MetaData()
ENTERPRISES = Table("enterprises", m, Column("code", String), Column("name", String), Column("roles", JSON),
                    Column("country", String), Column("customs_credit", String), Column("api_key_hash", String),
                    Column("registered_at", UtcDateTime()))
PAYMENTS = Table("payments", m, Column("payment_code", String), Column("payment_no", String),
                 Column("platform_code", String), Column("order_no", String), Column("content_hash", String),
                 Column("document", JSON), Column("received_at", UtcDateTime()))
WAYBILLS = Table("waybills", m, Column("logistics_code", String), Column("waybill_no", String),
                 Column("platform_code", String), Column("order_no", String), Column("content_hash", String),
                 Column("document", JSON), Column("received_at", UtcDateTime()))
API_KEYS = Table("api_keys", MetaData(), Column("key_id", String), Column("enterprise_code", String),
                 Column("key_hash", String), Column("created_at", UtcDateTime()), Column("revoked_at", UtcDateTime()))
BINDINGS = Table("order_bindings", MetaData(), Column("platform_code", String), Column("order_no", String),
                 Column("kind", String), Column("party_code", String), Column("document_no", String),
                 Column("bound_at", UtcDateTime()))


def document(table: Table, firm: str, number: str, order_no: str, minutes: int) -> dict:
    first, second = (c.name for c in list(table.columns)[:2])
    return {first: firm, second: number, "platform_code": "P", "order_no": order_no, "content_hash": "h",
            "document": {}, "received_at": T0 + timedelta(minutes=minutes)}


async def migrate(url: str) -> tuple[list, list, set[str], set[str]]:
    config = alembic_config("gateway", url)
    await asyncio.to_thread(command.upgrade, config, BEFORE)
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(insert(ENTERPRISES), [
            {"code": code, "name": code, "roles": ["payment"], "country": "CN", "customs_credit": "general",
             "api_key_hash": api_key_hash(f"key-of-{code}"), "registered_at": T0} for code in ("PAY-A", "PAY-B")])
        await conn.execute(insert(PAYMENTS), [
            document(PAYMENTS, "PAY-B", "B-1", "O-1", minutes=7),  # later: stays stored, unbound
            document(PAYMENTS, "PAY-A", "A-1", "O-1", minutes=5),  # first: binds O-1
            document(PAYMENTS, "PAY-B", "B-2", "O-2", minutes=1)])
        await conn.execute(insert(WAYBILLS), [document(WAYBILLS, "LOG-A", "W-1", "O-1", minutes=2)])
    await asyncio.to_thread(command.upgrade, config, "head")
    async with engine.connect() as conn:
        keys = sorted((r.enterprise_code, r.key_hash, r.created_at, r.revoked_at, r.key_id[:1], len(r.key_id))
                      for r in await conn.execute(select(API_KEYS)))
        bindings = sorted((r.order_no, r.kind, r.party_code, r.document_no, r.bound_at)
                          for r in await conn.execute(select(BINDINGS)))
        order_columns = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("orders")})
    await asyncio.to_thread(command.downgrade, config, BEFORE)
    async with engine.connect() as conn:
        tables_after_downgrade = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    return keys, bindings, order_columns, tables_after_downgrade


def check(keys: list, bindings: list, order_columns: set[str], tables_after_downgrade: set[str]) -> None:
    assert keys == [("PAY-A", api_key_hash("key-of-PAY-A"), T0, None, "k", 16),
                    ("PAY-B", api_key_hash("key-of-PAY-B"), T0, None, "k", 16)]
    assert bindings == [("O-1", "payment", "PAY-A", "A-1", T0 + timedelta(minutes=5)),
                        ("O-1", "waybill", "LOG-A", "W-1", T0 + timedelta(minutes=2)),
                        ("O-2", "payment", "PAY-B", "B-2", T0 + timedelta(minutes=1))]
    assert {"payment_code", "payment_transaction_id", "logistics_code"} <= order_columns
    assert not tables_after_downgrade & {"api_keys", "order_bindings", "enterprise_platforms"}


async def test_migration_0003_on_sqlite(tmp_path):
    check(*await migrate(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"))


async def test_migration_0003_on_postgresql(postgres_port):
    check(*await migrate(create_database(postgres_port, f"mig3_{uuid.uuid4().hex[:10]}")))
