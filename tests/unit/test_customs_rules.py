"""Customs domain rules (domain rules §4, §5, §6, §10, §12), on the domain's worked examples."""
from __future__ import annotations

import hashlib
import itertools
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest

from contracts.v1.events import Order, Payment, Waybill
from services.customs.rules import (
    ANNUAL_LIMIT_CNY,
    SINGLE_LIMIT_CNY,
    Documents,
    Party,
    ReleasedExportLine,
    Verdict,
    consolidate_export_declarations,
    decide,
    document_timed_out,
    dutiable_value,
    dutiable_value_cny,
    exceeds_annual_limit,
    goods_findings,
    inspection_rate,
    missing_documents,
    negative_list_findings,
    selected_for_inspection,
    selection_fraction,
    single_limit,
    three_document_match,
)
from shared.reference import FxRates, MissingRate, fx_rates, hs_catalogue

PLATFORM, ECOMMERCE, PAYMENT_FIRM, LOGISTICS = "PLAT001", "EBC001", "PAY001", "LOG001"
ZHANG_SAN_ID = "110101199003070011"
ZHANG_SAN_MASKED = "1101**********0011"
LI_SI_ID = "11010519491231002X"
LI_SI_MASKED = "1101**********002X"
DAY = date(2026, 3, 15)
BASE = Decimal("0.03")
FACE_CREAM, SHOES, HANDBAG = "3304990099", "6403990090", "4202210090"
CIGARETTES, LIVE_MAMMALS, UNKNOWN_CODE = "2402200000", "0106190090", "9999999999"


def salt_not_selecting(order_no: str, rate: Decimal = Decimal("0.2")) -> str:
    """A salt under which the parcel falls outside any rate up to `rate`, so a test about findings
    is not disturbed by inspection selection (which has its own tests)."""
    for n in itertools.count():
        salt = f"salt-{n}"
        if selection_fraction(PLATFORM, order_no, salt) >= Fraction(rate):
            return salt
    raise AssertionError("unreachable")


# --- builders --------------------------------------------------------------------------------


def person(name: str = "Zhang San", masked: str = ZHANG_SAN_MASKED) -> dict:
    return {"name": name, "id_type": "resident_id", "id_number_masked": masked, "id_number_sealed": "x"}


def item(hs_code: str = FACE_CREAM, quantity: str = "2", unit_price: str = "180.00", n: int = 1) -> dict:
    return {
        "item_no": f"SKU-{n}",
        "name": f"goods {hs_code}",
        "hs_code": hs_code,
        "quantity": quantity,
        "unit": "piece",
        "unit_price": unit_price,
        "origin_country": "FR",
    }


def make_order(
    items: list[dict] | None = None,
    *,
    order_no: str = "ORD-1",
    direction: str = "import",
    trade_mode: str = "9610",
    currency: str = "CNY",
    freight: str = "12.00",
    insurance: str = "0",
    discount: str = "10.00",
    tax_total: str = "85.50",
    actual_paid: str | None = None,
) -> Order:
    items = items if items is not None else [item()]
    goods = sum(Decimal(i["quantity"]) * Decimal(i["unit_price"]) for i in items)
    paid = goods + Decimal(freight) + Decimal(insurance) - Decimal(discount) + Decimal(tax_total)
    body = {
        "order_no": order_no,
        "platform_code": PLATFORM,
        "ecommerce_code": ECOMMERCE,
        "direction": direction,
        "trade_mode": trade_mode,
        "currency": currency,
        "items": items,
        "freight": freight,
        "insurance": insurance,
        "discount": discount,
        "tax_total": tax_total,
        "actual_paid": actual_paid or f"{paid:.2f}",
    }
    if direction == "import":
        body["buyer"] = person()
    else:
        body["destination_country"] = "US"
    return Order.model_validate(body)


def make_payment(order: Order, **changes) -> Payment:
    body = {
        "payment_no": "PAY-1",
        "payment_code": PAYMENT_FIRM,
        "order_no": order.order_no,
        "platform_code": order.platform_code,
        "amount": str(order.actual_paid),
        "currency": order.currency,
        "payer": person(),
        "paid_at": "2026-03-15T10:00:00+08:00",
    } | changes
    return Payment.model_validate(body)


def make_waybill(order: Order, **changes) -> Waybill:
    body = {
        "waybill_no": "WB-1",
        "logistics_code": LOGISTICS,
        "order_no": order.order_no,
        "platform_code": order.platform_code,
        "freight": str(order.freight),
        "insured_fee": "0",
        "gross_weight_kg": "0.5",
        "package_count": 1,
        "consignee": {"name": "Zhang San", "phone": "13800000000", "address": "Beijing"},
    } | changes
    return Waybill.model_validate(body)


def complete(order: Order, payment: Payment | None = None, waybill: Waybill | None = None, **ids) -> Documents:
    if order.direction == "import":
        payment = payment or make_payment(order)
        ids = {"buyer_id_number": ZHANG_SAN_ID, "payer_id_number": ZHANG_SAN_ID} | ids
    return Documents(order=order, payment=payment, waybill=waybill or make_waybill(order), **ids)


def registry(**overrides: Party) -> dict[str, Party]:
    parties = {
        PLATFORM: Party(PLATFORM, frozenset({"platform"}), "general", "B"),
        ECOMMERCE: Party(ECOMMERCE, frozenset({"ecommerce"}), "general", "B"),
        PAYMENT_FIRM: Party(PAYMENT_FIRM, frozenset({"payment"}), "general", "A"),
        LOGISTICS: Party(LOGISTICS, frozenset({"logistics"}), "general", "A"),
    }
    parties.update(overrides)
    return parties


def run_decide(docs: Documents, parties=None, *, year_total_before=Decimal("0"), rates=None, salt=None, base=BASE):
    assert docs.order is not None
    return decide(
        docs,
        parties if parties is not None else registry(),
        hs_catalogue(),
        rates if rates is not None else fx_rates(),
        DAY,
        year_total_before,
        base,
        salt if salt is not None else salt_not_selecting(docs.order.order_no),
    )


def codes(reasons) -> list[str]:
    return [r.code for r in reasons]


# --- §4 three-document match: the worked example ---------------------------------------------


def test_worked_example_matches_and_is_released_at_retail():
    order = make_order()
    assert order.actual_paid == Decimal("447.50")
    docs = complete(order)

    assert missing_documents(docs) == []
    assert three_document_match(docs, registry()) == []
    assert negative_list_findings(docs, registry()) == []
    assert goods_findings(order, hs_catalogue()) == []
    assert dutiable_value(order) == Decimal("362.00")

    verdict = run_decide(docs)
    assert verdict == Verdict(
        status="released",
        channel="green",
        reasons=[],
        tax_mode="retail",
        dutiable_value_cny=Decimal("362.00"),
        quota_cny=Decimal("362.00"),
    )


def test_every_mismatch_is_reported_together():
    order = make_order()
    payment = make_payment(order, amount="447.00", payer=person("Li Si", LI_SI_MASKED))
    waybill = make_waybill(order, freight="15.00", logistics_code="LOG-UNKNOWN")
    docs = complete(order, payment, waybill, payer_id_number=LI_SI_ID)

    reasons = three_document_match(docs, registry())
    assert codes(reasons) == ["AMOUNT_MISMATCH", "IDENTITY_MISMATCH", "PARTY_NOT_REGISTERED"]
    amount, identity, party = (r.message for r in reasons)
    assert "payment amount 447.00 CNY differs from actual_paid 447.50 CNY" in amount
    assert "waybill freight 15.00 differs from order freight 12.00" in amount
    assert "payer id number 1101**********002X differs from buyer id number 1101**********0011" in identity
    assert "payer name differs from buyer name" in identity
    # Reasons travel on customs.decision.v1 to every agency and the platform: no names in them (spec §7.2).
    assert "Li Si" not in identity and "Zhang San" not in identity
    assert "logistics LOG-UNKNOWN is not registered" in party

    verdict = run_decide(docs)
    assert verdict.status == "rejected"
    assert verdict.channel is None
    assert verdict.tax_mode is None
    assert verdict.quota_cny == 0
    assert codes(verdict.reasons) == ["AMOUNT_MISMATCH", "IDENTITY_MISMATCH", "PARTY_NOT_REGISTERED"]


def test_full_identity_numbers_never_appear_in_messages():
    order = make_order()
    payment = make_payment(order, payer=person("Li Si", LI_SI_MASKED))
    docs = complete(order, payment, payer_id_number=LI_SI_ID)
    for reason in run_decide(docs).reasons:
        assert ZHANG_SAN_ID not in reason.message and LI_SI_ID not in reason.message


def test_order_mismatch_names_each_document_that_points_elsewhere():
    order = make_order()
    payment = make_payment(order, order_no="ORD-2")
    waybill = make_waybill(order, platform_code="PLAT999")
    reasons = three_document_match(complete(order, payment, waybill), registry())
    assert codes(reasons) == ["ORDER_MISMATCH"]
    assert "payment names order PLAT001:ORD-2" in reasons[0].message
    assert "waybill names order PLAT999:ORD-1" in reasons[0].message


def test_same_amount_in_another_currency_is_an_amount_mismatch():
    order = make_order()
    docs = complete(order, make_payment(order, currency="USD"))
    reasons = three_document_match(docs, registry())
    assert codes(reasons) == ["AMOUNT_MISMATCH"]
    assert reasons[0].message == "payment amount 447.50 USD differs from actual_paid 447.50 CNY"


def test_name_alone_differing_is_an_identity_mismatch():
    order = make_order()
    docs = complete(order, make_payment(order, payer=person("Zhang Shan")))
    assert codes(three_document_match(docs, registry())) == ["IDENTITY_MISMATCH"]


def test_id_number_alone_differing_is_an_identity_mismatch():
    docs = complete(make_order(), payer_id_number=LI_SI_ID)
    assert codes(three_document_match(docs, registry())) == ["IDENTITY_MISMATCH"]


def test_identity_that_customs_could_not_unseal_does_not_match():
    docs = complete(make_order(), payer_id_number=None)
    reasons = three_document_match(docs, registry())
    assert codes(reasons) == ["IDENTITY_MISMATCH"]
    assert "not available" in reasons[0].message


def test_resident_id_checksum_is_the_gateways_job_not_the_rules():
    # The gateway refuses invalid numbers with 422 before anything reaches customs; the rule only
    # compares the buyer's number with the payer's, so two equal numbers match whatever their checksum.
    not_a_valid_number = "110101199003070012"
    docs = complete(make_order(), buyer_id_number=not_a_valid_number, payer_id_number=not_a_valid_number)
    assert three_document_match(docs, registry()) == []


def test_party_lacking_its_role_is_not_registered():
    parties = registry(
        **{
            ECOMMERCE: Party(ECOMMERCE, frozenset({"platform"}), "general", "B"),
            PAYMENT_FIRM: Party(PAYMENT_FIRM, frozenset({"logistics"}), "general"),
        }
    )
    del parties[PLATFORM]
    reasons = three_document_match(complete(make_order()), parties)
    assert codes(reasons) == ["PARTY_NOT_REGISTERED"]
    message = reasons[0].message
    assert f"platform {PLATFORM} is not registered" in message
    assert f"ecommerce {ECOMMERCE} is not registered with the role ecommerce" in message
    assert f"payment {PAYMENT_FIRM} is not registered with the role payment" in message
    assert LOGISTICS not in message


def test_one_enterprise_may_hold_several_roles():
    both = Party(PLATFORM, frozenset({"platform", "ecommerce"}), "general", "A")
    order = make_order().model_copy(update={"ecommerce_code": PLATFORM})
    assert three_document_match(complete(order), registry(**{PLATFORM: both})) == []


# --- §4 documents in any order ---------------------------------------------------------------


@pytest.mark.parametrize("arrival", list(itertools.permutations(["order", "payment", "waybill"])))
def test_missing_documents_whatever_the_arrival_order(arrival):
    order = make_order()
    available = {"order": order, "payment": make_payment(order), "waybill": make_waybill(order)}
    held: dict = {"order": None, "payment": None, "waybill": None}
    assert missing_documents(Documents(**held)) == ["order", "payment", "waybill"]
    for arrived in arrival:
        held[arrived] = available[arrived]
        expected = [kind for kind in ("order", "payment", "waybill") if held[kind] is None]
        assert missing_documents(Documents(**held)) == expected


@pytest.mark.parametrize("trade_mode", ["9610", "9710", "9810"])
def test_exports_need_only_the_order_and_the_waybill(trade_mode):
    order = make_order(direction="export", trade_mode=trade_mode, tax_total="0")
    assert missing_documents(Documents(order, None, None)) == ["waybill"]
    assert missing_documents(Documents(order, None, make_waybill(order))) == []
    # Before the order arrives its direction is unknown: the parcel is incomplete either way.
    assert missing_documents(Documents(None, None, make_waybill(order))) == ["order", "payment"]


def test_export_skips_the_payment_checks():
    order = make_order(direction="export", tax_total="0")
    stray_payment = make_payment(order, amount="1.00", payment_code="PAY-UNKNOWN", order_no="OTHER")
    docs = Documents(order, stray_payment, make_waybill(order))
    assert three_document_match(docs, registry()) == []


def test_export_still_checks_the_waybill_and_parties():
    order = make_order(direction="export", tax_total="0")
    docs = Documents(order, None, make_waybill(order, freight="1.00", order_no="OTHER"))
    reasons = three_document_match(docs, registry(**{LOGISTICS: Party(LOGISTICS, frozenset(), "general")}))
    assert codes(reasons) == ["ORDER_MISMATCH", "AMOUNT_MISMATCH", "PARTY_NOT_REGISTERED"]


def test_export_released_without_quota_or_tax_mode():
    order = make_order(direction="export", tax_total="0")
    verdict = run_decide(Documents(order, None, make_waybill(order)))
    assert verdict == Verdict("released", "green", [], None, None, Decimal("0"))


def test_decide_refuses_incomplete_documents():
    order = make_order()
    with pytest.raises(ValueError, match="waybill"):
        run_decide(Documents(order, make_payment(order), None, ZHANG_SAN_ID, ZHANG_SAN_ID))


# --- §4 document timeout ---------------------------------------------------------------------


def test_document_timeout_boundary():
    first = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
    assert not document_timed_out(first, first + timedelta(hours=72) - timedelta(microseconds=1), Decimal("72"))
    assert document_timed_out(first, first + timedelta(hours=72), Decimal("72"))
    assert document_timed_out(first, first + timedelta(hours=72), 72.0)
    assert not document_timed_out(first, first + timedelta(minutes=29, seconds=59), 0.5)
    assert document_timed_out(first, first + timedelta(minutes=6), 0.1)
    # The same instant written in another offset is the same instant.
    beijing = timezone(timedelta(hours=8))
    assert document_timed_out(first, (first + timedelta(hours=72)).astimezone(beijing), Decimal("72"))


# --- §5 single-transaction limit -------------------------------------------------------------


def limit_order(items: list[dict], **kw) -> Order:
    return make_order(items, freight="0", discount="0", tax_total="0", **kw)


def test_exactly_5000_is_within_the_single_limit():
    order = limit_order([item(FACE_CREAM, "1", "3000.00", 1), item(SHOES, "1", "2000.00", 2)])
    assert dutiable_value_cny(order, fx_rates(), DAY) == SINGLE_LIMIT_CNY
    assert single_limit(order, Decimal("5000.00")) == ("retail", [])
    verdict = run_decide(complete(order))
    assert (verdict.status, verdict.tax_mode, verdict.quota_cny) == ("released", "retail", Decimal("5000.00"))


def test_5000_01_over_several_items_is_rejected():
    order = limit_order([item(FACE_CREAM, "1", "3000.01", 1), item(SHOES, "1", "2000.00", 2)])
    tax_mode, reasons = single_limit(order, Decimal("5000.01"))
    assert tax_mode is None
    assert codes(reasons) == ["OVER_SINGLE_LIMIT"]
    assert "5000.01" in reasons[0].message
    verdict = run_decide(complete(order))
    assert (verdict.status, codes(verdict.reasons), verdict.quota_cny) == ("rejected", ["OVER_SINGLE_LIMIT"], 0)
    assert verdict.dutiable_value_cny == Decimal("5000.01")


def test_single_indivisible_item_over_5000_goes_to_general_trade():
    order = limit_order([item(HANDBAG, "1", "6000.00")])  # domain §7 worked example 3
    assert single_limit(order, Decimal("6000.00")) == ("general_trade", [])
    verdict = run_decide(complete(order))
    assert (verdict.status, verdict.channel, verdict.tax_mode) == ("released", "green", "general_trade")
    assert verdict.quota_cny == Decimal("6000.00")  # it counts toward the annual total


def test_single_line_of_quantity_2_over_5000_is_rejected():
    order = limit_order([item(HANDBAG, "2", "2500.01")])
    assert codes(single_limit(order, Decimal("5000.02"))[1]) == ["OVER_SINGLE_LIMIT"]
    assert codes(run_decide(complete(order)).reasons) == ["OVER_SINGLE_LIMIT"]


def test_freight_insurance_and_discount_count_toward_the_single_limit():
    goods = [item(FACE_CREAM, "1", "4990.00", 1), item(SHOES, "1", "10.00", 2)]
    within = make_order(goods, freight="10.00", insurance="0", discount="10.00", tax_total="0")
    over = make_order(goods, freight="0", insurance="0.01", discount="0", tax_total="0")
    assert dutiable_value(within) == Decimal("5000.00")
    assert dutiable_value(over) == Decimal("5000.01")
    assert single_limit(within, dutiable_value(within))[0] == "retail"
    assert single_limit(over, dutiable_value(over))[0] is None


def test_exports_have_no_single_limit():
    order = make_order([item(FACE_CREAM, "10", "1000.00")], direction="export", tax_total="0")
    assert single_limit(order, Decimal("10002.00")) == (None, [])
    assert run_decide(Documents(order, None, make_waybill(order))).status == "released"


# --- §5 annual limit -------------------------------------------------------------------------


def test_exceeds_annual_limit_boundary():
    assert not exceeds_annual_limit(Decimal("25638.00"), Decimal("362.00"))
    assert exceeds_annual_limit(Decimal("25638.01"), Decimal("362.00"))
    assert not exceeds_annual_limit(Decimal("0"), ANNUAL_LIMIT_CNY)


def test_reaching_exactly_26000_is_allowed():
    verdict = run_decide(complete(make_order()), year_total_before=Decimal("25638.00"))
    assert (verdict.status, verdict.quota_cny) == ("released", Decimal("362.00"))


def test_one_cent_over_26000_is_rejected():
    verdict = run_decide(complete(make_order()), year_total_before=Decimal("25638.01"))
    assert verdict.status == "rejected"
    assert codes(verdict.reasons) == ["OVER_ANNUAL_LIMIT"]
    assert "25638.01 to 26000.01" in verdict.reasons[0].message
    assert verdict.quota_cny == 0


def test_general_trade_order_is_held_to_the_annual_limit_too():
    order = limit_order([item(HANDBAG, "1", "6000.00")])
    verdict = run_decide(complete(order), year_total_before=Decimal("20000.01"))
    assert codes(verdict.reasons) == ["OVER_ANNUAL_LIMIT"]


def test_annual_limit_is_only_checked_when_nothing_else_is_wrong():
    order = make_order()
    docs = complete(order, make_payment(order, amount="1.00"))
    verdict = run_decide(docs, year_total_before=Decimal("26000"))
    assert codes(verdict.reasons) == ["AMOUNT_MISMATCH"]


# --- §5 currency conversion ------------------------------------------------------------------


def test_non_cny_order_is_converted_at_the_days_rate():
    rates = FxRates(
        [
            (date(2026, 3, 1), "USD", Decimal("7.1000")),
            (date(2026, 3, 16), "USD", Decimal("9.0000")),  # after the day: not used
            (date(2026, 2, 1), "USD", Decimal("7.0700")),  # before the latest: not used
        ]
    )
    order = make_order([item(FACE_CREAM, "2", "25.00")], currency="USD", freight="2.00", discount="1.00")
    assert dutiable_value(order) == Decimal("51.00")
    assert dutiable_value_cny(order, rates, DAY) == Decimal("362.10")
    verdict = run_decide(complete(order), rates=rates)
    assert (verdict.status, verdict.dutiable_value_cny, verdict.quota_cny) == (
        "released",
        Decimal("362.10"),
        Decimal("362.10"),
    )


def test_conversion_is_rounded_half_up_to_the_cent():
    rates = FxRates([(date(2026, 1, 1), "USD", Decimal("7.1155"))])
    order = make_order([item(FACE_CREAM, "1", "10.10")], currency="USD", freight="0", discount="0")
    assert dutiable_value_cny(order, rates, DAY) == Decimal("71.87")  # 71.86655


def test_real_rates_on_a_day_without_its_own_row():
    # fx_rates.csv has rows on the first of each month; the 15th of March takes the 1st of March's.
    assert fx_rates().rate_on("USD", DAY) == (date(2026, 3, 1), Decimal("7.1000"))
    order = make_order([item(FACE_CREAM, "1", "704.00")], currency="USD", freight="0", discount="0")
    assert dutiable_value_cny(order, fx_rates(), DAY) == Decimal("4998.40")
    assert run_decide(complete(order)).tax_mode == "retail"


def test_conversion_can_push_an_order_over_the_single_limit():
    order = make_order(
        [item(FACE_CREAM, "1", "700.00"), item(SHOES, "1", "5.00", 2)], currency="USD", freight="0", discount="0"
    )
    assert dutiable_value_cny(order, fx_rates(), DAY) == Decimal("5005.50")
    assert codes(run_decide(complete(order)).reasons) == ["OVER_SINGLE_LIMIT"]


def test_currency_without_a_rate_is_not_guessed():
    order = make_order(currency="XAF")
    with pytest.raises(MissingRate):
        dutiable_value_cny(order, fx_rates(), DAY)


# --- §6 goods lists --------------------------------------------------------------------------


def test_import_goods_findings_one_reason_per_code_naming_the_items():
    order = limit_order(
        [
            item(FACE_CREAM, "1", "10.00", 1),
            item(CIGARETTES, "1", "10.00", 2),
            item(LIVE_MAMMALS, "1", "10.00", 3),
            item(UNKNOWN_CODE, "1", "10.00", 4),
        ]
    )
    reasons = goods_findings(order, hs_catalogue())
    assert codes(reasons) == ["PROHIBITED_GOODS", "NOT_ON_POSITIVE_LIST"]
    prohibited, off_list = reasons[0].message, reasons[1].message
    assert f"items[2] {LIVE_MAMMALS}" in prohibited
    assert f"items[1] {CIGARETTES}" in off_list and f"items[3] {UNKNOWN_CODE}" in off_list
    # A prohibited line is reported as prohibited, not once more as off the positive list.
    assert LIVE_MAMMALS not in off_list and "items[0]" not in prohibited + off_list

    verdict = run_decide(complete(order))
    assert verdict.status == "rejected"
    assert codes(verdict.reasons) == ["PROHIBITED_GOODS", "NOT_ON_POSITIVE_LIST"]


def test_unknown_code_is_not_on_the_positive_list_for_imports():
    reasons = goods_findings(limit_order([item(UNKNOWN_CODE, "1", "10.00")]), hs_catalogue())
    assert codes(reasons) == ["NOT_ON_POSITIVE_LIST"]
    assert "not in the HS catalogue" in reasons[0].message


def test_exports_of_unknown_or_off_list_codes_are_accepted():
    order = make_order(
        [item(UNKNOWN_CODE, "1", "10.00", 1), item(CIGARETTES, "1", "10.00", 2)], direction="export", tax_total="0"
    )
    assert goods_findings(order, hs_catalogue()) == []
    assert run_decide(Documents(order, None, make_waybill(order))).status == "released"


def test_exports_of_prohibited_codes_are_rejected():
    order = make_order(
        [item(FACE_CREAM, "1", "10.00", 1), item("9303200000", "1", "10.00", 2)], direction="export", tax_total="0"
    )
    reasons = goods_findings(order, hs_catalogue())
    assert codes(reasons) == ["PROHIBITED_GOODS"]
    assert "items[1] 9303200000" in reasons[0].message
    verdict = run_decide(Documents(order, None, make_waybill(order)))
    assert (verdict.status, codes(verdict.reasons), verdict.quota_cny) == ("rejected", ["PROHIBITED_GOODS"], 0)


# --- §9 negative list ------------------------------------------------------------------------


def test_negative_listed_parties_are_all_named():
    parties = registry(
        **{
            ECOMMERCE: Party(ECOMMERCE, frozenset({"ecommerce"}), "general", "D", negative_listed=True),
            LOGISTICS: Party(LOGISTICS, frozenset({"logistics"}), "general", "D", negative_listed=True),
        }
    )
    docs = complete(make_order())
    reasons = negative_list_findings(docs, parties)
    assert codes(reasons) == ["PARTY_ON_NEGATIVE_LIST"]
    assert f"ecommerce {ECOMMERCE}" in reasons[0].message and f"logistics {LOGISTICS}" in reasons[0].message
    verdict = run_decide(docs, parties)
    assert (verdict.status, codes(verdict.reasons)) == ("rejected", ["PARTY_ON_NEGATIVE_LIST"])


def test_negative_listed_payment_firm_rejects_an_import():
    parties = registry(**{PAYMENT_FIRM: Party(PAYMENT_FIRM, frozenset({"payment"}), "general", negative_listed=True)})
    assert codes(negative_list_findings(complete(make_order()), parties)) == ["PARTY_ON_NEGATIVE_LIST"]


def test_no_negative_list_finding_for_clean_parties():
    assert negative_list_findings(complete(make_order()), registry()) == []


# --- §10 inspection --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("customs_credit", "grade", "multiple_of_base"),
    [
        ("general", None, Decimal("1")),
        ("general", "A", Decimal("1")),
        ("general", "B", Decimal("1")),
        ("general", "C", Decimal("4")),
        ("general", "D", None),
        ("advanced", None, Decimal("0.2")),
        ("advanced", "A", Decimal("0.2")),
        ("advanced", "B", Decimal("0.2")),
        ("advanced", "C", Decimal("4")),  # the worse of the two: a falling grade beats the category
        ("advanced", "D", None),
        ("untrustworthy", None, None),
        ("untrustworthy", "A", None),
        ("untrustworthy", "B", None),
        ("untrustworthy", "C", None),
        ("untrustworthy", "D", None),
    ],
)
def test_inspection_rate_by_category_and_grade(customs_credit, grade, multiple_of_base):
    expected = Decimal("1") if multiple_of_base is None else multiple_of_base * BASE
    assert inspection_rate(customs_credit, grade, BASE) == expected


def test_inspection_rate_values_for_the_default_base():
    assert inspection_rate("general", "B", Decimal("0.03")) == Decimal("0.03")
    assert inspection_rate("general", "C", Decimal("0.03")) == Decimal("0.12")
    assert inspection_rate("advanced", "A", Decimal("0.03")) == Decimal("0.006")


def test_inspection_rate_never_exceeds_one():
    assert inspection_rate("general", "C", Decimal("0.3")) == Decimal("1")


def test_inspection_rate_refuses_unknown_categories():
    with pytest.raises(ValueError):
        inspection_rate("excellent", "A", BASE)
    with pytest.raises(ValueError):
        inspection_rate("general", "E", BASE)


def expected_fraction(platform_code: str, order_no: str, salt: str) -> Fraction:
    digest = hashlib.sha256(f"{platform_code}:{order_no}:{salt}".encode("utf-8")).digest()
    return Fraction(int.from_bytes(digest, "big"), 1 << 256)


@pytest.mark.parametrize(("platform_code", "order_no", "salt"), [("PLAT001", "ORD-1", "s1"), ("P2", "订单-7", "")])
def test_selection_fraction_is_the_sha256_of_the_key(platform_code, order_no, salt):
    fraction = selection_fraction(platform_code, order_no, salt)
    assert fraction == expected_fraction(platform_code, order_no, salt)
    assert 0 <= fraction < 1
    # The comparison is exact: at a rate equal to the fraction the parcel is not selected,
    # a hair above it is. (n / 2**256 has a finite decimal expansion, so Decimal holds it exactly.)
    n = fraction.numerator * (2**256 // fraction.denominator)
    at = Decimal(f"{n * 5**256}E-256")
    assert Fraction(at) == fraction
    assert not selected_for_inspection(platform_code, order_no, salt, at)
    just_above = Decimal(f"{n * 5**256 + 1}E-256")  # built from a string: Decimal arithmetic would round
    assert selected_for_inspection(platform_code, order_no, salt, just_above)


def test_rate_0_never_selects_and_rate_1_always_does():
    for n in range(500):
        order_no = f"ORD-{n}"
        assert not selected_for_inspection(PLATFORM, order_no, "salt", Decimal("0"))
        assert selected_for_inspection(PLATFORM, order_no, "salt", Decimal("1"))


def test_selection_is_deterministic_and_depends_on_the_salt():
    first = [selected_for_inspection(PLATFORM, f"ORD-{n}", "a", Decimal("0.5")) for n in range(200)]
    again = [selected_for_inspection(PLATFORM, f"ORD-{n}", "a", Decimal("0.5")) for n in range(200)]
    other = [selected_for_inspection(PLATFORM, f"ORD-{n}", "b", Decimal("0.5")) for n in range(200)]
    assert first == again
    assert first != other
    assert 60 < sum(first) < 140  # roughly half, as a fraction in [0, 1) should be


def test_selected_parcel_is_held_for_inspection_on_the_red_channel():
    parties = registry(**{ECOMMERCE: Party(ECOMMERCE, frozenset({"ecommerce"}), "untrustworthy")})
    verdict = run_decide(complete(make_order()), parties)
    assert (verdict.status, verdict.channel, codes(verdict.reasons)) == (
        "inspection",
        "red",
        ["SELECTED_FOR_INSPECTION"],
    )
    # Held parcels count toward the buyer's year, like released ones.
    assert (verdict.tax_mode, verdict.quota_cny) == ("retail", Decimal("362.00"))


def test_selection_uses_the_ecommerce_enterprises_rate():
    order = make_order()
    docs = complete(order)
    # A salt that puts this parcel between the advanced rate (0.006) and the general base (0.03)...
    salt = next(
        s
        for s in (f"k{n}" for n in itertools.count())
        if Fraction("0.006") <= selection_fraction(PLATFORM, order.order_no, s) < Fraction("0.03")
    )
    general = registry()
    advanced = registry(**{ECOMMERCE: Party(ECOMMERCE, frozenset({"ecommerce"}), "advanced", "A")})
    grade_c_platform = registry(**{PLATFORM: Party(PLATFORM, frozenset({"platform"}), "advanced", "C")})
    assert run_decide(docs, general, salt=salt).status == "inspection"
    assert run_decide(docs, advanced, salt=salt).status == "released"
    # ...and only the ecommerce enterprise's credit counts, not the platform's.
    assert run_decide(docs, grade_c_platform, salt=salt).status == "inspection"
    assert run_decide(docs, general, salt=salt, base=Decimal("0")).status == "released"


def test_export_selected_for_inspection_takes_no_quota():
    order = make_order(direction="export", tax_total="0")
    parties = registry(**{ECOMMERCE: Party(ECOMMERCE, frozenset({"ecommerce"}), "general", "D")})
    verdict = run_decide(Documents(order, None, make_waybill(order)), parties)
    assert (verdict.status, verdict.channel) == ("inspection", "red")
    assert codes(verdict.reasons) == ["SELECTED_FOR_INSPECTION"]
    assert (verdict.tax_mode, verdict.dutiable_value_cny, verdict.quota_cny) == (None, None, Decimal("0"))


# --- §12 consolidated export declarations ----------------------------------------------------


def export_line(ecommerce="EBC001", hs=FACE_CREAM, dest="US", currency="USD", qty="1", value="10.00", key="P:1"):
    return ReleasedExportLine(ecommerce, hs, dest, currency, Decimal(qty), Decimal(value), key)


def test_consolidation_groups_by_enterprise_code_destination_and_currency():
    lines = [
        export_line(key="P:1", qty="2", value="20.00"),
        export_line(key="P:1", qty="1", value="10.00"),  # the same parcel, a second line of that code
        export_line(key="P:2", qty="3", value="30.50"),
        export_line(key="P:3", dest="DE"),
        export_line(key="P:4", currency="EUR", value="9.00"),
        export_line(key="P:5", hs=SHOES, value="50.00"),
        export_line(key="P:6", ecommerce="EBC000", value="1.00"),
    ]
    declarations = consolidate_export_declarations(reversed(lines))
    summary = [
        (d.ecommerce_code, d.hs_code, d.destination_country, d.currency, d.quantity, d.value, d.parcel_count)
        for d in declarations
    ]
    assert summary == [
        ("EBC000", FACE_CREAM, "US", "USD", Decimal("1"), Decimal("1.00"), 1),
        ("EBC001", FACE_CREAM, "DE", "USD", Decimal("1"), Decimal("10.00"), 1),
        ("EBC001", FACE_CREAM, "US", "EUR", Decimal("1"), Decimal("9.00"), 1),
        ("EBC001", FACE_CREAM, "US", "USD", Decimal("6"), Decimal("60.50"), 2),
        ("EBC001", SHOES, "US", "USD", Decimal("1"), Decimal("50.00"), 1),
    ]
    assert consolidate_export_declarations(lines) == declarations  # input order does not matter


def test_consolidation_of_nothing_is_nothing():
    assert consolidate_export_declarations([]) == []


def test_consolidated_value_is_rounded_once_at_the_end():
    lines = [export_line(key=f"P:{n}", qty="1.5", value="3.335") for n in range(2)]
    (declaration,) = consolidate_export_declarations(lines)
    assert (declaration.quantity, declaration.value) == (Decimal("3.0"), Decimal("6.67"))


def test_consolidated_declarations_are_cut_into_parts_of_bounded_size():
    """Issue 9, item 2: no consolidated-declaration event approaches the broker's 1 MiB limit. A part holds
    at most DECLARATION_LINES_PER_EVENT lines, and even lines with the longest values the tables allow
    keep a whole part's envelope far below the limit."""
    from contracts.v1.events import ExportDeclarationLine, ExportDeclarationsConsolidated
    from services.customs.rules import DECLARATION_LINES_PER_EVENT, declaration_parts
    from shared.outbox import outbox_row

    longest = "9" * 32  # ecommerce_code is String(32) in customs' tables
    lines = [ExportDeclarationLine(ecommerce_code=longest, hs_code=f"{i:010d}", destination_country="US",
                                   # the largest the contract allows (spec §2 bounds, contracts.types)
                                   currency="USD", quantity=Decimal("9999999999999.99999"),
                                   value=Decimal("9999999999999999.99"), parcel_count=10**9)
             for i in range(1201)]
    lines.append(lines[0].model_copy(update={"ecommerce_code": "A"}))
    parts = declaration_parts(lines)
    assert list(parts) == [longest, "A"]  # enterprises in code order ("9" sorts before "A")
    assert [len(p) for p in parts[longest]] == [500, 500, 201] and [len(p) for p in parts["A"]] == [1]
    assert [line for p in parts[longest] for line in p] == lines[:1201]
    assert declaration_parts([]) == {}
    at = datetime(2026, 12, 1, tzinfo=timezone.utc)
    biggest = ExportDeclarationsConsolidated(month="2026-11", ecommerce_code=longest, declarations=parts[longest][0],
                                             consolidated_at=at, part=1, parts=3)
    size = len(outbox_row(biggest, "customs", longest)["value"])
    assert size < 256 * 1024, size
    assert DECLARATION_LINES_PER_EVENT == 500
