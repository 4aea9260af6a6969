"""The pure rules of spec §7.2 (who may file for whom): the gateway's decision for a payment or waybill
against its order's binding, customs' and FX's handling of a second document for an order."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from contracts.v1.documents import OrderIn, PlatformList
from services.customs.rules import second_document_action
from services.fx.rules import FxPayment, is_later_payment
from services.gateway.rules import bound_document_action
from tests.support import order_body

A1, A2, B1 = ("FIRM-A", "1"), ("FIRM-A", "2"), ("FIRM-B", "1")


@pytest.mark.parametrize("bound, key, changed, status, expected", [
    (None, A1, False, "pending", "new"),  # the first binds
    (None, A1, True, "pending", "conflict"),  # the key is stored for another order (or unbound): as before
    (A1, A2, False, "pending", "bound_elsewhere"),  # same firm, another number: one payment per order
    (B1, A1, False, "pending", "bound_elsewhere"),  # another firm
    (A1, A1, True, "pending", "correct"),
    (A1, A1, True, "inspection", "correct"),
    (A1, A1, True, "rejected", "correct"),
    (A1, A1, True, "released", "released"),  # §4.5: no correction after release
    (A1, A1, True, "cancelled", "cancelled"),
])
def test_the_gateway_binds_an_order_to_its_first_document(bound, key, changed, status, expected):
    assert bound_document_action(bound, key, changed, status) == expected


@pytest.mark.parametrize("held, arriving, changed, status, expected", [
    (None, A1, False, "pending", "accept"),
    (A1, B1, True, "pending", "ignore_other"),
    (A1, A2, True, "pending", "ignore_other"),
    (A1, A1, False, "pending", "same"),
    (A1, A1, True, "pending", "correct"),
    (A1, A1, True, "rejected", "keep_correction"),
    (A1, A1, True, "released", "same"),
])
def test_customs_keeps_the_bound_document_and_its_own_corrections(held, arriving, changed, status, expected):
    assert second_document_action(held, arriving, changed, status) == expected


def payment(firm: str, no: str, amount: str, minutes: int) -> FxPayment:
    t = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc) + timedelta(minutes=minutes)
    return FxPayment(payment_code=firm, payment_no=no, amount=Decimal(amount), currency="CNY", paid_at=t, submitted_at=t)


def test_fx_takes_the_first_payment_and_only_its_own_later_correction():
    bound = payment("FIRM-A", "1", "447.50", 5)
    assert is_later_payment(None, bound)
    assert not is_later_payment(bound, payment("FIRM-B", "9", "1500000.00", 9))
    assert not is_later_payment(bound, payment("FIRM-A", "2", "1500000.00", 9))
    assert is_later_payment(bound, payment("FIRM-A", "1", "440.00", 9))
    assert not is_later_payment(bound, payment("FIRM-A", "1", "440.00", 1))


def test_an_order_may_name_its_firms_and_a_transaction_needs_its_firm():
    body = order_body("P", "E", "O-1")
    assert OrderIn.model_validate({**body, "payment_code": "PAY", "payment_transaction_id": "TX",
                                   "logistics_code": "LOG"}).payment_transaction_id == "TX"
    with pytest.raises(ValueError, match="payment_code"):
        OrderIn.model_validate({**body, "payment_transaction_id": "TX"})


def test_a_platform_list_is_sorted_without_duplicates():
    assert PlatformList.model_validate({"platforms": ["B", "A", "B"]}).platforms == ["A", "B"]
