"""`sw_http_responses_total` counts every answer by its real status, including those the outermost error
handler gives (503 for an outage, 500 for a bug), and names the service that answered."""
from __future__ import annotations

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY

from shared.http import Problem, install_problem_details


class Owner:
    name = "metric-test"


def app() -> FastAPI:
    api = FastAPI()
    api.state.service = Owner()
    install_problem_details(api)

    @api.post("/ok", status_code=202)
    async def ok():
        return {}

    @api.get("/refused")
    async def refused():
        raise Problem(409, "Conflict", "already there")

    @api.get("/outage")
    async def outage():
        raise ConnectionRefusedError("the database is away")

    @api.get("/bug")
    async def bug():
        raise RuntimeError("a bug")

    return api


def count(method: str, status: str) -> float:
    return REGISTRY.get_sample_value("sw_http_responses_total",
                                     {"service": "metric-test", "method": method, "status": status}) or 0.0


async def test_each_answer_is_counted_under_its_status():
    before = {key: count(*key) for key in (("POST", "202"), ("GET", "409"), ("GET", "503"), ("GET", "500"), ("GET", "404"))}
    transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        statuses = [(await client.post("/ok")).status_code, (await client.get("/refused")).status_code,
                    (await client.get("/outage")).status_code, (await client.get("/bug")).status_code,
                    (await client.get("/nowhere")).status_code]
    assert statuses == [202, 409, 503, 500, 404]
    for key, value in before.items():
        assert count(*key) == value + 1, key
