"""Foreign-exchange rules (domain rules §11): settlement in USD and trade FX directory status. Pure: no
I/O, no clock (the caller gives the time and the rate table).

Besides the arithmetic, every decision of the service lives here, over FX's own view of an order
(`FxOrder`, built from the wire by `order_view`), of its payment (`FxPayment`) and of customs' decision
(`Verdict`): whether an event is newer than what is held (`is_newer_order`, `is_later_payment`,
`is_current_decision`), what a case calls for now (`next_step`: wait, not applicable, or settle which
amount on which day), and how a settlement moves the enterprise's year (`settle_order`, folded in order
over the settlements of one run).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, localcontext

from contracts.identifiers import order_key
from contracts.v1.events import CustomsDecision, FxDirectoryStatusChanged, FxSettled, PaymentSubmitted
from contracts.v2.events import OrderSubmittedV2
from shared.clock import china_date
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


# --- FX's view of an order ----------------------------------------------------------------------

ZERO = Decimal("0")


@dataclass(frozen=True)
class FxOrder:
    """One version of an order as FX needs it; `actual_paid` (Decimal) in the order's `currency`."""

    platform_code: str
    order_no: str
    version: int
    action: str  # new | corrected | cancelled
    ecommerce_code: str
    direction: str  # import | export
    currency: str
    actual_paid: Decimal
    submitted_at: datetime

    @property
    def key(self) -> tuple[str, str]:
        return self.platform_code, self.order_no


def order_view(submitted: OrderSubmittedV2) -> FxOrder:
    """FX's view of an order event (sw.order.submitted.v2)."""
    o = submitted.order
    return FxOrder(platform_code=o.platform.code, order_no=o.order_no, version=submitted.version,
                   action=submitted.action, ecommerce_code=o.ecommerce.code, direction=o.direction,
                   currency=o.actual_paid.currency, actual_paid=o.actual_paid.amount, submitted_at=submitted.submitted_at)


@dataclass(frozen=True)
class FxPayment:
    """The payment of an order (imports settle from it): `amount` (Decimal) in `currency`, paid at `paid_at`."""

    payment_code: str
    payment_no: str
    amount: Decimal
    currency: str
    paid_at: datetime
    submitted_at: datetime  # when the payment firm submitted it: a later submission replaces it


def payment_view(e: PaymentSubmitted) -> tuple[tuple[str, str], FxPayment]:
    """The order key and FX's view of a payment event."""
    p = e.payment
    return (p.platform_code, p.order_no), FxPayment(payment_code=p.payment_code, payment_no=p.payment_no,
                                                    amount=p.amount, currency=p.currency, paid_at=p.paid_at,
                                                    submitted_at=e.submitted_at)


@dataclass(frozen=True)
class Verdict:
    """Customs' latest decision about an order, as FX needs it."""

    order_version: int
    status: str  # pending | released | inspection | rejected | cancelled
    decided_at: datetime


def verdict_view(d: CustomsDecision) -> Verdict:
    return Verdict(order_version=d.order_version, status=d.status, decided_at=d.decided_at)


@dataclass(frozen=True)
class HeldSettlement:
    order_version: int
    status: str  # settled (final) | not_applicable


@dataclass
class FxCase:
    """What FX holds about one order: latest version, payment, customs' decision, settlement."""

    platform_code: str
    order_no: str
    order: FxOrder | None = None
    payment: FxPayment | None = None
    verdict: Verdict | None = None
    settlement: HeldSettlement | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.platform_code, self.order_no

    @property
    def correlation_id(self) -> str:
        return order_key(self.platform_code, self.order_no)


# --- when to act ------------------------------------------------------------------------------


def is_newer_order(held: FxOrder | None, incoming: FxOrder) -> bool:
    """Only a later version counts: an older one, or the same one again, changes nothing."""
    return held is None or incoming.version > held.version


def is_later_payment(held: FxPayment | None, incoming: FxPayment) -> bool:
    """Whether `incoming` becomes the order's payment (spec §7.2: FX settles the bound payment only, the one
    customs matched): the first payment binds the order; afterwards only the same payment (firm and
    payment_no) submitted again, a correction by its own firm, replaces it, unless the held one was submitted
    later (the same time again replaces). A payment of another firm or number changes nothing, so it can
    never choose the amount settled into the seller's year."""
    if held is None:
        return True
    if (held.payment_code, held.payment_no) != (incoming.payment_code, incoming.payment_no):
        return False
    return not held.submitted_at > incoming.submitted_at


def is_current_decision(held: Verdict | None, incoming: Verdict) -> bool:
    """A decision replaces the held one unless that one is about a later order version, or the same version
    but decided later."""
    return held is None or (held.order_version, held.decided_at) <= (incoming.order_version, incoming.decided_at)


@dataclass(frozen=True)
class NotApplicable:
    status = "not_applicable"


@dataclass(frozen=True)
class Settle:
    """Settle `amount` (Decimal) in `currency` at the rates of `day` (China's calendar)."""

    amount: Decimal
    currency: str
    day: date
    status = "settled"


Step = NotApplicable | Settle


def next_step(case: FxCase) -> Step | None:
    """What the case calls for, once its order, payment or decision changed (§11); None: nothing (yet).

    - no order yet, or already settled: nothing (settled once, for good: a cancellation cannot unsettle
      money that moved);
    - no decision about the order's current version, or pending / inspection: wait. A cancellation waits
      too: customs, the authority on `released`, answers it with a decision about its version
      (`cancelled`, or the release re-published when the cancellation came too late);
    - customs rejected or cancelled the current version: not applicable, unless this version is already
      not applicable;
    - released import (a cancellation's version included: it carries the released document): settle the
      payment's amount on its payment day (wait for the payment);
    - released export: settle the order's `actual_paid` on its submission day.
    The step depends only on what is held, never on which event came first, so any interleaving of the
    three topics (one instance or several) ends the same.
    """
    order, verdict, held = case.order, case.verdict, case.settlement
    if order is None or (held is not None and held.status == "settled"):
        return None
    if verdict is None or verdict.order_version != order.version:
        return None  # wait for customs to decide on this version (a cancellation included)
    if verdict.status == "released":
        if order.direction == "export":
            return Settle(order.actual_paid, order.currency, china_date(order.submitted_at))
        if case.payment is None:
            return None  # settled from the payment: wait for it
        return Settle(case.payment.amount, case.payment.currency, china_date(case.payment.paid_at))
    if verdict.status not in ("rejected", "cancelled"):
        return None  # pending / inspection: nothing to settle yet
    if held is not None and (held.order_version, held.status) == (order.version, "not_applicable"):
        return None
    return NotApplicable()


def not_applicable(order: FxOrder, now: datetime) -> FxSettled:
    return FxSettled(platform_code=order.platform_code, order_no=order.order_no, ecommerce_code=order.ecommerce_code,
                     status="not_applicable", settled_at=now)


@dataclass(frozen=True)
class EnterpriseYear:
    """An ecommerce enterprise's settled USD (Decimal, 0.01) in a calendar year, how many settlements, the
    directory status last published, and whether it is registered in the directory."""

    code: str
    year: int
    year_to_date_usd: Decimal
    settlements: int
    directory_status: str
    registered: bool
    revision: int = 0  # every change of the year counts one (a settlement, a registration)

    @property
    def key(self) -> tuple[str, int]:
        return self.code, self.year


# A year's revisions stay below this, so (year, revision) packs into one integer that orders by year first.
REVISIONS_PER_YEAR = 10**9


def enterprise_revision(year: EnterpriseYear) -> int:
    """The `enterprise_revision` FX's events about the enterprise carry (contracts.v1.events): greater is
    later. FX counts changes per enterprise-year (the row it locks), so the year leads: year * 10^9 +
    the year's revision. A later year's state is the later state."""
    return year.year * REVISIONS_PER_YEAR + year.revision


def new_year(code: str, year: int, registered: bool) -> EnterpriseYear:
    """A year nothing was settled in yet."""
    return EnterpriseYear(code, year, ZERO, 0, directory_status(ZERO, registered), registered)


def settle_order(order: FxOrder, s: Settlement, before: EnterpriseYear, now: datetime
                 ) -> tuple[FxSettled, EnterpriseYear, FxDirectoryStatusChanged | None]:
    """§11: the order's settlement, the enterprise's year after it, and the directory status change it
    makes news of (None when none). Fold it in order over a run's settlements of one enterprise-year.

    The published status, not only the arithmetic, decides whether a change is news: a registration
    recorded meanwhile already told everyone."""
    after = before.year_to_date_usd + s.amount_usd
    status = directory_status(after, before.registered)
    year = replace(before, year_to_date_usd=after, settlements=before.settlements + 1, directory_status=status,
                   revision=before.revision + 1)
    settled = FxSettled(
        platform_code=order.platform_code, order_no=order.order_no, ecommerce_code=order.ecommerce_code,
        status="settled", amount=s.amount, currency=s.currency,
        amount_cny=s.amount_cny.quantize(CENT, rounding=ROUND_HALF_UP), rate=s.usd_rate,
        rate_date=s.rate_date.isoformat(), amount_usd=s.amount_usd, year=before.year, year_to_date_usd=after,
        directory_status=status, settled_at=now, enterprise_revision=enterprise_revision(year))
    change = directory_status_change(before.year_to_date_usd, after, before.registered)
    news = None
    if change is not None and change[1] != before.directory_status:
        news = FxDirectoryStatusChanged(enterprise_code=before.code, year=before.year, status=change[1],
                                        previous_status=before.directory_status, year_to_date_usd=after, changed_at=now,
                                        enterprise_revision=enterprise_revision(year))
    return settled, year, news
