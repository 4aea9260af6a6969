"""An order and its list (or a waybill and its list) sent by different integrators, one naming the parties by
their 10-character customs codes and the other by their USCCs (spec §7.5: "a CEB record may name a party by
either code"), are one parcel: the completion compares enterprises, not spellings. Found by the end-to-end
test (tests/e2e/test_ceb.py), where the list was refused with -621001 "the list names order <USCC>/…, not
<customs code>/…"."""
from __future__ import annotations

import pytest

from services.gateway.ceb.mapping import complete_order, complete_waybill
from services.gateway.ceb.messages import parse_message
from tests.support import new_uscc, order_body, waybill_body
from tooling.ceb import writer

PLATFORM, SELLER, CARRIER = new_uscc(), new_uscc(), new_uscc()
CUSTOMS = {PLATFORM: "3301960001", SELLER: "3301960002", CARRIER: "3301960003"}
LOOKUP = {**{c: u for u, c in CUSTOMS.items()}, **{u: u for u in CUSTOMS}}


def record(xml: bytes):
    (parsed,) = parse_message(xml).records
    assert parsed.ok, parsed.problems
    return parsed.record


@pytest.mark.parametrize("order_by_customs_code, list_by_customs_code", [(True, False), (False, True)])
def test_an_import_order_and_its_list_naming_the_platform_differently(order_by_customs_code, list_by_customs_code):
    order = order_body(PLATFORM, SELLER, "MIXED-1")
    waybill = waybill_body(CARRIER, order)
    o = record(writer.import_order(order, cop_code=PLATFORM, party_codes=CUSTOMS if order_by_customs_code else None))
    listed = record(writer.import_list(order, waybill, cop_code=SELLER,
                                       party_codes=CUSTOMS if list_by_customs_code else None))
    done = complete_order(o, listed, LOOKUP)
    assert done.problems == [] and done.missing == []
    assert (done.body["platform_code"], done.body["ecommerce_code"]) == (PLATFORM, SELLER)
    w = record(writer.import_waybill(waybill, cop_code=CARRIER, party_codes=None if list_by_customs_code else CUSTOMS))
    done = complete_waybill(w, listed, LOOKUP)
    assert done.problems == [] and done.body["logistics_code"] == CARRIER and done.body["platform_code"] == PLATFORM


def test_a_list_of_another_platform_is_still_refused():
    order = order_body(PLATFORM, SELLER, "MIXED-2")
    other = new_uscc()
    o = record(writer.import_order(order, cop_code=PLATFORM, party_codes=CUSTOMS))
    theirs = {**order, "platform_code": other}
    listed = record(writer.import_list(theirs, waybill_body(CARRIER, theirs), cop_code=SELLER))
    assert [p.element for p in complete_order(o, listed, LOOKUP).problems] == ["InventoryHead/orderNo"]
