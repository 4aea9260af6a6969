"""Credit's loading and saving, set-based: the files of every enterprise of a run with one query, the
ledger keys or deltas with one more, and each write with one statement per table (a multi-row INSERT, or
one UPDATE executed for many rows). Every lookup is by an indexed key: files by primary key (code), the
ledger by its unique event_key or by ix_score_events_enterprise.

Locks (PostgreSQL; SQLite has one writer at a time anyway): files read to be changed are read FOR UPDATE
in code order, so two runs over overlapping enterprises queue instead of deadlocking. A file or ledger row
another instance wrote between our read and our insert makes `RaceLost` raise: the batch core then handles
the run again record by record, and the retry reads what the other instance wrote.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.credit.domain import Account, ScoreEvent
from services.credit.rules import CreditFile
from services.credit.tables import credit_files, score_events
from shared.db import insert_if_absent


class RaceLost(RuntimeError):
    """Another instance wrote a file or a ledger row of this run meanwhile."""


def account_of(row) -> Account:  # noqa: ANN001
    return Account(CreditFile(code=row.code, customs_credit=row.customs_credit, score=Decimal(row.score),
                              negative_listed=bool(row.negative_listed)),
                   registered_at=row.registered_at, listed_at=row.listed_at, revision=row.revision)


def _columns(a: Account) -> dict:
    return {"customs_credit": a.file.customs_credit, "score": a.file.score, "negative_listed": a.file.negative_listed,
            "listed_at": a.listed_at, "registered_at": a.registered_at, "revision": a.revision}


# --- loading -------------------------------------------------------------------------------------------


async def accounts(session: AsyncSession, codes: Collection[str]) -> dict[str, Account]:
    """The files of these enterprises, locked, by code (absent: no file)."""
    if not codes:
        return {}
    rows = (await session.execute(select(credit_files).where(credit_files.c.code.in_(sorted(codes)))
                                  .order_by(credit_files.c.code).with_for_update())).all()
    return {r.code: account_of(r) for r in rows}


async def file_row(session: AsyncSession, code: str):  # noqa: ANN201
    """One file as stored (for the back office's view), or None."""
    return (await session.execute(select(credit_files).where(credit_files.c.code == code))).first()


async def counted_keys(session: AsyncSession, keys: Collection[str]) -> set[str]:
    """Which of these ledger keys were counted already."""
    if not keys:
        return set()
    return set((await session.execute(select(score_events.c.event_key).where(
        score_events.c.event_key.in_(sorted(keys))))).scalars())


async def ledger(session: AsyncSession, codes: Collection[str]) -> dict[str, list[Decimal]]:
    """Every delta counted for these enterprises, in counting order."""
    if not codes:
        return {}
    deltas: dict[str, list[Decimal]] = {}
    for code, delta in (await session.execute(select(score_events.c.enterprise_code, score_events.c.delta).where(
            score_events.c.enterprise_code.in_(sorted(codes))).order_by(score_events.c.id))).all():
        deltas.setdefault(code, []).append(Decimal(delta))
    return deltas


# --- saving --------------------------------------------------------------------------------------------


async def count(session: AsyncSession, events: Sequence[ScoreEvent | None], now: datetime) -> None:
    """Writes the score events (None: nothing) to the ledger, in order. Raises RaceLost when a key was
    written meanwhile."""
    rows = [{"event_key": e.key, "enterprise_code": e.enterprise_code, "delta": e.delta, "reason": e.reason[:2000],
             "occurred_at": e.occurred_at, "counted_at": now} for e in events if e is not None]
    if await insert_if_absent(session, score_events, rows, ["event_key"]) < len(rows):
        raise RaceLost("a score event of this run was counted by another instance meanwhile")


async def open_files(session: AsyncSession, opened: Mapping[str, Account], now: datetime) -> None:
    """Creates these files. Raises RaceLost when one was created meanwhile."""
    rows = [{"code": code, **_columns(a), "opened_at": now, "updated_at": now} for code, a in sorted(opened.items())]
    if await insert_if_absent(session, credit_files, rows, ["code"]) < len(rows):
        raise RaceLost("a credit file of this run was opened by another instance meanwhile")


async def save_files(session: AsyncSession, changed: Mapping[str, Account], now: datetime) -> None:
    """Writes files that exist (and were read locked), one UPDATE for them all."""
    if not changed:
        return
    names = (*_columns(next(iter(changed.values()))), "updated_at")
    stmt = (update(credit_files).where(credit_files.c.code == bindparam("k_code"))
            .values({c: bindparam(f"v_{c}") for c in names}))
    await session.execute(stmt, [{"k_code": code, **{f"v_{c}": v for c, v in _columns(a).items()}, "v_updated_at": now}
                                 for code, a in sorted(changed.items())])
