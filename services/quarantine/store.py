"""Loads and saves quarantine's cases: one statement per batch, each order locked first (shared.db.lock_keys)
so an inspection result and an order event about one order never interleave."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.identifiers import order_key
from services.quarantine.rules import Case
from services.quarantine.tables import cases
from shared.db import lock_keys, upsert

Key = tuple[str, str]  # (platform_code, order_no)


async def load(session: AsyncSession, keys: Iterable[Key]) -> dict[Key, Case]:
    keys = sorted(set(keys))
    await lock_keys(session, (order_key(*k) for k in keys))
    rows = (await session.execute(select(cases).where(tuple_(cases.c.platform_code, cases.c.order_no).in_(keys))))
    return {(r.platform_code, r.order_no): Case(r.version, r.status, tuple(filter(None, r.chapters.split(","))))
            for r in rows}


async def save(session: AsyncSession, changed: Mapping[Key, Case], at: datetime) -> None:
    await upsert(session, cases, [{"platform_code": k[0], "order_no": k[1], "version": c.version, "status": c.status,
                                   "chapters": ",".join(c.chapters), "decided_at": at} for k, c in changed.items()])
