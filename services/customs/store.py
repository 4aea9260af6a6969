"""Customs' storage, set-based: the state of every key of a run is loaded with one query per table and
written back with one statement per table, whatever the size of the run.

Locks (PostgreSQL; SQLite serialises whole write transactions instead), always taken in this order and,
within a table, in key order, so that two instances never wait on each other in a circle:
1. order_files of the run's keys (`SELECT … FOR UPDATE`): an order and its payment handled at once on
   two instances must see each other's document, or neither would decide;
2. quota_holdings of those keys;
3. buyer_year_totals of every buyer the run could charge or give back to: two orders of one buyer
   decided at once (other partition, other instance) queue there instead of both slipping under the
   annual limit (domain §5).
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Select, and_, bindparam, delete, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.v1.events import Order, Payment, Waybill
from services.customs import domain, rules
from services.customs.domain import BuyerYear, Desk, Holding, Identities, Key, Ledger, OrderFile, Reference
from services.customs.settings import settings
from services.customs.tables import (
    buyer_year_totals,
    order_files,
    parties,
    party_waits,
    quota_holdings,
    released_export_lines,
)
from shared.clock import utcnow
from shared.db import insert_if_absent
from shared.reference import fx_rates, hs_catalogue

ZERO = Decimal("0")
# 15 columns a line (30000 parameters): stays under the bound parameters one statement may carry (SQLite 32766, asyncpg 32767).
EXPORT_LINES_PER_STATEMENT = 2000
FILE_KEY = tuple_(order_files.c.platform_code, order_files.c.order_no)
HOLDING_KEY = tuple_(quota_holdings.c.platform_code, quota_holdings.c.order_no)
WAIT_KEY = tuple_(party_waits.c.platform_code, party_waits.c.order_no)
YEAR_KEY = tuple_(buyer_year_totals.c.buyer, buyer_year_totals.c.year)


def reference() -> Reference:
    s = settings()
    return Reference(hs_catalogue(), fx_rates(), s.customs_base_inspection_rate, s.customs_selection_salt,
                     s.document_timeout_hours)


# --- order files ---------------------------------------------------------------------------------


async def open_files(session: AsyncSession, first_arrivals: dict[Key, datetime]) -> dict[Key, OrderFile]:
    """The files of these keys, created on the first document about them (`first_arrivals`: the arrival
    of the run's first document of each key), locked for this transaction. Two statements."""
    if not first_arrivals:
        return {}
    now = utcnow()
    await insert_if_absent(session, order_files, [
        {"platform_code": pc, "order_no": no, "order_version": 0, "first_document_at": at, "status": "pending",
         "reasons": [], "updated_at": now} for (pc, no), at in sorted(first_arrivals.items())
    ], ["platform_code", "order_no"])
    return await lock_files(session, first_arrivals)


async def lock_files(session: AsyncSession, keys: Collection[Key]) -> dict[Key, OrderFile]:
    """The existing files of these keys, locked in key order. One query."""
    if not keys:
        return {}
    return await _files(session, select(order_files).where(FILE_KEY.in_(sorted(set(keys)))))


async def _files(session: AsyncSession, query: Select) -> dict[Key, OrderFile]:
    rows = (await session.execute(query.order_by(order_files.c.platform_code, order_files.c.order_no)
                                  .with_for_update())).mappings().all()
    files = (OrderFile(dict(row)) for row in rows)
    return {f.pk: f for f in files}


async def sweep_files(session: AsyncSession, work: str, cutoff: datetime, process_started_at: datetime,
                      limit: int) -> dict[Key, OrderFile]:
    """Up to `limit` pending files for the sweep's `work`, oldest first; files another transaction holds
    (a consumer, another instance) are skipped (SKIP LOCKED). One query, on an index.

    - "timeout": not waiting for a registration, not blocked, first document at or before `cutoff`;
    - "waiting": waiting for a registration since `cutoff` or earlier;
    - "blocked": blocked on a missing FX rate before this process started (rates are read once per process)."""
    c = order_files.c
    pending = c.status == "pending"
    where, order_by = {
        "timeout": (and_(pending, c.awaiting_party_since.is_(None), c.blocked_at.is_(None),
                         c.first_document_at <= cutoff), c.first_document_at),
        "waiting": (and_(pending, c.awaiting_party_since <= cutoff), c.awaiting_party_since),
        "blocked": (and_(pending, c.blocked_at < process_started_at), c.blocked_at),
    }[work]
    rows = (await session.execute(select(order_files).where(where).order_by(order_by).limit(limit)
                                  .with_for_update(skip_locked=True))).mappings().all()
    files = (OrderFile(dict(row)) for row in rows)
    return {f.pk: f for f in files}


async def save_files(session: AsyncSession, files: Iterable[OrderFile]) -> None:
    """Every file given, written back with one executemany UPDATE."""
    now = utcnow()
    rows = []
    for file in sorted(files, key=lambda f: f.pk):
        values = file.values()
        values["updated_at"] = now
        values["k_platform_code"], values["k_order_no"] = values.pop("platform_code"), values.pop("order_no")
        rows.append(values)
    if rows:
        await session.execute(update(order_files).where(
            order_files.c.platform_code == bindparam("k_platform_code"),
            order_files.c.order_no == bindparam("k_order_no")), rows)


# --- parties -------------------------------------------------------------------------------------


async def party_rows(session: AsyncSession, codes: Collection[str]) -> dict:
    """Customs' rows of these enterprises, registered or only heard of from the credit service. One query."""
    if not codes:
        return {}
    return {r.code: r for r in await session.execute(select(parties).where(parties.c.code.in_(sorted(set(codes)))))}


async def known_parties(session: AsyncSession, codes: Collection[str]) -> dict[str, rules.Party]:
    """The registered enterprises among these codes. One query."""
    return {code: domain.party_of(row) for code, row in (await party_rows(session, codes)).items()
            if row.registered_at is not None}


async def ensure_parties(session: AsyncSession, codes: Collection[str]) -> None:
    """A row for every code (not registered, not listed) where there is none. One statement."""
    await insert_if_absent(session, parties, [{"code": code, "negative_listed": False} for code in sorted(set(codes))],
                           ["code"])


async def update_parties(session: AsyncSession, changes: Sequence[dict], *, unless_newer: str | None = None) -> None:
    """Applies `changes` ({"code": …, column: value, …}, all naming the same columns) in list order, so a
    later change to one enterprise wins: one statement (executemany) after one insert of missing rows.
    `unless_newer="credit_revision"`: a change is applied only when the held revision is not greater than
    its own, so an older change consumed later (another topic) never rolls the row back."""
    if not changes:
        return
    await ensure_parties(session, {c["code"] for c in changes})
    stmt = update(parties).where(parties.c.code == bindparam("k_code"))
    if unless_newer:
        stmt = stmt.where(parties.c[unless_newer] <= bindparam("k_revision"))
    await session.execute(stmt, [{("k_code" if k == "code" else k): v for k, v in c.items()}
                                 | ({"k_revision": c[unless_newer]} if unless_newer else {}) for c in changes])


async def waits_for(session: AsyncSession, codes: Collection[str]) -> dict[str, set[Key]]:
    """Which files wait for each of these enterprises' registration. One query."""
    waiting: dict[str, set[Key]] = {}
    if codes:
        rows = await session.execute(select(party_waits).where(party_waits.c.code.in_(sorted(set(codes)))))
        for r in rows:
            waiting.setdefault(r.code, set()).add((r.platform_code, r.order_no))
    return waiting


# --- the quota ledger ----------------------------------------------------------------------------


async def lock_ledger(session: AsyncSession, keys: Collection[Key], buyer_years: Iterable[BuyerYear]) -> Ledger:
    """The holdings of these files and the year totals of these buyers and of every buyer the files
    hold quota of, locked until the transaction ends (rows created at 0 where missing). Three queries
    at most, whatever the number of buyers."""
    holdings: dict[Key, Holding] = {}
    if keys:
        rows = await session.execute(select(quota_holdings).where(HOLDING_KEY.in_(sorted(set(keys))))
                                     .order_by(quota_holdings.c.platform_code, quota_holdings.c.order_no)
                                     .with_for_update())
        holdings = {(r.platform_code, r.order_no): Holding(r.buyer, r.year, r.amount_cny, r.order_version, r.reserved_at)
                    for r in rows}
    pairs = sorted({*buyer_years, *((h.buyer, h.year) for h in holdings.values())})
    totals: dict[BuyerYear, Decimal] = {}
    if pairs:
        now = utcnow()
        await insert_if_absent(session, buyer_year_totals, [
            {"buyer": buyer, "year": year, "total_cny": ZERO, "updated_at": now} for buyer, year in pairs
        ], ["buyer", "year"])
        rows = await session.execute(select(buyer_year_totals.c.buyer, buyer_year_totals.c.year,
                                            buyer_year_totals.c.total_cny).where(YEAR_KEY.in_(pairs))
                                     .order_by(buyer_year_totals.c.buyer, buyer_year_totals.c.year).with_for_update())
        totals = {(r.buyer, r.year): r.total_cny if r.total_cny is not None else ZERO for r in rows}
    return Ledger(totals, holdings)


async def save_ledger(session: AsyncSession, ledger: Ledger) -> None:
    """Changed year totals (one executemany UPDATE), then the touched holdings replaced (one DELETE, one
    INSERT)."""
    now = utcnow()
    if ledger.changed_totals:
        await session.execute(update(buyer_year_totals).where(
            buyer_year_totals.c.buyer == bindparam("k_buyer"), buyer_year_totals.c.year == bindparam("k_year")),
            [{"k_buyer": b, "k_year": y, "total_cny": ledger.totals[(b, y)], "updated_at": now}
             for b, y in sorted(ledger.changed_totals)])
    touched = sorted(ledger.touched_holdings)
    if touched:
        await session.execute(delete(quota_holdings).where(HOLDING_KEY.in_(touched)))
        rows = [{"platform_code": pc, "order_no": no, "buyer": h.buyer, "year": h.year, "amount_cny": h.amount_cny,
                 "order_version": h.order_version, "reserved_at": h.reserved_at}
                for pc, no in touched if (h := ledger.holdings.get((pc, no))) is not None]
        if rows:
            await session.execute(insert(quota_holdings), rows)


# --- a run's desk --------------------------------------------------------------------------------


def named_codes(files: Iterable[OrderFile]) -> set[str]:
    """The enterprises the files' documents name."""
    files = list(files)
    return _named_codes((f.order for f in files), (f.payment for f in files), (f.waybill for f in files))


def _named_codes(orders: Iterable[Order | None], payments: Iterable[Payment | None],
                 waybills: Iterable[Waybill | None]) -> set[str]:
    codes: set[str] = set()
    for order in orders:
        if order is not None:
            codes |= {order.platform_code, order.ecommerce_code}
    codes |= {p.payment_code for p in payments if p is not None}
    codes |= {w.logistics_code for w in waybills if w is not None}
    return codes


async def desk(session: AsyncSession, files: dict[Key, OrderFile], *, orders: Sequence[domain.OrderEvent] = (),
               payments: Sequence[Payment] = (), waybills: Sequence[Waybill] = (),
               waiting: dict[str, set[Key]] | None = None, known: dict[str, rules.Party] | None = None) -> Desk:
    """The desk of a run over `files` (already loaded and locked): the parties every held or arriving
    document names (one query, unless `known` is given), and the quota ledger of every buyer a decision
    in the run could charge (three queries at most)."""
    identities = Identities()
    held = list(files.values())
    if known is None:
        codes = _named_codes([*(f.order for f in held), *(e.order for e in orders)],
                             [*(f.payment for f in held), *payments], [*(f.waybill for f in held), *waybills])
        known = await known_parties(session, codes)
    # Only a pending file can be decided on the order it holds; an arriving order brings its own buyer.
    buyer_years = {identities.buyer_year(f.order, f.order_submitted_at) for f in held if f.status == "pending"}
    buyer_years |= {identities.buyer_year(e.order, e.submitted_at) for e in orders}
    buyer_years.discard(None)
    ledger = await lock_ledger(session, files.keys(), buyer_years)  # type: ignore[arg-type]
    return Desk(files, ledger, dict(known), reference(), identities, waiting=waiting or {})


async def save(session: AsyncSession, desk: Desk) -> None:
    """Everything the run changed: files, waits, the ledger and released export lines, one statement
    per table (two for tables whose rows are replaced)."""
    await save_files(session, (desk.files[k] for k in desk.dirty if k in desk.files))
    cleared = sorted(desk.cleared_waits)
    if cleared:
        await session.execute(delete(party_waits).where(WAIT_KEY.in_(cleared)))
    await insert_if_absent(session, party_waits, [
        {"code": code, "platform_code": pc, "order_no": no}
        for (pc, no), codes in sorted(desk.new_waits.items()) for code in sorted(codes)
    ], ["code", "platform_code", "order_no"])
    await save_ledger(session, desk.ledger)
    lines = desk.export_lines
    for start in range(0, len(lines), EXPORT_LINES_PER_STATEMENT):  # one statement unless the run is huge
        await insert_if_absent(session, released_export_lines, lines[start:start + EXPORT_LINES_PER_STATEMENT],
                               ["platform_code", "order_no", "line_no"])
