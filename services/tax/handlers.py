"""Tax: joins each order's latest version with customs' decision about that very version and assesses
it (§7 import tax, §8 export exemption and deemed income). The order and its decision travel on
different topics, so whichever arrives second triggers the assessment.

Behaviour kept from the per-record handlers (the decisions themselves are in rules.py):
- an order event older than, or the same version as, the one held is ignored (redelivery, replay);
- a correction is a full new version: it waits for customs' decision about that version;
- a decision about an older version, or decided before the held one, is ignored;
- a cancellation waits for customs' decision about its version, like a correction: `cancelled` makes the
  order not applicable, the release re-published (the cancellation came too late) keeps it taxed; a
  not-applicable never replaces an assessment of released goods (the tax stays due);
- each order is locked (store.load_cases) so that two instances handling an order and its decision at the
  same moment cannot both miss the other half;
- an export's revenue counts once per order, in the quarter of its release;
- a repeated decision publishes nothing new.

Each handler takes a run of events: it loads the cases of all its orders at once (store), applies the
events in order (rules), saves once per table (store) and stages the assessments it made, in order.
"""
from __future__ import annotations

from contracts.v1.events import CustomsDecision
from contracts.v2.events import OrderSubmittedV2
from services.tax import rules, store
from shared.batch import Received
from shared.clock import utcnow
from shared.reference import fx_rates, hs_catalogue
from shared.runtime import Handlers, UnitOfWork

handlers = Handlers()


@handlers.on_batch(OrderSubmittedV2)
async def on_orders_submitted(uow: UnitOfWork, events: list[Received[OrderSubmittedV2]]) -> None:
    views = [(event, rules.order_view(event.payload)) for event in events]
    cases = await store.load_cases(uow.session, (order.key for _, order in views))
    changes = store.Changes()
    for event, order in views:
        case = cases[order.key]
        if rules.is_newer_order(case.order, order):
            case.order = changes.orders[order.key] = order
            act(uow, case, changes, event)
    await store.save(uow.session, changes)


@handlers.on_batch(CustomsDecision)
async def on_customs_decisions(uow: UnitOfWork, events: list[Received[CustomsDecision]]) -> None:
    cases = await store.load_cases(uow.session, ((e.payload.platform_code, e.payload.order_no) for e in events))
    changes = store.Changes()
    for event in events:
        case, verdict = cases[(event.payload.platform_code, event.payload.order_no)], rules.verdict_view(event.payload)
        if rules.is_current_decision(case.verdict, verdict):
            case.verdict = changes.verdicts[case.key] = verdict
            act(uow, case, changes, event)
    await store.save(uow.session, changes)


def act(uow: UnitOfWork, case: rules.TaxCase, changes: store.Changes, cause: Received) -> None:
    """Applies what the case calls for now to the case and the run's changes, and stages the assessment."""
    outcome = rules.decide(case, utcnow(), fx_rates(), hs_catalogue())
    if outcome.revenue is not None:
        changes.add_revenue(outcome.revenue)
    if outcome.assessment is not None:
        a = changes.assessments[case.key] = outcome.assessment
        case.assessment = rules.HeldAssessment(a.order_version, a.status)
        uow.emit(a, correlation_id=case.correlation_id, cause=cause)
