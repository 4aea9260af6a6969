"""What credit knows, in its own terms: the few facts it takes from each event on the wire, the credit file
as it keeps it, the score events it counts, and what it has to tell the mesh. rules.py decides on these;
store.py loads and saves them; handlers.py builds them from the wire models with the `*_of` functions
below and turns notices back into events. No I/O here. Scores and deltas are Decimal points (domain §9);
times are timezone-aware datetimes; an enterprise is keyed by its code.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from contracts.v1.events import CustomsDecision, EnterpriseRegistered, WaybillTracked

if TYPE_CHECKING:  # rules.py builds on these views; the credit file itself lives there
    from services.credit.rules import CreditFile


@dataclass(frozen=True)
class Registration:
    """An enterprise registered with the single window (`customs_credit`: its customs category)."""

    code: str
    customs_credit: str
    registered_at: datetime


@dataclass(frozen=True)
class Decision:
    """A customs decision about an order of `ecommerce_code` (`reason_codes` in the order customs gave)."""

    platform_code: str
    order_no: str
    order_version: int
    ecommerce_code: str
    status: str
    reason_codes: tuple[str, ...]
    decided_at: datetime


@dataclass(frozen=True)
class Report:
    """A tracking report of the logistics firm `logistics_code` (`event`: the firm's event name)."""

    logistics_code: str
    waybill_no: str
    platform_code: str
    order_no: str
    event: str
    at: datetime
    note: str = ""


@dataclass(frozen=True)
class ScoreEvent:
    """One change to count on an enterprise's score, once: `key` is its business key in the ledger
    (the same decision or report published twice has the same key), `delta` in points, never 0."""

    enterprise_code: str
    delta: Decimal
    key: str
    reason: str
    occurred_at: datetime


@dataclass(frozen=True)
class Account:
    """The credit file as credit keeps it: `registered_at` None while the file is provisional (opened by
    an event that came before the registration); `listed_at`: when it went on the negative list."""

    file: CreditFile
    registered_at: datetime | None = None
    listed_at: datetime | None = None
    # Counts every notice told about the file; each notice carries its own (rules.number_notices).
    revision: int = 0


@dataclass(frozen=True)
class RatingNotice:
    """The score changed, or the file opened (`credit.rating.v1` CreditRatingChanged)."""

    file: CreditFile
    previous_grade: str | None
    reason: str
    revision: int = 0  # the file's revision this notice tells (event enterprise_revision)


@dataclass(frozen=True)
class ListingNotice:
    """The enterprise went on, or came off, the negative list (`credit.rating.v1` NegativeListChanged)."""

    file: CreditFile
    reason: str
    revision: int = 0


Notice = RatingNotice | ListingNotice


def registration_of(r: EnterpriseRegistered) -> Registration:
    return Registration(r.code, r.customs_credit, r.registered_at)


def decision_of(d: CustomsDecision) -> Decision:
    return Decision(d.platform_code, d.order_no, d.order_version, d.ecommerce_code, d.status,
                    tuple(r.code for r in d.reasons), d.decided_at)


def report_of(t: WaybillTracked) -> Report:
    return Report(t.logistics_code, t.waybill_no, t.platform_code, t.order_no, t.event, t.at, t.note)
