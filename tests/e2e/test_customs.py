"""Customs through the gateway, every service a process (domain §4-§6, §10, §12; spec §4.4, §4.5, §5a)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.e2e.conftest import inspected_order_no, released_order_no
from tests.support import new_resident_id, order_body, payment_body, unique, wait_for, waybill_body

pytestmark = pytest.mark.e2e

ITEM = {"item_no": "SKU-1", "name": "Face cream 50ml", "hs_code": "3304990099", "quantity": 2, "unit": "piece",
        "unit_price": "180.00", "origin_country": "FR"}


def one_item(hs_code: str, price: str, quantity: int = 1, name: str = "goods") -> list[dict]:
    return [{"item_no": "SKU-1", "name": name, "hs_code": hs_code, "quantity": quantity, "unit": "piece",
             "unit_price": price, "origin_country": "FR"}]


def reason_codes(view: dict) -> set[str]:
    return {r["code"] for r in view["customs"]["reasons"]}


def test_the_worked_example_is_released_green(api, parties):
    body = api.submit_import(parties, buyer_id="110101199003070011")
    view = api.wait_customs(parties.platform, body["order_no"])
    assert view["customs"] == {"status": "released", "channel": "green", "reasons": []}
    assert view["documents"] == {"order": "received", "payment": "received", "waybill": "received"}


@pytest.mark.parametrize("arrival", [("waybill", "payment", "order"), ("payment", "order", "waybill"),
                                     ("order", "waybill", "payment")])
def test_documents_in_any_order(api, parties, arrival):
    body = order_body(parties.platform.code, parties.ecommerce.code, released_order_no(parties.platform.code))
    send = {"order": lambda: api.order(parties.platform, body),
            "payment": lambda: api.payment(parties.payment, payment_body(parties.payment.code, body)),
            "waybill": lambda: api.waybill(parties.logistics, waybill_body(parties.logistics.code, body))}
    for kind in arrival:
        assert send[kind]().status_code == 202
    view = api.wait_customs(parties.platform, body["order_no"])
    assert view["customs"]["status"] == "released"


def test_every_mismatch_is_reported_together(api, parties):
    body = order_body(parties.platform.code, parties.ecommerce.code, released_order_no(parties.platform.code))
    payment = payment_body(parties.payment.code, body, amount="447.00", payer_name="Li Si", payer_id=new_resident_id())
    api.submit_import(parties, body=body, payment=payment,
                      waybill=waybill_body(parties.logistics.code, body, freight="15.00"))
    view = api.wait_customs(parties.platform, body["order_no"])
    assert view["customs"]["status"] == "rejected" and view["customs"]["channel"] is None
    assert reason_codes(view) == {"AMOUNT_MISMATCH", "IDENTITY_MISMATCH"}
    assert all(r["message"] for r in view["customs"]["reasons"])


@pytest.mark.parametrize("items, reason", [
    (one_item("2402200000", "300.00", 2, "Cigarettes"), "NOT_ON_POSITIVE_LIST"),
    (one_item("9999999999", "50.00", 1, "Unknown"), "NOT_ON_POSITIVE_LIST"),
    (one_item("0106190090", "200.00", 1, "Live mammal"), "PROHIBITED_GOODS"),
    (one_item("4202210090", "2000.00", 3, "Handbags"), "OVER_SINGLE_LIMIT"),
])
def test_goods_and_single_limit_rejections(api, parties, items, reason):
    body = api.submit_import(parties, items=items, freight="0.00", discount="0.00", tax_total="0.00")
    view = api.wait_customs(parties.platform, body["order_no"])
    assert view["customs"]["status"] == "rejected"
    assert reason in reason_codes(view)


def test_dutiable_value_exactly_5000_is_within_the_single_limit(api, parties):
    body = api.submit_import(parties, items=one_item("9102110000", "4990.00", name="Watch"), freight="20.00",
                             discount="10.00", tax_total="0.00")
    assert api.wait_customs(parties.platform, body["order_no"])["customs"]["status"] == "released"
    over = api.submit_import(parties, items=[*one_item("9102110000", "4990.00", name="Watch"),
                                             {**ITEM, "item_no": "SKU-2", "quantity": 1, "unit_price": "0.01"}],
                             freight="20.00", discount="10.00", tax_total="0.00")
    view = api.wait_customs(parties.platform, over["order_no"])
    assert reason_codes(view) == {"OVER_SINGLE_LIMIT"}


def test_a_single_indivisible_item_over_5000_is_released_at_general_trade(api, parties):
    body = api.submit_import(parties, items=one_item("4202210090", "6000.00", name="Handbag"), freight="0.00",
                             discount="0.00", tax_total="1458.00")
    view = api.wait_customs(parties.platform, body["order_no"])
    assert view["customs"]["status"] == "released"


def test_the_annual_limit_counts_released_orders_and_allows_exactly_26000(api, parties):
    buyer = new_resident_id("19850101")
    for _ in range(5):  # 5 x 5,000.00
        body = api.submit_import(parties, buyer_id=buyer, items=one_item("9102110000", "5000.00", name="Watch"),
                                 freight="0.00", discount="0.00", tax_total="0.00")
        assert api.wait_customs(parties.platform, body["order_no"])["customs"]["status"] == "released"
    exactly = api.submit_import(parties, buyer_id=buyer, items=one_item("9102110000", "1000.00", name="Watch"),
                                freight="0.00", discount="0.00", tax_total="0.00")
    assert api.wait_customs(parties.platform, exactly["order_no"])["customs"]["status"] == "released"
    over = api.submit_import(parties, buyer_id=buyer, items=one_item("3304990099", "0.01", name="Sample"),
                             freight="0.00", discount="0.00", tax_total="0.00")
    view = api.wait_customs(parties.platform, over["order_no"])
    assert view["customs"]["status"] == "rejected" and reason_codes(view) == {"OVER_ANNUAL_LIMIT"}


def test_a_cancelled_order_gives_its_quota_back(api, parties):
    buyer = new_resident_id("19860202")
    held = order_body(parties.platform.code, parties.ecommerce.code, inspected_order_no(parties.platform.code),
                      buyer_id=buyer, items=one_item("4202210090", "20000.00", name="Handbag"), freight="0.00",
                      discount="0.00", tax_total="0.00")
    api.submit_import(parties, body=held)
    view = api.wait_customs(parties.platform, held["order_no"])
    assert view["customs"]["status"] == "inspection"  # general trade, counted toward the year: 20,000
    blocked = api.submit_import(parties, buyer_id=buyer, items=one_item("4202210090", "6001.00", name="Handbag"),
                                freight="0.00", discount="0.00", tax_total="0.00")
    assert reason_codes(api.wait_customs(parties.platform, blocked["order_no"])) == {"OVER_ANNUAL_LIMIT"}
    r = api.http.delete(f"/v1/orders/{parties.platform.code}/{held['order_no']}", headers=parties.platform.auth)
    assert r.status_code == 202
    wait_for(lambda: api.status(parties.platform, held["order_no"])["customs"]["status"] == "cancelled")
    fits = api.submit_import(parties, buyer_id=buyer, items=one_item("4202210090", "6001.00", name="Handbag"),
                             freight="0.00", discount="0.00", tax_total="0.00")
    assert api.wait_customs(parties.platform, fits["order_no"])["customs"]["status"] == "released"


def test_a_missing_document_times_out(api, parties):
    body = order_body(parties.platform.code, parties.ecommerce.code, released_order_no(parties.platform.code))
    assert api.order(parties.platform, body).status_code == 202
    assert api.payment(parties.payment, payment_body(parties.payment.code, body)).status_code == 202
    view = api.wait_customs(parties.platform, body["order_no"], timeout=120)
    assert view["customs"]["status"] == "rejected" and reason_codes(view) == {"DOCUMENT_TIMEOUT"}
    assert view["documents"]["waybill"] == "missing"


def test_selected_parcels_wait_for_the_inspector(api, parties):
    passed = api.submit_import(parties, order_no=inspected_order_no(parties.platform.code))
    failed = api.submit_import(parties, order_no=inspected_order_no(parties.platform.code))
    customs = api.agency("customs")
    for body, result, final in ((passed, "pass", "released"), (failed, "fail", "rejected")):
        view = api.wait_customs(parties.platform, body["order_no"])
        assert view["customs"]["status"] == "inspection" and view["customs"]["channel"] == "red"
        assert reason_codes(view) == {"SELECTED_FOR_INSPECTION"}
        r = customs.post(f"/v1/inspections/{parties.platform.code}/{body['order_no']}", json={"result": result, "note": "checked"})
        assert r.status_code in (200, 202), r.text
        wait_for(lambda: api.status(parties.platform, body["order_no"])["customs"]["status"] == final)
    again = customs.post(f"/v1/inspections/{parties.platform.code}/{passed['order_no']}", json={"result": "fail"})
    assert again.status_code == 409
    assert customs.post(f"/v1/inspections/{parties.platform.code}/NOPE", json={"result": "pass"}).status_code == 404
    assert customs.post(f"/v1/inspections/{parties.platform.code}/{passed['order_no']}", json={"result": "maybe"}).status_code == 422
    outsider = customs.post(f"/v1/inspections/{parties.platform.code}/{passed['order_no']}", json={"result": "pass"},
                            headers={"Authorization": "Bearer not-the-operator"})
    assert outsider.status_code == 401


def test_an_untrustworthy_seller_is_always_inspected(api):
    from tests.e2e.conftest import Parties

    p = Parties(api.register(["platform"]), api.register(["ecommerce"], "untrustworthy"), api.register(["payment"]),
                api.register(["logistics"]))
    body = api.submit_import(p, order_no=released_order_no(p.platform.code))
    view = api.wait_customs(p.platform, body["order_no"])
    assert view["customs"]["status"] == "inspection" and view["customs"]["channel"] == "red"


def test_exports_need_the_order_and_the_waybill_only_and_are_consolidated_monthly(api, parties):
    body = order_body(parties.platform.code, parties.ecommerce.code, released_order_no(parties.platform.code),
                      direction="export", destination_country="DE", tax_total="0.00", discount="0.00",
                      items=[{**ITEM, "hs_code": "6109100022", "name": "T-shirt", "quantity": 3, "unit_price": "40.00",
                              "origin_country": "CN", "legal_quantities": [{"quantity": "3", "unit": "piece"},
                                                                           {"quantity": "0.45", "unit": "kg"}]}])
    assert api.order(parties.platform, body).status_code == 202
    waybill = waybill_body(parties.logistics.code, body)
    del waybill["consignee"]  # spec 1.1 §7.5: an export order's waybill (CEB505) may name none
    assert api.waybill(parties.logistics, waybill).status_code == 202
    view = api.wait_customs(parties.platform, body["order_no"])
    assert view["customs"]["status"] == "released" and view["documents"]["payment"] == "not_required"
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    declarations = api.agency("customs").get("/v1/declarations", params={"month": month})
    assert declarations.status_code == 200
    mine = [d for d in declarations.json()["declarations"] if d["ecommerce_code"] == parties.ecommerce.code]
    assert mine and mine[0]["hs_code"] == "6109100022" and mine[0]["destination_country"] == "DE"
    assert mine[0]["value"] == "120.00" and mine[0]["parcel_count"] == 1
    assert mine[0]["legal_quantities"] == [{"position": 1, "unit": "piece", "quantity": "3", "parcel_count": 1},
                                           {"position": 2, "unit": "kg", "quantity": "0.45", "parcel_count": 1}]
    assert mine[0]["legal_quantities_status"] == "complete"
    assert api.agency("customs").get("/v1/declarations", params={"month": "2026-13"}).status_code == 422


def test_exports_of_prohibited_goods_are_rejected_and_b2b_exports_released(api, parties):
    arms = order_body(parties.platform.code, parties.ecommerce.code, released_order_no(parties.platform.code),
                      direction="export", destination_country="US", tax_total="0.00", discount="0.00",
                      items=one_item("9304000000", "100.00", name="Air gun"))
    b2b = order_body(parties.platform.code, parties.ecommerce.code, released_order_no(parties.platform.code),
                     direction="export", trade_mode="9710", destination_country="MY", tax_total="0.00",
                     discount="0.00", items=one_item("8509400090", "300.00", 200, name="Mixer"))
    for body in (arms, b2b):
        assert api.order(parties.platform, body).status_code == 202
        assert api.waybill(parties.logistics, waybill_body(parties.logistics.code, body)).status_code == 202
    assert reason_codes(api.wait_customs(parties.platform, arms["order_no"])) == {"PROHIBITED_GOODS"}
    assert api.wait_customs(parties.platform, b2b["order_no"])["customs"]["status"] == "released"


def test_a_rejected_order_can_be_corrected_and_a_released_one_cannot(api, parties):
    body = order_body(parties.platform.code, parties.ecommerce.code, released_order_no(parties.platform.code))
    payment = payment_body(parties.payment.code, body, amount="437.50")  # the platform forgot a discount
    api.submit_import(parties, body=body, payment=payment)
    assert reason_codes(api.wait_customs(parties.platform, body["order_no"])) == {"AMOUNT_MISMATCH"}
    corrected = {**body, "discount": "20.00", "actual_paid": "437.50"}
    url = f"/v1/orders/{parties.platform.code}/{body['order_no']}"
    r = api.http.put(url, json=corrected, headers=parties.platform.auth)
    assert r.status_code == 202, r.text
    view = wait_for(lambda: (v := api.status(parties.platform, body["order_no"]))["customs"]["status"] == "released" and v)
    assert view["customs"]["reasons"] == [] and view["version"] == 2
    # the correction replaced the rejected version's not_applicable with one assessment of version 2
    tax = wait_for(lambda: (t := api.status(parties.platform, body["order_no"])["tax"])["status"] == "assessed" and t)
    assert (tax["dutiable_value"], tax["vat"], tax["consumption_tax"], tax["total"]) == ("352.00", "37.68", "43.48", "81.16")
    assessment = api.agency("tax").get(f"/v1/assessments/{parties.platform.code}/{body['order_no']}").json()
    assert assessment["order_version"] == 2 and assessment["status"] == "assessed"
    assert api.http.put(url, json=corrected, headers=parties.platform.auth).status_code == 200  # same again
    assert api.http.put(url, json={**corrected, "tax_total": "86.50", "actual_paid": "438.50"},
                        headers=parties.platform.auth).status_code == 409
    assert api.http.delete(url, headers=parties.platform.auth).status_code == 409
    other = api.register(["platform"])
    assert api.http.put(url, json=corrected, headers=other.auth).status_code == 403


def test_cancelling_a_pending_order(api, parties):
    body = order_body(parties.platform.code, parties.ecommerce.code, unique("ORD"))
    assert api.order(parties.platform, body).status_code == 202
    url = f"/v1/orders/{parties.platform.code}/{body['order_no']}"
    assert api.http.delete(url, headers=parties.platform.auth).status_code == 202
    assert api.http.delete(url, headers=parties.platform.auth).status_code == 200
    assert api.status(parties.platform, body["order_no"])["customs"]["status"] == "cancelled"
    api.payment(parties.payment, payment_body(parties.payment.code, body))
    api.waybill(parties.logistics, waybill_body(parties.logistics.code, body))
    view = wait_for(lambda: (v := api.status(parties.platform, body["order_no"]))["tax"]["status"] == "not_applicable" and v)
    assert view["customs"]["status"] == "cancelled"
    assert api.http.delete(f"/v1/orders/{parties.platform.code}/NOPE", headers=parties.platform.auth).status_code == 404


def test_a_party_customs_never_heard_of_is_rejected_at_the_timeout(api, mesh, parties):
    """Only reachable around the gateway (which refuses unregistered parties with 422): documents
    produced straight onto the topics, naming a seller that never registered."""
    import asyncio
    from datetime import datetime, timezone

    from aiokafka import AIOKafkaProducer

    from contracts.identifiers import mask_id_number
    from contracts.v1.events import Order, OrderSubmitted, Payment, PaymentSubmitted, SealedPerson, Waybill, WaybillSubmitted
    from contracts.v2.events import OrderSubmittedV2
    from shared.outbox import outbox_row
    from shared.sealing import seal
    from tests.support import new_uscc

    body = order_body(parties.platform.code, new_uscc(), released_order_no(parties.platform.code))
    buyer = body["buyer"]
    sealed = SealedPerson(name=buyer["name"], id_type="resident_id", id_number_masked=mask_id_number(buyer["id_number"]),
                          id_number_sealed=seal(buyer["id_number"]))
    now = datetime.now(timezone.utc)
    order = OrderSubmitted(action="new", version=1, submitted_at=now, order=Order(**{**body, "buyer": sealed}))
    payment = payment_body(parties.payment.code, body)
    waybill = waybill_body(parties.logistics.code, body)
    key = f"{parties.platform.code}:{body['order_no']}"
    events = [OrderSubmittedV2.from_v1(order, "CN", "CN"),
              PaymentSubmitted(submitted_at=now, payment=Payment(**{**payment, "payer": sealed})),
              WaybillSubmitted(submitted_at=now, waybill=Waybill(**waybill))]

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=mesh.bootstrap)
        await producer.start()
        try:
            for event in events:
                row = outbox_row(event, "gateway", key)
                headers = [(k, str(v).encode()) for k, v in __import__("json").loads(row["headers"]).items()]
                await producer.send_and_wait(row["topic"], row["value"], key=row["key"].encode(), headers=headers)
        finally:
            await producer.stop()

    asyncio.run(produce())
    customs = api.agency("customs")
    decided = wait_for(lambda: (r := customs.get(f"/v1/orders/{parties.platform.code}/{body['order_no']}")).status_code == 200
                       and r.json()["status"] != "pending" and r.json(), timeout=120, what="the timeout decision")
    assert decided["status"] == "rejected"
    assert "PARTY_NOT_REGISTERED" in {r["code"] for r in decided["reasons"]}
