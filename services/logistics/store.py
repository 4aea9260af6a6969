"""Logistics' loading and saving, set-based: the state of every key of a run with one query per table,
each write with one statement per table (a multi-row INSERT, or one UPDATE executed for many rows).
Every lookup is by an indexed key: shipments by primary key (logistics_code, waybill_no) or by
ix_shipments_order, kept reports by ix_tracking_events_waybill, orders and releases by primary key, the
watchdog by ix_shipments_awaiting_order.

Locks (PostgreSQL; SQLite has one writer at a time anyway): `lock_orders` serialises the waybill and the
customs release of one order across instances, and rows read to be changed are read FOR UPDATE in key
order, so two runs over overlapping keys queue instead of deadlocking.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import and_, bindparam, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.identifiers import order_key
from services.logistics.domain import Decision, OrderKey, OrderSeen, Parcel, ParcelRef, Report, WaybillKey
from services.logistics.rules import Shipment
from services.logistics.tables import customs_releases, orders_seen, shipments, tracking_events
from shared.db import insert_if_absent, lock_keys

_STATE = ("status", "furthest", "last_event_at", "released", "exception_at", "location", "released_at",
          "order_seen_at", "awaiting_order_since", "order_never_came_at")


def parcel_of(row) -> Parcel:  # noqa: ANN001
    return Parcel(
        ref=ParcelRef(row.logistics_code, row.waybill_no, row.platform_code, row.order_no),
        shipment=Shipment(status=row.status, furthest=row.furthest, last_event_at=row.last_event_at,
                          released=bool(row.released), exception_at=row.exception_at),
        location=row.location, waybill_received_at=row.waybill_received_at, released_at=row.released_at,
        order_seen_at=row.order_seen_at, awaiting_order_since=row.awaiting_order_since,
        order_never_came_at=row.order_never_came_at)


def _state_columns(p: Parcel) -> dict:
    s = p.shipment
    return {"status": s.status, "furthest": s.furthest, "last_event_at": s.last_event_at, "released": s.released,
            "exception_at": s.exception_at, "location": p.location, "released_at": p.released_at,
            "order_seen_at": p.order_seen_at, "awaiting_order_since": p.awaiting_order_since,
            "order_never_came_at": p.order_never_came_at}


def _by_waybill(keys: Collection[WaybillKey]):  # noqa: ANN202
    return tuple_(shipments.c.logistics_code, shipments.c.waybill_no).in_(sorted(keys))


def _by_order(table, orders: Collection[OrderKey]):  # noqa: ANN001, ANN202
    return tuple_(table.c.platform_code, table.c.order_no).in_(sorted(orders))


# --- locks ---------------------------------------------------------------------------------------------


async def lock_orders(session: AsyncSession, orders: Iterable[OrderKey]) -> None:
    """Takes the transaction's advisory lock of every order (shared.db.lock_keys). Without it, a release
    handled while another instance's new shipment is still uncommitted would find no shipment to clear,
    and the waybill's handler would not have seen the release either."""
    await lock_keys(session, (order_key(*o) for o in orders))


# --- loading -------------------------------------------------------------------------------------------


async def parcels(session: AsyncSession, keys: Collection[WaybillKey]) -> dict[WaybillKey, Parcel]:
    """The parcels of these waybills, locked, by key (absent: not known)."""
    if not keys:
        return {}
    rows = (await session.execute(select(shipments).where(_by_waybill(keys))
                                  .order_by(shipments.c.logistics_code, shipments.c.waybill_no)
                                  .with_for_update())).all()
    return {(r.logistics_code, r.waybill_no): parcel_of(r) for r in rows}


async def parcels_of_orders(session: AsyncSession, orders: Collection[OrderKey]) -> dict[WaybillKey, Parcel]:
    """Every parcel of these orders, locked, by key."""
    if not orders:
        return {}
    rows = (await session.execute(select(shipments).where(_by_order(shipments, orders))
                                  .order_by(shipments.c.logistics_code, shipments.c.waybill_no)
                                  .with_for_update())).all()
    return {(r.logistics_code, r.waybill_no): parcel_of(r) for r in rows}


async def known_waybills(session: AsyncSession, keys: Collection[WaybillKey]) -> set[WaybillKey]:
    if not keys:
        return set()
    return {tuple(r) for r in (await session.execute(
        select(shipments.c.logistics_code, shipments.c.waybill_no).where(_by_waybill(keys)))).all()}


async def orders_seen_at(session: AsyncSession, orders: Collection[OrderKey]) -> dict[OrderKey, datetime]:
    """When each of these orders was first seen (absent: never)."""
    if not orders:
        return {}
    return {(r.platform_code, r.order_no): r.seen_at for r in (await session.execute(
        select(orders_seen).where(_by_order(orders_seen, orders)))).all()}


async def released_at(session: AsyncSession, orders: Collection[OrderKey]) -> dict[OrderKey, datetime]:
    """When customs released each of these orders (absent: not released)."""
    if not orders:
        return {}
    return {(r.platform_code, r.order_no): r.released_at for r in (await session.execute(
        select(customs_releases.c.platform_code, customs_releases.c.order_no, customs_releases.c.released_at)
        .where(_by_order(customs_releases, orders)))).all()}


async def kept_reports(session: AsyncSession, refs: Mapping[WaybillKey, ParcelRef]
                       ) -> dict[WaybillKey, list[tuple[int, Report]]]:
    """Reports kept for these waybills (received before them, not applied yet), in arrival order, with
    their ids (for `mark_applied`)."""
    if not refs:
        return {}
    rows = (await session.execute(select(tracking_events).where(and_(
        tuple_(tracking_events.c.logistics_code, tracking_events.c.waybill_no).in_(sorted(refs)),
        tracking_events.c.applied.is_(False))).order_by(tracking_events.c.id))).all()
    kept: dict[WaybillKey, list[tuple[int, Report]]] = {}
    for r in rows:
        key = (r.logistics_code, r.waybill_no)
        kept.setdefault(key, []).append((r.id, Report(refs[key], r.event, r.at, r.location, r.note)))
    return kept


async def awaiting_order(session: AsyncSession, since_before: datetime, limit: int) -> list[Parcel]:
    """At most `limit` parcels waiting for their order since `since_before` or earlier, oldest first,
    locked (rows another instance holds are skipped)."""
    rows = (await session.execute(
        select(shipments).where(shipments.c.awaiting_order_since <= since_before)
        .order_by(shipments.c.awaiting_order_since).limit(limit).with_for_update(skip_locked=True))).all()
    return [parcel_of(r) for r in rows]


# --- saving --------------------------------------------------------------------------------------------


async def add_parcels(session: AsyncSession, new: Iterable[Parcel], now: datetime) -> tuple[int, int]:
    """Writes new parcels (a parcel whose waybill exists is left alone); returns (written, given)."""
    rows = [{"logistics_code": p.ref.logistics_code, "waybill_no": p.ref.waybill_no,
             "platform_code": p.ref.platform_code, "order_no": p.ref.order_no,
             "waybill_received_at": p.waybill_received_at, **_state_columns(p), "updated_at": now} for p in new]
    return await insert_if_absent(session, shipments, rows, ["logistics_code", "waybill_no"]), len(rows)


async def save_parcels(session: AsyncSession, changed: Mapping[WaybillKey, Parcel], now: datetime) -> None:
    """Writes the state of parcels that exist (and were read locked), one UPDATE for them all."""
    if not changed:
        return
    stmt = (update(shipments)
            .where(and_(shipments.c.logistics_code == bindparam("k_logistics_code"),
                        shipments.c.waybill_no == bindparam("k_waybill_no")))
            .values({c: bindparam(f"v_{c}") for c in (*_STATE, "updated_at")}))
    await session.execute(stmt, [
        {"k_logistics_code": k[0], "k_waybill_no": k[1], **{f"v_{c}": v for c, v in _state_columns(p).items()},
         "v_updated_at": now} for k, p in sorted(changed.items())])


async def add_reports(session: AsyncSession, reports: Sequence[Report], applied: Sequence[bool],
                      now: datetime) -> None:
    """Every firm report as received, in order; `applied` False: kept for a waybill still to come."""
    if reports:
        await session.execute(insert(tracking_events), [
            {"logistics_code": r.ref.logistics_code, "waybill_no": r.ref.waybill_no, "event": r.event, "at": r.at,
             "location": r.location, "note": r.note, "received_at": now, "applied": a}
            for r, a in zip(reports, applied, strict=True)])


async def mark_applied(session: AsyncSession, ids: Collection[int]) -> None:
    if ids:
        await session.execute(update(tracking_events).where(tracking_events.c.id.in_(sorted(ids)))
                              .values(applied=True))


async def remember_releases(session: AsyncSession, releases: Sequence[Decision]) -> None:
    """The first release of each order (kept if one is already remembered)."""
    await insert_if_absent(session, customs_releases, [
        {"platform_code": d.platform_code, "order_no": d.order_no, "order_version": d.order_version,
         "released_at": d.decided_at} for d in releases], ["platform_code", "order_no"])


async def remember_orders(session: AsyncSession, orders: Sequence[OrderSeen]) -> None:
    """Orders seen for the first time (kept if one is already remembered)."""
    await insert_if_absent(session, orders_seen, [
        {"platform_code": o.platform_code, "order_no": o.order_no, "seen_at": o.at} for o in orders],
        ["platform_code", "order_no"])

