"""The single window (spec §2-§5): one submission per document, durable before 202, published once."""
from __future__ import annotations

import secrets
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from contracts.types import format_money
from contracts.v1.documents import EnterpriseRegistration, OrderIn, PaymentIn, TrackingEventIn, WaybillIn
from contracts.v1.events import (
    EnterpriseRegistered,
    Order,
    Payment,
    PaymentSubmitted,
    SealedPerson,
    Waybill,
    WaybillSubmitted,
    WaybillTracked,
)
from contracts.identifiers import mask_id_number
from services.gateway import contracts_policy, rules, store, views
from services.gateway.auth import Caller, CallerDep
from services.gateway.handlers import add_trace, handlers
from services.gateway.tables import agency_views, enterprises, orders, payments, trace, tracking_events, waybills
from shared.http import Problem, problem_from_validation, unprocessable
from shared.reference import MissingRate, fx_rates
from shared.runtime import Service, UnitOfWork
from shared.sealing import seal
from shared.clock import utcnow

service = Service("gateway", handlers=handlers)
router = APIRouter(prefix="/v1")



def parse(model: type[BaseModel], body: Any) -> Any:
    # Bodies are validated here rather than by FastAPI so that cross-field problems name their field.
    if not isinstance(body, dict):
        raise unprocessable([{"field": "(body)", "code": "type", "message": "expected a JSON object"}])
    try:
        return model.model_validate(body)
    except ValidationError as err:
        raise problem_from_validation(err) from None


JsonBody = Annotated[Any, Body()]


def sealed(person, with_phone: bool) -> SealedPerson:  # noqa: ANN001
    return SealedPerson(
        name=person.name, id_type=person.id_type, id_number_masked=mask_id_number(person.id_number),
        id_number_sealed=seal(person.id_number), phone=getattr(person, "phone", None) if with_phone else None,
    )


def order_event_document(doc: OrderIn) -> Order:
    data = doc.model_dump(exclude={"buyer"})
    return Order(**data, buyer=sealed(doc.buyer, True) if doc.buyer else None)


async def registered_roles(uow: UnitOfWork, codes: set[str]) -> dict[str, set[str]]:
    rows = await uow.session.execute(select(enterprises.c.code, enterprises.c.roles).where(enterprises.c.code.in_(codes)))
    return {r.code: set(r.roles) for r in rows}


def require_registered(found: dict[str, set[str]], checks: list[tuple[str, str, str]]) -> None:
    errors = []
    for field, code, role in checks:
        if code not in found:
            errors.append({"field": field, "code": "not_registered", "message": f"{code} is not a registered enterprise"})
        elif role not in found[code]:
            errors.append({"field": field, "code": "wrong_role", "message": f"{code} is not registered with the {role} role"})
    if errors:
        raise unprocessable(errors)


# --- enterprises ----------------------------------------------------------------------------


@router.post("/enterprises", status_code=201, tags=["enterprises"])
async def register_enterprise(caller: CallerDep, body: JsonBody):
    if not caller.is_operator:
        raise Problem(403, "Forbidden", "only the operator registers enterprises")
    reg: EnterpriseRegistration = parse(EnterpriseRegistration, body)
    api_key = "sw_" + secrets.token_urlsafe(32)
    registered_at = utcnow()
    try:
        async with service.unit_of_work() as uow:
            exists = await uow.session.scalar(select(enterprises.c.code).where(enterprises.c.code == reg.code))
            if exists:
                raise Problem(409, "Conflict", f"enterprise {reg.code} is already registered")
            await uow.session.execute(insert(enterprises).values(
                code=reg.code, name=reg.name, roles=list(reg.roles), country=reg.country,
                customs_credit=reg.customs_credit, api_key_hash=rules.api_key_hash(api_key),
                registered_at=registered_at,
            ))
            uow.emit(EnterpriseRegistered(**reg.model_dump(), registered_at=registered_at), correlation_id=reg.code)
    except IntegrityError:
        raise Problem(409, "Conflict", f"enterprise {reg.code} is already registered") from None
    return {"code": reg.code, "api_key": api_key, "registered_at": registered_at.isoformat()}


@router.get("/enterprises/{code}", tags=["enterprises"])
async def enterprise_view(code: str, caller: CallerDep):
    if not caller.is_operator and caller.code != code:
        raise Problem(403, "Forbidden", "an enterprise may only look at its own registration")
    async with service.readers() as session:
        row = (await session.execute(select(enterprises).where(enterprises.c.code == code))).first()
        if row is None:
            raise Problem(404, "Not found", f"no enterprise {code}")
        held = await store.enterprise_views_of(session, code)
    answer = {
        "code": row.code, "name": row.name, "roles": row.roles, "country": row.country,
        "customs_credit": row.customs_credit, "registered_at": row.registered_at.isoformat(),
        "customs": {"credit_category": row.customs_credit, "customs_credit": row.customs_credit},
        "tax": {"registered": True},
    }
    return {**answer, **views.enterprise_sections(held, reserved=answer)}


# --- orders ---------------------------------------------------------------------------------


def order_key(platform_code: str, order_no: str) -> str:
    return f"{platform_code}:{order_no}"


def status_url(platform_code: str, order_no: str) -> str:
    return f"/v1/orders/{platform_code}/{order_no}"


async def check_order_parties(uow: UnitOfWork, doc: OrderIn) -> None:
    found = await registered_roles(uow, {doc.platform_code, doc.ecommerce_code})
    require_registered(found, [("platform_code", doc.platform_code, "platform"),
                               ("ecommerce_code", doc.ecommerce_code, "ecommerce")])


def order_country(doc: OrderIn) -> str | None:
    if doc.direction == "export":
        return doc.destination_country
    return max(doc.items, key=lambda i: i.line_value).origin_country


def order_columns(doc: OrderIn, event_doc: Order, fp: str) -> dict:
    return dict(
        content_hash=fp, document=contracts_policy.stored_document(event_doc, contracts_policy.brands_of(doc.items)),
        ecommerce_code=doc.ecommerce_code,
        direction=doc.direction, trade_mode=doc.trade_mode, currency=doc.currency, actual_paid=doc.actual_paid,
        country=order_country(doc),
    )


async def emit_order_events(uow: UnitOfWork, action: contracts_policy.Action, version: int, at: datetime,
                            order: Order, brands: contracts_policy.Brands) -> None:
    """The one way an order event leaves the gateway (POST, PUT, DELETE): v2 and, during v1's deprecation
    period, v1, in the caller's unit of work, under the order's correlation id."""
    rows = await uow.session.execute(select(enterprises.c.code, enterprises.c.country).where(
        enterprises.c.code.in_({order.platform_code, order.ecommerce_code})))
    # A registration never changes its country, so a cancellation finds the countries of the original.
    country = {r.code: r.country for r in rows}
    s = service.settings
    for event in contracts_policy.order_events(
            action, version, at, order, country[order.platform_code], country[order.ecommerce_code], brands,
            v1_until=s.sw_order_v1_until, v2_enabled=s.sw_order_v2_enabled):
        uow.emit(event, correlation_id=order_key(order.platform_code, order.order_no))


@router.post("/orders", status_code=202, tags=["documents"])
async def submit_order(caller: CallerDep, body: JsonBody):
    caller.require_role("platform")
    doc: OrderIn = parse(OrderIn, body)
    caller.require_self(doc.platform_code, "platform_code")
    fp = rules.fingerprint(doc)
    answer = {"order_no": doc.order_no, "status_url": status_url(doc.platform_code, doc.order_no)}
    key = order_key(doc.platform_code, doc.order_no)
    try:
        async with service.unit_of_work() as uow:
            stored = (await uow.session.execute(select(orders.c.content_hash, orders.c.version).where(
                and_(orders.c.platform_code == doc.platform_code, orders.c.order_no == doc.order_no)))).first()
            outcome = rules.submission_outcome(stored.content_hash if stored else None, fp)
            if outcome == "same":
                return JSONResponse(answer, status_code=200)
            if outcome == "conflict":
                raise Problem(409, "Conflict", f"order {doc.order_no} was already submitted with different content; "
                              f"use PUT {status_url(doc.platform_code, doc.order_no)} to correct it")
            await check_order_parties(uow, doc)
            event_doc = order_event_document(doc)
            at = utcnow()
            await uow.session.execute(insert(orders).values(
                platform_code=doc.platform_code, order_no=doc.order_no, version=1, submitted_at=at, updated_at=at,
                **order_columns(doc, event_doc, fp),
            ))
            await mark_complete_if_all_documents(uow, doc.platform_code, doc.order_no, at)
            await emit_order_events(uow, "new", 1, at, event_doc, contracts_policy.brands_of(doc.items))
            await add_trace(uow.session, key, at, "gateway", "order.received", f"order received ({doc.direction}, {doc.trade_mode})")
    except IntegrityError:
        return await submit_order(caller, body)  # a concurrent identical submission won the race
    return answer


async def load_order(session, platform_code: str, order_no: str):  # noqa: ANN001
    return (await session.execute(select(orders).where(
        and_(orders.c.platform_code == platform_code, orders.c.order_no == order_no)))).first()


async def held_views(session, platform_code: str, order_no: str) -> dict[str, dict]:  # noqa: ANN001
    return {agency: view for agency, (view, _) in (await store.order_views(session, (platform_code, order_no))).items()}


def may_read_order(caller: Caller, row) -> bool:  # noqa: ANN001
    return caller.is_operator or caller.code in (row.platform_code, row.ecommerce_code)


@router.get("/orders/{platform_code}/{order_no}", tags=["documents"])
async def order_status(platform_code: str, order_no: str, caller: CallerDep):
    if not caller.is_operator and "platform" in caller.roles and caller.code != platform_code and "ecommerce" not in caller.roles:
        raise Problem(403, "Forbidden", "you may only look at your own orders")
    async with service.readers() as session:
        row = await load_order(session, platform_code, order_no)
        if row is None:
            raise Problem(404, "Not found", f"no order {order_no} of platform {platform_code}")
        if not may_read_order(caller, row):
            raise Problem(403, "Forbidden", "you may only look at orders you are a party to")
        has_payment = await session.scalar(select(payments.c.payment_no).where(and_(
            payments.c.platform_code == platform_code, payments.c.order_no == order_no)).limit(1))
        has_waybill = await session.scalar(select(waybills.c.waybill_no).where(and_(
            waybills.c.platform_code == platform_code, waybills.c.order_no == order_no)).limit(1))
        held = await store.order_views(session, (platform_code, order_no))
        credit = await store.enterprise_views_of(session, row.ecommerce_code, ["credit"])
    documents = {"order": "received",
                 "payment": "received" if has_payment else ("not_required" if row.direction == "export" else "missing"),
                 "waybill": "received" if has_waybill else "missing"}
    order = {
        "order_no": row.order_no, "platform_code": row.platform_code, "ecommerce_code": row.ecommerce_code,
        "direction": row.direction, "trade_mode": row.trade_mode, "version": row.version,
        "documents": documents,
    }
    fixed = {"credit": {"ecommerce_grade": credit.get("credit", {}).get("grade")},
             "submitted_at": row.submitted_at.isoformat(),
             "updated_at": views.last_update(row.updated_at, (at for _, at in held.values())).isoformat()}
    sections = views.agency_sections({agency: view for agency, (view, _) in held.items()}, reserved=[*order, *fixed])
    return {**order, **sections, **fixed}


@router.get("/orders/{platform_code}/{order_no}/trace", tags=["documents"])
async def order_trace(platform_code: str, order_no: str, caller: CallerDep):
    async with service.readers() as session:
        row = await load_order(session, platform_code, order_no)
        if row is None:
            if not caller.is_operator and caller.code != platform_code:
                raise Problem(403, "Forbidden", "you may only look at your own orders")
            raise Problem(404, "Not found", f"no order {order_no} of platform {platform_code}")
        if not may_read_order(caller, row):
            raise Problem(403, "Forbidden", "you may only look at orders you are a party to")
        rows = (await session.execute(select(trace).where(
            trace.c.correlation_id == order_key(platform_code, order_no)).order_by(trace.c.at, trace.c.id))).all()
    return {"order_no": order_no, "platform_code": platform_code,
            "events": [{"at": r.at.isoformat(), "source": r.source, "type": r.type, "summary": r.summary} for r in rows]}


@router.put("/orders/{platform_code}/{order_no}", status_code=202, tags=["documents"])
async def correct_order(platform_code: str, order_no: str, caller: CallerDep, body: JsonBody):
    caller.require_role("platform")
    caller.require_self(platform_code, "platform_code")
    doc: OrderIn = parse(OrderIn, body)
    if doc.platform_code != platform_code or doc.order_no != order_no:
        raise unprocessable([{"field": "order_no" if doc.order_no != order_no else "platform_code",
                              "code": "path_mismatch", "message": "the body must name the order in the path"}])
    fp = rules.fingerprint(doc)
    key = order_key(platform_code, order_no)
    answer = {"order_no": order_no, "status_url": status_url(platform_code, order_no)}
    async with service.unit_of_work() as uow:
        row = await load_order(uow.session, platform_code, order_no)
        if row is None:
            raise Problem(404, "Not found", f"no order {order_no} of platform {platform_code}; POST it first")
        customs_status = views.customs_status(await held_views(uow.session, platform_code, order_no))
        if row.content_hash == fp and customs_status != "cancelled":
            return JSONResponse({**answer, "version": row.version}, status_code=200)
        if not rules.correction_allowed(customs_status):
            raise Problem(409, "Conflict", f"the order is {customs_status}; only pending, inspection or "
                          "rejected orders can be corrected")
        if doc.direction != row.direction:
            raise unprocessable([{"field": "direction", "code": "immutable", "message": "a correction cannot change the direction"}])
        await check_order_parties(uow, doc)
        event_doc = order_event_document(doc)
        at = utcnow()
        version = row.version + 1
        await uow.session.execute(update(orders).where(and_(
            orders.c.platform_code == platform_code, orders.c.order_no == order_no)).values(
            version=version, updated_at=at, **order_columns(doc, event_doc, fp)))
        await store.save_order_views(uow.session, views.views_on_correction((platform_code, order_no), version, at))
        await emit_order_events(uow, "corrected", version, at, event_doc, contracts_policy.brands_of(doc.items))
        await add_trace(uow.session, key, at, "gateway", "order.corrected", f"order corrected (version {version})")
    return JSONResponse({**answer, "version": version}, status_code=202)


@router.delete("/orders/{platform_code}/{order_no}", status_code=202, tags=["documents"])
async def cancel_order(platform_code: str, order_no: str, caller: CallerDep):
    caller.require_role("platform")
    caller.require_self(platform_code, "platform_code")
    key = order_key(platform_code, order_no)
    async with service.unit_of_work() as uow:
        row = await load_order(uow.session, platform_code, order_no)
        if row is None:
            raise Problem(404, "Not found", f"no order {order_no} of platform {platform_code}")
        answer = {"order_no": order_no, "status": "cancelled", "status_url": status_url(platform_code, order_no)}
        held = await held_views(uow.session, platform_code, order_no)
        customs_status = views.customs_status(held)
        if customs_status == "cancelled":
            return JSONResponse(answer, status_code=200)
        if not rules.cancellation_allowed(customs_status):
            raise Problem(409, "Conflict", f"the order is {customs_status} and can no longer be cancelled")
        at = utcnow()
        version = row.version + 1
        await uow.session.execute(update(orders).where(and_(
            orders.c.platform_code == platform_code, orders.c.order_no == order_no)).values(
            version=version, updated_at=at))
        await store.save_order_views(uow.session, [
            views.view_on_cancellation((platform_code, order_no), version, at, held.get("customs"))])
        await emit_order_events(uow, "cancelled", version, at, Order.model_validate(row.document),
                                contracts_policy.stored_brands(row.document))
        await add_trace(uow.session, key, at, "gateway", "order.cancelled", "order cancelled by the platform")
    return JSONResponse(answer, status_code=202)


async def mark_complete_if_all_documents(uow: UnitOfWork, platform_code: str, order_no: str, at: datetime) -> None:
    """Records when the last needed document arrived (the start of the decision-time statistic), in one
    statement: the order's row is stamped once, when its waybill and (imports) its payment are there."""
    same_order = and_(orders.c.platform_code == platform_code, orders.c.order_no == order_no)
    has_waybill = select(waybills.c.waybill_no).where(and_(
        waybills.c.platform_code == platform_code, waybills.c.order_no == order_no)).exists()
    has_payment = select(payments.c.payment_no).where(and_(
        payments.c.platform_code == platform_code, payments.c.order_no == order_no)).exists()
    await uow.session.execute(update(orders).where(
        same_order, orders.c.documents_complete_at.is_(None), has_waybill,
        or_(orders.c.direction == "export", has_payment)).values(documents_complete_at=at))


# --- payments and waybills -------------------------------------------------------------------


@router.post("/payments", status_code=202, tags=["documents"])
async def submit_payment(caller: CallerDep, body: JsonBody):
    caller.require_role("payment")
    doc: PaymentIn = parse(PaymentIn, body)
    caller.require_self(doc.payment_code, "payment_code")
    fp = rules.fingerprint(doc)
    key = order_key(doc.platform_code, doc.order_no)
    answer = {"payment_no": doc.payment_no, "order_no": doc.order_no,
              "status_url": status_url(doc.platform_code, doc.order_no)}
    try:
        async with service.unit_of_work() as uow:
            stored = await uow.session.scalar(select(payments.c.content_hash).where(and_(
                payments.c.payment_code == doc.payment_code, payments.c.payment_no == doc.payment_no)))
            outcome = rules.submission_outcome(stored, fp)
            if outcome == "same":
                return JSONResponse(answer, status_code=200)
            if outcome == "conflict":
                raise Problem(409, "Conflict", f"payment {doc.payment_no} was already submitted with different content")
            require_registered(await registered_roles(uow, {doc.platform_code}),
                               [("platform_code", doc.platform_code, "platform")])
            direction = await uow.session.scalar(select(orders.c.direction).where(and_(
                orders.c.platform_code == doc.platform_code, orders.c.order_no == doc.order_no)))
            if direction == "export":
                raise unprocessable([{"field": "order_no", "code": "export_order",
                                      "message": "payments are for import orders only"}])
            at = utcnow()
            event_doc = Payment(**doc.model_dump(exclude={"payer"}), payer=sealed(doc.payer, False))
            await uow.session.execute(insert(payments).values(
                payment_code=doc.payment_code, payment_no=doc.payment_no, platform_code=doc.platform_code,
                order_no=doc.order_no, content_hash=fp, document=event_doc.model_dump(mode="json"), received_at=at))
            await mark_complete_if_all_documents(uow, doc.platform_code, doc.order_no, at)
            uow.emit(PaymentSubmitted(submitted_at=at, payment=event_doc), correlation_id=key)
            await add_trace(uow.session, key, at, "gateway", "payment.received",
                            f"payment {doc.payment_no} of {format_money(doc.amount)} {doc.currency} received")
    except IntegrityError:
        return await submit_payment(caller, body)
    return answer


@router.post("/waybills", status_code=202, tags=["documents"])
async def submit_waybill(caller: CallerDep, body: JsonBody):
    caller.require_role("logistics")
    doc: WaybillIn = parse(WaybillIn, body)
    caller.require_self(doc.logistics_code, "logistics_code")
    fp = rules.fingerprint(doc)
    key = order_key(doc.platform_code, doc.order_no)
    answer = {"waybill_no": doc.waybill_no, "order_no": doc.order_no,
              "status_url": status_url(doc.platform_code, doc.order_no)}
    try:
        async with service.unit_of_work() as uow:
            stored = await uow.session.scalar(select(waybills.c.content_hash).where(and_(
                waybills.c.logistics_code == doc.logistics_code, waybills.c.waybill_no == doc.waybill_no)))
            outcome = rules.submission_outcome(stored, fp)
            if outcome == "same":
                return JSONResponse(answer, status_code=200)
            if outcome == "conflict":
                raise Problem(409, "Conflict", f"waybill {doc.waybill_no} was already submitted with different content")
            require_registered(await registered_roles(uow, {doc.platform_code}),
                               [("platform_code", doc.platform_code, "platform")])
            at = utcnow()
            event_doc = Waybill(**doc.model_dump())
            await uow.session.execute(insert(waybills).values(
                logistics_code=doc.logistics_code, waybill_no=doc.waybill_no, platform_code=doc.platform_code,
                order_no=doc.order_no, content_hash=fp, document=event_doc.model_dump(mode="json"), received_at=at))
            await mark_complete_if_all_documents(uow, doc.platform_code, doc.order_no, at)
            uow.emit(WaybillSubmitted(submitted_at=at, waybill=event_doc), correlation_id=key)
            await add_trace(uow.session, key, at, "gateway", "waybill.received", f"waybill {doc.waybill_no} received")
    except IntegrityError:
        return await submit_waybill(caller, body)
    return answer


@router.post("/waybills/{logistics_code}/{waybill_no}/events", status_code=202, tags=["documents"])
async def track_waybill(logistics_code: str, waybill_no: str, caller: CallerDep, body: JsonBody):
    caller.require_role("logistics")
    caller.require_self(logistics_code, "logistics_code")
    doc: TrackingEventIn = parse(TrackingEventIn, body)
    fp = rules.fingerprint(doc)
    answer = {"waybill_no": waybill_no, "event": doc.event}
    try:
        async with service.unit_of_work() as uow:
            bill = (await uow.session.execute(select(waybills.c.platform_code, waybills.c.order_no).where(and_(
                waybills.c.logistics_code == logistics_code, waybills.c.waybill_no == waybill_no)))).first()
            if bill is None:
                raise Problem(404, "Not found", f"no waybill {waybill_no} of {logistics_code}")
            seen = await uow.session.scalar(select(tracking_events.c.event).where(and_(
                tracking_events.c.logistics_code == logistics_code, tracking_events.c.waybill_no == waybill_no,
                tracking_events.c.content_hash == fp)))
            if seen:
                return JSONResponse(answer, status_code=200)
            at = utcnow()
            await uow.session.execute(insert(tracking_events).values(
                logistics_code=logistics_code, waybill_no=waybill_no, content_hash=fp, event=doc.event, at=doc.at,
                received_at=at))
            key = order_key(bill.platform_code, bill.order_no)
            uow.emit(WaybillTracked(waybill_no=waybill_no, logistics_code=logistics_code, order_no=bill.order_no,
                                    platform_code=bill.platform_code, **doc.model_dump()), correlation_id=key)
            await add_trace(uow.session, key, at, "gateway", "waybill.tracked",
                            f"{doc.event} {doc.location}".strip())
    except IntegrityError:
        return await track_waybill(logistics_code, waybill_no, caller, body)
    return answer


# --- statistics -----------------------------------------------------------------------------


def _value_cny(amount: Decimal, currency: str, day: date) -> Decimal:
    try:
        return fx_rates().to_cny(amount, currency, day)
    except MissingRate:
        return Decimal(0)


@router.get("/stats", tags=["statistics"])
async def stats(caller: CallerDep, from_: Annotated[datetime | None, Query(alias="from")] = None,
                to: Annotated[datetime | None, Query()] = None):
    if not caller.is_operator:
        raise Problem(403, "Forbidden", "statistics are for the operator")
    # A time without an offset is read as UTC rather than refused.
    from_, to = (t.replace(tzinfo=timezone.utc) if t and t.tzinfo is None else t for t in (from_, to))
    # One query: each order with its customs, tax and FX views (outer joins on agency_views' primary key).
    customs, tax, fx = (agency_views.alias(a) for a in ("customs", "tax", "fx"))

    def joined(view, agency: str):  # noqa: ANN001, ANN202
        return and_(view.c.platform_code == orders.c.platform_code, view.c.order_no == orders.c.order_no,
                    view.c.agency == agency)

    query = select(orders.c.direction, orders.c.trade_mode, orders.c.country, orders.c.actual_paid, orders.c.currency,
                   orders.c.submitted_at, orders.c.documents_complete_at,
                   customs.c.view.label("customs"), customs.c.updated_at.label("decided_at"),
                   tax.c.view.label("tax"), fx.c.view.label("fx")).select_from(
        orders.outerjoin(customs, joined(customs, "customs")).outerjoin(tax, joined(tax, "tax"))
        .outerjoin(fx, joined(fx, "fx")))
    if from_:
        query = query.where(orders.c.submitted_at >= from_)
    if to:
        query = query.where(orders.c.submitted_at < to)
    async with service.readers() as session:
        rows = (await session.execute(query)).all()

    def facts(r) -> rules.OrderFacts:  # noqa: ANN001
        tax_total = Decimal(r.tax["total"]) if r.tax and r.tax.get("total") and r.tax.get("status") in ("assessed", "general_trade") else None
        fx_usd = Decimal(r.fx["amount_usd"]) if r.fx and r.fx.get("status") == "settled" else None
        c = r.customs or views.PENDING_ORDER_VIEWS["customs"]
        return rules.OrderFacts(
            direction=r.direction, trade_mode=r.trade_mode, country=r.country, customs_status=c["status"],
            channel=c.get("channel"), value_cny=_value_cny(r.actual_paid, r.currency, r.submitted_at.date()),
            tax_total=tax_total, fx_usd=fx_usd, complete_at=r.documents_complete_at,
            decided_at=r.decided_at if c["status"] != "pending" else None)

    result = rules.statistics_of(facts(r) for r in rows)
    return {"from": from_.isoformat() if from_ else None, "to": to.isoformat() if to else None, **result}


app = service.http(router, title="Single window gateway", version="1")
