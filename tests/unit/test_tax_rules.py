"""Import tax (§7), deemed export income (§8) and quarters, against the real HS catalogue."""
from __future__ import annotations

from datetime import date
from decimal import Decimal, localcontext

import pytest

from contracts.v1.events import Order
from services.tax.rules import (
    ImportAssessment,
    LineTax,
    NegativeDutiableValue,
    UnknownHsCode,
    assess_import,
    deemed_taxable_income,
    line_dutiable_values,
    parse_quarter,
    quarter_of,
)
from shared.reference import hs_catalogue

D = Decimal

FACE_CREAM = "3304990099"  # VAT 13%, CT 15%, MFN 1%
SHOES = "6403990090"  # VAT 13%, CT 0, MFN 10%
HANDBAG = "4202210090"  # VAT 13%, CT 0, MFN 10%
WHISKY = "2208300000"  # VAT 13%, CT 20%, MFN 5%
PERFUME = "3303000020"  # VAT 13%, CT 15%, MFN 3%


def item(hs_code: str, quantity: str, unit_price: str, item_no: str | None = None) -> dict:
    return {
        "item_no": item_no or f"SKU-{hs_code}",
        "name": "goods",
        "hs_code": hs_code,
        "quantity": quantity,
        "unit": "piece",
        "unit_price": unit_price,
        "origin_country": "FR",
    }


def order(
    *items: dict,
    freight: str = "0.00",
    insurance: str = "0.00",
    discount: str = "0.00",
    tax_total: str = "0.00",
    currency: str = "CNY",
) -> Order:
    return Order.model_validate(
        {
            "order_no": "ORD-1",
            "platform_code": "PLATFORM",
            "ecommerce_code": "SELLER",
            "direction": "import",
            "trade_mode": "9610",
            "currency": currency,
            "items": list(items),
            "freight": freight,
            "insurance": insurance,
            "discount": discount,
            "tax_total": tax_total,
            "actual_paid": "0.00",  # not used by the tax rules
            "buyer": None,
        }
    )


def assess(o: Order, tax_mode: str = "retail", cny_per_unit: Decimal = D(1)) -> ImportAssessment:
    return assess_import(o, tax_mode, hs_catalogue(), cny_per_unit)


def amounts(a: ImportAssessment) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal]:
    return a.dutiable_value, a.customs_duty, a.vat, a.consumption_tax, a.total


# --- the worked examples of §7 ----------------------------------------------------------------


def test_worked_example_1_face_cream_with_freight_and_discount():
    a = assess(order(item(FACE_CREAM, "2", "180.00"), freight="12.00", discount="10.00"))
    assert a.status == "assessed"
    assert amounts(a) == (D("362.00"), D("0.00"), D("38.76"), D("44.72"), D("83.48"))
    assert [str(x) for x in amounts(a)] == ["362.00", "0.00", "38.76", "44.72", "83.48"]


def test_worked_example_2_two_lines_share_freight():
    a = assess(order(item(FACE_CREAM, "1", "300.00"), item(SHOES, "1", "500.00"), freight="20.00"))
    assert amounts(a) == (D("820.00"), D("0.00"), D("79.56"), D("37.99"), D("117.55"))
    # 20.00 freight split 300:500
    assert [line.dutiable_value for line in a.lines] == [D("307.5"), D("512.5")]
    assert a.lines[1].consumption_tax == 0


def test_worked_example_3_handbag_general_trade():
    a = assess(order(item(HANDBAG, "1", "6000.00")), tax_mode="general_trade")
    assert a.status == "general_trade"
    assert amounts(a) == (D("6000.00"), D("600.00"), D("858.00"), D("0.00"), D("1458.00"))


# --- dutiable value sharing ---------------------------------------------------------------------


def test_line_dutiable_values_are_exact_and_add_up():
    o = order(item(FACE_CREAM, "1", "300.00"), item(SHOES, "1", "500.00"), freight="20.00")
    assert line_dutiable_values(o) == [D("307.5"), D("512.5")]


def test_discount_larger_than_one_line_is_shared_over_the_whole_order():
    # 300 + 20 goods, +10 freight -50 discount: every line is scaled by 280/320, none goes negative.
    o = order(item(FACE_CREAM, "1", "300.00"), item(SHOES, "1", "20.00"), freight="10.00", discount="50.00")
    assert line_dutiable_values(o) == [D("262.5"), D("17.5")]
    a = assess(o)
    assert amounts(a) == (D("280.00"), D("0.00"), D("29.70"), D("32.43"), D("62.13"))


def test_discount_equal_to_everything_leaves_nothing_to_tax():
    o = order(item(FACE_CREAM, "1", "100.00"), item(SHOES, "1", "20.00"), freight="5.00", discount="125.00")
    assert line_dutiable_values(o) == [D(0), D(0)]
    assert assess(o).total == D("0.00")


def test_discount_beyond_goods_freight_and_insurance_is_refused():
    o = order(item(SHOES, "1", "10.00"), freight="1.00", discount="20.00")
    with pytest.raises(NegativeDutiableValue, match="negative"):
        line_dutiable_values(o)
    with pytest.raises(ValueError):
        assess(o)


def test_insurance_is_part_of_the_dutiable_value():
    a = assess(order(item(FACE_CREAM, "1", "100.00"), freight="10.00", insurance="3.50"))
    assert amounts(a) == (D("113.50"), D("0.00"), D("12.15"), D("14.02"), D("26.17"))


def test_free_lines_share_freight_equally():
    o = order(item(SHOES, "1", "0.00", "A"), item(SHOES, "2", "0.00", "B"), freight="10.00")
    assert line_dutiable_values(o) == [D(5), D(5)]


def test_lines_add_up_exactly_even_when_shares_do_not_terminate():
    # goods 1.00 + 2.005, freight 1.00: shares are thirds-ish, total is exactly 4.005 -> 4.01 half-up.
    o = order(item(SHOES, "1", "1.00"), item(SHOES, "0.5", "4.01"), freight="1.00")
    values = line_dutiable_values(o)
    assert sum(values) == D("4.005")
    assert assess(o).dutiable_value == D("4.01")


# --- taxes -----------------------------------------------------------------------------------


def test_consumption_tax_on_several_lines_is_summed_before_rounding():
    o = order(
        item(FACE_CREAM, "2", "180.00"),
        item(WHISKY, "1", "300.00"),
        item(PERFUME, "1", "150.00"),
        item(SHOES, "1", "200.00"),
        freight="30.00",
        insurance="5.00",
    )
    a = assess(o)
    assert amounts(a) == (D("1045.00"), D("0.00"), D("110.63"), D("119.50"), D("230.13"))
    assert [line.hs_code for line in a.lines] == [FACE_CREAM, WHISKY, PERFUME, SHOES]
    assert a.lines[3].consumption_tax == 0
    assert all(line.customs_duty == 0 for line in a.lines)
    # the lines stay unrounded; the sums are what is rounded
    assert sum(line.consumption_tax for line in a.lines) != a.consumption_tax


def test_general_trade_with_consumption_tax_and_duty():
    # whisky 6000: duty 300; CT (6000+300)/0.8*0.2 = 1575; VAT (6000+300+1575)*0.13 = 1023.75
    a = assess(order(item(WHISKY, "1", "6000.00")), tax_mode="general_trade")
    assert amounts(a) == (D("6000.00"), D("300.00"), D("1023.75"), D("1575.00"), D("2898.75"))


def test_vat_rounds_half_up_at_half_a_cent():
    # shoes 15.00 retail: VAT 0.7 * 15 * 0.13 = 1.365 exactly; half-even would give 1.36
    a = assess(order(item(SHOES, "1", "15.00")))
    assert a.lines[0].vat == D("1.365")
    assert a.vat == D("1.37")
    assert a.total == D("1.37")


def test_dutiable_value_rounds_half_up_at_half_a_cent():
    # 0.5 kg x 10.01 = 5.005; half-even would give 5.00
    a = assess(order(item(SHOES, "0.5", "10.01")))
    assert a.dutiable_value == D("5.01")


def test_non_cny_order_is_converted_before_taxing():
    # 2 x 20.00 EUR + 2.00 freight - 1.00 discount = 41.00 EUR x 7.74 = 317.34 CNY
    o = order(
        item(FACE_CREAM, "2", "20.00"), freight="2.00", discount="1.00", tax_total="9.45", currency="EUR"
    )
    a = assess(o, cny_per_unit=D("7.74"))
    assert amounts(a) == (D("317.34"), D("0.00"), D("33.97"), D("39.20"), D("73.17"))
    assert a.lines[0].dutiable_value == D("317.34")
    # 9.45 EUR x 7.74 = 73.143 CNY declared
    assert a.declared_tax_total == D("73.14")
    assert a.declared_difference == D("-0.03")


@pytest.mark.parametrize(
    ("tax_total", "difference"),
    [("85.50", D("2.02")), ("80.00", D("-3.48")), ("83.48", D("0.00"))],
)
def test_declared_difference_is_declared_minus_computed(tax_total, difference):
    a = assess(order(item(FACE_CREAM, "2", "180.00"), freight="12.00", discount="10.00", tax_total=tax_total))
    assert a.declared_tax_total == D(tax_total)
    assert a.declared_difference == difference


def test_unknown_hs_code_is_a_lookup_error_naming_code_and_item():
    o = order(item(FACE_CREAM, "1", "10.00"), item("9999999999", "1", "10.00", "SKU-X"))
    with pytest.raises(UnknownHsCode, match="9999999999.*SKU-X") as raised:
        assess(o)
    assert isinstance(raised.value, LookupError)
    assert raised.value.hs_code == "9999999999"


def test_unknown_tax_mode_is_refused():
    with pytest.raises(ValueError, match="tax_mode"):
        assess(order(item(SHOES, "1", "10.00")), tax_mode="exempt")


def test_result_does_not_depend_on_the_callers_decimal_context():
    o = order(item(FACE_CREAM, "1", "300.00"), item(SHOES, "1", "500.00"), freight="20.00")
    with localcontext() as ctx:
        ctx.prec = 4
        a = assess(o)
    assert amounts(a) == (D("820.00"), D("0.00"), D("79.56"), D("37.99"), D("117.55"))


def test_amounts_are_decimals_and_lines_are_line_taxes():
    a = assess(order(item(FACE_CREAM, "2", "180.00"), freight="12.00", discount="10.00"))
    assert all(isinstance(x, Decimal) for x in amounts(a))
    assert all(isinstance(line, LineTax) for line in a.lines)


# --- §8 deemed taxable income ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("revenue", "income"),
    [
        (D("100000.00"), D("4000.00")),
        (D("12345.67"), D("493.83")),  # 493.8268
        (D("0.125"), D("0.01")),  # exactly 0.005: half-up
        (D("0"), D("0.00")),
    ],
)
def test_deemed_taxable_income_is_four_percent(revenue, income):
    assert deemed_taxable_income(revenue) == income


# --- quarters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "quarter"),
    [
        (date(2026, 1, 1), "2026Q1"),
        (date(2026, 3, 31), "2026Q1"),
        (date(2026, 4, 1), "2026Q2"),
        (date(2026, 9, 30), "2026Q3"),
        (date(2026, 10, 1), "2026Q4"),
        (date(2026, 12, 31), "2026Q4"),
    ],
)
def test_quarter_of(day, quarter):
    assert quarter_of(day) == quarter


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("2026Q1", date(2026, 1, 1), date(2026, 3, 31)),
        ("2026Q2", date(2026, 4, 1), date(2026, 6, 30)),
        ("2026Q3", date(2026, 7, 1), date(2026, 9, 30)),
        ("2026Q4", date(2026, 10, 1), date(2026, 12, 31)),
    ],
)
def test_parse_quarter(text, first, last):
    assert parse_quarter(text) == (first, last)
    assert quarter_of(first) == quarter_of(last) == text


@pytest.mark.parametrize(
    "text", ["2026Q5", "2026Q0", "2026-Q4", "26Q4", "2026q4", "2026Q4 ", "", "Q4", "0000Q1", None]
)
def test_parse_quarter_refuses_bad_input(text):
    with pytest.raises(ValueError, match="expected a quarter such as 2026Q4"):
        parse_quarter(text)
