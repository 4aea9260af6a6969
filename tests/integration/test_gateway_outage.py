"""The gateway during a database outage: every request that needs the database is 503 with `Retry-After`
(nothing stored, send it again), never a final-looking 500 — wherever the outage shows: the API-key lookup,
a read of the one-stop view, a submission's commit. Found by `make chaos` (PostgreSQL stopped: the key
lookup's connection error reached the catch-all and answered 500)."""
from __future__ import annotations

import httpx
import pytest

from services.gateway import app as gateway
from services.gateway.auth import caller_cache
from shared.db import create_engine, session_factory
from shared.settings import settings
from tests.support import new_uscc, order_body

pytestmark = pytest.mark.integration

# Nothing listens on port 1: connecting is refused at once, as when PostgreSQL is down.
UNREACHABLE = "postgresql+asyncpg://postgres@127.0.0.1:1/gateway"


@pytest.fixture
async def client(tmp_path):
    await gateway.service.open_database(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app, raise_app_exceptions=False),
                                     base_url="http://gateway") as client:
            yield client
    finally:
        await gateway.service.stop()
        gateway.group_commit = None
        caller_cache.forget()


def cut_the_database() -> None:
    """Every later session of the gateway (writes and reads) goes to a database that cannot be reached."""
    engine = create_engine(UNREACHABLE)
    gateway.service.engine = engine
    gateway.service.sessions = gateway.service.readers = session_factory(engine)
    caller_cache.forget()


async def test_every_request_needing_the_database_is_503_during_an_outage(client):
    operator = {"Authorization": f"Bearer {settings().sw_admin_token}"}
    platform, seller = new_uscc(), new_uscc()
    keys = {}
    for code, roles in ((platform, ["platform"]), (seller, ["ecommerce"])):
        r = await client.post("/v1/enterprises", headers=operator, json={"code": code, "name": code, "roles": roles})
        assert r.status_code == 201, r.text
        keys[code] = r.json()["api_key"]
    body = order_body(platform, seller, "ORD-OUTAGE-1")
    assert (await client.post("/v1/orders", json=body, headers={"Authorization": f"Bearer {keys[platform]}"})).status_code == 202

    cut_the_database()
    platform_key = {"Authorization": f"Bearer {keys[platform]}"}
    answers = {
        "status view (key lookup)": await client.get(f"/v1/orders/{platform}/{body['order_no']}", headers=platform_key),
        "order (key lookup)": await client.post("/v1/orders", json=order_body(platform, seller, "ORD-OUTAGE-2"), headers=platform_key),
        "enterprise (operator, a read)": await client.get(f"/v1/enterprises/{seller}", headers=operator),
        "registration (operator, a write)": await client.post(
            "/v1/enterprises", headers=operator, json={"code": new_uscc(), "name": "x", "roles": ["platform"]}),
    }
    for what, r in answers.items():
        assert r.status_code == 503, (what, r.status_code, r.text)
        assert r.headers["Retry-After"] == "1", what
        assert r.headers["content-type"].startswith("application/problem+json"), what
