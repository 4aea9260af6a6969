"""Customs' monthly consolidated export declarations (domain §12) are published in parts of bounded size
(issue 9, item 2): an enterprise exporting many codes to many countries in many orders gets several
events, none near the broker's 1 MiB message limit, and together they carry every line once."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import insert

from contracts.envelope import Envelope
from services.customs.app import app, service
from services.customs.rules import DECLARATION_LINES_PER_EVENT
from services.customs.tables import released_export_lines
from shared.settings import settings
from shared.testing import LocalRunner

pytestmark = pytest.mark.integration

SELLER, SMALL = "91350100M000100Y43", "SELL0002"
MONTH = "2026-11"


def export_line(ecommerce: str, order_no: int, line_no: int, hs_code: str, country: str) -> dict:
    return {"platform_code": "PLAT0001", "order_no": f"EXP-{order_no:06d}", "line_no": line_no,
            "release_month": MONTH, "ecommerce_code": ecommerce, "hs_code": hs_code, "destination_country": country,
            "currency": "USD", "quantity": Decimal("3"), "value": Decimal("120.123456"),
            "released_at": datetime(2026, 11, 20, tzinfo=timezone.utc)}


async def test_a_month_of_many_orders_is_published_in_parts_of_bounded_size(tmp_path):
    # 2,400 orders of one seller: 600 HS codes x 2 destinations, two orders each -> 1,200 declaration lines;
    # 3 orders of another seller -> 1 line.
    codes = [f"61{i:08d}" for i in range(600)]
    rows = [export_line(SELLER, n, 0, codes[n % 600], ("US", "DE")[(n // 600) % 2]) for n in range(2400)]
    rows += [export_line(SMALL, 9000 + n, 0, "6109100022", "GB") for n in range(3)]
    async with LocalRunner(service, tmp_path) as runner:
        async with service.sessions() as session, session.begin():
            await session.execute(insert(released_export_lines), rows)
        auth = {"Authorization": f"Bearer {settings().sw_admin_token}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://customs") as client:
            whole = (await client.get("/v1/declarations", params={"month": MONTH}, headers=auth)).json()["declarations"]
            r = await client.post("/v1/declarations", params={"month": MONTH}, headers=auth)
            assert r.status_code == 201, r.text
            outbox = await runner.new_outbox_rows()
            again = await client.post("/v1/declarations", params={"month": MONTH}, headers=auth)
            assert again.status_code == 200 and await runner.new_outbox_rows() == []  # once per month

    assert len(whole) == 1201
    events = [Envelope.model_validate_json(row.value) for row in outbox]
    assert all(e.type == "customs.export_declarations" for e in events)
    parts = [(e.payload["ecommerce_code"], e.payload["part"], e.payload["parts"], len(e.payload["declarations"]))
             for e in events]
    assert parts == [(SELLER, 1, 3, 500), (SELLER, 2, 3, 500), (SELLER, 3, 3, 200), (SMALL, 1, 1, 1)]
    assert all(row.key == e.payload["ecommerce_code"] for row, e in zip(outbox, events))  # one key: in order
    # No event near the broker's limit (1 MiB): a part of 500 lines is a little over 100 KiB.
    assert max(len(row.value) for row in outbox) < 256 * 1024
    published = [line for e in events for line in e.payload["declarations"]]
    assert published == whole  # every line once, in the consolidation's order
    seller_lines = [line for line in published if line["ecommerce_code"] == SELLER]
    assert sum(line["parcel_count"] for line in seller_lines) == 2400
    assert {line["value"] for line in seller_lines} == {"240.25"}  # two orders of 120.123456, rounded once
    assert DECLARATION_LINES_PER_EVENT == 500
