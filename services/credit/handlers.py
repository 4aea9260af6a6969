"""Credit: keeps every enterprise's credit file from the other agencies' events and publishes its rating
(domain rules §9, spec §6 `credit.rating.v1`). The scoring itself is in rules.py; this is its I/O.

- `EnterpriseRegistered` opens the file with the registered customs category and publishes the starting
  rating (previous_grade None, reason "registered"), so customs and the gateway learn it.
- `CustomsDecision` scores the ecommerce enterprise, `WaybillTracked` with event `exception` the
  logistics enterprise. Each scoring event is written to the `score_events` ledger under a business key
  first, so the same decision or report published twice is counted once.
- An event about an enterprise without a file (its registration travels on another topic and may come
  later) opens a provisional `general` file; the registration then sets the category and recounts the
  score from the ledger (rules.register_category).
- Every change of the score publishes `CreditRatingChanged` (not only a change of grade: the gateway's
  enterprise view shows the score too); a listing publishes `NegativeListChanged` as well.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import Envelope
from contracts.v1.events import (
    CreditRatingChanged,
    CustomsDecision,
    EnterpriseRegistered,
    NegativeListChanged,
    WaybillTracked,
)
from services.credit.rules import (
    EXCEPTION_PENALTY,
    CreditFile,
    apply_score_change,
    decision_score_change,
    grade,
    open_credit_file,
    register_category,
)
from services.credit.tables import credit_files, score_events
from shared.db import insert_if_absent
from shared.runtime import Handlers, UnitOfWork
from shared.clock import utcnow

handlers = Handlers()

PROVISIONAL_CATEGORY = "general"
_TENTH = Decimal("0.1")



def display_score(score: Decimal) -> Decimal:
    """Scores move in tenths; one decimal place whatever the database gave back ("100.0", "99.9")."""
    tenths = score.quantize(_TENTH)
    return tenths if tenths == score else score


def file_of(row) -> CreditFile:  # noqa: ANN001
    return CreditFile(code=row.code, customs_credit=row.customs_credit, score=Decimal(row.score),
                      negative_listed=bool(row.negative_listed))


async def load_file(session: AsyncSession, code: str, for_update: bool = True):  # noqa: ANN201
    query = select(credit_files).where(credit_files.c.code == code)
    return (await session.execute(query.with_for_update() if for_update else query)).first()


def rating_changed(uow: UnitOfWork, f: CreditFile, previous_grade: str | None, reason: str, at: datetime) -> None:
    uow.emit(CreditRatingChanged(
        enterprise_code=f.code, score=display_score(f.score), grade=grade(f.score), previous_grade=previous_grade,
        customs_credit=f.customs_credit, negative_listed=f.negative_listed, reason=reason[:500], changed_at=at,
    ), correlation_id=f.code)


def negative_list_changed(uow: UnitOfWork, f: CreditFile, reason: str, at: datetime) -> None:
    uow.emit(NegativeListChanged(
        enterprise_code=f.code, listed=f.negative_listed, score=display_score(f.score), grade=grade(f.score),
        reason=reason[:500], changed_at=at,
    ), correlation_id=f.code)


# --- registration -------------------------------------------------------------------------------------


@handlers.on(EnterpriseRegistered)
async def on_enterprise_registered(uow: UnitOfWork, event: Envelope, r: EnterpriseRegistered) -> None:
    now = utcnow()
    row = await load_file(uow.session, r.code)
    if row is None:
        f = open_credit_file(r.code, r.customs_credit)
        if await insert_if_absent(uow.session, credit_files, {
                "code": f.code, "customs_credit": f.customs_credit, "score": f.score, "negative_listed": False,
                "registered_at": r.registered_at, "opened_at": now, "updated_at": now}):
            rating_changed(uow, f, None, "registered", now)
            return
        row = await load_file(uow.session, r.code)  # another instance just opened it provisionally
    if row.registered_at is not None:
        return  # the registration again (a registration is never repeated with other content)
    before = file_of(row)
    counted = (await uow.session.execute(select(score_events.c.delta).where(
        score_events.c.enterprise_code == r.code).order_by(score_events.c.id))).scalars().all()
    after = register_category(before, r.customs_credit, counted)
    newly_listed = after.negative_listed and not before.negative_listed
    await uow.session.execute(update(credit_files).where(credit_files.c.code == r.code).values(
        customs_credit=after.customs_credit, score=after.score, negative_listed=after.negative_listed,
        listed_at=now if newly_listed else row.listed_at, registered_at=r.registered_at, updated_at=now))
    reason = "registered"
    if counted:
        reason += (f" as {r.customs_credit}; the {len(counted)} score event(s) that came before the registration "
                   f"counted from its starting score")
    rating_changed(uow, after, grade(before.score), reason, now)
    if newly_listed:
        negative_list_changed(uow, after, f"grade {grade(after.score)} once registered as {r.customs_credit}", now)


# --- scoring ------------------------------------------------------------------------------------------


async def count_score_event(uow: UnitOfWork, code: str, delta: Decimal, event_key: str, reason: str,
                            occurred_at: datetime) -> None:
    """Counts one scoring event once (by `event_key`) on `code`'s file, opening it provisionally if needed."""
    now = utcnow()
    if not await insert_if_absent(uow.session, score_events, {
            "event_key": event_key, "enterprise_code": code, "delta": delta, "reason": reason[:2000],
            "occurred_at": occurred_at, "counted_at": now}):
        return  # already counted
    row = await load_file(uow.session, code)
    if row is None:
        provisional = open_credit_file(code, PROVISIONAL_CATEGORY)
        await insert_if_absent(uow.session, credit_files, {
            "code": code, "customs_credit": provisional.customs_credit, "score": provisional.score,
            "negative_listed": False, "registered_at": None, "opened_at": now, "updated_at": now})
        row = await load_file(uow.session, code)
    before = file_of(row)
    change = apply_score_change(before, delta)
    after = change.file
    if after == before:
        return  # e.g. +0.1 at the cap: counted, but nothing to tell anyone
    await uow.session.execute(update(credit_files).where(credit_files.c.code == code).values(
        score=after.score, negative_listed=after.negative_listed,
        listed_at=now if change.newly_negative_listed else row.listed_at, updated_at=now))
    rating_changed(uow, after, change.previous_grade, reason, now)
    if change.newly_negative_listed:
        negative_list_changed(uow, after, f"grade D after {reason}", now)


def _codes(d: CustomsDecision) -> list[str]:
    return list(dict.fromkeys(r.code for r in d.reasons))


@handlers.on(CustomsDecision)
async def on_customs_decision(uow: UnitOfWork, event: Envelope, d: CustomsDecision) -> None:
    codes = _codes(d)
    delta = decision_score_change(d.status, codes)
    if delta == 0:
        return
    order = f"{d.platform_code}:{d.order_no}"
    if d.status == "rejected":
        reason = f"order {order} rejected: {', '.join(codes)}"
    elif codes:  # only SELECTED_FOR_INSPECTION can accompany a scoring release
        reason = f"order {order} released after an inspection that found nothing"
    else:
        reason = f"order {order} released without finding"
    # A later decision of a corrected order is a new decision; the same one published twice is not.
    key = json.dumps(["customs.decision", d.platform_code, d.order_no, d.order_version, d.status])
    await count_score_event(uow, d.ecommerce_code, delta, key, reason, d.decided_at)


@handlers.on(WaybillTracked)
async def on_waybill_tracked(uow: UnitOfWork, event: Envelope, t: WaybillTracked) -> None:
    if t.event != "exception":
        return
    at = t.at.astimezone(timezone.utc)
    key = json.dumps(["waybill.exception", t.logistics_code, t.waybill_no, at.isoformat()])
    note = f": {t.note}" if t.note else ""
    reason = f"waybill {t.waybill_no} (order {t.platform_code}:{t.order_no}) exception at {at.isoformat()}{note}"
    await count_score_event(uow, t.logistics_code, EXCEPTION_PENALTY, key, reason, t.at)
