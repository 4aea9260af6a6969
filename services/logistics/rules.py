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

The second half applies the machine to the parcel logistics keeps (services/logistics/domain.py) and
says what to tell the mesh: one input (`track`, `release`, `receive_waybill`) and a run of inputs in
the order they were consumed (`track_reports`, `release_parcels`, `receive_waybills`, `first_sightings`,
`watch`), so that a run holding several events of one waybill or order gives exactly what the same events
give one at a time. Also here, every decision of when to act: which decisions release, which waybills
are new, which orders were not seen before, which reports wait for their waybill.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import get_args

from contracts.v1.documents import TrackingEventName
from services.logistics.domain import (
    AnomalyNotice,
    Decision,
    Notice,
    OrderKey,
    OrderSeen,
    Parcel,
    Report,
    StatusNotice,
    Waybill,
    WaybillKey,
)

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
    if order_seen:
        grace_period(grace_hours)  # still refuses a negative grace
        return False
    return now - waybill_received_at >= grace_period(grace_hours)


def grace_period(grace_hours: Decimal) -> timedelta:
    """LOGISTICS_ORDER_GRACE_HOURS (Decimal hours, >= 0) as a timedelta. Raises ValueError when negative."""
    if grace_hours < 0:
        raise ValueError("grace_hours must be 0 or more")
    # timedelta from Decimal hours would go through float; compare whole microseconds instead.
    return timedelta(microseconds=int(grace_hours * 3_600_000_000))


# --- the parcel ----------------------------------------------------------------------------------------

ORDER_NEVER_CAME = "ORDER_NEVER_CAME"
EVENT_FOR_UNKNOWN_WAYBILL = "EVENT_FOR_UNKNOWN_WAYBILL"


def is_release(d: Decision) -> bool:
    """Whether a customs decision moves the parcel: only a release does (rule 8); a cancellation cannot
    follow one (rule 9), inspection and rejection leave the parcel where it is."""
    return d.status == "released"


def track(p: Parcel, r: Report) -> tuple[Parcel, list[Notice]]:
    """One firm report applied to a parcel (rules 1-7): the new parcel and what to tell. The location
    moves with a visible change only. Raises ValueError for an event the firm cannot send (rule 4)."""
    try:
        transition = apply_tracking_event(p.shipment, r.event, r.at)
    except ValueError as err:
        raise ValueError(f"tracking event refused for waybill {p.ref.waybill_no} of {p.ref.logistics_code}: "
                         f"{err}") from err
    new = replace(p, shipment=transition.shipment)
    notices: list[Notice] = []
    if transition.changed:
        new = replace(new, location=r.location)
        notices.append(StatusNotice(p.ref, new.shipment.status, p.shipment.status, r.at, r.location))
    if transition.anomaly:
        notices.append(AnomalyNotice(
            p.ref, transition.anomaly,
            f"waybill {p.ref.waybill_no} reported {r.event} at {r.at.isoformat()} before customs released "
            f"order {p.ref.order_no}", r.at))
    return new, notices


def release(p: Parcel, decided_at: datetime, at: datetime) -> tuple[Parcel, list[Notice]]:
    """Customs' release applied to a parcel (rule 8); `at` is the time the status change is told with.
    The first release's time is kept; a cleared parcel's location is "" (clearance happens at customs,
    not where the firm last scanned it)."""
    transition = apply_customs_release(p.shipment, decided_at)
    new = replace(p, shipment=transition.shipment, released_at=p.released_at or decided_at)
    if not transition.changed:
        return new, []
    new = replace(new, location="")
    return new, [StatusNotice(p.ref, new.shipment.status, p.shipment.status, at, "")]


def unknown_waybill(r: Report) -> AnomalyNotice:
    """A report about a waybill logistics does not have: kept, applied if the waybill turns up."""
    return AnomalyNotice(
        r.ref, EVENT_FOR_UNKNOWN_WAYBILL,
        f"{r.event} reported at {r.at.isoformat()} for waybill {r.ref.waybill_no} of {r.ref.logistics_code}, "
        "which logistics has not received; the report is kept and applied if the waybill arrives", r.at)


@dataclass(frozen=True)
class Arrival:
    """A new parcel, what to tell about it, and kept reports the machine refused (with the reason)."""

    parcel: Parcel
    notices: list[Notice]
    refused: list[tuple[Report, str]] = field(default_factory=list)


def receive_waybill(w: Waybill, order_seen_at: datetime | None, released_at: datetime | None,
                    kept: Sequence[Report] = ()) -> Arrival:
    """A parcel for a waybill logistics did not have: `created`, then what happened before the waybill
    got here replayed in the order it happened: the order's release (`released_at`, if customs released
    it already; told at the later of the release and the waybill) and the reports `kept` for it. A
    release at the same instant as a report counts as earlier: customs had decided when the report was
    made. The watchdog waits for the order unless it was seen (`order_seen_at`)."""
    p = Parcel(ref=w.ref, shipment=new_shipment(), location="", waybill_received_at=w.submitted_at,
               order_seen_at=order_seen_at, awaiting_order_since=None if order_seen_at else w.submitted_at)
    notices: list[Notice] = [StatusNotice(w.ref, p.shipment.status, None, w.submitted_at, "")]
    refused: list[tuple[Report, str]] = []
    facts: list[tuple[datetime, int, Report | None]] = [(r.at, 1, r) for r in kept]
    if released_at is not None:
        facts.append((released_at, 0, None))
    for at, _, report in sorted(facts, key=lambda f: (f[0], f[1])):
        if report is None:
            p, said = release(p, at, max(at, w.submitted_at))
        else:
            try:
                p, said = track(p, report)
            except ValueError as err:
                # Kept reports passed the contract, so this cannot happen today; if it ever does, one bad
                # report must not cost the waybill itself.
                refused.append((report, str(err)))
                continue
        notices += said
    return Arrival(p, notices, refused)


@dataclass(frozen=True)
class RunOutcome:
    """What a run of inputs did. `parcels`: every parcel created or changed, in its final state, by key;
    `notices`: what to tell, one list per input, in input order; `applied`: per input, whether a report
    was applied to a parcel (False: kept for a waybill still to come); `refused`: kept reports refused."""

    parcels: dict[WaybillKey, Parcel]
    notices: list[list[Notice]]
    applied: list[bool] = field(default_factory=list)
    refused: list[tuple[Report, str]] = field(default_factory=list)


def receive_waybills(waybills: Sequence[Waybill], known: Set[WaybillKey], seen: Mapping[OrderKey, datetime],
                     released: Mapping[OrderKey, datetime],
                     kept: Mapping[WaybillKey, Sequence[Report]]) -> RunOutcome:
    """A run of waybills, in order. A waybill already `known` (or earlier in the run) is the same one
    published again: its shipment is under way, nothing happens. `seen`: when each order was seen;
    `released`: when customs released each order; `kept`: reports waiting per waybill (in arrival order)."""
    created: dict[WaybillKey, Parcel] = {}
    notices: list[list[Notice]] = []
    refused: list[tuple[Report, str]] = []
    for w in waybills:
        if w.ref.key in known or w.ref.key in created:
            notices.append([])
            continue
        arrival = receive_waybill(w, seen.get(w.ref.order), released.get(w.ref.order), kept.get(w.ref.key, ()))
        created[w.ref.key] = arrival.parcel
        notices.append(arrival.notices)
        refused += arrival.refused
    return RunOutcome(created, notices, refused=refused)


def track_reports(parcels: Mapping[WaybillKey, Parcel], reports: Sequence[Report]) -> RunOutcome:
    """A run of firm reports folded in order over the `parcels` they name. A report about a waybill not in
    `parcels` is kept (`applied` False) and announced as EVENT_FOR_UNKNOWN_WAYBILL. Raises ValueError for
    an event the firm cannot send (rule 4)."""
    current = dict(parcels)
    notices: list[list[Notice]] = []
    applied: list[bool] = []
    for r in reports:
        p = current.get(r.ref.key)
        if p is None:
            notices.append([unknown_waybill(r)])
            applied.append(False)
            continue
        current[r.ref.key], said = track(p, r)
        notices.append(said)
        applied.append(True)
    return RunOutcome(_changed(parcels, current), notices, applied)


def release_parcels(parcels: Mapping[WaybillKey, Parcel], decisions: Sequence[Decision]) -> RunOutcome:
    """A run of customs decisions folded in order over the parcels of their orders: a release clears every
    parcel of its order, in waybill-key order, told at the decision's time; other decisions do nothing."""
    current = dict(parcels)
    by_order: dict[OrderKey, list[WaybillKey]] = {}
    for key in sorted(current):
        by_order.setdefault(current[key].ref.order, []).append(key)
    notices: list[list[Notice]] = []
    for d in decisions:
        said: list[Notice] = []
        if is_release(d):
            for key in by_order.get(d.order, ()):
                current[key], told = release(current[key], d.decided_at, d.decided_at)
                said += told
        notices.append(said)
    return RunOutcome(_changed(parcels, current), notices)


def releases_to_remember(decisions: Sequence[Decision]) -> list[Decision]:
    """The releases among `decisions`, the first per order: a release is final (a released order can be
    neither corrected nor cancelled), and a waybill that comes after it must start out cleared."""
    first: dict[OrderKey, Decision] = {}
    for d in decisions:
        if is_release(d):
            first.setdefault(d.order, d)
    return list(first.values())


def first_sightings(held: Set[OrderKey], orders: Sequence[OrderSeen]) -> list[OrderSeen]:
    """Orders not seen before (`held`), the first event of each: new, corrected or cancelled, any of them
    means the order exists, which is all the watchdog asks."""
    first: dict[OrderKey, OrderSeen] = {}
    for o in orders:
        if o.order not in held:
            first.setdefault(o.order, o)
    return list(first.values())


def orders_came(parcels: Mapping[WaybillKey, Parcel], orders: Sequence[OrderSeen]) -> RunOutcome:
    """Orders seen for the first time (`first_sightings`) reach the parcels of their waybills: a parcel
    that had not seen its order records when it came, and the watchdog stops waiting for it."""
    current = dict(parcels)
    by_order = {o.order: o for o in orders}
    for key, p in parcels.items():
        o = by_order.get(p.ref.order)
        if o is not None and p.order_seen_at is None:
            current[key] = replace(p, order_seen_at=o.at, awaiting_order_since=None)
    return RunOutcome(_changed(parcels, current), [[] for _ in orders])


def watch(due: Sequence[Parcel], seen: Mapping[OrderKey, datetime], now: datetime,
          grace_hours: Decimal) -> RunOutcome:
    """The watchdog over parcels still waiting for their order (`due`): one whose order was seen after all
    (`seen`) stops waiting; one whose grace period has elapsed raises ORDER_NEVER_CAME, once, and stops
    waiting; the others wait on. `notices` has one list per parcel of `due`."""
    parcels: dict[WaybillKey, Parcel] = {}
    notices: list[list[Notice]] = []
    for p in due:
        seen_at = p.order_seen_at or seen.get(p.ref.order)
        if seen_at is not None:
            parcels[p.ref.key] = replace(p, order_seen_at=seen_at, awaiting_order_since=None,
                                         order_never_came_at=None)
            notices.append([])
        elif order_never_came(p.waybill_received_at, False, now, grace_hours):
            parcels[p.ref.key] = replace(p, awaiting_order_since=None, order_never_came_at=now)
            notices.append([AnomalyNotice(
                p.ref, ORDER_NEVER_CAME,
                f"waybill {p.ref.waybill_no} of {p.ref.logistics_code} arrived at "
                f"{p.waybill_received_at.isoformat()}; no order {p.ref.order_no} of platform {p.ref.platform_code} "
                f"after {grace_hours} hours", now)])
        else:
            notices.append([])
    return RunOutcome(parcels, notices)


def _changed(before: Mapping[WaybillKey, Parcel], after: Mapping[WaybillKey, Parcel]) -> dict[WaybillKey, Parcel]:
    return {k: p for k, p in after.items() if before.get(k) != p}
