"""FX's cases and enterprise years, loaded and saved a run at a time (set-based), and the rate table in
memory.

- `load_cases`: what FX holds about every order of a run, one query per table (orders, payments,
  decisions, settlements), by primary key, each order locked first (shared.db.lock_keys, one statement,
  hash order): an order, its payment and customs' decision travel on three topics that two instances
  may consume at the same moment, and whichever transaction comes second must see what the first
  committed, or neither settles (issue 9).
- `lock_years`: the enterprise-years a run settles into, created at zero when new (one multi-row
  insert-if-absent) and locked `FOR UPDATE` in (code, year) order on PostgreSQL (one query), so two
  consumers settling for one enterprise queue instead of losing a settlement, and never deadlock;
  registrations are read with one query.
- `save`: one statement per table (multi-row upserts), the last state of a key winning.
- `RATES` / `settlement`: §11 conversion at the rate table's rates, reloaded once when a rate is missing
  (the loader may have just added it from another process).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.identifiers import order_key
from contracts.v1.events import FxSettled
from services.fx import rules
from services.fx.load_rates import RateCache
from services.fx.tables import decisions, directory_registrations, enterprise_years, orders, payments, settlements
from shared.clock import utcnow
from shared.db import insert_if_absent, lock_keys, upsert
from shared.reference import FxRates, MissingRate

Key = tuple[str, str]  # (platform_code, order_no)
YearKey = tuple[str, int]  # (ecommerce code, calendar year)

# The rate table in memory (filled at start, refreshed when the table changes).
RATES = RateCache()


class UnsettleableOrder(LookupError):
    """No rate to settle an order with: dead-lettered with this message, the service keeps going."""


def _of(table, keys: list[Key]):  # noqa: ANN001, ANN202
    return tuple_(table.c.platform_code, table.c.order_no).in_(keys)


async def load_cases(session: AsyncSession, keys: Iterable[Key]) -> dict[Key, rules.FxCase]:
    """Every key's case (empty when FX holds nothing about it), each order locked until the transaction
    ends: five statements, whatever the number of keys."""
    keys = sorted(set(keys))
    cases = {k: rules.FxCase(*k) for k in keys}
    if not keys:
        return cases
    await lock_keys(session, (order_key(*k) for k in keys))
    for r in await session.execute(select(orders).where(_of(orders, keys))):
        cases[(r.platform_code, r.order_no)].order = rules.FxOrder(
            platform_code=r.platform_code, order_no=r.order_no, version=r.version, action=r.action,
            ecommerce_code=r.ecommerce_code, direction=r.direction, currency=r.currency, actual_paid=r.actual_paid,
            submitted_at=r.submitted_at)
    for r in await session.execute(select(payments).where(_of(payments, keys))):
        cases[(r.platform_code, r.order_no)].payment = rules.FxPayment(
            payment_code=r.payment_code, payment_no=r.payment_no, amount=r.amount, currency=r.currency,
            paid_at=r.paid_at, submitted_at=r.submitted_at)
    for r in await session.execute(select(decisions).where(_of(decisions, keys))):
        cases[(r.platform_code, r.order_no)].verdict = rules.Verdict(r.order_version, r.status, r.decided_at)
    s = settlements
    for r in await session.execute(select(s.c.platform_code, s.c.order_no, s.c.order_version, s.c.status)
                                   .where(_of(s, keys))):
        cases[(r.platform_code, r.order_no)].settlement = rules.HeldSettlement(r.order_version, r.status)
    return cases


async def registered_codes(session: AsyncSession, codes: Iterable[str]) -> set[str]:
    codes = sorted(set(codes))
    if not codes:
        return set()
    return set((await session.scalars(select(directory_registrations.c.code)
                                      .where(directory_registrations.c.code.in_(codes)))).all())


async def lock_years(session: AsyncSession, keys: Iterable[YearKey],
                     registered: set[str] | None = None) -> dict[YearKey, rules.EnterpriseYear]:
    """The enterprise-years of `keys`, locked until the transaction ends; a new one starts at zero with the
    status its registration gives (`registered`: the codes to treat as registered; default: as recorded)."""
    keys = sorted(set(keys))
    if not keys:
        return {}
    if registered is None:
        registered = await registered_codes(session, (code for code, _ in keys))
    now = utcnow()
    await insert_if_absent(session, enterprise_years, [dict(
        code=code, year=year, year_to_date_usd=rules.ZERO, settlements=0, revision=0,
        directory_status=rules.directory_status(rules.ZERO, code in registered), updated_at=now,
    ) for code, year in keys], keys=["code", "year"])
    ey = enterprise_years
    rows = await session.execute(select(ey).where(tuple_(ey.c.code, ey.c.year).in_(keys))
                                 .order_by(ey.c.code, ey.c.year).with_for_update())
    return {(r.code, r.year): rules.EnterpriseYear(r.code, r.year, r.year_to_date_usd, r.settlements,
                                                   r.directory_status, r.code in registered, r.revision) for r in rows}


async def settlement(session: AsyncSession, key: str, step: rules.Settle) -> rules.Settlement:
    """§11 conversion of `step` at the current rates; `UnsettleableOrder` when the table has no rate for it."""
    rates = await RATES.current(session)
    try:
        return rules.settle(step.amount, step.currency, step.day, rates)
    except MissingRate as first:
        # The loader may have just added it (from another process): look again before giving up.
        if await RATES.refresh(session):
            try:
                return rules.settle(step.amount, step.currency, step.day, RATES.rates or FxRates([]))
            except MissingRate as err:
                first = err
        raise UnsettleableOrder(f"cannot settle order {key} ({step.amount} {step.currency} on {step.day}): "
                                f"{first}; load the rate with python -m services.fx.load_rates") from None


@dataclass
class Changes:
    """What a run decided, per order and per enterprise-year, waiting to be written."""

    orders: dict[Key, rules.FxOrder] = field(default_factory=dict)
    payments: dict[Key, rules.FxPayment] = field(default_factory=dict)
    verdicts: dict[Key, rules.Verdict] = field(default_factory=dict)
    settlements: dict[Key, tuple[int, FxSettled]] = field(default_factory=dict)  # (order version, settlement)
    years: dict[YearKey, rules.EnterpriseYear] = field(default_factory=dict)


async def save(session: AsyncSession, changes: Changes) -> None:
    """One statement per table (multi-row upserts)."""
    now = utcnow()
    await upsert(session, orders, [dict(
        platform_code=o.platform_code, order_no=o.order_no, version=o.version, action=o.action,
        ecommerce_code=o.ecommerce_code, direction=o.direction, currency=o.currency, actual_paid=o.actual_paid,
        submitted_at=o.submitted_at) for o in changes.orders.values()])
    await upsert(session, payments, [dict(
        platform_code=k[0], order_no=k[1], payment_code=p.payment_code, payment_no=p.payment_no, amount=p.amount,
        currency=p.currency, paid_at=p.paid_at, submitted_at=p.submitted_at) for k, p in changes.payments.items()])
    await upsert(session, decisions, [dict(
        platform_code=k[0], order_no=k[1], order_version=v.order_version, status=v.status, decided_at=v.decided_at)
        for k, v in changes.verdicts.items()])
    await upsert(session, settlements, [dict(
        platform_code=s.platform_code, order_no=s.order_no, order_version=version, ecommerce_code=s.ecommerce_code,
        status=s.status, amount=s.amount, currency=s.currency, amount_cny=s.amount_cny, rate=s.rate,
        rate_date=date.fromisoformat(s.rate_date) if s.rate_date else None, amount_usd=s.amount_usd, year=s.year,
        year_to_date_usd=s.year_to_date_usd, directory_status=s.directory_status, settled_at=s.settled_at,
        document=s.model_dump(mode="json")) for version, s in changes.settlements.values()])
    await upsert(session, enterprise_years, [dict(
        code=y.code, year=y.year, year_to_date_usd=y.year_to_date_usd, settlements=y.settlements,
        directory_status=y.directory_status, revision=y.revision, updated_at=now) for _, y in sorted(changes.years.items())])
