"""Quarantine decides every order version as it comes (sw.order.submitted.v2) and publishes its status
(quarantine.status.v1), which the gateway's one-stop view shows under `quarantine`."""
from __future__ import annotations

from datetime import datetime

from contracts.identifiers import order_key
from contracts.v1.quarantine import QuarantineStatus
from contracts.v2.events import OrderSubmittedV2
from services.quarantine import rules, store
from shared.batch import Received
from shared.clock import utcnow
from shared.runtime import Handlers, UnitOfWork

handlers = Handlers()


def status(key: store.Key, case: rules.Case, at: datetime) -> QuarantineStatus:
    return QuarantineStatus(platform_code=key[0], order_no=key[1], order_version=case.version, status=case.status,
                            chapters=list(case.chapters), reasons=case.reasons(), decided_at=at)


@handlers.on_batch(OrderSubmittedV2)
async def on_orders(uow: UnitOfWork, events: list[Received[OrderSubmittedV2]]) -> None:
    keys = [(e.payload.order.platform.code, e.payload.order.order_no) for e in events]
    held = await store.load(uow.session, keys)
    changed: dict[store.Key, rules.Case] = {}
    now = utcnow()
    for key, event in zip(keys, events):  # in consumption order: several versions of one order fold
        o = event.payload
        case = rules.on_order(changed.get(key, held.get(key)), o.action, o.version, (i.hs_code for i in o.order.items))
        if case is not None:
            changed[key] = case
            uow.emit(status(key, case, now), correlation_id=order_key(*key), cause=event)
    await store.save(uow.session, changed, now)
