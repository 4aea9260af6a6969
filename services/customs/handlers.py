"""Customs: keeps one file per parcel, decides it once every document it needs is there, and says so on
customs.decision.v1. The decisions themselves are services/customs/rules.py; this module is the I/O
around them: what is stored, what is locked, what is given back and what is published.

Everything a handler does happens in the batch's transaction (its events go to the outbox), so a crash
at any point either keeps all of it or none of it.

Choices the domain leaves open, made here:
- Versions: an order event whose version is not newer than the one held is ignored.
- A second payment (or waybill) for an order that already has one, with another payment_no (waybill_no),
  is ignored: the first one is kept. The same one again changes nothing.
- A correction or cancellation of an order customs already released re-publishes the release stamped
  with the new version, so that the single window shows the truth: a released parcel is gone. A
  correction of a cancelled order is ignored.
- A file waiting for an enterprise whose registration has not arrived is decided anyway (and rejected
  PARTY_NOT_REGISTERED) DOCUMENT_TIMEOUT_HOURS after it started waiting.
- A file whose order never came is marked timed out without a decision (there is no order to decide:
  no version, ecommerce enterprise or direction); if the order arrives later it is rejected at once with
  that DOCUMENT_TIMEOUT.
- The document timeout runs from the first document's arrival at the single window (its submitted_at)
  and is not restarted by a correction: a corrected order still missing a document is rejected by the
  next sweep.
- A payment held for an export is kept but plays no part in its decision (exports need order + waybill).
- An import whose currency has no FX rate cannot be decided: the file is kept, undecided, with the
  reason (`blocked_reason`), logged as an error, and retried by the sweep after the next restart (the
  reference tables are read once per process).
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from cryptography.fernet import InvalidToken
from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import Envelope
from contracts.v1.events import (
    CreditRatingChanged,
    CustomsDecision,
    EnterpriseRegistered,
    NegativeListChanged,
    Order,
    OrderSubmitted,
    Payment,
    PaymentSubmitted,
    Reason,
    SealedPerson,
    Waybill,
    WaybillSubmitted,
)
from contracts.v2.events import OrderSubmittedV2
from services.customs import rules
from services.customs.rules import Documents, Party
from services.customs.tables import (
    buyer_year_totals,
    order_files,
    parties,
    party_waits,
    quota_holdings,
    released_export_lines,
)
from shared.reference import MissingRate, fx_rates, hs_catalogue
from shared.db import insert_if_absent
from shared.runtime import Handlers, TransientError, UnitOfWork
from shared.sealing import pseudonym, unseal
from shared.settings import settings
from shared.clock import china_date, utcnow

log = logging.getLogger(__name__)
handlers = Handlers()

ZERO = Decimal("0")
SWEEP_BATCH = 500
# Files blocked on a missing FX rate are retried once per process: the rates are read once per process.
PROCESS_STARTED_AT = datetime.now(timezone.utc)




def china_month(at: datetime) -> str:
    return china_date(at).strftime("%Y-%m")


def order_key(platform_code: str, order_no: str) -> str:
    return f"{platform_code}:{order_no}"


def timeout_delta(hours: Decimal) -> timedelta:
    return timedelta(microseconds=int(hours * 3_600_000_000))


# --- the order file ----------------------------------------------------------------------------

FILE_COLUMNS = tuple(c.name for c in order_files.columns)


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
    def key(self) -> str:
        return order_key(self.platform_code, self.order_no)

    @property
    def undecided(self) -> bool:
        return self.decided_version != self.order_version

    def documents(self) -> Documents:
        return Documents(self.order, self.payment, self.waybill)

    def set_order(self, event: OrderSubmitted) -> None:
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


def _file_pk(platform_code: str, order_no: str):  # noqa: ANN202
    return and_(order_files.c.platform_code == platform_code, order_files.c.order_no == order_no)


async def lock_file(session: AsyncSession, platform_code: str, order_no: str) -> OrderFile | None:
    # FOR UPDATE: an order and its payment handled at once on two instances must see each other's
    # document, or neither would decide. (SQLite serialises whole transactions instead.)
    row = (await session.execute(
        select(order_files).where(_file_pk(platform_code, order_no)).with_for_update())).mappings().first()
    return OrderFile(dict(row)) if row else None


async def open_file(session: AsyncSession, platform_code: str, order_no: str, arrived_at: datetime) -> OrderFile:
    """The file for this parcel, created on the first document about it, locked for this transaction."""
    await insert_if_absent(session, order_files, {
        "platform_code": platform_code, "order_no": order_no, "order_version": 0, "first_document_at": arrived_at,
        "status": "pending", "reasons": [], "updated_at": utcnow(),
    }, ["platform_code", "order_no"])
    file = await lock_file(session, platform_code, order_no)
    assert file is not None
    # Documents reach customs on three topics, so not necessarily in the order they reached the window.
    if arrived_at < file.first_document_at:
        file.first_document_at = arrived_at
    return file


async def save_file(session: AsyncSession, file: OrderFile) -> None:
    values = file.values()
    values["updated_at"] = utcnow()
    await session.execute(update(order_files).where(_file_pk(file.platform_code, file.order_no)).values(**values))


# --- parties -----------------------------------------------------------------------------------


async def known_parties(session: AsyncSession, codes: set[str]) -> dict[str, Party]:
    if not codes:
        return {}
    rows = await session.execute(select(parties).where(parties.c.code.in_(codes), parties.c.registered_at.is_not(None)))
    return {r.code: Party(code=r.code, roles=frozenset(r.roles or ()), customs_credit=r.customs_credit,
                          grade=r.grade, negative_listed=bool(r.negative_listed)) for r in rows}


async def lock_party(session: AsyncSession, code: str):  # noqa: ANN201
    await insert_if_absent(session, parties, {"code": code, "negative_listed": False}, ["code"])
    return (await session.execute(select(parties).where(parties.c.code == code).with_for_update())).first()


async def clear_waits(session: AsyncSession, file: OrderFile) -> None:
    if file.awaiting_party_since is not None:
        await session.execute(delete(party_waits).where(and_(
            party_waits.c.platform_code == file.platform_code, party_waits.c.order_no == file.order_no)))


# --- the buyer's annual quota ------------------------------------------------------------------


async def locked_year_total(session: AsyncSession, buyer: str, year: int) -> Decimal:
    """The buyer's year total, with the row locked until the transaction ends: two orders of one buyer
    decided at once (other partition, other instance) queue here instead of both slipping under the limit."""
    await insert_if_absent(session, buyer_year_totals, {
        "buyer": buyer, "year": year, "total_cny": ZERO, "updated_at": utcnow()}, ["buyer", "year"])
    total = await session.scalar(select(buyer_year_totals.c.total_cny).where(and_(
        buyer_year_totals.c.buyer == buyer, buyer_year_totals.c.year == year)).with_for_update())
    return total if total is not None else ZERO


async def set_year_total(session: AsyncSession, buyer: str, year: int, total: Decimal) -> None:
    await session.execute(update(buyer_year_totals).where(and_(
        buyer_year_totals.c.buyer == buyer, buyer_year_totals.c.year == year)).values(
        total_cny=total, updated_at=utcnow()))


async def give_back_quota(session: AsyncSession, file: OrderFile) -> None:
    """Exactly what this order took from its buyer's year, whichever version took it."""
    pk = and_(quota_holdings.c.platform_code == file.platform_code, quota_holdings.c.order_no == file.order_no)
    holding = (await session.execute(select(quota_holdings).where(pk).with_for_update())).first()
    if holding is None:
        return
    total = await locked_year_total(session, holding.buyer, holding.year)
    remaining = total - holding.amount_cny
    if remaining < ZERO:  # cannot happen unless the table was edited by hand; never go negative
        log.error("year total would go negative; clamped to 0", extra={"error": f"{file.key} {remaining}"})
        remaining = ZERO
    await set_year_total(session, holding.buyer, holding.year, remaining)
    await session.execute(delete(quota_holdings).where(pk))


async def reserve_quota(session: AsyncSession, file: OrderFile, buyer: str, year: int, total_before: Decimal,
                        amount: Decimal, at: datetime) -> None:
    await set_year_total(session, buyer, year, total_before + amount)
    await session.execute(insert(quota_holdings).values(
        platform_code=file.platform_code, order_no=file.order_no, buyer=buyer, year=year, amount_cny=amount,
        order_version=file.order_version, reserved_at=at))


# --- deciding ----------------------------------------------------------------------------------


def unsealed_id(person: SealedPerson | None) -> str | None:
    if person is None:
        return None
    try:
        return unseal(person.id_number_sealed).upper()
    except (InvalidToken, ValueError, TypeError):
        # Sealed under another key, or damaged: the rules then report an identity mismatch.
        log.warning("identity number could not be unsealed", extra={"error": person.id_number_masked})
        return None


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


async def record_export_lines(session: AsyncSession, file: OrderFile) -> None:
    """A released 9610 export is declared parcel by parcel now and consolidated by month (domain §12)."""
    order = file.order
    if order is None or order.direction != "export" or order.trade_mode != "9610" or file.status != "released":
        return
    month = china_month(file.decided_at)
    rows = [{
        "platform_code": file.platform_code, "order_no": file.order_no, "line_no": index, "release_month": month,
        "ecommerce_code": order.ecommerce_code, "hs_code": item.hs_code,
        "destination_country": order.destination_country or "", "currency": order.currency,
        "quantity": item.quantity, "value": item.quantity * item.unit_price, "released_at": file.decided_at,
    } for index, item in enumerate(order.items)]
    await insert_if_absent(session, released_export_lines, rows, ["platform_code", "order_no", "line_no"])


async def try_decide(session: AsyncSession, file: OrderFile, now: datetime, *, force: bool = False) -> CustomsDecision | None:
    """Decides the file's current order version if every document it needs is there. Returns the
    decision to publish, or None when there is nothing to decide yet."""
    order = file.order
    if order is None or file.status != "pending" or not file.undecided:
        return None
    docs = file.documents()
    if rules.missing_documents(docs):
        return None
    if file.documents_complete_at is None:
        file.documents_complete_at = now
    codes = {code for _, code in rules.named_parties(docs)}
    known = await known_parties(session, codes)
    unknown = sorted(codes - known.keys())
    await clear_waits(session, file)
    if unknown and not force:
        # The registration travels on another topic and may simply not be here yet.
        await insert_if_absent(session, party_waits, [
            {"code": code, "platform_code": file.platform_code, "order_no": file.order_no} for code in unknown
        ], ["code", "platform_code", "order_no"])
        file.awaiting_party_since = file.awaiting_party_since or now
        return None
    file.awaiting_party_since = None

    buyer_id = unsealed_id(order.buyer)
    docs = Documents(order, file.payment, file.waybill, buyer_id, unsealed_id(file.payment.payer) if file.payment else None)
    day = china_date(file.order_submitted_at)
    await give_back_quota(session, file)  # nothing, normally: a pending file holds no quota
    buyer, year_total = None, ZERO
    if not rules.is_export(order) and buyer_id:
        buyer = pseudonym(buyer_id)
        year_total = await locked_year_total(session, buyer, day.year)
    s = settings()
    try:
        verdict = rules.decide(docs, known, hs_catalogue(), fx_rates(), day, year_total,
                               s.customs_base_inspection_rate, s.customs_selection_salt)
    except MissingRate as err:
        file.blocked_reason, file.blocked_at = str(err), now
        log.error("cannot decide without an FX rate", extra={"error": str(err)})
        return None
    file.blocked_reason = file.blocked_at = None
    if verdict.quota_cny > ZERO:
        if buyer is None:  # the rules reject an import whose buyer cannot be identified
            raise RuntimeError(f"{file.key}: a quota to reserve but no buyer to charge it to")
        await reserve_quota(session, file, buyer, day.year, year_total, verdict.quota_cny, now)
    file.set_outcome(verdict.status, verdict.channel, verdict.reasons, verdict.tax_mode,
                     verdict.dutiable_value_cny, now, file.order_version)
    await record_export_lines(session, file)
    return decision_event(file)


def dutiable_value_or_none(order: Order, day: date) -> Decimal | None:
    if rules.is_export(order):
        return None
    try:
        return rules.dutiable_value_cny(order, fx_rates(), day)
    except MissingRate:
        return None


def timeout_reason(missing: list[str], first_document_at: datetime, hours: Decimal) -> Reason:
    return Reason(code="DOCUMENT_TIMEOUT", message=(
        f"{', '.join(missing)} still missing {hours.normalize():f} hours after the first document arrived "
        f"({first_document_at.isoformat()})"))


async def reject_for_timeout(session: AsyncSession, file: OrderFile, reason: Reason, now: datetime) -> CustomsDecision:
    order = file.order
    assert order is not None
    await give_back_quota(session, file)
    await clear_waits(session, file)
    file.awaiting_party_since = None
    file.set_outcome("rejected", None, [reason], None, dutiable_value_or_none(order, china_date(file.order_submitted_at)),
                     now, file.order_version)
    file.timed_out_at = file.timed_out_at or now
    return decision_event(file)


# --- handlers ----------------------------------------------------------------------------------


@handlers.on(EnterpriseRegistered)
async def on_enterprise_registered(uow: UnitOfWork, event: Envelope, reg: EnterpriseRegistered) -> None:
    session = uow.session
    await lock_party(session, reg.code)
    await session.execute(update(parties).where(parties.c.code == reg.code).values(
        roles=list(reg.roles), customs_credit=reg.customs_credit, registered_at=reg.registered_at))
    waiting = (await session.execute(select(party_waits.c.platform_code, party_waits.c.order_no).where(
        party_waits.c.code == reg.code))).all()
    for platform_code, order_no in waiting:
        await isolated(uow, order_key(platform_code, order_no), retry_waiting_file, session, platform_code, order_no)


async def retry_waiting_file(session: AsyncSession, platform_code: str, order_no: str) -> CustomsDecision | None:
    file = await lock_file(session, platform_code, order_no)
    if file is None:
        return None
    decision = await try_decide(session, file, utcnow())
    if file.status != "pending":
        await clear_waits(session, file)
        file.awaiting_party_since = None
    await save_file(session, file)
    return decision


async def isolated(uow: UnitOfWork, correlation_id: str, fn: Callable[..., Awaitable[CustomsDecision | None]],
                   *args: Any) -> None:
    """Runs one file's work in its own savepoint: a file that cannot be processed is logged and left
    as it was, instead of failing the registration or the sweep that touched it."""
    try:
        async with uow.session.begin_nested():
            decision = await fn(*args)
    except (sa_exc.DBAPIError, TransientError):
        raise  # the database itself: the whole batch or job is retried
    except Exception:
        log.exception("could not process an order file", extra={"error": correlation_id})
        return
    if decision is not None:
        uow.emit(decision, correlation_id=correlation_id)


async def apply_credit(session: AsyncSession, code: str, changed_at: datetime, **values: Any) -> None:
    # Applied in arrival order (one enterprise's events share a partition; a republished copy is dropped by
    # the inbox). Not by changed_at: the credit service stamps it before it waits for the file's lock, so
    # the later state can carry the earlier time.
    await lock_party(session, code)
    await session.execute(update(parties).where(parties.c.code == code).values(credit_changed_at=changed_at, **values))


@handlers.on(CreditRatingChanged)
async def on_credit_rating(uow: UnitOfWork, event: Envelope, r: CreditRatingChanged) -> None:
    await apply_credit(uow.session, r.enterprise_code, r.changed_at, grade=r.grade, negative_listed=r.negative_listed)


@handlers.on(NegativeListChanged)
async def on_negative_list(uow: UnitOfWork, event: Envelope, n: NegativeListChanged) -> None:
    await apply_credit(uow.session, n.enterprise_code, n.changed_at, grade=n.grade, negative_listed=n.listed)


@handlers.on(OrderSubmittedV2)
async def on_order_submitted(uow: UnitOfWork, event: Envelope, submitted: OrderSubmittedV2) -> None:
    sub = submitted.as_v1()  # the file and the rules are written over the v1 order
    session, order, now = uow.session, sub.order, utcnow()
    file = await open_file(session, order.platform_code, order.order_no, sub.submitted_at)
    if sub.version <= file.order_version:
        log.info("order version %s ignored: version %s is held", sub.version, file.order_version)
        await save_file(session, file)
        return
    decision: CustomsDecision | None = None
    if file.status == "released":
        # Released is final. Publishing the release again under the new version lets every reader
        # (the gateway first) see that this correction or cancellation came too late.
        file.order_version = file.decided_version = sub.version
        decision = decision_event(file)
    elif file.status == "cancelled":
        log.warning("change to a cancelled order ignored (version %s)", sub.version)
    elif sub.action == "cancelled":
        await give_back_quota(session, file)
        await clear_waits(session, file)
        file.awaiting_party_since = file.blocked_reason = file.blocked_at = None
        file.set_order(sub)
        file.set_outcome("cancelled", None, [], None, None, now, sub.version)
        decision = decision_event(file)
    else:
        order_came_too_late = file.order is None and file.timed_out_at is not None
        await give_back_quota(session, file)
        await clear_waits(session, file)
        file.awaiting_party_since = None
        file.set_order(sub)
        if order_came_too_late:
            reason = Reason.model_validate(file.reasons[0]) if file.reasons else timeout_reason(
                ["order"], file.first_document_at, settings().document_timeout_hours)
            decision = await reject_for_timeout(session, file, reason, now)
        else:
            file.reopen()
            decision = await try_decide(session, file, now)
    await save_file(session, file)
    if decision is not None:
        uow.emit(decision, correlation_id=file.key)


@handlers.on(PaymentSubmitted)
async def on_payment_submitted(uow: UnitOfWork, event: Envelope, sub: PaymentSubmitted) -> None:
    payment = sub.payment
    file = await open_file(uow.session, payment.platform_code, payment.order_no, sub.submitted_at)
    if file.payment is not None:
        if (file.payment_code, file.payment_no) != (payment.payment_code, payment.payment_no):
            log.warning("second payment %s:%s for the order ignored; %s:%s is kept", payment.payment_code,
                        payment.payment_no, file.payment_code, file.payment_no)
        await save_file(uow.session, file)
        return
    file.set_payment(payment)
    decision = await try_decide(uow.session, file, utcnow())
    await save_file(uow.session, file)
    if decision is not None:
        uow.emit(decision, correlation_id=file.key)


@handlers.on(WaybillSubmitted)
async def on_waybill_submitted(uow: UnitOfWork, event: Envelope, sub: WaybillSubmitted) -> None:
    waybill = sub.waybill
    file = await open_file(uow.session, waybill.platform_code, waybill.order_no, sub.submitted_at)
    if file.waybill is not None:
        if (file.logistics_code, file.waybill_no) != (waybill.logistics_code, waybill.waybill_no):
            log.warning("second waybill %s:%s for the order ignored; %s:%s is kept", waybill.logistics_code,
                        waybill.waybill_no, file.logistics_code, file.waybill_no)
        await save_file(uow.session, file)
        return
    file.set_waybill(waybill)
    decision = await try_decide(uow.session, file, utcnow())
    await save_file(uow.session, file)
    if decision is not None:
        uow.emit(decision, correlation_id=file.key)


# --- the periodic sweep --------------------------------------------------------------------------


async def sweep(uow: UnitOfWork, now: datetime | None = None) -> None:
    """Rejects files whose documents are still incomplete after the timeout, decides files that have
    waited that long for a registration, and retries files blocked on a missing FX rate once per process.
    Bounded batches; SKIP LOCKED leaves files that a consumer or another instance is working on."""
    now = now or utcnow()
    hours = settings().document_timeout_hours
    cutoff = now - timeout_delta(hours)
    session = uow.session
    pending = order_files.c.status == "pending"
    queries = [
        (and_(pending, order_files.c.awaiting_party_since.is_(None), order_files.c.blocked_at.is_(None),
              order_files.c.first_document_at <= cutoff), order_files.c.first_document_at, time_out_file),
        (and_(pending, order_files.c.awaiting_party_since <= cutoff), order_files.c.awaiting_party_since,
         decide_waiting_file),
        (and_(pending, order_files.c.blocked_at < PROCESS_STARTED_AT), order_files.c.blocked_at, decide_blocked_file),
    ]
    for where, order_by, work in queries:
        rows = (await session.execute(select(order_files).where(where).order_by(order_by).limit(SWEEP_BATCH)
                                      .with_for_update(skip_locked=True))).mappings().all()
        for row in rows:
            file = OrderFile(dict(row))
            await isolated(uow, file.key, work, session, file, now, hours)


async def time_out_file(session: AsyncSession, file: OrderFile, now: datetime, hours: Decimal) -> CustomsDecision | None:
    missing = rules.missing_documents(file.documents())
    decision = None
    if not missing:
        decision = await try_decide(session, file, now)  # complete but never decided: decide it now
    elif rules.document_timed_out(file.first_document_at, now, hours):
        reason = timeout_reason(missing, file.first_document_at, hours)
        if file.order is None:
            # No order, so nothing to decide or publish; marked so that the sweep does not come back,
            # and so that the order, if it ever comes, is rejected with this reason.
            file.set_outcome("rejected", None, [reason], None, None, None, None)
            file.timed_out_at = now
        else:
            decision = await reject_for_timeout(session, file, reason, now)
    await save_file(session, file)
    return decision


async def decide_waiting_file(session: AsyncSession, file: OrderFile, now: datetime, hours: Decimal) -> CustomsDecision | None:
    decision = await try_decide(session, file, now, force=True)
    await save_file(session, file)
    return decision


async def decide_blocked_file(session: AsyncSession, file: OrderFile, now: datetime, hours: Decimal) -> CustomsDecision | None:
    decision = await try_decide(session, file, now)
    await save_file(session, file)
    return decision


# --- inspection results --------------------------------------------------------------------------


class NotFound(LookupError):
    pass


class NotInInspection(Exception):
    pass


async def record_inspection(uow: UnitOfWork, platform_code: str, order_no: str, passed: bool, note: str) -> OrderFile:
    session, now = uow.session, utcnow()
    file = await lock_file(session, platform_code, order_no)
    if file is None or file.order is None:
        raise NotFound(f"customs holds no order {order_no} of platform {platform_code}")
    if file.status != "inspection":
        raise NotInInspection(f"the order is {file.status}, not held for inspection")
    reasons = [Reason.model_validate(r) for r in file.reasons]
    if passed:
        # Released through the red channel: the selection stays on record.
        file.set_outcome("released", "red", reasons, file.tax_mode, file.dutiable_value_cny, now, file.decided_version)
        await record_export_lines(session, file)
    else:
        # The finding stays SELECTED_FOR_INSPECTION (no other code says "the inspector found a fault"),
        # and its message carries what the inspector wrote.
        failed = f"inspection failed: {note}" if note else "inspection failed"
        if any(r.code == "SELECTED_FOR_INSPECTION" for r in reasons):
            reasons = [Reason(code=r.code, message=f"{r.message}; {failed}") if r.code == "SELECTED_FOR_INSPECTION"
                       else r for r in reasons]
        else:
            reasons.append(Reason(code="SELECTED_FOR_INSPECTION", message=failed))
        await give_back_quota(session, file)
        file.set_outcome("rejected", None, reasons, None, file.dutiable_value_cny, now, file.decided_version)
    await save_file(session, file)
    uow.emit(decision_event(file), correlation_id=file.key)
    return file
