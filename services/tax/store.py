"""Tax's cases, loaded and saved a run at a time (set-based).

`load_cases` locks every order of a run and reads what tax holds about them with one query per table
(orders, decisions, assessments), by primary key. `Changes` collects what the run decided, folded per
order (the last state of a key wins; export revenue: the first of a key wins, as the stored row does), and
`save` writes it with one statement per table.

The lock: an order and customs' decision about it travel on two topics, which two instances of tax may
consume at the same moment. Unlocked, each would read the case before the other committed its half, and
neither would assess (issue 9). Locked per order (shared.db.lock_keys, in one statement for the run, in
hash order), whichever transaction comes second reads the first one's half and assesses.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.identifiers import order_key
from contracts.v1.events import TaxAssessment
from services.tax import rules
from services.tax.tables import assessments, decisions, export_revenue, orders
from shared.db import insert_if_absent, lock_keys, upsert

Key = tuple[str, str]  # (platform_code, order_no)


def _of(table, keys: list[Key]):  # noqa: ANN001, ANN202
    return tuple_(table.c.platform_code, table.c.order_no).in_(keys)


async def load_cases(session: AsyncSession, keys: Iterable[Key]) -> dict[Key, rules.TaxCase]:
    """Every key's case (empty when tax holds nothing about it), each order locked until the transaction
    ends: four statements, whatever the number of keys."""
    keys = sorted(set(keys))
    cases = {k: rules.TaxCase(*k) for k in keys}
    if not keys:
        return cases
    await lock_keys(session, (order_key(*k) for k in keys))
    o, d, a = orders, decisions, assessments
    for row in await session.execute(select(o.c.platform_code, o.c.order_no, o.c.version, o.c.action,
                                            o.c.submitted_at, o.c.document).where(_of(o, keys))):
        cases[(row.platform_code, row.order_no)].order = rules.order_from_document(
            row.document, row.version, row.action, row.submitted_at)
    for row in await session.execute(select(d).where(_of(d, keys))):
        cases[(row.platform_code, row.order_no)].verdict = rules.Verdict(
            order_version=row.order_version, status=row.status, direction=row.direction, tax_mode=row.tax_mode,
            decided_at=row.decided_at)
    for row in await session.execute(select(a.c.platform_code, a.c.order_no, a.c.order_version, a.c.status)
                                     .where(_of(a, keys))):
        cases[(row.platform_code, row.order_no)].assessment = rules.HeldAssessment(row.order_version, row.status)
    return cases


@dataclass
class Changes:
    """What a run decided, per order, waiting to be written."""

    orders: dict[Key, rules.TaxOrder] = field(default_factory=dict)
    verdicts: dict[Key, rules.Verdict] = field(default_factory=dict)
    assessments: dict[Key, TaxAssessment] = field(default_factory=dict)
    revenue: dict[Key, rules.ExportRevenue] = field(default_factory=dict)

    def add_revenue(self, revenue: rules.ExportRevenue) -> None:
        self.revenue.setdefault((revenue.platform_code, revenue.order_no), revenue)


async def save(session: AsyncSession, changes: Changes) -> None:
    """At most one statement per table: multi-row upserts, and an insert-if-absent for export revenue
    (an order's revenue counts once, whatever its later versions or repeated decisions)."""
    await upsert(session, orders, [dict(
        platform_code=o.platform_code, order_no=o.order_no, version=o.version, action=o.action,
        ecommerce_code=o.ecommerce_code, direction=o.direction, currency=o.currency, tax_total=o.tax_total,
        actual_paid=o.actual_paid, submitted_at=o.submitted_at, document=dict(o.document),
    ) for o in changes.orders.values()])
    await upsert(session, decisions, [dict(
        platform_code=k[0], order_no=k[1], order_version=v.order_version, status=v.status, direction=v.direction,
        tax_mode=v.tax_mode, decided_at=v.decided_at,
    ) for k, v in changes.verdicts.items()])
    await upsert(session, assessments, [dict(
        platform_code=a.platform_code, order_no=a.order_no, order_version=a.order_version,
        ecommerce_code=a.ecommerce_code, status=a.status, total=a.total, assessed_at=a.assessed_at,
        document=a.model_dump(mode="json"),
    ) for a in changes.assessments.values()])
    await insert_if_absent(session, export_revenue, [dict(
        platform_code=r.platform_code, order_no=r.order_no, ecommerce_code=r.ecommerce_code, quarter=r.quarter,
        revenue_cny=r.revenue_cny, order_version=r.order_version, decided_at=r.decided_at,
    ) for r in changes.revenue.values()], keys=["platform_code", "order_no"])
