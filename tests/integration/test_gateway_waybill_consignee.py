"""A waybill without a consignee (spec 1.1 §7.5: customs' export waybill CEB505 names none), on the real
gateway app in-process with its own SQLite database: accepted only for an export order the gateway holds;
an import order's waybill, or one whose order is not filed yet, is 422 naming `consignee`. With a consignee,
nothing changed. Single endpoint and batch alike (one intake)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from contracts.envelope import Envelope
from services.gateway import app as gateway
from services.gateway.tables import waybills
from shared.tables import OUTBOX
from tests.integration.test_gateway_parties import Gateway, gw  # noqa: F401  (gw is the fixture)
from tests.support import order_body, unique, waybill_body

pytestmark = pytest.mark.integration


async def world(gw: Gateway) -> tuple[str, str, str]:  # noqa: F811
    platform = await gw.register(["platform", "ecommerce"])
    carrier = await gw.register(["logistics"])
    return platform, carrier, platform


def without_consignee(carrier: str, order: dict) -> dict:
    body = waybill_body(carrier, order)
    del body["consignee"]
    return body


async def filed(gw: Gateway, platform: str, order: dict) -> None:  # noqa: F811
    r = await gw.call("POST", "/v1/orders", platform, order)
    assert r.status_code == 202, r.text


async def test_an_export_orders_waybill_without_consignee_is_accepted_and_published_without_one(gw):  # noqa: F811
    platform, carrier, seller = await world(gw)
    order = order_body(platform, seller, unique("EXP"), direction="export", destination_country="US")
    await filed(gw, platform, order)
    body = without_consignee(carrier, order)
    r = await gw.call("POST", "/v1/waybills", carrier, body)
    assert r.status_code == 202, r.text
    assert (await gw.call("POST", "/v1/waybills", carrier, body)).status_code == 200  # identical replay
    async with gateway.service.sessions() as session:
        stored = (await session.execute(select(waybills.c.document).where(
            waybills.c.waybill_no == body["waybill_no"]))).scalar_one()
        events = [Envelope.model_validate_json(row.value) for row in await session.execute(
            select(OUTBOX.c.value).where(OUTBOX.c.topic == "sw.waybill.submitted.v1"))]
    assert stored["consignee"] is None
    (event,) = [e for e in events if e.payload["waybill"]["waybill_no"] == body["waybill_no"]]
    assert event.payload["waybill"]["consignee"] is None


async def test_an_import_orders_waybill_without_consignee_is_422_naming_consignee(gw):  # noqa: F811
    platform, carrier, seller = await world(gw)
    order = order_body(platform, seller, unique("IMP"))
    await filed(gw, platform, order)
    r = await gw.call("POST", "/v1/waybills", carrier, without_consignee(carrier, order))
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [{"field": "consignee", "code": "required",
                                   "message": "required for an import order's waybill"}]


async def test_a_waybill_without_consignee_before_its_order_is_422_and_accepted_once_the_export_order_is_filed(gw):  # noqa: F811,E501
    platform, carrier, seller = await world(gw)
    order = order_body(platform, seller, unique("EXP"), direction="export", destination_country="US")
    body = without_consignee(carrier, order)
    r = await gw.call("POST", "/v1/waybills", carrier, body)
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [{"field": "consignee", "code": "required",
                                   "message": "required until the waybill's export order is filed"}]
    async with gateway.service.sessions() as session:  # nothing half-stored
        assert (await session.execute(select(waybills).where(waybills.c.waybill_no == body["waybill_no"]))).first() is None
    await filed(gw, platform, order)
    assert (await gw.call("POST", "/v1/waybills", carrier, body)).status_code == 202


async def test_with_a_consignee_nothing_changed_whatever_the_order(gw):  # noqa: F811
    platform, carrier, seller = await world(gw)
    early = order_body(platform, seller, unique("IMP"))  # its order never comes: accepted, as before
    assert (await gw.call("POST", "/v1/waybills", carrier, waybill_body(carrier, early))).status_code == 202
    for order in (order_body(platform, seller, unique("IMP")),
                  order_body(platform, seller, unique("EXP"), direction="export", destination_country="US")):
        await filed(gw, platform, order)
        r = await gw.call("POST", "/v1/waybills", carrier, waybill_body(carrier, order))
        assert r.status_code == 202, r.text


async def test_the_batch_judges_each_waybill_by_the_same_rule(gw):  # noqa: F811
    platform, carrier, seller = await world(gw)
    export = order_body(platform, seller, unique("EXP"), direction="export", destination_country="US")
    imported = order_body(platform, seller, unique("IMP"))
    await filed(gw, platform, export)
    await filed(gw, platform, imported)
    unknown = order_body(platform, seller, unique("EXP"), direction="export", destination_country="US")
    r = await gw.call("POST", "/v1/waybills:batch", carrier, {"documents": [
        without_consignee(carrier, export), without_consignee(carrier, imported), without_consignee(carrier, unknown),
        waybill_body(carrier, unknown)]})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [202, 422, 422, 202]
    assert [e["field"] for x in results[1:3] for e in x["body"]["errors"]] == ["consignee", "consignee"]
