"""The one-stop read model: the gateway listens to every agency's answer and keeps what the status
view, the trace, the enterprise view and the statistics show. It never asks an agency directly."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import Envelope
from contracts.types import format_money
from contracts.v1.events import (
    CreditRatingChanged,
    CustomsDecision,
    FxDirectoryStatusChanged,
    FxSettled,
    LogisticsAnomaly,
    NegativeListChanged,
    ShipmentStatusChanged,
    TaxAssessment,
)
from services.gateway.tables import enterprises, orders, trace
from shared.runtime import Handlers, UnitOfWork

handlers = Handlers()


async def add_trace(session: AsyncSession, correlation_id: str, at: datetime, source: str, type_: str,
                    summary: str) -> None:
    await session.execute(insert(trace).values(correlation_id=correlation_id, at=at, source=source, type=type_,
                                               summary=summary[:500]))


def _order(platform_code: str, order_no: str):  # noqa: ANN202
    return and_(orders.c.platform_code == platform_code, orders.c.order_no == order_no)


@handlers.on(CustomsDecision)
async def on_customs_decision(uow: UnitOfWork, event: Envelope, d: CustomsDecision) -> None:
    reasons = [r.model_dump() for r in d.reasons]
    # A decision about an older version of the order (before a correction or cancellation) is history only.
    await uow.session.execute(update(orders).where(and_(
        _order(d.platform_code, d.order_no), orders.c.version <= d.order_version)).values(
        customs_status=d.status, customs_channel=d.channel, customs_reasons=reasons,
        customs_version=d.order_version, decided_at=d.decided_at if d.status != "pending" else None,
        updated_at=d.decided_at))
    codes = ", ".join(r.code for r in d.reasons)
    summary = f"{d.status}" + (f" ({d.channel})" if d.channel else "") + (f": {codes}" if codes else "")
    await add_trace(uow.session, event.correlation_id, d.decided_at, "customs", "customs.decision", summary)


@handlers.on(TaxAssessment)
async def on_tax_assessment(uow: UnitOfWork, event: Envelope, a: TaxAssessment) -> None:
    view = {"status": a.status}
    if a.total is not None:
        view.update({
            "dutiable_value": format_money(a.dutiable_value), "customs_duty": format_money(a.customs_duty),
            "vat": format_money(a.vat), "consumption_tax": format_money(a.consumption_tax),
            "total": format_money(a.total), "currency": a.currency,
            "declared_difference": str(a.declared_difference) if a.declared_difference is not None else None,
        })
    await uow.session.execute(update(orders).where(and_(
        _order(a.platform_code, a.order_no), orders.c.tax_version <= a.order_version)).values(
        tax=view, tax_version=a.order_version, updated_at=a.assessed_at))
    total = f" total {format_money(a.total)} CNY" if a.total is not None else ""
    await add_trace(uow.session, event.correlation_id, a.assessed_at, "tax", "tax.assessment", f"{a.status}{total}")


@handlers.on(FxSettled)
async def on_fx_settlement(uow: UnitOfWork, event: Envelope, s: FxSettled) -> None:
    view = {"status": s.status}
    if s.status == "settled":
        view.update({"amount_usd": format_money(s.amount_usd), "rate": str(s.rate), "rate_date": s.rate_date,
                     "year_to_date_usd": format_money(s.year_to_date_usd), "directory_status": s.directory_status})
    await uow.session.execute(update(orders).where(_order(s.platform_code, s.order_no)).values(
        fx=view, updated_at=s.settled_at))
    if s.status == "settled":
        await uow.session.execute(update(enterprises).where(enterprises.c.code == s.ecommerce_code).values(
            fx_year=s.year, fx_year_to_date_usd=s.year_to_date_usd, fx_directory_status=s.directory_status))
    usd = f" USD {format_money(s.amount_usd)}" if s.amount_usd is not None else ""
    await add_trace(uow.session, event.correlation_id, s.settled_at, "fx", "fx.settlement", f"{s.status}{usd}")


@handlers.on(FxDirectoryStatusChanged)
async def on_directory_status(uow: UnitOfWork, event: Envelope, c: FxDirectoryStatusChanged) -> None:
    await uow.session.execute(update(enterprises).where(enterprises.c.code == c.enterprise_code).values(
        fx_directory_status=c.status, fx_year=c.year, fx_year_to_date_usd=c.year_to_date_usd))


@handlers.on(ShipmentStatusChanged)
async def on_shipment_status(uow: UnitOfWork, event: Envelope, s: ShipmentStatusChanged) -> None:
    await uow.session.execute(update(orders).where(_order(s.platform_code, s.order_no)).values(
        logistics={"status": s.status, "waybill_no": s.waybill_no, "at": s.at.isoformat()}, updated_at=s.at))
    await add_trace(uow.session, event.correlation_id, s.at, "logistics", "logistics.status",
                    f"{s.previous_status or 'new'} -> {s.status} {s.location}".strip())


@handlers.on(LogisticsAnomaly)
async def on_logistics_anomaly(uow: UnitOfWork, event: Envelope, a: LogisticsAnomaly) -> None:
    await add_trace(uow.session, event.correlation_id, a.at, "logistics", "logistics.anomaly",
                    f"{a.anomaly}: {a.detail}")


@handlers.on(CreditRatingChanged)
async def on_credit_rating(uow: UnitOfWork, event: Envelope, r: CreditRatingChanged) -> None:
    await uow.session.execute(update(enterprises).where(enterprises.c.code == r.enterprise_code).values(
        credit_score=r.score, credit_grade=r.grade, negative_listed=int(r.negative_listed)))


@handlers.on(NegativeListChanged)
async def on_negative_list(uow: UnitOfWork, event: Envelope, n: NegativeListChanged) -> None:
    await uow.session.execute(update(enterprises).where(enterprises.c.code == n.enterprise_code).values(
        negative_listed=int(n.listed), credit_score=n.score, credit_grade=n.grade))
