"""One submission reaches all five agencies (issue: every agency decides). Domain §7-§11, spec §4.4, §5, §5a."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest

from shared.reference import fx_rates
from tests.e2e.conftest import Parties, released_order_no
from tests.support import order_body, payment_body, wait_for, waybill_body

pytestmark = pytest.mark.e2e


def usd(amount_cny: str, day=None) -> str:
    rate = fx_rates().rate_on("USD", day or datetime.now(timezone(timedelta(hours=8))).date())[1]
    return str((Decimal(amount_cny) / rate).quantize(Decimal("0.01"), ROUND_HALF_UP))


def all_answered(api, platform, order_no: str) -> dict:
    return wait_for(lambda: (v := api.status(platform, order_no)) and all(
        v[s]["status"] != "pending" for s in ("customs", "tax", "fx")) and v["logistics"]["status"] == "cleared" and v,
        90, what=f"every agency's answer on {order_no}")


def test_an_import_reaches_all_five_agencies(api, parties):
    body = api.submit_import(parties, buyer_id="110101199003070011")  # domain §7 worked example 1
    view = all_answered(api, parties.platform, body["order_no"])
    assert view["customs"] == {"status": "released", "channel": "green", "reasons": []}
    tax = view["tax"]
    assert tax["status"] == "assessed"
    assert (tax["dutiable_value"], tax["customs_duty"], tax["vat"], tax["consumption_tax"], tax["total"]) == (
        "362.00", "0.00", "38.76", "44.72", "83.48")
    assert Decimal(tax["declared_difference"]) == Decimal("2.02")  # the platform collected 85.50
    fx = view["fx"]
    assert fx["status"] == "settled" and fx["amount_usd"] == usd("447.50", datetime(2026, 11, 24).date())
    assert Decimal(fx["year_to_date_usd"]) >= Decimal(fx["amount_usd"])
    assert view["logistics"]["status"] == "cleared"
    assert view["credit"]["ecommerce_grade"] == "A"
    trace = api.http.get(f"/v1/orders/{parties.platform.code}/{body['order_no']}/trace", headers=parties.platform.auth).json()
    sources = [e["source"] for e in trace["events"]]
    assert {"gateway", "customs", "tax", "fx", "logistics"} <= set(sources)
    assert sources[0] == "gateway" and all(e["at"] and e["type"] and e["summary"] for e in trace["events"])
    times = [e["at"] for e in trace["events"]]
    assert times == sorted(times)


def test_two_lines_and_general_trade_are_taxed_as_the_worked_examples(api, parties):
    two_lines = api.submit_import(parties, freight="20.00", discount="0.00", tax_total="117.55", items=[
        {"item_no": "SKU-1", "name": "Face cream", "hs_code": "3304990099", "quantity": 1, "unit": "piece",
         "unit_price": "300.00", "origin_country": "FR"},
        {"item_no": "SKU-2", "name": "Leather shoes", "hs_code": "6403990090", "quantity": 1, "unit": "pair",
         "unit_price": "500.00", "origin_country": "IT"}])
    handbag = api.submit_import(parties, freight="0.00", discount="0.00", tax_total="1458.00", items=[
        {"item_no": "SKU-1", "name": "Handbag", "hs_code": "4202210090", "quantity": 1, "unit": "piece",
         "unit_price": "6000.00", "origin_country": "IT"}])
    tax = api.wait_view(parties.platform, two_lines["order_no"], "tax")["tax"]
    assert (tax["status"], tax["dutiable_value"], tax["customs_duty"], tax["vat"], tax["consumption_tax"], tax["total"]) == (
        "assessed", "820.00", "0.00", "79.56", "37.99", "117.55")
    tax = api.wait_view(parties.platform, handbag["order_no"], "tax")["tax"]
    assert (tax["status"], tax["customs_duty"], tax["vat"], tax["consumption_tax"], tax["total"]) == (
        "general_trade", "600.00", "858.00", "0.00", "1458.00")
    assert Decimal(tax["declared_difference"]) == 0


def test_an_export_reaches_all_five_agencies_and_feeds_deemed_income(api, parties):
    body = order_body(parties.platform.code, parties.ecommerce.code, released_order_no(parties.platform.code),
                      direction="export", destination_country="US", discount="0.00", tax_total="0.00", freight="25.00",
                      items=[{"item_no": "SKU-1", "name": "T-shirt", "hs_code": "6109100022", "quantity": 10,
                              "unit": "piece", "unit_price": "50.00", "origin_country": "CN"}])
    assert api.order(parties.platform, body).status_code == 202
    assert api.waybill(parties.logistics, waybill_body(parties.logistics.code, body)).status_code == 202
    view = all_answered(api, parties.platform, body["order_no"])
    assert view["customs"]["status"] == "released"
    assert view["tax"]["status"] == "exempt"
    assert view["fx"]["status"] == "settled" and view["fx"]["amount_usd"] == usd("525.00")
    china_today = datetime.now(timezone(timedelta(hours=8))).date()
    quarter = f"{china_today.year}Q{(china_today.month - 1) // 3 + 1}"
    income = wait_for(lambda: (r := api.agency("tax").get(f"/v1/deemed-income/{parties.ecommerce.code}",
                                                          params={"quarter": quarter}).json())
                      and Decimal(r["export_revenue_cny"]) > 0 and r)
    assert income["export_revenue_cny"] == "525.00" and income["deemed_taxable_income_cny"] == "21.00"
    assert api.agency("tax").get(f"/v1/deemed-income/{parties.ecommerce.code}", params={"quarter": "2026Q5"}).status_code == 422


def test_rejected_orders_are_not_applicable_to_tax_and_fx(api, parties):
    body = order_body(parties.platform.code, parties.ecommerce.code, released_order_no(parties.platform.code))
    api.submit_import(parties, body=body, payment=payment_body(parties.payment.code, body, amount="1.00"))
    view = wait_for(lambda: (v := api.status(parties.platform, body["order_no"]))["tax"]["status"] != "pending"
                    and v["fx"]["status"] != "pending" and v)
    assert view["customs"]["status"] == "rejected"
    assert view["tax"]["status"] == "not_applicable" and view["fx"]["status"] == "not_applicable"


def test_repeated_prohibited_goods_put_a_seller_on_the_negative_list(api):
    p = Parties(api.register(["platform"]), api.register(["ecommerce"]), api.register(["payment"]),
                api.register(["logistics"]))
    for _ in range(3):  # 100 - 3 x 20 = 40: grade D
        body = api.submit_import(p, freight="0.00", discount="0.00", tax_total="0.00", items=[
            {"item_no": "SKU-1", "name": "Live mammal", "hs_code": "0106190090", "quantity": 1, "unit": "piece",
             "unit_price": "200.00", "origin_country": "TH"}])
        assert api.wait_customs(p.platform, body["order_no"])["customs"]["status"] == "rejected"
    enterprise = wait_for(lambda: (e := api.http.get(f"/v1/enterprises/{p.ecommerce.code}", headers=api.admin).json())
                          ["credit"]["negative_listed"] and e, what="the negative listing")
    assert enterprise["credit"]["grade"] == "D" and Decimal(enterprise["credit"]["score"]) == 40
    time.sleep(2)  # the listing reaches customs on the credit topic
    refused = api.submit_import(p)
    view = api.wait_customs(p.platform, refused["order_no"])
    assert view["customs"]["status"] == "rejected"
    assert "PARTY_ON_NEGATIVE_LIST" in {r["code"] for r in view["customs"]["reasons"]}
    assert view["credit"]["ecommerce_grade"] == "D"
    r = api.agency("credit").delete(f"/v1/negative-list/{p.ecommerce.code}")
    assert r.status_code == 200
    wait_for(lambda: not api.http.get(f"/v1/enterprises/{p.ecommerce.code}", headers=api.admin).json()["credit"]["negative_listed"])
    time.sleep(2)
    after = api.submit_import(p)
    view = api.wait_customs(p.platform, after["order_no"])
    assert view["customs"]["status"] == "inspection" and view["customs"]["channel"] == "red"  # still grade D: rate 1


def test_the_fx_directory_threshold(api, parties):
    bodies = []
    for _ in range(2):  # 2 x CNY 750,025 at ~7.13 = about USD 210,000 in all
        body = order_body(parties.platform.code, parties.ecommerce.code, released_order_no(parties.platform.code),
                          direction="export", trade_mode="9710", destination_country="MY", discount="0.00",
                          tax_total="0.00", freight="25.00",
                          items=[{"item_no": "SKU-1", "name": "Mixer", "hs_code": "8509400090", "quantity": 2500,
                                  "unit": "piece", "unit_price": "300.00", "origin_country": "CN"}])
        assert api.order(parties.platform, body).status_code == 202
        assert api.waybill(parties.logistics, waybill_body(parties.logistics.code, body)).status_code == 202
        bodies.append(body)
    first = api.wait_view(parties.platform, bodies[0]["order_no"], "fx")
    assert first["fx"]["status"] == "settled"
    enterprise = wait_for(lambda: (e := api.http.get(f"/v1/enterprises/{parties.ecommerce.code}", headers=api.admin).json())
                          ["fx"]["directory_status"] == "registration_required" and e, what="registration_required")
    assert Decimal(enterprise["fx"]["year_to_date_usd"]) >= 200000
    fx = api.agency("fx")
    assert fx.post(f"/v1/directory/{parties.ecommerce.code}").status_code == 201
    assert fx.post(f"/v1/directory/{parties.ecommerce.code}").status_code == 200
    wait_for(lambda: api.http.get(f"/v1/enterprises/{parties.ecommerce.code}", headers=api.admin).json()
             ["fx"]["directory_status"] == "registered", what="registered")


def test_tracking_events_move_the_shipment_forward_only(api, parties):
    body = api.submit_import(parties)
    all_answered(api, parties.platform, body["order_no"])
    waybill_no = api.http.get(f"/v1/orders/{parties.platform.code}/{body['order_no']}",
                              headers=parties.platform.auth).json()["logistics"]["waybill_no"]
    url = f"/v1/waybills/{parties.logistics.code}/{waybill_no}/events"
    delivered = {"event": "delivered", "at": "2026-11-26T18:00:00+08:00", "location": "Hangzhou"}
    assert api.http.post(url, json=delivered, headers=parties.logistics.auth).status_code == 202
    assert api.http.post(url, json=delivered, headers=parties.logistics.auth).status_code == 200
    late = {"event": "departed", "at": "2026-11-25T08:00:00+08:00", "location": "Paris"}
    assert api.http.post(url, json=late, headers=parties.logistics.auth).status_code == 202
    wait_for(lambda: api.status(parties.platform, body["order_no"])["logistics"]["status"] == "delivered")
    time.sleep(2)
    assert api.status(parties.platform, body["order_no"])["logistics"]["status"] == "delivered"
    assert api.http.post(url, json={"event": "teleported", "at": "2026-11-26T18:00:00+08:00"},
                         headers=parties.logistics.auth).status_code == 422
    assert api.http.post(f"/v1/waybills/{parties.logistics.code}/NOPE/events", json=delivered,
                         headers=parties.logistics.auth).status_code == 404


def test_a_waybill_exception_costs_the_carrier_credit(api, parties):
    body = api.submit_import(parties)
    all_answered(api, parties.platform, body["order_no"])
    waybill_no = api.status(parties.platform, body["order_no"])["logistics"]["waybill_no"]
    r = api.http.post(f"/v1/waybills/{parties.logistics.code}/{waybill_no}/events",
                      json={"event": "exception", "at": datetime.now(timezone.utc).isoformat(), "note": "box damaged"},
                      headers=parties.logistics.auth)
    assert r.status_code == 202
    wait_for(lambda: api.status(parties.platform, body["order_no"])["logistics"]["status"] == "exception")
    credit = wait_for(lambda: (c := api.agency("credit").get(f"/v1/credit/{parties.logistics.code}").json())
                      and Decimal(str(c["score"])) == 98 and c, what="the carrier's -2")
    assert credit["grade"] == "A"


def test_statistics_for_the_operator(api, parties):
    body = api.submit_import(parties)
    all_answered(api, parties.platform, body["order_no"])
    assert api.http.get("/v1/stats", headers=parties.platform.auth).status_code == 403
    since = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    r = api.http.get("/v1/stats", params={"from": since}, headers=api.admin)
    assert r.status_code == 200
    stats = r.json()
    assert stats["orders"]["count"] >= 1
    assert stats["by_direction"]["import"]["count"] >= 1
    assert stats["by_customs_status"]["released"]["count"] >= 1
    assert Decimal(stats["tax_collected_cny"]) >= Decimal("83.48")
    assert Decimal(stats["fx_settled_usd"]) > 0
    assert stats["decision_time_seconds"]["median"] is not None and stats["decision_time_seconds"]["p95"] is not None
    future = api.http.get("/v1/stats", params={"from": "2099-01-01T00:00:00+00:00"}, headers=api.admin).json()
    assert future["orders"]["count"] == 0


def test_a_chapter_03_line_is_held_by_quarantine_in_the_one_stop_view(api, parties, mesh):
    """The sixth agency (services/quarantine), added as one folder and its contract: the mesh starts it from
    the registry and the gateway shows its status with no code of its own."""
    assert "quarantine" in mesh.ports
    shrimps = api.submit_import(parties, freight="0.00", discount="0.00", tax_total="0.00", items=[
        {"item_no": "SKU-S", "name": "Frozen shrimps", "hs_code": "0306170090", "quantity": 1, "unit": "kg",
         "unit_price": "100.00", "origin_country": "VN"}])
    cream = api.submit_import(parties)
    held = wait_for(lambda: api.status(parties.platform, shrimps["order_no"]).get("quarantine"), 90,
                    what="quarantine's answer on the shrimps")
    assert held["status"] == "held" and held["chapters"] == ["03"]
    assert held["reasons"] == [{"code": "ANIMAL_OR_PLANT_GOODS", "message": "HS chapter 03"}]
    cleared = wait_for(lambda: api.status(parties.platform, cream["order_no"]).get("quarantine"), 90,
                       what="quarantine's answer on the face cream")
    assert cleared["status"] == "cleared" and cleared["chapters"] == []
    trace = api.http.get(f"/v1/orders/{parties.platform.code}/{shrimps['order_no']}/trace",
                         headers=parties.platform.auth).json()
    assert any(e["source"] == "quarantine" and e["summary"] == "held: ANIMAL_OR_PLANT_GOODS" for e in trace["events"])
