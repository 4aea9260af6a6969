"""Credit files (domain rules §9): starting scores, every score event, caps, grades, the negative list."""
from __future__ import annotations

from decimal import Decimal

import pytest

from services.credit.rules import (
    EXCEPTION_PENALTY,
    CreditChange,
    CreditFile,
    apply_score_change,
    decision_score_change,
    grade,
    open_credit_file,
    register_category,
    remove_from_negative_list,
    score_cap,
)

D = Decimal


def file_at(score: str, customs_credit: str = "general", listed: bool = False) -> CreditFile:
    return CreditFile(code="91350100M000100Y43", customs_credit=customs_credit, score=D(score), negative_listed=listed)


# --- opening and caps ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("customs_credit", "score", "expected_grade"),
    [("general", "100", "A"), ("advanced", "110", "A"), ("untrustworthy", "50", "D")],
)
def test_starting_score_per_category(customs_credit, score, expected_grade):
    f = open_credit_file("91350100M000100Y43", customs_credit)
    assert f == CreditFile(
        code="91350100M000100Y43", customs_credit=customs_credit, score=D(score), negative_listed=False
    )
    assert isinstance(f.score, Decimal)
    assert grade(f.score) == expected_grade


def test_an_untrustworthy_enterprise_is_not_listed_until_its_first_penalty():
    f = open_credit_file("X1", "untrustworthy")
    assert not f.negative_listed
    change = apply_score_change(f, EXCEPTION_PENALTY)
    assert change.newly_negative_listed
    assert change.file.negative_listed


@pytest.mark.parametrize(("customs_credit", "cap"), [("general", "110"), ("advanced", "120"), ("untrustworthy", "110")])
def test_score_cap_per_category(customs_credit, cap):
    assert score_cap(customs_credit) == D(cap)


@pytest.mark.parametrize("bad", ["aeo", "", "GENERAL"])
def test_an_unknown_category_is_refused(bad):
    with pytest.raises(ValueError):
        open_credit_file("X1", bad)
    with pytest.raises(ValueError):
        score_cap(bad)


# --- grades -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        ("120", "A"), ("90", "A"), ("89.9", "B"), ("89.99", "B"),
        ("75", "B"), ("74.9", "C"),
        ("60", "C"), ("59.9", "D"), ("0", "D"), ("-10", "D"),
    ],
)
def test_grade_boundaries(score, expected):
    assert grade(D(score)) == expected


def test_grade_refuses_a_float():
    with pytest.raises(TypeError):
        grade(89.9)  # type: ignore[arg-type]


# --- score events -------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["AMOUNT_MISMATCH", "IDENTITY_MISMATCH", "ORDER_MISMATCH"])
def test_rejection_for_a_mismatch_costs_5(code):
    assert decision_score_change("rejected", [code]) == D("-5")


def test_several_mismatches_in_one_decision_cost_5_once():
    codes = ["AMOUNT_MISMATCH", "AMOUNT_MISMATCH", "IDENTITY_MISMATCH", "ORDER_MISMATCH"]
    assert decision_score_change("rejected", codes) == D("-5")


def test_rejection_for_prohibited_goods_costs_20():
    assert decision_score_change("rejected", ["PROHIBITED_GOODS"]) == D("-20")


def test_prohibited_goods_and_a_mismatch_cost_25():
    codes = ["PROHIBITED_GOODS", "AMOUNT_MISMATCH", "NOT_ON_POSITIVE_LIST"]
    assert decision_score_change("rejected", codes) == D("-25")


def test_penalised_reasons_count_alongside_unpenalised_ones():
    assert decision_score_change("rejected", ["DOCUMENT_TIMEOUT", "IDENTITY_MISMATCH"]) == D("-5")


@pytest.mark.parametrize(
    "code",
    ["OVER_SINGLE_LIMIT", "OVER_ANNUAL_LIMIT", "NOT_ON_POSITIVE_LIST", "PARTY_NOT_REGISTERED",
     "PARTY_ON_NEGATIVE_LIST", "DOCUMENT_TIMEOUT", "SELECTED_FOR_INSPECTION"],
)
def test_rejection_for_other_reasons_costs_nothing(code):
    assert decision_score_change("rejected", [code]) == D("0")


def test_release_without_any_finding_earns_a_tenth():
    assert decision_score_change("released", []) == D("0.1")


def test_release_after_a_passed_inspection_counts_as_without_finding():
    assert decision_score_change("released", ["SELECTED_FOR_INSPECTION"]) == D("0.1")


def test_release_with_a_finding_earns_nothing():
    assert decision_score_change("released", ["OVER_SINGLE_LIMIT"]) == D("0")
    assert decision_score_change("released", ["SELECTED_FOR_INSPECTION", "AMOUNT_MISMATCH"]) == D("0")


@pytest.mark.parametrize("status", ["inspection", "pending", "cancelled"])
def test_other_decisions_change_nothing(status):
    assert decision_score_change(status, ["SELECTED_FOR_INSPECTION"]) == D("0")
    assert decision_score_change(status, ["PROHIBITED_GOODS"]) == D("0")


def test_decision_accepts_any_iterable_of_codes():
    assert decision_score_change("rejected", (c for c in ["PROHIBITED_GOODS"])) == D("-20")


def test_exception_penalty_is_2():
    assert EXCEPTION_PENALTY == D("-2")
    assert apply_score_change(file_at("100"), EXCEPTION_PENALTY).file.score == D("98")


def test_changes_are_decimal():
    assert all(
        isinstance(decision_score_change(status, codes), Decimal)
        for status, codes in [("rejected", ["AMOUNT_MISMATCH"]), ("released", []), ("pending", [])]
    )


# --- applying changes: caps ---------------------------------------------------------------------


def test_tenths_add_up_exactly_to_the_general_cap():
    f = open_credit_file("X1", "general")
    for _ in range(100):
        f = apply_score_change(f, D("0.1")).file
    assert f.score == D("110")
    f = apply_score_change(f, D("0.1")).file
    assert f.score == D("110")


@pytest.mark.parametrize(
    ("customs_credit", "start", "after"),
    [
        ("general", "109.9", "110.0"),
        ("general", "109.95", "110"),
        ("general", "110", "110"),
        ("advanced", "119.9", "120.0"),
        ("advanced", "119.95", "120"),
        ("advanced", "120", "120"),
        ("advanced", "110", "110.1"),
        ("untrustworthy", "109.9", "110.0"),
        ("untrustworthy", "110", "110"),
    ],
)
def test_a_tenth_near_the_cap_stops_at_the_cap(customs_credit, start, after):
    change = apply_score_change(file_at(start, customs_credit), D("0.1"))
    assert change.file.score == D(after)
    assert change.file.score <= score_cap(customs_credit)


def test_a_positive_change_never_lowers_a_score_already_above_the_cap():
    assert apply_score_change(file_at("115", "general"), D("0.1")).file.score == D("115")


def test_penalties_are_not_capped_or_floored():
    assert apply_score_change(file_at("120", "advanced"), D("-5")).file.score == D("115")
    assert apply_score_change(file_at("10"), D("-25")).file.score == D("-15")


def test_apply_refuses_a_float_delta():
    with pytest.raises(TypeError):
        apply_score_change(file_at("100"), 0.1)  # type: ignore[arg-type]


def test_a_file_refuses_a_float_score():
    with pytest.raises(TypeError):
        CreditFile(code="X1", customs_credit="general", score=100.0, negative_listed=False)  # type: ignore[arg-type]


# --- applying changes: grades -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "delta", "previous", "after"),
    [
        ("90", "-0.1", "A", "B"),
        ("89.9", "0.1", "B", "A"),
        ("75", "-0.1", "B", "C"),
        ("74.9", "0.1", "C", "B"),
        ("60.1", "-0.1", "C", "C"),
        ("95", "-5", "A", "A"),
        ("94", "-5", "A", "B"),
        ("100", "-25", "A", "B"),
    ],
)
def test_grade_changes_are_reported(start, delta, previous, after):
    change = apply_score_change(file_at(start), D(delta))
    assert (change.previous_grade, change.grade) == (previous, after)
    assert change.grade_changed == (previous != after)
    assert not change.newly_negative_listed
    assert not change.file.negative_listed


def test_falling_to_d_lists_the_enterprise():
    change = apply_score_change(file_at("60"), D("-0.1"))
    assert change == CreditChange(
        file=file_at("59.9", listed=True), previous_grade="C", grade="D", grade_changed=True, newly_negative_listed=True
    )


def test_falling_to_d_from_a_above_lists_the_enterprise():
    change = apply_score_change(file_at("62"), D("-25"))
    assert change.grade == "D"
    assert change.newly_negative_listed


def test_a_further_penalty_while_listed_does_not_list_again():
    change = apply_score_change(file_at("55", listed=True), D("-2"))
    assert change.file.score == D("53")
    assert change.file.negative_listed
    assert not change.newly_negative_listed
    assert not change.grade_changed


def test_removal_keeps_the_score_and_a_penalty_while_still_d_lists_again():
    listed = file_at("55", listed=True)
    removed = remove_from_negative_list(listed)
    assert removed == file_at("55", listed=False)
    assert grade(removed.score) == "D"
    change = apply_score_change(removed, D("-2"))
    assert change.newly_negative_listed
    assert change.file.negative_listed
    assert not change.grade_changed


def test_a_positive_change_never_lists_even_at_d():
    change = apply_score_change(file_at("50", "untrustworthy"), D("0.1"))
    assert change.file.score == D("50.1")
    assert not change.newly_negative_listed
    assert not change.file.negative_listed


def test_a_positive_change_never_unlists_even_out_of_d():
    change = apply_score_change(file_at("59.9", listed=True), D("0.1"))
    assert change.grade == "C"
    assert change.grade_changed
    assert change.file.negative_listed
    assert not change.newly_negative_listed


def test_a_zero_change_at_d_neither_lists_nor_changes_anything():
    f = file_at("50")
    change = apply_score_change(f, D("0"))
    assert change.file == f
    assert not change.newly_negative_listed
    assert not change.grade_changed


def test_removal_of_an_unlisted_file_changes_nothing():
    f = file_at("80")
    assert remove_from_negative_list(f) == f


# --- a registration that arrives after the file was opened ----------------------------------------


def _provisional(deltas: list[str]) -> tuple[CreditFile, list[Decimal]]:
    f = open_credit_file("X1", "general")
    counted = [D(d) for d in deltas]
    for delta in counted:
        f = apply_score_change(f, delta).file
    return f, counted


def test_a_general_registration_keeps_the_provisional_score():
    f, counted = _provisional(["-5", "0.1", "-20"])
    assert register_category(f, "general", counted) == f
    assert f.score == D("75.1")


def test_an_advanced_registration_recounts_from_110():
    f, counted = _provisional(["-5", "0.1"])
    registered = register_category(f, "advanced", counted)
    assert registered == CreditFile(code="X1", customs_credit="advanced", score=D("105.1"), negative_listed=False)


def test_the_recount_applies_the_registered_cap():
    f, counted = _provisional(["0.1"] * 150)
    assert f.score == D("110")
    assert register_category(f, "advanced", counted).score == D("120")
    assert register_category(f, "untrustworthy", counted).score == D("65")


def test_an_untrustworthy_registration_after_a_penalty_lists_the_enterprise():
    f, counted = _provisional(["-2"])
    assert not f.negative_listed
    registered = register_category(f, "untrustworthy", counted)
    assert registered.score == D("48")
    assert registered.negative_listed


def test_an_untrustworthy_registration_without_penalties_does_not_list():
    f, counted = _provisional(["0.1"])
    registered = register_category(f, "untrustworthy", counted)
    assert registered.score == D("50.1")
    assert not registered.negative_listed


def test_the_recount_never_lifts_a_listing():
    f, counted = _provisional(["-20", "-20", "-5"])
    assert f.negative_listed
    registered = register_category(f, "advanced", counted)
    assert registered.score == D("65")
    assert registered.negative_listed


def test_registration_refuses_an_unknown_category():
    f, counted = _provisional([])
    with pytest.raises(ValueError):
        register_category(f, "aeo", counted)
