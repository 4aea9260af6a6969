"""Credit back office (spec §5a, port 8005): credit files and the negative list, which only the operator
lifts (domain rules §9)."""
from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from services.credit import store
from services.credit.handlers import emit, handlers
from services.credit.rules import display_score, grade, lift_listing
from services.credit.tables import credit_files, score_events
from shared.clock import utcnow
from shared.http import Operator, Problem
from shared.runtime import Service

service = Service("credit", handlers=handlers)
router = APIRouter(prefix="/v1", tags=["credit"])

HISTORY = 50


def _iso(value) -> str | None:  # noqa: ANN001
    return value.isoformat() if value is not None else None


def file_view(row) -> dict:  # noqa: ANN001
    score = display_score(row.score)
    return {
        "code": row.code, "customs_credit": row.customs_credit, "score": str(score), "grade": grade(score),
        "negative_listed": bool(row.negative_listed), "listed_at": _iso(row.listed_at),
        # False while the file was opened by an event that came before the enterprise's registration.
        "registered": row.registered_at is not None, "registered_at": _iso(row.registered_at),
        "opened_at": _iso(row.opened_at), "updated_at": _iso(row.updated_at),
    }


def not_found(code: str) -> Problem:
    return Problem(404, "Not found", f"credit holds no file for enterprise {code}")


@router.get("/credit/{code}")
async def credit_file(code: str, _: Operator):
    async with service.readers() as session:
        row = await store.file_row(session, code)
        if row is None:
            raise not_found(code)
        history = (await session.execute(select(score_events).where(score_events.c.enterprise_code == code)
                                          .order_by(score_events.c.id.desc()).limit(HISTORY))).all()
    return {**file_view(row), "score_events": [
        {"delta": str(display_score(h.delta)),
         "reason": h.reason, "occurred_at": _iso(h.occurred_at), "counted_at": _iso(h.counted_at)}
        for h in history]}


@router.get("/negative-list")
async def negative_list(_: Operator):
    async with service.readers() as session:
        rows = (await session.execute(select(credit_files).where(credit_files.c.negative_listed.is_(True))
                                      .order_by(credit_files.c.listed_at, credit_files.c.code))).all()
    return {"count": len(rows), "enterprises": [file_view(r) for r in rows]}


@router.delete("/negative-list/{code}")
async def remove_from_list(code: str, _: Operator):
    """Takes the enterprise off the list; the score stays as earned. Idempotent: 200 whether or not it was listed."""
    async with service.unit_of_work() as uow:
        account = (await store.accounts(uow.session, [code])).get(code)
        if account is None:
            raise not_found(code)
        lifted, notice = lift_listing(account)
        if notice is not None:
            now = utcnow()
            await store.save_files(uow.session, {code: lifted}, now)
            emit(uow, [None], [[notice]], now)
        row = await store.file_row(uow.session, code)
    return file_view(row)


app = service.http(router, title="Single window: credit back office", version="1")
