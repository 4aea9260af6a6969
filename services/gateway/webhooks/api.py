"""The webhook routes of spec §7.3: an enterprise registers, lists and deletes its own webhooks and reads
their deliveries log. Another enterprise's webhook is 404 to it (as if it did not exist: its id tells
nothing). The operator may list every webhook and read any log, but registers and deletes none (a webhook
is an enterprise's)."""
from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from sqlalchemy import insert, select

from contracts.v1.documents import WebhookIn
from services.gateway.auth import Caller, CallerDep
from services.gateway.intake import parse
from services.gateway.tables import enterprises, webhooks
from services.gateway.webhooks import rules, store
from services.gateway.webhooks.sender import resolve
from services.gateway.webhooks.settings import webhook_settings
from shared.clock import utcnow
from shared.http import Problem, beyond_schema, unprocessable
from shared.runtime import Service
from shared.settings import settings

RESOLVE_TIMEOUT_SECONDS = 5.0


def webhook_view(row) -> dict[str, Any]:  # noqa: ANN001
    return {"id": row.id, "enterprise_code": row.enterprise_code, "url": row.url, "events": list(row.events),
            "created_at": row.created_at.isoformat()}


def _url_error(code: str, message: str) -> Problem:
    return unprocessable([{"field": "url", "code": code, "message": message}])


async def check_url(url: str, production: bool) -> None:
    """The URL policy at registration (rules.url_problem, and in production every address the host
    resolves to must be public: rules.address_problem); 422 naming `url`. The sender checks again before
    every attempt (the name may resolve elsewhere by then)."""
    problem = rules.url_problem(url, production)
    if problem:
        raise _url_error("url_not_allowed", problem)
    if not production:
        return
    host, port = rules.host_and_port(url)
    try:
        addresses = await asyncio.wait_for(resolve(host, port), RESOLVE_TIMEOUT_SECONDS)
    except (OSError, asyncio.TimeoutError):
        raise _url_error("unresolvable", f"{host} does not resolve") from None
    problem = rules.address_problem(addresses)
    if problem:
        raise _url_error("not_public", problem)


def _owner(caller: Caller) -> str | None:
    return None if caller.is_operator else caller.code


def webhook_router(service: Service) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["webhooks"])

    @router.post("/webhooks", status_code=201, responses={
        201: {"description": "registered: the webhook with its signing `secret`, shown this once"},
        409: {"description": "the enterprise already holds the most webhooks it may (SW_WEBHOOK_MAX_PER_ENTERPRISE, "
                             "default 10): delete one first; or it already has a webhook for this `url` "
                             "(errors[0].code `duplicate`)"}},
        openapi_extra=beyond_schema(
            "`url` has a host, no user name or password, no fragment, no control character, and a port other than 0",
            "in production (SW_ENV not a development value): `url` is https and its host resolves to public "
            "addresses only (no loopback, private, link-local or reserved address, nor an IPv6 form of one)"))
    async def register_webhook(caller: CallerDep, body: Annotated[Any, Body()]):
        """Spec §7.3: a webhook of the calling enterprise, pushed every change of the one-stop view of the
        orders it is a party to. 201 with its `secret`, shown this once. At most SW_WEBHOOK_MAX_PER_ENTERPRISE
        (default 10) per enterprise: 409 beyond; 409 naming `url` for a URL it already has a webhook for."""
        if caller.is_operator:
            raise Problem(403, "Forbidden", "a webhook belongs to an enterprise: register it with the enterprise's key")
        wanted: WebhookIn = parse(WebhookIn, body)
        await check_url(wanted.url, production=not settings().is_development)
        limit = webhook_settings().max_per_enterprise
        secret, created_at = rules.new_secret(), utcnow()
        async with service.unit_of_work() as uow:
            # The enterprise's row, locked: two registrations at once count each other (PostgreSQL).
            await uow.session.execute(select(enterprises.c.code).where(enterprises.c.code == caller.code)
                                      .with_for_update())
            held_urls = await store.urls_of(uow.session, caller.code)
            same = sorted(i for i, u in held_urls.items() if rules.endpoint(u) == rules.endpoint(wanted.url))
            if same:
                # Two webhooks of one endpoint would send every change twice under two delivery ids, which
                # the receiver's de-duplication cannot catch (a client retrying a POST that timed out).
                raise Problem(409, "Conflict", f"you already have webhook {same[0]} for this URL; delete it first "
                              "to register it again (a new secret)",
                              errors=[{"field": "url", "code": "duplicate", "message": f"already webhook {same[0]}"}])
            held = len(held_urls)
            if held >= limit:
                raise Problem(409, "Conflict", f"{caller.code} already holds {held} webhooks, the most it may "
                              "hold; delete one first (DELETE /v1/webhooks/{id})")
            row = {"id": rules.new_webhook_id(), "enterprise_code": caller.code, "url": wanted.url,
                   "events": list(wanted.events), "created_at": created_at,
                   "secret": rules.seal_secret(rules.secret_box(settings().sw_gateway_fingerprint_key), secret)}
            await uow.session.execute(insert(webhooks).values(row))
        return {"id": row["id"], "enterprise_code": caller.code, "url": wanted.url, "events": list(wanted.events),
                "created_at": created_at.isoformat(), "secret": secret}

    @router.get("/webhooks")
    async def list_webhooks(caller: CallerDep):
        """The caller's webhooks, oldest first (the operator: every enterprise's); never their secrets."""
        query = select(webhooks).order_by(webhooks.c.created_at, webhooks.c.id)
        if not caller.is_operator:
            query = query.where(webhooks.c.enterprise_code == caller.code)
        async with service.readers() as session:
            rows = (await session.execute(query)).all()
        return {"webhooks": [webhook_view(r) for r in rows]}

    @router.delete("/webhooks/{webhook_id}", responses={404: {"description": "no such webhook of the caller's"}})
    async def delete_webhook(webhook_id: str, caller: CallerDep):
        """Deletes one of the caller's webhooks, with its deliveries log; pending deliveries are not sent."""
        if caller.is_operator:
            raise Problem(403, "Forbidden", "a webhook is deleted with its enterprise's key")
        async with service.unit_of_work() as uow:
            row = await store.webhook_of(uow.session, webhook_id, caller.code)
            if row is None:
                raise Problem(404, "Not found", f"you have no webhook {webhook_id}")
            await store.remove(uow.session, webhook_id)
        return {**webhook_view(row), "deleted": True}

    @router.get("/webhooks/{webhook_id}/deliveries",
                responses={404: {"description": "no such webhook of the caller's"}})
    async def webhook_deliveries(webhook_id: str, caller: CallerDep,
                                 limit: Annotated[int, Query(ge=1, le=200)] = 50):
        """The webhook's latest deliveries (newest first): `delivery_id`, `status` (pending | delivered |
        failed), `attempts`, the last `response_code` and `last_error`, `next_attempt_at` while pending, and
        every attempt (`attempt_log`) kept (SW_WEBHOOK_KEEP_DAYS)."""
        async with service.readers() as session:
            row = await store.webhook_of(session, webhook_id, _owner(caller))
            if row is None:
                raise Problem(404, "Not found", f"you have no webhook {webhook_id}")
            deliveries = await store.recent_deliveries(session, webhook_id, limit)
        return {"webhook_id": webhook_id, "deliveries": deliveries}

    return router
