"""Legal quantities through customs (spec 1.1 §7.5, domain §12): an export order's lines carry their legal
quantities on sw.order.submitted.v2; customs keeps them with the released export lines (migration 0005) and
its consolidated declaration sums them per unit, saying so when some parcels gave none. The export waybill
comes without a consignee, as customs' CEB505 does."""
from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select

from contracts.v1.events import Waybill, WaybillSubmitted
from services.customs.app import app, service
from services.customs.tables import released_export_lines
from shared.settings import settings
from shared.testing import LocalRunner
from tests.integration.test_customs_handlers import (
    CARRIER,
    PLATFORM,
    SELLER,
    T0,
    decisions,
    order_event,
    order_no,
    registrations,
)
from tests.support import order_body, waybill_body

pytestmark = pytest.mark.integration

TEE = "6109100022"


def an_export(legal: list[list[dict] | None]) -> dict:
    items = [{"item_no": f"T{i}", "name": "T-shirt", "hs_code": TEE, "quantity": 2, "unit": "piece",
              "unit_price": "10.00", "origin_country": "CN", **({"legal_quantities": q} if q else {})}
             for i, q in enumerate(legal)]
    return order_body(PLATFORM, SELLER, order_no(), direction="export", destination_country="US", tax_total="0.00",
                      discount="0.00", items=items)


def waybill_without_consignee(body: dict) -> WaybillSubmitted:
    w = waybill_body(CARRIER, body)
    del w["consignee"]
    return WaybillSubmitted(submitted_at=T0, waybill=Waybill(**w))


async def test_legal_quantities_are_kept_and_summed_per_unit_in_the_declaration(tmp_path):
    both = [{"quantity": "2", "unit": "piece"}, {"quantity": "0.35", "unit": "kg"}]
    a = an_export([both, both])
    b = an_export([[{"quantity": "2", "unit": "piece"}, {"quantity": "0.40125", "unit": "kg"}]])
    c = an_export([None])  # filed through REST without legal quantities
    async with LocalRunner(service, tmp_path) as runner:
        await runner.deliver(*registrations())
        emitted = await runner.deliver(*(e for body in (a, b, c) for e in (order_event(body), waybill_without_consignee(body))))
        assert [d[2] for d in decisions(emitted)] == ["released"] * 3
        async with service.sessions() as session:
            rows = {(r.order_no, r.line_no): (r.legal_quantity_1, r.legal_unit_1, r.legal_quantity_2, r.legal_unit_2)
                    for r in await session.execute(select(released_export_lines))}
            month = (await session.execute(select(released_export_lines.c.release_month))).scalars().first()
        assert rows == {
            (a["order_no"], 0): (Decimal("2"), "piece", Decimal("0.35"), "kg"),
            (a["order_no"], 1): (Decimal("2"), "piece", Decimal("0.35"), "kg"),
            (b["order_no"], 0): (Decimal("2"), "piece", Decimal("0.40125"), "kg"),
            (c["order_no"], 0): (None, None, None, None),
        }
        auth = {"Authorization": f"Bearer {settings().sw_admin_token}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://customs") as client:
            r = await client.get("/v1/declarations", params={"month": month}, headers=auth)
            assert r.status_code == 200, r.text
            (line,) = [d for d in r.json()["declarations"] if d["ecommerce_code"] == SELLER and d["hs_code"] == TEE]
            published = await client.post("/v1/declarations", params={"month": month}, headers=auth)
            assert published.status_code == 201, published.text
            outbox = [o for o in await runner.new_outbox_rows() if "export_declarations" in o.topic
                      or b"customs.export_declarations" in o.value]

    assert (line["quantity"], line["parcel_count"]) == ("8", 3)
    assert line["legal_quantities"] == [
        {"position": 1, "unit": "piece", "quantity": "6", "parcel_count": 2},
        {"position": 2, "unit": "kg", "quantity": "1.10125", "parcel_count": 2},
    ]
    assert line["legal_quantities_status"] == "incomplete"
    assert line["legal_quantities_issues"] == ["LEGAL_QUANTITIES_MISSING"]
    assert line["legal_quantities_note"].startswith("1 of 3 parcels have lines without legal quantities")
    assert line in published.json()["declarations"]  # what is published is what the GET showed
    assert outbox, "the declaration event was emitted"
    assert b'"legal_quantities_status":"incomplete"' in outbox[0].value
