"""The shipment state machine: every transition, and every way its inputs arrive out of order."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from itertools import combinations, permutations

import pytest

from services.logistics.rules import (
    DELIVERED_BEFORE_RELEASE,
    PROGRESS,
    Shipment,
    apply_customs_release,
    apply_tracking_event,
    new_shipment,
    order_never_came,
)

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=timezone(timedelta(hours=8)))
FIRM_PROGRESS = ("picked_up", "departed", "arrived_port", "delivered")


def t(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def at_status(status: str, at: datetime = T0, released: bool | None = None) -> Shipment:
    """A shipment that reached `status` the ordinary way (released iff it got to cleared or beyond)."""
    if released is None:
        released = PROGRESS.index(status) >= PROGRESS.index("cleared")
    last_event_at = None if status == "created" else at
    return Shipment(status=status, furthest=status, last_event_at=last_event_at, released=released)


def in_exception(furthest: str = "departed", at: datetime = t(5), released: bool = False) -> Shipment:
    return Shipment(
        status="exception", furthest=furthest, last_event_at=at, released=released, exception_at=at
    )


# --- the ordinary path --------------------------------------------------------------------------


def test_new_shipment_is_created_with_no_history():
    s = new_shipment()
    assert s == Shipment(status="created", furthest="created", last_event_at=None, released=False, exception_at=None)


@pytest.mark.parametrize(
    ("before", "event"),
    [("created", "picked_up"), ("picked_up", "departed"), ("departed", "arrived_port")],
)
def test_each_firm_step_moves_forward(before, event):
    tr = apply_tracking_event(at_status(before, t(0)), event, t(1))
    assert tr.changed
    assert tr.anomaly is None
    assert tr.shipment == Shipment(status=event, furthest=event, last_event_at=t(1))


def test_customs_release_clears_an_arrived_shipment():
    tr = apply_customs_release(at_status("arrived_port", t(0)), t(1))
    assert tr.changed
    assert tr.shipment == Shipment(status="cleared", furthest="cleared", last_event_at=t(0), released=True)


def test_delivery_after_release_is_ordinary():
    tr = apply_tracking_event(at_status("cleared", t(0)), "delivered", t(1))
    assert tr.changed
    assert tr.anomaly is None
    assert tr.shipment == Shipment(status="delivered", furthest="delivered", last_event_at=t(1), released=True)


def test_the_whole_path_in_order():
    s = new_shipment()
    statuses = []
    for i, event in enumerate(("picked_up", "departed", "arrived_port")):
        tr = apply_tracking_event(s, event, t(i))
        s = tr.shipment
        statuses.append(s.status)
    s = apply_customs_release(s, t(3)).shipment
    statuses.append(s.status)
    tr = apply_tracking_event(s, "delivered", t(4))
    statuses.append(tr.shipment.status)
    assert statuses == ["picked_up", "departed", "arrived_port", "cleared", "delivered"]
    assert tr.anomaly is None


# --- skipping steps -----------------------------------------------------------------------------


SKIPS = [
    (before, event)
    for before, event in combinations(PROGRESS, 2)
    if event in FIRM_PROGRESS and PROGRESS.index(event) - PROGRESS.index(before) > 1
]


@pytest.mark.parametrize(("before", "event"), SKIPS)
def test_a_forward_event_may_skip_steps(before, event):
    tr = apply_tracking_event(at_status(before, t(0)), event, t(1))
    assert tr.changed
    assert tr.shipment.status == event
    assert tr.shipment.furthest == event


def test_release_may_skip_the_physical_steps():
    tr = apply_customs_release(new_shipment(), t(1))
    assert tr.changed
    assert tr.shipment.status == "cleared"
    assert tr.shipment.released


# --- never backwards, duplicates ----------------------------------------------------------------

REVERSE_PAIRS = [(low, high) for low, high in combinations(PROGRESS, 2) if low in FIRM_PROGRESS]


@pytest.mark.parametrize(("low", "high"), REVERSE_PAIRS)
def test_a_lower_event_after_a_higher_one_changes_nothing(low, high):
    s = at_status(high, t(5))
    tr = apply_tracking_event(s, low, t(4))
    assert not tr.changed
    assert tr.anomaly is None
    assert tr.shipment == s


@pytest.mark.parametrize(("low", "high"), REVERSE_PAIRS)
def test_a_lower_event_stamped_later_changes_only_the_time(low, high):
    s = at_status(high, t(5))
    tr = apply_tracking_event(s, low, t(9))
    assert not tr.changed
    assert tr.anomaly is None
    assert tr.shipment == Shipment(status=high, furthest=high, last_event_at=t(9), released=s.released)


@pytest.mark.parametrize(("low", "high"), [(a, b) for a, b in combinations(FIRM_PROGRESS, 2)])
def test_each_pair_of_firm_events_in_reverse_order_ends_at_the_higher(low, high):
    s = apply_tracking_event(new_shipment(), high, t(2)).shipment
    tr = apply_tracking_event(s, low, t(1))
    assert not tr.changed
    assert tr.shipment == s
    assert tr.shipment.status == high


@pytest.mark.parametrize("event", FIRM_PROGRESS)
def test_a_duplicate_event_changes_nothing(event):
    first = apply_tracking_event(new_shipment(), event, t(1))
    again = apply_tracking_event(first.shipment, event, t(1))
    assert first.changed
    assert not again.changed
    assert again.anomaly is None
    assert again.shipment == first.shipment


def test_a_duplicate_exception_changes_nothing():
    s = in_exception(at=t(5))
    tr = apply_tracking_event(s, "exception", t(5))
    assert not tr.changed
    assert tr.shipment == s


def test_a_forward_event_with_an_older_time_is_applied_and_time_does_not_go_back():
    s = at_status("departed", t(5))
    tr = apply_tracking_event(s, "arrived_port", t(3))
    assert tr.changed
    assert tr.shipment.status == "arrived_port"
    assert tr.shipment.last_event_at == t(5)


@pytest.mark.parametrize("event", ["cleared", "created", "returned", ""])
def test_the_firm_cannot_send_anything_outside_its_vocabulary(event):
    with pytest.raises(ValueError):
        apply_tracking_event(at_status("arrived_port"), event, t(1))


# --- exceptions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("before", PROGRESS)
def test_an_exception_is_reachable_from_every_state(before):
    s = at_status(before, t(0))
    tr = apply_tracking_event(s, "exception", t(1))
    assert tr.changed
    assert tr.shipment == Shipment(
        status="exception", furthest=before, last_event_at=t(1), released=s.released, exception_at=t(1)
    )


def test_an_exception_older_than_the_current_status_is_ignored():
    s = at_status("arrived_port", t(5))
    tr = apply_tracking_event(s, "exception", t(4))
    assert not tr.changed
    assert tr.shipment == s


def test_an_exception_at_the_same_time_as_the_current_status_is_applied():
    tr = apply_tracking_event(at_status("arrived_port", t(5)), "exception", t(5))
    assert tr.changed
    assert tr.shipment.status == "exception"


def test_an_exception_on_a_fresh_shipment_is_applied_whatever_its_time():
    tr = apply_tracking_event(new_shipment(), "exception", t(-100))
    assert tr.changed
    assert tr.shipment.exception_at == t(-100)


def test_a_newer_exception_while_in_exception_moves_its_time_only():
    s = in_exception(at=t(5))
    tr = apply_tracking_event(s, "exception", t(7))
    assert not tr.changed
    assert tr.shipment.exception_at == t(7)
    assert tr.shipment.last_event_at == t(7)


def test_an_older_exception_while_in_exception_is_ignored():
    s = in_exception(at=t(5))
    tr = apply_tracking_event(s, "exception", t(4))
    assert not tr.changed
    assert tr.shipment == s


@pytest.mark.parametrize("event", FIRM_PROGRESS)
def test_an_older_event_after_an_exception_keeps_the_exception_but_is_remembered(event):
    s = in_exception(furthest="created", at=t(5), released=True)
    tr = apply_tracking_event(s, event, t(4))
    assert not tr.changed
    assert tr.shipment.status == "exception"
    assert tr.shipment.furthest == max("created", event, key=PROGRESS.index)
    assert tr.shipment.exception_at == t(5)
    assert tr.shipment.last_event_at == t(5)


def test_an_event_at_the_same_time_as_the_exception_does_not_resume():
    tr = apply_tracking_event(in_exception(furthest="departed", at=t(5)), "arrived_port", t(5))
    assert not tr.changed
    assert tr.shipment.status == "exception"
    assert tr.shipment.furthest == "arrived_port"


@pytest.mark.parametrize("event", ["arrived_port", "delivered"])
def test_a_newer_higher_event_after_an_exception_resumes_at_that_event(event):
    s = in_exception(furthest="departed", at=t(5), released=True)
    tr = apply_tracking_event(s, event, t(6))
    assert tr.changed
    assert tr.shipment.status == event
    assert tr.shipment.furthest == event
    assert tr.shipment.last_event_at == t(6)


@pytest.mark.parametrize("event", ["picked_up", "departed"])
def test_a_newer_lower_event_after_an_exception_resumes_at_the_furthest(event):
    s = in_exception(furthest="departed", at=t(5))
    tr = apply_tracking_event(s, event, t(6))
    assert tr.changed
    assert tr.shipment.status == "departed"
    assert tr.shipment.furthest == "departed"


def test_an_older_event_then_a_newer_one_resumes_from_the_older_ones_progress():
    s = in_exception(furthest="picked_up", at=t(5))
    s = apply_tracking_event(s, "arrived_port", t(4)).shipment
    tr = apply_tracking_event(s, "departed", t(6))
    assert tr.changed
    assert tr.shipment.status == "arrived_port"


def test_an_event_between_two_exceptions_does_not_resume():
    s = apply_tracking_event(in_exception(at=t(5)), "exception", t(7)).shipment
    tr = apply_tracking_event(s, "arrived_port", t(6))
    assert not tr.changed
    assert tr.shipment.status == "exception"


def test_exception_and_progress_at_the_same_time_end_in_exception_in_either_order():
    a = apply_tracking_event(apply_tracking_event(at_status("departed", t(0)), "arrived_port", t(5)).shipment,
                             "exception", t(5)).shipment
    b = apply_tracking_event(apply_tracking_event(at_status("departed", t(0)), "exception", t(5)).shipment,
                             "arrived_port", t(5)).shipment
    assert a.status == b.status == "exception"
    assert a.furthest == b.furthest == "arrived_port"


# --- customs release and delivery ---------------------------------------------------------------


@pytest.mark.parametrize("before", ["created", "picked_up", "departed", "arrived_port"])
def test_release_moves_any_lower_status_to_cleared(before):
    s = at_status(before, t(0))
    tr = apply_customs_release(s, t(1))
    assert tr.changed
    assert tr.shipment == Shipment(status="cleared", furthest="cleared", last_event_at=s.last_event_at, released=True)


@pytest.mark.parametrize("release_at", [t(2), t(9)], ids=["older", "newer"])
def test_release_clears_whatever_its_time_and_leaves_the_firms_time_alone(release_at):
    tr = apply_customs_release(at_status("arrived_port", t(5)), release_at)
    assert tr.changed
    assert tr.shipment.status == "cleared"
    assert tr.shipment.last_event_at == t(5)


def test_an_exception_older_than_the_release_but_newer_than_the_firms_last_report_is_applied():
    s = apply_customs_release(at_status("arrived_port", t(1)), t(4)).shipment
    tr = apply_tracking_event(s, "exception", t(3))
    assert tr.changed
    assert tr.shipment.status == "exception"
    assert tr.shipment.furthest == "cleared"


def test_a_duplicate_release_changes_nothing():
    s = apply_customs_release(at_status("arrived_port", t(0)), t(1)).shipment
    tr = apply_customs_release(s, t(1))
    assert not tr.changed
    assert tr.shipment == s


def test_events_the_firm_reports_after_release_stay_below_cleared():
    s = apply_customs_release(new_shipment(), t(1)).shipment
    for event in ("picked_up", "departed", "arrived_port"):
        tr = apply_tracking_event(s, event, t(2))
        assert not tr.changed
        assert tr.shipment == Shipment(status="cleared", furthest="cleared", last_event_at=t(2), released=True)


def test_release_before_delivered_then_delivered_has_no_anomaly():
    s = apply_customs_release(at_status("arrived_port", t(0)), t(1)).shipment
    tr = apply_tracking_event(s, "delivered", t(2))
    assert tr.changed
    assert tr.anomaly is None
    assert tr.shipment.status == "delivered"


@pytest.mark.parametrize("before", ["created", "picked_up", "departed", "arrived_port"])
def test_delivered_before_release_is_accepted_and_flagged(before):
    tr = apply_tracking_event(at_status(before, t(0)), "delivered", t(1))
    assert tr.changed
    assert tr.anomaly == DELIVERED_BEFORE_RELEASE
    assert tr.shipment.status == "delivered"
    assert not tr.shipment.released


def test_a_duplicate_delivered_before_release_is_flagged_once():
    first = apply_tracking_event(at_status("arrived_port", t(0)), "delivered", t(1))
    again = apply_tracking_event(first.shipment, "delivered", t(1))
    assert first.anomaly == DELIVERED_BEFORE_RELEASE
    assert again.anomaly is None
    assert not again.changed


def test_a_lower_event_stamped_later_makes_an_older_exception_stale():
    s = apply_tracking_event(at_status("arrived_port", t(3)), "departed", t(6)).shipment
    tr = apply_tracking_event(s, "exception", t(5))
    assert not tr.changed
    assert tr.shipment.status == "arrived_port"


def test_release_after_delivered_keeps_delivered_and_records_the_release():
    s = apply_tracking_event(at_status("arrived_port", t(0)), "delivered", t(1)).shipment
    tr = apply_customs_release(s, t(2))
    assert not tr.changed
    assert tr.anomaly is None
    assert tr.shipment == Shipment(status="delivered", furthest="delivered", last_event_at=t(1), released=True)


def test_delivered_before_release_while_in_exception_is_flagged_but_not_shown():
    tr = apply_tracking_event(in_exception(at=t(5)), "delivered", t(4))
    assert not tr.changed
    assert tr.anomaly == DELIVERED_BEFORE_RELEASE
    assert tr.shipment.status == "exception"
    assert tr.shipment.furthest == "delivered"


def test_delivered_resuming_from_an_exception_before_release_is_flagged():
    tr = apply_tracking_event(in_exception(at=t(5)), "delivered", t(6))
    assert tr.changed
    assert tr.anomaly == DELIVERED_BEFORE_RELEASE
    assert tr.shipment.status == "delivered"


def test_release_while_in_exception_is_recorded_but_the_exception_stays_visible():
    s = in_exception(furthest="departed", at=t(5))
    tr = apply_customs_release(s, t(6))
    assert not tr.changed
    assert tr.shipment == Shipment(
        status="exception", furthest="cleared", last_event_at=t(5), released=True, exception_at=t(5)
    )


def test_a_newer_event_after_release_in_exception_resumes_at_cleared():
    s = apply_customs_release(in_exception(furthest="departed", at=t(5)), t(6)).shipment
    tr = apply_tracking_event(s, "arrived_port", t(7))
    assert tr.changed
    assert tr.shipment.status == "cleared"


def test_release_while_in_exception_after_delivery_keeps_furthest_delivered():
    s = in_exception(furthest="delivered", at=t(5))
    tr = apply_customs_release(s, t(6))
    assert tr.shipment.furthest == "delivered"
    assert tr.shipment.released


# --- the same facts in any order ----------------------------------------------------------------


def _apply(s: Shipment, fact: tuple[str, datetime]) -> Shipment:
    kind, at = fact
    if kind == "release":
        return apply_customs_release(s, at).shipment
    return apply_tracking_event(s, kind, at).shipment


@pytest.mark.parametrize(
    ("facts", "status", "furthest"),
    [
        ([("picked_up", t(1)), ("departed", t(2)), ("arrived_port", t(3)), ("release", t(4)), ("delivered", t(5))],
         "delivered", "delivered"),
        ([("picked_up", t(1)), ("departed", t(2)), ("exception", t(3)), ("arrived_port", t(4))],
         "arrived_port", "arrived_port"),
        ([("picked_up", t(1)), ("departed", t(2)), ("exception", t(3)), ("release", t(4))],
         "exception", "cleared"),
        ([("picked_up", t(1)), ("exception", t(3)), ("departed", t(2))], "exception", "departed"),
    ],
    ids=["clean", "exception-resolved", "exception-then-release", "exception-last"],
)
def test_every_arrival_order_of_the_same_facts_ends_the_same(facts, status, furthest):
    for order in permutations(facts):
        s = new_shipment()
        for fact in order:
            s = _apply(s, fact)
        assert (s.status, s.furthest) == (status, furthest), order


# --- state read back from storage ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "furthest", "exception_at"),
    [
        ("lost", "created", None),
        ("created", "exception", None),
        ("departed", "arrived_port", None),
        ("exception", "departed", None),
    ],
    ids=["unknown-status", "unknown-furthest", "status-behind-furthest", "exception-without-time"],
)
def test_an_inconsistent_state_is_refused(status, furthest, exception_at):
    with pytest.raises(ValueError):
        Shipment(status=status, furthest=furthest, last_event_at=T0, exception_at=exception_at)


# --- order never came ---------------------------------------------------------------------------


def test_order_never_came_fires_exactly_when_the_grace_period_has_passed():
    grace = Decimal("48")
    assert not order_never_came(T0, False, T0 + timedelta(hours=48) - timedelta(microseconds=1), grace)
    assert order_never_came(T0, False, T0 + timedelta(hours=48), grace)
    assert order_never_came(T0, False, T0 + timedelta(hours=49), grace)


def test_order_never_came_with_a_fractional_grace():
    grace = Decimal("0.5")
    assert not order_never_came(T0, False, T0 + timedelta(minutes=29, seconds=59), grace)
    assert order_never_came(T0, False, T0 + timedelta(minutes=30), grace)


def test_order_never_came_is_false_once_the_order_was_seen():
    assert not order_never_came(T0, True, T0 + timedelta(days=30), Decimal("48"))


def test_order_never_came_is_false_when_the_clock_is_behind_the_waybill():
    assert not order_never_came(T0, False, T0 - timedelta(hours=1), Decimal("0"))


def test_order_never_came_with_zero_grace_fires_at_once():
    assert order_never_came(T0, False, T0, Decimal("0"))


def test_order_never_came_refuses_a_negative_grace():
    with pytest.raises(ValueError):
        order_never_came(T0, False, T0, Decimal("-1"))
