"""Which major versions of the order event the gateway publishes, and the events themselves.

Every order event (new, corrected, cancelled) goes out on sw.order.submitted.v2 and, during the
deprecation period of v1 (`SW_ORDER_V1_UNTIL`, shared/settings.py), on sw.order.submitted.v1 too, in
the same unit of work and under the same correlation id. Pure functions: the gateway's routes bring the
order, the parties' registered countries and the brands, and emit what comes back."""
from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel

from contracts.v1.documents import OrderItem
from contracts.v1.events import Order, OrderSubmitted
from contracts.v2.events import OrderSubmittedV2
from shared.clock import china_date

Action = Literal["new", "corrected", "cancelled"]
Brands = dict[str, str | None]


def publishes_order_v1(at: datetime, v1_until: date | None, v2_enabled: bool = True) -> bool:
    """v1 goes out through the last day of its deprecation period, China time; with no end date, always.
    With v2 switched off v1 is the only contract left, so it goes out whatever the date."""
    if not v2_enabled or v1_until is None:
        return True
    return china_date(at) <= v1_until


def order_events(action: Action, version: int, at: datetime, order: Order, platform_country: str,
                 ecommerce_country: str, brands: Brands, *, v1_until: date | None,
                 v2_enabled: bool) -> list[BaseModel]:
    """The payloads to emit for one version of an order: v1 exactly as before v2 existed (its `OrderLine`
    has no brand), v2 built from the same v1 event so the two can never tell different stories."""
    v1 = OrderSubmitted(action=action, version=version, submitted_at=at, order=order)
    events: list[BaseModel] = []
    if publishes_order_v1(at, v1_until, v2_enabled):
        events.append(v1)
    if v2_enabled:
        events.append(OrderSubmittedV2.from_v1(v1, platform_country, ecommerce_country, brands))
    return events


def brands_of(items: list[OrderItem]) -> Brands:
    return {i.item_no: i.brand for i in items if i.brand is not None}


def stored_document(order: Order, brands: Brands) -> dict:
    """The order as the gateway keeps it for a later cancellation: the v1 order as published, each item
    with its brand beside it (v1's `Order` ignores the key when the cancellation reads it back)."""
    document = order.model_dump(mode="json")
    for item in document["items"]:
        if item["item_no"] in brands:
            item["brand"] = brands[item["item_no"]]
    return document


def stored_brands(document: dict) -> Brands:
    # Orders stored before v2 existed carry no brands: their cancellation goes out on v2 without one.
    return {i["item_no"]: i["brand"] for i in document["items"] if i.get("brand") is not None}
