"""Status pushed to the trader (spec §7.3), end to end: every service as a process on a real broker and
PostgreSQL, webhooks registered through the gateway's API, and real HTTP receivers on loopback. The
platform's receiver fails (500), then hangs past the read timeout, then recovers: every status change of
its order arrives, the first on its third attempt with the same delivery_id and body, each correctly
signed, one order's deliveries in order, and the last one showing the view the gateway shows. The bound
payment firm is told too; an enterprise that is no party to the order is told nothing and cannot see,
list or delete another's webhook."""
from __future__ import annotations

import time

import pytest

from services.gateway.webhooks import rules
from tests.e2e.conftest import released_order_no
from tests.support import wait_for
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e
EVENTS = ["order.status_changed"]


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(script: list[str] | None = None, hang_seconds: float = 3.0) -> Receiver:
        made.append(Receiver(script or ["ok"], hang_seconds))
        return made[-1]

    yield make
    for r in made:
        r.close()


def register(api, enterprise, url: str) -> dict:  # noqa: ANN001
    r = api.http.post("/v1/webhooks", json={"url": url, "events": EVENTS}, headers=enterprise.auth)
    assert r.status_code == 201, r.text
    return r.json()


def test_status_changes_are_pushed_signed_in_order_through_failures(api, parties, receivers):
    platform_rx = receivers(["fail", "hang", "ok"], hang_seconds=2.5)
    payment_rx, stranger_rx = receivers(), receivers()
    hook = register(api, parties.platform, platform_rx.url)
    assert set(hook) >= {"id", "secret", "url", "events", "created_at"} and hook["secret"].startswith("whsec_")
    payment_hook = register(api, parties.payment, payment_rx.url)
    stranger = api.register(["platform"])
    stranger_hook = register(api, stranger, stranger_rx.url)

    body = api.submit_import(parties, released_order_no(parties.platform.code))
    order_no = body["order_no"]
    api.wait_customs(parties.platform, order_no)
    api.wait_view(parties.platform, order_no, "tax")

    def log() -> list[dict]:
        r = api.http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=parties.platform.auth)
        assert r.status_code == 200, r.text
        return r.json()["deliveries"]

    def settled() -> list | None:
        # Every delivery left, and the last one shows what the gateway shows now.
        deliveries, shown = log(), api.status(parties.platform, order_no)
        if not deliveries or any(d["status"] != "delivered" for d in deliveries):
            return None
        last = [r for r in platform_rx.requests() if r.answered == 200]
        return last if last and last[-1].json["data"] == shown else None

    wait_for(settled, 90, interval=0.5, what="the platform's webhook to receive the order's final view")

    got = platform_rx.requests()
    first_id = got[0].json["delivery_id"]
    assert [r.json["delivery_id"] for r in got[:3]] == [first_id] * 3
    assert [r.answered for r in got[:3]] == [500, None, 200]  # failed, timed out, recovered
    assert got[0].body == got[1].body == got[2].body
    for r in got:
        assert rules.verify(hook["secret"], r.headers["Signature"], r.body, now=int(time.time()))
        assert r.json["type"] == "order.status_changed" and r.json["data"]["order_no"] == order_no
    # One order's deliveries in order: a new delivery only after the previous one was answered 200.
    previous, occurred = None, []
    for r in got:
        current = r.json["delivery_id"]
        if current != previous:
            if previous is not None:
                assert any(x.json["delivery_id"] == previous and x.answered == 200 for x in got[:got.index(r)])
            occurred.append(r.json["occurred_at"])
            previous = current
    assert occurred == sorted(occurred) and len(occurred) >= 2

    # The deliveries log: the first delivery's three attempts.
    first = next(d for d in log() if d["delivery_id"] == first_id)
    assert first["attempts"] == 3 and first["response_code"] == 200
    assert [a["response_code"] for a in first["attempt_log"]] == [500, None, 200]
    assert first["attempt_log"][1]["error"].startswith("timeout")

    # The bound payment firm is a party: it is told too. The stranger is not.
    wait_for(lambda: any(r.json["data"]["order_no"] == order_no for r in payment_rx.requests()), 30,
             what="the payment firm's delivery")
    assert stranger_rx.requests() == []

    # Another enterprise's webhook does not exist for the stranger.
    assert [w["id"] for w in api.http.get("/v1/webhooks", headers=stranger.auth).json()["webhooks"]] == [
        stranger_hook["id"]]
    for method, path in (("GET", f"/v1/webhooks/{hook['id']}/deliveries"), ("DELETE", f"/v1/webhooks/{hook['id']}")):
        r = api.http.request(method, path, headers=stranger.auth)
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json"), r.text
    listed = api.http.get("/v1/webhooks", headers=parties.platform.auth).json()["webhooks"]
    assert [w["id"] for w in listed] == [hook["id"]] and "secret" not in listed[0]
    assert payment_hook["id"] not in [w["id"] for w in listed]

    # Deleting one's own: gone from the list and its log.
    assert api.http.delete(f"/v1/webhooks/{hook['id']}", headers=parties.platform.auth).status_code == 200
    assert api.http.get("/v1/webhooks", headers=parties.platform.auth).json()["webhooks"] == []
    assert api.http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=parties.platform.auth).status_code == 404


def test_registration_is_validated_bounded_and_for_enterprises(api):
    seller = api.register(["ecommerce"])
    cases = [
        ({"url": "https://example.com/h"}, "events"),
        ({"url": "https://example.com/h", "events": ["order.created"]}, "events[0]"),
        ({"url": "https://example.com/h", "events": EVENTS * 2}, "events"),
        ({"url": "ftp://example.com/h", "events": EVENTS}, "url"),
        ({"url": "", "events": EVENTS}, "url"),
        ({"url": "https://example.com/h", "events": EVENTS, "extra": 1}, "extra"),
    ]
    for body, field in cases:
        r = api.http.post("/v1/webhooks", json=body, headers=seller.auth)
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), r.text
        assert field in [e["field"] for e in r.json()["errors"]], (body, r.json())
    assert api.http.post("/v1/webhooks", json=[], headers=seller.auth).status_code == 422
    assert api.http.post("/v1/webhooks", json={"url": "https://example.com/h", "events": EVENTS}).status_code == 401
    # The operator holds no webhooks.
    assert api.http.post("/v1/webhooks", json={"url": "https://example.com/h", "events": EVENTS},
                         headers=api.admin).status_code == 403
    # At most 10 per enterprise (SW_WEBHOOK_MAX_PER_ENTERPRISE).
    for i in range(10):
        assert api.http.post("/v1/webhooks", json={"url": f"https://example.com/{i}", "events": EVENTS},
                             headers=seller.auth).status_code == 201
    r = api.http.post("/v1/webhooks", json={"url": "https://example.com/11", "events": EVENTS}, headers=seller.auth)
    assert r.status_code == 409, r.text
    assert len(api.http.get("/v1/webhooks", headers=seller.auth).json()["webhooks"]) == 10
