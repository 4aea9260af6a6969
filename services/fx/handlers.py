"""FX (§11): settles every released order once, in USD, and keeps each ecommerce enterprise's settled
USD per calendar year and its trade FX directory status.

An order, its payment and customs' decision about it arrive on three topics in any order; each is
stored, and whichever completes the picture settles the order: the decision must be about the order's
latest version, and an import also needs its payment."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import and_, literal, select

from contracts.envelope import Envelope
from contracts.v1.events import CustomsDecision, FxDirectoryStatusChanged, FxSettled, PaymentSubmitted
from contracts.v2.events import OrderSubmittedV2
from services.fx import rules
from services.fx.load_rates import RateCache
from services.fx.tables import (
    decisions,
    directory_registrations,
    enterprise_years,
    insert_once,
    orders,
    payments,
    settlements,
    upsert,
)
from shared.reference import FxRates, MissingRate
from shared.runtime import Handlers, UnitOfWork
from shared.clock import china_date, utcnow

handlers = Handlers()

# Settlement days and years are China's calendar; China has no daylight saving.
CENT = Decimal("0.01")
ZERO = Decimal("0")

# The rate table in memory (filled at start, refreshed when the table changes).
RATES = RateCache()


class UnsettleableOrder(LookupError):
    """No rate to settle an order with: dead-lettered with this message, the service keeps going."""




class _Row:
    def __init__(self, **values: Any):
        self.__dict__.update(values)


@dataclass
class Case:
    """What FX holds about one order: latest version, payment, decision and settlement."""

    platform_code: str
    order_no: str
    order: Any = None
    payment: Any = None
    decision: Any = None
    settlement: Any = None

    @property
    def key(self) -> str:
        return f"{self.platform_code}:{self.order_no}"


async def load_case(uow: UnitOfWork, platform_code: str, order_no: str) -> Case:
    # One round trip for the four rows, whichever of them exist.
    k = select(literal(platform_code).label("platform_code"), literal(order_no).label("order_no")).subquery()

    def on(table):  # noqa: ANN001, ANN202
        return and_(table.c.platform_code == k.c.platform_code, table.c.order_no == k.c.order_no)

    o, p, d, s = orders, payments, decisions, settlements
    row = (await uow.session.execute(
        select(
            o.c.version, o.c.action, o.c.ecommerce_code, o.c.direction, o.c.currency.label("o_currency"),
            o.c.actual_paid, o.c.submitted_at.label("o_submitted_at"),
            p.c.amount, p.c.currency.label("p_currency"), p.c.paid_at, p.c.submitted_at.label("p_submitted_at"),
            d.c.order_version.label("d_version"), d.c.status.label("d_status"), d.c.decided_at,
            s.c.order_version.label("s_version"), s.c.status.label("s_status"),
        ).select_from(k.outerjoin(o, on(o)).outerjoin(p, on(p)).outerjoin(d, on(d)).outerjoin(s, on(s)))
    )).one()
    case = Case(platform_code, order_no)
    if row.version is not None:
        case.order = _Row(version=row.version, action=row.action, ecommerce_code=row.ecommerce_code,
                          direction=row.direction, currency=row.o_currency, actual_paid=row.actual_paid,
                          submitted_at=row.o_submitted_at)
    if row.amount is not None:
        case.payment = _Row(amount=row.amount, currency=row.p_currency, paid_at=row.paid_at,
                            submitted_at=row.p_submitted_at)
    if row.d_version is not None:
        case.decision = _Row(order_version=row.d_version, status=row.d_status, decided_at=row.decided_at)
    if row.s_version is not None:
        case.settlement = _Row(order_version=row.s_version, status=row.s_status)
    return case


# --- consumed events ------------------------------------------------------------------------


@handlers.on(OrderSubmittedV2)
async def on_order_submitted(uow: UnitOfWork, event: Envelope, submitted: OrderSubmittedV2) -> None:
    e = submitted.as_v1()  # the settlement rules read the v1 order
    o = e.order
    case = await load_case(uow, o.platform_code, o.order_no)
    if case.order is not None and case.order.version >= e.version:
        return  # an older version, or this one again
    values = dict(version=e.version, action=e.action, ecommerce_code=o.ecommerce_code, direction=o.direction,
                  currency=o.currency, actual_paid=o.actual_paid, submitted_at=e.submitted_at)
    await upsert(uow.session, orders, dict(platform_code=o.platform_code, order_no=o.order_no, **values))
    case.order = _Row(**values)
    await decide(uow, case)


@handlers.on(PaymentSubmitted)
async def on_payment_submitted(uow: UnitOfWork, event: Envelope, e: PaymentSubmitted) -> None:
    p = e.payment
    case = await load_case(uow, p.platform_code, p.order_no)
    if case.payment is not None and case.payment.submitted_at > e.submitted_at:
        return  # a later payment for this order is already held
    values = dict(amount=p.amount, currency=p.currency, paid_at=p.paid_at, submitted_at=e.submitted_at)
    await upsert(uow.session, payments, dict(platform_code=p.platform_code, order_no=p.order_no,
                                             payment_code=p.payment_code, payment_no=p.payment_no, **values))
    case.payment = _Row(**values)
    await decide(uow, case)


@handlers.on(CustomsDecision)
async def on_customs_decision(uow: UnitOfWork, event: Envelope, d: CustomsDecision) -> None:
    case = await load_case(uow, d.platform_code, d.order_no)
    held = case.decision
    if held is not None and (held.order_version, held.decided_at) > (d.order_version, d.decided_at):
        return  # about an older version, or overtaken by a later decision
    values = dict(order_version=d.order_version, status=d.status, decided_at=d.decided_at)
    await upsert(uow.session, decisions, dict(platform_code=d.platform_code, order_no=d.order_no, **values))
    case.decision = _Row(**values)
    await decide(uow, case)


# --- the decision ---------------------------------------------------------------------------


async def decide(uow: UnitOfWork, case: Case) -> None:
    order, decision, held = case.order, case.decision, case.settlement
    if order is None or (held is not None and held.status == "settled"):
        return  # settled once, for good: a cancellation cannot unsettle money that moved
    if order.action == "cancelled":
        await not_applicable(uow, case)
        return
    if decision is None or decision.order_version != order.version:
        return  # wait for customs to decide on this version
    if decision.status in ("rejected", "cancelled"):
        await not_applicable(uow, case)
    elif decision.status == "released":
        if order.direction == "import":
            if case.payment is None:
                return  # settled from the payment: wait for it
            amount, currency, day = case.payment.amount, case.payment.currency, china_date(case.payment.paid_at)
        else:
            amount, currency, day = order.actual_paid, order.currency, china_date(order.submitted_at)
        await settle(uow, case, amount, currency, day)
    # pending / inspection: nothing to settle yet


async def not_applicable(uow: UnitOfWork, case: Case) -> None:
    held = case.settlement
    if held is not None and (held.order_version, held.status) == (case.order.version, "not_applicable"):
        return
    await record(uow, case, FxSettled(
        platform_code=case.platform_code, order_no=case.order_no, ecommerce_code=case.order.ecommerce_code,
        status="not_applicable", settled_at=utcnow()))


async def record(uow: UnitOfWork, case: Case, settled: FxSettled) -> None:
    """Stores the order's one settlement row (a settlement replaces a not_applicable) and publishes it."""
    await upsert(uow.session, settlements, dict(
        platform_code=case.platform_code, order_no=case.order_no, order_version=case.order.version,
        ecommerce_code=settled.ecommerce_code, status=settled.status, amount=settled.amount,
        currency=settled.currency, amount_cny=settled.amount_cny, rate=settled.rate,
        rate_date=date.fromisoformat(settled.rate_date) if settled.rate_date else None,
        amount_usd=settled.amount_usd, year=settled.year, year_to_date_usd=settled.year_to_date_usd,
        directory_status=settled.directory_status, settled_at=settled.settled_at,
        document=settled.model_dump(mode="json"),
    ))
    case.settlement = _Row(order_version=case.order.version, status=settled.status)
    uow.emit(settled, correlation_id=case.key)


async def settlement_of(uow: UnitOfWork, case: Case, amount: Decimal, currency: str, day: date) -> rules.Settlement:
    rates = await RATES.current(uow.session)
    try:
        return rules.settle(amount, currency, day, rates)
    except MissingRate as first:
        # The loader may have just added it (from another process): look again before giving up.
        if await RATES.refresh(uow.session):
            try:
                return rules.settle(amount, currency, day, RATES.rates or FxRates([]))
            except MissingRate as err:
                first = err
        raise UnsettleableOrder(f"cannot settle order {case.key} ({amount} {currency} on {day}): {first}; "
                                "load the rate with python -m services.fx.load_rates") from None


async def settle(uow: UnitOfWork, case: Case, amount: Decimal, currency: str, day: date) -> None:
    s = await settlement_of(uow, case, amount, currency, day)
    code, year, at = case.order.ecommerce_code, day.year, utcnow()
    registered = await is_registered(uow, code)
    before = await year_to_date(uow, code, year, registered)
    after = before.year_to_date_usd + s.amount_usd
    status = rules.directory_status(after, registered)
    await uow.session.execute(enterprise_years.update().where(and_(
        enterprise_years.c.code == code, enterprise_years.c.year == year)).values(
        year_to_date_usd=after, settlements=before.settlements + 1, directory_status=status, updated_at=at))
    await record(uow, case, FxSettled(
        platform_code=case.platform_code, order_no=case.order_no, ecommerce_code=code, status="settled",
        amount=amount, currency=currency, amount_cny=s.amount_cny.quantize(CENT, rounding=ROUND_HALF_UP),
        rate=s.usd_rate, rate_date=s.rate_date.isoformat(), amount_usd=s.amount_usd, year=year,
        year_to_date_usd=after, directory_status=status, settled_at=at,
    ))
    # The published status, not only the arithmetic, decides whether this is news (a registration
    # recorded meanwhile already told everyone).
    change = rules.directory_status_change(before.year_to_date_usd, after, registered)
    if change is not None and change[1] != before.directory_status:
        uow.emit(FxDirectoryStatusChanged(
            enterprise_code=code, year=year, status=change[1], previous_status=before.directory_status,
            year_to_date_usd=after, changed_at=at,
        ), correlation_id=case.key, key=code)


async def is_registered(uow: UnitOfWork, code: str) -> bool:
    found = await uow.session.scalar(
        select(directory_registrations.c.code).where(directory_registrations.c.code == code))
    return found is not None


async def year_to_date(uow: UnitOfWork, code: str, year: int, registered: bool = False) -> Any:
    """The enterprise's row for the year, locked until the transaction ends (created at zero)."""
    query = select(enterprise_years).where(and_(
        enterprise_years.c.code == code, enterprise_years.c.year == year)).with_for_update()
    row = (await uow.session.execute(query)).first()
    if row is None:
        await insert_once(uow.session, enterprise_years, dict(
            code=code, year=year, year_to_date_usd=ZERO, settlements=0,
            directory_status=rules.directory_status(ZERO, registered), updated_at=utcnow()))
        row = (await uow.session.execute(query)).one()
    return row
