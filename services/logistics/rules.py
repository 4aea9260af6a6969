"""The shipment state machine that logistics keeps per waybill (spec §4.3, §4.4, §6 `logistics.status.v1`).

A shipment moves along

    created -> picked_up -> departed -> arrived_port -> cleared -> delivered

and can fall into `exception` from any state. `created` comes from the waybill itself, `cleared` from
customs' release decision; every other step is a tracking event sent by the logistics firm.

Inputs reach us out of order and more than once: Kafka redelivers, firms batch and send late, and the
customs decision travels on another topic than the tracking events. So the machine is built to give the
same answer whatever order the same facts arrive in, and every function here is pure: the caller passes
the state and the times in, and persists and publishes the result.

Rules (those the domain gives and those it left open, all explicit; times are timezone-aware):

1. Never backwards. The visible status only moves forward along PROGRESS. A progress event at or below
   the furthest status reached does not change the status: a `departed` arriving after `arrived_port`,
   or a duplicate of any event, gives `changed` False. Rank decides, not time: a parcel cannot un-arrive.
2. Steps may be skipped. A forward event is applied even if the steps before it never came
   (`arrived_port` straight after `created`); firms do not report every scan.
3. Time. `last_event_at` is the newest time the firm has reported anything about the parcel: every
   progress event counts, even one too low to show (rule 1), and so does every exception applied. It never
   goes back, and a forward event stamped earlier than it is still applied (rank decides). In the ordinary
   in-order flow it is exactly the time of the event that set the current status. The customs release
   does not set it: that is customs' clock, and a release says nothing about where the parcel is or
   whether the firm's problem with it is over (rule 8). An exact duplicate therefore changes nothing at
   all; a lower event stamped later than anything before changes only this time, nothing visible.
4. `cleared` belongs to customs. The firm cannot send it (nor `created`, which is the waybill itself):
   such an event is a contract violation and raises ValueError, so the consumer dead-letters it instead
   of silently dropping it.
5. `delivered` before customs release is accepted as the status (the parcel is where it is) but the
   transition carries the anomaly DELIVERED_BEFORE_RELEASE. It is raised once, when `delivered` is first
   reached (even while the status shows `exception`); a duplicate `delivered` does not raise it again. A
   release that arrives later does not retract it: from the order of arrival alone we cannot tell whether
   customs was late or the firm early, and the trace keeps both times for whoever investigates.
6. An exception is applied only if its `at` is not older than `last_event_at` (an equal time counts: at a
   tie the exception wins). An exception older than something the firm already reported describes a
   problem the parcel has since moved past, so it changes nothing. Once in exception, a newer exception
   moves `exception_at` forward (nothing visible changes); an older one is ignored.
7. Resuming. While in exception, a progress event strictly newer than `exception_at` ends the exception:
   the status becomes the higher of `furthest` and that event (a newer but lower event does not pull the
   shipment back). A progress event not newer than the exception (same time or before) leaves the status
   at `exception` but still raises `furthest`, because the parcel did get that far; the resume then starts
   from there.
8. Customs release. It sets `released` and, if the shipment is below `cleared`, moves it to `cleared`
   (physical steps the firm reports after that sit below `cleared` and are not shown; they stay in the
   trace). A shipment already `delivered` stays `delivered`. While in exception, the release records
   `released` and `furthest = cleared` but keeps the visible status `exception`: a customs decision does
   not resolve the firm's problem with the parcel; the next newer progress event resumes at `cleared` or
   beyond. A second release (redelivery) changes nothing.
9. Cancelled orders. There is no `apply_order_cancelled`: the logistics status vocabulary has no
   `cancelled`, and an order can only be cancelled before release, so the shipment simply never reaches
   `cleared`. The order status view shows the cancellation from customs' status.

Together these make the visible outcome independent of the order of arrival: for the same facts,
`furthest` is the highest step reported (`cleared` counting once released), and the status is `exception`
exactly when the newest exception is at least as new as every progress report, `furthest` otherwise.
What does depend on the order is which transition reports a change or the one-off anomaly, and whether
a stale exception's time was ever recorded in `exception_at`.

`order_never_came` is the watchdog for a waybill whose order never arrived (anomaly ORDER_NEVER_CAME):
it fires once the grace period has fully elapsed (elapsed >= grace), the same way "still missing 72 hours
after" reads in domain rules §4.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import get_args

from contracts.v1.documents import TrackingEventName

PROGRESS = ("created", "picked_up", "departed", "arrived_port", "cleared", "delivered")
EXCEPTION = "exception"
DELIVERED_BEFORE_RELEASE = "DELIVERED_BEFORE_RELEASE"

_RANK = {status: rank for rank, status in enumerate(PROGRESS)}
_FIRM_EVENTS = frozenset(get_args(TrackingEventName))


@dataclass(frozen=True)
class Shipment:
    """The state logistics keeps per waybill."""

    status: str  # one of PROGRESS or "exception"
    furthest: str  # furthest progress status reached (never goes back)
    last_event_at: datetime | None  # newest time the firm reported anything (rule 3); never goes back
    released: bool = False  # customs released the order
    exception_at: datetime | None = None  # the newest exception applied; kept after resuming

    def __post_init__(self) -> None:
        # State is read back from a database; a misspelt status must fail loudly, not rank as nothing.
        if self.status != EXCEPTION and self.status not in _RANK:
            raise ValueError(f"unknown shipment status {self.status!r}")
        if self.furthest not in _RANK:
            raise ValueError(f"unknown furthest status {self.furthest!r}")
        # The transitions below rely on these two invariants instead of re-deriving them.
        if self.status != EXCEPTION and self.status != self.furthest:
            raise ValueError(f"outside an exception the status is the furthest reached, not {self.status!r}")
        if self.status == EXCEPTION and self.exception_at is None:
            raise ValueError("a shipment in exception needs the exception's time")


@dataclass(frozen=True)
class Transition:
    shipment: Shipment  # the new state (may equal the old one)
    changed: bool  # whether the visible status changed (publish only then)
    anomaly: str | None = None  # DELIVERED_BEFORE_RELEASE, published even when nothing else changed


def new_shipment() -> Shipment:
    return Shipment(status="created", furthest="created", last_event_at=None)


def _higher(a: str, b: str) -> str:
    return a if _RANK[a] >= _RANK[b] else b


def _later(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


def _transition(old: Shipment, new: Shipment, anomaly: str | None = None) -> Transition:
    return Transition(shipment=new, changed=new.status != old.status, anomaly=anomaly)


def apply_tracking_event(s: Shipment, event: str, at: datetime) -> Transition:
    """Apply one tracking event from the logistics firm (rules 1-7)."""
    if event not in _FIRM_EVENTS:
        raise ValueError(f"a logistics firm cannot send {event!r}; it may send {sorted(_FIRM_EVENTS)}")
    if event == EXCEPTION:
        return _apply_exception(s, at)
    return _apply_progress(s, event, at)


def _apply_exception(s: Shipment, at: datetime) -> Transition:
    if s.last_event_at is not None and at < s.last_event_at:
        return _transition(s, s)  # rule 6: the parcel has moved past this problem
    new = replace(s, status=EXCEPTION, exception_at=at, last_event_at=at)
    return _transition(s, new)


def _apply_progress(s: Shipment, event: str, at: datetime) -> Transition:
    furthest = _higher(s.furthest, event)
    latest = _later(s.last_event_at, at)
    # Rule 5: only the event that first reaches `delivered` reports it, so duplicates stay quiet.
    anomaly = (
        DELIVERED_BEFORE_RELEASE
        if event == "delivered" and s.furthest != "delivered" and not s.released
        else None
    )
    if s.status == EXCEPTION and s.exception_at is not None and at <= s.exception_at:
        return _transition(s, replace(s, furthest=furthest, last_event_at=latest), anomaly)  # rule 7

    # Outside an exception the status always equals `furthest`, so never-backwards (rule 1), skipping
    # (rule 2) and resuming at the higher of the two (rule 7) all come down to showing `furthest`.
    new = replace(s, status=furthest, furthest=furthest, last_event_at=latest)
    return _transition(s, new, anomaly)


def apply_customs_release(s: Shipment, at: datetime) -> Transition:
    """Customs released the order (rule 8). `at` is accepted for symmetry and deliberately unused (rule 3)."""
    if s.released:
        return _transition(s, s)
    furthest = _higher(s.furthest, "cleared")
    status = s.status if s.status == EXCEPTION else furthest
    return _transition(s, replace(s, status=status, furthest=furthest, released=True))


def order_never_came(waybill_received_at: datetime, order_seen: bool, now: datetime, grace_hours: Decimal) -> bool:
    """Whether a waybill has waited the full grace period for an order that never arrived."""
    if grace_hours < 0:
        raise ValueError("grace_hours must be 0 or more")
    if order_seen:
        return False
    # timedelta from Decimal hours would go through float; compare whole microseconds instead.
    grace = timedelta(microseconds=int(grace_hours * 3_600_000_000))
    return now - waybill_received_at >= grace
