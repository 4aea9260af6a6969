"""Customs' domain model for one run of events: the order files it holds, the buyers' annual quota
ledger, and what arriving documents, registrations, the sweep and inspectors do to them.

Everything here happens in memory, on state services/customs/store.py loaded for every key of the run
at once (and locked); the store then writes what changed back with one statement per table. Every
decision is a function of services/customs/rules.py; this module applies them, in the order the events
came, so that a run holding several events of one file gives exactly what delivering them one at a
time would.

Shapes: keys are (platform_code, order_no); money is Decimal CNY; times are aware UTC datetimes; a
buyer is `shared.sealing.pseudonym` of the unsealed identity number, a quota year the China calendar
year of the order's submission (domain §5).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


from contracts.identifiers import order_key
from contracts.v1.events import (
    CustomsDecision,
    LegalQuantity,
    Order,
    OrderSubmitted,
    Payment,
    Reason,
    SealedPerson,
    Waybill,
)
from contracts.v2.events import OrderSubmittedV2
from services.customs import rules
from services.customs.rules import Documents, Party
from services.customs.tables import order_files
from shared.clock import china_date
from shared.reference import FxRates, HsEntry, MissingRate
from shared.sealing import CannotUnseal, pseudonym, unseal

log = logging.getLogger(__name__)

ZERO = Decimal("0")
FILE_COLUMNS = tuple(c.name for c in order_files.columns)

Key = tuple[str, str]  # (platform_code, order_no)
BuyerYear = tuple[str, int]  # (buyer pseudonym, China calendar year)


class NotFound(LookupError):
    pass


class NotInInspection(Exception):
    pass


# --- the domain's view of the wire ---------------------------------------------------------------


@dataclass(frozen=True)
class OrderEvent:
    """One published version of an order (spec §4.4), as customs reads it: the rules are written over
    the v1 order document, which the v2 event carries losslessly."""

    key: Key
    version: int
    action: str  # new | corrected | cancelled
    submitted_at: datetime  # when it reached the single window
    order: Order


def order_event(submitted: OrderSubmittedV2) -> OrderEvent:
    sub: OrderSubmitted = submitted.as_v1()
    return OrderEvent((sub.order.platform_code, sub.order.order_no), sub.version, sub.action, sub.submitted_at,
                      sub.order)


def legal_columns(legal: list[LegalQuantity] | None) -> dict[str, Decimal | str | None]:
    """A line's legal quantities (first, second legal unit) as released_export_lines keeps them:
    legal_quantity_1/legal_unit_1 and legal_quantity_2/legal_unit_2, None where not given."""
    given = list(legal or [])[:2]
    columns: dict[str, Decimal | str | None] = {}
    for position in (1, 2):
        entry = given[position - 1] if len(given) >= position else None
        columns[f"legal_quantity_{position}"] = entry.quantity if entry else None
        columns[f"legal_unit_{position}"] = entry.unit if entry else None
    return columns


def legal_quantities_of(row: Any) -> tuple[tuple[Decimal, str], ...]:
    """The inverse of `legal_columns` for a released_export_lines row: ((quantity, unit), ...) in position
    order, () when the line had none (rules.ReleasedExportLine.legal_quantities)."""
    pairs = ((row.legal_quantity_1, row.legal_unit_1), (row.legal_quantity_2, row.legal_unit_2))
    return tuple((Decimal(q), u) for q, u in pairs if q is not None and u is not None)


def unsealed_id(person: SealedPerson | None) -> str | None:
    """The full identity number, upper-cased; None when absent or when it cannot be unsealed (sealed
    under another key, or damaged: the rules then report an identity mismatch)."""
    if person is None:
        return None
    try:
        return unseal(person.id_number_sealed).upper()
    except CannotUnseal:
        log.warning("identity number could not be unsealed", extra={"error": person.id_number_masked})
        return None


class Identities:
    """Unseals each sealed number once per run."""

    def __init__(self, unsealer: Callable[[SealedPerson | None], str | None] = unsealed_id):
        self._unsealer = unsealer
        self._known: dict[str, str | None] = {}

    def __call__(self, person: SealedPerson | None) -> str | None:
        if person is None:
            return None
        token = person.id_number_sealed
        if token not in self._known:
            self._known[token] = self._unsealer(person)
        return self._known[token]

    def buyer_year(self, order: Order | None, submitted_at: datetime | None) -> BuyerYear | None:
        """Whose annual quota deciding this order reads: None for exports or an unidentifiable buyer."""
        if order is None or submitted_at is None or rules.is_export(order):
            return None
        buyer_id = self(order.buyer)
        return (pseudonym(buyer_id), china_date(submitted_at).year) if buyer_id else None


# --- the order file ------------------------------------------------------------------------------


class OrderFile:
    """One row of order_files, with its documents parsed."""

    def __init__(self, values: dict):
        for name in FILE_COLUMNS:
            setattr(self, name, values.get(name))
        self.reasons = list(self.reasons or [])
        self.order = Order.model_validate(self.order_document) if self.order_document else None
        self.payment = Payment.model_validate(self.payment_document) if self.payment_document else None
        self.waybill = Waybill.model_validate(self.waybill_document) if self.waybill_document else None

    @property
    def pk(self) -> Key:
        return (self.platform_code, self.order_no)

    @property
    def key(self) -> str:
        return order_key(self.platform_code, self.order_no)

    @property
    def undecided(self) -> bool:
        return self.decided_version != self.order_version

    def documents(self) -> Documents:
        return Documents(self.order, self.payment, self.waybill)

    def note_arrival(self, at: datetime) -> None:
        # Documents reach customs on three topics, so not necessarily in the order they reached the window.
        if at < self.first_document_at:
            self.first_document_at = at

    def set_order(self, event: OrderEvent) -> None:
        order = event.order
        self.order = order
        self.order_document = order.model_dump(mode="json")
        self.order_version = event.version
        self.order_action = event.action
        self.order_submitted_at = event.submitted_at
        self.ecommerce_code, self.direction, self.trade_mode = order.ecommerce_code, order.direction, order.trade_mode

    def set_payment(self, payment: Payment) -> None:
        self.payment = payment
        self.payment_document = payment.model_dump(mode="json")
        self.payment_code, self.payment_no = payment.payment_code, payment.payment_no

    def set_waybill(self, waybill: Waybill) -> None:
        self.waybill = waybill
        self.waybill_document = waybill.model_dump(mode="json")
        self.logistics_code, self.waybill_no = waybill.logistics_code, waybill.waybill_no

    def set_outcome(self, status: str, channel: str | None, reasons: list[Reason], tax_mode: str | None,
                    dutiable_value_cny: Decimal | None, at: datetime | None, version: int | None) -> None:
        self.status, self.channel = status, channel
        self.reasons = [r.model_dump(mode="json") for r in reasons]
        self.tax_mode, self.dutiable_value_cny = tax_mode, dutiable_value_cny
        self.decided_at, self.decided_version = at, version

    def reopen(self) -> None:
        self.set_outcome("pending", None, [], None, None, None, self.decided_version)
        self.blocked_reason = self.blocked_at = None

    def values(self) -> dict:
        return {name: getattr(self, name) for name in FILE_COLUMNS}

    def snapshot(self) -> dict:
        return dict(self.__dict__)

    def restore(self, snapshot: dict) -> None:
        self.__dict__.clear()
        self.__dict__.update(snapshot)


def decision_event(file: OrderFile, order_version: int | None = None) -> CustomsDecision:
    order = file.order
    assert order is not None
    dutiable = file.dutiable_value_cny
    return CustomsDecision(
        platform_code=file.platform_code, order_no=file.order_no,
        order_version=order_version if order_version is not None else file.decided_version,
        ecommerce_code=order.ecommerce_code, logistics_code=file.logistics_code,
        payment_code=None if rules.is_export(order) else file.payment_code,
        direction=order.direction, trade_mode=order.trade_mode, status=file.status, channel=file.channel,
        reasons=[Reason.model_validate(r) for r in file.reasons], tax_mode=file.tax_mode,
        # Money cannot be negative; a discount larger than goods and freight is the only way to get there.
        dutiable_value_cny=dutiable if dutiable is not None and dutiable >= ZERO else None,
        documents_complete_at=file.documents_complete_at, decided_at=file.decided_at,
    )


# --- the buyers' annual quota --------------------------------------------------------------------


@dataclass(frozen=True)
class Holding:
    """What one order holds of its buyer's year: exactly that is given back."""

    buyer: str
    year: int
    amount_cny: Decimal
    order_version: int
    reserved_at: datetime


class Ledger:
    """The year totals of the run's buyers (locked by the store until the transaction ends) and the
    holdings of the run's files. Changes are journaled so that one file's work can be undone."""

    def __init__(self, totals: Mapping[BuyerYear, Decimal], holdings: Mapping[Key, Holding]):
        self.totals: dict[BuyerYear, Decimal] = dict(totals)
        self.holdings: dict[Key, Holding] = dict(holdings)
        self.changed_totals: set[BuyerYear] = set()
        self.touched_holdings: set[Key] = set()
        self._journal: list[Callable[[], None]] = []

    def total(self, buyer_year: BuyerYear) -> Decimal:
        if buyer_year not in self.totals:  # the store locks every buyer a run can charge; a bug otherwise
            raise RuntimeError(f"the year total of buyer {buyer_year[0][:8]}… {buyer_year[1]} was not locked")
        return self.totals[buyer_year]

    def _set_total(self, buyer_year: BuyerYear, total: Decimal) -> None:
        before, was_changed = self.totals[buyer_year], buyer_year in self.changed_totals
        self.totals[buyer_year] = total
        self.changed_totals.add(buyer_year)

        def undo() -> None:
            self.totals[buyer_year] = before
            if not was_changed:
                self.changed_totals.discard(buyer_year)
        self._journal.append(undo)

    def _set_holding(self, key: Key, holding: Holding | None) -> None:
        before, was_touched = self.holdings.get(key), key in self.touched_holdings
        if holding is None:
            self.holdings.pop(key, None)
        else:
            self.holdings[key] = holding
        self.touched_holdings.add(key)

        def undo() -> None:
            if before is None:
                self.holdings.pop(key, None)
            else:
                self.holdings[key] = before
            if not was_touched:
                self.touched_holdings.discard(key)
        self._journal.append(undo)

    def give_back(self, key: Key) -> None:
        """Exactly what this order took from its buyer's year, whichever version took it."""
        holding = self.holdings.get(key)
        if holding is None:
            return
        remaining = self.total((holding.buyer, holding.year)) - holding.amount_cny
        if remaining < ZERO:  # cannot happen unless the table was edited by hand; never go negative
            log.error("year total would go negative; clamped to 0", extra={"error": f"{order_key(*key)} {remaining}"})
            remaining = ZERO
        self._set_total((holding.buyer, holding.year), remaining)
        self._set_holding(key, None)

    def reserve(self, key: Key, buyer_year: BuyerYear, amount: Decimal, order_version: int, at: datetime) -> None:
        self._set_total(buyer_year, self.total(buyer_year) + amount)
        self._set_holding(key, Holding(buyer_year[0], buyer_year[1], amount, order_version, at))

    def mark(self) -> int:
        return len(self._journal)

    def undo_to(self, mark: int) -> None:
        while len(self._journal) > mark:
            self._journal.pop()()


# --- the desk: one run's files and what happens to them ------------------------------------------


@dataclass(frozen=True)
class Reference:
    """What decisions read besides the files: reference tables and settings (domain §5, §6, §10)."""

    catalogue: Mapping[str, HsEntry]
    rates: FxRates
    base_inspection_rate: Decimal
    selection_salt: str
    timeout_hours: Decimal


@dataclass
class Desk:
    """The state of every file a run touches, loaded at once, and what the run changed.

    `parties`: the registered enterprises the files name; `unregistered`: rows of enterprises heard of
    only from the credit service (grade, negative list), kept for a registration arriving in the run."""

    files: dict[Key, OrderFile]
    ledger: Ledger
    parties: dict[str, Party]
    reference: Reference
    identities: Identities
    waiting: dict[str, set[Key]] = field(default_factory=dict)  # enterprise code -> files waiting for it
    dirty: set[Key] = field(default_factory=set)
    cleared_waits: set[Key] = field(default_factory=set)
    new_waits: dict[Key, set[str]] = field(default_factory=dict)
    export_lines: list[dict] = field(default_factory=list)

    # --- waits and export lines ---

    def _clear_waits(self, file: OrderFile) -> None:
        if file.awaiting_party_since is not None:
            self.cleared_waits.add(file.pk)
            self.new_waits.pop(file.pk, None)
            for keys in self.waiting.values():
                keys.discard(file.pk)

    def _add_waits(self, file: OrderFile, codes: list[str]) -> None:
        self.new_waits.setdefault(file.pk, set()).update(codes)
        for code in codes:
            self.waiting.setdefault(code, set()).add(file.pk)

    def _record_export_lines(self, file: OrderFile) -> None:
        order = file.order
        if order is None or not rules.declares_export_lines(order.direction, order.trade_mode, file.status):
            return
        month = china_date(file.decided_at).strftime("%Y-%m")
        self.export_lines.extend({
            "platform_code": file.platform_code, "order_no": file.order_no, "line_no": index, "release_month": month,
            "ecommerce_code": order.ecommerce_code, "hs_code": item.hs_code,
            "destination_country": order.destination_country or "", "currency": order.currency,
            "quantity": item.quantity, "value": item.quantity * item.unit_price, "released_at": file.decided_at,
            **legal_columns(item.legal_quantities),
        } for index, item in enumerate(order.items))

    @contextmanager
    def isolated(self, file: OrderFile) -> Iterator[None]:
        """One file's work, undone entirely if it fails (and logged), instead of failing the
        registration or the sweep that touched it. Errors of the database are not raised here."""
        snapshot, key = file.snapshot(), file.pk
        was_dirty, was_cleared = key in self.dirty, key in self.cleared_waits
        waits_before = set(self.new_waits.get(key, ()))
        waiting_before = {code for code, keys in self.waiting.items() if key in keys}
        mark, lines = self.ledger.mark(), len(self.export_lines)
        try:
            yield
        except Exception:
            log.exception("could not process an order file", extra={"error": file.key})
            file.restore(snapshot)
            self.ledger.undo_to(mark)
            del self.export_lines[lines:]
            if not was_dirty:
                self.dirty.discard(key)
            if not was_cleared:
                self.cleared_waits.discard(key)
            if waits_before:
                self.new_waits[key] = waits_before
            else:
                self.new_waits.pop(key, None)
            for code, keys in self.waiting.items():
                (keys.add if code in waiting_before else keys.discard)(key)

    # --- deciding ---

    def try_decide(self, file: OrderFile, now: datetime, *, force: bool = False) -> CustomsDecision | None:
        """Decides the file's current order version if every document it needs is there. Returns the
        decision to publish, or None when there is nothing to decide yet."""
        self.dirty.add(file.pk)
        docs = file.documents()
        if not rules.ready_to_decide(docs, file.status, file.order_version, file.decided_version):
            return None
        order = file.order
        assert order is not None
        if file.documents_complete_at is None:
            file.documents_complete_at = now
        codes = {code for _, code in rules.named_parties(docs)}
        known = {code: self.parties[code] for code in codes if code in self.parties}
        unknown = sorted(codes - known.keys())
        self._clear_waits(file)
        if rules.waits_for_registration(unknown, force):
            self._add_waits(file, unknown)
            file.awaiting_party_since = file.awaiting_party_since or now
            return None
        file.awaiting_party_since = None

        buyer_id = self.identities(order.buyer)
        docs = Documents(order, file.payment, file.waybill, buyer_id,
                         self.identities(file.payment.payer) if file.payment else None)
        day = china_date(file.order_submitted_at)
        self.ledger.give_back(file.pk)  # nothing, normally: a pending file holds no quota
        buyer_year = self.identities.buyer_year(order, file.order_submitted_at)
        year_total = self.ledger.total(buyer_year) if buyer_year else ZERO
        ref = self.reference
        try:
            verdict = rules.decide(docs, known, ref.catalogue, ref.rates, day, year_total,
                                   ref.base_inspection_rate, ref.selection_salt)
        except MissingRate as err:
            file.blocked_reason, file.blocked_at = str(err), now
            log.error("cannot decide without an FX rate", extra={"error": str(err)})
            return None
        file.blocked_reason = file.blocked_at = None
        if verdict.quota_cny > ZERO:
            if buyer_year is None:  # the rules reject an import whose buyer cannot be identified
                raise RuntimeError(f"{file.key}: a quota to reserve but no buyer to charge it to")
            self.ledger.reserve(file.pk, buyer_year, verdict.quota_cny, file.order_version, now)
        file.set_outcome(verdict.status, verdict.channel, verdict.reasons, verdict.tax_mode,
                         verdict.dutiable_value_cny, now, file.order_version)
        self._record_export_lines(file)
        return decision_event(file)

    def _reject_for_timeout(self, file: OrderFile, reason: Reason, now: datetime) -> CustomsDecision:
        order = file.order
        assert order is not None
        self.ledger.give_back(file.pk)
        self._clear_waits(file)
        file.awaiting_party_since = None
        value = rules.dutiable_value_or_none(order, self.reference.rates, china_date(file.order_submitted_at))
        file.set_outcome("rejected", None, [reason], None, value, now, file.order_version)
        file.timed_out_at = file.timed_out_at or now
        return decision_event(file)

    # --- documents arriving ---

    def order_arrived(self, event: OrderEvent, now: datetime) -> CustomsDecision | None:
        file = self.files[event.key]
        file.note_arrival(event.submitted_at)
        self.dirty.add(file.pk)
        action = rules.order_event_action(file.order_version, file.status, event.version, event.action,
                                          order_came_too_late=file.order is None and file.timed_out_at is not None)
        if action == "ignore":
            log.info("order version %s ignored: version %s is held", event.version, file.order_version)
            return None
        if action == "republish_release":
            # Released is final. Publishing the release again under the new version lets every reader
            # (the gateway first) see that this correction or cancellation came too late.
            file.order_version = file.decided_version = event.version
            return decision_event(file)
        if action == "ignore_cancelled":
            log.warning("change to a cancelled order ignored (version %s)", event.version)
            return None
        self.ledger.give_back(file.pk)
        self._clear_waits(file)
        file.awaiting_party_since = None
        if action == "cancel":
            file.blocked_reason = file.blocked_at = None
            file.set_order(event)
            file.set_outcome("cancelled", None, [], None, None, now, event.version)
            return decision_event(file)
        file.set_order(event)
        if action == "reject_late":
            reason = Reason.model_validate(file.reasons[0]) if file.reasons else rules.timeout_reason(
                ["order"], file.first_document_at, self.reference.timeout_hours)
            return self._reject_for_timeout(file, reason, now)
        file.reopen()
        return self.try_decide(file, now)

    def payment_arrived(self, payment: Payment, submitted_at: datetime, now: datetime) -> CustomsDecision | None:
        file = self.files[(payment.platform_code, payment.order_no)]
        held = (file.payment_code, file.payment_no) if file.payment is not None else None
        changed = file.payment is not None and file.payment != payment
        return self._document_arrived(file, "payment", held, (payment.payment_code, payment.payment_no),
                                      lambda: file.set_payment(payment), submitted_at, now, changed)

    def waybill_arrived(self, waybill: Waybill, submitted_at: datetime, now: datetime) -> CustomsDecision | None:
        file = self.files[(waybill.platform_code, waybill.order_no)]
        held = (file.logistics_code, file.waybill_no) if file.waybill is not None else None
        changed = file.waybill is not None and file.waybill != waybill
        return self._document_arrived(file, "waybill", held, (waybill.logistics_code, waybill.waybill_no),
                                      lambda: file.set_waybill(waybill), submitted_at, now, changed)

    def _document_arrived(self, file: OrderFile, kind: str, held: tuple[str, str] | None,
                          incoming: tuple[str, str], keep: Callable[[], None], submitted_at: datetime,
                          now: datetime, changed: bool = False) -> CustomsDecision | None:
        """A payment or waybill (`incoming`: its firm and number) for a file that may hold one (`held`):
        the first one binds; its own correction (same firm and number, `changed` content) replaces it while
        customs has not released the order; another one is ignored and logged (rules.second_document_action)."""
        file.note_arrival(submitted_at)
        self.dirty.add(file.pk)
        action = rules.second_document_action(held, incoming, changed, file.status)
        if action in ("same", "ignore_other"):
            if action == "ignore_other":
                log.warning("second %s %s:%s for the order ignored; %s:%s is kept", kind, *incoming, *held)
            return None
        keep()
        if action == "keep_correction":
            return None
        return self.try_decide(file, now)

    # --- registrations ---

    def registered(self, party: Party, now: datetime) -> list[tuple[OrderFile, CustomsDecision]]:
        """The enterprise is registered now: the files waiting for it are retried (each on its own: one
        that cannot be processed is logged and left as it was)."""
        self.parties[party.code] = party
        decisions = []
        for key in sorted(self.waiting.get(party.code, set())):
            file = self.files.get(key)
            if file is None:
                continue
            with self.isolated(file):
                decision = self.try_decide(file, now)
                if file.status != "pending":
                    self._clear_waits(file)
                    file.awaiting_party_since = None
                if decision is not None:
                    decisions.append((file, decision))
        return decisions

    # --- the sweep ---

    def sweep_file(self, file: OrderFile, work: str, now: datetime) -> CustomsDecision | None:
        """`work`: "timeout" (documents still incomplete, or complete and never decided), "waiting" (has
        waited the timeout for a registration: decided anyway) or "blocked" (retry after a missing rate)."""
        self.dirty.add(file.pk)
        if work == "waiting":
            return self.try_decide(file, now, force=True)
        if work == "blocked":
            return self.try_decide(file, now)
        hours = self.reference.timeout_hours
        action = rules.timeout_action(file.documents(), file.first_document_at, now, hours)
        if action == "decide":
            return self.try_decide(file, now)  # complete but never decided: decide it now
        if action is None:
            return None
        reason = rules.timeout_reason(rules.missing_documents(file.documents()), file.first_document_at, hours)
        if action == "mark_timed_out":
            # No order, so nothing to decide or publish; marked so that the sweep does not come back,
            # and so that the order, if it ever comes, is rejected with this reason.
            file.set_outcome("rejected", None, [reason], None, None, None, None)
            file.timed_out_at = now
            return None
        return self._reject_for_timeout(file, reason, now)

    # --- inspection results ---

    def inspected(self, key: Key, passed: bool, note: str, now: datetime) -> tuple[OrderFile, CustomsDecision]:
        file = self.files.get(key)
        if file is None or file.order is None:
            raise NotFound(f"customs holds no order {key[1]} of platform {key[0]}")
        if file.status != "inspection":
            raise NotInInspection(f"the order is {file.status}, not held for inspection")
        self.dirty.add(file.pk)
        buyer, payer = file.order.buyer, file.payment.payer if file.payment else None
        status, channel, reasons = rules.inspection_outcome(
            [Reason.model_validate(r) for r in file.reasons], passed, note,
            names=[p.name for p in (buyer, payer) if p], id_numbers=[unsealed_id(buyer), unsealed_id(payer)])
        if passed:
            file.set_outcome(status, channel, reasons, file.tax_mode, file.dutiable_value_cny, now, file.decided_version)
            self._record_export_lines(file)
        else:
            self.ledger.give_back(file.pk)
            file.set_outcome(status, channel, reasons, None, file.dutiable_value_cny, now, file.decided_version)
        return file, decision_event(file)


def party_of(row: Any) -> Party:
    return Party(code=row.code, roles=frozenset(row.roles or ()), customs_credit=row.customs_credit,
                 grade=row.grade, negative_listed=bool(row.negative_listed))
