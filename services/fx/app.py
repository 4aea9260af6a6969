"""The FX service (domain rules §11): settlements in USD and trade FX directory status. Its officers'
back office: directory registrations, an enterprise's year totals, an order's settlement."""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from sqlalchemy import and_, func, select

from contracts.types import format_money
from contracts.v1.events import FxDirectoryStatusChanged
from services.fx import load_rates, rules, store
from services.fx.handlers import handlers
from services.fx.settings import settings
from services.fx.store import RATES
from services.fx.tables import directory_registrations, enterprise_years, rates, settlements
from shared.db import insert_if_absent
from shared.http import Operator, Problem
from shared.runtime import Service, UnitOfWork
from shared.clock import china_date, utcnow

log = logging.getLogger(__name__)

service = Service("fx", handlers=handlers)
router = APIRouter(prefix="/v1", tags=["fx back office"])

Code = Annotated[str, Path(min_length=1, max_length=32)]
OrderNo = Annotated[str, Path(min_length=1, max_length=64)]



# --- the rate table -------------------------------------------------------------------------


async def load_rates_if_empty(svc: Service) -> None:
    """A fresh database starts with the reference rates; afterwards only the loader changes them."""
    async with svc.unit_of_work() as uow:
        if not await uow.session.scalar(select(func.count()).select_from(rates)):
            path = load_rates.default_csv()
            count = await load_rates.store(uow.session, load_rates.read_csv(path))
            log.info(f"loaded {count} FX rates from {path}")
        await RATES.refresh(uow.session, force=True)


service.on_start.append(load_rates_if_empty)


@service.every(lambda _: settings().fx_rates_refresh_seconds)
async def refresh_rates(uow: UnitOfWork) -> None:
    if await RATES.refresh(uow.session):
        log.info("FX rates reloaded from the rates table")


# --- back office ----------------------------------------------------------------------------


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


@router.post("/directory/{code}", status_code=201)
async def register_in_directory(code: Code, _: Operator):
    """Records the enterprise's trade FX directory registration (名录登记). It holds from now on, for
    every year; the first time, `FxDirectoryStatusChanged` to `registered` is published for this year."""
    at = utcnow()
    year = china_date(at).year
    async with service.unit_of_work() as uow:
        first_time = bool(await insert_if_absent(uow.session, directory_registrations,
                                                 dict(code=code, registered_at=at), keys=["code"]))
        registered_at = at if first_time else await uow.session.scalar(
            select(directory_registrations.c.registered_at).where(directory_registrations.c.code == code))
        # The year as it stood before this registration (locked; created at zero when new).
        held = (await store.lock_years(uow.session, [(code, year)], registered=set() if first_time else {code}))[(code, year)]
        if first_time:
            after = replace(held, directory_status="registered", registered=True, revision=held.revision + 1)
            await uow.session.execute(enterprise_years.update().where(and_(
                enterprise_years.c.code == code, enterprise_years.c.year == year)).values(
                directory_status="registered", revision=after.revision, updated_at=at))
            uow.emit(FxDirectoryStatusChanged(
                enterprise_code=code, year=year, status="registered", previous_status=held.directory_status,
                year_to_date_usd=held.year_to_date_usd, changed_at=at,
                enterprise_revision=rules.enterprise_revision(after),
            ), correlation_id=code, key=code)
    body = {"code": code, "directory_status": "registered", "registered_at": _iso(registered_at), "year": year,
            "year_to_date_usd": format_money(held.year_to_date_usd)}
    return JSONResponse(body, status_code=201 if first_time else 200)


@router.get("/enterprises/{code}")
async def enterprise(code: Code, _: Operator):
    """The enterprise's settled USD and directory status, per calendar year. An enterprise FX has not
    settled anything for is simply at zero and exempt."""
    year = china_date(utcnow()).year
    async with service.readers() as session:
        registered_at = await session.scalar(
            select(directory_registrations.c.registered_at).where(directory_registrations.c.code == code))
        rows = (await session.execute(select(enterprise_years).where(enterprise_years.c.code == code)
                                      .order_by(enterprise_years.c.year))).all()
    years = [{"year": r.year, "year_to_date_usd": format_money(r.year_to_date_usd),
              "directory_status": r.directory_status, "settlements": r.settlements} for r in rows]
    current = next((y for y in years if y["year"] == year), None) or {
        "year": year, "year_to_date_usd": "0.00", "settlements": 0,
        "directory_status": rules.directory_status(Decimal(0), registered_at is not None),
    }
    return {
        "code": code,
        "directory_registered": registered_at is not None,
        "registered_at": _iso(registered_at),
        "year": year,
        "year_to_date_usd": current["year_to_date_usd"],
        "directory_status": current["directory_status"],
        "threshold_usd": format_money(rules.DIRECTORY_THRESHOLD_USD),
        "years": years,
    }


@router.get("/settlements/{platform_code}/{order_no}")
async def settlement(platform_code: Code, order_no: OrderNo, _: Operator):
    """The order's settlement as published on fx.settlement.v1 (plus the order version it settled)."""
    async with service.readers() as session:
        row = (await session.execute(select(settlements.c.document, settlements.c.order_version).where(and_(
            settlements.c.platform_code == platform_code, settlements.c.order_no == order_no)))).first()
    if row is None:
        raise Problem(404, "Not found", f"no settlement for order {order_no} of platform {platform_code}")
    return {**row.document, "order_version": row.order_version}

app = service.http(router, title="Single window: FX back office", version="1")
