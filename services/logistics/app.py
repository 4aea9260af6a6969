"""Logistics back office (spec §5a, port 8004): the shipments it keeps, and the watchdog for waybills
whose order never came."""
from __future__ import annotations


from fastapi import APIRouter
from sqlalchemy import and_, select

from services.logistics.handlers import handlers, report_orders_never_came
from services.logistics.rules import grace_period
from services.logistics.settings import settings
from services.logistics.tables import shipments, tracking_events
from shared.clock import utcnow
from shared.http import Operator, Problem
from shared.runtime import Service, UnitOfWork

service = Service("logistics", handlers=handlers)
router = APIRouter(prefix="/v1", tags=["logistics"])


def sweep_seconds(_: object = None) -> float:
    """How often the watchdog looks: LOGISTICS_SWEEP_SECONDS if set, else a quarter of the grace period
    between 1 and 60 seconds, so that a short grace (in tests) is noticed promptly."""
    s = settings()
    if s.logistics_sweep_seconds:
        return max(s.logistics_sweep_seconds, 0.1)
    return min(60.0, max(1.0, grace_period(s.logistics_order_grace_hours).total_seconds() / 4))


@service.every(sweep_seconds)
async def order_never_came_watchdog(uow: UnitOfWork) -> None:
    await report_orders_never_came(uow, utcnow(), settings().logistics_order_grace_hours)


def _iso(value) -> str | None:  # noqa: ANN001
    return value.isoformat() if value is not None else None


@router.get("/shipments/{logistics_code}/{waybill_no}")
async def shipment_view(logistics_code: str, waybill_no: str, _: Operator):
    async with service.readers() as session:
        row = (await session.execute(select(shipments).where(and_(
            shipments.c.logistics_code == logistics_code, shipments.c.waybill_no == waybill_no)))).first()
        reports = (await session.execute(select(tracking_events).where(and_(
            tracking_events.c.logistics_code == logistics_code, tracking_events.c.waybill_no == waybill_no))
            .order_by(tracking_events.c.id))).all()
    if row is None:
        detail = f"no waybill {waybill_no} of {logistics_code}"
        if reports:
            detail += f" (only {len(reports)} tracking report(s) for it, received before the waybill)"
        raise Problem(404, "Not found", detail)
    return {
        "logistics_code": row.logistics_code, "waybill_no": row.waybill_no,
        "platform_code": row.platform_code, "order_no": row.order_no,
        "status": row.status, "furthest": row.furthest, "released": bool(row.released),
        "location": row.location,
        "waybill_received_at": _iso(row.waybill_received_at), "released_at": _iso(row.released_at),
        "last_event_at": _iso(row.last_event_at), "exception_at": _iso(row.exception_at),
        "order_seen_at": _iso(row.order_seen_at), "order_never_came_at": _iso(row.order_never_came_at),
        "updated_at": _iso(row.updated_at),
        "events": [{"event": r.event, "at": _iso(r.at), "location": r.location, "note": r.note,
                    "received_at": _iso(r.received_at)} for r in reports],
    }


app = service.http(router, title="Single window: logistics back office", version="1")
