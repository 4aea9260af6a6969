"""Logistics: keeps one shipment per waybill and tells the mesh when its visible status changes
(spec §4.3, §4.4, §6 `logistics.status.v1`). The state machine is in rules.py; this is its I/O.

What arrives, on which topic, and in what order:

- the waybill and its tracking reports share `sw.waybill.submitted.v1` and the order's key, so a report
  normally follows its waybill. A report about a waybill we do not have is announced as the anomaly
  EVENT_FOR_UNKNOWN_WAYBILL and kept, and applied if the waybill turns up later;
- the customs release and the order come on other topics, before or after the waybill: both are
  remembered per order, and a waybill that arrives later starts from what they said.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import and_, bindparam, exists, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import Envelope
from contracts.v1.events import (
    CustomsDecision,
    LogisticsAnomaly,
    ShipmentStatusChanged,
    WaybillSubmitted,
    WaybillTracked,
)
from contracts.v2.events import OrderSubmittedV2
from services.logistics.rules import (
    Shipment,
    apply_customs_release,
    apply_tracking_event,
    new_shipment,
    order_never_came,
)
from services.logistics.tables import customs_releases, orders_seen, shipments, tracking_events
from shared.db import insert_if_absent
from shared.runtime import Handlers, UnitOfWork
from shared.clock import utcnow

handlers = Handlers()
log = logging.getLogger(__name__)

WATCHDOG_BATCH = 500



def order_key(platform_code: str, order_no: str) -> str:
    return f"{platform_code}:{order_no}"


async def lock_order(session: AsyncSession, platform_code: str, order_no: str) -> None:
    """Serialises the waybill and the customs release of one order across instances (PostgreSQL; SQLite
    has one writer at a time anyway). Without it, a release handled while another instance's new
    shipment is still uncommitted would find no shipment to clear, and the waybill's handler would
    not have seen the release either."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(order_key(platform_code, order_no)))))


# --- the shipment as a row ----------------------------------------------------------------------------


def shipment_of(row: dict) -> Shipment:
    return Shipment(status=row["status"], furthest=row["furthest"], last_event_at=row["last_event_at"],
                    released=bool(row["released"]), exception_at=row["exception_at"])


def shipment_columns(s: Shipment) -> dict:
    return {"status": s.status, "furthest": s.furthest, "last_event_at": s.last_event_at, "released": s.released,
            "exception_at": s.exception_at}


def _pk(logistics_code: str, waybill_no: str):  # noqa: ANN202
    return and_(shipments.c.logistics_code == logistics_code, shipments.c.waybill_no == waybill_no)


def _status_changed(uow: UnitOfWork, row: dict, previous: str | None, at: datetime) -> None:
    uow.emit(ShipmentStatusChanged(
        logistics_code=row["logistics_code"], waybill_no=row["waybill_no"], platform_code=row["platform_code"],
        order_no=row["order_no"], status=row["status"], previous_status=previous, at=at, location=row["location"],
    ), correlation_id=order_key(row["platform_code"], row["order_no"]))


def _anomaly(uow: UnitOfWork, row: dict, anomaly: str, detail: str, at: datetime) -> None:
    uow.emit(LogisticsAnomaly(
        logistics_code=row["logistics_code"], waybill_no=row["waybill_no"], platform_code=row["platform_code"],
        order_no=row["order_no"], anomaly=anomaly, detail=detail, at=at,
    ), correlation_id=order_key(row["platform_code"], row["order_no"]))


def _track(uow: UnitOfWork, row: dict, event: str, at: datetime, location: str) -> None:
    """Applies one firm report to `row` (updated in place) and announces what it changed."""
    try:
        transition = apply_tracking_event(shipment_of(row), event, at)
    except ValueError as err:
        raise ValueError(f"tracking event refused for waybill {row['waybill_no']} of {row['logistics_code']}: "
                         f"{err}") from err
    previous = row["status"]
    row.update(shipment_columns(transition.shipment))
    if transition.changed:
        row["location"] = location
        _status_changed(uow, row, previous, at)
    if transition.anomaly:
        _anomaly(uow, row, transition.anomaly,
                 f"waybill {row['waybill_no']} reported {event} at {at.isoformat()} before customs released "
                 f"order {row['order_no']}", at)


def _release(uow: UnitOfWork, row: dict, decided_at: datetime, at: datetime) -> None:
    transition = apply_customs_release(shipment_of(row), decided_at)
    previous = row["status"]
    row.update(shipment_columns(transition.shipment))
    row["released_at"] = row["released_at"] or decided_at
    if transition.changed:
        row["location"] = ""  # the clearance happens at customs, not where the firm last scanned the parcel
        _status_changed(uow, row, previous, at)


async def _save(uow: UnitOfWork, before: dict, after: dict, now: datetime) -> None:
    changes = {k: v for k, v in after.items() if before.get(k) != v}
    if changes:
        await uow.session.execute(update(shipments).where(_pk(after["logistics_code"], after["waybill_no"]))
                                  .values(**changes, updated_at=now))


# --- waybills -----------------------------------------------------------------------------------------


@handlers.on(WaybillSubmitted)
async def on_waybill_submitted(uow: UnitOfWork, event: Envelope, w: WaybillSubmitted) -> None:
    b = w.waybill
    same_order = lambda t: and_(t.c.platform_code == b.platform_code, t.c.order_no == b.order_no)  # noqa: E731
    await lock_order(uow.session, b.platform_code, b.order_no)
    # One round trip for everything the new shipment depends on.
    known = (await uow.session.execute(select(
        exists().where(_pk(b.logistics_code, b.waybill_no)).label("known_waybill"),
        select(orders_seen.c.seen_at).where(same_order(orders_seen)).scalar_subquery().label("seen_at"),
        select(customs_releases.c.released_at).where(same_order(customs_releases)).scalar_subquery()
        .label("released_at"),
        exists().where(and_(tracking_events.c.logistics_code == b.logistics_code,
                            tracking_events.c.waybill_no == b.waybill_no,
                            tracking_events.c.applied.is_(False))).label("orphans"),
    ))).one()
    if known.known_waybill:
        return  # the same waybill published again: its shipment is already under way
    now = utcnow()
    s = new_shipment()
    row = {
        "logistics_code": b.logistics_code, "waybill_no": b.waybill_no, "platform_code": b.platform_code,
        "order_no": b.order_no, **shipment_columns(s), "location": "", "waybill_received_at": w.submitted_at,
        "released_at": None, "order_seen_at": known.seen_at,
        "awaiting_order_since": None if known.seen_at else w.submitted_at, "order_never_came_at": None,
    }
    if not await insert_if_absent(uow.session, shipments, {**row, "updated_at": now}):
        return
    created = dict(row)
    _status_changed(uow, row, None, w.submitted_at)

    # What happened before the waybill got here, replayed in the order it happened (a release at the
    # same instant as a report counts as earlier: customs had decided when the report was made).
    facts: list[tuple[datetime, int, object]] = []
    if known.released_at is not None:
        facts.append((known.released_at, 0, None))
    orphan_ids = []
    if known.orphans:
        orphans = (await uow.session.execute(select(tracking_events).where(and_(
            tracking_events.c.logistics_code == b.logistics_code, tracking_events.c.waybill_no == b.waybill_no,
            tracking_events.c.applied.is_(False))).order_by(tracking_events.c.id))).all()
        facts.extend((o.at, 1, o) for o in orphans)
        orphan_ids = [o.id for o in orphans]
    for at, _, report in sorted(facts, key=lambda f: (f[0], f[1])):
        if report is None:
            _release(uow, row, at, max(at, w.submitted_at))
        else:
            try:
                _track(uow, row, report.event, report.at, report.location)
            except ValueError:
                # Kept reports passed the contract, so this cannot happen today; if it ever does, one bad
                # report must not cost the waybill itself (it would be dead-lettered with it).
                log.warning("kept tracking report refused", extra={"event_type": report.event})
    if orphan_ids:
        await uow.session.execute(update(tracking_events).where(tracking_events.c.id.in_(orphan_ids))
                                  .values(applied=True))
    await _save(uow, created, row, now)


@handlers.on(WaybillTracked)
async def on_waybill_tracked(uow: UnitOfWork, event: Envelope, t: WaybillTracked) -> None:
    now = utcnow()
    found = (await uow.session.execute(
        select(shipments).where(_pk(t.logistics_code, t.waybill_no)).with_for_update())).first()
    report = {"logistics_code": t.logistics_code, "waybill_no": t.waybill_no, "event": t.event, "at": t.at,
              "location": t.location, "note": t.note, "received_at": now}
    if found is None:
        await uow.session.execute(insert(tracking_events).values(**report, applied=False))
        _anomaly(uow, {"logistics_code": t.logistics_code, "waybill_no": t.waybill_no,
                       "platform_code": t.platform_code, "order_no": t.order_no},
                 "EVENT_FOR_UNKNOWN_WAYBILL",
                 f"{t.event} reported at {t.at.isoformat()} for waybill {t.waybill_no} of {t.logistics_code}, "
                 "which logistics has not received; the report is kept and applied if the waybill arrives", t.at)
        return
    before = dict(found._mapping)
    row = dict(before)
    _track(uow, row, t.event, t.at, t.location)
    await uow.session.execute(insert(tracking_events).values(**report, applied=True))
    await _save(uow, before, row, now)


# --- customs and orders -------------------------------------------------------------------------------


@handlers.on(CustomsDecision)
async def on_customs_decision(uow: UnitOfWork, event: Envelope, d: CustomsDecision) -> None:
    # Only a release moves a parcel; a cancellation cannot follow one (rules.py, rule 9).
    if d.status != "released":
        return
    await lock_order(uow.session, d.platform_code, d.order_no)
    await insert_if_absent(uow.session, customs_releases, {
        "platform_code": d.platform_code, "order_no": d.order_no, "order_version": d.order_version,
        "released_at": d.decided_at})
    now = utcnow()
    found = (await uow.session.execute(select(shipments).where(and_(
        shipments.c.platform_code == d.platform_code, shipments.c.order_no == d.order_no))
        .order_by(shipments.c.logistics_code, shipments.c.waybill_no).with_for_update())).all()
    for r in found:
        before = dict(r._mapping)
        row = dict(before)
        _release(uow, row, d.decided_at, d.decided_at)
        await _save(uow, before, row, now)


@handlers.on(OrderSubmittedV2)
async def on_order_submitted(uow: UnitOfWork, event: Envelope, submitted: OrderSubmittedV2) -> None:
    # New, corrected or cancelled: any of them means the order exists, which is all the watchdog asks.
    o = submitted.as_v1()
    p, n = o.order.platform_code, o.order.order_no
    if not await insert_if_absent(uow.session, orders_seen, {"platform_code": p, "order_no": n,
                                                          "seen_at": o.submitted_at}):
        return
    await uow.session.execute(update(shipments).where(and_(
        shipments.c.platform_code == p, shipments.c.order_no == n, shipments.c.order_seen_at.is_(None)))
        .values(order_seen_at=o.submitted_at, awaiting_order_since=None, updated_at=utcnow()))


# --- the watchdog -------------------------------------------------------------------------------------


def grace_period(grace_hours: Decimal) -> timedelta:
    return timedelta(microseconds=int(grace_hours * 3_600_000_000))


async def report_orders_never_came(uow: UnitOfWork, now: datetime, grace_hours: Decimal,
                                   limit: int = WATCHDOG_BATCH) -> int:
    """Raises ORDER_NEVER_CAME, once per waybill, for at most `limit` waybills; returns how many."""
    due = (await uow.session.execute(
        select(shipments).where(shipments.c.awaiting_order_since <= now - grace_period(grace_hours))
        .order_by(shipments.c.awaiting_order_since).limit(limit).with_for_update(skip_locked=True))).all()
    # An order committed by another instance while the waybill's shipment was still uncommitted did not
    # clear `awaiting_order_since`; orders_seen is the record that cannot miss it.
    seen: dict[tuple[str, str], datetime] = {}
    if due:
        seen = {(o.platform_code, o.order_no): o.seen_at for o in (await uow.session.execute(
            select(orders_seen).where(tuple_(orders_seen.c.platform_code, orders_seen.c.order_no).in_(
                [(r.platform_code, r.order_no) for r in due])))).all()}
    done = []
    for r in due:
        seen_at = r.order_seen_at or seen.get((r.platform_code, r.order_no))
        if seen_at is not None:
            done.append({"lc": r.logistics_code, "wn": r.waybill_no, "seen": seen_at, "never": None})
            continue
        if not order_never_came(r.waybill_received_at, False, now, grace_hours):
            continue
        _anomaly(uow, dict(r._mapping), "ORDER_NEVER_CAME",
                 f"waybill {r.waybill_no} of {r.logistics_code} arrived at {r.waybill_received_at.isoformat()}; "
                 f"no order {r.order_no} of platform {r.platform_code} after {grace_hours} hours", now)
        done.append({"lc": r.logistics_code, "wn": r.waybill_no, "seen": None, "never": now})
    if done:
        await uow.session.execute(
            update(shipments).where(and_(shipments.c.logistics_code == bindparam("lc"),
                                         shipments.c.waybill_no == bindparam("wn")))
            .values(awaiting_order_since=None, order_seen_at=bindparam("seen"), order_never_came_at=bindparam("never"),
                    updated_at=now), done)
    return sum(1 for d in done if d["never"] is not None)
