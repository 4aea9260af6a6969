"""The bare-endpoint ceiling: the gateway's document routes with nothing behind them. Each route parses
the JSON body and answers what the gateway answers (202 and a small body); no validation, no database,
no Kafka. Served by uvicorn with the gateway's settings, it is the most one Python process on this machine
can accept with this HTTP stack, the same bodies and the same client concurrency."""
from __future__ import annotations

import secrets

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI(title="bench bare endpoint")


@app.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@app.post("/v1/enterprises", status_code=201)
async def enterprises(request: Request) -> dict:
    body = await request.json()
    return {"code": body.get("code"), "api_key": secrets.token_urlsafe(24)}


def accepted(body: dict) -> dict:
    number = body.get("order_no") or body.get("payment_no") or body.get("waybill_no")
    return {"order_no": body.get("order_no"), "number": number,
            "status_url": f"/v1/orders/{body.get('platform_code')}/{body.get('order_no')}"}


async def document(request: Request) -> JSONResponse:
    return JSONResponse(accepted(await request.json()), status_code=202)


async def batch(request: Request) -> JSONResponse:
    docs = (await request.json())["documents"]
    if not docs:
        return JSONResponse({"title": "empty batch"}, status_code=422)
    return JSONResponse({"results": [{"index": i, "status": 202, "body": accepted(d)} for i, d in enumerate(docs)]})


for kind in ("orders", "payments", "waybills"):
    app.add_api_route(f"/v1/{kind}", document, methods=["POST"])
    app.add_api_route(f"/v1/{kind}:batch", batch, methods=["POST"])
