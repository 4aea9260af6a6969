"""The console's reads of the gateway's own database: finding orders, listing enterprises with every
agency's view of them, and the recent customs decision times. Each is one query per table, bounded by
LIMIT, on indexed keys where the schema has them (see `find_orders` for the one that has none)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import quantiles
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.identifiers import mask_id_number
from services.gateway import views
from services.gateway.tables import agency_views, enterprise_views, enterprises, orders
from shared.clock import utcnow

MAX_ROWS = 50
SEARCH_KINDS = ("order_no", "platform", "buyer")


@dataclass(frozen=True)
class Found:
    """One order in a search result."""

    platform_code: str
    order_no: str
    ecommerce_code: str
    direction: str
    version: int
    submitted_at: datetime
    customs_status: str


def buyer_key(text: str) -> str:
    """What a buyer search looks for: the masked form of what was typed (spec §7.2), so the operator may
    type a masked id as shown elsewhere or, at worst, a full number, which is masked before it is used."""
    return mask_id_number(text.strip().upper())


async def find_orders(session: AsyncSession, kind: str, text: str) -> list[Found]:
    """Orders whose number is `text` (every platform), of platform `text`, or whose buyer's masked id is
    `buyer_key(text)`, newest first, at most MAX_ROWS, each with its customs status; one query.

    Order number and platform use the primary key's columns. The buyer's masked id lives inside the
    stored document (JSON) and has no index: that search reads every order (fine for an operator's
    occasional look on a development or mid-sized database; an expression index on
    `document->'buyer'->>'id_number_masked'` is the step for millions of orders)."""
    text = text.strip()
    if not text or kind not in SEARCH_KINDS:
        return []
    customs = agency_views.alias("customs")
    query = select(orders.c.platform_code, orders.c.order_no, orders.c.ecommerce_code, orders.c.direction,
                   orders.c.version, orders.c.submitted_at, customs.c.view.label("customs")).select_from(
        orders.outerjoin(customs, and_(customs.c.platform_code == orders.c.platform_code,
                                       customs.c.order_no == orders.c.order_no, customs.c.agency == "customs")))
    if kind == "order_no":
        query = query.where(orders.c.order_no == text)
    elif kind == "platform":
        query = query.where(orders.c.platform_code == text)
    else:
        masked = orders.c.document["buyer"]["id_number_masked"].as_string()
        query = query.where(masked == buyer_key(text))
    rows = (await session.execute(query.order_by(orders.c.submitted_at.desc(), orders.c.order_no).limit(MAX_ROWS))).all()
    return [Found(r.platform_code, r.order_no, r.ecommerce_code, r.direction, r.version, r.submitted_at,
                  (r.customs or {}).get("status", "pending")) for r in rows]


async def list_enterprises(session: AsyncSession, text: str = "") -> list[dict[str, Any]]:
    """Enterprises whose code starts with `text` or whose name contains it (all when empty), newest
    registration first, at most MAX_ROWS, each as every agency sees it: the registration (gateway), customs'
    credit category, and every agency view held (FX directory and year-to-date, credit score, grade and
    negative listing, any other agency's); two queries."""
    query = select(enterprises.c.code, enterprises.c.name, enterprises.c.roles, enterprises.c.country,
                   enterprises.c.customs_credit, enterprises.c.registered_at)
    text = text.strip()
    if text:
        like = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(or_(enterprises.c.code.like(f"{like}%", escape="\\"),
                                enterprises.c.name.ilike(f"%{like}%", escape="\\")))
    rows = (await session.execute(query.order_by(enterprises.c.registered_at.desc(), enterprises.c.code)
                                  .limit(MAX_ROWS))).all()
    held: dict[str, dict[str, dict]] = {}
    if rows:
        found = await session.execute(select(enterprise_views.c.enterprise_code, enterprise_views.c.agency,
                                             enterprise_views.c.view, enterprise_views.c.updated_at)
                                      .where(enterprise_views.c.enterprise_code.in_([r.code for r in rows])))
        for v in found:
            held.setdefault(v.enterprise_code, {})[v.agency] = {**v.view, "updated_at": v.updated_at.isoformat()}
    answer = []
    for r in rows:
        registration = {"name": r.name, "roles": ", ".join(r.roles), "country": r.country,
                        "registered_at": r.registered_at.isoformat()}
        agencies = {"customs": {"credit_category": r.customs_credit}, "tax": {"registered": True},
                    **views.enterprise_sections(held.get(r.code, {}), reserved=("customs", "tax"))}
        answer.append({"code": r.code, "registration": registration, "agencies": agencies})
    return answer


DECISION_WINDOW = timedelta(minutes=15)
DECISION_SAMPLE = 5000


async def decision_times(session: AsyncSession, now: datetime | None = None) -> dict[str, Any]:
    """Customs decision time (spec §5: from the last needed document at the gateway to the customs
    decision) of the orders submitted in the last 15 minutes that customs has decided, at most the newest
    5,000: {"p50", "p95" (seconds, None without decisions), "count", "window_minutes"}. One query (the
    submitted_at index, then the agency view by primary key)."""
    now = now or utcnow()
    customs = agency_views.alias("customs")
    rows = (await session.execute(
        select(orders.c.documents_complete_at, customs.c.updated_at, customs.c.view).select_from(
            orders.join(customs, and_(customs.c.platform_code == orders.c.platform_code,
                                      customs.c.order_no == orders.c.order_no, customs.c.agency == "customs")))
        .where(orders.c.submitted_at >= now - DECISION_WINDOW, orders.c.documents_complete_at.is_not(None))
        .order_by(orders.c.submitted_at.desc()).limit(DECISION_SAMPLE))).all()
    seconds = sorted(max(0.0, (r.updated_at - r.documents_complete_at).total_seconds()) for r in rows
                     if (r.view or {}).get("status") not in (None, "pending"))
    result: dict[str, Any] = {"count": len(seconds), "window_minutes": DECISION_WINDOW.total_seconds() / 60,
                              "p50": None, "p95": None}
    if len(seconds) == 1:
        result.update(p50=seconds[0], p95=seconds[0])
    elif seconds:
        cuts = quantiles(seconds, n=100, method="inclusive")
        result.update(p50=cuts[49], p95=cuts[94])
    return result
