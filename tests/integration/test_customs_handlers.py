"""Customs' handlers on the seam: events in through the batch core (shared/testing.py, SQLite, no broker),
decisions out and the state stored. Runs holding several events of one key, and batches of many keys,
must give what delivering the same events one at a time gives (domain §4, §5, §9, §10, §12)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from contracts.envelope import Envelope
from contracts.identifiers import mask_id_number
from contracts.v1.events import (
    CreditRatingChanged,
    EnterpriseRegistered,
    NegativeListChanged,
    Order,
    OrderSubmitted,
    Payment,
    PaymentSubmitted,
    SealedPerson,
    Waybill,
    WaybillSubmitted,
)
from contracts.v2.events import OrderSubmittedV2
from services.customs.app import service
from services.customs.handlers import record_inspection, sweep
from services.customs.rules import selected_for_inspection
from services.customs.tables import buyer_year_totals, order_files, party_waits, quota_holdings, released_export_lines
from shared.outbox import build_envelope
from shared.sealing import seal
from services.customs.settings import settings
from shared.testing import LocalRunner
from tests.support import new_resident_id, order_body, payment_body, unique, waybill_body

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)
PLATFORM, SELLER, PAYER, CARRIER = "PLAT0001", "SELL0001", "PAY00001", "LOG00001"
ALL = [(PLATFORM, ["platform"]), (SELLER, ["ecommerce"]), (PAYER, ["payment"]), (CARRIER, ["logistics"])]


def order_no(selected: bool = False) -> str:
    s = settings()
    while True:
        candidate = unique("ORD")
        if selected_for_inspection(PLATFORM, candidate, s.customs_selection_salt,
                                   Decimal(s.customs_base_inspection_rate)) == selected:
            return candidate


def registration(code: str, roles: list[str], credit: str = "general") -> EnterpriseRegistered:
    return EnterpriseRegistered(code=code, name=f"{code} Ltd", roles=roles, country="CN", customs_credit=credit,
                                registered_at=T0)


def registrations() -> list[EnterpriseRegistered]:
    return [registration(code, roles) for code, roles in ALL]


def sealed(person: dict) -> SealedPerson:
    return SealedPerson(name=person["name"], id_type="resident_id", id_number_masked=mask_id_number(person["id_number"]),
                        id_number_sealed=seal(person["id_number"]))


def order_event(body: dict, version: int = 1, action: str = "new", at: datetime = T0) -> OrderSubmittedV2:
    order = {**body, "buyer": sealed(body["buyer"])} if body.get("buyer") else body
    return OrderSubmittedV2.from_v1(OrderSubmitted(action=action, version=version, submitted_at=at, order=Order(**order)),
                                    "CN", "CN")


def payment_event(body: dict, at: datetime = T0, **kw) -> PaymentSubmitted:
    p = payment_body(PAYER, body, **kw)
    return PaymentSubmitted(submitted_at=at, payment=Payment(**{**p, "payer": sealed(p["payer"])}))


def waybill_event(body: dict, at: datetime = T0, **kw) -> WaybillSubmitted:
    return WaybillSubmitted(submitted_at=at, waybill=Waybill(**waybill_body(CARRIER, body, **kw)))


def an_import(no: str | None = None, **kw) -> dict:
    return order_body(PLATFORM, SELLER, no or order_no(), **kw)


def watch(price: str) -> dict:
    return dict(items=[{"item_no": "W", "name": "Watch", "hs_code": "9102110000", "quantity": 1, "unit": "piece",
                        "unit_price": price, "origin_country": "CH"}], freight="0.00", discount="0.00", tax_total="0.00")


def envelope(event, key: str):  # noqa: ANN001, ANN201
    return build_envelope(event, "gateway", key)[1]


def decisions(emitted) -> list[tuple]:  # noqa: ANN001
    out = []
    for e in emitted:
        p = e.payload
        out.append((e.correlation_id, p["order_version"], p["status"], p["channel"],
                    tuple(r["code"] for r in p["reasons"]), p.get("tax_mode"), p.get("dutiable_value_cny")))
    return out


async def state(runner: LocalRunner) -> dict:
    """What customs stores, without the times that depend on when it ran."""
    async with runner.service.sessions() as session:
        files = {(r.platform_code, r.order_no): (r.order_version, r.decided_version, r.status, r.channel,
                                                  tuple(x["code"] for x in r.reasons), r.tax_mode, r.dutiable_value_cny,
                                                  r.payment_no, r.waybill_no, r.awaiting_party_since is not None)
                 for r in await session.execute(select(order_files))}
        holdings = {(r.platform_code, r.order_no): (r.buyer, r.year, r.amount_cny, r.order_version)
                    for r in await session.execute(select(quota_holdings))}
        totals = {(r.buyer, r.year): r.total_cny for r in await session.execute(select(buyer_year_totals))
                  if r.total_cny}
        waits = set(map(tuple, await session.execute(select(party_waits))))
        lines = {(r.platform_code, r.order_no, r.line_no, r.hs_code, r.value)
                 for r in await session.execute(select(released_export_lines))}
    return {"files": files, "holdings": holdings, "totals": totals, "waits": waits, "lines": lines}


async def published(runner: LocalRunner) -> list[Envelope]:
    """What the service emitted outside a delivery (the sweep, the back office)."""
    return [Envelope.model_validate_json(r.value) for r in await runner.new_outbox_rows() if not r.topic.endswith(".dlq")]


@pytest.fixture
async def runner(tmp_path):
    async with LocalRunner(service, tmp_path) as r:
        await r.deliver(*registrations())
        yield r


async def delivered(tmp_path, name: str, *batches: list) -> tuple[list[tuple], dict]:
    """Delivers `batches` (each a list of events: one batch) to a fresh customs database after the
    registrations; returns the decisions emitted, in order, and the state stored. One database at a time:
    the service object holds one database."""
    path = tmp_path / name
    path.mkdir()
    async with LocalRunner(service, path) as runner:
        await runner.deliver(*registrations())
        emitted: list[tuple] = []
        for batch in batches:
            emitted += decisions(await runner.deliver(*batch))
        return emitted, await state(runner)


# --- documents -------------------------------------------------------------------------------


async def test_the_worked_example_is_released_green_whatever_order_the_documents_come_in(runner):
    body = an_import()
    key = f"{PLATFORM}:{body['order_no']}"
    assert await runner.deliver(waybill_event(body)) == []
    assert await runner.deliver(payment_event(body)) == []
    emitted = await runner.deliver(order_event(body))
    # goods 2 x 180.00 + freight 12.00 - discount 10.00 = 362.00 CNY (domain §7)
    assert decisions(emitted) == [(key, 1, "released", "green", (), "retail", "362.00")]
    s = await state(runner)
    assert s["holdings"][(PLATFORM, body["order_no"])][2] == Decimal("362.00")
    assert list(s["totals"].values()) == [Decimal("362.00")]


async def test_three_documents_in_one_batch_are_decided_once(runner):
    body = an_import()
    emitted = await runner.deliver(order_event(body), payment_event(body), waybill_event(body))
    assert [d[2] for d in decisions(emitted)] == ["released"]


async def test_redelivery_has_no_second_effect(runner):
    body = an_import()
    key = f"{PLATFORM}:{body['order_no']}"
    events = [envelope(order_event(body), key), envelope(payment_event(body), key), envelope(waybill_event(body), key)]
    assert len(await runner.deliver(*events)) == 1
    before = await state(runner)
    assert await runner.deliver(*events) == []
    assert await runner.deliver(events[2], events[2]) == []
    assert await state(runner) == before


async def test_a_second_payment_is_ignored_and_the_same_payment_again_changes_nothing(runner):
    body = an_import()
    first = payment_event(body)
    other = payment_event(body, amount="1.00")
    assert await runner.deliver(order_event(body), first, other, first) == []
    s = await state(runner)
    assert s["files"][(PLATFORM, body["order_no"])][7] == first.payment.payment_no
    emitted = await runner.deliver(waybill_event(body))
    assert [d[2] for d in decisions(emitted)] == ["released"]


async def test_the_bound_payments_own_correction_replaces_it_while_the_file_is_pending(runner):
    """Spec §7.2: the firm that filed the order's payment corrects it under the same payment_no before
    customs decided; customs decides on the correction (no AMOUNT_MISMATCH). Another firm's is ignored."""
    body = an_import()
    wrong = payment_event(body, amount="400.00", payment_no="PAY-FIX-1")
    corrected = payment_event(body, payment_no="PAY-FIX-1")
    other_firm = PaymentSubmitted(submitted_at=T0, payment=Payment(**{
        **corrected.payment.model_dump(), "payment_code": "PAY00002", "payment_no": "PAY-RIVAL", "amount": "1.00"}))
    assert await runner.deliver(order_event(body), wrong, corrected, other_firm) == []
    emitted = await runner.deliver(waybill_event(body))
    assert [d[2:5] for d in decisions(emitted)] == [("released", "green", ())]


async def test_documents_of_firms_the_order_does_not_name_do_not_match(runner):
    """Spec §7.2: an order naming its payment firm and transaction, and its logistics firm, matches only
    their documents (the gateway refuses the others; customs holds the same rule)."""
    body = {**an_import(), "payment_code": "PAY00002", "payment_transaction_id": "TX-1", "logistics_code": CARRIER}
    emitted = await runner.deliver(order_event(body), payment_event(body), waybill_event(body))
    [(_, _, status, _, reasons, _, _)] = decisions(emitted)
    assert (status, reasons) == ("rejected", ("ORDER_MISMATCH",))
    body = {**an_import(), "payment_code": PAYER, "logistics_code": CARRIER}
    emitted = await runner.deliver(order_event(body), payment_event(body), waybill_event(body))
    assert [d[2] for d in decisions(emitted)] == ["released"]


async def test_every_mismatch_is_reported_together(runner):
    body = an_import()
    emitted = await runner.deliver(order_event(body), payment_event(body, amount="447.00", payer_name="Li Si",
                                                                      payer_id=new_resident_id()),
                                   waybill_event(body, freight="15.00"))
    assert decisions(emitted)[0][2:5] == ("rejected", None, ("AMOUNT_MISMATCH", "IDENTITY_MISMATCH"))


async def test_new_corrected_and_cancelled_in_one_run_equal_one_at_a_time(tmp_path):
    body = an_import()
    corrected = {**body, "discount": "20.00", "actual_paid": f"{Decimal(body['actual_paid']) - 10:.2f}"}
    stale = order_event(body, 1)  # a redelivered older version, with another event id: ignored
    sequence = [payment_event(corrected), waybill_event(body), order_event(body, 1), order_event(corrected, 2, "corrected"),
                stale, order_event(corrected, 3, "cancelled")]
    # in one batch: payment and waybill runs, then ONE run of four order events for one key
    emitted_together, state_together = await delivered(tmp_path, "together", sequence)
    emitted_alone, state_alone = await delivered(tmp_path, "one", *([e] for e in sequence))
    # v1 rejected (payment of the corrected amount), v2 released, v3: released is final, republished
    assert [(d[1], d[2]) for d in emitted_together] == [(1, "rejected"), (2, "released"), (3, "released")]
    assert emitted_together == emitted_alone
    assert state_together == state_alone


async def test_a_cancelled_order_gives_its_quota_back_within_the_same_run(runner):
    buyer = new_resident_id("19860202")
    held = an_import(order_no(selected=True), buyer_id=buyer,
                     items=[{"item_no": "H", "name": "Handbag", "hs_code": "4202210090", "quantity": 1, "unit": "piece",
                             "unit_price": "20000.00", "origin_country": "FR"}], freight="0.00", discount="0.00",
                     tax_total="0.00")
    blocked = an_import(buyer_id=buyer, **watch("4000.00"))
    fits = an_import(buyer_id=buyer, **watch("4000.00"))
    emitted = decisions(await runner.deliver(
        order_event(held), order_event(blocked), payment_event(held), payment_event(blocked), waybill_event(held),
        waybill_event(blocked)))
    assert [(d[2], d[4]) for d in emitted] == [("inspection", ("SELECTED_FOR_INSPECTION",)),
                                               ("released", ())]  # 24,000 of 26,000
    emitted = decisions(await runner.deliver(order_event(fits), payment_event(fits), order_event(held, 2, "cancelled"),
                                             waybill_event(fits)))
    # the order run cancels the held order (20,000 back) before the waybill run decides `fits`
    assert [(d[0].split(":")[1], d[2]) for d in emitted] == [(held["order_no"], "cancelled"), (fits["order_no"], "released")]
    s = await state(runner)
    assert list(s["totals"].values()) == [Decimal("8000.00")]
    assert (PLATFORM, held["order_no"]) not in s["holdings"]


async def test_a_batch_of_200_keys_equals_one_at_a_time_including_the_annual_limit(tmp_path):
    buyers: list[str] = []
    while len(buyers) < 10:  # ten different buyers: two equal random numbers would share one annual limit
        if (buyer := new_resident_id("19850101")) not in buyers:
            buyers.append(buyer)
    bodies = [an_import(buyer_id=buyers[i % 10], **watch("4990.00")) for i in range(200)]  # 20 x 4,990 per buyer
    events = [order_event(b) for b in bodies] + [payment_event(b) for b in bodies] + [waybill_event(b) for b in bodies]
    emitted_together, s_together = await delivered(tmp_path, "together", events)
    emitted_alone, s_alone = await delivered(tmp_path, "one", *([e] for e in events))
    assert len(emitted_together) == 200
    assert emitted_together == emitted_alone  # orders decided in the order their last document came
    statuses = [d[2] for d in emitted_together]
    # 5 x 4,990 = 24,950 fits in 26,000; a 6th would be 29,940: the rest of each buyer's orders are rejected
    assert statuses.count("released") + statuses.count("inspection") == 50
    assert {d[4] for d in emitted_together if d[2] == "rejected"} == {("OVER_ANNUAL_LIMIT",)}
    assert s_together == s_alone
    assert set(s_together["totals"].values()) == {Decimal("24950.00")}


# --- enterprises -----------------------------------------------------------------------------


async def test_a_file_waits_for_a_registration_and_is_decided_when_it_comes(runner):
    seller = "SELL0002"
    body = order_body(PLATFORM, seller, order_no())
    assert await runner.deliver(order_event(body), payment_event(body), waybill_event(body)) == []
    s = await state(runner)
    assert s["waits"] == {(seller, PLATFORM, body["order_no"])}
    emitted = await runner.deliver(registration(seller, ["ecommerce"]))
    assert [d[2] for d in decisions(emitted)] == ["released"]
    assert (await state(runner))["waits"] == set()
    assert await runner.deliver(registration(seller, ["ecommerce"])) == []  # no second decision


async def test_a_negative_listed_seller_is_rejected(runner):
    listed = NegativeListChanged(enterprise_code=SELLER, listed=True, score=40, grade="D", reason="prohibited goods",
                                 changed_at=T0)
    body = an_import()
    emitted = await runner.deliver(listed, order_event(body), payment_event(body), waybill_event(body))
    assert decisions(emitted)[0][2:5] == ("rejected", None, ("PARTY_ON_NEGATIVE_LIST",))


@pytest.mark.parametrize("together", [True, False], ids=["one run", "separate runs"])
async def test_an_older_credit_change_consumed_later_does_not_clear_a_listing(tmp_path, together):
    """Credit rated the seller C (revision 6), then D and listed it (7, 8). The listing and the D rating
    travel on two topics: the older C rating arrives last, and must not take the seller off the list."""
    older = CreditRatingChanged(enterprise_code=SELLER, score=62, grade="C", customs_credit="general",
                                negative_listed=False, reason="r", changed_at=T0, enterprise_revision=6)
    rated_d = older.model_copy(update={"score": 40, "grade": "D", "negative_listed": True, "enterprise_revision": 7})
    listed = NegativeListChanged(enterprise_code=SELLER, listed=True, score=40, grade="D", reason="grade D",
                                 changed_at=T0, enterprise_revision=8)
    async with LocalRunner(service, tmp_path) as runner:
        await runner.deliver(*registrations())
        if together:
            await runner.deliver(listed, rated_d, older)
        else:
            for e in (listed, rated_d, older):
                await runner.deliver(e)
        body = an_import()
        emitted = await runner.deliver(order_event(body), payment_event(body), waybill_event(body))
        assert decisions(emitted)[0][2:5] == ("rejected", None, ("PARTY_ON_NEGATIVE_LIST",))


async def test_an_untrustworthy_seller_is_always_inspected(runner):
    body = order_body(PLATFORM, "SELL0003", order_no())
    emitted = await runner.deliver(registration("SELL0003", ["ecommerce"], "untrustworthy"), order_event(body),
                                   payment_event(body), waybill_event(body))
    assert decisions(emitted)[0][2:4] == ("inspection", "red")


# --- exports, the sweep, inspections ---------------------------------------------------------


async def test_a_released_9610_export_is_kept_for_the_monthly_declaration(runner):
    body = order_body(PLATFORM, SELLER, order_no(), direction="export", destination_country="DE", tax_total="0.00",
                      discount="0.00", items=[{"item_no": "T", "name": "T-shirt", "hs_code": "6109100022",
                                               "quantity": 3, "unit": "piece", "unit_price": "40.00",
                                               "origin_country": "CN"}])
    emitted = await runner.deliver(order_event(body), waybill_event(body))
    assert decisions(emitted)[0][2] == "released"
    assert (await state(runner))["lines"] == {(PLATFORM, body["order_no"], 0, "6109100022", Decimal("120"))}


async def test_the_sweep_times_out_missing_documents_and_a_late_order_is_rejected_at_once(runner):
    with_order = an_import()
    without_order = an_import()
    await runner.deliver(order_event(with_order), payment_event(with_order), payment_event(without_order))
    later = T0 + timedelta(hours=float(settings().document_timeout_hours) + 1)
    async with runner.service.unit_of_work() as uow:
        await sweep(uow, later)
    emitted = decisions(await published(runner))
    assert [(d[0].split(":")[1], d[2], d[4]) for d in emitted] == [(with_order["order_no"], "rejected", ("DOCUMENT_TIMEOUT",))]
    emitted = decisions(await runner.deliver(order_event(without_order)))
    assert [(d[2], d[4]) for d in emitted] == [("rejected", ("DOCUMENT_TIMEOUT",))]


async def test_inspection_results(runner):
    passed, failed = an_import(order_no(selected=True)), an_import(order_no(selected=True))
    for body in (passed, failed):
        emitted = await runner.deliver(order_event(body), payment_event(body), waybill_event(body))
        assert decisions(emitted)[0][2] == "inspection"
    for body, ok in ((passed, True), (failed, False)):
        async with runner.service.unit_of_work() as uow:
            await record_inspection(uow, PLATFORM, body["order_no"], ok, "checked")
    emitted = decisions(await published(runner))
    assert [(d[2], d[3]) for d in emitted] == [("released", "red"), ("rejected", None)]
    s = await state(runner)
    assert (PLATFORM, failed["order_no"]) not in s["holdings"] and (PLATFORM, passed["order_no"]) in s["holdings"]


async def test_a_run_costs_the_same_statements_for_2_keys_as_for_60(tmp_path):
    """Set-based: the statements a batch executes do not grow with the number of keys in it."""
    from sqlalchemy import event

    async def statements(runner: LocalRunner, n: int) -> int:
        bodies = [an_import(**watch("100.00")) for _ in range(n)]
        events = [order_event(b) for b in bodies] + [payment_event(b) for b in bodies] + [waybill_event(b) for b in bodies]
        count = 0

        def counted(*_args) -> None:  # noqa: ANN002
            nonlocal count
            count += 1

        engine = runner.service.engine.sync_engine
        event.listen(engine, "before_cursor_execute", counted)
        try:
            emitted = await runner.deliver(*events)
        finally:
            event.remove(engine, "before_cursor_execute", counted)
        assert len(emitted) == n
        return count

    counts = []
    for n in (2, 60):
        path = tmp_path / f"n{n}"
        path.mkdir()
        async with LocalRunner(service, path) as runner:
            await runner.deliver(*registrations())
            counts.append(await statements(runner, n))
    assert counts[0] == counts[1], counts


async def test_a_file_waiting_for_a_registration_is_decided_by_the_sweep_after_the_timeout(runner):
    body = order_body(PLATFORM, "SELL0009", order_no())
    assert await runner.deliver(order_event(body), payment_event(body), waybill_event(body)) == []
    async with runner.service.unit_of_work() as uow:
        await sweep(uow)  # not yet: it has only just started waiting
    assert await published(runner) == []
    async with runner.service.unit_of_work() as uow:
        await sweep(uow, datetime.now(timezone.utc) + timedelta(hours=float(settings().document_timeout_hours) + 1))
    emitted = decisions(await published(runner))
    assert [(d[2], d[4]) for d in emitted] == [("rejected", ("PARTY_NOT_REGISTERED",))]
    assert (await state(runner))["waits"] == set()


async def test_a_file_the_sweep_cannot_process_is_left_as_it_was_and_the_others_are_decided(runner, monkeypatch):
    from services.customs import rules

    poisoned, healthy = an_import(), an_import()
    await runner.deliver(order_event(poisoned), payment_event(poisoned), order_event(healthy), payment_event(healthy))
    before = (await state(runner))["files"][(PLATFORM, poisoned["order_no"])]
    real = rules.dutiable_value_or_none

    def failing(order, rates, day):  # noqa: ANN001, ANN202
        if order.order_no == poisoned["order_no"]:
            raise ValueError("cannot value this order")
        return real(order, rates, day)

    monkeypatch.setattr(rules, "dutiable_value_or_none", failing)
    async with runner.service.unit_of_work() as uow:
        await sweep(uow, T0 + timedelta(hours=float(settings().document_timeout_hours) + 1))
    emitted = decisions(await published(runner))
    assert [(d[0].split(":")[1], d[2]) for d in emitted] == [(healthy["order_no"], "rejected")]
    assert (await state(runner))["files"][(PLATFORM, poisoned["order_no"])] == before
