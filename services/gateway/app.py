"""The single window (spec §2-§5): one submission per document, durable before 202, published once."""
from __future__ import annotations

import asyncio
import functools
import secrets
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

import contracts
from contracts.identifiers import order_key
from contracts.types import Timestamp
from contracts.v1.documents import BatchIn, BatchResults, EnterpriseRegistration, OrderIn, PlatformList, TrackingEventIn
from contracts.v1.events import EnterpriseRegistered, WaybillTracked
from services.gateway import ceb, changes, intake, rules, store, views, webhooks
from services.gateway.auth import Caller, CallerDep, caller_cache, rate_limit
from services.gateway.handlers import handlers
from services.gateway.store import add_trace
from services.gateway.intake import parse
from services.gateway.tables import (
    agency_views,
    api_keys,
    enterprise_platforms,
    enterprises,
    orders,
    trace,
    tracking_events,
    waybills,
)
from shared.clock import utcnow
from shared.http import Problem, beyond_schema, unprocessable
from shared.reference import MissingRate, fx_rates
from shared.runtime import Service

service = Service("gateway", handlers=handlers)
router = APIRouter(prefix="/v1")
# The writer that gives concurrent single-document submissions one transaction each few milliseconds
# (services/gateway/intake.py); None until the service starts, and when SW_GROUP_COMMIT_MS is 0.
group_commit: intake.GroupCommit | None = None


async def _start_group_commit(svc: Service) -> None:
    global group_commit
    s = svc.settings
    if s.sw_group_commit_ms <= 0:
        return
    group_commit = intake.GroupCommit(svc.unit_of_work, s.sw_group_commit_ms / 1000, s.sw_group_commit_max)
    # Among the service's tasks, so that stopping the service stops the writer (waiting requests get 503).
    svc._tasks.append(asyncio.create_task(group_commit.run(), name="gateway-group-commit"))


service.on_start.append(_start_group_commit)



JsonBody = Annotated[Any, Body()]


# --- what the API description says beyond FastAPI's own (contracts/schemas/openapi.json) --------------
# Statuses every route of a kind answers (401/403/429 when authenticated, 400/413/415/422 with a body, 404
# with a path, 503 for all) are added by the generator (tooling/contracts/publish.py, `ROUTE_CLASS_STATUSES`); a route
# declares here only what is its own: its 409s, what its 404 means, a second success status, and the rules
# a schema-valid body can still break (422, shared.http.beyond_schema).


PERSON_RULES = ("a `resident_id` identity number has the right check digit (GB 11643-1999)",)
ORDER_RULES = (
    "`actual_paid` equals the sum of the lines' values + `freight` + `insurance` - `discount` + `tax_total`, "
    "exactly (`sum_mismatch`)",
    "each `items[].item_no` appears once",
    "an import order names `buyer`, an export order `destination_country`; trade modes 9710 and 9810 are "
    "for exports only",
    "`payment_transaction_id` needs `payment_code`",
    *PERSON_RULES,
    "`currency` (and every amount's) has a reference exchange rate on the day (`unknown_currency`, `no_rate`)",
    "`platform_code` is the caller; `ecommerce_code`, `payment_code` and `logistics_code` are registered "
    "enterprises with that role (`not_registered`, `wrong_role`)",
)
PAYMENT_RULES = (*PERSON_RULES,
                 "`currency` has a reference exchange rate on `paid_at`'s day (`unknown_currency`, `no_rate`)",
                 "`platform_code` is a registered platform; the order, if held, is an import (`export_order`)")
WAYBILL_RULES = ("`platform_code` is a registered platform (`not_registered`, `wrong_role`)",
                 "`consignee` may be left out only when the waybill's order is already filed and is an export "
                 "order (`consignee`, `required`)")
BATCH_RULES = ("each document is judged alone: a document that breaks its schema or a rule is a 422 *result* "
               "in the 200 answer, never a refusal of the batch",)


def link(method: str, path: str, description: str, **parameters: str) -> dict:
    """An OpenAPI link from an answer to the operation it makes possible (`parameters`: runtime expressions
    such as `$response.body#/code`): client generators and schemathesis' stateful phase follow them."""
    return {"operationRef": "#/paths/" + path.replace("~", "~0").replace("/", "~1") + f"/{method}",
            "description": description, "parameters": parameters}


ENTERPRISE_LINKS = {
    "GetEnterprise": link("get", "/v1/enterprises/{code}", "the registration", code="$response.body#/code"),
    "IssueKey": link("post", "/v1/enterprises/{code}/keys", "a second key, for rotation", code="$response.body#/code"),
    "ListKeys": link("get", "/v1/enterprises/{code}/keys", "its keys", code="$response.body#/code"),
    "RevokeFirstKey": link("delete", "/v1/enterprises/{code}/keys/{key_id}", "revoke the registration's key",
                           code="$response.body#/code", key_id="$response.body#/key_id"),
    "GetPlatforms": link("get", "/v1/enterprises/{code}/platforms", "its platform list", code="$response.body#/code"),
}
KEY_LINKS = {
    "RevokeKey": link("delete", "/v1/enterprises/{code}/keys/{key_id}", "revoke this key",
                      code="$request.path.code", key_id="$response.body#/key_id"),
    "ListKeys": link("get", "/v1/enterprises/{code}/keys", "the enterprise's keys", code="$request.path.code"),
}
_ORDER = {"platform_code": "$request.body#/platform_code", "order_no": "$request.body#/order_no"}
ORDER_LINKS = {
    "GetOrderStatus": link("get", "/v1/orders/{platform_code}/{order_no}", "the one-stop status view", **_ORDER),
    "GetOrderTrace": link("get", "/v1/orders/{platform_code}/{order_no}/trace", "the order's trace", **_ORDER),
    "CorrectOrder": link("put", "/v1/orders/{platform_code}/{order_no}", "a correction", **_ORDER),
    "CancelOrder": link("delete", "/v1/orders/{platform_code}/{order_no}", "a cancellation", **_ORDER),
}
WAYBILL_LINKS = {
    "TrackWaybill": link("post", "/v1/waybills/{logistics_code}/{waybill_no}/events", "a tracking event",
                         logistics_code="$request.body#/logistics_code", waybill_no="$request.body#/waybill_no"),
}


def batch_of(*rules: str) -> dict:
    """`openapi_extra` of a batch twin (spec §7.1): the envelope is refused with 422; a document is not, it
    gets a 422 result (`result-status`) in the 200 answer."""
    return {"x-rules-beyond-schema": {"result-status": 422, "rules": [*BATCH_RULES, *rules]}, "x-batch-results": True}


# --- enterprises ----------------------------------------------------------------------------


@router.post("/enterprises", status_code=201, tags=["enterprises"],
             responses={201: {"description": "registered: the enterprise's first API key, shown once",
                              "links": ENTERPRISE_LINKS},
                        409: {"description": "the code is already registered; or the customs code is already "
                              "another enterprise's customs or enterprise code (errors name `customs_code`), or "
                              "the code is another enterprise's customs code (errors name `code`)"}},
             openapi_extra=beyond_schema(
                 "`code`: with `country` CN (the default), an 18-character unified social credit code whose check "
                 "digit is right (GB 32100-2015, `invalid_uscc`)"))
async def register_enterprise(caller: CallerDep, body: JsonBody):
    """Spec §3 (1.1: `customs_code`, §7.5). 201 with the first API key; 409 if the code is registered (any
    content: a registration is never replayed) or a code it gives is already another enterprise's
    (`refuse_taken_codes`). Decided in the registration's transaction; a concurrent registration that wins
    the race is found by the unique indexes and answered the same way."""
    if not caller.is_operator:
        raise Problem(403, "Forbidden", "only the operator registers enterprises")
    reg: EnterpriseRegistration = parse(EnterpriseRegistration, body)
    api_key, key_id = new_api_key()
    registered_at = utcnow()
    try:
        async with service.unit_of_work() as uow:
            await refuse_taken_codes(uow.session, reg)
            await uow.session.execute(insert(enterprises).values(
                code=reg.code, name=reg.name, roles=list(reg.roles), country=reg.country,
                customs_credit=reg.customs_credit, customs_code=reg.customs_code,
                api_key_hash=rules.api_key_hash(api_key), registered_at=registered_at,
            ))
            # The registration's key is the enterprise's first key (spec §7.2: it may hold two at once).
            await uow.session.execute(insert(api_keys).values(
                key_id=key_id, enterprise_code=reg.code, key_hash=rules.api_key_hash(api_key), created_at=registered_at))
            uow.emit(EnterpriseRegistered(**reg.model_dump(), registered_at=registered_at), correlation_id=reg.code)
        # Usable at once: forget a brief "unknown key" this process may remember for it.
        caller_cache.forget(rules.api_key_hash(api_key))
    except IntegrityError:
        # A concurrent registration committed the code or the customs code after our check: read which.
        async with service.readers() as session:
            await refuse_taken_codes(session, reg)
        raise Problem(409, "Conflict", f"enterprise {reg.code} is already registered") from None
    return {"code": reg.code, "api_key": api_key, "key_id": key_id, "registered_at": registered_at.isoformat()}


async def refuse_taken_codes(session, reg: EnterpriseRegistration) -> None:  # noqa: ANN001
    """The 409s of a registration, from one query by the two unique indexes: `reg.code` already registered
    (as in 1.0: no field named); `reg.customs_code` already held by another enterprise, as its customs code or
    as its enterprise code (errors name `customs_code`); `reg.code` already another enterprise's customs code
    (errors name `code`). A string that were both one enterprise's code and another's customs code would make
    a CEB party code ambiguous: store.enterprise_codes lets the enterprise code win; refusing both collisions
    here leaves that rule to the one case no index catches (two such registrations at the same moment)."""
    names = [reg.code] + ([reg.customs_code] if reg.customs_code else [])
    rows = (await session.execute(select(enterprises.c.code, enterprises.c.customs_code).where(
        or_(enterprises.c.code.in_(names), enterprises.c.customs_code.in_(names))))).all()
    if any(r.code == reg.code for r in rows):
        raise Problem(409, "Conflict", f"enterprise {reg.code} is already registered")
    if not rows:
        return
    taken = next((r for r in rows if reg.customs_code is not None and reg.customs_code in (r.code, r.customs_code)),
                 None)
    if taken is not None:
        kind = "customs code" if taken.customs_code == reg.customs_code else "enterprise code"
        field, message = "customs_code", f"customs code {reg.customs_code} is already enterprise {taken.code}'s {kind}"
    else:  # the only rows left hold reg.code as their customs code
        field, message = "code", f"{reg.code} is already enterprise {rows[0].code}'s customs code"
    raise Problem(409, "Conflict", message, errors=[{"field": field, "code": "already_registered", "message": message}])


def new_api_key() -> tuple[str, str]:
    """A new key (256 random bits) and its public id (random too: the id tells nothing about the key)."""
    return "sw_" + secrets.token_urlsafe(32), "k" + secrets.token_hex(8)


def require_self_or_operator(caller: Caller, code: str) -> None:
    if not caller.is_operator and caller.code != code:
        raise Problem(403, "Forbidden", "only the enterprise itself or the operator may do this")


async def registered_enterprise(session, code: str, lock: bool = False):  # noqa: ANN001, ANN201
    """The enterprise's row (locked for update when `lock`: issuing keys counts live keys under it); 404."""
    query = select(enterprises.c.code, enterprises.c.roles).where(enterprises.c.code == code)
    row = (await session.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise Problem(404, "Not found", f"no enterprise {code}")
    return row


def key_view(row) -> dict:  # noqa: ANN001
    return {"key_id": row.key_id, "created_at": row.created_at.isoformat(),
            "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None, "live": row.revoked_at is None}


@router.post("/enterprises/{code}/keys", status_code=201, tags=["enterprises"],
             responses={201: {"description": "the new key, shown once", "links": KEY_LINKS},
                        404: {"description": "no such enterprise"},
                        409: {"description": "the enterprise already holds two live keys: revoke one first"}})
async def issue_key(code: str, caller: CallerDep):
    """Spec §7.2: a new API key for the enterprise (itself or the operator), shown once and stored hashed.
    At most `MAX_LIVE_KEYS` live keys at once (rotation: issue the new one, switch, revoke the old); a third
    is 409 until one is revoked."""
    require_self_or_operator(caller, code)
    api_key, key_id = new_api_key()
    created_at = utcnow()
    async with service.unit_of_work() as uow:
        await registered_enterprise(uow.session, code, lock=True)
        live = await uow.session.scalar(select(func.count()).select_from(api_keys).where(
            api_keys.c.enterprise_code == code, api_keys.c.revoked_at.is_(None)))
        if live >= MAX_LIVE_KEYS:
            raise Problem(409, "Conflict", f"{code} already holds {live} live API keys, the most it may hold at "
                          "once; revoke one first (DELETE /v1/enterprises/{code}/keys/{key_id})")
        await uow.session.execute(insert(api_keys).values(
            key_id=key_id, enterprise_code=code, key_hash=rules.api_key_hash(api_key), created_at=created_at))
    caller_cache.forget(rules.api_key_hash(api_key))  # usable at once, even if just tried and refused
    return {"code": code, "key_id": key_id, "api_key": api_key, "created_at": created_at.isoformat()}


MAX_LIVE_KEYS = 2


@router.get("/enterprises/{code}/keys", tags=["enterprises"], responses={404: {"description": "no such enterprise"}})
async def list_keys(code: str, caller: CallerDep):
    """The enterprise's API keys, live and revoked, oldest first: ids and times, never a key."""
    require_self_or_operator(caller, code)
    async with service.readers() as session:
        await registered_enterprise(session, code)
        rows = (await session.execute(select(api_keys).where(api_keys.c.enterprise_code == code)
                                      .order_by(api_keys.c.created_at, api_keys.c.key_id))).all()
    return {"code": code, "keys": [key_view(r) for r in rows]}


@router.delete("/enterprises/{code}/keys/{key_id}", tags=["enterprises"],
               responses={404: {"description": "no such enterprise, or no such key of it"}})
async def revoke_key(code: str, key_id: str, caller: CallerDep):
    """Revokes one key at once in this gateway process, and within SW_API_KEY_CACHE_SECONDS in every other
    (their memory of keys). Revoking a revoked key again changes nothing (200)."""
    require_self_or_operator(caller, code)
    async with service.unit_of_work() as uow:
        await registered_enterprise(uow.session, code)
        row = (await uow.session.execute(select(api_keys).where(
            api_keys.c.key_id == key_id, api_keys.c.enterprise_code == code))).first()
        if row is None:
            raise Problem(404, "Not found", f"{code} has no API key {key_id}")
        if row.revoked_at is None:
            await uow.session.execute(update(api_keys).where(api_keys.c.key_id == key_id).values(revoked_at=utcnow()))
            row = (await uow.session.execute(select(api_keys).where(api_keys.c.key_id == key_id))).first()
    caller_cache.forget(row.key_hash)
    return {"code": code, **key_view(row)}


@router.put("/enterprises/{code}/platforms", tags=["enterprises"],
            responses={404: {"description": "no such enterprise"}},
            openapi_extra=beyond_schema("`code` is an ecommerce enterprise (`wrong_role`)", "each of `platforms` is a "
                                        "registered platform (`not_registered`, `wrong_role`)"))
async def set_platforms(code: str, caller: CallerDep, body: JsonBody):
    """Spec §7.2: the platforms that may declare orders for this ecommerce enterprise (itself or the
    operator). Each must be a registered platform (422 naming `platforms[i]`); [] lifts the restriction."""
    require_self_or_operator(caller, code)
    wanted: PlatformList = parse(PlatformList, body)
    async with service.unit_of_work() as uow:
        row = await registered_enterprise(uow.session, code, lock=True)
        if "ecommerce" not in row.roles:
            raise unprocessable([{"field": "code", "code": "wrong_role",
                                  "message": f"{code} is not an ecommerce enterprise: only sellers keep a platform list"}])
        found = {r.code: r.roles for r in await uow.session.execute(select(enterprises.c.code, enterprises.c.roles)
                                                                     .where(enterprises.c.code.in_(wanted.platforms)))}
        errors = [{"field": f"platforms[{i}]", "code": "not_registered" if p not in found else "wrong_role",
                   "message": f"{p} is not a registered platform"}
                  for i, p in enumerate(wanted.platforms) if "platform" not in found.get(p, ())]
        if errors:
            raise unprocessable(errors)
        await uow.session.execute(delete(enterprise_platforms).where(enterprise_platforms.c.ecommerce_code == code))
        if wanted.platforms:
            await uow.session.execute(insert(enterprise_platforms), [
                {"ecommerce_code": code, "platform_code": p} for p in wanted.platforms])
    return {"code": code, "platforms": wanted.platforms, "restricted": bool(wanted.platforms)}


@router.get("/enterprises/{code}/platforms", tags=["enterprises"], responses={404: {"description": "no such enterprise"}})
async def get_platforms(code: str, caller: CallerDep):
    """The platform list (`restricted` false and [] when none is set: any registered platform may)."""
    require_self_or_operator(caller, code)
    async with service.readers() as session:
        await registered_enterprise(session, code)
        rows = await session.execute(select(enterprise_platforms.c.platform_code).where(
            enterprise_platforms.c.ecommerce_code == code).order_by(enterprise_platforms.c.platform_code))
        platforms = [r.platform_code for r in rows]
    return {"code": code, "platforms": platforms, "restricted": bool(platforms)}


@router.get("/enterprises/{code}", tags=["enterprises"], responses={404: {"description": "no such enterprise"}})
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
        # Spec 1.1 §7.5: shown when the registration gave one (a 1.0 registration's answer is unchanged).
        **({"customs_code": row.customs_code} if row.customs_code else {}),
        "customs": {"credit_category": row.customs_credit, "customs_credit": row.customs_credit},
        "tax": {"registered": True},
    }
    return {**answer, **views.enterprise_sections(held, reserved=answer)}


# --- orders ---------------------------------------------------------------------------------


DOCUMENT_RESPONSES: dict = {200: {"description": "already accepted: the same document was submitted before"}}
ORDER_CONFLICT = {409: {"description": "the order number was already submitted with different content; or a firm "
                        "the order names differs from the firm its payment or waybill was already filed by"}}
PAYMENT_CONFLICT = {409: {"description": (
    "the payment number was already submitted with different content (and is not the order's bound payment, or "
    "the order is released); or the order already has another payment, or names another payment_no (errors "
    "name `order_no`)")}}
WAYBILL_CONFLICT = {409: {"description": (
    "the waybill number was already submitted with different content (and is not the order's bound waybill, "
    "or the order is released); or the order already has another waybill (errors name `order_no`)")}}
BATCH_RESPONSES: dict = {200: {"model": BatchResults, "description": (
    "one result per document, in order: what the single endpoint would have answered for it alone; every "
    "202 and 200 is durable before this is sent")}}


def _answer(outcome: intake.Outcome) -> JSONResponse:
    if outcome.problem is not None:
        raise outcome.problem  # rendered by shared.http with the request's path, like any other problem
    return JSONResponse(outcome.body, status_code=outcome.status)


async def _submit(caller: Caller, kind: intake.Kind, body: Any) -> JSONResponse:
    return _answer(await intake.submit_one(group_commit, service.unit_of_work, caller, kind, body))


async def _submit_batch(caller: Caller, kind: intake.Kind, body: Any) -> JSONResponse:
    envelope: BatchIn = intake.parse(BatchIn, body)
    # spec §7.2: a batch counts one per document; the request itself was counted as the first
    await rate_limit.hit(caller, len(envelope.documents) - 1)
    outcomes = await intake.accept_batch(service.unit_of_work, caller, kind, envelope.documents)
    return JSONResponse({"results": [{"index": i, "status": o.status, "body": o.body} for i, o in enumerate(outcomes)]})


@router.post("/orders", status_code=202, tags=["documents"], responses={
    **DOCUMENT_RESPONSES, **ORDER_CONFLICT, 202: {"description": "accepted: stored, and published to every agency",
                                                  "links": ORDER_LINKS}},
             openapi_extra=beyond_schema(*ORDER_RULES))
async def submit_order(caller: CallerDep, body: JsonBody):
    return await _submit(caller, intake.ORDER, body)


@router.post("/orders:batch", tags=["documents"], responses=BATCH_RESPONSES, openapi_extra=batch_of(*ORDER_RULES))
async def submit_orders(caller: CallerDep, body: JsonBody):
    """Spec §7.1: up to 500 orders, each with exactly the checks and answer of `POST /v1/orders`."""
    return await _submit_batch(caller, intake.ORDER, body)


def may_read_order(caller: Caller, row) -> bool:  # noqa: ANN001
    return caller.is_operator or caller.code in (row.platform_code, row.ecommerce_code)


@router.get("/orders/{platform_code}/{order_no}", tags=["documents"], responses={404: {"description": "no such order"}})
async def order_status(platform_code: str, order_no: str, caller: CallerDep):
    if not caller.is_operator and "platform" in caller.roles and caller.code != platform_code and "ecommerce" not in caller.roles:
        raise Problem(403, "Forbidden", "you may only look at your own orders")
    async with service.readers() as session:
        row = (await session.execute(store.status_query([(platform_code, order_no)]))).first()
        if row is None:
            raise Problem(404, "Not found", f"no order {order_no} of platform {platform_code}")
        if not may_read_order(caller, row):
            raise Problem(403, "Forbidden", "you may only look at orders you are a party to")
        held = await store.order_views(session, (platform_code, order_no))
    return views.one_stop_view(row, held)


@router.get("/orders/{platform_code}/{order_no}/trace", tags=["documents"],
            responses={404: {"description": "no such order"}})
async def order_trace(platform_code: str, order_no: str, caller: CallerDep):
    async with service.readers() as session:
        row = await changes.load_order(session, platform_code, order_no)
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


@router.put("/orders/{platform_code}/{order_no}", status_code=202, tags=["documents"], responses={
    200: {"description": "unchanged: the order already holds this content (its version stays)"},
    404: {"description": "no such order: POST it first"},
    409: {"description": "the order is released (or cancelled): no more corrections; or it was changed at the same "
                         "time"}},
    openapi_extra=beyond_schema("the body names the order of the path (`path_mismatch`)",
                                "`direction` is the order's (`immutable`)", *ORDER_RULES))
async def correct_order(platform_code: str, order_no: str, caller: CallerDep, body: JsonBody):
    caller.require_role("platform")
    caller.require_self(platform_code, "platform_code")
    doc: OrderIn = intake.read_document(OrderIn, body)
    if doc.platform_code != platform_code or doc.order_no != order_no:
        raise unprocessable([{"field": "order_no" if doc.order_no != order_no else "platform_code",
                              "code": "path_mismatch", "message": "the body must name the order in the path"}])
    async with service.unit_of_work() as uow:
        status, answer = await changes.correct_order(uow, doc)
    return JSONResponse(answer, status_code=status)


@router.delete("/orders/{platform_code}/{order_no}", status_code=202, tags=["documents"], responses={
    200: {"description": "already cancelled"},
    404: {"description": "no such order"},
    409: {"description": "the order is released: it can no longer be cancelled; or it was changed at the same time"}})
async def cancel_order(platform_code: str, order_no: str, caller: CallerDep):
    caller.require_role("platform")
    caller.require_self(platform_code, "platform_code")
    async with service.unit_of_work() as uow:
        status, answer = await changes.cancel_order(uow, platform_code, order_no)
    return JSONResponse(answer, status_code=status)


# --- payments and waybills -------------------------------------------------------------------


@router.post("/payments", status_code=202, tags=["documents"], responses={**DOCUMENT_RESPONSES, **PAYMENT_CONFLICT},
             openapi_extra=beyond_schema(*PAYMENT_RULES))
async def submit_payment(caller: CallerDep, body: JsonBody):
    return await _submit(caller, intake.PAYMENT, body)


@router.post("/payments:batch", tags=["documents"], responses=BATCH_RESPONSES, openapi_extra=batch_of(*PAYMENT_RULES))
async def submit_payments(caller: CallerDep, body: JsonBody):
    """Spec §7.1: up to 500 payments, each with exactly the checks and answer of `POST /v1/payments`."""
    return await _submit_batch(caller, intake.PAYMENT, body)


@router.post("/waybills", status_code=202, tags=["documents"], responses={
    **DOCUMENT_RESPONSES, **WAYBILL_CONFLICT, 202: {"description": "accepted: stored, and published to every agency",
                                                    "links": WAYBILL_LINKS}},
             openapi_extra=beyond_schema(*WAYBILL_RULES))
async def submit_waybill(caller: CallerDep, body: JsonBody):
    return await _submit(caller, intake.WAYBILL, body)


@router.post("/waybills:batch", tags=["documents"], responses=BATCH_RESPONSES, openapi_extra=batch_of(*WAYBILL_RULES))
async def submit_waybills(caller: CallerDep, body: JsonBody):
    """Spec §7.1: up to 500 waybills, each with exactly the checks and answer of `POST /v1/waybills`."""
    return await _submit_batch(caller, intake.WAYBILL, body)


@router.post("/waybills/{logistics_code}/{waybill_no}/events", status_code=202, tags=["documents"], responses={
    200: {"description": "already received: the same event was reported before"},
    404: {"description": "no such waybill"}})
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
            # Free text travels to logistics, credit and the trace: no buyer's or payer's name, no id number.
            people = await store.people_of_order(uow.session, bill.platform_code, bill.order_no)
            doc = rules.tracking_without_personal_data(
                doc, [p.get("name") for p in people], [p.get("id_number_masked") for p in people])
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
async def stats(caller: CallerDep, from_: Annotated[Timestamp | None, Query(alias="from")] = None,
                to: Annotated[Timestamp | None, Query()] = None):
    # Spec §2: RFC 3339 with an offset, here as in every body (a bare number is 422, never a Unix time).
    if not caller.is_operator:
        raise Problem(403, "Forbidden", "statistics are for the operator")
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


# The gateway serves the published description (contracts/schemas/openapi.json, `python -m
# tooling.contracts.publish`) byte for byte, not FastAPI's own: one description, the one client generators and
# schemathesis test against. FastAPI's `app.openapi()` still builds the routes' raw description, which the
# publisher starts from.
app = service.http(router, webhooks.install(service), ceb.install(service), title="Single window gateway", version="1", openapi_url=None,
                   docs_url=None, redoc_url=None)
PUBLISHED_OPENAPI = Path(contracts.__file__).resolve().parent / "schemas" / "openapi.json"


@functools.cache
def published_openapi() -> bytes:
    """The published OpenAPI document's bytes (read once; it changes only with a new release)."""
    return PUBLISHED_OPENAPI.read_bytes()


@app.get("/openapi.json", include_in_schema=False)
async def openapi_document() -> Response:
    return Response(published_openapi(), media_type="application/json")


@app.get("/docs", include_in_schema=False)
async def api_docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="Single window gateway")


@app.get("/redoc", include_in_schema=False)
async def api_reference() -> HTMLResponse:
    return get_redoc_html(openapi_url="/openapi.json", title="Single window gateway")


# The operator console (spec §7.4): pages under /console, outside the published API description.
from services.gateway import console  # noqa: E402 - its pages call the routes above

console.install(app)
