"""From a change of the one-stop view to webhook deliveries, through Kafka (spec §7.3).

1. `announce` (in the transaction that changed the view: an agency's answer projected by the read model's
   handlers, a correction, a cancellation) emits `order.status_changed` on `sw.order.status_changed.v1`
   through the outbox, for the orders a party of which holds a webhook (one query; nothing is written for
   the others). Nothing leaves from inside a request.
2. `dispatch` (the gateway's consumer of that topic, exactly once through the inbox) makes the deliveries:
   one per event and subscribed webhook of a party of the order, with the view as held when it runs, and
   `delivery_id` derived from the event id and the webhook id, so a redelivered event adds nothing.
   Several changes of one order in one batch make one delivery per webhook (the last event's): every one
   would carry the same view, the view as of now.
3. services/gateway/webhooks/sender.py sends them."""
from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from contracts.identifiers import order_key
from contracts.v1.events import OrderStatusChanged
from services.gateway import store as gateway_store
from services.gateway import views
from services.gateway.views import OrderKey
from services.gateway.webhooks import rules, store
from shared.batch import Received
from shared.clock import utcnow
from shared.runtime import UnitOfWork


async def announce(uow: UnitOfWork, changes: Iterable[tuple[OrderKey, int, str]],
                   watched: Collection[OrderKey] | None = None) -> None:
    """Emits one `OrderStatusChanged` per changed order that a webhook may be told about. `changes`:
    (order, version held, what changed it: an agency's name or `gateway`); `watched`: the orders a party of
    which holds a webhook, if the caller read them already (store.held_versions_and_watched), else one query."""
    by_order: dict[OrderKey, tuple[int, list[str]]] = {}
    for key, version, source in changes:
        held, sources = by_order.get(key, (version, []))
        if source not in sources:
            sources.append(source)
        by_order[key] = (max(held, version), sources)
    if not by_order:
        return
    now = utcnow()
    if watched is None:
        watched = await store.watched_orders(uow.session, by_order)
    for key in sorted(k for k in watched if k in by_order):
        version, sources = by_order[key]
        uow.emit(OrderStatusChanged(platform_code=key[0], order_no=key[1], version=version, sources=sources,
                                    changed_at=now), correlation_id=order_key(*key))


async def dispatch(uow: UnitOfWork, events: list[Received[Any]]) -> None:
    """A run of `order.status_changed` events into deliveries: one query per table (the orders' status
    lines, their bindings, the webhooks, their agency views), one insert of the deliveries."""
    last: dict[OrderKey, Received[Any]] = {}
    for event in events:
        last[(event.payload.platform_code, event.payload.order_no)] = event
    lines = (await uow.session.execute(gateway_store.status_query(last))).all()
    hooks = await store.subscribers(uow.session, lines, rules.ORDER_STATUS_CHANGED)
    if not hooks:
        return
    held = await gateway_store.orders_views(uow.session, hooks)
    now = utcnow()
    rows = []
    for line in sorted(lines, key=lambda r: (r.platform_code, r.order_no)):
        key = (line.platform_code, line.order_no)
        if key not in hooks:
            continue
        view, envelope = views.one_stop_view(line, held.get(key, {})), last[key].envelope
        for hook in hooks[key]:
            delivery = rules.delivery_id(str(envelope.event_id), hook.id)
            rows.append({"delivery_id": delivery, "webhook_id": hook.id, "order_key": order_key(*key),
                         "event_type": rules.ORDER_STATUS_CHANGED,
                         "body": rules.delivery_body(delivery, envelope.occurred_at, view),
                         "status": store.PENDING, "attempts": 0, "created_at": now, "next_attempt_at": now})
    await store.add_deliveries(uow.session, rows)
