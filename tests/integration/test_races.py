"""Races of issue 9 item 5, raced on PostgreSQL with real concurrency: two instances of a service (two
`Service` objects, two engines, two connections) on one database, or two requests in one gateway.

Each race is made to happen every time, not by luck: a rendezvous right after the step that must not
interleave (reading the case, reading the order) holds each side until the other has got there too, or a
second at most. Unprotected, both sides read before either writes, which is the bug; protected (a
per-order lock), the second side cannot get there before the first committed, so the first goes on alone
after its second and the second reads what it wrote. The lock races also run once with the lock taken
away and must then show the bug: proof that the test can fail. (The cancellation tests fail on the rules
before issue 9: tax and FX made a cancellation not applicable at once, whatever customs said.)

The cancellation-versus-release protocol (README, "A cancellation racing a release") is also checked
over every interleaving of the topics, on SQLite (cheap): the outcome may not depend on which topic was
read first."""
from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone

import pytest
from sqlalchemy import insert, select

from services.fx import store as fx_store
from services.fx.tables import settlements
from services.gateway import app as gateway_app
from services.gateway import changes, intake
from services.gateway.auth import Caller
from services.gateway.tables import enterprises, orders as gateway_orders
from services.tax import store as tax_store
from services.tax.tables import assessments
from shared import db
from shared.http import Problem
from shared.runtime import Service
from shared.tables import OUTBOX
from shared.testing import LocalRunner
from tests.conftest import create_database
from tests.integration import test_fx_handlers as fx_t
from tests.integration import test_tax_handlers as tax_t
from tests.support import new_uscc, order_body

pytestmark = pytest.mark.integration


class Rendezvous:
    """Each party waits at `meet` until `parties` have arrived, or `timeout` seconds."""

    def __init__(self, parties: int = 2, timeout: float = 1.0):
        self.parties, self.timeout, self.arrived = parties, timeout, 0
        self.all_here = asyncio.Event()
        self.met = False  # whether every party was there at the same time

    async def meet(self) -> None:
        self.arrived += 1
        if self.arrived >= self.parties:
            self.met = True
            self.all_here.set()
        try:
            await asyncio.wait_for(self.all_here.wait(), self.timeout)
        except asyncio.TimeoutError:
            self.arrived -= 1  # gone on alone: a later party finds nobody waiting


def after(rendezvous: Rendezvous, real):  # noqa: ANN001, ANN201
    """`real`, then the rendezvous."""
    async def then_meet(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        result = await real(*args, **kwargs)
        await rendezvous.meet()
        return result
    return then_meet


async def no_lock(*_args, **_kwargs) -> None:  # noqa: ANN002, ANN003
    """The protection taken away."""


@pytest.fixture
def pg_url(postgres_port) -> str:  # noqa: ANN001
    return create_database(postgres_port, f"race_{uuid.uuid4().hex[:12]}")


async def two_instances(make_service, url: str, tmp_path) -> tuple[LocalRunner, LocalRunner]:  # noqa: ANN001
    one, two = LocalRunner(make_service(), tmp_path / "one", url=url), LocalRunner(make_service(), tmp_path / "two", url=url)
    await one.__aenter__()
    await two.__aenter__()
    return one, two


async def rows(runner: LocalRunner, table) -> list[dict]:  # noqa: ANN001
    async with runner.service.sessions() as session:  # type: ignore[misc]
        return [dict(r._mapping) for r in (await session.execute(select(table)))]


# --- tax and FX: an order and its decision handled at the same moment on two instances ----------------


@pytest.mark.parametrize("locked", [True, False], ids=["locked", "unlocked-shows-the-bug"])
async def test_tax_order_and_decision_on_two_instances_at_once(pg_url, tmp_path, monkeypatch, locked):
    rendezvous = Rendezvous()
    monkeypatch.setattr(tax_store, "load_cases", after(rendezvous, tax_store.load_cases))
    if not locked:
        monkeypatch.setattr(tax_store, "lock_keys", no_lock)
    one, two = await two_instances(tax_t.tax_service, pg_url, tmp_path)
    try:
        await asyncio.gather(one.deliver(tax_t.envelope(tax_t.worked_example_1("ORD-1"), "ORD-1")),
                             two.deliver(tax_t.envelope(tax_t.decision("ORD-1"), "ORD-1")))
        held = [(a["order_version"], a["status"], a["total"]) for a in await rows(one, assessments)]
    finally:
        await one.__aexit__(None, None, None)
        await two.__aexit__(None, None, None)
    if locked:
        assert not rendezvous.met  # the second instance could not read before the first committed
        assert held == [(1, "assessed", tax_t.D("83.48"))]
    else:
        assert rendezvous.met and held == []  # issue 9: neither assessed, for good


@pytest.mark.parametrize("locked", [True, False], ids=["locked", "unlocked-shows-the-bug"])
async def test_fx_payment_and_decision_on_two_instances_at_once(pg_url, tmp_path, monkeypatch, locked):
    one, two = await two_instances(fx_t.fx_service, pg_url, tmp_path)
    try:
        await one.deliver(fx_t.envelope(fx_t.order("IMP-1", direction="import", currency="CNY", actual_paid="447.50"), "IMP-1"))
        rendezvous = Rendezvous()
        monkeypatch.setattr(fx_store, "load_cases", after(rendezvous, fx_store.load_cases))
        if not locked:
            monkeypatch.setattr(fx_store, "lock_keys", no_lock)
        await asyncio.gather(one.deliver(fx_t.envelope(fx_t.payment("IMP-1", "447.50", "CNY"), "IMP-1")),
                             two.deliver(fx_t.envelope(fx_t.decision("IMP-1", direction="import"), "IMP-1")))
        held = [(s["status"], s["amount_usd"]) for s in await rows(one, settlements)]
    finally:
        await one.__aexit__(None, None, None)
        await two.__aexit__(None, None, None)
    if locked:
        assert not rendezvous.met
        assert held == [("settled", fx_t.D("62.76"))]
    else:
        assert rendezvous.met and held == []  # issue 9: never settled


# --- a cancellation racing a release ---------------------------------------------------------------------
#
# Customs released version 1 before it saw the cancellation (version 2); the cancellation reaches tax and
# FX before that release does, on the other instance at the same moment. Customs then answers the
# cancellation by re-publishing its release as version 2. Every agency must end where customs ends.


async def test_a_cancellation_racing_a_release_on_two_tax_instances(pg_url, tmp_path, monkeypatch):
    one, two = await two_instances(tax_t.tax_service, pg_url, tmp_path)
    try:
        await one.deliver(tax_t.envelope(tax_t.worked_example_1("ORD-1"), "ORD-1"))
        monkeypatch.setattr(tax_store, "load_cases", after(Rendezvous(), tax_store.load_cases))
        await asyncio.gather(
            one.deliver(tax_t.envelope(tax_t.worked_example_1("ORD-1", version=2, action="cancelled"), "ORD-1")),
            two.deliver(tax_t.envelope(tax_t.decision("ORD-1"), "ORD-1")))
        await two.deliver(tax_t.envelope(tax_t.decision("ORD-1", version=2), "ORD-1"))  # customs: too late
        published = [(r.value, r.topic) for r in await one.new_outbox_rows()]
        held = [(a["order_version"], a["status"]) for a in await rows(one, assessments)]
    finally:
        await one.__aexit__(None, None, None)
        await two.__aexit__(None, None, None)
    assert held == [(2, "assessed")]
    assert not any(b'"not_applicable"' in value for value, _ in published)  # never told anyone otherwise


async def test_a_cancellation_racing_a_release_on_two_fx_instances(pg_url, tmp_path, monkeypatch):
    one, two = await two_instances(fx_t.fx_service, pg_url, tmp_path)
    try:
        await one.deliver(fx_t.envelope(fx_t.order("EXP-1"), "EXP-1"))
        monkeypatch.setattr(fx_store, "load_cases", after(Rendezvous(), fx_store.load_cases))
        await asyncio.gather(one.deliver(fx_t.envelope(fx_t.order("EXP-1", version=2, action="cancelled"), "EXP-1")),
                             two.deliver(fx_t.envelope(fx_t.decision("EXP-1"), "EXP-1")))
        await two.deliver(fx_t.envelope(fx_t.decision("EXP-1", version=2), "EXP-1"))
        published = [r.value for r in await one.new_outbox_rows()]
        held = [(s["status"], s["amount_usd"]) for s in await rows(one, settlements)]
    finally:
        await one.__aexit__(None, None, None)
        await two.__aexit__(None, None, None)
    assert held == [("settled", fx_t.D("42.00"))]
    assert not any(b'"not_applicable"' in value for value in published)


def interleavings(*topics: Sequence) -> Iterator[list]:
    """Every merge of the topics' events that keeps each topic's own order (one partition each)."""
    total = sum(len(t) for t in topics)
    labels = [i for i, t in enumerate(topics) for _ in t]
    for arrangement in sorted(set(itertools.permutations(labels))):
        cursors = [0] * len(topics)
        merged = []
        for i in arrangement:
            merged.append(topics[i][cursors[i]])
            cursors[i] += 1
        assert len(merged) == total
        yield merged


TOO_LATE, IN_TIME = "too late", "in time"


def tax_topics(case: str) -> tuple[list, list]:
    orders = [tax_t.worked_example_1("ORD-1"), tax_t.worked_example_1("ORD-1", version=2, action="cancelled")]
    if case == TOO_LATE:  # released v1, then the release re-published for the cancellation's version
        decisions = [tax_t.decision("ORD-1"), tax_t.decision("ORD-1", version=2)]
    else:  # customs had not decided: it cancels
        decisions = [tax_t.decision("ORD-1", version=2, status="cancelled")]
    return ([tax_t.envelope(o, "ORD-1") for o in orders], [tax_t.envelope(d, "ORD-1") for d in decisions])


@pytest.mark.parametrize("case,expected", [(TOO_LATE, (2, "assessed")), (IN_TIME, (2, "not_applicable"))])
async def test_tax_ends_where_customs_ends_in_every_interleaving(tmp_path, case, expected):
    for n, events in enumerate(interleavings(*tax_topics(case))):
        (tmp_path / str(n)).mkdir()
        async with LocalRunner(tax_t.tax_service(), tmp_path / str(n)) as runner:
            said = []
            for event in events:  # one batch each: the worst case for the order of topics
                said += [(e.payload["order_version"], e.payload["status"]) for e in await runner.deliver(event)]
            held = [(a["order_version"], a["status"]) for a in await rows(runner, assessments)]
        assert held == [expected], events
        assert said[-1] == expected and all(s[1] == expected[1] for s in said), said  # never said otherwise


@pytest.mark.parametrize("case,expected", [(TOO_LATE, "settled"), (IN_TIME, "not_applicable")])
async def test_fx_ends_where_customs_ends_in_every_interleaving(tmp_path, case, expected):
    orders = [fx_t.order("IMP-1", direction="import", currency="CNY", actual_paid="447.50"),
              fx_t.order("IMP-1", version=2, action="cancelled", direction="import", currency="CNY", actual_paid="447.50")]
    decisions = ([fx_t.decision("IMP-1", direction="import"), fx_t.decision("IMP-1", version=2, direction="import")]
                 if case == TOO_LATE else [fx_t.decision("IMP-1", version=2, direction="import", status="cancelled")])
    payments = [fx_t.payment("IMP-1", "447.50", "CNY")]
    topics = [[fx_t.envelope(e, "IMP-1") for e in t] for t in (orders, decisions, payments)]
    for n, events in enumerate(interleavings(*topics)):
        (tmp_path / str(n)).mkdir()
        async with LocalRunner(fx_t.fx_service(), tmp_path / str(n)) as runner:
            said = []
            for event in events:
                said += [e.payload["status"] for e in await runner.deliver(event) if e.type == "fx.settlement"]
            held = [s["status"] for s in await rows(runner, settlements)]
        assert held == [expected] and said == [expected], (events, said)


# --- the gateway: two changes of one order at the same moment ------------------------------------------


@pytest.fixture
async def gateway_on_postgres(pg_url):
    service = gateway_app.service
    await service.open_database(pg_url)
    platform, seller = new_uscc(), new_uscc()
    async with service.unit_of_work() as uow:
        now = datetime.now(timezone.utc)
        await uow.session.execute(insert(enterprises), [
            {"code": code, "name": code, "roles": [role], "country": "CN", "customs_credit": "general",
             "api_key_hash": f"race-{code}", "registered_at": now}
            for code, role in ((platform, "platform"), (seller, "ecommerce"))])
    caller = Caller(platform, frozenset({"platform"}))
    body = order_body(platform, seller, "ORD-RACED")
    item = intake.prepare(caller, intake.ORDER, body)
    async with service.unit_of_work() as uow:
        assert [o.status for o in await intake.accept(uow, [item])] == [202]
    try:
        yield caller, body
    finally:
        await service.stop()


def corrected(body: dict, discount: str) -> dict:
    changed = {**body, "discount": discount}
    changed["actual_paid"] = f"{tax_t.D(body['actual_paid']) + tax_t.D(body['discount']) - tax_t.D(discount):.2f}"
    return changed


async def outcome(change) -> tuple[int, int | None]:  # noqa: ANN001
    """(status, version) of a PUT or DELETE; a refusal is (its status, None)."""
    try:
        response = await change
    except Problem as problem:
        return problem.status, None
    import json  # noqa: PLC0415

    return response.status_code, json.loads(response.body).get("version")


async def published_versions(service: Service) -> list[tuple[str, int]]:
    async with service.sessions() as session:  # type: ignore[misc]
        values = (await session.execute(select(OUTBOX.c.value).where(OUTBOX.c.topic == "sw.order.submitted.v2")
                                        .order_by(OUTBOX.c.id))).scalars().all()
    import json  # noqa: PLC0415

    return [(json.loads(v)["payload"]["action"], json.loads(v)["payload"]["version"]) for v in values]


async def held_version(service: Service, platform_code: str) -> int:
    async with service.sessions() as session:  # type: ignore[misc]
        return await session.scalar(select(gateway_orders.c.version).where(
            gateway_orders.c.platform_code == platform_code, gateway_orders.c.order_no == "ORD-RACED"))


@pytest.mark.parametrize("locked", [True, False], ids=["locked", "unlocked-shows-the-bug"])
async def test_two_concurrent_puts_make_two_versions(gateway_on_postgres, monkeypatch, locked):
    caller, body = gateway_on_postgres
    rendezvous = Rendezvous()
    monkeypatch.setattr(changes, "held_views", after(rendezvous, changes.held_views))
    if not locked:
        real_load = changes.load_order
        monkeypatch.setattr(changes, "load_order", lambda s, p, o, for_change=False: real_load(s, p, o))
    pc = caller.code
    results = await asyncio.gather(
        outcome(gateway_app.correct_order(pc, "ORD-RACED", caller, corrected(body, "5.00"))),
        outcome(gateway_app.correct_order(pc, "ORD-RACED", caller, corrected(body, "7.00"))))
    versions = await published_versions(gateway_app.service)
    if locked:
        assert not rendezvous.met
        assert sorted(results) == [(202, 2), (202, 3)]
        assert versions == [("new", 1), ("corrected", 2), ("corrected", 3)]
        assert await held_version(gateway_app.service, pc) == 3
    else:
        # Without the lock the version's compare-and-set still keeps one order from getting two version
        # 2s: the second update finds version 2 where it read 1 and is refused.
        assert rendezvous.met
        assert sorted(results) == [(202, 2), (409, None)]
        assert versions == [("new", 1), ("corrected", 2)]


async def test_a_put_and_a_delete_at_once_never_share_a_version(gateway_on_postgres, monkeypatch):
    caller, body = gateway_on_postgres
    monkeypatch.setattr(changes, "held_views", after(Rendezvous(), changes.held_views))
    pc = caller.code
    put, delete = await asyncio.gather(outcome(gateway_app.correct_order(pc, "ORD-RACED", caller, corrected(body, "5.00"))),
                                       outcome(gateway_app.cancel_order(pc, "ORD-RACED", caller)))
    versions = await published_versions(gateway_app.service)
    held = await held_version(gateway_app.service, pc)
    # Whichever came first: the PUT (v2) then the DELETE (v3), or the DELETE (v2) and the PUT refused
    # because the order is cancelled. Never two version 2s.
    if put == (202, 2):
        assert delete[0] == 202 and versions == [("new", 1), ("corrected", 2), ("cancelled", 3)] and held == 3
    else:
        assert put == (409, None) and delete[0] == 202
        assert versions == [("new", 1), ("cancelled", 2)] and held == 2


async def test_the_advisory_lock_helper_is_one_statement_and_queues_the_second(pg_url):
    """shared.db.lock_keys: a second transaction locking an overlapping set waits for the first."""
    engine = db.create_engine(pg_url)
    sessions = db.session_factory(engine)
    order_of_events: list[str] = []
    try:
        async with sessions() as first:
            async with first.begin():
                await db.lock_keys(first, ["PLAT:B", "PLAT:A"])

                async def second() -> None:
                    async with sessions() as other:
                        async with other.begin():
                            await db.lock_keys(other, ["PLAT:A", "PLAT:C"])
                            order_of_events.append("second locked")

                waiting = asyncio.create_task(second())
                await asyncio.sleep(0.5)
                order_of_events.append("first commits")
            await waiting
    finally:
        await engine.dispose()
    assert order_of_events == ["first commits", "second locked"]
