"""Credit files, scores, grades and the negative list (domain rules §9).

Every enterprise has a credit file opened at registration. Its score starts at 100 (`advanced` 110,
`untrustworthy` 50) and moves with events about the enterprise: the ecommerce enterprise answers for its
orders' customs decisions, the logistics enterprise for its waybills' exceptions. The grade follows the
score (A >= 90, B >= 75, C >= 60, D below), and an enterprise that is at D after a penalty goes on the
negative list, which only the operator lifts.

Scores are Decimal throughout: +0.1 steps added a thousand times must land exactly on the cap.

Decisions where the domain was silent:

- Opening at D does not list. An `untrustworthy` enterprise starts at 50 (grade D) but is not on the
  negative list until its first penalty: §9 lists an enterprise that *falls* to D, and its customs
  category already makes every parcel of it inspected (§10).
- One penalty per kind per decision. A rejection naming AMOUNT_MISMATCH twice (payment and freight) and
  IDENTITY_MISMATCH costs -5 once; PROHIBITED_GOODS costs -20 once; both kinds together cost -25.
- "Released without any finding" means a release whose reasons are empty or only
  SELECTED_FOR_INSPECTION (an inspection that passed found nothing). A release carrying any other reason
  (e.g. a general-trade release noting OVER_SINGLE_LIMIT) earns nothing. Rejections for reasons outside
  the two penalised kinds (limits, positive list, timeout, registration, negative list) cost nothing;
  `inspection`, `pending` and `cancelled` decisions change nothing.
- Counting each decision once is the caller's job (deduplicate redelivered decisions by order and
  version); a corrected order that is rejected again is a new decision and is penalised again.
- The cap only stops increases. A positive delta never takes the score above the cap, and never lowers a
  score that is somehow already above it. There is no floor: penalties keep counting below 0 so that
  the record says how far the enterprise fell.
- Listing happens only on a negative delta that leaves the grade at D while unlisted. A zero or positive
  delta never lists or unlists; a penalty while already listed does not list again (no second
  negative-list event).
- Removal keeps the score. The operator's removal clears only the listing: the score and grade stay as
  earned (an enterprise at D stays always inspected, §10), and the next penalty while still at D lists it
  again. Climbing out of D is done by released parcels, not by the operator.
- A registration that arrives after the file was opened. Events reach the credit service on several
  topics, so a decision about an enterprise can come before its registration; the file is then opened
  provisionally as `general`. When the registration arrives, `register_category` gives the file its
  registered category and recounts the score from that category's starting score with every change
  already counted, in the order they were counted: the result is exactly what the file would hold had
  the registration come first (for `general` that is the score it already has). The recount may put the
  enterprise on the negative list (an `untrustworthy` one that was already penalised) but never takes it
  off: only the operator does that.

The second half is what the credit service does with events (domain §9, spec §6 `credit.rating.v1`),
on its own views (services/credit/domain.py), for a run of events in the order they were consumed, so
that several events of one enterprise in one run publish exactly what they publish one at a time:

- which decisions and tracking reports score, and their ledger key and reason (`decision_score_event`,
  `exception_score_event`); which of them were not counted before (`not_counted_yet`);
- an event about an enterprise without a file opens a provisional `general` file
  (`provisional_accounts`); the registration then recounts it (`register`);
- every change of the score is told (not only a change of grade: the gateway's enterprise view shows
  the score too), with the grade before it; a listing is told as well. A counted event that changes
  nothing (+0.1 at the cap) is told to no one.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from decimal import Decimal
from typing import get_args

from contracts.identifiers import order_key
from contracts.v1.documents import CustomsCredit
from services.credit.domain import (
    Account,
    Decision,
    ListingNotice,
    Notice,
    RatingNotice,
    Registration,
    Report,
    ScoreEvent,
)

EXCEPTION_PENALTY = Decimal("-2")  # waybill exception, to the logistics enterprise
MISMATCH_PENALTY = Decimal("-5")
PROHIBITED_GOODS_PENALTY = Decimal("-20")
RELEASE_REWARD = Decimal("0.1")

MISMATCH_REASONS = frozenset({"AMOUNT_MISMATCH", "IDENTITY_MISMATCH", "ORDER_MISMATCH"})
NO_FINDING_REASONS = frozenset({"SELECTED_FOR_INSPECTION"})

_STARTING_SCORE = {"advanced": Decimal("110"), "general": Decimal("100"), "untrustworthy": Decimal("50")}
_CAP = {"advanced": Decimal("120"), "general": Decimal("110"), "untrustworthy": Decimal("110")}
_CATEGORIES = frozenset(get_args(CustomsCredit))
assert _CATEGORIES == _STARTING_SCORE.keys() == _CAP.keys()  # a new category must be given its numbers


def _check_category(customs_credit: str) -> None:
    if customs_credit not in _CATEGORIES:
        raise ValueError(f"unknown customs credit category {customs_credit!r}")


def _check_score(value: object, name: str) -> None:
    # A float would bring binary rounding into a score that must add up exactly.
    if not isinstance(value, Decimal) or not value.is_finite():
        raise TypeError(f"{name} must be a finite Decimal, not {value!r}")


@dataclass(frozen=True)
class CreditFile:
    code: str
    customs_credit: str
    score: Decimal
    negative_listed: bool

    def __post_init__(self) -> None:
        _check_category(self.customs_credit)
        _check_score(self.score, "score")


@dataclass(frozen=True)
class CreditChange:
    file: CreditFile
    previous_grade: str
    grade: str
    grade_changed: bool
    newly_negative_listed: bool


def open_credit_file(code: str, customs_credit: str) -> CreditFile:
    _check_category(customs_credit)
    return CreditFile(
        code=code, customs_credit=customs_credit, score=_STARTING_SCORE[customs_credit], negative_listed=False
    )


def score_cap(customs_credit: str) -> Decimal:
    _check_category(customs_credit)
    return _CAP[customs_credit]


def grade(score: Decimal) -> str:
    _check_score(score, "score")
    if score >= 90:
        return "A"
    if score >= 75:
        return "B"
    if score >= 60:
        return "C"
    return "D"


def decision_score_change(status: str, reason_codes: Iterable[str]) -> Decimal:
    """The change to the ecommerce enterprise's score for one customs decision about its order."""
    codes = set(reason_codes)
    if status == "rejected":
        change = Decimal("0")
        if codes & MISMATCH_REASONS:
            change += MISMATCH_PENALTY
        if "PROHIBITED_GOODS" in codes:
            change += PROHIBITED_GOODS_PENALTY
        return change
    if status == "released" and codes <= NO_FINDING_REASONS:
        return RELEASE_REWARD
    return Decimal("0")


def apply_score_change(f: CreditFile, delta: Decimal) -> CreditChange:
    _check_score(delta, "delta")
    score = f.score + delta
    if delta > 0:
        score = min(score, max(score_cap(f.customs_credit), f.score))
    previous_grade, new_grade = grade(f.score), grade(score)
    newly_listed = delta < 0 and new_grade == "D" and not f.negative_listed
    new_file = replace(f, score=score, negative_listed=f.negative_listed or newly_listed)
    return CreditChange(
        file=new_file,
        previous_grade=previous_grade,
        grade=new_grade,
        grade_changed=new_grade != previous_grade,
        newly_negative_listed=newly_listed,
    )


def remove_from_negative_list(f: CreditFile) -> CreditFile:
    """The operator's removal: lifts the listing, keeps the score (see the module docstring)."""
    return replace(f, negative_listed=False)


def register_category(f: CreditFile, customs_credit: str, counted: Iterable[Decimal]) -> CreditFile:
    """The registered category for a file opened before its registration arrived (see the module
    docstring): recounted from that category's start with the changes `counted`, in counting order."""
    recounted = open_credit_file(f.code, customs_credit)
    for delta in counted:
        recounted = apply_score_change(recounted, delta).file
    return replace(recounted, negative_listed=f.negative_listed or recounted.negative_listed)


# --- the credit service: scoring events, provisional files, registrations ------------------------------

PROVISIONAL_CATEGORY = "general"
_TENTH = Decimal("0.1")


def display_score(score: Decimal) -> Decimal:
    """Scores move in tenths; one decimal place whatever the database gave back ("100.0", "99.9")."""
    tenths = score.quantize(_TENTH)
    return tenths if tenths == score else score


def decision_score_event(d: Decision) -> ScoreEvent | None:
    """The score event of a customs decision for its ecommerce enterprise, or None when it scores nothing
    (`decision_score_change`). A rejection is keyed by (order, order version, status): a later decision of
    a corrected order is a new decision; the same one published twice is not. A release is keyed by the
    order alone: released is final, and customs re-publishes the release under the version of a
    correction or cancellation that came too late (README, "A cancellation racing a release"), which is
    the same release and earns nothing twice."""
    codes = list(dict.fromkeys(d.reason_codes))
    delta = decision_score_change(d.status, codes)
    if delta == 0:
        return None
    order = order_key(d.platform_code, d.order_no)
    if d.status == "rejected":
        reason = f"order {order} rejected: {', '.join(codes)}"
    elif codes:  # only SELECTED_FOR_INSPECTION can accompany a scoring release
        reason = f"order {order} released after an inspection that found nothing"
    else:
        reason = f"order {order} released without finding"
    key = (release_event_key(d.platform_code, d.order_no) if d.status == "released"
           else json.dumps(["customs.decision", d.platform_code, d.order_no, d.order_version, d.status]))
    return ScoreEvent(d.ecommerce_code, delta, key, reason, d.decided_at)


def release_event_key(platform_code: str, order_no: str) -> str:
    """The score event key of an order's release: one per order, whatever version it was published under
    (`decision_score_event`); `make chaos` counts releases by it."""
    return json.dumps(["customs.release", platform_code, order_no])


def exception_score_event(r: Report) -> ScoreEvent | None:
    """The score event of a waybill `exception` for the logistics enterprise (EXCEPTION_PENALTY), or None
    for any other report. Keyed by (waybill, instant in UTC): the same exception reported twice, in any
    time zone, counts once."""
    if r.event != "exception":
        return None
    at = r.at.astimezone(timezone.utc)
    key = json.dumps(["waybill.exception", r.logistics_code, r.waybill_no, at.isoformat()])
    note = f": {r.note}" if r.note else ""
    reason = f"waybill {r.waybill_no} (order {order_key(r.platform_code, r.order_no)}) exception at {at.isoformat()}{note}"
    return ScoreEvent(r.logistics_code, EXCEPTION_PENALTY, key, reason, r.at)


def not_counted_yet(counted: Set[str], events: Sequence[ScoreEvent | None]) -> list[ScoreEvent | None]:
    """`events` (one per input, None: scores nothing) with those already `counted` (ledger keys), and the
    second of two with one key, replaced by None: each score event is counted once."""
    seen = set(counted)
    kept: list[ScoreEvent | None] = []
    for e in events:
        if e is None or e.key in seen:
            kept.append(None)
            continue
        seen.add(e.key)
        kept.append(e)
    return kept


def provisional_accounts(accounts: Mapping[str, Account], events: Iterable[ScoreEvent | None]) -> dict[str, Account]:
    """A provisional `general` file for every enterprise of `events` without one in `accounts`: its
    registration travels on another topic and may come later."""
    return {e.enterprise_code: Account(open_credit_file(e.enterprise_code, PROVISIONAL_CATEGORY))
            for e in events if e is not None and e.enterprise_code not in accounts}


@dataclass(frozen=True)
class CreditOutcome:
    """What a run of events did: `opened`, files to create (final state); `changed`, existing files that
    changed (final state); `notices`, what to tell, one list per input, in input order."""

    opened: dict[str, Account] = field(default_factory=dict)
    changed: dict[str, Account] = field(default_factory=dict)
    notices: list[list[Notice]] = field(default_factory=list)


def count_score_events(accounts: Mapping[str, Account], events: Sequence[ScoreEvent | None], now: datetime,
                       opened: Set[str] = frozenset()) -> CreditOutcome:
    """Score events (one per input, None: nothing to count) folded in order over the files of their
    enterprises (`accounts` must hold every one; `opened`: those just opened provisionally). `now` is
    when a listing happens."""
    current = dict(accounts)
    notices: list[list[Notice]] = []
    for e in events:
        if e is None:
            notices.append([])
            continue
        a = current[e.enterprise_code]
        change = apply_score_change(a.file, e.delta)
        if change.file == a.file:
            notices.append([])  # e.g. +0.1 at the cap: counted, but nothing to tell anyone
            continue
        current[e.enterprise_code] = replace(a, file=change.file,
                                             listed_at=now if change.newly_negative_listed else a.listed_at)
        said: list[Notice] = [RatingNotice(change.file, change.previous_grade, e.reason)]
        if change.newly_negative_listed:
            said.append(ListingNotice(change.file, f"grade D after {e.reason}"))
        notices.append(said)
    return _outcome(accounts, current, opened, notices)


def awaiting_registration(accounts: Mapping[str, Account], registrations: Iterable[Registration]) -> set[str]:
    """Enterprises registering whose file is provisional: their score is recounted from the ledger."""
    return {r.code for r in registrations if r.code in accounts and accounts[r.code].registered_at is None}


def register(accounts: Mapping[str, Account], registrations: Sequence[Registration],
             ledger: Mapping[str, Sequence[Decimal]], now: datetime) -> CreditOutcome:
    """Registrations folded in order. An enterprise without a file gets one at its category's start
    (previous grade None, reason "registered"). A provisional file takes the registered category and is
    recounted (`register_category`) from `ledger` (every delta counted for it, in counting order); the
    rating is told even when nothing changed, and a listing the recount causes is told too (`now`: when).
    A registration of a registered file changes nothing: it is never repeated with other content."""
    current = dict(accounts)
    opened: set[str] = set()
    notices: list[list[Notice]] = []
    for r in registrations:
        a = current.get(r.code)
        if a is None:
            f = open_credit_file(r.code, r.customs_credit)
            current[r.code] = Account(f, registered_at=r.registered_at)
            opened.add(r.code)
            notices.append([RatingNotice(f, None, "registered")])
            continue
        if a.registered_at is not None:
            notices.append([])
            continue
        counted = list(ledger.get(r.code, ()))
        after = register_category(a.file, r.customs_credit, counted)
        newly_listed = after.negative_listed and not a.file.negative_listed
        current[r.code] = Account(after, r.registered_at, now if newly_listed else a.listed_at)
        reason = "registered"
        if counted:
            reason += (f" as {r.customs_credit}; the {len(counted)} score event(s) that came before the "
                       f"registration counted from its starting score")
        said: list[Notice] = [RatingNotice(after, grade(a.file.score), reason)]
        if newly_listed:
            said.append(ListingNotice(after, f"grade {grade(after.score)} once registered as {r.customs_credit}"))
        notices.append(said)
    return _outcome(accounts, current, opened, notices)


def lift_listing(a: Account) -> tuple[Account, ListingNotice | None]:
    """The operator's removal from the negative list (`remove_from_negative_list`); nothing to do, and
    nothing to tell, when the enterprise is not listed."""
    if not a.file.negative_listed:
        return a, None
    lifted = replace(a, file=remove_from_negative_list(a.file), listed_at=None, revision=a.revision + 1)
    return lifted, ListingNotice(lifted.file, "removed from the negative list by the operator", lifted.revision)


def number_notices(outcome: CreditOutcome) -> CreditOutcome:
    """The outcome with every notice numbered: a file's revision counts each notice told about it, in
    input order, and the files to write carry their last. Credit's events about one enterprise travel on
    two topics (credit.rating, credit.negative_list) that a reader may consume in either order; the
    revision (event `enterprise_revision`) lets it keep the latest state. Every notice's file is in
    `opened` or `changed` (a notice is only told about a change), whose revision is the one before."""
    files = {**outcome.opened, **outcome.changed}
    revision = {code: a.revision for code, a in files.items()}
    numbered: list[list[Notice]] = []
    for said in outcome.notices:
        row: list[Notice] = []
        for n in said:
            revision[n.file.code] += 1
            row.append(replace(n, revision=revision[n.file.code]))
        numbered.append(row)
    return CreditOutcome(opened={c: replace(a, revision=revision[c]) for c, a in outcome.opened.items()},
                         changed={c: replace(a, revision=revision[c]) for c, a in outcome.changed.items()},
                         notices=numbered)


def _outcome(before: Mapping[str, Account], after: Mapping[str, Account], opened: Set[str],
             notices: list[list[Notice]]) -> CreditOutcome:
    return CreditOutcome(
        opened={c: a for c, a in after.items() if c in opened or c not in before},
        changed={c: a for c, a in after.items() if c in before and c not in opened and before[c] != a},
        notices=notices)
