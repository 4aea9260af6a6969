"""Webhooks on the seam (spec §7.3), on a real PostgreSQL: the read model's handlers announce view changes
through the outbox, the dispatcher (batch core, inbox) makes one delivery per event and subscribed webhook
of a party, and the sender delivers them to a real HTTP receiver on loopback that fails, hangs and
recovers: the same delivery_id and body on every attempt, a valid signature, one order's deliveries in
order, leases that keep two senders apart, giving up after the window, and the production address check
at delivery time. No broker: LocalRunner hands the records to the same batch core the consumer calls."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import insert, select, update

from contracts.envelope import Envelope
from contracts.v1.events import CustomsDecision, TaxAssessment
from services.gateway.app import service
from services.gateway.tables import order_bindings, orders, webhook_deliveries, webhooks
from services.gateway.webhooks import rules, store
from services.gateway.webhooks.sender import Sender
from services.gateway.webhooks.settings import WebhookSettings
from shared.outbox import build_envelope
from shared.testing import LocalRunner
from tests.conftest import create_database
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.integration

T0 = datetime.now(timezone.utc).replace(microsecond=0)
SECRET = "whsec_" + "5a" * 24
KEY = "test-gateway-key"
FAST = WebhookSettings(connect_timeout_seconds=1, read_timeout_seconds=0.5, backoff_base_seconds=0.05,
                       backoff_cap_seconds=0.2, claim_batch=10, concurrency=4)


async def seed(runner: LocalRunner, order_nos: list[str], hooks: dict[str, tuple[str, str]]) -> None:
    """Orders of platform P with seller E, each bound to payment firm PAY; `hooks`: {id: (owner, url)}."""
    async with runner.service.sessions() as session, session.begin():
        await session.execute(insert(orders), [
            {"platform_code": "P", "order_no": n, "version": 1, "content_hash": "x", "document": {},
             "ecommerce_code": "E", "direction": "import", "trade_mode": "9610", "currency": "CNY",
             "actual_paid": Decimal("447.50"), "country": "FR", "submitted_at": T0, "updated_at": T0}
            for n in order_nos])
        await session.execute(insert(order_bindings), [
            {"platform_code": "P", "order_no": n, "kind": "payment", "party_code": "PAY", "document_no": f"PAY-{n}",
             "bound_at": T0} for n in order_nos])
        if hooks:
            await session.execute(insert(webhooks), [
                {"id": hid, "enterprise_code": owner, "url": url, "events": ["order.status_changed"],
                 "secret": rules.seal_secret(rules.secret_box(KEY), SECRET), "created_at": T0} for hid, (owner, url) in hooks.items()])


def decision(order_no: str, status: str = "released") -> Envelope:
    return build_envelope(CustomsDecision(
        platform_code="P", order_no=order_no, order_version=1, ecommerce_code="E", direction="import",
        trade_mode="9610", status=status, channel="green" if status == "released" else None,
        decided_at=T0), "customs", f"P:{order_no}")[1]


def assessment(order_no: str) -> Envelope:
    return build_envelope(TaxAssessment(
        platform_code="P", order_no=order_no, order_version=1, ecommerce_code="E", status="assessed",
        customs_duty="0.00", vat="33.22", consumption_tax="52.28", total="85.50", dutiable_value="352.00",
        assessed_at=T0), "tax", f"P:{order_no}")[1]


async def deliveries(runner: LocalRunner) -> list:
    async with runner.service.sessions() as session:
        return (await session.execute(select(webhook_deliveries).order_by(webhook_deliveries.c.seq))).all()


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request, tmp_path) -> str:  # noqa: ANN001
    """A fresh gateway database: PostgreSQL (production) or SQLite (what `make up` runs)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    return create_database(request.getfixturevalue("postgres_port"), f"gw_webhooks_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


async def test_a_view_change_reaches_the_readers_webhooks_once(database, tmp_path):
    """The platform (and the seller) may read the order's view, so they are told; its bound payment firm
    may not (GET is 403: the view holds the seller's FX total and credit grade), so it is not; a stranger
    is not."""
    url = database
    async with LocalRunner(service, tmp_path, url=url) as runner:
        await seed(runner, ["O1", "O2"], {"wh_platform": ("P", "http://127.0.0.1:9/p"),
                                          "wh_payment": ("PAY", "http://127.0.0.1:9/pay"),
                                          "wh_stranger": ("X", "http://127.0.0.1:9/x")})
        async with runner.service.sessions() as session, session.begin():  # O2 is another platform's
            await session.execute(update(orders).where(orders.c.order_no == "O2").values(platform_code="Q"))
            await session.execute(update(order_bindings).where(order_bindings.c.order_no == "O2")
                                  .values(platform_code="Q", party_code="OTHER"))
        emitted = await runner.deliver(decision("O1"), build_envelope(CustomsDecision(
            platform_code="Q", order_no="O2", order_version=1, ecommerce_code="E2", direction="import",
            trade_mode="9610", status="released", channel="green", decided_at=T0), "customs", "Q:O2")[1])
        # O2's parties (Q, E, OTHER) hold no webhook... but E does not either: only O1 is announced.
        announced = [e for e in emitted if e.type == "order.status_changed"]
        assert [(e.payload["platform_code"], e.payload["order_no"], e.payload["sources"]) for e in announced] == [
            ("P", "O1", ["customs"])]

        assert await runner.deliver(announced[0]) == []
        rows = await deliveries(runner)
        assert sorted(r.webhook_id for r in rows) == ["wh_platform"]  # not the payment firm's, not the stranger's
        for r in rows:
            body = json.loads(r.body)
            assert body["delivery_id"] == r.delivery_id == rules.delivery_id(str(announced[0].event_id), r.webhook_id)
            assert body["type"] == "order.status_changed"
            assert body["data"]["customs"]["status"] == "released"
            assert body["data"]["order_no"] == "O1" and body["data"]["documents"]["order"] == "received"

        # The same event again (a redelivery after a rebalance): the inbox knows it, nothing new.
        await runner.deliver(runner.record(announced[0]))
        assert len(await deliveries(runner)) == 1
        # And written twice by hand (a replay the inbox would not know): the delivery id makes it one.
        async with runner.service.sessions() as session, session.begin():
            assert await store.add_deliveries(session, [{c: getattr(rows[0], c) for c in rows[0]._fields
                                                         if c != "seq"}]) == 0


async def test_nobody_subscribed_means_no_event(postgres_port, tmp_path):
    url = create_database(postgres_port, "gw_webhooks_quiet")
    async with LocalRunner(service, tmp_path, url=url) as runner:
        await seed(runner, ["O1"], {})
        emitted = await runner.deliver(decision("O1"), assessment("O1"))
        assert [e.type for e in emitted] == []


async def test_retries_until_the_receiver_recovers_in_order(database, tmp_path, receiver):
    """The receiver fails (500), then hangs past the read timeout, then recovers: the first delivery arrives
    on the third attempt with the same delivery_id and body, correctly signed; the order's second delivery
    waits for it and leaves after it."""
    receiver.script = ["fail", "hang", "ok"]
    receiver.hang_seconds = 2
    url = database
    async with LocalRunner(service, tmp_path, url=url) as runner:
        await seed(runner, ["O1"], {"wh_platform": ("P", receiver.url)})
        first = [e for e in await runner.deliver(decision("O1")) if e.type == "order.status_changed"]
        await runner.deliver(*first)
        second = [e for e in await runner.deliver(assessment("O1")) if e.type == "order.status_changed"]
        await runner.deliver(*second)
        first_id, second_id = [r.delivery_id for r in await deliveries(runner)]

        sender = Sender(runner.service.sessions, FAST, production=False, gateway_key=KEY)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not all(r.status == "delivered" for r in await deliveries(runner)):
                await sender.run()
                await asyncio.sleep(0.05)
        finally:
            await sender.close()

        got = receiver.requests()
        ids = [r.json["delivery_id"] for r in got]
        assert ids == [first_id, first_id, first_id, second_id]  # the second waited for the first
        assert [r.answered for r in got] == [500, None, 200, 200]
        assert got[0].body == got[1].body == got[2].body  # the same bytes on every attempt
        for r in got:
            assert rules.verify(SECRET, r.headers["Signature"], r.body, now=int(time.time()))
            assert r.headers["Content-Type"] == "application/json"
        assert got[3].json["data"]["tax"]["status"] == "assessed"

        async with runner.service.sessions() as session:
            log = await store.recent_deliveries(session, "wh_platform", 10)
        assert [d["delivery_id"] for d in log] == [second_id, first_id]  # newest first
        assert log[1]["status"] == "delivered" and log[1]["attempts"] == 3 and log[1]["response_code"] == 200
        assert [a["response_code"] for a in log[1]["attempt_log"]] == [500, None, 200]
        assert log[1]["attempt_log"][1]["error"].startswith("timeout")


async def test_a_delivery_is_given_up_after_the_window_and_the_next_one_goes(database, tmp_path, receiver):
    receiver.script = ["fail"]
    url = database
    async with LocalRunner(service, tmp_path, url=url) as runner:
        await seed(runner, ["O1"], {"wh_platform": ("P", receiver.url)})
        for e in [e for e in await runner.deliver(decision("O1")) if e.type == "order.status_changed"]:
            await runner.deliver(e)
        for e in [e for e in await runner.deliver(assessment("O1")) if e.type == "order.status_changed"]:
            await runner.deliver(e)
        # The first delivery was created a day ago: its next failure is its last.
        first, second = await deliveries(runner)
        async with runner.service.sessions() as session, session.begin():
            await session.execute(update(webhook_deliveries).where(webhook_deliveries.c.seq == first.seq)
                                  .values(created_at=first.created_at - timedelta(hours=24)))
        sender = Sender(runner.service.sessions, FAST, production=False, gateway_key=KEY)
        try:
            assert await sender.run_once() == 1  # only the first: the second waits behind it
            first, second = await deliveries(runner)
            assert (first.status, first.attempts, first.last_status_code) == ("failed", 1, 500)
            assert first.finished_at is not None
            assert await sender.run_once() == 1  # now the second goes
            assert [r.json["delivery_id"] for r in receiver.requests()] == [first.delivery_id, second.delivery_id]
        finally:
            await sender.close()


async def test_a_claim_is_leased_so_two_senders_never_send_one_delivery_at_once(postgres_port, tmp_path):
    url = create_database(postgres_port, "gw_webhooks_leases")
    async with LocalRunner(service, tmp_path, url=url) as runner:
        await seed(runner, [f"O{i}" for i in range(20)], {"wh_platform": ("P", "http://127.0.0.1:9/p")})
        for i in range(20):
            for e in [e for e in await runner.deliver(decision(f"O{i}")) if e.type == "order.status_changed"]:
                await runner.deliver(e)
        now, lease = datetime.now(timezone.utc), timedelta(seconds=60)

        async def claim(token: str) -> list:
            async with runner.service.sessions() as session, session.begin():
                return await store.claim_due(session, now, lease, token, 12)

        a, b = await asyncio.gather(claim("a"), claim("b"))  # at once, on two connections
        assert len(a) + len(b) == 20
        assert not {c.seq for c in a} & {c.seq for c in b}
        assert await claim("c") == []  # every row is leased now
        # A lease that ran out (its gateway died mid-send) is claimed again.
        async with runner.service.sessions() as session, session.begin():
            assert len(await store.claim_due(session, now + 2 * lease, lease, "e", 50)) == 20


async def test_production_refuses_a_loopback_address_at_delivery_time(database, tmp_path, receiver):
    """A webhook whose host resolves to loopback when the delivery leaves (DNS rebinding, or a row written
    before the policy): the attempt is refused without a request, and recorded."""
    url = database
    async with LocalRunner(service, tmp_path, url=url) as runner:
        https_loopback = receiver.url.replace("http://127.0.0.1", "https://localhost")
        await seed(runner, ["O1"], {"wh_platform": ("P", https_loopback)})
        for e in [e for e in await runner.deliver(decision("O1")) if e.type == "order.status_changed"]:
            await runner.deliver(e)
        sender = Sender(runner.service.sessions, FAST, production=True, gateway_key=KEY)
        try:
            assert await sender.run_once() == 1
        finally:
            await sender.close()
        (row,) = await deliveries(runner)
        assert row.status == "pending" and row.attempts == 1 and row.last_status_code is None
        assert row.last_error.startswith("refused: the host resolves to") and "not a public address" in row.last_error
        assert receiver.requests() == []


async def test_no_transaction_is_held_while_a_receiver_hangs(database, tmp_path, receiver):
    """While a request hangs at a receiver, the gateway's database is free: a write (intake's kind of
    transaction) goes through at once, on SQLite too, where a held write transaction would block it."""
    receiver.script, receiver.hang_seconds = ["hang"], 2
    url = database
    async with LocalRunner(service, tmp_path, url=url) as runner:
        await seed(runner, ["O1"], {"wh_platform": ("P", receiver.url)})
        for e in [e for e in await runner.deliver(decision("O1")) if e.type == "order.status_changed"]:
            await runner.deliver(e)
        sender = Sender(runner.service.sessions, FAST, production=False, gateway_key=KEY)
        try:
            sending = asyncio.create_task(sender.run_once())
            deadline = time.monotonic() + 10
            while not receiver.requests() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert receiver.requests() and not sending.done()  # the request is in flight
            started = time.monotonic()
            async with runner.service.sessions() as session, session.begin():
                await session.execute(update(orders).where(orders.c.order_no == "O1").values(updated_at=T0))
            assert time.monotonic() - started < 0.3
            assert not sending.done()
            assert await sending == 1
        finally:
            await sender.close()
        (row,) = await deliveries(runner)
        assert row.status == "pending" and row.last_error.startswith("timeout")


async def test_a_hanging_receiver_does_not_hold_back_another(database, tmp_path):
    """At most SW_WEBHOOK_PER_WEBHOOK_CONCURRENCY attempts to one webhook are in flight: while a receiver
    hangs on six orders, another receiver's deliveries leave at once, not after the hung ones time out."""
    slow, fast = Receiver(["hang"], hang_seconds=4), Receiver(["ok"])
    config = FAST.model_copy(update={"read_timeout_seconds": 3, "concurrency": 4, "per_webhook_concurrency": 2})
    try:
        async with LocalRunner(service, tmp_path, url=database) as runner:
            orders_of = {"slow": [f"A{i}" for i in range(6)], "fast": [f"Z{i}" for i in range(3)]}  # the slow ones are due first
            await seed(runner, orders_of["slow"] + orders_of["fast"], {})
            async with runner.service.sessions() as session, session.begin():
                await session.execute(insert(webhooks), [
                    {"id": f"wh_{name}", "enterprise_code": name.upper(), "url": rx.url, "events": ["order.status_changed"],
                     "secret": rules.seal_secret(rules.secret_box(KEY), SECRET), "created_at": T0}
                    for name, rx in (("slow", slow), ("fast", fast))])
                for name, nos in orders_of.items():  # each receiver's enterprise is the seller of its orders
                    await session.execute(update(orders).where(orders.c.order_no.in_(nos)).values(ecommerce_code=name.upper()))
            for e in [e for e in await runner.deliver(*(decision(n) for nos in orders_of.values() for n in nos))
                      if e.type == "order.status_changed"]:
                await runner.deliver(e)
            sender = Sender(runner.service.sessions, config, production=False, gateway_key=KEY)
            try:
                started = time.monotonic()
                sending = asyncio.create_task(sender.run())
                while len(fast.requests()) < 3 and time.monotonic() - started < 10:
                    await asyncio.sleep(0.02)
                assert len(fast.requests()) == 3 and time.monotonic() - started < 1.5
                assert len(slow.requests()) <= 2  # never more than its share in flight
                sending.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await sending
            finally:
                await sender.close()
    finally:
        slow.close()
        fast.close()


async def test_one_enterprises_hanging_webhooks_do_not_take_every_slot(database, tmp_path):
    """An enterprise may hold several webhooks (10 by default), each allowed its share of the slots: all
    hanging together they took every slot (defaults: 4 webhooks x 4 = 16), and another enterprise's
    deliveries waited for their timeouts (9 s here). SW_WEBHOOK_PER_ENTERPRISE_CONCURRENCY bounds their sum."""
    slow1, slow2, fast = Receiver(["hang"], hang_seconds=4), Receiver(["hang"], hang_seconds=4), Receiver(["ok"])
    config = FAST.model_copy(update={"read_timeout_seconds": 3, "concurrency": 4, "per_webhook_concurrency": 2,
                                     "per_enterprise_concurrency": 2})
    try:
        async with LocalRunner(service, tmp_path, url=database) as runner:
            orders_of = {"SLOW": [f"A{i}" for i in range(6)], "FAST": [f"Z{i}" for i in range(3)]}  # slow ones due first
            await seed(runner, orders_of["SLOW"] + orders_of["FAST"], {})
            async with runner.service.sessions() as session, session.begin():
                await session.execute(insert(webhooks), [
                    {"id": hid, "enterprise_code": owner, "url": rx.url, "events": ["order.status_changed"],
                     "secret": rules.seal_secret(rules.secret_box(KEY), SECRET), "created_at": T0}
                    for hid, owner, rx in (("wh_s1", "SLOW", slow1), ("wh_s2", "SLOW", slow2), ("wh_f", "FAST", fast))])
                for name, nos in orders_of.items():  # each enterprise is the seller of its orders
                    await session.execute(update(orders).where(orders.c.order_no.in_(nos)).values(ecommerce_code=name))
            for e in [e for e in await runner.deliver(*(decision(n) for nos in orders_of.values() for n in nos))
                      if e.type == "order.status_changed"]:
                await runner.deliver(e)
            sender = Sender(runner.service.sessions, config, production=False, gateway_key=KEY)
            try:
                started = time.monotonic()
                sending = asyncio.create_task(sender.run())
                while len(fast.requests()) < 3 and time.monotonic() - started < 10:
                    await asyncio.sleep(0.02)
                assert len(fast.requests()) == 3 and time.monotonic() - started < 1.5
                assert len(slow1.requests()) + len(slow2.requests()) <= 2  # the enterprise's share, not each webhook's
                sending.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await sending
            finally:
                await sender.close()
    finally:
        slow1.close()
        slow2.close()
        fast.close()


async def test_a_cancellation_is_announced_through_the_outbox(tmp_path):
    """The gateway's own changes of a view (spec §4.5 DELETE, PUT) are announced in the request's
    transaction, through the outbox (nothing is sent from inside the request)."""
    import httpx  # noqa: PLC0415

    from services.gateway import app as gateway  # noqa: PLC0415
    from shared.settings import settings  # noqa: PLC0415
    from shared.tables import OUTBOX  # noqa: PLC0415
    from tests.support import new_uscc, order_body  # noqa: PLC0415

    admin = {"Authorization": f"Bearer {settings().sw_admin_token}"}
    await gateway.service.open_database(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app), base_url="http://gw") as client:
            keys = {}
            for role in ("platform", "ecommerce"):
                code = new_uscc()
                r = await client.post("/v1/enterprises", headers=admin,
                                      json={"code": code, "name": f"E {code}", "roles": [role]})
                keys[role] = (code, {"Authorization": f"Bearer {r.json()['api_key']}"})
            (platform, p_auth), (seller, _) = keys["platform"], keys["ecommerce"]
            quiet, watched = order_body(platform, seller, "ORD-QUIET"), order_body(platform, seller, "ORD-WATCHED")
            assert (await client.post("/v1/orders", json=quiet, headers=p_auth)).status_code == 202
            assert (await client.delete(f"/v1/orders/{platform}/ORD-QUIET", headers=p_auth)).status_code == 202
            r = await client.post("/v1/webhooks", headers=p_auth,
                                  json={"url": "http://127.0.0.1:9/hook", "events": ["order.status_changed"]})
            assert r.status_code == 201, r.text
            assert (await client.post("/v1/orders", json=watched, headers=p_auth)).status_code == 202
            assert (await client.delete(f"/v1/orders/{platform}/ORD-WATCHED", headers=p_auth)).status_code == 202
        async with gateway.service.sessions() as session:
            announced = [json.loads(v) for v in (await session.execute(
                select(OUTBOX.c.value).where(OUTBOX.c.topic == "sw.order.status_changed.v1"))).scalars()]
        # Before the webhook existed nothing was announced; after, the cancellation was, by the gateway.
        assert [(e["payload"]["order_no"], e["payload"]["version"], e["payload"]["sources"]) for e in announced] == [
            ("ORD-WATCHED", 2, ["gateway"])]
    finally:
        await gateway.service.stop()
        gateway.group_commit = None
