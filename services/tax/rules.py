"""Tax rules (domain rules §7 import tax, §8 export deemed income). Pure: no I/O, no clock.

All money is `Decimal`. Intermediate amounts stay unrounded; only the per-order sums are rounded
half-up to 0.01, because §7 rounds the summed taxes, not each line's.

Besides the arithmetic, every decision of the service lives here, over tax's own view of an order
(`TaxOrder`, built from the wire by `order_view`) and of customs' decision (`Verdict`):
whether an order event or a decision is newer than what is held (`is_newer_order`, `is_current_decision`),
and what the case calls for now (`decide`: wait, not applicable, assess an import, exempt an export and
keep its revenue). The caller gives the time, the rate table and the HS catalogue.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Any, Protocol

from contracts.identifiers import order_key
from contracts.v1.events import CustomsDecision, Order, TaxAssessment, TaxLine
from contracts.v2.events import OrderSubmittedV2
from shared.clock import china_date
from shared.reference import FxRates, HsEntry, MissingRate

CENT = Decimal("0.01")
ZERO = Decimal("0")

# §7: within the retail limits VAT and consumption tax are collected at 70% of the statutory amount.
RETAIL_TAX_FACTOR = Decimal("0.7")
# §8: 应税所得率 4% for deemed (核定征收) income tax on retail exports.
DEEMED_INCOME_RATE = Decimal("0.04")

TAX_MODES = ("retail", "general_trade")

# Shares of freight/discount and `/ (1 - ct)` do not terminate, so "exact" means: far more digits
# than any amount needs, and independent of whatever decimal context the caller has set.
_CONTEXT = Context(prec=60, rounding=ROUND_HALF_EVEN)
# Representation noise from those non-terminating quotients sits around 1e-55; snapping to 1e-30
# before rounding to cents stops an amount that is exactly x.xx5 from rounding down as x.xx4999...
_NOISE_FLOOR = Decimal("1e-30")


class UnknownHsCode(LookupError):
    """An order line names an HS code the catalogue does not have, so it has no rates to tax at."""

    def __init__(self, hs_code: str, item_no: str):
        super().__init__(f"HS code {hs_code} of item {item_no} is not in the HS catalogue; cannot assess tax")
        self.hs_code = hs_code
        self.item_no = item_no


class NegativeDutiableValue(ValueError):
    """Discount exceeds goods + freight + insurance: there is no non-negative transaction price to tax."""


class PricedLine(Protocol):
    """What §7 needs of an order line: quantity and unit price in the order's currency."""

    item_no: str
    hs_code: str
    quantity: Decimal
    unit_price: Decimal


class PricedOrder(Protocol):
    """What §7 needs of an order (a `TaxOrder`; a v1 `Order` has the same shape)."""

    order_no: str
    items: Sequence[PricedLine]
    freight: Decimal
    insurance: Decimal
    discount: Decimal
    tax_total: Decimal


@dataclass(frozen=True)
class OrderItem:
    """One order line as tax sees it; amounts in the order's currency."""

    item_no: str
    hs_code: str
    quantity: Decimal
    unit_price: Decimal


@dataclass(frozen=True)
class TaxOrder:
    """Tax's view of one version of an order (§7, §8). Money in the order's `currency`, as Decimal.

    `document` is the v1 order as tax keeps it (without buyer or consignee, which tax never needs); the
    view is rebuilt from it when read back (`order_from_document`)."""

    platform_code: str
    order_no: str
    version: int
    action: str  # new | corrected | cancelled
    ecommerce_code: str
    direction: str  # import | export
    currency: str
    items: tuple[OrderItem, ...]
    freight: Decimal
    insurance: Decimal
    discount: Decimal
    tax_total: Decimal
    actual_paid: Decimal
    submitted_at: datetime
    document: Mapping[str, Any] = field(compare=False, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return self.platform_code, self.order_no


def _view_of(order: Order, version: int, action: str, submitted_at: datetime) -> TaxOrder:
    return TaxOrder(
        platform_code=order.platform_code, order_no=order.order_no, version=version, action=action,
        ecommerce_code=order.ecommerce_code, direction=order.direction, currency=order.currency,
        items=tuple(OrderItem(i.item_no, i.hs_code, i.quantity, i.unit_price) for i in order.items),
        freight=order.freight, insurance=order.insurance, discount=order.discount, tax_total=order.tax_total,
        actual_paid=order.actual_paid, submitted_at=submitted_at,
        document=order.model_dump(mode="json", exclude={"buyer", "consignee"}),
    )


def order_view(submitted: OrderSubmittedV2) -> TaxOrder:
    """Tax's view of an order event (sw.order.submitted.v2): the same facts as its v1 shape."""
    e = submitted.as_v1()
    return _view_of(e.order, e.version, e.action, e.submitted_at)


def order_from_document(document: Mapping[str, Any], version: int, action: str, submitted_at: datetime) -> TaxOrder:
    """The view of an order tax stored earlier (`TaxOrder.document` and the version's facts)."""
    return _view_of(Order.model_validate(document), version, action, submitted_at)


@dataclass(frozen=True)
class Verdict:
    """Customs' latest decision about an order, as tax needs it (domain §4, §5)."""

    order_version: int
    status: str  # pending | released | inspection | rejected | cancelled
    direction: str
    tax_mode: str | None  # retail | general_trade, for released imports
    decided_at: datetime


def verdict_view(d: CustomsDecision) -> Verdict:
    return Verdict(order_version=d.order_version, status=d.status, direction=d.direction, tax_mode=d.tax_mode,
                   decided_at=d.decided_at)


@dataclass(frozen=True)
class HeldAssessment:
    """The order's one assessment as held: which version, and how it was assessed."""

    order_version: int
    status: str  # assessed | general_trade | exempt | not_applicable


@dataclass
class TaxCase:
    """What tax holds about one order: its latest version, customs' latest decision, its assessment."""

    platform_code: str
    order_no: str
    order: TaxOrder | None = None
    verdict: Verdict | None = None
    assessment: HeldAssessment | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.platform_code, self.order_no

    @property
    def correlation_id(self) -> str:
        return order_key(self.platform_code, self.order_no)


@dataclass(frozen=True)
class ExportRevenue:
    """§8: a released export's revenue in CNY (half-up to 0.01), counted in the quarter of the release."""

    platform_code: str
    order_no: str
    ecommerce_code: str
    quarter: str  # "2026Q4", China's calendar
    revenue_cny: Decimal
    order_version: int
    decided_at: datetime


@dataclass(frozen=True)
class Outcome:
    """What a case calls for now: an assessment to store and publish, export revenue to keep (once per
    order: the first one counts), both, or nothing."""

    assessment: TaxAssessment | None = None
    revenue: ExportRevenue | None = None


NOTHING = Outcome()

@dataclass(frozen=True)
class LineTax:
    """One order line's share, in CNY, exact and unrounded."""

    item_no: str
    hs_code: str
    dutiable_value: Decimal
    customs_duty: Decimal
    consumption_tax: Decimal
    vat: Decimal


@dataclass(frozen=True)
class ImportAssessment:
    status: str  # "assessed" (retail, within limits) or "general_trade"
    dutiable_value: Decimal
    customs_duty: Decimal
    vat: Decimal
    consumption_tax: Decimal
    total: Decimal  # customs_duty + vat + consumption_tax as rounded (not the exact total, rounded)
    lines: list[LineTax]
    declared_tax_total: Decimal  # the platform's tax_total in CNY, rounded half-up to 0.01
    declared_difference: Decimal  # declared_tax_total - total; negative when the platform collected too little


def round_money(amount: Decimal) -> Decimal:
    """Half-up to 0.01 (§7, §8, §11)."""
    with localcontext(_CONTEXT):
        return amount.quantize(_NOISE_FLOOR).quantize(CENT, rounding=ROUND_HALF_UP)


def line_dutiable_values(order: PricedOrder) -> list[Decimal]:
    """§7 dutiable value per line, in the order's currency, exact.

    `dv_line = line_value + (freight + insurance - discount) * line_value / sum(line_value)`.
    Each line's share is proportional over the whole order, so a discount larger than one line is fine:
    every line scales by the same factor `order_total / sum(line_value)`, which keeps every line
    non-negative whenever goods + freight + insurance - discount >= 0. When that order total is negative
    there is no meaningful price to tax, so `NegativeDutiableValue` is raised rather than inventing one.

    The last line takes the remainder, so the lines add up to the order total exactly (customs reports
    that same total as the dutiable value for the limits).

    When every line is priced at 0 (free goods), there is no proportion to share by: freight, insurance and
    discount are shared equally among the lines.
    """
    items = order.items
    if not items:
        return []
    with localcontext(_CONTEXT):
        line_values = [item.quantity * item.unit_price for item in items]
        goods = sum(line_values, ZERO)
        adjustment = order.freight + order.insurance - order.discount
        order_total = goods + adjustment
        if order_total < 0:
            raise NegativeDutiableValue(
                f"order {order.order_no}: discount {order.discount} exceeds goods {goods} + freight "
                f"{order.freight} + insurance {order.insurance}; the dutiable value would be negative"
            )
        if goods == 0:
            shares = [adjustment / len(items)] * len(items)
        else:
            # Multiply before dividing so that shares which do terminate come out exact.
            shares = [adjustment * value / goods for value in line_values]
        values = [value + share for value, share in zip(line_values, shares)]
        values[-1] = order_total - sum(values[:-1], ZERO)
        return values


def _line_tax(item_no: str, entry: HsEntry, dv: Decimal, tax_mode: str) -> LineTax:
    ct, vat_rate = entry.consumption_tax_rate, entry.vat_rate
    if tax_mode == "retail":
        duty = ZERO
        # Both taxes are computed on the statutory base and then cut to 70%: VAT's base includes the
        # full statutory consumption tax, not the reduced one (§7 table).
        statutory_ct = dv / (1 - ct) * ct
        consumption_tax = RETAIL_TAX_FACTOR * statutory_ct
        vat = RETAIL_TAX_FACTOR * (dv + statutory_ct) * vat_rate
    else:
        duty = dv * entry.mfn_duty_rate
        consumption_tax = (dv + duty) / (1 - ct) * ct
        vat = (dv + duty + consumption_tax) * vat_rate
    return LineTax(
        item_no=item_no,
        hs_code=entry.hs_code,
        dutiable_value=dv,
        customs_duty=duty,
        consumption_tax=consumption_tax,
        vat=vat,
    )


def assess_import(
    order: PricedOrder,
    tax_mode: str,
    catalogue: Mapping[str, HsEntry],
    cny_per_unit: Decimal = Decimal(1),
) -> ImportAssessment:
    """§7 cross-border e-commerce comprehensive tax (跨境电商综合税) of a released import, in CNY.

    `tax_mode` is customs' decision: "retail" (within the limits) or "general_trade" (a single indivisible
    item over the single-transaction limit). `cny_per_unit` converts the order's currency to CNY; it is
    applied to the exact dutiable values, before any tax, so nothing is rounded twice.
    """
    if tax_mode not in TAX_MODES:
        raise ValueError(f"tax_mode must be one of {', '.join(TAX_MODES)}, not {tax_mode!r}")
    if cny_per_unit <= 0:
        raise ValueError(f"cny_per_unit must be greater than 0, not {cny_per_unit}")
    # Every unknown code is a reason to stop before computing anything; report the first one.
    for item in order.items:
        if item.hs_code not in catalogue:
            raise UnknownHsCode(item.hs_code, item.item_no)

    with localcontext(_CONTEXT):
        lines = [
            _line_tax(item.item_no, catalogue[item.hs_code], dv * cny_per_unit, tax_mode)
            for item, dv in zip(order.items, line_dutiable_values(order))
        ]
        dutiable_value = round_money(sum((line.dutiable_value for line in lines), ZERO))
        customs_duty = round_money(sum((line.customs_duty for line in lines), ZERO))
        vat = round_money(sum((line.vat for line in lines), ZERO))
        consumption_tax = round_money(sum((line.consumption_tax for line in lines), ZERO))
        total = customs_duty + vat + consumption_tax
        declared_tax_total = round_money(order.tax_total * cny_per_unit)
        return ImportAssessment(
            status="assessed" if tax_mode == "retail" else "general_trade",
            dutiable_value=dutiable_value,
            customs_duty=customs_duty,
            vat=vat,
            consumption_tax=consumption_tax,
            total=total,
            lines=lines,
            declared_tax_total=declared_tax_total,
            declared_difference=declared_tax_total - total,
        )


def deemed_taxable_income(export_revenue: Decimal) -> Decimal:
    """§8 核定征收: taxable income is 4% of export revenue, rounded half-up to 0.01."""
    with localcontext(_CONTEXT):
        return round_money(export_revenue * DEEMED_INCOME_RATE)


def quarter_of(day: date) -> str:
    """The calendar quarter a day falls in, as "2026Q4"."""
    return f"{day.year:04d}Q{(day.month - 1) // 3 + 1}"


_QUARTER = re.compile(r"(\d{4})Q([1-4])")
_QUARTER_END = {1: (3, 31), 2: (6, 30), 3: (9, 30), 4: (12, 31)}


def parse_quarter(text: str) -> tuple[date, date]:
    """"2026Q4" -> (2026-10-01, 2026-12-31), first and last day inclusive."""
    match = _QUARTER.fullmatch(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"expected a quarter such as 2026Q4 (year, 'Q', 1-4), got {text!r}")
    year, quarter = int(match.group(1)), int(match.group(2))
    end_month, end_day = _QUARTER_END[quarter]
    return date(year, 3 * quarter - 2, 1), date(year, end_month, end_day)


# --- when to act ------------------------------------------------------------------------------

# What stays standing when a cancellation races a release: the goods are gone, the tax is due.
RELEASED_STATUSES = ("assessed", "general_trade", "exempt")
# Line amounts are exact quotients; ten decimals is plenty for anyone checking the sums.
_LINE_QUANTUM = Decimal("1e-10")


def is_newer_order(held: TaxOrder | None, incoming: TaxOrder) -> bool:
    """An order event counts only when it is a later version than the one held: an older version, or the
    same one again (a redelivery, a replay), changes nothing."""
    return held is None or incoming.version > held.version


def is_current_decision(held: Verdict | None, incoming: Verdict) -> bool:
    """A decision replaces the held one unless that one is about a later order version, or the same version
    but decided later. The same decision again is current (acting on it again is harmless: `decide` sees
    the assessment already made)."""
    return held is None or (held.order_version, held.decided_at) <= (incoming.order_version, incoming.decided_at)


def cny_per_unit(case: TaxCase, currency: str, day: date, rates: FxRates) -> Decimal:
    """CNY per unit of `currency` on `day` (CNY is 1 on every day). A currency the table lacks cannot be
    taxed: `MissingRate` naming the order (the service dead-letters the event)."""
    try:
        return rates.rate_on(currency, day)[1]
    except MissingRate as err:
        raise MissingRate(f"cannot assess order {case.correlation_id}: {err}") from None


def decide(case: TaxCase, now: datetime, rates: FxRates, catalogue: Mapping[str, HsEntry]) -> Outcome:
    """What the case calls for, once its order or its decision changed (§7, §8).

    - no order yet: nothing;
    - no decision about the order's current version yet, or pending / inspection: nothing (wait). This
      holds for a cancellation too: it is the platform's request, and customs, the authority on
      `released`, answers it with a decision about the cancellation's version (README, "A cancellation
      racing a release"): `cancelled` when it came in time, the release re-published when it came too late;
    - rejected or cancelled by customs: not applicable, unless the order was already assessed, exempted or
      taxed as general trade (the goods were released: the tax stays due);
    - released (the order's version, a cancellation's included: it carries the released document): an
      import gets the §7 assessment (retail or general trade, customs' `tax_mode`), converted to CNY at the
      rate of the order's submission day (China's calendar); an export is exempt, and its revenue in CNY at
      that same day's rate is kept for §8 deemed income, in the quarter of the release.
    The outcome depends only on what is held, never on which of the order and the decision came first,
    so any interleaving of the two topics (one instance or several) ends the same.
    An assessment identical in version and status to the held one is not news: not stored nor published
    again (a repeated decision). Errors: `MissingRate`, `UnknownHsCode`, `NegativeDutiableValue`.
    """
    order, verdict, held = case.order, case.verdict, case.assessment
    if order is None:
        return NOTHING
    if verdict is None or verdict.order_version != order.version:
        return NOTHING  # wait for customs to decide on this version (a cancellation included)
    if verdict.status in ("rejected", "cancelled"):
        if held is not None and held.status in RELEASED_STATUSES:
            return NOTHING
        return _news(case, _assessment(case, "not_applicable", now))
    if verdict.status != "released":
        return NOTHING  # pending / inspection: nothing to assess yet
    if order.direction == "import":
        rate = cny_per_unit(case, order.currency, china_date(order.submitted_at), rates)
        a = assess_import(order, verdict.tax_mode or "retail", catalogue, rate)
        return _news(case, _assessment(
            case, a.status, now, dutiable_value=a.dutiable_value, customs_duty=a.customs_duty, vat=a.vat,
            consumption_tax=a.consumption_tax, total=a.total, declared_tax_total=a.declared_tax_total,
            declared_difference=a.declared_difference,
            lines=[TaxLine(item_no=line.item_no, hs_code=line.hs_code, dutiable_value=line_amount(line.dutiable_value),
                           customs_duty=line_amount(line.customs_duty),
                           consumption_tax=line_amount(line.consumption_tax), vat=line_amount(line.vat))
                   for line in a.lines]))
    revenue = ExportRevenue(
        platform_code=case.platform_code, order_no=case.order_no, ecommerce_code=order.ecommerce_code,
        quarter=quarter_of(china_date(verdict.decided_at)),
        revenue_cny=round_money(order.actual_paid * cny_per_unit(case, order.currency, china_date(order.submitted_at), rates)),
        order_version=order.version, decided_at=verdict.decided_at)
    return Outcome(_news(case, _assessment(case, "exempt", now)).assessment, revenue)


def _assessment(case: TaxCase, status: str, now: datetime, **amounts: Any) -> TaxAssessment:
    assert case.order is not None
    return TaxAssessment(platform_code=case.platform_code, order_no=case.order_no, order_version=case.order.version,
                         ecommerce_code=case.order.ecommerce_code, status=status, assessed_at=now, **amounts)


def _news(case: TaxCase, assessment: TaxAssessment) -> Outcome:
    held = case.assessment
    if held is not None and (held.order_version, held.status) == (assessment.order_version, assessment.status):
        return NOTHING  # a repeated decision: this version was already assessed this way
    return Outcome(assessment)


def line_amount(amount: Decimal) -> Decimal:
    """Exact line amounts, trimmed: whole cents as "12.30", anything finer to at most ten decimals."""
    trimmed = amount.quantize(_LINE_QUANTUM)
    cents = trimmed.quantize(CENT)
    if trimmed == cents:
        return cents
    return Decimal(format(trimmed.normalize(), "f"))
