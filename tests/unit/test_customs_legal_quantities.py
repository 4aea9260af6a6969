"""Legal quantities in customs' consolidated export declaration (spec 1.1 §7.5, domain §12): summed per
(position, unit) over the lines that gave them, never across units, never silently partial."""
from decimal import Decimal

import pytest
from pydantic import ValidationError

from contracts.v1.documents import OrderItem
from contracts.v1.events import ExportDeclarationLine, OrderLine
from contracts.v2.events import OrderSubmittedV2
from services.customs.domain import legal_columns, legal_quantities_of
from services.customs.rules import ReleasedExportLine, consolidate_export_declarations, legal_quantity_totals

D = Decimal
TEE = "6109100022"  # cotton T-shirts: first legal unit piece, second kg


def line(order: str, qty: str = "1", legal: tuple = (), hs: str = TEE, dest: str = "US") -> ReleasedExportLine:
    return ReleasedExportLine("EXPORTER", hs, dest, "USD", D(qty), D(qty) * D("12.50"), f"P:{order}",
                              tuple((D(q), u) for q, u in legal))


def totals(declaration: ExportDeclarationLine) -> list[tuple[int, str, Decimal, int]]:
    return [(t.position, t.unit, t.quantity, t.parcel_count) for t in declaration.legal_quantities]


def test_every_parcel_gave_both_legal_quantities_the_totals_are_the_declarations():
    (d,) = consolidate_export_declarations([
        line("A", "2", [("2", "piece"), ("0.25", "kg")]),
        line("B", "3", [("3", "piece"), ("0.40125", "kg")]),
        line("B", "1", [("1", "piece"), ("0.125", "kg")]),   # a second line of parcel B, same code
    ])
    assert totals(d) == [(1, "piece", D("6"), 2), (2, "kg", D("0.77625"), 2)]  # exact: five decimals kept
    assert (d.legal_quantities_status, d.legal_quantities_issues, d.legal_quantities_note) == ("complete", [], None)
    assert (d.quantity, d.value, d.parcel_count) == (D("6"), D("75.00"), 2)


def test_no_parcel_gave_legal_quantities_says_none_and_sums_nothing():
    (d,) = consolidate_export_declarations([line("A", "2"), line("B", "1")])
    assert (d.legal_quantities, d.legal_quantities_status, d.legal_quantities_issues) == ([], "none", [])
    assert d.legal_quantities_note is None


def test_some_parcels_without_legal_quantities_are_said_to_be_missing_not_summed_as_zero():
    (d,) = consolidate_export_declarations([
        line("A", "2", [("2.5", "kg")]), line("B", "3", [("1.5", "kg")]), line("C", "1"),
    ])
    assert totals(d) == [(1, "kg", D("4.0"), 2)]
    assert d.legal_quantities_status == "incomplete"
    assert d.legal_quantities_issues == ["LEGAL_QUANTITIES_MISSING"]
    assert d.legal_quantities_note.startswith("1 of 3 parcels have lines without legal quantities")


def test_different_units_for_one_position_are_kept_apart_never_added():
    (d,) = consolidate_export_declarations([
        line("A", "1", [("2", "kg")]), line("B", "1", [("500", "g")]), line("C", "1", [("1", "kg")]),
    ])
    assert totals(d) == [(1, "g", D("500"), 1), (1, "kg", D("3"), 2)]
    assert (d.legal_quantities_status, d.legal_quantities_issues) == ("incomplete", ["LEGAL_UNITS_DIFFER"])
    assert "the first legal unit is given as g (1 parcels) and kg (2 parcels)" in d.legal_quantities_note


def test_a_second_legal_quantity_on_some_parcels_only_is_said():
    (d,) = consolidate_export_declarations([
        line("A", "1", [("1", "piece"), ("0.2", "kg")]), line("B", "1", [("1", "piece")]),
    ])
    assert totals(d) == [(1, "piece", D("2"), 2), (2, "kg", D("0.2"), 1)]
    assert d.legal_quantities_issues == ["SECOND_LEGAL_QUANTITY_MISSING"]
    assert d.legal_quantities_status == "incomplete"


def test_every_issue_at_once_is_listed_in_order():
    _, status, issues, note = legal_quantity_totals([
        line("A", "1", [("1", "piece"), ("0.2", "kg")]), line("B", "1", [("1", "set")]), line("C", "1"),
    ])
    assert status == "incomplete"
    assert issues == ["LEGAL_QUANTITIES_MISSING", "SECOND_LEGAL_QUANTITY_MISSING", "LEGAL_UNITS_DIFFER"]
    assert note.count(";") >= 2


def test_groups_are_judged_each_on_their_own():
    gb, us = consolidate_export_declarations([  # sorted: GB before US
        line("A", "1", [("1", "piece")], dest="US"), line("B", "1", dest="GB"),
    ])
    assert (gb.destination_country, gb.legal_quantities_status) == ("GB", "none")
    assert (us.destination_country, us.legal_quantities_status) == ("US", "complete")


def test_the_same_unit_in_both_positions_is_kept_per_position():
    # Customs' own CEB621 samples give unit1 = unit2 = 007: allowed, and summed per position.
    (d,) = consolidate_export_declarations([line("A", "1", [("200", "piece"), ("300", "piece")])])
    assert totals(d) == [(1, "piece", D("200"), 1), (2, "piece", D("300"), 1)]
    assert d.legal_quantities_status == "complete"


def test_customs_columns_round_trip():
    class Row:
        pass
    item = OrderLine(item_no="1", name="T", hs_code=TEE, quantity="2", unit="piece", unit_price="1",
                     origin_country="CN", legal_quantities=[{"quantity": "2", "unit": "piece"},
                                                            {"quantity": "0.5", "unit": "kg"}])
    columns = legal_columns(item.legal_quantities)
    assert columns == {"legal_quantity_1": D("2"), "legal_unit_1": "piece",
                       "legal_quantity_2": D("0.5"), "legal_unit_2": "kg"}
    row = Row()
    row.__dict__.update(columns)
    assert legal_quantities_of(row) == ((D("2"), "piece"), (D("0.5"), "kg"))
    assert legal_columns(None) == dict.fromkeys(columns)
    row.__dict__.update(legal_columns(None))
    assert legal_quantities_of(row) == ()


ITEM = {"item_no": "1", "name": "T-shirt", "hs_code": TEE, "quantity": "2", "unit": "piece",
        "unit_price": "12.50", "origin_country": "CN"}


def test_the_order_line_takes_one_or_two_legal_quantities_with_bounded_values():
    assert OrderItem(**ITEM).legal_quantities is None
    two = OrderItem(**ITEM, legal_quantities=[{"quantity": "2", "unit": "piece"}, {"quantity": "0.5", "unit": "kg"}])
    assert [(q.quantity, q.unit) for q in two.legal_quantities] == [(D("2"), "piece"), (D("0.5"), "kg")]
    for bad in ([], [{"quantity": "1", "unit": "kg"}] * 3, [{"quantity": "0", "unit": "kg"}],
                [{"quantity": "1.123456", "unit": "kg"}], [{"quantity": "1", "unit": ""}],
                [{"quantity": "1", "unit": "kg", "extra": 1}]):
        with pytest.raises(ValidationError):
            OrderItem(**ITEM, legal_quantities=bad)


def test_legal_quantities_travel_on_v1_and_v2_and_back_and_are_left_out_when_absent():
    from contracts.v1.events import Order, OrderSubmitted
    order = Order(order_no="O", platform_code="P", ecommerce_code="E", direction="export", trade_mode="9610",
                  currency="USD", freight="0", insurance="0", discount="0", tax_total="0", actual_paid="50.00",
                  destination_country="US",
                  items=[{**ITEM, "legal_quantities": [{"quantity": "2", "unit": "piece"}]},
                         {**ITEM, "item_no": "2"}])
    v1 = OrderSubmitted(action="new", version=1, submitted_at="2026-11-24T10:00:00+08:00", order=order)
    v2 = OrderSubmittedV2.from_v1(v1, "CN", "CN")
    dumped = v2.model_dump(mode="json")["order"]["items"]
    assert dumped[0]["legal_quantities"] == [{"quantity": "2", "unit": "piece"}]
    assert "legal_quantities" not in dumped[1]  # an order without them is published as before
    assert "legal_quantities" not in v1.model_dump(mode="json")["order"]["items"][1]
    assert v2.as_v1() == v1
