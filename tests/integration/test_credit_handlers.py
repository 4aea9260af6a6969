"""Credit on the seam: its handlers driven by the batch core on SQLite (shared/testing.py), no broker.

For every event type it consumes: the ratings and listings it publishes and the files and ledger it keeps
(domain §9); several score events of one enterprise in one batch publish what they publish one batch at a
time; a batch of many enterprises gives what one-by-one delivery gives; a redelivered event, or the same
decision published twice, counts once."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from contracts import examples
from contracts.envelope import Envelope
from contracts.v1.events import CustomsDecision, EnterpriseRegistered, WaybillTracked
from services.credit.handlers import handlers
from services.credit.tables import credit_files, score_events
from shared.outbox import build_envelope
from shared.runtime import Service
from shared.testing import LocalRunner, batch_equals_one_by_one

pytestmark = pytest.mark.integration

D = Decimal
T0 = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)
PLATFORM, FIRM = examples.PLATFORM, examples.LOGISTICS_FIRM


def registered(code: str, customs_credit: str = "general", roles: tuple[str, ...] = ("ecommerce",)) -> Envelope:
    return build_envelope(EnterpriseRegistered(code=code, name=f"Enterprise {code}", roles=list(roles), country="CN",
                                               customs_credit=customs_credit, registered_at=T0), "gateway", code)[1]


def decided(seller: str, order_no: str, status: str, *reasons: str, version: int = 1) -> Envelope:
    d = CustomsDecision(platform_code=PLATFORM, order_no=order_no, order_version=version, ecommerce_code=seller,
                        logistics_code=FIRM, direction="import", trade_mode="9610", status=status,
                        reasons=[{"code": r, "message": r.lower()} for r in reasons], decided_at=T0)
    return build_envelope(d, "customs", f"{PLATFORM}:{order_no}")[1]


def tracked(firm: str, order_no: str, event: str = "exception", at: datetime = T0, note: str = "") -> Envelope:
    t = WaybillTracked(waybill_no=f"W{order_no}", logistics_code=firm, order_no=order_no, platform_code=PLATFORM,
                       event=event, at=at, note=note)
    return build_envelope(t, "gateway", f"{PLATFORM}:{order_no}")[1]


def runner(directory: Path) -> LocalRunner:
    directory.mkdir(parents=True, exist_ok=True)
    return LocalRunner(Service("credit", handlers=handlers), directory)


def said(emitted: list[Envelope]) -> list[tuple]:
    """What was published, without envelope ids and the service's own clock."""
    return [(e.type, e.correlation_id, {k: v for k, v in e.payload.items() if k != "changed_at"}) for e in emitted]


def ratings(emitted: list[tuple]) -> list[tuple]:
    return [(p["enterprise_code"], p["score"], p["grade"], p["previous_grade"], p["negative_listed"])
            for typ, _, p in emitted if typ == "credit.rating"]


def listings(emitted: list[tuple]) -> list[tuple]:
    return [(p["enterprise_code"], p["listed"], p["score"]) for typ, _, p in emitted if typ == "credit.negative_list"]


async def state(r: LocalRunner) -> dict:
    """Every file and the ledger, without the service's own clock."""
    async with r.service.sessions() as session:
        rows = (await session.execute(select(credit_files).order_by(credit_files.c.code))).all()
        files = [(f.code, f.customs_credit, D(f.score), bool(f.negative_listed), f.listed_at is not None,
                  f.registered_at) for f in rows]
        ledger = [(e.event_key, e.enterprise_code, D(e.delta), e.reason, e.occurred_at)
                  for e in (await session.execute(select(score_events).order_by(score_events.c.id))).all()]
    return {"files": files, "ledger": ledger, "revisions": {f.code: f.revision for f in rows}}


async def together_and_apart(tmp_path: Path, events: list[Envelope]) -> tuple[list, dict]:
    """One batch (handled whole) and one batch each must publish and keep the same."""
    return await batch_equals_one_by_one(runner, tmp_path, events, said, state)


# --- registration ---------------------------------------------------------------------------------


async def test_a_registration_opens_the_file_at_its_category_start_and_publishes_it(tmp_path):
    emitted, stored = await together_and_apart(tmp_path, [
        registered("E1"), registered("E2", "advanced"), registered("E3", "untrustworthy"), registered("E1")])
    assert ratings(emitted) == [("E1", "100.0", "A", None, False), ("E2", "110.0", "A", None, False),
                                ("E3", "50.0", "D", None, False)]  # opening at D does not list
    assert {p["reason"] for _, _, p in emitted} == {"registered"}
    assert [e[1] for e in emitted] == ["E1", "E2", "E3"]  # keyed by the enterprise
    assert stored["files"] == [("E1", "general", D(100), False, False, T0), ("E2", "advanced", D(110), False, False, T0),
                               ("E3", "untrustworthy", D(50), False, False, T0)]
    assert listings(emitted) == []


async def test_events_before_the_registration_open_a_provisional_file_recounted_at_registration(tmp_path):
    events = [decided("E4", "O1", "released"), decided("E4", "O2", "rejected", "AMOUNT_MISMATCH", "IDENTITY_MISMATCH"),
              registered("E4", "untrustworthy"), decided("E4", "O3", "released")]
    emitted, stored = await together_and_apart(tmp_path, events)
    # provisional general: 100.1, 95.1; registered untrustworthy: 50 + 0.1 - 5 = 45.1, listed by the recount
    assert ratings(emitted) == [("E4", "100.1", "A", "A", False), ("E4", "95.1", "A", "A", False),
                                ("E4", "45.1", "D", "A", True), ("E4", "45.2", "D", "D", True)]
    assert listings(emitted) == [("E4", True, "45.1")]
    reasons = [p["reason"] for typ, _, p in emitted if typ == "credit.rating"]
    assert reasons[2] == ("registered as untrustworthy; the 2 score event(s) that came before the registration "
                          "counted from its starting score")
    assert stored["files"] == [("E4", "untrustworthy", D("45.2"), True, True, T0)]


# --- scoring --------------------------------------------------------------------------------------


async def test_several_score_events_of_one_enterprise_in_one_batch_publish_every_step(tmp_path):
    # domain §9: three prohibited-goods rejections take a general seller from 100 to 40, listed at 60 > 55
    events = [registered("E5"), decided("E5", "P1", "rejected", "PROHIBITED_GOODS"),
              decided("E5", "P2", "rejected", "PROHIBITED_GOODS", "AMOUNT_MISMATCH"),  # -25
              decided("E5", "P3", "rejected", "PROHIBITED_GOODS"), decided("E5", "P4", "inspection"),
              decided("E5", "P5", "released", "SELECTED_FOR_INSPECTION"),
              decided("E5", "P6", "released", "OVER_SINGLE_LIMIT"),  # a release with a finding earns nothing
              decided("E5", "P7", "rejected", "OVER_ANNUAL_LIMIT")]  # a rejection that costs nothing
    emitted, stored = await together_and_apart(tmp_path, events)
    assert ratings(emitted) == [("E5", "100.0", "A", None, False), ("E5", "80.0", "B", "A", False),
                                ("E5", "55.0", "D", "B", True), ("E5", "35.0", "D", "D", True),
                                ("E5", "35.1", "D", "D", True)]
    assert listings(emitted) == [("E5", True, "55.0")]
    # Every notice about the file is its next revision, the rating before the listing it caused (the two
    # travel on two topics: the gateway keeps the greatest revision, whatever order it consumes them in).
    assert [(typ, p["enterprise_revision"]) for typ, _, p in emitted] == [
        ("credit.rating", 1), ("credit.rating", 2), ("credit.rating", 3), ("credit.negative_list", 4),
        ("credit.rating", 5), ("credit.rating", 6)]
    assert stored["revisions"] == {"E5": 6}
    assert [p["reason"] for typ, _, p in emitted if typ == "credit.rating"][1:] == [
        f"order {PLATFORM}:P1 rejected: PROHIBITED_GOODS",
        f"order {PLATFORM}:P2 rejected: PROHIBITED_GOODS, AMOUNT_MISMATCH",
        f"order {PLATFORM}:P3 rejected: PROHIBITED_GOODS",
        f"order {PLATFORM}:P5 released after an inspection that found nothing"]
    assert [e[2] for e in stored["ledger"]] == [D(-20), D(-25), D(-20), D("0.1")]


async def test_the_same_decision_twice_counts_once_and_a_corrected_orders_decision_again(tmp_path):
    events = [registered("E6"), decided("E6", "Q1", "rejected", "ORDER_MISMATCH"),
              decided("E6", "Q1", "rejected", "ORDER_MISMATCH"),
              decided("E6", "Q1", "rejected", "ORDER_MISMATCH", version=2)]
    emitted, stored = await together_and_apart(tmp_path, events)
    assert ratings(emitted)[1:] == [("E6", "95.0", "A", "A", False), ("E6", "90.0", "A", "A", False)]
    assert len(stored["ledger"]) == 2


async def test_a_release_republished_for_a_late_cancellation_counts_once(tmp_path):
    # Customs re-publishes a release under the version of a cancellation that came too late (issue 9):
    # the same release, so the seller earns +0.1 once.
    events = [registered("E8"), decided("E8", "L1", "released"), decided("E8", "L1", "released", version=2)]
    emitted, stored = await together_and_apart(tmp_path, events)
    assert ratings(emitted)[1:] == [("E8", "100.1", "A", "A", False)]
    assert len(stored["ledger"]) == 1


async def test_releases_climb_to_the_cap_and_stop_telling(tmp_path):
    events = [registered("E7")] + [decided("E7", f"R{i:03d}", "released") for i in range(102)]
    emitted, stored = await together_and_apart(tmp_path, events)
    assert len(ratings(emitted)) == 1 + 100  # 100.0 -> 110.0 in tenths; the last two are counted, not told
    assert ratings(emitted)[-1] == ("E7", "110.0", "A", "A", False)
    assert stored["files"][0][2] == D(110) and len(stored["ledger"]) == 102


async def test_a_waybill_exception_costs_the_carrier_two_once(tmp_path):
    cst = timezone(timedelta(hours=8))
    events = [registered(FIRM, roles=("logistics",)), tracked(FIRM, "W1", "picked_up"),
              tracked(FIRM, "W1", at=T0, note="box damaged"), tracked(FIRM, "W1", at=T0.astimezone(cst)),
              tracked(FIRM, "W1", at=T0 + timedelta(hours=1)), tracked("OTHER-FIRM", "W2")]
    emitted, stored = await together_and_apart(tmp_path, events)
    assert ratings(emitted) == [(FIRM, "100.0", "A", None, False), (FIRM, "98.0", "A", "A", False),
                                (FIRM, "96.0", "A", "A", False), ("OTHER-FIRM", "98.0", "A", "A", False)]
    assert [p["reason"] for typ, _, p in emitted][1] == (
        f"waybill WW1 (order {PLATFORM}:W1) exception at 2026-11-24T02:00:00+00:00: box damaged")
    assert stored["files"][1] == ("OTHER-FIRM", "general", D(98), False, False, None)  # provisional


# --- many enterprises, redelivery --------------------------------------------------------------------


async def test_a_batch_of_200_enterprises_gives_what_one_by_one_delivery_gives(tmp_path):
    events: list[Envelope] = []
    for i in range(200):
        code = f"M{i:03d}"
        category = ("general", "advanced", "untrustworthy")[i % 3]
        if i % 5:
            events.append(registered(code, category))
        events.append(decided(code, f"A{i}", ("released", "rejected")[i % 2], *(("AMOUNT_MISMATCH",) * (i % 2))))
        if i % 7 == 0:
            events.append(tracked(code, f"B{i}"))
    for i in range(200):
        code = f"M{i:03d}"
        events.append(decided(code, f"C{i}", "rejected", "PROHIBITED_GOODS"))
        if i % 5 == 0:
            events.append(registered(code, ("general", "advanced", "untrustworthy")[i % 3]))
    emitted, stored = await together_and_apart(tmp_path, events)
    assert len(stored["files"]) == 200
    assert len(listings(emitted)) == len([f for f in stored["files"] if f[3]])


async def test_a_redelivered_event_has_no_second_effect(tmp_path):
    events = [registered("E8"), decided("E8", "X1", "rejected", "PROHIBITED_GOODS"), tracked("E8", "X2")]
    async with runner(tmp_path) as r:
        assert len(await r.deliver(*events)) == 3
        before = await state(r)
        assert await r.deliver(*events) == []
        for e in events:
            assert await r.deliver(e) == []
        assert await state(r) == before


async def test_the_operator_lifts_a_listing_and_the_score_stays(tmp_path):
    from services.credit import app

    async with LocalRunner(app.service, tmp_path) as r:
        await r.deliver(registered("E9"), *[decided("E9", f"L{i}", "rejected", "PROHIBITED_GOODS") for i in range(3)])
        view = await app.remove_from_list("E9", None)
        assert (view["negative_listed"], view["score"], view["grade"], view["listed_at"]) == (False, "40.0", "D", None)
        lifted = said([Envelope.model_validate_json(row.value) for row in await r.new_outbox_rows()])
        assert listings(lifted) == [("E9", False, "40.0")]
        assert lifted[0][2]["reason"] == "removed from the negative list by the operator"
        # registered (1), three ratings (2-4) and the listing the third caused (5): the lifting is the next
        assert lifted[0][2]["enterprise_revision"] == 6 and (await state(r))["revisions"] == {"E9": 6}
        assert (await app.remove_from_list("E9", None))["negative_listed"] is False
        assert await r.new_outbox_rows() == []  # not listed: nothing to tell
        # still at D: the next penalty lists it again
        again = said(await r.deliver(decided("E9", "L9", "rejected", "ORDER_MISMATCH")))
        assert listings(again) == [("E9", True, "35.0")]
