"""The gateway's read model on the seam: its projectors driven by the batch core on SQLite (LocalRunner),
no broker. Agency answers become rows of agency_views / enterprise_views and trace lines, projected in
bulk: one query and one statement per table for a whole run."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import event, insert, select

from contracts.v1.events import (
    CreditRatingChanged,
    CustomsDecision,
    FxSettled,
    NegativeListChanged,
    Reason,
    ShipmentStatusChanged,
    TaxAssessment,
    WaybillTracked,
)
from services.gateway import store, views
from services.gateway.app import enterprise_view, order_status, order_trace, service, stats
from services.gateway.auth import Caller
from services.gateway.handlers import projector
from services.gateway.tables import agency_views, enterprise_views, enterprises, orders
from shared.outbox import build_envelope
from shared.runtime import Handlers
from shared.testing import LocalRunner

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc)
OPERATOR = Caller(code=None, roles=frozenset())


async def seed_orders(runner: LocalRunner, order_nos: list[str], version: int = 1,
                      complete_at: datetime | None = None) -> None:
    rows = [{"platform_code": "P", "order_no": n, "version": version, "content_hash": "x", "document": {},
             "ecommerce_code": "E", "direction": "import", "trade_mode": "9610", "currency": "CNY",
             "actual_paid": Decimal("447.50"), "country": "FR", "submitted_at": T0, "updated_at": T0,
             "documents_complete_at": complete_at} for n in order_nos]
    async with runner.service.sessions() as session, session.begin():
        await session.execute(insert(orders), rows)


async def seed_enterprise(runner: LocalRunner, code: str = "E") -> None:
    async with runner.service.sessions() as session, session.begin():
        await session.execute(insert(enterprises).values(
            code=code, name="Seller", roles=["ecommerce"], country="CN", customs_credit="general",
            api_key_hash=f"h-{code}", registered_at=T0))


def decision(order_no: str, version: int = 1, status: str = "released", minutes: int = 0) -> CustomsDecision:
    channel = {"released": "green", "inspection": "yellow", "rejected": None}.get(status)
    reasons = [Reason(code="AMOUNT_MISMATCH", message="paid differs")] if status == "rejected" else []
    return CustomsDecision(platform_code="P", order_no=order_no, order_version=version, ecommerce_code="E",
                           direction="import", trade_mode="9610", status=status, channel=channel, reasons=reasons,
                           decided_at=T0 + timedelta(minutes=minutes))


def fresh(path):  # noqa: ANN001, ANN201
    path.mkdir(parents=True, exist_ok=True)
    return path


def envelope(payload, order_no: str):  # noqa: ANN001, ANN201
    return build_envelope(payload, "agency", f"P:{order_no}")[1]


async def held(runner: LocalRunner, agency: str) -> dict[str, tuple[int, dict]]:
    async with runner.service.sessions() as session:
        rows = await session.execute(select(agency_views).where(agency_views.c.agency == agency))
        return {r.order_no: (r.version, r.view) for r in rows}


class Statements:
    """Every SQL statement the service's engine runs while active (one entry per execute call)."""

    def __init__(self, runner: LocalRunner):
        self.engine = runner.service.engine.sync_engine
        self.seen: list[str] = []

    def _record(self, conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        self.seen.append(" ".join(statement.split()))

    def __enter__(self) -> "Statements":
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    def count(self, pattern: str) -> int:
        return sum(1 for s in self.seen if re.search(pattern, s, re.IGNORECASE))


@pytest.fixture
async def runner(tmp_path):
    async with LocalRunner(service, tmp_path) as r:
        yield r


def some_status(i: int) -> str:
    return ("released", "inspection", "rejected")[i % 3]


async def test_200_customs_decisions_for_200_orders_project_in_one_statement_per_table(tmp_path):
    order_nos = [f"ORD-{i:03d}" for i in range(200)]

    def events() -> list:
        return [envelope(decision(n, status=some_status(i), minutes=i), n) for i, n in enumerate(order_nos)]

    async with LocalRunner(service, fresh(tmp_path / "one_run")) as runner:
        await seed_orders(runner, order_nos)
        with Statements(runner) as sql:
            assert await runner.deliver(*events()) == []
        assert sql.count(r"^SELECT .* FROM orders WHERE") == 1
        assert sql.count(r"^INSERT INTO agency_views") == 1
        assert sql.count(r"^INSERT INTO trace") == 1
        assert sql.count(r"^(INSERT|UPDATE|DELETE) .*(orders|enterprises|enterprise_views)\b") == 0

        views_held = await held(runner, "customs")
        assert len(views_held) == 200
        assert views_held["ORD-000"] == (1, {"status": "released", "channel": "green", "reasons": []})
        assert views_held["ORD-001"] == (1, {"status": "inspection", "channel": "yellow", "reasons": []})
        assert views_held["ORD-002"] == (1, {"status": "rejected", "channel": None, "reasons": [
            {"code": "AMOUNT_MISMATCH", "message": "paid differs"}]})

        view = await order_status("P", "ORD-002", OPERATOR)
        assert view["customs"] == {"status": "rejected", "channel": None,
                                   "reasons": [{"code": "AMOUNT_MISMATCH", "message": "paid differs"}]}
        assert (view["tax"], view["fx"], view["logistics"]) == ({"status": "pending"},) * 3
        assert view["updated_at"] == (T0 + timedelta(minutes=2)).isoformat()
        trace = await order_trace("P", "ORD-002", OPERATOR)
        assert [(e["source"], e["type"], e["summary"]) for e in trace["events"]] == [
            ("customs", "customs.decision", "rejected: AMOUNT_MISMATCH")]

    # The same answers one batch at a time leave the same views.
    async with LocalRunner(service, fresh(tmp_path / "one_by_one")) as alone:
        await seed_orders(alone, order_nos)
        for e in events():
            await alone.deliver(e)
        assert await held(alone, "customs") == views_held


async def test_an_older_version_never_overwrites_a_newer_one_in_one_run_or_across_runs(runner):
    await seed_orders(runner, ["A", "B", "C"], version=2)  # corrected once
    await runner.deliver(
        envelope(decision("A", 2, "released", minutes=5), "A"), envelope(decision("A", 1, "rejected", minutes=6), "A"),
        envelope(decision("B", 1, "rejected", minutes=1), "B"), envelope(decision("B", 2, "inspection", minutes=2), "B"))
    await runner.deliver(envelope(decision("A", 1, "inspection", minutes=9), "A"))
    customs = await held(runner, "customs")
    assert customs["A"] == (2, {"status": "released", "channel": "green", "reasons": []})
    assert customs["B"] == (2, {"status": "inspection", "channel": "yellow", "reasons": []})
    # a decision about the version before the correction alone: history only
    await runner.deliver(envelope(decision("C", 1, "released"), "C"))
    assert "C" not in await held(runner, "customs")
    trace = await order_trace("P", "A", OPERATOR)
    assert [e["summary"] for e in trace["events"]] == ["released (green)", "rejected: AMOUNT_MISMATCH",
                                                       "inspection (yellow)"]  # history keeps them all

    # The upsert itself keeps the newer version, whatever the caller folded: a view about version 1 saved
    # after one about version 2 changes nothing.
    async with runner.service.sessions() as session, session.begin():
        await store.save_order_views(session, [views.OrderView(("P", "A"), "customs", 1, {"status": "rejected"}, T0)])
        await store.save_order_views(session, [views.OrderView(("P", "B"), "customs", 3, {"status": "released"}, T0)])
    customs = await held(runner, "customs")
    assert customs["A"] == (2, {"status": "released", "channel": "green", "reasons": []})
    assert customs["B"] == (3, {"status": "released"})


async def test_a_tax_assessment_of_an_older_version_is_history_and_answers_without_a_version_are_the_held_one(runner):
    await seed_orders(runner, ["A"], version=2)
    old = TaxAssessment(platform_code="P", order_no="A", order_version=1, ecommerce_code="E", status="not_applicable",
                        assessed_at=T0)
    new = TaxAssessment(platform_code="P", order_no="A", order_version=2, ecommerce_code="E", status="assessed",
                        dutiable_value=Decimal("352"), customs_duty=Decimal("0"), vat=Decimal("37.68"),
                        consumption_tax=Decimal("43.48"), total=Decimal("81.16"), assessed_at=T0 + timedelta(minutes=1))
    await runner.deliver(envelope(old, "A"))
    assert await held(runner, "tax") == {}
    await runner.deliver(envelope(new, "A"), envelope(old, "A"))
    assert await held(runner, "tax") == {"A": (2, {
        "status": "assessed", "dutiable_value": "352.00", "customs_duty": "0.00", "vat": "37.68",
        "consumption_tax": "43.48", "total": "81.16", "currency": "CNY", "declared_difference": None})}

    await seed_enterprise(runner)
    settled = FxSettled(platform_code="P", order_no="A", ecommerce_code="E", status="settled", amount_usd=Decimal("61.60"),
                        rate=Decimal("7.2649"), rate_date="2026-11-24", year=2026, year_to_date_usd=Decimal("61.6"),
                        directory_status="exempt", settled_at=T0 + timedelta(minutes=2))
    shipped = ShipmentStatusChanged(logistics_code="L", waybill_no="W1", platform_code="P", order_no="A",
                                    status="cleared", previous_status="arrived_port", at=T0 + timedelta(minutes=3))
    await runner.deliver(envelope(settled, "A"), envelope(shipped, "A"))
    assert (await held(runner, "fx"))["A"][0] == 2 and (await held(runner, "logistics"))["A"][0] == 2
    view = await order_status("P", "A", OPERATOR)
    assert view["fx"]["status"] == "settled" and view["fx"]["amount_usd"] == "61.60"
    assert view["logistics"] == {"status": "cleared", "waybill_no": "W1", "at": shipped.at.isoformat()}
    assert view["updated_at"] == shipped.at.isoformat()
    enterprise = await enterprise_view("E", OPERATOR)
    assert enterprise["fx"] == {"directory_status": "exempt", "year": 2026, "year_to_date_usd": "61.60"}
    assert enterprise["credit"] == {"score": None, "grade": None, "negative_listed": False, "on_negative_list": False}


async def test_several_answers_of_one_key_in_one_run_give_what_separate_batches_give(tmp_path):
    rating = [CreditRatingChanged(enterprise_code="E", score=Decimal(s), grade=g, customs_credit="general",
                                  negative_listed=False, reason="r", changed_at=T0) for s, g in (("90", "A"), ("72.5", "B"))]

    def batch() -> list:
        return [envelope(decision("A", 1, "inspection"), "A"), envelope(decision("A", 1, "released", minutes=1), "A"),
                *[envelope(r, "E") for r in rating]]

    results = []
    for together in (True, False):
        async with LocalRunner(service, fresh(tmp_path / str(together))) as runner:
            await seed_orders(runner, ["A"])
            await seed_enterprise(runner)
            if together:
                with Statements(runner) as sql:
                    await runner.deliver(*batch())
                assert sql.count(r"^INSERT INTO enterprise_views") == 1
            else:
                for e in batch():
                    await runner.deliver(e)
            async with runner.service.sessions() as session:
                enterprise = (await session.execute(select(enterprise_views.c.view))).scalars().all()
            results.append((await held(runner, "customs"), enterprise, (await order_status("P", "A", OPERATOR))["credit"]))
    assert results[0] == results[1] == (
        {"A": (1, {"status": "released", "channel": "green", "reasons": []})},
        [{"score": "72.5", "grade": "B", "negative_listed": False, "on_negative_list": False}],
        {"ecommerce_grade": "B"})


def fx_settled(order_no: str, year_to_date: str, revision: int | None, minutes: int = 0) -> FxSettled:
    return FxSettled(platform_code="P", order_no=order_no, ecommerce_code="E", status="settled",
                     amount_usd=Decimal("10.00"), rate=Decimal("7.2649"), rate_date="2026-11-24", year=2026,
                     year_to_date_usd=Decimal(year_to_date), directory_status="exempt",
                     settled_at=T0 + timedelta(minutes=minutes), enterprise_revision=revision)


def credit_news(score: str, grade: str, listed: bool, revision: int) -> list:
    """A rating and, when listed, the listing it caused (credit publishes them on two topics)."""
    rating = CreditRatingChanged(enterprise_code="E", score=Decimal(score), grade=grade, customs_credit="general",
                                 negative_listed=listed, reason="r", changed_at=T0, enterprise_revision=revision)
    if not listed:
        return [rating]
    return [rating, NegativeListChanged(enterprise_code="E", listed=True, score=Decimal(score), grade=grade,
                                        reason="grade D", changed_at=T0, enterprise_revision=revision + 1)]


@pytest.mark.parametrize("together", [True, False], ids=["one run", "separate runs"])
async def test_an_enterprise_view_consumed_out_of_the_agencys_order_never_replaces_a_later_one(tmp_path, together):
    """FX's settlements of one seller are keyed by order, so they travel on different partitions and
    reach the gateway in any order (two FX instances made this visible: the gateway showed 923.22 where
    FX held 985.98). Credit's rating and listing travel on two topics. The revision each carries decides."""
    async with LocalRunner(service, tmp_path) as runner:
        await seed_orders(runner, ["A", "B", "C"])
        await seed_enterprise(runner)
        # FX settled A, B, C in that order (revisions 2026*10^9 + 1..3); the gateway consumes C, A, B.
        year = 2026 * 10**9
        later_first = [envelope(fx_settled("C", "985.98", year + 3, 3), "C"),
                       envelope(fx_settled("A", "900.00", year + 1, 1), "A"),
                       envelope(fx_settled("B", "923.22", year + 2, 2), "B")]
        # Credit: 62.0 (C) then listed at 58.0 (D): the listing arrives first, the older rating last.
        first, listing = credit_news("58", "D", True, 7)
        older = credit_news("62", "C", False, 6)[0]
        credit = [envelope(listing, "E"), envelope(first, "E"), envelope(older, "E")]
        if together:
            await runner.deliver(*later_first, *credit)
        else:
            for e in [*later_first, *credit]:
                await runner.deliver(e)
        enterprise = await enterprise_view("E", OPERATOR)
        assert enterprise["fx"] == {"directory_status": "exempt", "year": 2026, "year_to_date_usd": "985.98"}
        assert enterprise["credit"] == {"score": "58", "grade": "D", "negative_listed": True, "on_negative_list": True}

        # An event without a revision (a producer before it was added) counts as 0: it never replaces a
        # revised view, and a later year's revision replaces an earlier year's.
        await runner.deliver(envelope(fx_settled("A", "1.00", None), "A"))
        assert (await enterprise_view("E", OPERATOR))["fx"]["year_to_date_usd"] == "985.98"
        next_year = fx_settled("A", "5.00", 2027 * 10**9 + 1).model_copy(update={"year": 2027})
        await runner.deliver(envelope(next_year, "A"))
        assert (await enterprise_view("E", OPERATOR))["fx"] == {
            "directory_status": "exempt", "year": 2027, "year_to_date_usd": "5.00"}


async def test_a_redelivered_answer_has_no_second_effect(runner):
    await seed_orders(runner, ["A"])
    once = envelope(decision("A"), "A")
    await runner.deliver(once, once)
    await runner.deliver(once)
    assert len((await order_trace("P", "A", OPERATOR))["events"]) == 1


async def test_an_answer_about_an_order_the_gateway_does_not_hold_is_trace_only(runner):
    await runner.deliver(envelope(decision("GHOST"), "GHOST"))
    assert await held(runner, "customs") == {}


def of_quarantine(t: WaybillTracked, correlation_id: str) -> views.Projection:
    """A sixth agency's mapping (synthetic: any event type will do)."""
    return views.Projection(
        order_view=views.OrderView((t.platform_code, t.order_no), "quarantine", None,
                                   {"status": "sampled", "lab": t.location}, t.at),
        trace=views.TraceEntry(correlation_id, t.at, "quarantine", "quarantine.result", f"sampled at {t.location}"))


async def test_a_sixth_agency_needs_no_gateway_migration(tmp_path, monkeypatch):
    sixth = Handlers()
    projector(WaybillTracked, of_quarantine, on=sixth)
    monkeypatch.setattr(service, "handlers", sixth)  # the gateway's own database, migrations and routes
    async with LocalRunner(service, tmp_path) as runner:
        await seed_orders(runner, ["A"])
        tracked = WaybillTracked(waybill_no="W1", logistics_code="L", order_no="A", platform_code="P",
                                 event="picked_up", location="Ningbo lab", at=T0)
        await runner.deliver(envelope(tracked, "A"))
        view = await order_status("P", "A", OPERATOR)
    assert view["quarantine"] == {"status": "sampled", "lab": "Ningbo lab"}
    assert view["customs"] == {"status": "pending", "channel": None, "reasons": []}  # the fixed ones, pending
    assert view["tax"] == view["fx"] == view["logistics"] == {"status": "pending"}


async def test_statistics_read_the_customs_tax_and_fx_views(runner):
    await seed_orders(runner, ["A", "B", "C", "D"], complete_at=T0)
    assessed = TaxAssessment(platform_code="P", order_no="A", order_version=1, ecommerce_code="E", status="assessed",
                             dutiable_value=Decimal("352"), customs_duty=Decimal("0"), vat=Decimal("37.68"),
                             consumption_tax=Decimal("43.48"), total=Decimal("81.16"), assessed_at=T0)
    settled = FxSettled(platform_code="P", order_no="A", ecommerce_code="E", status="settled", amount_usd=Decimal("61.60"),
                        rate=Decimal("7.2649"), rate_date="2026-11-24", year=2026, year_to_date_usd=Decimal("61.6"),
                        directory_status="exempt", settled_at=T0)
    await runner.deliver(envelope(decision("A", minutes=1), "A"), envelope(decision("B", status="inspection", minutes=3), "B"),
                         envelope(decision("C", status="pending", minutes=9), "C"))
    await runner.deliver(envelope(assessed, "A"), envelope(settled, "A"))
    result = await stats(OPERATOR, None, None)
    assert {k: v["count"] for k, v in result["by_customs_status"].items()} == {"inspection": 1, "pending": 2, "released": 1}
    assert {k: v["count"] for k, v in result["by_channel"].items()} == {"green": 1, "none": 2, "yellow": 1}
    assert (result["tax_collected_cny"], result["fx_settled_usd"]) == ("81.16", "61.60")
    # decision time: from complete documents to the decision, for decided orders only (not C's pending answer)
    assert result["decision_time_seconds"] == {"count": 2, "median": 120.0, "p95": 180.0}
