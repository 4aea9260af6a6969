"""Tax rules (domain rules §7 import tax, §8 export deemed income). Pure: no I/O, no clock.

All money is `Decimal`. Intermediate amounts stay unrounded; only the per-order sums are rounded
half-up to 0.01, because §7 rounds the summed taxes, not each line's.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, localcontext

from contracts.v1.events import Order
from shared.reference import HsEntry

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


def line_dutiable_values(order: Order) -> list[Decimal]:
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
    order: Order,
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
