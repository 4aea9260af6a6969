"""sw.order.submitted.v2 beside v1: the conversions keep every fact, the gateway's v1 stays as it was, and
v1 is published through the last day of its deprecation period, China time."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from contracts.identifiers import mask_id_number
from contracts.v1.documents import OrderIn
from contracts.v1.events import Order, OrderSubmitted
from contracts.v2.events import OrderSubmittedV2, OrderV2
from services.gateway.contracts_policy import (
    brands_of,
    order_events,
    publishes_order_v1,
    stored_brands,
    stored_document,
)
from shared.outbox import build_envelope
from shared.settings import Settings

AT = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)
BUYER_ID = "110101199003070011"


def an_order(**changes) -> Order:
    """An import with every optional fact filled in, so a conversion that drops one is caught."""
    order = {
        "order_no": "ORD-1", "platform_code": "PLAT", "ecommerce_code": "SELLER", "direction": "import",
        "trade_mode": "1210", "currency": "EUR",
        "items": [
            {"item_no": "SKU-1", "name": "Face cream 50ml", "hs_code": "3304990099", "quantity": "2",
             "unit": "piece", "unit_price": "180.00", "origin_country": "FR"},
            {"item_no": "SKU-2", "name": "Olive oil", "hs_code": "1509200000", "quantity": "1.2345", "unit": "kg",
             "unit_price": "9.99", "origin_country": "IT"},
        ],
        "freight": "12.00", "insurance": "1.50", "discount": "10.00", "tax_total": "85.50", "actual_paid": "449.33",
        "buyer": {"name": "Zhang San", "id_type": "resident_id", "id_number_masked": mask_id_number(BUYER_ID),
                  "id_number_sealed": "gAAAA-sealed", "phone": "13800000000"},
        "consignee": {"name": "Zhang San", "phone": "13800000000", "address": "1 Example Road, Hangzhou",
                      "country": "CN"},
        "destination_country": "CN",
    }
    return Order.model_validate({**order, **changes})


def submitted(order: Order | None = None, action: str = "corrected", version: int = 3) -> OrderSubmitted:
    return OrderSubmitted(action=action, version=version, submitted_at=AT, order=order or an_order())


# --- the conversions ---------------------------------------------------------------------------


def test_v1_to_v2_and_back_keeps_every_fact():
    v1 = submitted()
    v2 = OrderSubmittedV2.from_v1(v1, "SG", "FR", {"SKU-1": "Maison Lumière"})
    assert v2.as_v1() == v1
    assert v2.as_v1().model_dump(mode="json") == v1.model_dump(mode="json")


def test_v2_carries_what_v1_cannot():
    v2 = OrderSubmittedV2.from_v1(submitted(), "SG", "FR", {"SKU-1": "Maison Lumière"})
    o = v2.order
    assert (o.platform.code, o.platform.country) == ("PLAT", "SG")
    assert (o.ecommerce.code, o.ecommerce.country) == ("SELLER", "FR")
    assert [i.brand for i in o.items] == ["Maison Lumière", None]
    assert o.items[0].unit_price.model_dump(mode="json") == {"amount": "180.00", "currency": "EUR"}
    assert o.actual_paid.amount == Decimal("449.33") and o.actual_paid.currency == "EUR"
    assert (v2.action, v2.version, v2.submitted_at) == ("corrected", 3, AT)


def test_v2_through_json_and_back_to_v1_keeps_every_fact():
    # What an agency does: read the v2 payload off the topic, then take the v1 view of it.
    v1 = submitted()
    on_the_wire = OrderSubmittedV2.from_v1(v1, "CN", "CN", {}).model_dump_json()
    assert OrderSubmittedV2.model_validate_json(on_the_wire).as_v1() == v1


def test_an_order_in_v2_is_in_one_currency():
    order = OrderSubmittedV2.from_v1(submitted(), "CN", "CN").order.model_dump(mode="json")
    order["freight"] = {"amount": "12.00", "currency": "USD"}
    with pytest.raises(ValidationError, match="one currency"):
        OrderV2.model_validate(order)
    order["freight"]["currency"] = "EUR"
    order["items"][1]["unit_price"]["currency"] = "CNY"
    with pytest.raises(ValidationError, match="one currency"):
        OrderV2.model_validate(order)


# --- what the gateway publishes --------------------------------------------------------------


def published(at: datetime = AT, v1_until: date | None = date(2027, 6, 30), v2_enabled: bool = True) -> list:
    return order_events("new", 1, at, an_order(), "CN", "FR", {"SKU-1": "Maison Lumière"},
                        v1_until=v1_until, v2_enabled=v2_enabled)


def test_during_the_deprecation_period_every_order_event_goes_out_on_both_versions():
    v1, v2 = published()
    assert isinstance(v1, OrderSubmitted) and isinstance(v2, OrderSubmittedV2)
    assert [build_envelope(e, "gateway", "PLAT:ORD-1")[0] for e in (v1, v2)] == [
        "sw.order.submitted.v1", "sw.order.submitted.v2"]
    assert v2.as_v1() == v1


def test_the_v1_event_built_by_the_gateway_is_v1_as_before_without_the_brand():
    v1, v2 = published()
    assert v1 == OrderSubmitted(action="new", version=1, submitted_at=AT, order=an_order())
    _, envelope = build_envelope(v1, "gateway", "PLAT:ORD-1")
    assert "brand" not in envelope.model_dump_json()
    assert all(set(item) == {"item_no", "name", "hs_code", "quantity", "unit", "unit_price", "origin_country"}
               for item in envelope.payload["order"]["items"])
    _, envelope = build_envelope(v2, "gateway", "PLAT:ORD-1")
    assert envelope.payload["order"]["items"][0]["brand"] == "Maison Lumière"


def test_after_the_deprecation_period_only_v2_goes_out():
    after = datetime(2027, 6, 30, 16, 0, tzinfo=timezone.utc)  # 1 July 00:00 in Beijing
    assert [type(e) for e in published(after)] == [OrderSubmittedV2]


def test_with_v2_switched_off_v1_goes_out_whatever_the_date():
    after = datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert [type(e) for e in published(after, v2_enabled=False)] == [OrderSubmitted]


@pytest.mark.parametrize("at, until, expected", [
    (datetime(2027, 6, 30, 15, 59, 59, tzinfo=timezone.utc), date(2027, 6, 30), True),   # 23:59:59 in Beijing
    (datetime(2027, 6, 30, 16, 0, 0, tzinfo=timezone.utc), date(2027, 6, 30), False),    # next day in Beijing
    (datetime(2027, 6, 29, 20, 0, 0, tzinfo=timezone.utc), date(2027, 6, 30), True),
    (datetime(2027, 7, 1, 0, 0, 0, tzinfo=timezone.utc), date(2027, 6, 30), False),
    (datetime(2099, 1, 1, tzinfo=timezone.utc), None, True),                              # no end date
])
def test_v1_is_published_through_the_last_day_china_time(at, until, expected):
    assert publishes_order_v1(at, until) is expected


# --- settings ----------------------------------------------------------------------------------


def test_the_deprecation_period_is_configured_by_the_environment(monkeypatch):
    monkeypatch.delenv("SW_ORDER_V1_UNTIL", raising=False)
    monkeypatch.delenv("SW_ORDER_V2_ENABLED", raising=False)
    assert (Settings().sw_order_v1_until, Settings().sw_order_v2_enabled) == (date(2027, 6, 30), True)
    monkeypatch.setenv("SW_ORDER_V1_UNTIL", "2026-12-31")
    assert Settings().sw_order_v1_until == date(2026, 12, 31)
    monkeypatch.setenv("SW_ORDER_V1_UNTIL", "")
    assert Settings().sw_order_v1_until is None  # empty: v1 forever
    monkeypatch.setenv("SW_ORDER_V2_ENABLED", "false")
    assert Settings().sw_order_v2_enabled is False


# --- what the gateway keeps for a cancellation ------------------------------------------------


def test_the_stored_order_gives_back_the_v1_order_and_the_brands():
    body = OrderIn.model_validate({
        "order_no": "ORD-1", "platform_code": "PLAT", "ecommerce_code": "SELLER", "direction": "export",
        "trade_mode": "9610", "currency": "USD", "destination_country": "US",
        "items": [{"item_no": "SKU-1", "name": "Tea", "hs_code": "0902301000", "quantity": 1, "unit": "box",
                   "unit_price": "20.00", "origin_country": "CN", "brand": "West Lake"},
                  {"item_no": "SKU-2", "name": "Cups", "hs_code": "6911101100", "quantity": 2, "unit": "piece",
                   "unit_price": "5.00", "origin_country": "CN"}],
        "actual_paid": "30.00"})
    order = Order.model_validate(body.model_dump(exclude={"buyer"}))
    brands = brands_of(body.items)
    assert brands == {"SKU-1": "West Lake"}
    document = json.loads(json.dumps(stored_document(order, brands)))  # through the JSON column
    assert Order.model_validate(document) == order
    assert stored_brands(document) == brands


def test_an_order_stored_before_v2_has_no_brands():
    assert stored_brands(an_order().model_dump(mode="json")) == {}
