"""Tax: joins each order's latest version with customs' decision about that very version and assesses
it (§7 import tax, §8 export exemption and deemed income). The order and its decision travel on
different topics, so whichever arrives second triggers the assessment."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, literal, select

from contracts.envelope import Envelope
from contracts.v1.events import CustomsDecision, Order, TaxAssessment, TaxLine
from contracts.v2.events import OrderSubmittedV2
from services.tax import rules
from services.tax.tables import assessments, decisions, export_revenue, insert_once, orders, upsert
from shared.reference import MissingRate, fx_rates, hs_catalogue
from shared.runtime import Handlers, UnitOfWork
from shared.clock import china_date, utcnow

handlers = Handlers()

# §7/§8 dates (the rate day, the quarter) are China's calendar days; China has no daylight saving.
# What stays standing when a cancellation races a release: the goods are gone, the tax is due.
RELEASED_STATUSES = ("assessed", "general_trade", "exempt")
# Line amounts are exact quotients; ten decimals is plenty for anyone checking the sums.
_LINE_QUANTUM = Decimal("1e-10")




@dataclass
class Case:
    """What the tax service holds about one order: its latest version, decision and assessment."""

    platform_code: str
    order_no: str
    order: Any = None
    decision: Any = None
    assessment: Any = None

    @property
    def key(self) -> str:
        return f"{self.platform_code}:{self.order_no}"


async def load_case(uow: UnitOfWork, platform_code: str, order_no: str) -> Case:
    # One round trip for the three rows, whichever of them exist.
    k = select(literal(platform_code).label("platform_code"), literal(order_no).label("order_no")).subquery()

    def on(table):  # noqa: ANN001, ANN202
        return and_(table.c.platform_code == k.c.platform_code, table.c.order_no == k.c.order_no)

    o, d, a = orders, decisions, assessments
    row = (await uow.session.execute(
        select(
            o.c.version.label("o_version"), o.c.action, o.c.ecommerce_code, o.c.direction.label("o_direction"),
            o.c.currency, o.c.actual_paid, o.c.submitted_at, o.c.document,
            d.c.order_version.label("d_version"), d.c.status.label("d_status"), d.c.direction.label("d_direction"),
            d.c.tax_mode, d.c.decided_at,
            a.c.order_version.label("a_version"), a.c.status.label("a_status"),
        ).select_from(k.outerjoin(o, on(o)).outerjoin(d, on(d)).outerjoin(a, on(a)))
    )).one()
    case = Case(platform_code, order_no)
    if row.o_version is not None:
        case.order = _Row(version=row.o_version, action=row.action, ecommerce_code=row.ecommerce_code,
                          direction=row.o_direction, currency=row.currency, actual_paid=row.actual_paid,
                          submitted_at=row.submitted_at, document=row.document)
    if row.d_version is not None:
        case.decision = _Row(order_version=row.d_version, status=row.d_status, direction=row.d_direction,
                             tax_mode=row.tax_mode, decided_at=row.decided_at)
    if row.a_version is not None:
        case.assessment = _Row(order_version=row.a_version, status=row.a_status)
    return case


class _Row:
    def __init__(self, **values: Any):
        self.__dict__.update(values)


# --- consumed events ------------------------------------------------------------------------


@handlers.on(OrderSubmittedV2)
async def on_order_submitted(uow: UnitOfWork, event: Envelope, submitted: OrderSubmittedV2) -> None:
    e = submitted.as_v1()  # the tax rules, and the order document kept for them, are v1's
    o = e.order
    case = await load_case(uow, o.platform_code, o.order_no)
    if case.order is not None and case.order.version >= e.version:
        return  # an older version, or this one again
    document = o.model_dump(mode="json", exclude={"buyer", "consignee"})
    await upsert(uow.session, orders, dict(
        platform_code=o.platform_code, order_no=o.order_no, version=e.version, action=e.action,
        ecommerce_code=o.ecommerce_code, direction=o.direction, currency=o.currency, tax_total=o.tax_total,
        actual_paid=o.actual_paid, submitted_at=e.submitted_at, document=document,
    ))
    case.order = _Row(version=e.version, action=e.action, ecommerce_code=o.ecommerce_code, direction=o.direction,
                      currency=o.currency, actual_paid=o.actual_paid, submitted_at=e.submitted_at, document=document)
    await decide(uow, case)


@handlers.on(CustomsDecision)
async def on_customs_decision(uow: UnitOfWork, event: Envelope, d: CustomsDecision) -> None:
    case = await load_case(uow, d.platform_code, d.order_no)
    held = case.decision
    if held is not None and (held.order_version, held.decided_at) > (d.order_version, d.decided_at):
        return  # about an older version, or overtaken by a later decision
    await upsert(uow.session, decisions, dict(
        platform_code=d.platform_code, order_no=d.order_no, order_version=d.order_version, status=d.status,
        direction=d.direction, tax_mode=d.tax_mode, decided_at=d.decided_at,
    ))
    case.decision = _Row(order_version=d.order_version, status=d.status, direction=d.direction,
                         tax_mode=d.tax_mode, decided_at=d.decided_at)
    await decide(uow, case)


# --- the decision ---------------------------------------------------------------------------


async def decide(uow: UnitOfWork, case: Case) -> None:
    order, decision, held = case.order, case.decision, case.assessment
    if order is None:
        return
    if order.action == "cancelled":
        if held is not None and held.status in RELEASED_STATUSES:
            return
        await record(uow, case, not_applicable(case))
        return
    if decision is None or decision.order_version != order.version:
        return  # wait for customs to decide on this version
    if decision.status in ("rejected", "cancelled"):
        await record(uow, case, not_applicable(case))
    elif decision.status == "released":
        if order.direction == "import":
            await record(uow, case, assess_import(case))
        else:
            await record_export_revenue(uow, case)
            await record(uow, case, base_assessment(case, "exempt"))
    # pending / inspection: nothing to assess yet


def base_assessment(case: Case, status: str, **amounts: Any) -> TaxAssessment:
    return TaxAssessment(
        platform_code=case.platform_code, order_no=case.order_no, order_version=case.order.version,
        ecommerce_code=case.order.ecommerce_code, status=status, assessed_at=utcnow(), **amounts,
    )


def not_applicable(case: Case) -> TaxAssessment:
    return base_assessment(case, "not_applicable")


def cny_per_unit(case: Case, currency: str, day: date) -> Decimal:
    # CNY is 1 on every day; a currency the reference table lacks cannot be taxed: dead-lettered.
    try:
        return fx_rates().rate_on(currency, day)[1]
    except MissingRate as err:
        raise MissingRate(f"cannot assess order {case.key}: {err}") from None


def assess_import(case: Case) -> TaxAssessment:
    order = Order.model_validate(case.order.document)
    rate = cny_per_unit(case, order.currency, china_date(case.order.submitted_at))
    a = rules.assess_import(order, case.decision.tax_mode or "retail", hs_catalogue(), rate)
    return base_assessment(
        case, a.status, dutiable_value=a.dutiable_value, customs_duty=a.customs_duty, vat=a.vat,
        consumption_tax=a.consumption_tax, total=a.total, declared_tax_total=a.declared_tax_total,
        declared_difference=a.declared_difference,
        lines=[TaxLine(item_no=line.item_no, hs_code=line.hs_code, dutiable_value=_line_amount(line.dutiable_value),
                       customs_duty=_line_amount(line.customs_duty), consumption_tax=_line_amount(line.consumption_tax),
                       vat=_line_amount(line.vat)) for line in a.lines],
    )


def _line_amount(amount: Decimal) -> Decimal:
    """Exact line amounts, trimmed: whole cents as "12.30", anything finer to at most ten decimals."""
    trimmed = amount.quantize(_LINE_QUANTUM)
    cents = trimmed.quantize(rules.CENT)
    if trimmed == cents:
        return cents
    return Decimal(format(trimmed.normalize(), "f"))


async def record_export_revenue(uow: UnitOfWork, case: Case) -> None:
    order, decision = case.order, case.decision
    revenue = rules.round_money(order.actual_paid * cny_per_unit(case, order.currency, china_date(order.submitted_at)))
    await insert_once(uow.session, export_revenue, dict(
        platform_code=case.platform_code, order_no=case.order_no, ecommerce_code=order.ecommerce_code,
        quarter=rules.quarter_of(china_date(decision.decided_at)), revenue_cny=revenue,
        order_version=order.version, decided_at=decision.decided_at,
    ))


async def record(uow: UnitOfWork, case: Case, assessment: TaxAssessment) -> None:
    """Stores the one assessment of the order (replacing an older version's) and publishes it."""
    held = case.assessment
    if held is not None and (held.order_version, held.status) == (assessment.order_version, assessment.status):
        return  # a repeated decision: this version was already assessed this way
    await upsert(uow.session, assessments, dict(
        platform_code=case.platform_code, order_no=case.order_no, order_version=assessment.order_version,
        ecommerce_code=assessment.ecommerce_code, status=assessment.status, total=assessment.total,
        assessed_at=assessment.assessed_at, document=assessment.model_dump(mode="json"),
    ))
    case.assessment = _Row(order_version=assessment.order_version, status=assessment.status)
    uow.emit(assessment, correlation_id=case.key)
