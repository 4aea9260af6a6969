"""FX (§11): settles every released order once, in USD, and keeps each ecommerce enterprise's settled
USD per calendar year and its trade FX directory status.

An order, its payment and customs' decision about it arrive on three topics in any order; each is
stored, and whichever completes the picture settles the order: the decision must be about the order's
latest version, and an import also needs its payment.

Behaviour kept from the per-record handlers (the decisions themselves are in rules.py):
- an order event older than, or the same version as, the one held is ignored; the first payment binds
  the order (spec §7.2): another payment (other firm or payment_no) is ignored, and the bound one's
  correction submitted before the held one is ignored; a decision about an older version, or decided
  earlier, is ignored;
- a settlement is final: a later cancellation or correction does not unsettle it;
- a cancellation waits for customs' decision about its version: `cancelled` makes the order not
  applicable, the release re-published (the cancellation came too late) settles it;
- each order is locked (store.load_cases), so two instances handling an order, its payment and its
  decision at the same moment cannot all miss each other;
- not applicable (cancelled, rejected) is published once per version and gives way to a later version's
  settlement;
- crossing USD 200,000 in a year publishes `FxDirectoryStatusChanged` once, unless registered.

Each handler takes a run of events: it loads the cases of all its orders at once, applies the events in
order (rules.next_step), then `finish` converts the settlements, locks the enterprise-years they settle
into (sorted), folds the settlements into them in run order, saves once per table and stages the events.
"""
from __future__ import annotations

from contracts.v1.events import CustomsDecision, PaymentSubmitted
from contracts.v2.events import OrderSubmittedV2
from services.fx import rules, store
from shared.batch import Received
from shared.clock import utcnow
from shared.runtime import Handlers, UnitOfWork

handlers = Handlers()

Pending = list[tuple[rules.FxCase, rules.FxOrder, rules.Step, Received]]


@handlers.on_batch(OrderSubmittedV2)
async def on_orders_submitted(uow: UnitOfWork, events: list[Received[OrderSubmittedV2]]) -> None:
    views = [(event, rules.order_view(event.payload)) for event in events]
    cases = await store.load_cases(uow.session, (order.key for _, order in views))
    changes, pending = store.Changes(), []
    for event, order in views:
        case = cases[order.key]
        if rules.is_newer_order(case.order, order):
            case.order = changes.orders[order.key] = order
            act(case, pending, event)
    await finish(uow, changes, pending)


@handlers.on_batch(PaymentSubmitted)
async def on_payments_submitted(uow: UnitOfWork, events: list[Received[PaymentSubmitted]]) -> None:
    views = [(event, *rules.payment_view(event.payload)) for event in events]
    cases = await store.load_cases(uow.session, (key for _, key, _ in views))
    changes, pending = store.Changes(), []
    for event, key, payment in views:
        case = cases[key]
        if rules.is_later_payment(case.payment, payment):
            case.payment = changes.payments[key] = payment
            act(case, pending, event)
    await finish(uow, changes, pending)


@handlers.on_batch(CustomsDecision)
async def on_customs_decisions(uow: UnitOfWork, events: list[Received[CustomsDecision]]) -> None:
    cases = await store.load_cases(uow.session, ((e.payload.platform_code, e.payload.order_no) for e in events))
    changes, pending = store.Changes(), []
    for event in events:
        case, verdict = cases[(event.payload.platform_code, event.payload.order_no)], rules.verdict_view(event.payload)
        if rules.is_current_decision(case.verdict, verdict):
            case.verdict = changes.verdicts[case.key] = verdict
            act(case, pending, event)
    await finish(uow, changes, pending)


def act(case: rules.FxCase, pending: Pending, cause: Received) -> None:
    """Takes the step the case calls for now (if any) and holds its outcome for the rest of the run."""
    step = rules.next_step(case)
    if step is not None:
        assert case.order is not None
        case.settlement = rules.HeldSettlement(case.order.version, step.status)
        pending.append((case, case.order, step, cause))


async def finish(uow: UnitOfWork, changes: store.Changes, pending: Pending) -> None:
    """Settles the run's pending steps in order into locked enterprise-years, saves, stages the events."""
    converted = {i: await store.settlement(uow.session, case.correlation_id, step)
                 for i, (case, _, step, _) in enumerate(pending) if isinstance(step, rules.Settle)}
    years = await store.lock_years(uow.session, {(order.ecommerce_code, step.day.year)
                                                 for _, order, step, _ in pending if isinstance(step, rules.Settle)})
    for i, (case, order, step, cause) in enumerate(pending):
        if isinstance(step, rules.Settle):
            year_key = (order.ecommerce_code, step.day.year)
            settled, years[year_key], news = rules.settle_order(order, converted[i], years[year_key], utcnow())
            changes.years[year_key] = years[year_key]
        else:
            settled, news = rules.not_applicable(order, utcnow()), None
        changes.settlements[case.key] = (order.version, settled)
        uow.emit(settled, correlation_id=case.correlation_id, cause=cause)
        if news is not None:
            uow.emit(news, correlation_id=case.correlation_id, key=order.ecommerce_code, cause=cause)
    await store.save(uow.session, changes)
