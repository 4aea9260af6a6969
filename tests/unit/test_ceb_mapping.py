"""CEB records → §4 bodies (spec §7.5), checked by our own REST models (contracts/v1/documents.py).

Customs' samples are specimens, not consistent data: where a sample contradicts itself (a line total that
is not qty × price, an order and a list naming different orders, placeholder codes such as "aaa"), the test
first shows that the mapping reports exactly that defect, naming our field and the XML element, and then
maps the sample with the defect corrected (`dataclasses.replace`, each correction named) to a body the REST
model accepts. No registration is involved: model validation only.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from contracts.v1.documents import EnterpriseRegistration, OrderIn, PaymentIn, WaybillIn
from services.gateway.ceb import codes
from services.gateway.ceb.mapping import (
    china_time,
    complete_order,
    complete_waybill,
    intent,
    map_order,
    map_payment,
    map_waybill,
)
from services.gateway.ceb.messages import CHINA_TIME, parse_message

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ceb"


def records(name: str) -> list:
    path = next(FIXTURES.glob(f"*/{name}Message.xml"))
    return [r.record for r in parse_message(path.read_bytes()).records]


def problems(mapped) -> set[tuple[str, str]]:
    return {(p.field, p.element) for p in mapped.problems}


# --- conversions ------------------------------------------------------------------------------------


def test_china_time_is_rfc3339_plus_8():
    assert china_time(datetime(2016, 3, 15, 15, 35, 55, tzinfo=CHINA_TIME)) == "2016-03-15T15:35:55+08:00"


def test_code_tables():
    assert codes.CURRENCIES["142"] == "CNY" and codes.CURRENCIES["502"] == "USD"
    assert codes.COUNTRIES["116"] == "JP" and codes.COUNTRIES["502"] == "US"
    assert codes.UNITS["007"] == "piece" and codes.UNITS["035"] == "kg"
    assert all(len(v) == 3 and v.isupper() for v in codes.CURRENCIES.values())
    assert all(len(v) == 2 and v.isupper() for v in codes.COUNTRIES.values())


def _payment(amount: str, currency: str = "142"):
    head = records("CEB411")[0].head
    return replace(records("CEB411")[0], head=replace(head, amountPaid=Decimal(amount), currency=currency))


def test_zeros_beyond_the_second_decimal_are_accepted():
    mapped = map_payment(_payment("13.89000"))
    assert mapped.body["amount"] == "13.89" and not mapped.problems


def test_a_non_zero_third_decimal_is_refused_not_rounded():
    mapped = map_payment(_payment("13.89100"))
    assert problems(mapped) == {("amount", "PaymentHead/amountPaid")}
    assert mapped.body["amount"] is None


def test_usd_and_an_unknown_currency():
    assert map_payment(_payment("1", "502")).body["currency"] == "USD"
    mapped = map_payment(_payment("1", "999"))
    assert problems(mapped) == {("currency", "PaymentHead/currency")}


# --- import: order + list -----------------------------------------------------------------------------


def _import_order_and_list():
    order, listed = records("CEB311")[0], records("CEB621")[0]
    return order, listed


def test_import_sample_defects_are_reported_with_field_and_element():
    order, listed = _import_order_and_list()
    mapped = complete_order(order, listed)
    assert problems(mapped) == {
        ("order_no", "InventoryHead/orderNo"),  # the samples' list names another order
        ("items[1].unit_price", "OrderList[2]/totalPrice"),  # 200 × 10 is not 12000
    }
    assert not mapped.complete


def _corrected_import():
    order, listed = _import_order_and_list()
    # Corrections: the order's second line costs 60 (its list line and goodsValue say so); the list is
    # this order's (same orderNo and platform).
    order = replace(order, lines=[order.lines[0], replace(order.lines[1], price=Decimal("60"))])
    listed = replace(listed, head=replace(listed.head, orderNo=order.head.orderNo, ebpCode=order.head.ebpCode))
    return order, listed


def test_import_order_completed_by_its_list_is_a_valid_order():
    order, listed = _corrected_import()
    mapped = complete_order(order, listed)
    assert mapped.complete, (mapped.missing, mapped.problems)
    body = OrderIn.model_validate(mapped.body)  # the REST model accepts it as it stands
    assert body.trade_mode == "9610" and body.direction == "import"
    assert [i.hs_code for i in body.items] == ["8541401000", "8541401000"]
    assert [i.origin_country for i in body.items] == ["JP", "JP"]
    assert body.actual_paid == Decimal("19050.00")
    assert body.payment_code == "1105910159" and body.payment_transaction_id == "20160001634226001"
    assert body.logistics_code == "1101180326"  # the waybill the list names
    assert body.buyer.id_type == "resident_id"


def test_import_order_alone_says_what_is_missing():
    order, _ = _corrected_import()
    mapped = map_order(order)
    assert mapped.missing == ["items[0].hs_code", "items[1].hs_code", "trade_mode"]
    assert not mapped.problems and not mapped.complete
    with pytest.raises(ValidationError):
        OrderIn.model_validate(mapped.body)


def test_nothing_is_dropped_legal_quantities_gmodel_bill_numbers_agent():
    order, listed = _corrected_import()
    extras = complete_order(order, listed).extras
    first = extras["items"][0]
    assert (first["list.qty1"], first["list.unit1"], first["list.qty2"], first["list.unit2"]) == ("200", "007", "300", "035")
    assert first["gmodel"] == "33mm" and first["list.gmodel"] == "44mm" and first["unit_code"] == "007"
    assert extras["list"]["billNo"] == "B00024204007" and extras["list"]["agentCode"] == "1105910159"
    assert extras["list"]["trafNo"] == "MH730" and extras["list"]["voyageNo"] == "BJ20160308"
    assert extras["head"]["buyerRegNo"] == "ID20160001" and extras["head"]["consigneeDistrict"] == "072750"


def test_a_list_without_a_line_for_an_order_line():
    order, listed = _corrected_import()
    listed = replace(listed, lines=listed.lines[:1])
    assert ("items[1].hs_code", "InventoryList(gnum=2)") in problems(complete_order(order, listed))


def test_party_codes_through_a_lookup():
    """CEB names parties by the 10-character customs code; our registrations of Chinese enterprises are
    by USCC (18 characters, check digit: EnterpriseRegistration refuses the customs code). The documents
    themselves take any 1-32 character code, so the route resolves a customs code to the registered USCC
    (spec §7.5: registrations may carry `customs_code`) and passes the lookup in."""
    with pytest.raises(ValidationError):
        EnterpriseRegistration(code="1105910159", name="x", roles=["platform"])
    lookup = {"1105910159": "91310115MA1K4B2C3J", "1101180326": "91330100MA27U8AA1U"}
    order, listed = _corrected_import()
    body = OrderIn.model_validate(complete_order(order, listed, party=lookup).body)
    assert (body.platform_code, body.ecommerce_code, body.payment_code, body.logistics_code) == (
        "91310115MA1K4B2C3J", "91310115MA1K4B2C3J", "91310115MA1K4B2C3J", "91330100MA27U8AA1U")
    # a callable works too, and an unknown code passes through unchanged (the registry then refuses it)
    body = complete_order(order, listed, party=lambda c: lookup.get(c, c)).body
    assert body["platform_code"] == "91310115MA1K4B2C3J"


# --- payment, waybill ------------------------------------------------------------------------------------


def test_import_payment_is_a_valid_payment():
    for record in records("CEB411"):
        mapped = map_payment(record)
        assert mapped.complete
        PaymentIn.model_validate(mapped.body)
    mapped = map_payment(records("CEB411")[0])
    body = PaymentIn.model_validate(mapped.body)
    assert body.payment_no == "P0242250007" and body.payment_code == "1101110323"
    assert body.amount == Decimal("19050.00") and body.currency == "CNY"
    assert mapped.body["paid_at"] == "2016-03-15T15:35:55+08:00"
    assert mapped.extras["head"]["telephone"] == "13800000002"


def test_import_waybill_needs_the_platform_from_the_list():
    waybill = records("CEB511")[0]
    alone = map_waybill(waybill)
    assert alone.missing == ["platform_code"] and not alone.problems
    _, listed = _corrected_import()  # the list names this waybill (L201603081138007)
    mapped = complete_waybill(waybill, listed)
    assert mapped.complete, (mapped.missing, mapped.problems)
    body = WaybillIn.model_validate(mapped.body)
    assert body.platform_code == "1105910159"  # the list's ebpCode
    assert body.gross_weight_kg == Decimal("4000") and body.package_count == 6000
    assert mapped.extras["head"]["billNo"] == "TY201603081344007"


# --- export: order + list, waybill ------------------------------------------------------------------------


def test_export_sample_defects_are_reported():
    order, listed = records("CEB303")[0], records("CEB603")[0]
    found = problems(complete_order(order, listed))
    assert found == {
        ("items[0].unit", "OrderList[1]/unit"),  # "aaa"
        ("currency", "OrderList[1]/currency"),  # "aaa"
        ("items", "OrderHead/goodsValue"),  # 12345678912345.12345 is not 100 × 20
        ("actual_paid", "OrderHead/goodsValue"),  # and has non-zero decimals beyond the second
        ("trade_mode", "InventoryHead/tradeMode"),  # "0101" is general trade, not 9610/1210
        ("destination_country", "InventoryHead/country"),  # "001"
    }


def _corrected_export():
    order, listed = records("CEB303")[0], records("CEB603")[0]
    order = replace(order, head=replace(order.head, goodsValue=Decimal("2000")),
                    lines=[replace(order.lines[0], unit="007", currency="142")])
    listed = replace(listed, head=replace(listed.head, tradeMode="9610", country="502"))
    return order, listed


def test_export_order_completed_by_its_list_is_a_valid_order():
    order, listed = _corrected_export()
    alone = map_order(order)
    assert alone.missing == ["items[0].hs_code", "trade_mode", "destination_country"]
    mapped = complete_order(order, listed)
    assert mapped.complete, (mapped.missing, mapped.problems)
    body = OrderIn.model_validate(mapped.body)
    assert body.direction == "export" and body.destination_country == "US" and body.trade_mode == "9610"
    assert body.actual_paid == Decimal("2000.00")  # goodsValue + freight: an export order has no paid amount
    assert body.items[0].origin_country == "CN"
    assert mapped.extras["items"][0]["origin_country_assumed"]
    assert mapped.extras["list"]["POD"] == "002"


def test_export_waybill_names_no_order_and_no_consignee():
    waybill = records("CEB505")[0]
    assert map_waybill(waybill).missing == ["platform_code", "order_no", "consignee"]
    _, listed = _corrected_export()
    mapped = complete_waybill(waybill, listed)
    assert mapped.body["order_no"] == "order2018050711340001" and mapped.body["platform_code"] == "1105910159"
    assert mapped.missing == ["consignee"]  # no CEB export message carries one (docs/ceb.md)
    body = WaybillIn.model_validate(mapped.body | {"consignee": {"name": "n", "phone": "1", "address": "a",
                                                                  "country": "US"}})
    assert body.gross_weight_kg == Decimal("50.5")


def test_a_list_for_another_waybill_is_a_problem():
    waybill = records("CEB511")[0]
    _, listed = _corrected_import()
    listed = replace(listed, head=replace(listed.head, logisticsNo="OTHER"))
    assert ("waybill_no", "InventoryHead/logisticsNo") in problems(complete_waybill(waybill, listed))


def test_intent():
    head = records("CEB311")[0].head
    assert intent(head) == "new"
    assert intent(replace(head, appType="2")) == "correction"
    assert intent(replace(head, appType="3")) == "cancellation"
    assert intent(replace(head, appStatus="1")) == "draft"
    assert intent(replace(head, appType="9")) == "invalid"


def test_a_refusal_by_the_rest_model_names_the_xml_element():
    """The route validates mapped bodies with the REST models; their field names lead back to the element."""
    from contracts.v1.documents import FieldProblem
    from services.gateway.ceb.mapping import element_for

    order, listed = _corrected_import()
    body = complete_order(order, listed).body | {"actual_paid": "19049.00"}
    with pytest.raises(ValidationError) as e:
        OrderIn.model_validate(body)
    cause = e.value.errors()[0]["ctx"]["error"]
    assert isinstance(cause, FieldProblem) and cause.field == "actual_paid"
    assert element_for("order", "import", cause.field) == "OrderHead/acturalPaid"
    assert element_for("order", "export", "actual_paid") == "OrderHead/goodsValue"
    assert element_for("order", "import", "items[1].unit_price") == "OrderList[2]/price"
    assert element_for("order", "import", "items[0].hs_code") == "InventoryList[1]/gcode"
    assert element_for("payment", "import", "paid_at") == "PaymentHead/payTime"
    assert element_for("waybill", "export", "gross_weight_kg") == "Logistics/grossWeight"
    assert element_for("waybill", "import", "platform_code") == "InventoryHead/ebpCode"
