"""The fault suite's counting and its table, without a mesh: a fact absent is lost, present twice is
duplicated, present once but not as the rules demand is wrong; a total short of its parts is lost, over
them is duplicated; a fault run fails on any of them."""
from __future__ import annotations

from decimal import Decimal

from chaos import report
from chaos.checks import Verdict


def test_one_fact_is_lost_duplicated_wrong_or_fine():
    v = Verdict()
    v.one("fx settlement", "A", 1)
    v.one("fx settlement", "B", 0)
    v.one("fx settlement", "C", 2)
    v.one("fx settlement", "D", 1, ok=False, detail="not_applicable v1")
    c = v.checks["fx settlement"]
    assert (c.expected, c.lost, c.duplicated, c.wrong) == (4, ["B"], ["C ×2"], ["D: not_applicable v1"])
    assert (v.lost, v.duplicated, v.wrong) == (1, 1, 1)


def test_a_total_short_of_its_parts_is_lost_and_over_them_is_duplicated():
    v = Verdict()
    v.total("fx year-to-date = sum of settlements", "S1", Decimal("10.00"), Decimal("10.00"))
    v.total("fx year-to-date = sum of settlements", "S2", Decimal("9.99"), Decimal("10.00"))
    v.total("fx year-to-date = sum of settlements", "S3", Decimal("20.00"), Decimal("10.00"))
    assert (v.lost, v.duplicated, v.wrong) == (1, 1, 0)
    assert v.summary()["checks"][0]["examples"] == {"lost": ["S2: 9.99 < 10.00"], "duplicated": ["S3: 20.00 > 10.00"]}


def test_the_table_shows_every_fault_run_and_which_failed():
    rows = [{"fault": "kill:customs", "documents": 5400, "lost": 0, "duplicated": 0, "wrong": 0, "refused": 0,
             "recover_seconds": 3.4, "passed": True},
            {"fault": "slow:fx", "documents": 5390, "lost": 2, "duplicated": 0, "wrong": 0, "refused": 0,
             "recover_seconds": None, "passed": False}]
    text = report.table({"faults": rows})
    assert "| kill:customs | 5,400 | 0 | 0 | 0 | 0 | 3.4 s | pass |" in text
    assert "| slow:fx | 5,390 | 2 | 0 | 0 | 0 | – | FAIL |" in text
    assert text.splitlines()[-1] == "1 of 2 fault runs passed: slow:fx failed"
