"""Both major versions of the order event through the running mesh (issue 5, evolution in practice): the
gateway publishes v2 and, during v1's deprecation period, v1; our agencies decide from v2; an agency
outside the repository reading sw.order.submitted.v1 with a plain Kafka client still finds every order
in the v1 shape."""
from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from aiokafka import AIOKafkaConsumer

from contracts.topics import ORDER_SUBMITTED, ORDER_SUBMITTED_V2
from contracts.v1.events import OrderSubmitted
from contracts.v2.events import OrderSubmittedV2
from deploy.mesh import free_port
from services.gateway.contracts_policy import publishes_order_v1
from shared.clock import CHINA
from shared.settings import Settings
from tests.e2e.conftest import ADMIN, Enterprise, Parties, released_order_no
from tests.support import order_body, payment_body, unique, wait_for, waybill_body

pytestmark = pytest.mark.e2e

V1, V2 = ORDER_SUBMITTED.name, ORDER_SUBMITTED_V2.name
BRAND = "Maison Lumière"


def face_cream(brand: str | None) -> list[dict]:
    item = {"item_no": "SKU-1", "name": "Face cream 50ml", "hs_code": "3304990099", "quantity": 2, "unit": "piece",
            "unit_price": "180.00", "origin_country": "FR"}
    return [{**item, "brand": brand} if brand else item]


def v1_is_published_now() -> bool:
    # The mesh's services inherit this process's environment, so they read the same settings.
    s = Settings()
    return publishes_order_v1(datetime.now(timezone.utc), s.sw_order_v1_until, s.sw_order_v2_enabled)


def register_foreign_seller(api, country: str = "FR") -> Enterprise:
    code = unique("FR")[:32]
    r = api.http.post("/v1/enterprises", headers={"Authorization": f"Bearer {ADMIN}"}, json={
        "code": code, "name": f"Seller {code}", "roles": ["ecommerce"], "country": country})
    assert r.status_code == 201, r.text
    return Enterprise(code, r.json()["api_key"], ["ecommerce"])


def order_events_on_topics(bootstrap: str, key: str, until: dict[str, int],
                           timeout: float = 30) -> dict[str, list[dict]]:
    """What an outside agency sees: every event with this key on the order topics, read from the start with
    a plain consumer, until `until[topic]` of them are there (then once more to the end)."""

    async def read() -> dict[str, list[dict]]:
        consumer = AIOKafkaConsumer(V1, V2, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                    enable_auto_commit=False)
        await consumer.start()
        found: dict[str, list[dict]] = {V1: [], V2: []}
        try:
            deadline, enough = time.time() + timeout, False
            while time.time() < deadline:
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                for records in batch.values():
                    for r in records:
                        envelope = json.loads(r.value) if r.key and r.key.decode() == key else None
                        # At least once: a relay may publish a row twice; like any reader, keep one per event_id.
                        if envelope and envelope["event_id"] not in {e["event_id"] for e in found[r.topic]}:
                            found[r.topic].append({**envelope, "headers": {k: v.decode() for k, v in r.headers}})
                if enough and not batch:
                    break
                enough = all(len(found[t]) >= n for t, n in until.items())
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())


def all_answered(api, platform, order_no: str) -> dict:
    return wait_for(lambda: (v := api.status(platform, order_no)) and all(
        v[s]["status"] != "pending" for s in ("customs", "tax", "fx")) and v["logistics"]["status"] == "cleared" and v,
        90, what=f"every agency's answer on {order_no}")


def test_an_order_with_a_brand_goes_out_on_both_versions_and_our_agencies_decide_it_from_v2(api, mesh, parties):
    seller = register_foreign_seller(api)
    body = api.submit_import(parties, body=order_body(parties.platform.code, seller.code,
                                                      released_order_no(parties.platform.code, "V2"),
                                                      items=face_cream(BRAND)))
    key = f"{parties.platform.code}:{body['order_no']}"

    # Customs, tax, fx and logistics read only v2 now: their answers are the ones of domain §7 example 1.
    view = all_answered(api, parties.platform, body["order_no"])
    assert view["customs"] == {"status": "released", "channel": "green", "reasons": []}
    assert view["documents"] == {"order": "received", "payment": "received", "waybill": "received"}
    assert (view["tax"]["status"], view["tax"]["total"]) == ("assessed", "83.48")
    assert view["fx"]["status"] == "settled"

    with_v1 = v1_is_published_now()
    events = order_events_on_topics(mesh.bootstrap, key, {V1: 1 if with_v1 else 0, V2: 1})
    [v2] = events[V2]
    assert (v2["type"], v2["version"], v2["correlation_id"]) == ("order.submitted", 2, key)
    assert (v2["headers"]["type"], v2["headers"]["version"]) == ("order.submitted", "2")
    order = v2["payload"]["order"]
    assert order["platform"] == {"code": parties.platform.code, "country": "CN"}
    assert order["ecommerce"] == {"code": seller.code, "country": "FR"}  # from the seller's registration
    assert order["items"][0]["brand"] == BRAND
    assert order["items"][0]["unit_price"] == {"amount": "180.00", "currency": "CNY"}
    assert order["actual_paid"] == {"amount": "447.50", "currency": "CNY"}
    assert "platform_code" not in order and "currency" not in order

    if not with_v1:  # the deprecation period is over in this environment: v2 alone
        assert events[V1] == []
        return
    [v1] = events[V1]  # an agency still on v1 finds the order exactly as before v2 existed
    assert (v1["type"], v1["version"], v1["correlation_id"]) == ("order.submitted", 1, key)
    assert (v1["headers"]["type"], v1["headers"]["version"]) == ("order.submitted", "1")
    order = v1["payload"]["order"]
    assert (order["platform_code"], order["ecommerce_code"], order["currency"]) == (
        parties.platform.code, seller.code, "CNY")
    assert (order["items"][0]["unit_price"], order["actual_paid"]) == ("180.00", "447.50")
    assert "brand" not in json.dumps(v1["payload"])
    assert v1["event_id"] != v2["event_id"]
    assert OrderSubmittedV2.model_validate(v2["payload"]).as_v1() == OrderSubmitted.model_validate(v1["payload"])


def test_a_correction_and_a_cancellation_go_out_on_both_versions(api, mesh, parties):
    # Only the order: customs keeps it pending, so it can be corrected and then cancelled.
    body = order_body(parties.platform.code, parties.ecommerce.code, released_order_no(parties.platform.code, "V2C"),
                      items=face_cream(BRAND))
    key = f"{parties.platform.code}:{body['order_no']}"
    path = f"/v1/orders/{parties.platform.code}/{body['order_no']}"
    assert api.order(parties.platform, body).status_code == 202
    corrected = {**body, "items": face_cream("Lumière Paris")}
    r = api.http.put(path, json=corrected, headers=parties.platform.auth)
    assert (r.status_code, r.json()["version"]) == (202, 2)
    assert api.http.delete(path, headers=parties.platform.auth).status_code == 202

    with_v1 = v1_is_published_now()
    events = order_events_on_topics(mesh.bootstrap, key, {V1: 3 if with_v1 else 0, V2: 3})
    v2 = events[V2]
    assert [(e["payload"]["action"], e["payload"]["version"]) for e in v2] == [
        ("new", 1), ("corrected", 2), ("cancelled", 3)]
    # The cancellation repeats the last version's facts, brand included (kept with the stored order).
    assert [e["payload"]["order"]["items"][0]["brand"] for e in v2] == [BRAND, "Lumière Paris", "Lumière Paris"]
    if with_v1:
        v1 = events[V1]
        assert [(e["payload"]["action"], e["payload"]["version"]) for e in v1] == [
            ("new", 1), ("corrected", 2), ("cancelled", 3)]
        assert all("brand" not in json.dumps(e["payload"]) for e in v1)
        assert [OrderSubmittedV2.model_validate(e["payload"]).as_v1() for e in v2] == [
            OrderSubmitted.model_validate(e["payload"]) for e in v1]
    else:
        assert events[V1] == []

    # Customs took the cancellation from v2 and said so.
    def customs_cancelled() -> bool:
        trace = api.http.get(f"{path}/trace", headers=parties.platform.auth).json()["events"]
        return any(e["source"] == "customs" and e["summary"].startswith("cancelled") for e in trace)

    wait_for(customs_cancelled, 60, what=f"customs' cancellation of {body['order_no']}")
    assert api.status(parties.platform, body["order_no"])["customs"]["status"] == "cancelled"


def test_after_the_deprecation_period_the_gateway_publishes_v2_only(api, mesh):
    # A second gateway on the same database whose v1 period ended yesterday (China time).
    yesterday = (datetime.now(CHINA) - timedelta(days=1)).date().isoformat()
    port = free_port()
    mesh.start_service("gateway", instance="v2only", port=port, extra_env={"SW_ORDER_V1_UNTIL": yesterday})
    try:
        mesh.wait_healthy(["gateway"], ports={"gateway": port})
        parties = Parties(*(api.register([role]) for role in ("platform", "ecommerce", "payment", "logistics")))
        body = order_body(parties.platform.code, parties.ecommerce.code,
                          released_order_no(parties.platform.code, "V2O"), items=face_cream(BRAND))
        r = api.http.post(f"http://127.0.0.1:{port}/v1/orders", json=body, headers=parties.platform.auth)
        assert r.status_code == 202, r.text
        assert api.payment(parties.payment, payment_body(parties.payment.code, body)).status_code == 202
        assert api.waybill(parties.logistics, waybill_body(parties.logistics.code, body)).status_code == 202
        key = f"{parties.platform.code}:{body['order_no']}"
        events = order_events_on_topics(mesh.bootstrap, key, {V2: 1})
        assert [e["payload"]["order"]["items"][0]["brand"] for e in events[V2]] == [BRAND]
        assert events[V1] == []
        # Our agencies never needed v1.
        assert api.wait_customs(parties.platform, body["order_no"])["customs"]["status"] == "released"
    finally:
        mesh.stop_service("gateway-v2only")
