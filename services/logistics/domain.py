"""What logistics knows, in its own terms: the few facts it takes from each document on the wire, the
parcel it keeps per waybill, and what it has to tell the mesh. rules.py decides on these; store.py loads
and saves them; handlers.py builds them from the wire models with the `*_of` functions below and turns
notices back into events. No I/O here.

Keys: a waybill is keyed by (logistics_code, waybill_no), an order by (platform_code, order_no).
Times are timezone-aware datetimes.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from contracts.v1.events import CustomsDecision, WaybillSubmitted, WaybillTracked
from contracts.v2.events import OrderSubmittedV2

if TYPE_CHECKING:  # rules.py builds on these views; the state machine's state lives there
    from services.logistics.rules import Shipment

WaybillKey = tuple[str, str]  # (logistics_code, waybill_no)
OrderKey = tuple[str, str]  # (platform_code, order_no)


@dataclass(frozen=True)
class ParcelRef:
    """Which parcel: the waybill and the order it carries."""

    logistics_code: str
    waybill_no: str
    platform_code: str
    order_no: str

    @property
    def key(self) -> WaybillKey:
        return (self.logistics_code, self.waybill_no)

    @property
    def order(self) -> OrderKey:
        return (self.platform_code, self.order_no)


@dataclass(frozen=True)
class Waybill:
    """A waybill as the gateway accepted it (`submitted_at`: when, the gateway's clock)."""

    ref: ParcelRef
    submitted_at: datetime


@dataclass(frozen=True)
class Report:
    """One tracking report from the logistics firm (`event`: a firm's event name, `at`: the firm's time)."""

    ref: ParcelRef
    event: str
    at: datetime
    location: str = ""
    note: str = ""


@dataclass(frozen=True)
class Decision:
    """A customs decision about an order (`status`: customs' status, `decided_at`: customs' clock)."""

    platform_code: str
    order_no: str
    order_version: int
    status: str
    decided_at: datetime

    @property
    def order(self) -> OrderKey:
        return (self.platform_code, self.order_no)


@dataclass(frozen=True)
class OrderSeen:
    """An order event of any kind (new, corrected, cancelled): the order exists (`at`: submitted_at)."""

    platform_code: str
    order_no: str
    at: datetime

    @property
    def order(self) -> OrderKey:
        return (self.platform_code, self.order_no)


@dataclass(frozen=True)
class Parcel:
    """The shipment logistics keeps per waybill: the state machine's state and what surrounds it.

    `location`: where the status last changed ("" for created and cleared); `released_at`: customs'
    decided_at of the release; `awaiting_order_since`: set while the watchdog still has to look at it."""

    ref: ParcelRef
    shipment: Shipment
    location: str
    waybill_received_at: datetime
    released_at: datetime | None = None
    order_seen_at: datetime | None = None
    awaiting_order_since: datetime | None = None
    order_never_came_at: datetime | None = None


@dataclass(frozen=True)
class StatusNotice:
    """The visible status of a parcel changed (`logistics.status.v1` ShipmentStatusChanged)."""

    ref: ParcelRef
    status: str
    previous: str | None
    at: datetime
    location: str


@dataclass(frozen=True)
class AnomalyNotice:
    """Something someone should look at (`logistics.status.v1` LogisticsAnomaly)."""

    ref: ParcelRef
    anomaly: str
    detail: str
    at: datetime


Notice = StatusNotice | AnomalyNotice


def waybill_of(w: WaybillSubmitted) -> Waybill:
    b = w.waybill
    return Waybill(ParcelRef(b.logistics_code, b.waybill_no, b.platform_code, b.order_no), w.submitted_at)


def report_of(t: WaybillTracked) -> Report:
    return Report(ParcelRef(t.logistics_code, t.waybill_no, t.platform_code, t.order_no), t.event, t.at,
                  t.location, t.note)


def decision_of(d: CustomsDecision) -> Decision:
    return Decision(d.platform_code, d.order_no, d.order_version, d.status, d.decided_at)


def order_seen_of(o: OrderSubmittedV2) -> OrderSeen:
    return OrderSeen(o.order.platform.code, o.order.order_no, o.submitted_at)
