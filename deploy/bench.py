"""`make bench`: throughput of the single window on this machine, printed as figures.

Starts the mesh if needed (`make up`), then submits N complete imports (order + payment + waybill) with C
concurrent clients and measures (1) documents accepted per second at the gateway (each 202 is durable),
(2) orders decided per second end to end (until customs has decided every one, as the status view shows).
    SW_BENCH_ORDERS=2000 SW_BENCH_CONCURRENCY=32 make bench"""
from __future__ import annotations

import asyncio
import os
import statistics
import time

import httpx

from deploy.demo import ADMIN, Demo, resident_id
from shared.settings import settings


async def main() -> None:
    n = int(os.environ.get("SW_BENCH_ORDERS", "1000"))
    concurrency = int(os.environ.get("SW_BENCH_CONCURRENCY", "32"))
    demo = Demo(settings().sw_gateway_url)
    demo.http = httpx.AsyncClient(base_url=settings().sw_gateway_url, timeout=120,
                                  limits=httpx.Limits(max_connections=concurrency))
    demo.sem = asyncio.Semaphore(concurrency)
    await demo.setup()
    items = [{"item_no": "SKU-1", "name": "Face cream", "hs_code": "3304990099", "quantity": 2, "unit": "piece",
              "unit_price": "180.00", "origin_country": "FR"}]
    orders = []
    for i in range(n):
        order = demo.import_order(demo.platform, demo.sellers[i % 3], "bench", items=items,
                                  buyer=("Zhang San", resident_id()))
        order["order_no"] = f"BENCH-{int(time.time())}-{i:06d}"
        orders.append(order)
    demo.latencies.clear()
    started = time.perf_counter()
    await asyncio.gather(*(demo.submit(o) for o in orders))
    accepted = time.perf_counter() - started
    deadline = time.time() + 600
    pending = list(demo.orders)
    while pending and time.time() < deadline:
        views = await asyncio.gather(*(demo.status(o) for o in pending[:200]))
        done = {v["order_no"] for v in views if v["customs"]["status"] != "pending"}
        pending = [o for o in pending if o["order_no"] not in done]
        if pending:
            await asyncio.sleep(0.5)
    decided = time.perf_counter() - started
    latencies = sorted(demo.latencies)
    print(f"orders: {n} complete imports (3 documents each), {concurrency} concurrent clients")
    print(f"gateway: {3 * n / accepted:,.0f} documents/s accepted (durable 202), {n / accepted:,.0f} declarations/s")
    print(f"gateway latency per document: median {statistics.median(latencies) * 1000:.1f} ms, "
          f"p95 {latencies[int(0.95 * (len(latencies) - 1))] * 1000:.1f} ms")
    print(f"end to end: {n - len(pending)} decided in {decided:.1f}s = {(n - len(pending)) / decided:,.0f} orders/s decided")
    stats = (await demo.http.get("/v1/stats", headers=ADMIN)).json()
    print(f"decision time after complete documents: median {stats['decision_time_seconds']['median']}s, "
          f"p95 {stats['decision_time_seconds']['p95']}s")
    await demo.http.aclose()


if __name__ == "__main__":
    asyncio.run(main())
