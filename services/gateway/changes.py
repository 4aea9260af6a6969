"""An order's corrections and cancellations (spec §4.5): `PUT` and `DELETE /v1/orders/{platform_code}/{order_no}`,
and the same changes asked for in customs' own messages (spec §7.5: a CEB311/CEB303 `appType` 2 or 3).

Both run inside the caller's unit of work and raise `Problem` (404, 409, 422) for a change that cannot be
made; nothing of a refused change is stored. The order's row is read locked (`load_order(for_change=True)`)
and its version moved on by a compare-and-set (`bump_version`), so two changes of one order take turns and
never make the same version twice."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update

from contracts.identifiers import order_key
from contracts.v1.documents import OrderIn
from contracts.v1.events import Order
from services.gateway import contracts_policy, intake, rules, store, views
from services.gateway.intake import emit_order_events, order_columns, order_event_document, status_url
from services.gateway.store import add_trace
from services.gateway.tables import orders
from services.gateway.webhooks.dispatch import announce
from shared.clock import utcnow
from shared.http import Problem, unprocessable
from shared.runtime import UnitOfWork


async def load_order(session, platform_code: str, order_no: str, *, for_change: bool = False):  # noqa: ANN001
    """The order's row (None: not held). `for_change`: locked until the transaction ends (PostgreSQL; SQLite
    has one writer at a time), so two PUTs or a PUT and a DELETE of one order take turns: the second one
    reads the version and the customs view the first one left, and makes the version after it (or is
    refused), never the same version twice."""
    query = select(orders).where(and_(orders.c.platform_code == platform_code, orders.c.order_no == order_no))
    return (await session.execute(query.with_for_update() if for_change else query)).first()


async def bump_version(session, row, at: datetime, **columns: Any) -> int:  # noqa: ANN001
    """Makes the order's next version (held + 1) with `columns`, as a compare-and-set on the version held:
    the row was read locked, so the set cannot miss; if it ever did, the request is refused (409) rather
    than two changes getting one version."""
    version = row.version + 1
    done = await session.execute(update(orders).where(and_(
        orders.c.platform_code == row.platform_code, orders.c.order_no == row.order_no,
        orders.c.version == row.version)).values(version=version, updated_at=at, **columns))
    if done.rowcount != 1:
        raise Problem(409, "Conflict", f"order {row.order_no} was changed at the same time; read it and try again")
    return version


async def held_views(session, platform_code: str, order_no: str) -> dict[str, dict]:  # noqa: ANN001
    return {agency: view for agency, (view, _) in (await store.order_views(session, (platform_code, order_no))).items()}


async def check_order_parties(uow: UnitOfWork, doc: OrderIn) -> None:
    """The same party checks as POST (intake.check_order_parties): roles, the seller's platform list, the
    named firms against the order's bindings."""
    intake.check_order_parties(*await intake.read_order_parties(uow.session, [doc]), doc)


async def correct_order(uow: UnitOfWork, doc: OrderIn) -> tuple[int, dict]:
    """Replaces the held order `doc` names with `doc` (spec §4.5): (202, answer with the new version), or
    (200, answer with the version held) when the order already holds this content. `doc` was read by
    `intake.read_document` and is the caller's own. Raises 404 (no such order), 409 (released or cancelled,
    or changed at the same time), 422 (another direction; a party check failed)."""
    platform_code, order_no = doc.platform_code, doc.order_no
    fp = rules.fingerprint(doc)
    answer = {"order_no": order_no, "status_url": status_url(platform_code, order_no)}
    row = await load_order(uow.session, platform_code, order_no, for_change=True)
    if row is None:
        raise Problem(404, "Not found", f"no order {order_no} of platform {platform_code}; POST it first")
    customs_status = views.customs_status(await held_views(uow.session, platform_code, order_no))
    if row.content_hash == fp and customs_status != "cancelled":
        return 200, {**answer, "version": row.version}
    if not rules.correction_allowed(customs_status):
        raise Problem(409, "Conflict", f"the order is {customs_status}; only pending, inspection or "
                      "rejected orders can be corrected")
    if doc.direction != row.direction:
        raise unprocessable([{"field": "direction", "code": "immutable", "message": "a correction cannot change the direction"}])
    await check_order_parties(uow, doc)
    event_doc = order_event_document(doc)
    at = utcnow()
    version = await bump_version(uow.session, row, at, **order_columns(doc, event_doc, fp))
    await store.save_order_views(uow.session, views.views_on_correction((platform_code, order_no), version, at))
    await emit_order_events(uow, "corrected", version, at, event_doc, contracts_policy.brands_of(doc.items))
    await add_trace(uow.session, order_key(platform_code, order_no), at, "gateway", "order.corrected",
                    f"order corrected (version {version})")
    await announce(uow, [((platform_code, order_no), version, "gateway")])
    return 202, {**answer, "version": version}


async def cancel_order(uow: UnitOfWork, platform_code: str, order_no: str) -> tuple[int, dict]:
    """Cancels the held order (spec §4.5): (202, answer), or (200, answer) when it is cancelled already.
    The caller was checked to be `platform_code`. Raises 404 (no such order), 409 (released, or changed at
    the same time)."""
    row = await load_order(uow.session, platform_code, order_no, for_change=True)
    if row is None:
        raise Problem(404, "Not found", f"no order {order_no} of platform {platform_code}")
    answer = {"order_no": order_no, "status": "cancelled", "status_url": status_url(platform_code, order_no)}
    held = await held_views(uow.session, platform_code, order_no)
    customs_status = views.customs_status(held)
    if customs_status == "cancelled":
        return 200, answer
    if not rules.cancellation_allowed(customs_status):
        raise Problem(409, "Conflict", f"the order is {customs_status} and can no longer be cancelled")
    at = utcnow()
    version = await bump_version(uow.session, row, at)
    await store.save_order_views(uow.session, [
        views.view_on_cancellation((platform_code, order_no), version, at, held.get("customs"))])
    await emit_order_events(uow, "cancelled", version, at, Order.model_validate(row.document),
                            contracts_policy.stored_brands(row.document))
    await add_trace(uow.session, order_key(platform_code, order_no), at, "gateway", "order.cancelled",
                    "order cancelled by the platform")
    await announce(uow, [((platform_code, order_no), version, "gateway")])
    return 202, answer
