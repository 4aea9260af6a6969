"""Foreign-exchange rules (domain rules §11): settlement in USD and trade FX directory status. Pure."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, localcontext

from shared.reference import FxRates

CENT = Decimal("0.01")

# §11: small and micro firms below USD 200,000 a year need no directory registration (名录登记).
DIRECTORY_THRESHOLD_USD = Decimal("200000")

# The USD amount is a quotient; compute it with far more digits than it needs, whatever context the
# caller has set, so the one rounding that §11 asks for is the only one.
_CONTEXT = Context(prec=60, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class Settlement:
    amount: Decimal  # as paid, in `currency`
    currency: str
    amount_cny: Decimal  # exact: amount x CNY per unit, not rounded (format it to 0.01 on the wire)
    usd_rate: Decimal  # CNY per USD on `rate_date`
    rate_date: date  # the day of the USD row used (the latest on or before the settlement day)
    amount_usd: Decimal  # amount_cny / usd_rate, half-up to 0.01


def settle(amount: Decimal, currency: str, day: date, rates: FxRates) -> Settlement:
    """§11: convert a settled amount to CNY at its currency's rate, then to USD at the USD rate.

    Going through CNY (rather than a cross rate) is how the table is quoted: CNY per unit. A currency with
    no row on or before `day` raises `MissingRate`, which the service dead-letters.
    """
    with localcontext(_CONTEXT):
        _, cny_per_unit = rates.rate_on(currency, day)
        amount_cny = amount * cny_per_unit
        rate_date, usd_rate = rates.rate_on("USD", day)
        amount_usd = (amount_cny / usd_rate).quantize(CENT, rounding=ROUND_HALF_UP)
    return Settlement(
        amount=amount,
        currency=currency,
        amount_cny=amount_cny,
        usd_rate=usd_rate,
        rate_date=rate_date,
        amount_usd=amount_usd,
    )


def directory_status(year_to_date_usd: Decimal, registered: bool) -> str:
    """"registered" once the operator recorded it; otherwise reaching USD 200,000 requires registration."""
    if registered:
        return "registered"
    # "Below 200,000" is exempt, so reaching exactly 200,000 already requires registration.
    return "registration_required" if year_to_date_usd >= DIRECTORY_THRESHOLD_USD else "exempt"


def directory_status_change(before_usd: Decimal, after_usd: Decimal, registered: bool) -> tuple[str, str] | None:
    """(previous, new) status when a settlement moves the year total across the threshold, else None."""
    previous = directory_status(before_usd, registered)
    new = directory_status(after_usd, registered)
    return None if previous == new else (previous, new)
