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
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import get_args

from contracts.v1.documents import CustomsCredit

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
