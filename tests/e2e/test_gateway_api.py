"""The gateway's public interface: registration, auth, validation, idempotency (spec §2-§4)."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import released_order_no
from tests.support import new_resident_id, new_uscc, order_body, payment_body, unique, waybill_body

pytestmark = pytest.mark.e2e


def test_registration_shows_the_key_once_and_refuses_a_second_registration(api):
    code = new_uscc()
    body = {"code": code, "name": "Hangzhou Example Trading Co., Ltd.", "roles": ["platform", "ecommerce"],
            "country": "CN", "customs_credit": "general"}
    r = api.http.post("/v1/enterprises", json=body, headers=api.admin)
    assert r.status_code == 201
    assert r.json()["code"] == code and r.json()["api_key"]
    again = api.http.post("/v1/enterprises", json=body, headers=api.admin)
    assert again.status_code == 409
    view = api.http.get(f"/v1/enterprises/{code}", headers={"Authorization": f"Bearer {r.json()['api_key']}"})
    assert view.status_code == 200
    assert "api_key" not in view.json() and view.json()["customs"]["credit_category"] == "general"


def test_registration_checks_the_unified_social_credit_code(api):
    r = api.http.post("/v1/enterprises", headers=api.admin, json={
        "code": "91350100M000100Y44", "name": "Bad check character", "roles": ["platform"], "country": "CN"})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["field"] == "code"
    foreign = api.http.post("/v1/enterprises", headers=api.admin, json={
        "code": unique("US")[:32], "name": "Overseas seller", "roles": ["ecommerce"], "country": "US"})
    assert foreign.status_code == 201


def test_registration_needs_the_operator(api, parties):
    body = {"code": new_uscc(), "name": "x", "roles": ["platform"]}
    assert api.http.post("/v1/enterprises", json=body).status_code == 401
    assert api.http.post("/v1/enterprises", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert api.http.post("/v1/enterprises", json=body, headers=parties.platform.auth).status_code == 403


def test_an_enterprise_sees_only_its_own_registration(api, parties):
    r = api.http.get(f"/v1/enterprises/{parties.platform.code}", headers=parties.ecommerce.auth)
    assert r.status_code == 403
    assert api.http.get(f"/v1/enterprises/{new_uscc()}", headers=api.admin).status_code == 404


def test_auth_on_documents(api, parties):
    body = order_body(parties.platform.code, parties.ecommerce.code, unique("ORD"))
    assert api.http.post("/v1/orders", json=body).status_code == 401
    assert api.http.post("/v1/orders", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    # a payment firm may not file orders; a platform may not file for another platform
    assert api.order(parties.payment, body).status_code == 403
    other = api.register(["platform"])
    assert api.order(other, body).status_code == 403
    assert api.order(parties.platform, body).status_code == 202
    # another platform may not read it; the ecommerce enterprise and the operator may
    assert api.http.get(f"/v1/orders/{parties.platform.code}/{body['order_no']}", headers=other.auth).status_code == 403
    assert api.http.get(f"/v1/orders/{parties.platform.code}/{body['order_no']}", headers=parties.ecommerce.auth).status_code == 200
    assert api.http.get(f"/v1/orders/{parties.platform.code}/{body['order_no']}", headers=api.admin).status_code == 200
    # a logistics firm may not file another firm's waybill
    assert api.waybill(parties.logistics, waybill_body(other.code, body)).status_code == 403


@pytest.mark.parametrize("mutate, field", [
    (lambda b: b["items"][0].update(hs_code="33049900"), "items[0].hs_code"),
    (lambda b: b.update(actual_paid="1.00"), "actual_paid"),
    (lambda b: b["items"][0].update(unit_price=180.0), "items[0].unit_price"),
    (lambda b: b["buyer"].update(id_number="110101199003070012"), "buyer.id_number"),
    (lambda b: b["buyer"].update(id_number="110101199002300011"), "buyer.id_number"),
    (lambda b: b.pop("buyer"), "buyer"),
    (lambda b: b.update(trade_mode="9710"), "trade_mode"),
    (lambda b: b.update(direction="sideways"), "direction"),
    (lambda b: b.pop("order_no"), "order_no"),
    (lambda b: b.update(items=[]), "items"),
])
def test_bad_orders_are_refused_naming_the_field_and_nothing_is_stored_or_published(api, parties, mutate, field):
    body = order_body(parties.platform.code, parties.ecommerce.code, unique("BAD"))
    mutate(body)
    before = api.produced()
    r = api.order(parties.platform, body)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert problem["status"] == 422 and problem["title"] and problem["detail"]
    assert field in [e["field"] for e in problem["errors"]], problem
    if "order_no" in body:
        assert api.http.get(f"/v1/orders/{parties.platform.code}/{body['order_no']}",
                            headers=parties.platform.auth).status_code == 404
    assert api.produced() == before


def test_unregistered_or_wrong_role_parties_are_refused(api, parties):
    body = order_body(parties.platform.code, new_uscc(), unique("ORD"))
    r = api.order(parties.platform, body)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "ecommerce_code"
    body = order_body(parties.platform.code, parties.logistics.code, unique("ORD"))
    r = api.order(parties.platform, body)
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "wrong_role"


def test_malformed_and_oversized_bodies(api, parties):
    r = api.http.post("/v1/orders", content=b"{not json", headers={**parties.platform.auth, "content-type": "application/json"})
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
    r = api.http.post("/v1/orders", json=[1, 2], headers=parties.platform.auth)
    assert r.status_code == 422
    big = order_body(parties.platform.code, parties.ecommerce.code, unique("BIG"))
    big["items"][0]["name"] = "x" * (1024 * 1024 + 10)
    r = api.http.post("/v1/orders", json=big, headers=parties.platform.auth)
    assert r.status_code == 413


def test_resubmission_is_idempotent_and_a_conflict_is_409(api, parties):
    body = order_body(parties.platform.code, parties.ecommerce.code, released_order_no(parties.platform.code))
    first = api.order(parties.platform, body)
    assert first.status_code == 202
    assert first.json()["status_url"] == f"/v1/orders/{parties.platform.code}/{body['order_no']}"
    before = api.produced()
    again = api.order(parties.platform, dict(reversed(list(body.items()))))  # same document, other key order
    assert again.status_code == 200 and again.json() == first.json()
    changed = {**body, "discount": "11.00", "actual_paid": "446.50"}
    assert api.order(parties.platform, changed).status_code == 409
    payment = payment_body(parties.payment.code, body)
    assert api.payment(parties.payment, payment).status_code == 202
    assert api.payment(parties.payment, payment).status_code == 200
    # Spec §7.2: one payment per order; another payment_no for it is 409 naming order_no.
    r = api.payment(parties.payment, {**payment, "payment_no": unique("PAY")})
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "order_no"
    # The same business key with other content, by its own firm, while customs has not decided (the waybill
    # is still missing): a correction (spec §7.2, §4.5), published once more.
    assert api.payment(parties.payment, {**payment, "amount": "1.00"}).status_code == 202
    assert api.payment(parties.payment, payment).status_code == 202  # and corrected back
    waybill = waybill_body(parties.logistics.code, body)
    assert api.waybill(parties.logistics, waybill).status_code == 202
    assert api.waybill(parties.logistics, waybill).status_code == 200
    assert api.waybill(parties.logistics, {**waybill, "waybill_no": unique("SF")}).status_code == 409
    assert api.produced() == before + 4  # the payment, its two corrections and the waybill, once each


def test_payment_and_waybill_validation(api, parties):
    body = order_body(parties.platform.code, parties.ecommerce.code, unique("ORD"))
    payment = payment_body(parties.payment.code, body, payer_id="11010519491231002Y")
    r = api.payment(parties.payment, payment)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "payer.id_number"
    waybill = waybill_body(parties.logistics.code, body)
    waybill["package_count"] = 0
    r = api.waybill(parties.logistics, waybill)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "package_count"


def test_identity_numbers_are_masked_outside_customs(api, parties):
    buyer = new_resident_id()
    body = api.submit_import(parties, buyer_id=buyer)
    trace = api.http.get(f"/v1/orders/{parties.platform.code}/{body['order_no']}/trace", headers=parties.platform.auth)
    assert trace.status_code == 200
    assert buyer not in trace.text
    status = api.status(parties.platform, body["order_no"])
    assert buyer not in str(status)


def test_health_and_metrics_on_every_service(api, mesh):
    import httpx

    for name in mesh.ports:
        health = httpx.get(mesh.url(name) + "/healthz", timeout=10)
        assert health.status_code == 200 and health.json()["database"] == "ok" and health.json()["broker"] == "ok"
        metrics = httpx.get(mesh.url(name) + "/metrics", timeout=10)
        assert metrics.status_code == 200 and "sw_outbox_lag" in metrics.text
