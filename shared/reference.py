"""Reference tables (HS catalogue, FX rates) read from CSV.

The FX rates file is the one list of accepted currencies: the gateway accepts a currency only if it is
CNY or has a row there (`FxRates.currencies`), customs and tax convert with it, and FX loads it into its
own table at its first start (`python -m services.fx.load_rates` loads later files). A new currency is
added to this file, then loaded into FX; the gateway, customs and tax read the file when they start.

They are looked up in `SW_REFERENCE_DIR`, else in `../shared/data` beside the project (the canonical
copy), else in the project's own `reference/` copy (used by the Docker image)."""
from __future__ import annotations

import bisect
import csv
import os
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def reference_dir() -> Path:
    configured = os.environ.get("SW_REFERENCE_DIR")
    if configured:
        return Path(configured)
    canonical = PROJECT_ROOT.parent / "shared" / "data"
    return canonical if (canonical / "hs_catalogue.csv").exists() else PROJECT_ROOT / "reference"


@dataclass(frozen=True)
class HsEntry:
    hs_code: str
    description: str
    vat_rate: Decimal
    consumption_tax_rate: Decimal
    mfn_duty_rate: Decimal
    positive_list: bool
    prohibited: bool


def parse_hs_catalogue(path: Path) -> dict[str, HsEntry]:
    with path.open(newline="", encoding="utf-8") as f:
        return {
            row["hs_code"]: HsEntry(
                hs_code=row["hs_code"],
                description=row["description"],
                vat_rate=Decimal(row["vat_rate"]),
                consumption_tax_rate=Decimal(row["consumption_tax_rate"]),
                mfn_duty_rate=Decimal(row["mfn_duty_rate"]),
                positive_list=row["positive_list"].strip().lower() == "yes",
                prohibited=row["prohibited"].strip().lower() == "yes",
            )
            for row in csv.DictReader(f)
        }


@lru_cache(maxsize=1)
def hs_catalogue() -> dict[str, HsEntry]:
    return parse_hs_catalogue(reference_dir() / "hs_catalogue.csv")


class MissingRate(LookupError):
    """No rate for that currency on or before that day."""


class FxRates:
    """CNY per unit of each currency, by date; the rate of a day is the latest on or before it."""

    def __init__(self, rows: list[tuple[date, str, Decimal]]):
        self._by_currency: dict[str, tuple[list[date], list[Decimal]]] = {}
        for day, currency, rate in sorted(rows):
            days, rates = self._by_currency.setdefault(currency, ([], []))
            days.append(day)
            rates.append(rate)

    def rate_on(self, currency: str, day: date) -> tuple[date, Decimal]:
        """(the day the rate is from, CNY per unit). CNY is 1 on every day."""
        if currency == "CNY":
            return day, Decimal("1")
        if currency not in self._by_currency:
            raise MissingRate(f"no FX rate for currency {currency}")
        days, rates = self._by_currency[currency]
        i = bisect.bisect_right(days, day)
        if i == 0:
            raise MissingRate(f"no FX rate for {currency} on or before {day.isoformat()}")
        return days[i - 1], rates[i - 1]

    def currencies(self) -> frozenset[str]:
        """Every currency the table can convert on some day: CNY and each currency with a row. This is the
        list of currencies the single window accepts (the gateway refuses any other with 422), so that a
        document never reaches an agency that cannot convert it."""
        return frozenset(self._by_currency) | {"CNY"}

    def first_day(self, currency: str) -> date | None:
        """The first day `currency` can be converted (None: never; CNY: always, given as date.min)."""
        if currency == "CNY":
            return date.min
        days = self._by_currency.get(currency)
        return days[0][0] if days else None

    def to_cny(self, amount: Decimal, currency: str, day: date) -> Decimal:
        return amount * self.rate_on(currency, day)[1]


def parse_fx_rates(path: Path) -> list[tuple[date, str, Decimal]]:
    with path.open(newline="", encoding="utf-8") as f:
        return [
            (date.fromisoformat(r["date"]), r["currency"].strip(), Decimal(r["cny_per_unit"]))
            for r in csv.DictReader(f)
        ]


@lru_cache(maxsize=1)
def fx_rates() -> FxRates:
    return FxRates(parse_fx_rates(reference_dir() / "fx_rates.csv"))
