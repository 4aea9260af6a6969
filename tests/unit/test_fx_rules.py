"""FX settlement and trade FX directory status (§11), against the real rate table."""
from __future__ import annotations

from datetime import date
from decimal import Decimal, localcontext

import pytest

from services.fx.rules import (
    DIRECTORY_THRESHOLD_USD,
    Settlement,
    directory_status,
    directory_status_change,
    settle,
)
from shared.reference import FxRates, MissingRate, fx_rates

D = Decimal


# --- settlement ------------------------------------------------------------------------------


def test_a_day_without_its_own_row_uses_the_latest_row_before_it():
    # fx_rates.csv has USD 7.1300 on 2026-11-01 and nothing until 2026-12-01
    s = settle(D("100.00"), "USD", date(2026, 11, 24), fx_rates())
    assert s.usd_rate == D("7.1300")
    assert s.rate_date == date(2026, 11, 1)
    assert s.amount_cny == D("713.00")
    assert s.amount_usd == D("100.00")


def test_a_day_with_its_own_row_uses_it():
    s = settle(D("100.00"), "USD", date(2026, 12, 1), fx_rates())
    assert (s.usd_rate, s.rate_date) == (D("7.1000"), date(2026, 12, 1))


def test_cny_amount():
    s = settle(D("1000.00"), "CNY", date(2026, 11, 24), fx_rates())
    assert s == Settlement(
        amount=D("1000.00"),
        currency="CNY",
        amount_cny=D("1000.00"),
        usd_rate=D("7.1300"),
        rate_date=date(2026, 11, 1),
        amount_usd=D("140.25"),  # 1000 / 7.13 = 140.2524...
    )


def test_eur_amount_goes_through_cny():
    # 100.00 EUR x 7.7400 = 774.00 CNY; / 7.1300 = 108.5554... USD
    s = settle(D("100.00"), "EUR", date(2026, 11, 24), fx_rates())
    assert s.amount_cny == D("774.00")
    assert s.amount_usd == D("108.56")
    assert s.currency == "EUR" and s.amount == D("100.00")


def test_cny_amount_is_exact_not_rounded():
    # 12.34 JPY x 0.0474 = 0.584916 CNY
    s = settle(D("12.34"), "JPY", date(2026, 11, 24), fx_rates())
    assert s.amount_cny == D("0.584916")
    assert s.amount_usd == D("0.08")  # 0.584916 / 7.13 = 0.08203...


def test_usd_rounds_half_up_at_half_a_cent():
    # 7.16565 CNY / 7.13 = 1.005 exactly; half-even would give 1.00
    s = settle(D("7.16565"), "CNY", date(2026, 11, 24), fx_rates())
    assert s.amount_usd == D("1.01")


def test_rate_date_is_the_usd_rows_day():
    rates = FxRates(
        [
            (date(2026, 11, 1), "USD", D("7.1300")),
            (date(2026, 11, 20), "EUR", D("7.8000")),
        ]
    )
    s = settle(D("10.00"), "EUR", date(2026, 11, 24), rates)
    assert s.rate_date == date(2026, 11, 1)
    assert s.amount_cny == D("78.00")
    assert s.amount_usd == D("10.94")  # 78 / 7.13 = 10.9396...


def test_currency_not_in_the_table_raises_missing_rate():
    with pytest.raises(MissingRate, match="XAU"):
        settle(D("1.00"), "XAU", date(2026, 11, 24), fx_rates())


def test_day_before_the_first_row_raises_missing_rate():
    with pytest.raises(MissingRate):
        settle(D("100.00"), "EUR", date(2025, 12, 31), fx_rates())
    # CNY needs no rate of its own but the USD rate still has to exist
    with pytest.raises(MissingRate, match="USD"):
        settle(D("100.00"), "CNY", date(2025, 12, 31), fx_rates())


def test_settlement_does_not_depend_on_the_callers_decimal_context():
    with localcontext() as ctx:
        ctx.prec = 3
        s = settle(D("100.00"), "EUR", date(2026, 11, 24), fx_rates())
    assert (s.amount_cny, s.amount_usd) == (D("774.00"), D("108.56"))


# --- directory status ------------------------------------------------------------------------


def test_threshold_is_200000_usd():
    assert DIRECTORY_THRESHOLD_USD == D("200000")


@pytest.mark.parametrize(
    ("ytd", "registered", "status"),
    [
        (D("0"), False, "exempt"),
        (D("199999.99"), False, "exempt"),
        (D("200000.00"), False, "registration_required"),  # reaching it counts
        (D("250000.00"), False, "registration_required"),
        (D("0"), True, "registered"),
        (D("250000.00"), True, "registered"),
    ],
)
def test_directory_status(ytd, registered, status):
    assert directory_status(ytd, registered) == status


def test_crossing_the_threshold_is_a_change():
    assert directory_status_change(D("199999.99"), D("200000.00"), False) == ("exempt", "registration_required")
    assert directory_status_change(D("150000.00"), D("310000.00"), False) == ("exempt", "registration_required")


@pytest.mark.parametrize(
    ("before", "after", "registered"),
    [
        (D("100.00"), D("150.00"), False),  # still exempt
        (D("199999.98"), D("199999.99"), False),  # just under
        (D("200000.00"), D("260000.00"), False),  # already required
        (D("190000.00"), D("260000.00"), True),  # registered stays registered
    ],
)
def test_no_change_when_the_status_stays(before, after, registered):
    assert directory_status_change(before, after, registered) is None


# --- the rates file the loader takes -----------------------------------------------------------


def test_rates_file_rows_are_read_exactly(tmp_path):
    from services.fx.load_rates import read_csv

    path = tmp_path / "rates.csv"
    path.write_text("date,currency,cny_per_unit\n2026-12-01,USD,7.1000\n2026-12-01,KRW,0.00512\n")
    assert read_csv(path) == [(date(2026, 12, 1), "USD", D("7.1000")), (date(2026, 12, 1), "KRW", D("0.00512"))]


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("2026-12-01,USD,0", "positive"),
        ("2026-12-01,USD,-7.1", "positive"),
        ("2026-12-01,usd,7.1", "ISO 4217"),
        ("2026-13-01,USD,7.1", "not a rates file"),
        ("2026-12-01,USD,seven", "not a rates file"),
        ("2026-12-01,USD,7.123456789", "at most 8 decimals"),  # what fx.settlement.v1 and the column hold
        ("2026-12-01,USD,1E+30", "too large"),
    ],
)
def test_a_rates_file_with_a_bad_row_is_refused_whole(tmp_path, row, problem):
    from services.fx.load_rates import read_csv

    path = tmp_path / "rates.csv"
    path.write_text(f"date,currency,cny_per_unit\n2026-12-01,EUR,7.7\n{row}\n")
    with pytest.raises(ValueError, match=problem):
        read_csv(path)


@pytest.mark.parametrize(
    ("stored", "quoted"),
    [("7.10000000", "7.1000"), ("0.00512000", "0.00512"), ("7.1300", "7.1300"), ("9.025", "9.0250")],
)
def test_rates_read_back_from_the_database_keep_their_quoted_decimals(stored, quoted):
    from services.fx.load_rates import as_quoted

    assert str(as_quoted(D(stored))) == quoted
