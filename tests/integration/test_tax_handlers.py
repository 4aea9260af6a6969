"""Tax's handlers on the seam: events in through the batch core (LocalRunner, SQLite, no broker), the
assessments it emits and the rows it keeps out. Amounts are domain §7's worked examples and §8's 4%."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from contracts.v1.events import CustomsDecision, Order, OrderSubmitted
from contracts.v2.events import OrderSubmittedV2
from services.tax.handlers import handlers
from services.tax.tables import assessments, decisions, export_revenue, orders
from shared.outbox import build_envelope
from shared.runtime import Service
from shared.testing import LocalRunner, batch_equals_one_by_one

pytestmark = pytest.mark.integration

D = Decimal
PLATFORM, SELLER = "PLAT", "SELLER"
T0 = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)  # 10:00 in China, Q4
FACE_CREAM, SHOES, HANDBAG, TSHIRT = "3304990099", "6403990090", "4202210090", "6109100022"


def line(hs_code: str, quantity: str, unit_price: str, n: int = 1) -> dict:
    return {"item_no": f"SKU-{n}", "name": "goods", "hs_code": hs_code, "quantity": quantity, "unit": "piece",
            "unit_price": unit_price, "origin_country": "FR"}


def order(order_no: str, *items: dict, version: int = 1, action: str = "new", direction: str = "import",
          currency: str = "CNY", freight: str = "0.00", discount: str = "0.00", tax_total: str = "0.00",
          actual_paid: str = "100.00", at: datetime = T0) -> OrderSubmittedV2:
    v1 = Order.model_validate({
        "order_no": order_no, "platform_code": PLATFORM, "ecommerce_code": SELLER, "direction": direction,
        "trade_mode": "9610", "currency": currency, "items": list(items) or [line(FACE_CREAM, "1", "100.00")],
        "freight": freight, "insurance": "0.00", "discount": discount, "tax_total": tax_total,
        "actual_paid": actual_paid, "buyer": None, "destination_country": "US" if direction == "export" else None})
    return OrderSubmittedV2.from_v1(OrderSubmitted(action=action, version=version, submitted_at=at, order=v1), "CN", "FR")


def worked_example_1(order_no: str = "ORD-1", **kw) -> OrderSubmittedV2:
    kw = {"freight": "12.00", "discount": "10.00", "tax_total": "85.50", "actual_paid": "447.50", **kw}
    return order(order_no, line(FACE_CREAM, "2", "180.00"), **kw)


def decision(order_no: str, status: str = "released", version: int = 1, direction: str = "import",
             tax_mode: str | None = "retail", at: datetime = T0 + timedelta(minutes=5)) -> CustomsDecision:
    return CustomsDecision(platform_code=PLATFORM, order_no=order_no, order_version=version, ecommerce_code=SELLER,
                           direction=direction, trade_mode="9610", status=status,
                           tax_mode=tax_mode if status == "released" and direction == "import" else None,
                           decided_at=at)


def envelope(payload, order_no: str):  # noqa: ANN001, ANN201
    return build_envelope(payload, "test", f"{PLATFORM}:{order_no}")[1]


def published(emitted) -> list[tuple]:  # noqa: ANN001
    """What was emitted, without the assessment time."""
    return [(e.type, e.correlation_id, {k: v for k, v in e.payload.items() if k != "assessed_at"}) for e in emitted]


async def stored(runner: LocalRunner) -> dict[str, list]:
    async with runner.service.sessions() as session:
        def rows(table, drop=()):  # noqa: ANN001, ANN202
            return [{k: v for k, v in r._mapping.items() if k not in drop} for r in rows_of[table.name]]
        rows_of = {t.name: (await session.execute(select(t).order_by(t.c.platform_code, t.c.order_no))).all()
                   for t in (orders, decisions, assessments, export_revenue)}
    result = {name: rows(t) for name, t in (("orders", orders), ("decisions", decisions), ("export_revenue", export_revenue))}
    result["assessments"] = [{**r, "document": {k: v for k, v in r["document"].items() if k != "assessed_at"}}
                             for r in rows(assessments, drop=("assessed_at",))]
    return result


def tax_service() -> Service:
    return Service("tax", handlers=handlers)


async def test_worked_example_1_order_then_decision(tmp_path):
    async with LocalRunner(tax_service(), tmp_path) as runner:
        assert await runner.deliver(envelope(worked_example_1(), "ORD-1")) == []  # waits for customs
        [assessed] = await runner.deliver(envelope(decision("ORD-1"), "ORD-1"))
        assert assessed.type == "tax.assessment" and assessed.correlation_id == f"{PLATFORM}:ORD-1"
        p = assessed.payload
        assert (p["status"], p["dutiable_value"], p["customs_duty"], p["vat"], p["consumption_tax"], p["total"]) == (
            "assessed", "362.00", "0.00", "38.76", "44.72", "83.48")
        assert D(p["declared_difference"]) == D("2.02")
        state = await stored(runner)
        assert [(a["order_version"], a["status"], a["total"]) for a in state["assessments"]] == [(1, "assessed", D("83.48"))]
        assert state["orders"][0]["version"] == 1 and state["decisions"][0]["status"] == "released"


async def test_worked_examples_2_and_3_decision_first(tmp_path):
    two_lines = order("ORD-2", line(SHOES, "1", "500.00", 2), line(FACE_CREAM, "1", "300.00", 1), freight="20.00")
    handbag = order("ORD-3", line(HANDBAG, "1", "6000.00"))
    async with LocalRunner(tax_service(), tmp_path) as runner:
        # customs' decisions come first this time; the orders complete the picture
        assert await runner.deliver(envelope(decision("ORD-2"), "ORD-2"),
                                    envelope(decision("ORD-3", tax_mode="general_trade"), "ORD-3")) == []
        emitted = await runner.deliver(envelope(two_lines, "ORD-2"), envelope(handbag, "ORD-3"))
        amounts = {e.payload["order_no"]: tuple(e.payload[k] for k in (
            "status", "dutiable_value", "customs_duty", "vat", "consumption_tax", "total")) for e in emitted}
        assert amounts == {"ORD-2": ("assessed", "820.00", "0.00", "79.56", "37.99", "117.55"),
                           "ORD-3": ("general_trade", "6000.00", "600.00", "858.00", "0.00", "1458.00")}


async def same_in_one_batch_and_one_by_one(tmp_path, events: list) -> tuple[list, dict]:  # noqa: ANN001
    """One batch and one batch each must emit and store the same."""
    return await batch_equals_one_by_one(lambda d: LocalRunner(tax_service(), d), tmp_path, events, published, stored)


async def test_new_then_corrected_in_one_batch_is_assessed_once_on_the_correction(tmp_path):
    events = [envelope(worked_example_1(), "ORD-1"),
              envelope(worked_example_1(version=2, action="corrected", discount="0.00", at=T0 + timedelta(minutes=1)), "ORD-1"),
              envelope(decision("ORD-1", version=1), "ORD-1"),  # about the replaced version: waits
              envelope(decision("ORD-1", version=2, at=T0 + timedelta(minutes=6)), "ORD-1")]
    emitted, state = await same_in_one_batch_and_one_by_one(tmp_path, events)
    assert [(p["order_version"], p["status"], p["dutiable_value"]) for _, _, p in emitted] == [(2, "assessed", "372.00")]
    assert state["orders"][0]["version"] == 2 and state["decisions"][0]["order_version"] == 2


async def test_older_version_and_older_decision_are_ignored(tmp_path):
    events = [envelope(worked_example_1(version=2, action="corrected"), "ORD-1"),
              envelope(worked_example_1(version=1), "ORD-1"),  # late: older than held
              envelope(decision("ORD-1", version=2, at=T0 + timedelta(minutes=9)), "ORD-1"),
              envelope(decision("ORD-1", version=2, status="rejected", at=T0 + timedelta(minutes=8)), "ORD-1")]
    emitted, state = await same_in_one_batch_and_one_by_one(tmp_path, events)
    assert [(p["order_version"], p["status"]) for _, _, p in emitted] == [(2, "assessed")]
    assert state["decisions"][0]["status"] == "released"


async def test_cancellation_before_and_after_release(tmp_path):
    # Customs answers each cancellation with a decision about its version (README, "A cancellation racing
    # a release"): ORD-A came too late (its release is re-published as version 2), ORD-B in time.
    events = [envelope(worked_example_1("ORD-A"), "ORD-A"), envelope(worked_example_1("ORD-B"), "ORD-B"),
              envelope(decision("ORD-A"), "ORD-A"),  # released: the tax stays due
              envelope(worked_example_1("ORD-A", version=2, action="cancelled"), "ORD-A"),
              envelope(worked_example_1("ORD-B", version=2, action="cancelled"), "ORD-B"),
              envelope(decision("ORD-A", version=2), "ORD-A"),
              envelope(decision("ORD-B", version=2, status="cancelled", at=T0 + timedelta(minutes=7)), "ORD-B")]
    emitted, state = await same_in_one_batch_and_one_by_one(tmp_path, events)
    assert [(p["order_no"], p["order_version"], p["status"]) for _, _, p in emitted] == [
        ("ORD-A", 1, "assessed"), ("ORD-A", 2, "assessed"), ("ORD-B", 2, "not_applicable")]
    assert [(a["order_no"], a["status"]) for a in state["assessments"]] == [("ORD-A", "assessed"), ("ORD-B", "not_applicable")]


async def test_a_cancellation_waits_for_customs_however_the_topics_interleave(tmp_path):
    # Issue 9: the cancellation (order topic) is consumed before customs' release of version 1 (decision
    # topic), which customs made before it saw the cancellation. Tax must end where customs ends: taxed.
    events = [envelope(worked_example_1("ORD-A"), "ORD-A"),
              envelope(worked_example_1("ORD-A", version=2, action="cancelled"), "ORD-A"),
              envelope(decision("ORD-A"), "ORD-A"),
              envelope(decision("ORD-A", version=2), "ORD-A")]  # the release re-published for version 2
    emitted, state = await same_in_one_batch_and_one_by_one(tmp_path, events)
    assert [(p["order_version"], p["status"], p["total"]) for _, _, p in emitted] == [(2, "assessed", "83.48")]
    assert [(a["order_version"], a["status"]) for a in state["assessments"]] == [(2, "assessed")]


async def test_rejected_is_not_applicable(tmp_path):
    async with LocalRunner(tax_service(), tmp_path) as runner:
        [e] = await runner.deliver(envelope(worked_example_1(), "ORD-1"),
                                   envelope(decision("ORD-1", status="rejected"), "ORD-1"))
        assert (e.payload["status"], e.payload["total"]) == ("not_applicable", None)


async def test_export_is_exempt_and_its_revenue_counts_once(tmp_path):
    export = order("EXP-1", line(TSHIRT, "3", "12.50"), direction="export", currency="USD", freight="4.50",
                   actual_paid="42.00")
    released = decision("EXP-1", direction="export")
    async with LocalRunner(tax_service(), tmp_path) as runner:
        emitted = await runner.deliver(envelope(export, "EXP-1"), envelope(released, "EXP-1"))
        assert [e.payload["status"] for e in emitted] == ["exempt"]
        # the same decision again, decided again later: no new assessment, the revenue still counts once
        again = decision("EXP-1", direction="export", at=T0 + timedelta(hours=1))
        assert await runner.deliver(envelope(again, "EXP-1"), envelope(released, "EXP-1")) == []
        [revenue] = (await stored(runner))["export_revenue"]
        # 42.00 USD at 7.1300 CNY (the 2026-11-01 row, latest on or before 2026-11-24)
        assert (revenue["quarter"], revenue["revenue_cny"], revenue["ecommerce_code"]) == ("2026Q4", D("299.46"), SELLER)


async def test_redelivery_has_no_second_effect(tmp_path):
    events = [envelope(worked_example_1(), "ORD-1"), envelope(decision("ORD-1"), "ORD-1")]
    async with LocalRunner(tax_service(), tmp_path) as runner:
        first = await runner.deliver(*events)
        before = await stored(runner)
        assert await runner.deliver(*events) == []
        assert await runner.deliver(events[1]) == []
        assert await stored(runner) == before and len(first) == 1


async def test_many_orders_in_one_batch_as_one_by_one(tmp_path):
    events = []
    for i in range(200):
        no = f"ORD-{i:04d}"
        direction = "export" if i % 5 == 0 else "import"
        events.append(envelope(order(no, line(FACE_CREAM, str(1 + i % 3), f"{100 + i}.00"), direction=direction,
                                     freight="12.00", currency="CNY" if i % 2 else "EUR"), no))
    for i in range(200):
        no = f"ORD-{i:04d}"
        status = "rejected" if i % 7 == 0 else "released"
        events.append(envelope(decision(no, status=status, direction="export" if i % 5 == 0 else "import"), no))
    emitted, state = await same_in_one_batch_and_one_by_one(tmp_path, events)
    assert len(emitted) == 200 and len(state["assessments"]) == 200
    assert len(state["export_revenue"]) == len([i for i in range(200) if i % 5 == 0 and i % 7])


async def test_an_order_without_a_rate_is_dead_lettered_alone(tmp_path):
    async with LocalRunner(tax_service(), tmp_path) as runner:
        emitted = await runner.deliver(envelope(worked_example_1("ORD-1"), "ORD-1"),
                                       envelope(order("ORD-X", currency="CHF"), "ORD-X"),
                                       envelope(decision("ORD-1"), "ORD-1"), envelope(decision("ORD-X"), "ORD-X"))
        assert [e.payload["order_no"] for e in emitted] == ["ORD-1"]
        [dead] = await runner.dead_letters()
        assert dead["topic"] == "customs.decision.v1.dlq" and "CHF" in dead["dlq.error"]
