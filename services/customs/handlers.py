"""Customs: keeps one file per parcel, decides it once every document it needs is there, and says so on
customs.decision.v1. The decisions are services/customs/rules.py, applied to a run's files in memory by
services/customs/domain.py; services/customs/store.py loads (and locks) the state of every key of a run
at once and writes it back with one statement per table. This module is the seam: load, decide, save, emit.

Everything a handler does happens in the batch's transaction (its events go to the outbox), so a crash
at any point either keeps all of it or none of it. Events of one key in one run are applied in list
order, with the same result as delivering them one at a time.

Choices the domain leaves open, made here (rules.order_event_action, rules.second_document_action, …):
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
from datetime import datetime, timedelta, timezone

from contracts.v1.events import (
    CreditRatingChanged,
    CustomsDecision,
    EnterpriseRegistered,
    NegativeListChanged,
    PaymentSubmitted,
    WaybillSubmitted,
)
from contracts.identifiers import order_key
from contracts.v2.events import OrderSubmittedV2
from services.customs import domain, store
from services.customs.domain import Key, NotFound, NotInInspection, OrderFile
from services.customs.rules import Party
from services.customs.settings import settings
from shared.clock import utcnow
from shared.runtime import Handlers, Received, UnitOfWork

__all__ = ["handlers", "sweep", "record_inspection", "NotFound", "NotInInspection", "OrderFile"]

log = logging.getLogger(__name__)
handlers = Handlers()

SWEEP_BATCH = 500
# Files blocked on a missing FX rate are retried once per process: the rates are read once per process.
PROCESS_STARTED_AT = datetime.now(timezone.utc)


def first_arrivals(pairs: list[tuple[Key, datetime]]) -> dict[Key, datetime]:
    """The arrival of each key's first document in the run (the run's order, not the earliest time)."""
    firsts: dict[Key, datetime] = {}
    for key, at in pairs:
        firsts.setdefault(key, at)
    return firsts


# --- documents -----------------------------------------------------------------------------------


async def save_and_announce(uow: UnitOfWork, desk: domain.Desk,
                            decisions: list[tuple[Received, CustomsDecision | None]]) -> None:
    """Saves what the desk changed, then emits each decision made, under its order's key and its cause's trace."""
    await store.save(uow.session, desk)
    for e, decision in decisions:
        if decision is not None:
            uow.emit(decision, correlation_id=order_key(decision.platform_code, decision.order_no), cause=e)


@handlers.on_batch(OrderSubmittedV2)
async def on_orders_submitted(uow: UnitOfWork, events: list[Received[OrderSubmittedV2]]) -> None:
    orders = [domain.order_event(e.payload) for e in events]
    files = await store.open_files(uow.session, first_arrivals([(o.key, o.submitted_at) for o in orders]))
    desk = await store.desk(uow.session, files, orders=orders)
    now = utcnow()
    decisions = [(e, desk.order_arrived(o, now)) for e, o in zip(events, orders)]
    await save_and_announce(uow, desk, decisions)


@handlers.on_batch(PaymentSubmitted)
async def on_payments_submitted(uow: UnitOfWork, events: list[Received[PaymentSubmitted]]) -> None:
    payments = [e.payload.payment for e in events]
    files = await store.open_files(uow.session, first_arrivals(
        [((p.platform_code, p.order_no), e.payload.submitted_at) for e, p in zip(events, payments)]))
    desk = await store.desk(uow.session, files, payments=payments)
    now = utcnow()
    decisions = [(e, desk.payment_arrived(e.payload.payment, e.payload.submitted_at, now)) for e in events]
    await save_and_announce(uow, desk, decisions)


@handlers.on_batch(WaybillSubmitted)
async def on_waybills_submitted(uow: UnitOfWork, events: list[Received[WaybillSubmitted]]) -> None:
    waybills = [e.payload.waybill for e in events]
    files = await store.open_files(uow.session, first_arrivals(
        [((w.platform_code, w.order_no), e.payload.submitted_at) for e, w in zip(events, waybills)]))
    desk = await store.desk(uow.session, files, waybills=waybills)
    now = utcnow()
    decisions = [(e, desk.waybill_arrived(e.payload.waybill, e.payload.submitted_at, now)) for e in events]
    await save_and_announce(uow, desk, decisions)


# --- enterprises ---------------------------------------------------------------------------------


@handlers.on_batch(EnterpriseRegistered)
async def on_enterprises_registered(uow: UnitOfWork, events: list[Received[EnterpriseRegistered]]) -> None:
    """Each registration, in order, retries the files waiting for that enterprise."""
    session, regs = uow.session, [e.payload for e in events]
    codes = {r.code for r in regs}
    waiting = await store.waits_for(session, codes)
    files = await store.lock_files(session, {key for keys in waiting.values() for key in keys})
    rows = await store.party_rows(session, codes | store.named_codes(files.values()))
    await store.update_parties(session, [{"code": r.code, "roles": list(r.roles), "customs_credit": r.customs_credit,
                                          "registered_at": r.registered_at} for r in regs])
    known = {code: domain.party_of(row) for code, row in rows.items() if row.registered_at is not None}
    desk = await store.desk(session, files, waiting=waiting, known=known)
    now = utcnow()
    for e, r in zip(events, regs):
        row = rows.get(r.code)
        party = Party(code=r.code, roles=frozenset(r.roles), customs_credit=r.customs_credit,
                      grade=row.grade if row else None, negative_listed=bool(row.negative_listed) if row else False)
        for file, decision in desk.registered(party, now):
            uow.emit(decision, correlation_id=file.key, cause=e)
    await store.save(session, desk)


# Credit changes apply in credit's order, by the revision each carries: one enterprise's ratings and
# listings travel on two topics, so arrival order is not credit's order (a republished copy is dropped by
# the inbox). Not by changed_at: the credit service stamps it before it waits for the file's lock, so the
# later state can carry the earlier time. An event without a revision (0) applies in arrival order.


@handlers.on_batch(CreditRatingChanged)
async def on_credit_ratings(uow: UnitOfWork, events: list[Received[CreditRatingChanged]]) -> None:
    await store.update_parties(uow.session, [
        {"code": r.enterprise_code, "credit_changed_at": r.changed_at, "grade": r.grade,
         "negative_listed": r.negative_listed, "credit_revision": r.enterprise_revision or 0}
        for r in (e.payload for e in events)], unless_newer="credit_revision")


@handlers.on_batch(NegativeListChanged)
async def on_negative_list_changes(uow: UnitOfWork, events: list[Received[NegativeListChanged]]) -> None:
    await store.update_parties(uow.session, [
        {"code": n.enterprise_code, "credit_changed_at": n.changed_at, "grade": n.grade,
         "negative_listed": n.listed, "credit_revision": n.enterprise_revision or 0}
        for n in (e.payload for e in events)], unless_newer="credit_revision")


# --- the periodic sweep --------------------------------------------------------------------------


def timeout_delta(hours) -> timedelta:  # noqa: ANN001
    return timedelta(microseconds=int(hours * 3_600_000_000))


async def sweep(uow: UnitOfWork, now: datetime | None = None) -> None:
    """Rejects files whose documents are still incomplete after the timeout, decides files that have
    waited that long for a registration, and retries files blocked on a missing FX rate once per process.
    Bounded batches; SKIP LOCKED leaves files that a consumer or another instance is working on. A file
    that cannot be processed is logged and left as it was."""
    now = now or utcnow()
    cutoff = now - timeout_delta(settings().document_timeout_hours)
    for work in ("timeout", "waiting", "blocked"):
        files = await store.sweep_files(uow.session, work, cutoff, PROCESS_STARTED_AT, SWEEP_BATCH)
        if not files:
            continue
        desk = await store.desk(uow.session, files)
        decisions = []
        for file in files.values():
            with desk.isolated(file):
                decision = desk.sweep_file(file, work, now)
                if decision is not None:
                    decisions.append((file, decision))
        await store.save(uow.session, desk)
        for file, decision in decisions:
            uow.emit(decision, correlation_id=file.key)


# --- inspection results --------------------------------------------------------------------------


async def record_inspection(uow: UnitOfWork, platform_code: str, order_no: str, passed: bool, note: str) -> OrderFile:
    """An inspector's result on a parcel held for inspection (domain §10). Raises NotFound, NotInInspection."""
    files = await store.lock_files(uow.session, [(platform_code, order_no)])
    desk = await store.desk(uow.session, files, known={})
    file, decision = desk.inspected((platform_code, order_no), passed, note, utcnow())
    await store.save(uow.session, desk)
    uow.emit(decision, correlation_id=file.key)
    return file
