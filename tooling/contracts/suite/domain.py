"""What the domain rules (`../shared/domain/rules.md`) say an agency must answer, computed here from the
rules' text and the reference tables alone.

The suite never imports an agency's own rules to build its expectations: an agency that got a rule wrong
would then make its own (wrong) expectation, and pass. Where the domain gives a worked example, the golden
scenarios use its figures as written; what is here covers the rest (FX amounts depend on the day's rate,
credit scores on the sequence of events)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

from shared.reference import FxRates

CENT = Decimal("0.01")
# Days (the rate of the day, the calendar year) are China's; China has no daylight saving.
CHINA = timezone(timedelta(hours=8))
_EXACT = Context(prec=60)


def money(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def china_day(at: datetime) -> date:
    return at.astimezone(CHINA).date()


# --- §5 limits and §7 dutiable value ---------------------------------------------------------------

SINGLE_LIMIT_CNY = Decimal("5000")


def dutiable_value(goods: Decimal, freight: Decimal, insurance: Decimal, discount: Decimal) -> Decimal:
    """§7: the actual transaction price, goods + freight + insurance - discount."""
    return goods + freight + insurance - discount


# --- §9 credit -------------------------------------------------------------------------------------

STARTING_SCORE = {"advanced": Decimal("110"), "general": Decimal("100"), "untrustworthy": Decimal("50")}
SCORE_CAP = {"advanced": Decimal("120"), "general": Decimal("110"), "untrustworthy": Decimal("110")}
MISMATCH_PENALTY = Decimal("-5")  # AMOUNT_MISMATCH, IDENTITY_MISMATCH or ORDER_MISMATCH
PROHIBITED_GOODS_PENALTY = Decimal("-20")
RELEASE_REWARD = Decimal("0.1")  # released without any finding
EXCEPTION_PENALTY = Decimal("-2")  # a waybill `exception` event, to the logistics enterprise


def grade(score: Decimal) -> str:
    """§9: A >= 90, B >= 75, C >= 60, D below."""
    if score >= 90:
        return "A"
    if score >= 75:
        return "B"
    if score >= 60:
        return "C"
    return "D"


def scored(score: Decimal, delta: Decimal, customs_credit: str) -> Decimal:
    """The score after `delta`; a reward stops at the category's cap (§9)."""
    after = score + delta
    return min(after, SCORE_CAP[customs_credit]) if delta > 0 else after


# --- §11 foreign exchange --------------------------------------------------------------------------

DIRECTORY_THRESHOLD_USD = Decimal("200000")


@dataclass(frozen=True)
class Settlement:
    amount: Decimal
    currency: str
    amount_cny: Decimal  # rounded to the cent, as it travels
    rate: Decimal  # CNY per USD
    rate_date: date
    amount_usd: Decimal


def settlement(amount: Decimal, currency: str, day: date, rates: FxRates) -> Settlement:
    """§11: `amount_usd = amount_cny / usd_rate`, rounded half-up to 0.01, at the rates of `day` (the
    latest row on or before it)."""
    with localcontext(_EXACT):
        _, cny_per_unit = rates.rate_on(currency, day)
        amount_cny = amount * cny_per_unit
        rate_date, usd_rate = rates.rate_on("USD", day)
        return Settlement(amount, currency, money(amount_cny), usd_rate, rate_date, money(amount_cny / usd_rate))


def directory_status(year_to_date_usd: Decimal) -> str:
    """§11: below USD 200,000 a year no registration is needed; reaching it requires one."""
    return "registration_required" if year_to_date_usd >= DIRECTORY_THRESHOLD_USD else "exempt"
