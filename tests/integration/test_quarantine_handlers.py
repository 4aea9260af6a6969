"""Quarantine on the seam: its handler driven by the batch core (shared/testing.py LocalRunner), on SQLite
and on PostgreSQL, no broker; and its back office's inspection route on the same database."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from contracts import examples
from contracts.envelope import Envelope
from contracts.identifiers import order_key
from contracts.v2.events import OrderSubmittedV2
from services.quarantine.app import app, service
from services.quarantine.handlers import handlers
from services.quarantine.tables import cases
from shared.outbox import build_envelope
from shared.runtime import Service
from shared.settings import settings
from shared.testing import LocalRunner, batch_equals_one_by_one
from tests.conftest import create_database

pytestmark = pytest.mark.integration

PLATFORM = examples.PLATFORM
T0 = datetime(2026, 11, 24, 3, 30, tzinfo=timezone.utc)
FISH = {"item_no": "SKU-F", "name": "Frozen salmon 1kg", "brand": None, "hs_code": "0303130000", "quantity": "1",
        "unit": "piece", "unit_price": {"amount": "20.00", "currency": "CNY"}, "origin_country": "NO"}


def order(order_no: str, action: str = "new", version: int = 1, fish: bool = True) -> Envelope:
    body = {**examples.IMPORT_ORDER_V2, "order_no": order_no}
    if fish:
        body["items"] = [*body["items"], FISH]
    payload = OrderSubmittedV2.model_validate({"action": action, "version": version, "submitted_at": T0.isoformat(),
                                               "order": body})
    return build_envelope(payload, "gateway", order_key(PLATFORM, order_no))[1]


def runner(directory: Path, url: str | None = None) -> LocalRunner:
    directory.mkdir(parents=True, exist_ok=True)
    return LocalRunner(Service("quarantine", handlers=handlers), directory, url=url)


def said(emitted: list[Envelope]) -> list[tuple]:
    return [(e.type, e.correlation_id, {k: v for k, v in e.payload.items() if k != "decided_at"}) for e in emitted]


async def state(r: LocalRunner) -> list[tuple]:
    async with r.service.sessions() as session:
        return [tuple(row)[:5] for row in (await session.execute(select(cases).order_by(cases.c.order_no))).all()]


def status(order_no: str, version: int, value: str, chapters: list[str]) -> tuple:
    reasons = [{"code": "ANIMAL_OR_PLANT_GOODS", "message": "HS chapter 03"}] if value == "held" else []
    return ("quarantine.status", f"{PLATFORM}:{order_no}", {"platform_code": PLATFORM, "order_no": order_no,
            "order_version": version, "status": value, "reasons": reasons, "chapters": chapters})


async def test_a_chapter_03_line_holds_the_order_and_none_clears_it(tmp_path):
    async with runner(tmp_path) as r:
        assert said(await r.deliver(order("O1"), order("O2", fish=False))) == [
            status("O1", 1, "held", ["03"]), status("O2", 1, "cleared", [])]
        assert await state(r) == [(PLATFORM, "O1", 1, "held", "03"), (PLATFORM, "O2", 1, "cleared", "")]
        assert await r.deliver(order("O1")) == []  # redelivered: no second effect


async def test_versions_in_one_batch_fold_in_order_as_one_by_one(tmp_path):
    events = [order("O1"), order("O1", "corrected", 2, fish=False), order("O1", "new", 1),  # late v1: nothing
              order("O2"), order("O2", "cancelled", 2)]
    emitted, stored = await batch_equals_one_by_one(runner, tmp_path, events, said, state)
    assert [(p["order_no"], p["order_version"], p["status"]) for _, _, p in emitted] == [
        ("O1", 1, "held"), ("O1", 2, "cleared"), ("O2", 1, "held"), ("O2", 2, "cancelled")]
    assert stored == [(PLATFORM, "O1", 2, "cleared", ""), (PLATFORM, "O2", 2, "cancelled", "03")]


async def test_on_postgresql_and_the_inspection_route_releases_a_held_order(tmp_path, postgres_port):
    url = create_database(postgres_port, "quarantine_seam")
    async with runner(tmp_path, url) as r:
        await r.deliver(order("O1"), order("O2", fish=False))
    await service.open_database(url)
    try:
        auth = {"Authorization": f"Bearer {settings().sw_admin_token}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://q") as client:
            released = await client.post(f"/v1/inspections/{PLATFORM}/O1", json={"result": "pass"}, headers=auth)
            assert released.status_code == 200 and released.json()["status"] == "released"
            again = await client.post(f"/v1/inspections/{PLATFORM}/O1", json={"result": "fail"}, headers=auth)
            assert again.status_code == 409 and "released" in again.json()["detail"]
            assert (await client.post(f"/v1/inspections/{PLATFORM}/O2", json={"result": "pass"},
                                      headers=auth)).status_code == 409  # cleared: nothing to inspect
            assert (await client.post(f"/v1/inspections/{PLATFORM}/NONE", json={"result": "pass"},
                                      headers=auth)).status_code == 404
            bad = await client.post(f"/v1/inspections/{PLATFORM}/O1", json={"result": "maybe"}, headers=auth)
            assert bad.status_code == 422 and "result" in bad.text
            assert (await client.post(f"/v1/inspections/{PLATFORM}/O1", json={"result": "pass"})).status_code == 401
    finally:
        await service.close_database()
