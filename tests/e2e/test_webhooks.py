"""Status pushed to the trader (spec §7.3), end to end: every service as a process on a real broker and
PostgreSQL, webhooks registered through the gateway's API, and real HTTP receivers on loopback. The
platform's receiver fails (500), then hangs past the read timeout, then recovers: every status change of
its order arrives, the first on its third attempt with the same delivery_id and body, each correctly
signed, one order's deliveries in order, and the last one showing the view the gateway shows. The bound
payment firm may not read the order's view, so it is not told; an enterprise that is no party to the order
is told nothing and cannot see, list or delete another's webhook."""
from __future__ import annotations

import time

import pytest

from services.gateway.webhooks import rules
from tests.e2e.conftest import released_order_no
from tests.support import order_body, wait_for, waybill_body
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e
EVENTS = ["order.status_changed"]


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(script: list[str] | None = None, hang_seconds: float = 3.0, held: bool = False) -> Receiver:
        made.append(Receiver(script or ["ok"], hang_seconds, held=held))
        return made[-1]

    yield make
    for r in made:
        r.close()


def register(api, enterprise, url: str) -> dict:  # noqa: ANN001
    r = api.http.post("/v1/webhooks", json={"url": url, "events": EVENTS}, headers=enterprise.auth)
    assert r.status_code == 201, r.text
    return r.json()


def test_status_changes_are_pushed_signed_in_order_through_failures(api, parties, receivers):
    platform_rx = receivers(["fail", "hang", "ok"], hang_seconds=2.5, held=True)  # down until released
    payment_rx, stranger_rx = receivers(), receivers()
    hook = register(api, parties.platform, platform_rx.url)
    assert set(hook) >= {"id", "secret", "url", "events", "created_at"} and hook["secret"].startswith("whsec_")
    payment_hook = register(api, parties.payment, payment_rx.url)
    stranger = api.register(["platform"])
    stranger_hook = register(api, stranger, stranger_rx.url)

    order_no = released_order_no(parties.platform.code)
    body = order_body(parties.platform.code, parties.ecommerce.code, order_no)
    waybill = waybill_body(parties.logistics.code, body)
    api.submit_import(parties, body=body, waybill=waybill)
    api.wait_customs(parties.platform, order_no)

    def log() -> list[dict]:
        r = api.http.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=parties.platform.auth)
        assert r.status_code == 200, r.text
        return r.json()["deliveries"]

    # The receiver fails, then hangs: the first delivery is being retried.
    wait_for(lambda: len(platform_rx.requests()) >= 2, 30, what="a failed attempt and a timed-out one")
    first_id = platform_rx.requests()[0].json["delivery_id"]
    # A change while the first delivery is still pending (the parcel is picked up): its delivery waits.
    r = api.http.post(f"/v1/waybills/{parties.logistics.code}/{waybill['waybill_no']}/events",
                      json={"event": "picked_up", "at": "2026-11-24T12:00:00+08:00", "location": "Hangzhou"},
                      headers=parties.logistics.auth)
    assert r.status_code == 202, r.text
    waiting = wait_for(lambda: [d for d in log() if d["delivery_id"] != first_id and d["status"] == "pending"], 30,
                       what="a later delivery of the order, waiting")
    assert all(d["attempts"] == 0 for d in waiting)  # not one attempt while the first is pending
    assert next(d for d in log() if d["delivery_id"] == first_id)["status"] == "pending"
    platform_rx.release()

    def settled() -> list | None:
        # Every delivery left, and the last one shows what the gateway shows now.
        deliveries, shown = log(), api.status(parties.platform, order_no)
        if not deliveries or any(d["status"] != "delivered" for d in deliveries):
            return None
        last = [r for r in platform_rx.requests() if r.answered == 200]
        return last if last and last[-1].json["data"] == shown else None

    wait_for(settled, 90, interval=0.5, what="the platform's webhook to receive the order's final view")

    got = platform_rx.requests()
    firsts = [r for r in got if r.json["delivery_id"] == first_id]
    assert [r.answered for r in firsts[:2]] == [500, None]  # failed, timed out ...
    assert firsts[-1].answered == 200 and all(r.answered != 200 for r in firsts[:-1])  # ... recovered once
    assert len({r.body for r in firsts}) == 1  # the same bytes on every attempt
    for r in got:
        assert rules.verify(hook["secret"], r.headers["Signature"], r.body, now=int(time.time()))
        assert r.json["type"] == "order.status_changed" and r.json["data"]["order_no"] == order_no
    # One order's deliveries in order: a new delivery only after the previous one was answered 200.
    previous, occurred = None, []
    for i, r in enumerate(got):
        current = r.json["delivery_id"]
        if current != previous:
            if previous is not None:
                assert any(x.json["delivery_id"] == previous and x.answered == 200 for x in got[:i])
            assert current not in [x.json["delivery_id"] for x in got[:i]]  # never back to an earlier one
            occurred.append(r.json["occurred_at"])
            previous = current
    assert occurred == sorted(occurred) and len(occurred) >= 2

    # The deliveries log: the first delivery's attempts.
    first = next(d for d in log() if d["delivery_id"] == first_id)
    assert first["attempts"] == len(firsts) and first["response_code"] == 200
    codes = [a["response_code"] for a in first["attempt_log"]]
    assert codes[:2] == [500, None] and codes[-1] == 200
    assert first["attempt_log"][1]["error"].startswith("timeout")

    # The bound payment firm may not read the order's view (GET is 403), so it is not told either; nor is
    # the stranger. (Every delivery of the order reached the platform above, so nothing is still on its way.)
    assert payment_rx.requests() == [] and stranger_rx.requests() == []
    payment_log = api.http.get(f"/v1/webhooks/{payment_hook['id']}/deliveries", headers=parties.payment.auth)
    assert payment_log.status_code == 200 and payment_log.json()["deliveries"] == []

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
