"""Quarantine's rules (services/quarantine/rules.py): HS chapters 01-05 (Section I, live animals and animal
products) and 06-14 (Section II, vegetable products) hold an order for inspection; any other is cleared."""
from __future__ import annotations

import pytest

from services.quarantine.rules import Case, NotHeld, chapters_held, on_inspection, on_order


@pytest.mark.parametrize(("hs_codes", "chapters"), [
    (["0301110000"], ("03",)),  # live fish: Section I
    (["0101210000", "1404909000"], ("01", "14")),  # the first and last chapters of Sections I and II
    (["3304990099", "0901210000", "0901110000"], ("09",)),  # face cream, roasted and green coffee
    (["1501100000", "3304990099"], ()),  # chapter 15 (fats, Section III) and 33: not quarantine's
])
def test_the_chapters_that_hold(hs_codes, chapters):
    assert chapters_held(hs_codes) == chapters


def test_a_new_order_is_held_or_cleared_and_each_newer_version_decided_afresh():
    held = on_order(None, "new", 1, ["0301110000"])
    assert held == Case(1, "held", ("03",))
    assert held.reasons() == [{"code": "ANIMAL_OR_PLANT_GOODS", "message": "HS chapter 03"}]
    cleared = on_order(held, "corrected", 2, ["3304990099"])
    assert cleared == Case(2, "cleared", ()) and cleared.reasons() == []
    assert on_order(cleared, "cancelled", 3, ["3304990099"]) == Case(3, "cancelled", ())


def test_a_version_already_decided_or_older_changes_nothing():
    case = Case(2, "held", ("03",))
    assert on_order(case, "new", 1, ["3304990099"]) is None
    assert on_order(case, "corrected", 2, ["3304990099"]) is None


def test_an_inspection_releases_or_refuses_a_held_order_only():
    held = Case(1, "held", ("06",))
    assert on_inspection(held, True) == Case(1, "released", ("06",))
    refused = on_inspection(held, False)
    assert refused.status == "refused" and refused.reasons()[0]["code"] == "ANIMAL_OR_PLANT_GOODS"
    with pytest.raises(NotHeld, match="cleared"):
        on_inspection(Case(1, "cleared"), True)
