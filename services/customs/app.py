"""The customs service (domain rules §4-§6, §10, §12): three-document match, limits, goods lists and
inspection selection for every parcel; its officers' back office records inspection results, shows an
order file, and consolidates the month's 9610 exports into declarations."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import and_, insert, select
from sqlalchemy.exc import IntegrityError

from contracts.identifiers import order_key
from contracts.types import format_money
from contracts.v1.documents import InspectionResultIn
from contracts.v1.events import ExportDeclarationLine, ExportDeclarationsConsolidated
from services.customs import rules
from services.customs.domain import NotFound, NotInInspection, OrderFile, legal_quantities_of
from services.customs.handlers import handlers, record_inspection, sweep
from services.customs.settings import settings
from services.customs.tables import (
    declaration_runs,
    order_files,
    party_waits,
    quota_holdings,
    released_export_lines,
)
from shared.http import Operator, Problem, problem_from_validation, unprocessable
from shared.runtime import Service, UnitOfWork

service = Service("customs", handlers=handlers)
router = APIRouter(prefix="/v1", tags=["customs back office"])

Code = Annotated[str, Path(min_length=1, max_length=32)]
OrderNo = Annotated[str, Path(min_length=1, max_length=64)]
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@service.every(lambda _: float(settings().customs_sweep_seconds))
async def sweep_order_files(uow: UnitOfWork) -> None:
    await sweep(uow)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _money(amount: Any) -> str | None:
    return format_money(amount) if amount is not None else None


# --- inspections -----------------------------------------------------------------------------


@router.post("/inspections/{platform_code}/{order_no}")
async def inspection_result(platform_code: Code, order_no: OrderNo, _: Operator, body: Annotated[Any, Body()]):
    """Records an inspector's result for a parcel held for inspection: pass → released (channel red),
    fail → rejected (the buyer's quota given back). 404 for an order customs does not hold, 409 for an
    order that is not held for inspection."""
    if not isinstance(body, dict):
        raise unprocessable([{"field": "(body)", "code": "type", "message": "expected a JSON object"}])
    try:
        result = InspectionResultIn.model_validate(body)
    except ValidationError as err:
        raise problem_from_validation(err) from None
    try:
        async with service.unit_of_work() as uow:
            file = await record_inspection(uow, platform_code, order_no, result.result == "pass", result.note)
    except NotFound as err:
        raise Problem(404, "Not found", str(err)) from None
    except NotInInspection as err:
        raise Problem(409, "Conflict", str(err)) from None
    return {"platform_code": platform_code, "order_no": order_no, "result": result.result,
            "status": file.status, "channel": file.channel, "reasons": file.reasons,
            "order_version": file.decided_version, "decided_at": _iso(file.decided_at)}


# --- order files -----------------------------------------------------------------------------


def _person(person: Any) -> dict | None:
    # Officers see the masked number; the full one stays sealed in the stored documents.
    return None if person is None else {"name": person.name, "id_type": person.id_type,
                                        "id_number_masked": person.id_number_masked}


@router.get("/orders/{platform_code}/{order_no}")
async def order_file(platform_code: Code, order_no: OrderNo, _: Operator):
    """Customs' own file on a parcel: the documents it holds, the decision and why."""
    async with service.readers() as session:
        row = (await session.execute(select(order_files).where(and_(
            order_files.c.platform_code == platform_code, order_files.c.order_no == order_no)))).mappings().first()
        if row is None:
            raise Problem(404, "Not found", f"customs holds no document of order {order_no} of platform {platform_code}")
        waits = (await session.execute(select(party_waits.c.code).where(and_(
            party_waits.c.platform_code == platform_code, party_waits.c.order_no == order_no)))).scalars().all()
        holding = (await session.execute(select(quota_holdings).where(and_(
            quota_holdings.c.platform_code == platform_code, quota_holdings.c.order_no == order_no)))).first()
    file = OrderFile(dict(row))
    order, payment, waybill = file.order, file.payment, file.waybill
    missing = set(rules.missing_documents(file.documents()))
    return {
        "platform_code": platform_code, "order_no": order_no,
        "ecommerce_code": file.ecommerce_code, "direction": file.direction, "trade_mode": file.trade_mode,
        "order_version": file.order_version or None, "decided_version": file.decided_version,
        "documents": {
            "order": {"status": "received", "version": file.order_version, "action": file.order_action}
            if order else {"status": "missing"},
            "payment": {"status": "received", "payment_code": payment.payment_code, "payment_no": payment.payment_no}
            if payment else {"status": "missing" if "payment" in missing else "not_required"},
            "waybill": {"status": "received", "logistics_code": waybill.logistics_code, "waybill_no": waybill.waybill_no}
            if waybill else {"status": "missing"},
        },
        "buyer": _person(order.buyer if order else None),
        "payer": _person(payment.payer if payment else None),
        "status": file.status, "channel": file.channel, "reasons": file.reasons,
        "tax_mode": file.tax_mode, "dutiable_value_cny": _money(file.dutiable_value_cny),
        "quota": {"year": holding.year, "amount_cny": _money(holding.amount_cny)} if holding else None,
        "awaiting_registration_of": sorted(waits),
        "blocked_reason": file.blocked_reason,
        "first_document_at": _iso(file.first_document_at),
        "documents_complete_at": _iso(file.documents_complete_at),
        "decided_at": _iso(file.decided_at),
        "timed_out_at": _iso(file.timed_out_at),
        "updated_at": _iso(file.updated_at),
    }


# --- consolidated export declarations (§12) --------------------------------------------------


def _month(month: str | None) -> str:
    if month is None or not MONTH.match(month):
        raise unprocessable([{"field": "month", "code": "invalid_month",
                              "message": "expected a month as YYYY-MM, such as 2026-11"}])
    return month


async def _consolidated(session, month: str) -> list[ExportDeclarationLine]:  # noqa: ANN001
    rows = (await session.execute(select(released_export_lines).where(
        released_export_lines.c.release_month == month))).all()
    return rules.consolidate_export_declarations(rules.ReleasedExportLine(
        ecommerce_code=r.ecommerce_code, hs_code=r.hs_code, destination_country=r.destination_country,
        currency=r.currency, quantity=r.quantity, value=r.value, order_key=order_key(r.platform_code, r.order_no),
        legal_quantities=legal_quantities_of(r),
    ) for r in rows)


def _lines_json(lines: list[ExportDeclarationLine]) -> list[dict]:
    return [line.model_dump(mode="json") for line in lines]


@router.get("/declarations")
async def declarations(_: Operator, month: Annotated[str | None, Query()] = None):
    """The month's consolidated export declarations as they stand: one per (ecommerce enterprise, HS
    code, destination country, currency), from the 9610 exports released that month (China time), with
    the legal quantities summed per unit where the orders gave them (`legal_quantities_status`)."""
    month = _month(month)
    async with service.readers() as session:
        lines = await _consolidated(session, month)
        run = (await session.execute(select(declaration_runs).where(declaration_runs.c.month == month))).first()
    return {"month": month, "declarations": _lines_json(lines),
            "published_at": _iso(run.published_at) if run else None}


@router.post("/declarations")
async def publish_declarations(_: Operator, month: Annotated[str | None, Query()] = None):
    """Consolidates the month and publishes each ecommerce enterprise's declarations as
    ExportDeclarationsConsolidated events of at most 500 lines each (part n of N, rules.declaration_parts)
    on customs.decision.v1 (201). Once per month: asking again answers 200 with what was published then,
    and publishes nothing. A month with no released export is not recorded (200, nothing published)."""
    month = _month(month)
    try:
        async with service.unit_of_work() as uow:
            run = (await uow.session.execute(select(declaration_runs).where(declaration_runs.c.month == month))).first()
            if run is not None:
                return JSONResponse(_run_answer(month, run.declarations, run.published_at), status_code=200)
            lines = await _consolidated(uow.session, month)
            if not lines:
                return JSONResponse(_run_answer(month, [], None), status_code=200)
            at = datetime.now(timezone.utc)
            stored = _lines_json(lines)
            await uow.session.execute(insert(declaration_runs).values(month=month, published_at=at, declarations=stored))
            for code, parts in rules.declaration_parts(lines).items():
                for number, part in enumerate(parts, start=1):
                    uow.emit(ExportDeclarationsConsolidated(month=month, ecommerce_code=code, declarations=part,
                                                            consolidated_at=at, part=number, parts=len(parts)),
                             correlation_id=code, key=code)
    except IntegrityError:
        # Another request published this month at the same moment: answer with what it published.
        async with service.readers() as session:
            run = (await session.execute(select(declaration_runs).where(declaration_runs.c.month == month))).first()
        return JSONResponse(_run_answer(month, run.declarations, run.published_at), status_code=200)
    return JSONResponse(_run_answer(month, stored, at), status_code=201)


def _run_answer(month: str, lines: list[dict], published_at: datetime | None) -> dict:
    return {"month": month, "declarations": lines, "published_at": _iso(published_at),
            "enterprises": sorted({line["ecommerce_code"] for line in lines})}


app = service.http(router, title="Single window: customs", version="1")
