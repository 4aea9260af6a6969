"""An HTTP request's W3C trace (`traceparent`) is continued by everything the request does, and a request
without one starts a trace of its own."""
from __future__ import annotations

import httpx
from fastapi import FastAPI

from shared.http import install_problem_details
from shared.tracing import current_traceparent


def app() -> FastAPI:
    api = FastAPI()
    install_problem_details(api)

    @api.get("/now")
    async def now():
        return {"traceparent": current_traceparent()}

    return api


async def test_a_request_continues_the_callers_trace():
    parent = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as client:
        seen = (await client.get("/now", headers={"traceparent": parent})).json()["traceparent"]
        fresh = (await client.get("/now")).json()["traceparent"]
    assert seen.startswith("00-" + "ab" * 16 + "-") and seen != parent  # same trace, a span of its own
    assert not fresh.startswith("00-" + "ab" * 16)
