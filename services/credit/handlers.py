"""Credit: keeps every enterprise's credit file from the other agencies' events and publishes its rating
(domain rules §9, spec §6 `credit.rating.v1`). Scoring and every decision are in rules.py, the loading and
saving in store.py; a handler here takes a run of one event type (oldest first, several events of one
enterprise folded in order), loads the files of all its enterprises, decides, saves, emits.

- `EnterpriseRegistered` opens the file with the registered customs category and publishes the starting
  rating (previous_grade None, reason "registered"), so customs and the gateway learn it.
- `CustomsDecision` scores the ecommerce enterprise, `WaybillTracked` with event `exception` the
  logistics enterprise. Each scoring event is written to the `score_events` ledger under a business key
  first, so the same decision or report published twice is counted once.
- An event about an enterprise without a file (its registration travels on another topic and may come
  later) opens a provisional `general` file; the registration then sets the category and recounts the
  score from the ledger (rules.register_category).
- Every change of the score publishes `CreditRatingChanged` (not only a change of grade: the gateway's
  enterprise view shows the score too); a listing publishes `NegativeListChanged` as well. Several score
  events of one enterprise in one run publish one rating each, in order, exactly as one at a time.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from contracts.v1.events import (
    CreditRatingChanged,
    CustomsDecision,
    EnterpriseRegistered,
    NegativeListChanged,
    WaybillTracked,
)
from services.credit import rules, store
from services.credit.domain import (
    ListingNotice,
    Notice,
    ScoreEvent,
    decision_of,
    registration_of,
    report_of,
)
from shared.batch import Received
from shared.clock import utcnow
from shared.runtime import Handlers, UnitOfWork

handlers = Handlers()


@handlers.on_batch(EnterpriseRegistered)
async def on_registrations(uow: UnitOfWork, events: list[Received[EnterpriseRegistered]]) -> None:
    registrations = [registration_of(e.payload) for e in events]
    accounts = await store.accounts(uow.session, {r.code for r in registrations})
    ledger = await store.ledger(uow.session, rules.awaiting_registration(accounts, registrations))
    now = utcnow()
    outcome = rules.number_notices(rules.register(accounts, registrations, ledger, now))
    await store.open_files(uow.session, outcome.opened, now)
    await store.save_files(uow.session, outcome.changed, now)
    emit(uow, events, outcome.notices, now)


@handlers.on_batch(CustomsDecision)
async def on_customs_decisions(uow: UnitOfWork, events: list[Received[CustomsDecision]]) -> None:
    await count(uow, events, [rules.decision_score_event(decision_of(e.payload)) for e in events])


@handlers.on_batch(WaybillTracked)
async def on_tracking_reports(uow: UnitOfWork, events: list[Received[WaybillTracked]]) -> None:
    await count(uow, events, [rules.exception_score_event(report_of(e.payload)) for e in events])


async def count(uow: UnitOfWork, events: Sequence[Received], scoring: Sequence[ScoreEvent | None]) -> None:
    """Counts the score events of a run (one per input, None: scores nothing), each once."""
    if not any(scoring):
        return
    scoring = rules.not_counted_yet(await store.counted_keys(uow.session, {s.key for s in scoring if s}), scoring)
    accounts = await store.accounts(uow.session, {s.enterprise_code for s in scoring if s})
    provisional = rules.provisional_accounts(accounts, scoring)
    now = utcnow()
    outcome = rules.number_notices(rules.count_score_events({**accounts, **provisional}, scoring, now,
                                                            provisional.keys()))
    await store.count(uow.session, scoring, now)
    await store.open_files(uow.session, outcome.opened, now)
    await store.save_files(uow.session, outcome.changed, now)
    emit(uow, events, outcome.notices, now)


# --- what credit tells --------------------------------------------------------------------------------


def emit(uow: UnitOfWork, causes: Sequence[Received | None], notices: Sequence[Sequence[Notice]],
         at: datetime) -> None:
    """Publishes each input's notices, in input order, keyed by the enterprise, continuing the trace of
    the input that caused them."""
    for cause, said in zip(causes, notices, strict=True):
        for n in said:
            uow.emit(event_of(n, at), correlation_id=n.file.code, cause=cause)


def event_of(n: Notice, at: datetime) -> CreditRatingChanged | NegativeListChanged:
    f = n.file
    if isinstance(n, ListingNotice):
        return NegativeListChanged(enterprise_code=f.code, listed=f.negative_listed, score=rules.display_score(f.score),
                                   grade=rules.grade(f.score), reason=n.reason[:500], changed_at=at,
                                   enterprise_revision=n.revision)
    return CreditRatingChanged(
        enterprise_code=f.code, score=rules.display_score(f.score), grade=rules.grade(f.score),
        previous_grade=n.previous_grade, customs_credit=f.customs_credit, negative_listed=f.negative_listed,
        reason=n.reason[:500], changed_at=at, enterprise_revision=n.revision)
