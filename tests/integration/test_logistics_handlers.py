"""Logistics on the seam: its handlers driven by the batch core on SQLite (shared/testing.py), no broker.

For every event type it consumes: what it emits and what it stores; several events of one waybill or one
order in one batch give what they give one batch at a time; a batch of many keys gives what one-by-one
delivery gives; a redelivered event has no second effect."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from contracts import examples
from contracts.envelope import Envelope
from contracts.identifiers import order_key
from contracts.v1.events import CustomsDecision, WaybillSubmitted, WaybillTracked
from contracts.v2.events import OrderSubmittedV2
from services.logistics.handlers import handlers, report_orders_never_came
from services.logistics.tables import customs_releases, orders_seen, shipments, tracking_events
from shared.outbox import build_envelope
from shared.runtime import Service
from shared.testing import LocalRunner, batch_equals_one_by_one

pytestmark = pytest.mark.integration

PLATFORM, FIRM = examples.PLATFORM, examples.LOGISTICS_FIRM
T0 = datetime(2026, 11, 24, 3, 30, tzinfo=timezone.utc)


def t(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def waybill(order_no: str, waybill_no: str | None = None, at: datetime = T0) -> Envelope:
    body = {**examples.IMPORT_WAYBILL, "order_no": order_no, "waybill_no": waybill_no or f"W{order_no}"}
    return envelope(WaybillSubmitted.model_validate({"submitted_at": at.isoformat(), "waybill": body}), order_no)


def tracked(order_no: str, event: str, at: datetime, waybill_no: str | None = None, location: str = "") -> Envelope:
    return envelope(WaybillTracked(waybill_no=waybill_no or f"W{order_no}", logistics_code=FIRM, order_no=order_no,
                                   platform_code=PLATFORM, event=event, at=at, location=location, note="n"), order_no)


def decision(order_no: str, status: str = "released", at: datetime = t(1), version: int = 1) -> Envelope:
    return envelope(CustomsDecision(platform_code=PLATFORM, order_no=order_no, order_version=version,
                                    ecommerce_code=examples.SELLER, logistics_code=FIRM, direction="import",
                                    trade_mode="9610", status=status, decided_at=at), order_no)


def order(order_no: str, action: str = "new", version: int = 1, at: datetime = T0) -> Envelope:
    body = {**examples.IMPORT_ORDER_V2, "order_no": order_no}
    return envelope(OrderSubmittedV2.model_validate(
        {"action": action, "version": version, "submitted_at": at.isoformat(), "order": body}), order_no)


def envelope(payload, order_no: str) -> Envelope:  # noqa: ANN001
    return build_envelope(payload, "gateway", order_key(PLATFORM, order_no))[1]


def runner(directory: Path) -> LocalRunner:
    directory.mkdir(parents=True, exist_ok=True)
    return LocalRunner(Service("logistics", handlers=handlers), directory)


def said(emitted: list[Envelope]) -> list[tuple]:
    """What was emitted, without the envelope's own ids and times."""
    return [(e.type, e.correlation_id, e.payload) for e in emitted]


async def state(r: LocalRunner) -> dict:
    """Everything logistics stores, without the times of its own clock."""
    async with r.service.sessions() as session:
        ships = [{k: v for k, v in row._mapping.items() if k != "updated_at"} for row in (await session.execute(
            select(shipments).order_by(shipments.c.logistics_code, shipments.c.waybill_no))).all()]
        reports = [{k: v for k, v in row._mapping.items() if k not in ("id", "received_at")} for row in (
            await session.execute(select(tracking_events).order_by(tracking_events.c.id))).all()]
        seen = [tuple(row) for row in (await session.execute(select(orders_seen).order_by(
            orders_seen.c.platform_code, orders_seen.c.order_no))).all()]
        releases = [tuple(row) for row in (await session.execute(select(customs_releases).order_by(
            customs_releases.c.platform_code, customs_releases.c.order_no))).all()]
    return {"shipments": ships, "reports": reports, "orders_seen": seen, "releases": releases}


async def together_and_apart(tmp_path: Path, events: list[Envelope]) -> tuple[list, dict]:
    """One batch (handled whole) and one batch each must publish and keep the same."""
    return await batch_equals_one_by_one(runner, tmp_path, events, said, state)


def statuses(emitted: list[tuple]) -> list[tuple]:
    return [(p["waybill_no"], p["previous_status"], p["status"]) for typ, _, p in emitted
            if typ == "logistics.status"]


def anomalies(emitted: list[tuple]) -> list[tuple]:
    return [(p["waybill_no"], p["anomaly"]) for typ, _, p in emitted if typ == "logistics.anomaly"]


# --- waybills and their tracking reports ---------------------------------------------------------


async def test_a_waybill_creates_its_shipment_and_says_so(tmp_path):
    async with runner(tmp_path) as r:
        emitted = said(await r.deliver(waybill("O1")))
        assert emitted == [("logistics.status", f"{PLATFORM}:O1", {
            "logistics_code": FIRM, "waybill_no": "WO1", "platform_code": PLATFORM, "order_no": "O1",
            "status": "created", "previous_status": None, "at": T0.isoformat().replace("+00:00", "Z"),
            "location": ""})]
        s = (await state(r))["shipments"][0]
        assert (s["status"], s["furthest"], s["released"], s["awaiting_order_since"]) == ("created", "created", False, T0)


async def test_several_reports_of_one_waybill_in_one_batch_fold_in_order(tmp_path):
    events = [waybill("O1"), tracked("O1", "picked_up", t(1), location="Roissy"), tracked("O1", "departed", t(2)),
              tracked("O1", "picked_up", t(1.5)),  # late and lower: changes only nothing visible
              tracked("O1", "exception", t(3)), tracked("O1", "arrived_port", t(2.5)),  # older than the exception
              tracked("O1", "arrived_port", t(4), location="Shanghai"), decision("O1", at=t(5)),
              tracked("O1", "delivered", t(6))]
    emitted, stored = await together_and_apart(tmp_path, events)
    assert statuses(emitted) == [("WO1", None, "created"), ("WO1", "created", "picked_up"),
                                 ("WO1", "picked_up", "departed"), ("WO1", "departed", "exception"),
                                 ("WO1", "exception", "arrived_port"), ("WO1", "arrived_port", "cleared"),
                                 ("WO1", "cleared", "delivered")]
    assert anomalies(emitted) == []
    s = stored["shipments"][0]
    assert (s["status"], s["furthest"], s["released"], s["last_event_at"], s["exception_at"]) == (
        "delivered", "delivered", True, t(6), t(3))
    assert [(x["event"], x["applied"]) for x in stored["reports"]] == [
        ("picked_up", True), ("departed", True), ("picked_up", True), ("exception", True), ("arrived_port", True),
        ("arrived_port", True), ("delivered", True)]


async def test_delivered_before_release_is_an_anomaly_once(tmp_path):
    events = [waybill("O2"), tracked("O2", "delivered", t(1)), tracked("O2", "delivered", t(1)),
              tracked("O2", "exception", t(2)), tracked("O2", "delivered", t(3))]
    emitted, stored = await together_and_apart(tmp_path, events)
    assert anomalies(emitted) == [("WO2", "DELIVERED_BEFORE_RELEASE")]
    assert statuses(emitted) == [("WO2", None, "created"), ("WO2", "created", "delivered"),
                                 ("WO2", "delivered", "exception"), ("WO2", "exception", "delivered")]


async def test_reports_before_their_waybill_are_kept_and_replayed_with_an_earlier_release(tmp_path):
    events = [tracked("O3", "picked_up", t(1)), tracked("O3", "arrived_port", t(3)), decision("O3", at=t(2)),
              order("O3"), waybill("O3", at=t(4))]
    emitted, stored = await together_and_apart(tmp_path, events)
    assert anomalies(emitted) == [("WO3", "EVENT_FOR_UNKNOWN_WAYBILL"), ("WO3", "EVENT_FOR_UNKNOWN_WAYBILL")]
    # replayed in time order: picked up, released (cleared), arrived (below cleared: not shown)
    assert statuses(emitted) == [("WO3", None, "created"), ("WO3", "created", "picked_up"),
                                 ("WO3", "picked_up", "cleared")]
    s = stored["shipments"][0]
    assert (s["status"], s["released_at"], s["order_seen_at"], s["awaiting_order_since"]) == ("cleared", t(2), T0, None)
    assert [x["applied"] for x in stored["reports"]] == [True, True]
    assert stored["releases"] == [(PLATFORM, "O3", 1, t(2))]


async def test_the_same_waybill_twice_in_a_batch_is_one_shipment(tmp_path):
    emitted, stored = await together_and_apart(tmp_path, [waybill("O4"), waybill("O4", at=t(1))])
    assert statuses(emitted) == [("WO4", None, "created")]
    assert stored["shipments"][0]["waybill_received_at"] == T0


# --- customs decisions ---------------------------------------------------------------------------


async def test_only_a_release_clears_every_waybill_of_the_order_once(tmp_path):
    events = [waybill("O5", "WA"), waybill("O5", "WB"), tracked("O5", "exception", t(0.5), waybill_no="WB"),
              decision("O5", "inspection", t(0.8)), decision("O5", at=t(1)), decision("O5", at=t(1.5)),
              tracked("O5", "departed", t(2), waybill_no="WB")]
    emitted, stored = await together_and_apart(tmp_path, events)
    # WB is in exception: released keeps it there, and the next newer report resumes at cleared
    assert statuses(emitted) == [("WA", None, "created"), ("WB", None, "created"), ("WB", "created", "exception"),
                                 ("WA", "created", "cleared"), ("WB", "exception", "cleared")]
    assert [(s["waybill_no"], s["status"], s["released"], s["released_at"]) for s in stored["shipments"]] == [
        ("WA", "cleared", True, t(1)), ("WB", "cleared", True, t(1))]
    assert stored["releases"] == [(PLATFORM, "O5", 1, t(1))]


async def test_a_decision_without_a_shipment_is_remembered_for_the_waybill(tmp_path):
    async with runner(tmp_path) as r:
        assert await r.deliver(decision("O6", "rejected"), decision("O6", at=t(2))) == []
        emitted = said(await r.deliver(waybill("O6", at=t(3))))
        assert statuses(emitted) == [("WO6", None, "created"), ("WO6", "created", "cleared")]
        assert emitted[1][2]["at"] == "2026-11-24T06:30:00Z"  # the waybill came after the release


# --- orders ---------------------------------------------------------------------------------------


async def test_an_order_in_any_version_means_it_came(tmp_path):
    events = [waybill("O7"), order("O7", at=t(1)), order("O7", "corrected", 2, at=t(2)), order("O8", "cancelled", 2)]
    emitted, stored = await together_and_apart(tmp_path, events)
    assert statuses(emitted) == [("WO7", None, "created")]
    assert stored["orders_seen"] == [(PLATFORM, "O7", t(1)), (PLATFORM, "O8", T0)]
    s = stored["shipments"][0]
    assert (s["order_seen_at"], s["awaiting_order_since"]) == (t(1), None)


async def test_the_watchdog_reports_a_waybill_whose_order_never_came_once(tmp_path):
    async with runner(tmp_path) as r:
        await r.deliver(waybill("O9"), waybill("O10"), order("O10", at=t(1)))
        async with r.service.unit_of_work() as uow:
            assert await report_orders_never_came(uow, t(71), Decimal("72")) == 0
        async with r.service.unit_of_work() as uow:
            assert await report_orders_never_came(uow, t(72), Decimal("72")) == 1
        async with r.service.unit_of_work() as uow:
            assert await report_orders_never_came(uow, t(100), Decimal("72")) == 0
        emitted = await r.new_outbox_rows()
        assert [(row.topic, row.key) for row in emitted[-1:]] == [("logistics.status.v1", f"{PLATFORM}:O9")]
        stored = await state(r)
        assert [(s["order_no"], s["order_never_came_at"], s["awaiting_order_since"]) for s in stored["shipments"]] == [
            ("O10", None, None), ("O9", t(72), None)]
        late = said(await r.deliver(order("O9", at=t(80))))
        assert late == []
        assert (await state(r))["shipments"][1]["order_seen_at"] == t(80)


# --- many keys, redelivery --------------------------------------------------------------------------


async def test_a_batch_of_200_orders_gives_what_one_by_one_delivery_gives(tmp_path):
    events: list[Envelope] = []
    for i in range(200):
        n = f"M{i:03d}"
        if i % 4 == 0:
            events.append(tracked(n, "picked_up", t(0.5)))  # before its waybill
        events.append(waybill(n))
        if i % 3 == 0:
            events.append(order(n))
    for i in range(200):
        n = f"M{i:03d}"
        events.append(tracked(n, ("picked_up", "departed", "exception", "delivered")[i % 4], t(1 + i % 5)))
        if i % 2 == 0:
            events.append(decision(n, "released" if i % 6 else "inspection", t(2)))
    emitted, stored = await together_and_apart(tmp_path, events)
    assert len(stored["shipments"]) == 200
    assert len([s for s in stored["shipments"] if s["released"]]) == len([i for i in range(200) if i % 2 == 0 and i % 6])


async def test_a_redelivered_event_has_no_second_effect(tmp_path):
    events = [waybill("R1"), tracked("R1", "picked_up", t(1)), tracked("R2", "departed", t(1)), decision("R1"),
              order("R1")]
    async with runner(tmp_path) as r:
        first = await r.deliver(*events)
        assert len(first) == 4
        before = await state(r)
        assert await r.deliver(*events) == []
        for e in events:
            assert await r.deliver(e) == []
        assert await state(r) == before
