"""Customs domain rules (domain rules §4, §5, §6, §10, §12): three-document match, goods lists,
limits, inspection selection and consolidated export declarations.

Everything here is a pure function of its arguments: no I/O, no clock, no randomness. The service
around it loads documents, parties, reference tables and the buyer's year total, passes the current
time in, and publishes what these functions decide. That keeps every decision replayable and testable.

Money is `Decimal` throughout; CNY amounts that leave this module are rounded half-up to the cent
because that is what `Money` on the wire can carry.

Full identity numbers reach these rules unsealed, but no message produced here ever contains one:
reasons travel to every agency and the platform, so they only ever show the masked number, and never a
buyer's or payer's name (an inspector's note is cleaned of both before it is published).
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from contracts.identifiers import redact
from contracts.v1.events import (
    ExportDeclarationLine,
    LegalQuantitiesIssue,
    LegalQuantityTotal,
    Order,
    Payment,
    Reason,
    ReasonCode,
    Waybill,
)
from shared.reference import FxRates, HsEntry, MissingRate

SINGLE_LIMIT_CNY = Decimal("5000")
ANNUAL_LIMIT_CNY = Decimal("26000")

CENT = Decimal("0.01")
ZERO = Decimal("0")
# Lines per consolidated-declaration event (ExportDeclarationsConsolidated): a line is at most about 250
# bytes of JSON, so a part stays near 125 KiB, far below the broker's 1 MiB message limit.
DECLARATION_LINES_PER_EVENT = 500

CUSTOMS_CREDITS = frozenset({"advanced", "general", "untrustworthy"})
GRADES = frozenset({"A", "B", "C", "D"})

# The order in which documents are named when some are missing: the order of the business flow,
# so the list reads the same whatever order the documents actually arrived in.
DOCUMENT_KINDS = ("order", "payment", "waybill")


@dataclass(frozen=True)
class Party:
    """Customs' own copy of a registered enterprise, kept from registration and credit events."""

    code: str
    roles: frozenset[str]
    customs_credit: str  # advanced | general | untrustworthy
    grade: str | None = None  # A-D once the credit service has rated the enterprise
    negative_listed: bool = False


@dataclass(frozen=True)
class Documents:
    """What customs holds for one (platform_code, order_no)."""

    order: Order | None
    payment: Payment | None
    waybill: Waybill | None
    # Full numbers, unsealed by customs before calling the rules; never put into a message.
    buyer_id_number: str | None = None
    payer_id_number: str | None = None


@dataclass(frozen=True)
class Verdict:
    status: str  # released | inspection | rejected (spec §4.4)
    channel: str | None  # green | red; None when rejected
    reasons: list[Reason]
    tax_mode: str | None  # retail | general_trade for released/inspection imports, else None
    dutiable_value_cny: Decimal | None  # imports only, rejected ones included; None for exports
    quota_cny: Decimal  # what this order takes from the buyer's annual total (0 for exports, rejections)


@dataclass(frozen=True)
class ReleasedExportLine:
    """One line of a released 9610 export, as kept for the monthly consolidation."""

    ecommerce_code: str
    hs_code: str
    destination_country: str
    currency: str
    quantity: Decimal
    value: Decimal
    order_key: str
    # The line's legal quantities as (quantity, unit), first legal unit then second (spec §7.5); () when the
    # order did not give them (REST orders may omit them; orders before 1.1 never had them).
    legal_quantities: tuple[tuple[Decimal, str], ...] = ()


# --- helpers ---------------------------------------------------------------------------------


def _money(amount: Decimal) -> str:
    return str(amount.quantize(CENT, rounding=ROUND_HALF_UP))


def _reason(code: ReasonCode, details: list[str]) -> list[Reason]:
    # One Reason per code, every failing detail in its message: consumers (credit penalties,
    # statistics) may count codes, and one order must not be penalised twice for one kind of fault.
    return [Reason(code=code, message="; ".join(details))] if details else []


def is_export(order: Order) -> bool:
    # 9610 retail exports, 9710 and 9810 all carry direction "export"; the trade mode adds nothing here.
    return order.direction == "export"


def is_single_indivisible_item(order: Order) -> bool:
    return len(order.items) == 1 and order.items[0].quantity == 1


# --- §4 documents ----------------------------------------------------------------------------


def required_documents(order: Order | None) -> tuple[str, ...]:
    """The documents customs needs before it decides. Until the order is there its direction is
    unknown, so the stricter import set applies: the parcel is incomplete either way."""
    if order is not None and is_export(order):
        return ("order", "waybill")
    return DOCUMENT_KINDS


def missing_documents(docs: Documents) -> list[str]:
    present = {"order": docs.order, "payment": docs.payment, "waybill": docs.waybill}
    return [kind for kind in required_documents(docs.order) if present[kind] is None]


def _order_mismatches(order: Order, docs: Documents, export: bool) -> list[str]:
    details = []
    others: list[tuple[str, Payment | Waybill | None]] = [("waybill", docs.waybill)]
    if not export:
        others.insert(0, ("payment", docs.payment))
    for kind, doc in others:
        if doc is None:
            continue
        if (doc.platform_code, doc.order_no) != (order.platform_code, order.order_no):
            details.append(
                f"{kind} names order {doc.platform_code}:{doc.order_no}, not {order.platform_code}:{order.order_no}"
            )
        details.extend(_named_firm_mismatches(order, kind, doc))
    return details


def _named_firm_mismatches(order: Order, kind: str, doc: Payment | Waybill) -> list[str]:
    """Spec §7.2: an order that names its payment firm (and transaction) or logistics firm matches only
    their documents (the gateway refuses the others; this is the same rule, held by customs too)."""
    if isinstance(doc, Payment):
        named = [(order.payment_code, doc.payment_code, "firm"), (order.payment_transaction_id, doc.payment_no, "transaction")]
    else:
        named = [(order.logistics_code, doc.logistics_code, "firm")]
    return [f"{kind} {what} {actual} is not the {kind} {what} the order names ({wanted})"
            for wanted, actual, what in named if wanted is not None and wanted != actual]


def _amount_mismatches(order: Order, docs: Documents, export: bool) -> list[str]:
    details = []
    payment = docs.payment
    # Amount and currency together: 447.50 USD is not 447.50 CNY, and no conversion is fair here
    # because the buyer paid exactly one amount in exactly one currency.
    if not export and payment is not None and (payment.amount, payment.currency) != (
        order.actual_paid,
        order.currency,
    ):
        details.append(
            f"payment amount {_money(payment.amount)} {payment.currency} differs from "
            f"actual_paid {_money(order.actual_paid)} {order.currency}"
        )
    waybill = docs.waybill
    if waybill is not None and waybill.freight != order.freight:
        details.append(
            f"waybill freight {_money(waybill.freight)} differs from order freight "
            f"{_money(order.freight)} {order.currency}"
        )
    return details


def _identity_mismatches(order: Order, docs: Documents) -> list[str]:
    payment = docs.payment
    if payment is None:
        return []
    buyer, payer = order.buyer, payment.payer
    if buyer is None:
        return ["the order names no buyer to compare the payer with"]
    details = []
    # The resident-id checksum is the gateway's job (it refuses invalid numbers with 422); here we
    # only compare. A number that customs could not unseal cannot be shown to match, so it fails.
    if docs.buyer_id_number is None or docs.payer_id_number is None:
        details.append("buyer or payer identity number not available to customs for comparison")
    elif docs.payer_id_number.upper() != docs.buyer_id_number.upper():
        details.append(
            f"payer id number {payer.id_number_masked} differs from buyer id number {buyer.id_number_masked}"
        )
    if payer.name != buyer.name:
        # The names themselves stay out: reasons travel on customs.decision.v1 to every agency and the
        # platform (spec §6, §7.2), and the platform already knows whom it sold to.
        details.append("payer name differs from buyer name")
    return details


def named_parties(docs: Documents) -> list[tuple[str, str]]:
    """(role, enterprise code) for every party the documents name in that role. Exports need no
    payment, so a payment document held for one names no party of the order."""
    order = docs.order
    if order is None:
        return []
    parties = [("platform", order.platform_code), ("ecommerce", order.ecommerce_code)]
    if docs.payment is not None and not is_export(order):
        parties.append(("payment", docs.payment.payment_code))
    if docs.waybill is not None:
        parties.append(("logistics", docs.waybill.logistics_code))
    return parties


def _unregistered_parties(docs: Documents, parties: Mapping[str, Party]) -> list[str]:
    details = []
    for role, code in named_parties(docs):
        party = parties.get(code)
        if party is None:
            details.append(f"{role} {code} is not registered")
        elif role not in party.roles:
            details.append(f"{role} {code} is not registered with the role {role}")
    return details


def three_document_match(docs: Documents, parties: Mapping[str, Party]) -> list[Reason]:
    """Domain §4 (三单对碰). Every failing check is reported. Checks needing a document that has not
    arrived are skipped (`missing_documents` says what is missing); for exports the payment checks
    are skipped, since exports need only the order and the waybill."""
    order = docs.order
    if order is None:
        return []
    export = is_export(order)
    return [
        *_reason("ORDER_MISMATCH", _order_mismatches(order, docs, export)),
        *_reason("AMOUNT_MISMATCH", _amount_mismatches(order, docs, export)),
        *_reason("IDENTITY_MISMATCH", [] if export else _identity_mismatches(order, docs)),
        *_reason("PARTY_NOT_REGISTERED", _unregistered_parties(docs, parties)),
    ]


def negative_list_findings(docs: Documents, parties: Mapping[str, Party]) -> list[Reason]:
    """Domain §9: every order naming a negative-listed enterprise, in any role, is rejected."""
    details = []
    for role, code in named_parties(docs):
        party = parties.get(code)
        if party is not None and party.negative_listed:
            details.append(f"{role} {code} is on the negative list")
    return _reason("PARTY_ON_NEGATIVE_LIST", details)


# --- §6 goods lists --------------------------------------------------------------------------


def goods_findings(order: Order, catalogue: Mapping[str, HsEntry]) -> list[Reason]:
    """Domain §6. A prohibited import line is reported as prohibited only, not also as off the
    positive list: the stronger finding says everything the weaker one would."""
    prohibited, off_list = [], []
    for index, item in enumerate(order.items):
        entry = catalogue.get(item.hs_code)
        label = f"items[{index}] {item.hs_code}"
        if entry is not None and entry.prohibited:
            prohibited.append(f"{label} ({entry.description}) is prohibited")
        elif is_export(order):
            continue
        elif entry is None:
            off_list.append(f"{label} is not in the HS catalogue, so not on the positive list")
        elif not entry.positive_list:
            off_list.append(f"{label} ({entry.description}) is not on the retail-import positive list")
    return [*_reason("PROHIBITED_GOODS", prohibited), *_reason("NOT_ON_POSITIVE_LIST", off_list)]


# --- §5 limits -------------------------------------------------------------------------------


def dutiable_value(order: Order) -> Decimal:
    """Goods + freight + insurance - discount (完税价格), exact, in the order's currency."""
    return order.goods_value + order.freight + order.insurance - order.discount


def dutiable_value_cny(order: Order, rates: FxRates, day: date) -> Decimal:
    """The dutiable value in CNY at `day`'s rate, rounded half-up to the cent: the limits are in
    whole cents of RMB, and this is the figure customs reports and charges to the annual quota.
    Raises `MissingRate` when there is no rate for the currency on or before `day`."""
    return rates.to_cny(dutiable_value(order), order.currency, day).quantize(CENT, rounding=ROUND_HALF_UP)


def single_limit(order: Order, dutiable_cny: Decimal) -> tuple[str | None, list[Reason]]:
    """(tax mode, findings) under the single-transaction limit. Exports have no limit: (None, [])."""
    if is_export(order):
        return None, []
    if dutiable_cny <= SINGLE_LIMIT_CNY:
        return "retail", []
    if is_single_indivisible_item(order):
        return "general_trade", []
    return None, _reason(
        "OVER_SINGLE_LIMIT",
        [
            f"dutiable value {_money(dutiable_cny)} CNY exceeds the single-transaction limit "
            f"{_money(SINGLE_LIMIT_CNY)} CNY and the order is not a single indivisible item"
        ],
    )


def exceeds_annual_limit(year_total_before: Decimal, amount: Decimal) -> bool:
    return year_total_before + amount > ANNUAL_LIMIT_CNY


# --- §10 inspection --------------------------------------------------------------------------


def inspection_rate(customs_credit: str, grade: str | None, base: Decimal) -> Decimal:
    """The ecommerce enterprise's inspection rate (domain §10).

    - `untrustworthy`, or grade D: 1, whatever else holds.
    - grade C: 4 x base, also for an `advanced` enterprise: the domain gives no combined rate, and a
      falling credit score is newer evidence than the category given at registration, so the worse
      of the two applies.
    - `advanced` with grade A, B or not yet rated: 0.2 x base (the category beats a good grade).
    - `general` with grade A, B or not yet rated: base.

    Capped at 1, since it is a probability (4 x base exceeds 1 only for a base above 0.25).
    """
    if customs_credit not in CUSTOMS_CREDITS:
        raise ValueError(f"unknown customs credit category {customs_credit!r}")
    if grade is not None and grade not in GRADES:
        raise ValueError(f"unknown credit grade {grade!r}")
    if customs_credit == "untrustworthy" or grade == "D":
        rate = Decimal("1")
    elif grade == "C":
        rate = 4 * base
    elif customs_credit == "advanced":
        rate = Decimal("0.2") * base
    else:
        rate = base
    return min(rate, Decimal("1"))


def selection_fraction(platform_code: str, order_no: str, salt: str) -> Fraction:
    """The parcel's point in [0, 1): the sha256 of its key and the salt, read as a binary fraction.
    Deterministic, so a replayed or redelivered decision selects the same parcels."""
    digest = hashlib.sha256(f"{platform_code}:{order_no}:{salt}".encode()).hexdigest()
    return Fraction(int(digest, 16), 2**256)


def selected_for_inspection(platform_code: str, order_no: str, salt: str, rate: Decimal) -> bool:
    # Compared as exact fractions: a float would blur the edges of rate 0 and rate 1.
    return selection_fraction(platform_code, order_no, salt) < Fraction(rate)


# --- document timeout ------------------------------------------------------------------------


def document_timed_out(first_arrival_at: datetime, now: datetime, timeout_hours: Decimal | float) -> bool:
    """True once `timeout_hours` have passed since the first document arrived (the boundary itself
    counts as timed out). A float is read through its shortest decimal form, so 0.1 means 0.1."""
    hours = timeout_hours if isinstance(timeout_hours, Decimal) else Decimal(str(timeout_hours))
    elapsed = now - first_arrival_at
    elapsed_us = (elapsed.days * 86_400 + elapsed.seconds) * 1_000_000 + elapsed.microseconds
    return Decimal(elapsed_us) >= hours * 3_600 * 1_000_000


# --- the decision ----------------------------------------------------------------------------


def decide(
    docs: Documents,
    parties: Mapping[str, Party],
    catalogue: Mapping[str, HsEntry],
    rates: FxRates,
    day: date,
    year_total_before: Decimal,
    base_rate: Decimal,
    salt: str,
) -> Verdict:
    """Customs' decision on a parcel whose documents are all present.

    `day` is the day the rate for non-CNY orders is taken from; `year_total_before` is the buyer's
    released and inspection total this year, not counting this order. Raises `ValueError` when a
    required document is missing and `MissingRate` when an import's currency has no rate.
    """
    missing = missing_documents(docs)
    if missing:
        raise ValueError(f"cannot decide with documents missing: {', '.join(missing)}")
    order = docs.order
    assert order is not None  # missing_documents guarantees it; this tells the type checker
    export = is_export(order)

    findings = [
        *three_document_match(docs, parties),
        *negative_list_findings(docs, parties),
        *goods_findings(order, catalogue),
    ]

    tax_mode: str | None = None
    value_cny: Decimal | None = None
    if not export:
        value_cny = dutiable_value_cny(order, rates, day)
        tax_mode, over_single = single_limit(order, value_cny)
        findings += over_single
        # Only a parcel that would otherwise pass is held against the buyer's year: an order rejected
        # anyway takes nothing from the quota, and telling the buyer about it would mislead.
        if not findings and exceeds_annual_limit(year_total_before, value_cny):
            findings += _reason(
                "OVER_ANNUAL_LIMIT",
                [
                    f"dutiable value {_money(value_cny)} CNY would take the buyer's year total from "
                    f"{_money(year_total_before)} to {_money(year_total_before + value_cny)} CNY, "
                    f"above the annual limit {_money(ANNUAL_LIMIT_CNY)} CNY"
                ],
            )

    if findings:
        return Verdict("rejected", None, findings, None, value_cny, ZERO)

    quota = ZERO if export else value_cny
    assert quota is not None
    ecommerce = parties.get(order.ecommerce_code)
    # Unreachable in practice (an unregistered ecommerce enterprise is a finding above), but an
    # enterprise customs knows nothing about gets the strictest treatment, not the base rate.
    rate = Decimal("1") if ecommerce is None else inspection_rate(ecommerce.customs_credit, ecommerce.grade, base_rate)
    if selected_for_inspection(order.platform_code, order.order_no, salt, rate):
        reason = Reason(
            code="SELECTED_FOR_INSPECTION",
            message=f"selected for inspection at rate {rate.normalize():f} "
            f"(ecommerce {order.ecommerce_code}: {ecommerce.customs_credit if ecommerce else 'unknown'}, "
            f"grade {ecommerce.grade if ecommerce and ecommerce.grade else 'not rated'})",
        )
        return Verdict("inspection", "red", [reason], tax_mode, value_cny, quota)
    return Verdict("released", "green", [], tax_mode, value_cny, quota)


# --- when to act ----------------------------------------------------------------------------
# The choices the domain leaves open (see services/customs/handlers.py), as decisions on plain values
# the service reads off its file: what an arriving document or a passing sweep does to the file.


def order_event_action(held_version: int, status: str, version: int, action: str, order_came_too_late: bool) -> str:
    """What an order event (`version`, `action`: new | corrected | cancelled) does to the file holding
    `held_version` (0: no order yet) with `status` (domain §4; spec §4.4):

    - "ignore": the version is not newer than the one held (a redelivery or an overtaken event);
    - "republish_release": the file is released, which is final: the release is published again under
      the new version so every reader sees the correction or cancellation came too late;
    - "ignore_cancelled": a change to a cancelled order;
    - "cancel": the order is cancelled (its quota and waits given back);
    - "reject_late": the order arrives after its file timed out without it (`order_came_too_late`): it
      is rejected at once with that DOCUMENT_TIMEOUT;
    - "reopen": the file is reopened on this version and decided if its documents are complete."""
    if version <= held_version:
        return "ignore"
    if status == "released":
        return "republish_release"
    if status == "cancelled":
        return "ignore_cancelled"
    if action == "cancelled":
        return "cancel"
    if order_came_too_late:
        return "reject_late"
    return "reopen"


def second_document_action(held: tuple[str, str] | None, arriving: tuple[str, str], changed: bool = False,
                           status: str = "pending") -> str:
    """A payment (payment_code, payment_no) or waybill (logistics_code, waybill_no) arriving for a file
    that holds `held` of its kind: "accept" when none is held; for the one held, "correct" when its content
    `changed` and the file is still `pending` (spec §7.2: its firm corrects it, under the same business key,
    before customs decided), "keep_correction" when it changed on a file customs already decided but did
    not release (inspection, rejected: the correction is kept for the next decision, which a correction of
    the order triggers), "same" otherwise (nothing changes); "ignore_other" when another one is held (the
    first one binds, as at the gateway)."""
    if held is None:
        return "accept"
    if held != arriving:
        return "ignore_other"
    if not changed or status in ("released", "cancelled"):
        return "same"
    return "correct" if status == "pending" else "keep_correction"


def ready_to_decide(docs: Documents, status: str, order_version: int, decided_version: int | None) -> bool:
    """True when the file's current order version is still undecided (pending, `decided_version` not
    `order_version`) and every document it needs is there (domain §4)."""
    return (docs.order is not None and status == "pending" and decided_version != order_version
            and not missing_documents(docs))


def waits_for_registration(unregistered: list[str], force: bool) -> bool:
    """A complete file naming enterprises whose registration has not arrived waits for it (the
    registration travels on another topic), unless `force`: it has waited DOCUMENT_TIMEOUT_HOURS, and is
    then decided (and rejected PARTY_NOT_REGISTERED)."""
    return bool(unregistered) and not force


def timeout_action(docs: Documents, first_document_at: datetime, now: datetime, timeout_hours: Decimal) -> str | None:
    """What the sweep does to a pending file (not waiting for a registration, not blocked):
    "decide" when its documents are complete but it was never decided; "reject" when documents are still
    missing `timeout_hours` after the first arrived and the order is there; "mark_timed_out" when the
    order itself never came (nothing to decide or publish); None while there is time left."""
    if not missing_documents(docs):
        return "decide"
    if not document_timed_out(first_document_at, now, timeout_hours):
        return None
    return "reject" if docs.order is not None else "mark_timed_out"


def timeout_reason(missing: list[str], first_document_at: datetime, timeout_hours: Decimal) -> Reason:
    """The DOCUMENT_TIMEOUT reason naming what is missing and since when."""
    return Reason(code="DOCUMENT_TIMEOUT", message=(
        f"{', '.join(missing)} still missing {timeout_hours.normalize():f} hours after the first document "
        f"arrived ({first_document_at.isoformat()})"))


def dutiable_value_or_none(order: Order, rates: FxRates, day: date) -> Decimal | None:
    """The dutiable value in CNY reported with a timeout rejection: None for exports or without a rate."""
    if is_export(order):
        return None
    try:
        return dutiable_value_cny(order, rates, day)
    except MissingRate:
        return None


def declares_export_lines(direction: str | None, trade_mode: str | None, status: str) -> bool:
    """A released 9610 export is declared parcel by parcel and consolidated by month (domain §12)."""
    return direction == "export" and trade_mode == "9610" and status == "released"


def inspection_outcome(reasons: list[Reason], passed: bool, note: str,
                       names: Iterable[str | None] = (), id_numbers: Iterable[str | None] = (),
                       ) -> tuple[str, str | None, list[Reason]]:
    """(status, channel, reasons) after an inspector's result on a parcel held for inspection (domain
    §10): passed → released through the red channel, the selection staying on record; failed → rejected,
    the finding staying SELECTED_FOR_INSPECTION (no other code says "the inspector found a fault") with
    what the inspector wrote added to its message. The note is free text published to every agency, so
    the `names` and full `id_numbers` of the order's people are taken out of it first (spec §7.2)."""
    if passed:
        return "released", "red", list(reasons)
    note = redact(note, names, id_numbers) if note else note
    failed = f"inspection failed: {note}" if note else "inspection failed"
    if any(r.code == "SELECTED_FOR_INSPECTION" for r in reasons):
        reasons = [Reason(code=r.code, message=f"{r.message}; {failed}") if r.code == "SELECTED_FOR_INSPECTION"
                   else r for r in reasons]
    else:
        reasons = [*reasons, Reason(code="SELECTED_FOR_INSPECTION", message=failed)]
    return "rejected", None, reasons


# --- §12 consolidated export declarations ----------------------------------------------------


def declaration_parts(lines: list[ExportDeclarationLine], per_part: int = DECLARATION_LINES_PER_EVENT
                      ) -> dict[str, list[list[ExportDeclarationLine]]]:
    """The consolidated lines of a month, by ecommerce enterprise, cut into parts of at most `per_part`
    lines (in the consolidation's order), one event each: an enterprise exporting many HS codes to many
    countries must not make one event larger than the broker accepts. Enterprises in code order; every
    enterprise with lines has at least one part."""
    by_enterprise: dict[str, list[ExportDeclarationLine]] = {}
    for line in lines:
        by_enterprise.setdefault(line.ecommerce_code, []).append(line)
    return {code: [own[i:i + per_part] for i in range(0, len(own), per_part)]
            for code, own in sorted(by_enterprise.items())}


def consolidate_export_declarations(lines: Iterable[ReleasedExportLine]) -> list[ExportDeclarationLine]:
    """One declaration line per (ecommerce enterprise, HS code, destination, currency) (汇总申报),
    sorted by that key. A parcel with several lines of one code counts once in `parcel_count`.
    Values are summed exactly and rounded half-up to the cent once, at the end.

    Legal quantities (法定数量, spec §7.5) are summed per (position, unit) over the lines that gave them,
    exactly (no rounding: five decimals in, five out), see `legal_quantity_totals`."""
    groups: dict[tuple[str, str, str, str], list[ReleasedExportLine]] = {}
    for line in lines:
        key = (line.ecommerce_code, line.hs_code, line.destination_country, line.currency)
        groups.setdefault(key, []).append(line)
    declarations = []
    for (ecommerce_code, hs_code, destination, currency), own in sorted(groups.items()):
        totals, status, issues, note = legal_quantity_totals(own)
        declarations.append(ExportDeclarationLine(
            ecommerce_code=ecommerce_code,
            hs_code=hs_code,
            destination_country=destination,
            currency=currency,
            quantity=sum((line.quantity for line in own), ZERO),
            value=sum((line.value for line in own), ZERO).quantize(CENT, rounding=ROUND_HALF_UP),
            parcel_count=len({line.order_key for line in own}),
            legal_quantities=totals,
            legal_quantities_status=status,
            legal_quantities_issues=issues,
            legal_quantities_note=note,
        ))
    return declarations


_POSITION_NAMES = {1: "first", 2: "second"}


def legal_quantity_totals(lines: list[ReleasedExportLine]
                          ) -> tuple[list[LegalQuantityTotal], str, list[LegalQuantitiesIssue], str | None]:
    """The legal quantities of one declaration group's lines: (totals, status, issues, note).

    `totals`: one LegalQuantityTotal per (position, unit) that some line gave, sorted by position then
    unit: the exact sum of those lines' quantities and how many parcels they come from. Quantities in two
    units are never added together.
    `status`: "none" when no line gave legal quantities (totals empty); "complete" when every line gave
    them, each position in a single unit, and the second one on every line or on none: the totals are
    then the declaration's 法定第一/第二数量; otherwise "incomplete", with `issues` (in this order):
    LEGAL_QUANTITIES_MISSING (some lines gave none), SECOND_LEGAL_QUANTITY_MISSING (some gave a second
    legal quantity, others only a first), LEGAL_UNITS_DIFFER (one position in several units); `note` says
    the same in words with parcel counts (None when complete or none). The totals of an incomplete group
    cover only the lines that gave them: a declarant must complete or split the line, not file them as is.

    Example: parcels A (2 kg) and B (3.5 kg) → [(1, kg, 5.5, 2 parcels)], complete; add parcel C without
    legal quantities → the same total, incomplete, LEGAL_QUANTITIES_MISSING "1 of 3 parcels ..."."""
    sums: dict[tuple[int, str], tuple[Decimal, set[str]]] = {}
    parcels: set[str] = set()
    without: set[str] = set()
    first_only: set[str] = set()
    with_second: set[str] = set()
    for line in lines:
        parcels.add(line.order_key)
        given = len(line.legal_quantities)
        (without if given == 0 else first_only if given == 1 else with_second).add(line.order_key)
        for position, (quantity, unit) in enumerate(line.legal_quantities, start=1):
            total, own = sums.get((position, unit), (ZERO, set()))
            own.add(line.order_key)
            sums[(position, unit)] = (total + quantity, own)
    totals = [LegalQuantityTotal(position=position, unit=unit, quantity=total, parcel_count=len(own))
              for (position, unit), (total, own) in sorted(sums.items())]
    if not totals:
        return [], "none", [], None
    issues: list[LegalQuantitiesIssue] = []
    notes: list[str] = []
    if without:
        issues.append("LEGAL_QUANTITIES_MISSING")
        notes.append(f"{len(without)} of {len(parcels)} parcels have lines without legal quantities; "
                     "the totals cover the other lines only")
    if first_only and with_second:
        issues.append("SECOND_LEGAL_QUANTITY_MISSING")
        notes.append(f"{len(first_only)} of {len(parcels)} parcels have lines with a first legal quantity "
                     f"but no second, while {len(with_second)} give both")
    differing = []
    for position in (1, 2):
        units = [(unit, len(own)) for (p, unit), (_, own) in sorted(sums.items()) if p == position]
        if len(units) > 1:
            differing.append(f"the {_POSITION_NAMES[position]} legal unit is given as "
                             + " and ".join(f"{unit} ({n} parcels)" for unit, n in units))
    if differing:
        issues.append("LEGAL_UNITS_DIFFER")
        notes.append("; ".join(differing) + "; the totals are kept per unit, never added across units")
    if not issues:
        return totals, "complete", [], None
    return totals, "incomplete", issues, "; ".join(notes)
