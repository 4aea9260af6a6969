"""The FX rate table: loading a rates CSV into the FX database, and the in-memory copy settlements use.

    python -m services.fx.load_rates [CSV]

upserts every (date, currency) row of the CSV (default: fx_rates.csv in the reference directory) into
FX_DATABASE_URL's `rates` table, so a new month's file is loaded without a code change. A running FX
service notices the reload within its refresh period (FX_RATES_REFRESH_SECONDS, default 30) and at once
when it meets a currency or day its copy lacks."""
from __future__ import annotations

import asyncio
import re
import sys
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.types import RATE
from services.fx.tables import rates
from shared.db import upsert
from shared.reference import FxRates, parse_fx_rates, reference_dir

RateRow = tuple[date, str, Decimal]
_QUOTED = Decimal("0.0001")
# Multi-row upserts stay well under the drivers' bound parameters per statement (32767 on asyncpg).
_ROWS_PER_STATEMENT = 2000


def default_csv() -> Path:
    return reference_dir() / "fx_rates.csv"


def read_csv(path: Path) -> list[RateRow]:
    """The CSV's rows (date,currency,cny_per_unit), refused whole if any row is not a usable rate."""
    try:
        rows = parse_fx_rates(path)
    except (KeyError, ValueError, ArithmeticError) as err:
        raise ValueError(f"{path}: not a rates file (date,currency,cny_per_unit): {err!r}") from None
    for day, currency, rate in rows:
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise ValueError(f"{path}: {day} has currency {currency!r}, expected an ISO 4217 code such as USD")
        if not rate.is_finite() or rate <= 0:
            raise ValueError(f"{path}: {day} {currency} has rate {rate}, expected a positive number")
        try:  # the bounds of a rate on fx.settlement.v1 and in the NUMERIC(18, 8) column (spec §2)
            RATE.parse(rate)
        except ValueError as err:
            raise ValueError(f"{path}: {day} {currency} has rate {rate}: {err}") from None
    return rows


async def store(session: AsyncSession, rows: list[RateRow]) -> int:
    """Upserts the rows in the caller's transaction; a reloaded row gets a new `loaded_at`."""
    if not rows:
        return 0
    at = datetime.now(timezone.utc)
    values = [{"date": d, "currency": c, "cny_per_unit": r, "loaded_at": at} for d, c, r in rows]
    for start in range(0, len(values), _ROWS_PER_STATEMENT):
        await upsert(session, rates, values[start:start + _ROWS_PER_STATEMENT])
    return len(values)


async def fingerprint(session: AsyncSession) -> tuple[int, datetime | None]:
    """Changes whenever rows are added or reloaded."""
    row = (await session.execute(select(func.count(), func.max(rates.c.loaded_at)))).one()
    latest = row[1]
    if isinstance(latest, str):  # SQLite hands an aggregate back untyped
        latest = datetime.fromisoformat(latest)
    return row[0], latest


def as_quoted(rate: Decimal) -> Decimal:
    """The rate with the four decimals it is quoted with (more if it has them), whatever scale the
    database column gave it back with: 7.10000000 from PostgreSQL is 7.1000, as it is on SQLite."""
    trimmed = rate.normalize()
    return trimmed if trimmed.as_tuple().exponent < -4 else rate.quantize(_QUOTED)


class RateCache:
    """The rate table in memory, as `FxRates`; rebuilt from the database when it changed."""

    def __init__(self) -> None:
        self.rates: FxRates | None = None
        self.version: tuple[int, datetime | None] | None = None

    async def refresh(self, session: AsyncSession, force: bool = False) -> bool:
        version = await fingerprint(session)
        if not force and self.rates is not None and version == self.version:
            return False
        rows = (await session.execute(select(rates.c.date, rates.c.currency, rates.c.cny_per_unit))).all()
        self.rates = FxRates([(r.date, r.currency, as_quoted(r.cny_per_unit)) for r in rows])
        self.version = version
        return True

    async def current(self, session: AsyncSession) -> FxRates:
        if self.rates is None:
            await self.refresh(session)
        assert self.rates is not None
        return self.rates


async def load_rows(rows: list[RateRow], url: str) -> int:
    from shared.db import create_engine, session_factory  # noqa: PLC0415

    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session, session.begin():
            return await store(session, rows)
    finally:
        await engine.dispose()


def main(argv: list[str]) -> int:
    from shared.migrations import upgrade  # noqa: PLC0415
    from shared.settings import settings  # noqa: PLC0415

    path = Path(argv[0]) if argv else default_csv()
    if not path.is_file():
        print(f"no such rates file: {path}", file=sys.stderr)
        return 2
    try:
        rows = read_csv(path)
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2
    url = settings().database_url("fx")
    upgrade("fx", url)  # the table may not exist yet if the service never ran against this database
    count = asyncio.run(load_rows(rows, url))
    currencies = sorted({c for _, c, _ in rows})
    print(f"loaded {count} rates ({', '.join(currencies)}) from {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
