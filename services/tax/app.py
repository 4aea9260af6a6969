"""The tax service (domain rules §7, §8): assesses released imports, exempts released exports and keeps
their revenue for deemed income tax. Its officers' back office: deemed income and assessments."""
from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy import and_, select

from contracts.types import format_money
from services.tax import rules
from services.tax.handlers import handlers
from services.tax.tables import assessments, export_revenue
from shared.clock import china_date, utcnow
from shared.http import Operator, Problem, unprocessable
from shared.runtime import Service

service = Service("tax", handlers=handlers)
router = APIRouter(prefix="/v1", tags=["tax back office"])

Code = Annotated[str, Path(min_length=1, max_length=32)]


@router.get("/deemed-income/{code}")
async def deemed_income(code: Code, _: Operator, quarter: Annotated[str | None, Query()] = None):
    """§8: an ecommerce enterprise's export revenue in a quarter (default: the current one, China time)
    and the deemed taxable income, 4% of it. No exports is an answer (zero), not a 404."""
    if quarter is None:
        quarter = rules.quarter_of(china_date(utcnow()))
    try:
        rules.parse_quarter(quarter)
    except ValueError as err:
        raise unprocessable([{"field": "quarter", "code": "invalid_quarter", "message": str(err)}],
                            f"quarter must look like 2026Q4, not {quarter!r}") from None
    async with service.readers() as session:
        revenues = (await session.execute(select(export_revenue.c.revenue_cny).where(and_(
            export_revenue.c.ecommerce_code == code, export_revenue.c.quarter == quarter)))).scalars().all()
    # Summed here, not in SQL: SQLite would add the amounts as floats.
    revenue = sum(revenues, Decimal("0"))
    return {
        "code": code,
        "quarter": quarter,
        "export_revenue_cny": format_money(revenue),
        "deemed_taxable_income_cny": format_money(rules.deemed_taxable_income(revenue)),
        "rate": str(rules.DEEMED_INCOME_RATE),
        "orders": len(revenues),
    }


@router.get("/assessments/{platform_code}/{order_no}")
async def assessment(platform_code: Code, order_no: Annotated[str, Path(min_length=1, max_length=64)], _: Operator):
    """The order's current assessment, exactly as published on tax.assessment.v1."""
    async with service.readers() as session:
        document = await session.scalar(select(assessments.c.document).where(and_(
            assessments.c.platform_code == platform_code, assessments.c.order_no == order_no)))
    if document is None:
        raise Problem(404, "Not found", f"no tax assessment for order {order_no} of platform {platform_code}")
    return document


app = service.http(router, title="Single window: tax back office", version="1")
