"""FX's handlers on the seam: orders, payments and customs' decisions in through the batch core
(LocalRunner, SQLite, no broker), the settlements and directory status changes it emits and the rows it
keeps out. Amounts follow domain §11 against the reference rate table (USD 7.1300 from 2026-11-01)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from contracts import examples
from contracts.v1.events import CustomsDecision, Order, OrderSubmitted, PaymentSubmitted
from contracts.v2.events import OrderSubmittedV2
from services.fx import app as fx_app
from services.fx.handlers import handlers
from services.fx.tables import decisions, enterprise_years, orders, payments, settlements
from shared.outbox import build_envelope
from shared.runtime import Service
from shared.testing import LocalRunner, batch_equals_one_by_one

pytestmark = pytest.mark.integration

D = Decimal
PLATFORM, SELLER = "PLAT", "SELLER"
T0 = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)  # 10:00 on 2026-11-24 in China


def order(order_no: str, *, seller: str = SELLER, version: int = 1, action: str = "new", direction: str = "export",
          currency: str = "USD", actual_paid: str = "42.00", at: datetime = T0) -> OrderSubmittedV2:
    v1 = Order.model_validate({
        "order_no": order_no, "platform_code": PLATFORM, "ecommerce_code": seller, "direction": direction,
        "trade_mode": "9610", "currency": currency,
        "items": [{"item_no": "SKU-1", "name": "goods", "hs_code": "6109100022", "quantity": "1", "unit": "piece",
                   "unit_price": actual_paid, "origin_country": "CN"}],
        "freight": "0.00", "insurance": "0.00", "discount": "0.00", "tax_total": "0.00", "actual_paid": actual_paid,
        "buyer": None, "destination_country": "US" if direction == "export" else None})
    return OrderSubmittedV2.from_v1(OrderSubmitted(action=action, version=version, submitted_at=at, order=v1), "CN", "CN")


def payment(order_no: str, amount: str = "447.50", currency: str = "CNY", paid_at: datetime = T0,
            submitted_at: datetime = T0 + timedelta(minutes=5), firm: str | None = None,
            payment_no: str | None = None) -> PaymentSubmitted:
    [example] = examples.EVENT_EXAMPLES[("payment.submitted", 1)]
    firm_and_no = {k: v for k, v in (("payment_code", firm), ("payment_no", payment_no)) if v is not None}
    body = {**example, "submitted_at": submitted_at.isoformat(), "payment": {
        **example["payment"], "order_no": order_no, "platform_code": PLATFORM, "amount": amount, "currency": currency,
        "paid_at": paid_at.isoformat(), **firm_and_no}}
    return PaymentSubmitted.model_validate(body)


def decision(order_no: str, status: str = "released", version: int = 1, direction: str = "export",
             seller: str = SELLER, at: datetime = T0 + timedelta(minutes=10)) -> CustomsDecision:
    return CustomsDecision(platform_code=PLATFORM, order_no=order_no, order_version=version, ecommerce_code=seller,
                           direction=direction, trade_mode="9610", status=status,
                           tax_mode="retail" if status == "released" and direction == "import" else None, decided_at=at)


def envelope(payload, order_no: str):  # noqa: ANN001, ANN201
    return build_envelope(payload, "test", f"{PLATFORM}:{order_no}")[1]


def published(emitted) -> list[tuple]:  # noqa: ANN001
    """What was emitted, without the times it was decided at."""
    return [(e.type, e.correlation_id, {k: v for k, v in e.payload.items() if k not in ("settled_at", "changed_at")})
            for e in emitted]


async def stored(runner: LocalRunner) -> dict[str, list]:
    out = {}
    async with runner.service.sessions() as session:
        for t in (orders, payments, decisions, settlements, enterprise_years):
            keys = [c for c in t.primary_key.columns]
            rows = (await session.execute(select(t).order_by(*keys))).all()
            out[t.name] = [{k: ({kk: vv for kk, vv in v.items() if kk != "settled_at"} if k == "document" else v)
                            for k, v in r._mapping.items() if k not in ("settled_at", "updated_at")} for r in rows]
    return out


def fx_service() -> Service:
    return Service("fx", handlers=handlers, on_start=[fx_app.load_rates_if_empty])


async def same_in_one_batch_and_one_by_one(tmp_path, events: list) -> tuple[list, dict]:  # noqa: ANN001
    """One batch and one batch each must emit and store the same."""
    return await batch_equals_one_by_one(lambda d: LocalRunner(fx_service(), d), tmp_path, events, published, stored)


async def test_a_released_export_is_settled_from_the_order(tmp_path):
    async with LocalRunner(fx_service(), tmp_path) as runner:
        assert await runner.deliver(envelope(order("EXP-1", actual_paid="42.00"), "EXP-1")) == []
        [settled] = await runner.deliver(envelope(decision("EXP-1"), "EXP-1"))
        p = settled.payload
        assert (settled.type, settled.correlation_id) == ("fx.settlement", f"{PLATFORM}:EXP-1")
        assert (p["status"], p["amount"], p["currency"], p["amount_cny"], p["rate"], p["rate_date"], p["amount_usd"],
                p["year"], p["year_to_date_usd"], p["directory_status"]) == (
            "settled", "42.00", "USD", "299.46", "7.1300", "2026-11-01", "42.00", 2026, "42.00", "exempt")
        [year] = (await stored(runner))["enterprise_years"]
        assert (year["code"], year["year"], year["year_to_date_usd"], year["settlements"]) == (SELLER, 2026, D("42.00"), 1)


async def test_an_import_waits_for_its_payment_and_settles_from_it(tmp_path):
    async with LocalRunner(fx_service(), tmp_path) as runner:
        assert await runner.deliver(envelope(order("IMP-1", direction="import", currency="CNY", actual_paid="447.50"), "IMP-1"),
                                    envelope(decision("IMP-1", direction="import"), "IMP-1")) == []
        [settled] = await runner.deliver(envelope(payment("IMP-1", "447.50", "CNY"), "IMP-1"))
        # 447.50 CNY / 7.1300 = 62.763... -> 62.76
        assert (settled.payload["amount_cny"], settled.payload["amount_usd"]) == ("447.50", "62.76")


async def test_a_later_payment_replaces_an_earlier_one_and_not_the_other_way(tmp_path):
    events = [envelope(payment("IMP-1", "100.00", submitted_at=T0 + timedelta(minutes=9)), "IMP-1"),
              envelope(payment("IMP-1", "200.00", submitted_at=T0 + timedelta(minutes=5)), "IMP-1"),  # earlier: ignored
              envelope(order("IMP-1", direction="import", currency="CNY", actual_paid="100.00"), "IMP-1"),
              envelope(decision("IMP-1", direction="import"), "IMP-1")]
    emitted, state = await same_in_one_batch_and_one_by_one(tmp_path, events)
    assert [p["amount"] for _, _, p in emitted] == ["100.00"] and state["payments"][0]["amount"] == D("100.00")


async def test_a_second_payment_firm_cannot_choose_the_amount_settled(tmp_path):
    """Issue 9 item 3: customs keeps the first payment of an order (it binds the order); FX used to keep the
    latest, so a second payment firm could make FX settle an amount of its choosing and push the seller's
    year-to-date past the directory threshold (USD 200,000) on a parcel worth 447.50 CNY. FX settles the
    bound payment only: the second firm's payment, earlier or later, in one batch or one by one, is ignored."""
    bound = payment("IMP-1", "447.50", submitted_at=T0 + timedelta(minutes=5), firm="PAYFIRM-A", payment_no="PAY-A")
    same_firm_other_no = payment("IMP-1", "9999.00", submitted_at=T0 + timedelta(minutes=7), firm="PAYFIRM-A",
                                 payment_no="PAY-A2")
    forged = payment("IMP-1", "1500000.00", submitted_at=T0 + timedelta(minutes=8), firm="PAYFIRM-B", payment_no="PAY-B")
    events = [envelope(order("IMP-1", direction="import", currency="CNY", actual_paid="447.50"), "IMP-1"),
              envelope(bound, "IMP-1"), envelope(same_firm_other_no, "IMP-1"), envelope(forged, "IMP-1"),
              envelope(decision("IMP-1", direction="import"), "IMP-1")]
    emitted, state = await same_in_one_batch_and_one_by_one(tmp_path, events)
    assert [(t, p.get("amount"), p.get("year_to_date_usd"), p.get("directory_status", p.get("status")))
            for t, _, p in emitted] == [("fx.settlement", "447.50", "62.76", "exempt")]
    [held] = state["payments"]
    assert (held["payment_code"], held["payment_no"], held["amount"]) == ("PAYFIRM-A", "PAY-A", D("447.50"))


async def test_the_bound_payments_own_correction_replaces_it(tmp_path):
    """Spec §7.2: the bound payment's firm may correct it (same payment_no) before customs releases."""
    events = [envelope(payment("IMP-1", "400.00", submitted_at=T0 + timedelta(minutes=5), firm="PAYFIRM-A",
                               payment_no="PAY-A"), "IMP-1"),
              envelope(payment("IMP-1", "447.50", submitted_at=T0 + timedelta(minutes=6), firm="PAYFIRM-A",
                               payment_no="PAY-A"), "IMP-1"),
              envelope(order("IMP-1", direction="import", currency="CNY", actual_paid="447.50"), "IMP-1"),
              envelope(decision("IMP-1", direction="import"), "IMP-1")]
    emitted, _ = await same_in_one_batch_and_one_by_one(tmp_path, events)
    assert [p["amount"] for _, _, p in emitted] == ["447.50"]


async def test_new_then_corrected_in_one_batch_settles_the_correction(tmp_path):
    events = [envelope(order("EXP-1", actual_paid="42.00"), "EXP-1"),
              envelope(order("EXP-1", version=2, action="corrected", actual_paid="50.00"), "EXP-1"),
              envelope(decision("EXP-1", version=1), "EXP-1"),  # about the replaced version: waits
              envelope(decision("EXP-1", version=2, at=T0 + timedelta(minutes=20)), "EXP-1"),
              envelope(order("EXP-1", version=3, action="cancelled", actual_paid="50.00"), "EXP-1")]  # too late
    emitted, state = await same_in_one_batch_and_one_by_one(tmp_path, events)
    assert [(p["status"], p["amount"]) for _, _, p in emitted] == [("settled", "50.00")]
    assert (state["settlements"][0]["order_version"], state["orders"][0]["version"]) == (2, 3)


async def test_rejected_is_not_applicable_once_then_gives_way_to_a_settled_correction(tmp_path):
    events = [envelope(order("EXP-1"), "EXP-1"), envelope(decision("EXP-1", status="rejected"), "EXP-1"),
              envelope(decision("EXP-1", status="rejected", at=T0 + timedelta(minutes=11)), "EXP-1"),  # again: no news
              envelope(order("EXP-1", version=2, action="corrected"), "EXP-1"),
              envelope(decision("EXP-1", version=2, at=T0 + timedelta(minutes=30)), "EXP-1")]
    emitted, state = await same_in_one_batch_and_one_by_one(tmp_path, events)
    assert [p["status"] for _, _, p in emitted] == ["not_applicable", "settled"]
    assert [(s["order_version"], s["status"]) for s in state["settlements"]] == [(2, "settled")]


async def test_year_to_date_stays_exact_over_several_settlements_of_one_enterprise_in_one_run(tmp_path):
    nos = [f"EXP-{i}" for i in range(5)]
    events = [envelope(order(no, actual_paid="50000.00"), no) for no in nos]
    events += [envelope(decision(no), no) for no in nos]
    emitted, state = await same_in_one_batch_and_one_by_one(tmp_path, events)
    settled = [p for t, _, p in emitted if t == "fx.settlement"]
    # Each settlement is a new revision of the seller's year, packed after the year (rules.enterprise_revision):
    # the gateway keeps the greatest, whatever order the settlements (keyed by order) reach it in.
    y = 2026 * 10**9
    assert [(p["order_no"], p["year_to_date_usd"], p["directory_status"], p["enterprise_revision"]) for p in settled] == [
        ("EXP-0", "50000.00", "exempt", y + 1), ("EXP-1", "100000.00", "exempt", y + 2),
        ("EXP-2", "150000.00", "exempt", y + 3), ("EXP-3", "200000.00", "registration_required", y + 4),
        ("EXP-4", "250000.00", "registration_required", y + 5)]
    [change] = [(cid, p) for t, cid, p in emitted if t == "fx.directory_status"]
    assert change == (f"{PLATFORM}:EXP-3", {"enterprise_code": SELLER, "year": 2026, "status": "registration_required",
                                            "previous_status": "exempt", "year_to_date_usd": "200000.00",
                                            "enterprise_revision": y + 4})
    [year] = state["enterprise_years"]
    assert (year["year_to_date_usd"], year["settlements"], year["directory_status"], year["revision"]) == (
        D("250000.00"), 5, "registration_required", 5)


async def test_a_registered_enterprise_stays_registered_across_the_threshold(tmp_path):
    service = fx_app.service
    async with LocalRunner(service, tmp_path) as runner:
        await runner.deliver(envelope(order("EXP-0", actual_paid="150000.00"), "EXP-0"), envelope(decision("EXP-0"), "EXP-0"))
        response = await fx_app.register_in_directory(SELLER, None)
        assert response.status_code == 201
        [registered] = await runner.new_outbox_rows()
        assert b'"previous_status":"exempt"' in registered.value and b'"status":"registered"' in registered.value
        assert b'"enterprise_revision":2026000000002' in registered.value  # the settlement was 1
        assert (await fx_app.register_in_directory(SELLER, None)).status_code == 200
        emitted = await runner.deliver(envelope(order("EXP-1", actual_paid="60000.00"), "EXP-1"),
                                       envelope(decision("EXP-1"), "EXP-1"))
        assert [(e.type, e.payload["directory_status"], e.payload["enterprise_revision"]) for e in emitted] == [
            ("fx.settlement", "registered", 2026 * 10**9 + 3)]
        [year] = (await stored(runner))["enterprise_years"]
        assert (year["year_to_date_usd"], year["directory_status"]) == (D("210000.00"), "registered")


async def test_many_orders_of_several_enterprises_in_one_batch_as_one_by_one(tmp_path):
    events = []
    for i in range(200):
        no, seller = f"ORD-{i:04d}", f"SELLER-{i % 7}"
        if i % 3:
            events.append(envelope(order(no, seller=seller, actual_paid=f"{9000 + i}.25"), no))
        else:
            events.append(envelope(order(no, seller=seller, direction="import", currency="EUR", actual_paid="0.00"), no))
            events.append(envelope(payment(no, f"{8000 + i}.75", "EUR"), no))
    for i in range(200):
        no = f"ORD-{i:04d}"
        events.append(envelope(decision(no, status="rejected" if i % 11 == 0 else "released",
                                        direction="export" if i % 3 else "import", seller=f"SELLER-{i % 7}"), no))
    emitted, state = await same_in_one_batch_and_one_by_one(tmp_path, events)
    assert len([e for e in emitted if e[0] == "fx.settlement"]) == 200
    assert len([e for e in emitted if e[0] == "fx.directory_status"]) == 7  # every seller crosses once
    totals = {y["code"]: y["year_to_date_usd"] for y in state["enterprise_years"]}
    assert totals == {code: sum((s["amount_usd"] for s in state["settlements"]
                                 if s["ecommerce_code"] == code and s["status"] == "settled"), D(0)) for code in totals}


async def test_redelivery_has_no_second_effect(tmp_path):
    events = [envelope(order("EXP-1"), "EXP-1"), envelope(decision("EXP-1"), "EXP-1")]
    async with LocalRunner(fx_service(), tmp_path) as runner:
        assert len(await runner.deliver(*events)) == 1
        before = await stored(runner)
        assert await runner.deliver(*events) == []
        assert await runner.deliver(events[1]) == []
        assert await stored(runner) == before


async def test_an_order_without_a_rate_is_dead_lettered_alone(tmp_path):
    async with LocalRunner(fx_service(), tmp_path) as runner:
        emitted = await runner.deliver(envelope(order("EXP-1"), "EXP-1"), envelope(order("EXP-X", currency="CHF"), "EXP-X"),
                                       envelope(decision("EXP-1"), "EXP-1"), envelope(decision("EXP-X"), "EXP-X"))
        assert [e.payload["order_no"] for e in emitted] == ["EXP-1"]
        [dead] = await runner.dead_letters()
        assert dead["topic"] == "customs.decision.v1.dlq" and "CHF" in dead["dlq.error"]
