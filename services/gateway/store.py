"""Set-based loading and saving of the gateway's read model: one query or one statement per table for a
whole run of answers, every lookup by an indexed key (the tables' primary keys)."""
from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.tables import agency_views, enterprise_views, enterprises, orders, payments, trace, waybills
from services.gateway.views import EnterpriseView, OrderKey, OrderView, TraceEntry
from shared.db import upsert


async def enterprise_codes(session: AsyncSession, codes: Collection[str]) -> dict[str, str]:
    """The party lookup of the CEB front door (spec 1.1 §7.5: a CEB record may name a party by its enterprise
    code or by its 10-character customs registration code): {given code: registered enterprise code} for
    every given code that is a registered enterprise's code or a registered `customs_code`; codes that are
    neither are absent. One query over both unique indexes, however many codes.

    Should one string be both one enterprise's code and another's customs code (registration refuses both
    collisions, but two such registrations at the same moment could slip through), the enterprise code wins:
    a customs code can never take over an enterprise's own code."""
    wanted = set(codes)
    if not wanted:
        return {}
    rows = await session.execute(select(enterprises.c.code, enterprises.c.customs_code).where(
        or_(enterprises.c.code.in_(sorted(wanted)), enterprises.c.customs_code.in_(sorted(wanted)))))
    by_customs_code: dict[str, str] = {}
    found: dict[str, str] = {}
    for r in rows:
        if r.code in wanted:
            found[r.code] = r.code
        if r.customs_code in wanted:
            by_customs_code[r.customs_code] = r.code
    return {**by_customs_code, **found}  # an enterprise code wins over the same string as a customs code


async def save_order_views(session: AsyncSession, views: Sequence[OrderView]) -> None:
    """One upsert for every view (at most one per order and agency): a held view about a newer version of
    the order is kept (`WHERE agency_views.version <= excluded.version`)."""
    await upsert(session, agency_views, [v.row() for v in views], unless_newer="version")


async def save_enterprise_views(session: AsyncSession, views: Sequence[EnterpriseView]) -> None:
    """One upsert for every view (at most one per enterprise and agency): a held view with a greater
    revision is kept (`WHERE enterprise_views.revision <= excluded.revision`)."""
    await upsert(session, enterprise_views, [v.row() for v in views], unless_newer="revision")


async def add_trace_entries(session: AsyncSession, entries: Sequence[TraceEntry]) -> None:
    """One multi-row insert for every trace line."""
    if entries:
        await session.execute(insert(trace), [e.row() for e in entries])


async def add_trace(session: AsyncSession, correlation_id: str, at: datetime, source: str, type_: str,
                    summary: str) -> None:
    """One trace line (the gateway's own: a document received, corrected, cancelled)."""
    await add_trace_entries(session, [TraceEntry(correlation_id, at, source, type_, summary)])


async def order_views(session: AsyncSession, key: OrderKey) -> dict[str, tuple[dict[str, Any], datetime]]:
    """Every agency view held about one order: {agency: (view, updated_at)}; one query by primary key."""
    rows = await session.execute(select(agency_views.c.agency, agency_views.c.view, agency_views.c.updated_at).where(
        agency_views.c.platform_code == key[0], agency_views.c.order_no == key[1]))
    return {r.agency: (r.view, r.updated_at) for r in rows}


async def orders_views(session: AsyncSession, keys: Collection[OrderKey]
                       ) -> dict[OrderKey, dict[str, tuple[dict[str, Any], datetime]]]:
    """`order_views` of many orders at once: {order: {agency: (view, updated_at)}}; one query."""
    if not keys:
        return {}
    rows = await session.execute(select(agency_views.c.platform_code, agency_views.c.order_no, agency_views.c.agency,
                                        agency_views.c.view, agency_views.c.updated_at).where(
        tuple_(agency_views.c.platform_code, agency_views.c.order_no).in_(sorted(keys))))
    held: dict[OrderKey, dict[str, tuple[dict[str, Any], datetime]]] = {}
    for r in rows:
        held.setdefault((r.platform_code, r.order_no), {})[r.agency] = (r.view, r.updated_at)
    return held


def status_query(keys: Collection[OrderKey]):  # noqa: ANN201
    """The orders' own columns of the status view (spec §4.4) and the firms they name, whether their payment
    and waybill arrived, and the ecommerce enterprise's credit view: one query by primary keys (the agencies' views are a second,
    `order_views` / `orders_views`); `views.one_stop_view` makes the view of each line."""
    has_payment = select(payments.c.payment_no).where(
        payments.c.platform_code == orders.c.platform_code, payments.c.order_no == orders.c.order_no).exists()
    has_waybill = select(waybills.c.waybill_no).where(
        waybills.c.platform_code == orders.c.platform_code, waybills.c.order_no == orders.c.order_no).exists()
    credit = select(enterprise_views.c.view).where(
        enterprise_views.c.enterprise_code == orders.c.ecommerce_code, enterprise_views.c.agency == "credit"
    ).scalar_subquery()
    return select(orders.c.platform_code, orders.c.order_no, orders.c.ecommerce_code, orders.c.direction,
                  orders.c.trade_mode, orders.c.version, orders.c.submitted_at, orders.c.updated_at,
                  orders.c.payment_code, orders.c.logistics_code,
                  has_payment.label("has_payment"), has_waybill.label("has_waybill"), credit.label("credit")
                  ).where(tuple_(orders.c.platform_code, orders.c.order_no).in_(sorted(keys)))


async def enterprise_views_of(session: AsyncSession, code: str,
                              agencies: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """Every agency view held about one enterprise (or only `agencies`'): {agency: view}; one query."""
    query = select(enterprise_views.c.agency, enterprise_views.c.view).where(enterprise_views.c.enterprise_code == code)
    if agencies is not None:
        query = query.where(enterprise_views.c.agency.in_(list(agencies)))
    return {r.agency: r.view for r in await session.execute(query)}


async def people_of_order(session: AsyncSession, platform_code: str, order_no: str) -> list[dict]:
    """The order's buyer and every payer of a payment for it, as the gateway holds them (`name`,
    `id_number_masked`: the full number is sealed for customs), for taking them out of free text that
    leaves the gateway. Two indexed lookups, one per table."""
    docs = list(await session.scalars(select(orders.c.document).where(
        orders.c.platform_code == platform_code, orders.c.order_no == order_no)))
    docs += list(await session.scalars(select(payments.c.document).where(
        payments.c.platform_code == platform_code, payments.c.order_no == order_no)))
    return [person for d in docs for person in (d.get("buyer"), d.get("payer")) if person]
