"""Logistics: keeps one shipment per waybill and tells the mesh when its visible status changes
(spec §4.3, §4.4, §6 `logistics.status.v1`). The state machine and every decision are in rules.py, the
loading and saving in store.py; a handler here takes a run of one event type (oldest first, several
events of one waybill or order folded in order), loads the state of all its keys, decides, saves, emits.

What arrives, on which topic, and in what order:

- the waybill and its tracking reports share `sw.waybill.submitted.v1` and the order's key, so a report
  normally follows its waybill. A report about a waybill we do not have is announced as the anomaly
  EVENT_FOR_UNKNOWN_WAYBILL and kept, and applied if the waybill turns up later;
- the same waybill published again changes nothing (its shipment is already under way);
- the customs release and the order come on other topics, before or after the waybill: both are
  remembered per order, and a waybill that arrives later starts from what they said. Only a release
  moves a parcel; an order in any version (new, corrected, cancelled) means the order came.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from contracts.identifiers import order_key
from contracts.v1.events import (
    CustomsDecision,
    LogisticsAnomaly,
    ShipmentStatusChanged,
    WaybillSubmitted,
    WaybillTracked,
)
from contracts.v2.events import OrderSubmittedV2
from services.logistics import rules, store
from services.logistics.domain import (
    AnomalyNotice,
    Notice,
    decision_of,
    order_seen_of,
    report_of,
    waybill_of,
)
from shared.batch import Received
from shared.clock import utcnow
from shared.runtime import Handlers, UnitOfWork

handlers = Handlers()
log = logging.getLogger(__name__)

WATCHDOG_BATCH = 500


class WaybillRace(RuntimeError):
    """Another instance created a shipment of this run meanwhile: the run is handled again one by one."""


@handlers.on_batch(WaybillSubmitted)
async def on_waybills(uow: UnitOfWork, events: list[Received[WaybillSubmitted]]) -> None:
    waybills = [waybill_of(e.payload) for e in events]
    orders, refs = {w.ref.order for w in waybills}, {w.ref.key: w.ref for w in waybills}
    await store.lock_orders(uow.session, orders)
    known = await store.known_waybills(uow.session, refs.keys())
    kept = await store.kept_reports(uow.session, {k: r for k, r in refs.items() if k not in known})
    outcome = rules.receive_waybills(waybills, known, await store.orders_seen_at(uow.session, orders),
                                     await store.released_at(uow.session, orders),
                                     {k: [r for _, r in reports] for k, reports in kept.items()})
    written, given = await store.add_parcels(uow.session, outcome.parcels.values(), utcnow())
    if written < given:
        if len(events) > 1:
            raise WaybillRace(f"{given - written} of {given} waybills were created by another instance")
        return  # the one waybill was: its shipment is under way
    await store.mark_applied(uow.session, [i for k in outcome.parcels for i, _ in kept.get(k, ())])
    for report, why in outcome.refused:
        log.warning("kept tracking report refused", extra={"event_type": report.event, "error": why})
    emit(uow, events, outcome.notices)


@handlers.on_batch(WaybillTracked)
async def on_tracking_reports(uow: UnitOfWork, events: list[Received[WaybillTracked]]) -> None:
    reports = [report_of(e.payload) for e in events]
    parcels = await store.parcels(uow.session, {r.ref.key for r in reports})
    outcome = rules.track_reports(parcels, reports)
    now = utcnow()
    await store.add_reports(uow.session, reports, outcome.applied, now)
    await store.save_parcels(uow.session, outcome.parcels, now)
    emit(uow, events, outcome.notices)


@handlers.on_batch(CustomsDecision)
async def on_customs_decisions(uow: UnitOfWork, events: list[Received[CustomsDecision]]) -> None:
    decisions = [decision_of(e.payload) for e in events]
    releases = rules.releases_to_remember(decisions)
    if not releases:
        return
    orders = {d.order for d in releases}
    await store.lock_orders(uow.session, orders)
    await store.remember_releases(uow.session, releases)
    outcome = rules.release_parcels(await store.parcels_of_orders(uow.session, orders), decisions)
    await store.save_parcels(uow.session, outcome.parcels, utcnow())
    emit(uow, events, outcome.notices)


@handlers.on_batch(OrderSubmittedV2)
async def on_orders(uow: UnitOfWork, events: list[Received[OrderSubmittedV2]]) -> None:
    seen = [order_seen_of(e.payload) for e in events]
    new = rules.first_sightings((await store.orders_seen_at(uow.session, {o.order for o in seen})).keys(), seen)
    if not new:
        return
    await store.remember_orders(uow.session, new)
    outcome = rules.orders_came(await store.parcels_of_orders(uow.session, {o.order for o in new}), new)
    await store.save_parcels(uow.session, outcome.parcels, utcnow())


# --- the watchdog -------------------------------------------------------------------------------------


async def report_orders_never_came(uow: UnitOfWork, now: datetime, grace_hours: Decimal,
                                   limit: int = WATCHDOG_BATCH) -> int:
    """Raises ORDER_NEVER_CAME, once per waybill, for at most `limit` waybills; returns how many."""
    due = await store.awaiting_order(uow.session, now - rules.grace_period(grace_hours), limit)
    # An order committed by another instance while the waybill's shipment was still uncommitted did not
    # clear `awaiting_order_since`; orders_seen is the record that cannot miss it.
    outcome = rules.watch(due, await store.orders_seen_at(uow.session, {p.ref.order for p in due}), now, grace_hours)
    await store.save_parcels(uow.session, outcome.parcels, now)
    emit(uow, [None] * len(due), outcome.notices)
    return sum(len(n) for n in outcome.notices)


# --- what logistics tells -----------------------------------------------------------------------------


def emit(uow: UnitOfWork, causes: Sequence[Received | None], notices: Sequence[Sequence[Notice]]) -> None:
    """Publishes each input's notices, in input order, continuing the trace of the input that caused them."""
    for cause, said in zip(causes, notices, strict=True):
        for n in said:
            uow.emit(event_of(n), correlation_id=order_key(n.ref.platform_code, n.ref.order_no), cause=cause)


def event_of(n: Notice) -> ShipmentStatusChanged | LogisticsAnomaly:
    ref = {"logistics_code": n.ref.logistics_code, "waybill_no": n.ref.waybill_no,
           "platform_code": n.ref.platform_code, "order_no": n.ref.order_no}
    if isinstance(n, AnomalyNotice):
        return LogisticsAnomaly(**ref, anomaly=n.anomaly, detail=n.detail, at=n.at)
    return ShipmentStatusChanged(**ref, status=n.status, previous_status=n.previous, at=n.at, location=n.location)
