"""Quarantine back office (port 8006): an inspector's result for an order held for inspection."""
from __future__ import annotations

from fastapi import APIRouter

from contracts.identifiers import order_key
from contracts.v1.documents import InspectionResultIn
from services.quarantine import rules, store
from services.quarantine.handlers import handlers, status
from shared.clock import utcnow
from shared.http import Operator, Problem
from shared.runtime import Service

service = Service("quarantine", handlers=handlers)
router = APIRouter(prefix="/v1", tags=["quarantine"])


@router.post("/inspections/{platform_code}/{order_no}")
async def inspection_result(platform_code: str, order_no: str, result: InspectionResultIn, _: Operator):
    """pass → released, fail → refused; 404 for an order quarantine does not hold, 409 for one not held."""
    key = (platform_code, order_no)
    async with service.unit_of_work() as uow:
        case = (await store.load(uow.session, [key])).get(key)
        if case is None:
            raise Problem(404, "Not found", f"quarantine holds no order {order_key(*key)}")
        try:
            case = rules.on_inspection(case, result.result == "pass")
        except rules.NotHeld as err:
            raise Problem(409, "Conflict", str(err)) from None
        now = utcnow()
        await store.save(uow.session, {key: case}, now)
        uow.emit(status(key, case, now), correlation_id=order_key(*key))
    return status(key, case, now).model_dump(mode="json")


app = service.http(router, title="Single window: quarantine back office", version="1")
