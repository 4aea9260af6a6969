"""Spec §2 quantities have five decimals: customs' released export lines (summed into the monthly
consolidated declaration) keep them, and their values' seven, on PostgreSQL, whose NUMERIC columns would
otherwise round them silently (migration 0003 of customs)."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import insert, select

from services.customs.tables import released_export_lines
from shared.db import create_engine
from shared.migrations import upgrade
from tests.conftest import create_database

pytestmark = pytest.mark.integration


def test_released_export_lines_keep_five_decimal_quantities_on_postgres(postgres_port):
    url = create_database(postgres_port, "customs_quantity_columns")
    upgrade("customs", url)
    quantity, value = Decimal("1.00005"), Decimal("0.0000700") + Decimal("123456.78")

    async def roundtrip() -> tuple[Decimal, Decimal]:
        engine = create_engine(url)
        try:
            async with engine.begin() as c:
                await c.execute(insert(released_export_lines).values(
                    platform_code="P", order_no="O", line_no=0, release_month="2026-11", ecommerce_code="E",
                    hs_code="3304990099", destination_country="US", currency="CNY", quantity=quantity, value=value,
                    released_at=datetime(2026, 11, 24, tzinfo=timezone.utc)))
                row = (await c.execute(select(released_export_lines.c.quantity, released_export_lines.c.value))).one()
                return row.quantity, row.value
        finally:
            await engine.dispose()

    assert asyncio.run(roundtrip()) == (quantity, value)
