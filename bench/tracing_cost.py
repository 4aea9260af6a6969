"""What tracing costs (docs/observability.md, "Cost"): the batch core's CPU per record with tracing off, on
with every record sampled, and on with records sampled out where their trace began; and the per-request
HTTP middleware. CPU time (the process's, exporter thread included), the minimum of several runs, so that a
busy machine disturbs it less than wall time.

    python -m bench.tracing_cost            # every variant, each in a fresh process
"""
from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

BATCH, RUNS = 500, 15
VARIANTS = ("off", "on", "on-unsampled")


def configure(mode: str) -> None:
    if mode == "off":
        return
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult  # noqa: PLC0415

    from shared import telemetry  # noqa: PLC0415

    class Discard(SpanExporter):  # the SDK's whole work, but no network
        def export(self, spans):  # noqa: ANN001, ANN201
            return SpanExportResult.SUCCESS

    telemetry.configure("gateway", BatchSpanProcessor(Discard(), max_queue_size=200_000))


async def batch_core(mode: str) -> float:
    """CPU seconds per record of `BatchProcessor.handle_batch` (the gateway's customs.decision projection)."""
    from contracts.v1.events import CustomsDecision  # noqa: PLC0415
    from services.gateway.app import service  # noqa: PLC0415
    from shared.testing import LocalRunner  # noqa: PLC0415

    flags = "00" if mode == "on-unsampled" else "01"

    def records(runner: LocalRunner, n: int) -> list:
        made = []
        for _ in range(n):
            order = f"O{uuid.uuid4().hex[:10]}"
            record = runner.record(CustomsDecision(
                platform_code="P", order_no=order, order_version=1, ecommerce_code="E", direction="import",
                trade_mode="9610", status="released", channel="green", decided_at=datetime.now(timezone.utc)), f"P:{order}")
            record.headers.append(("traceparent", f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-{flags}".encode()))
            made.append(record)
        return made

    async with LocalRunner(service, Path(tempfile.mkdtemp())) as runner:
        await service.handle_batch(records(runner, 100))  # warm up
        best = float("inf")
        for _ in range(RUNS):
            batch = records(runner, BATCH)
            started = time.process_time()
            await service.handle_batch(batch)
            best = min(best, time.process_time() - started)
    return best / BATCH


async def http_middleware() -> float:
    """CPU seconds per request through shared/http.py's TraceContext (trace context and status counter)."""
    from shared.http import TraceContext  # noqa: PLC0415

    async def app(scope, receive, send) -> None:  # noqa: ANN001
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        pass

    wrapped = TraceContext(app)
    scope = {"type": "http", "method": "POST", "path": "/v1/orders",
             "headers": [(b"traceparent", f"00-{'ab' * 16}-{'cd' * 8}-01".encode())]}
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for _ in range(20_000):
            await wrapped(scope, receive, send)
        best = min(best, (time.process_time() - started) / 20_000)
    return best


def main(argv: list[str]) -> int:
    if len(argv) > 1:  # one variant, in this process
        configure(argv[1])
        print(f"{asyncio.run(batch_core(argv[1])) * 1e6:.1f}")
        return 0
    for mode in VARIANTS:
        out = subprocess.run([sys.executable, "-m", "bench.tracing_cost", mode], capture_output=True, text=True)
        figure = out.stdout.strip().splitlines()[-1] if out.returncode == 0 else f"failed: {out.stderr[-300:]}"
        print(f"batch core, tracing {mode:13} {figure} µs CPU per record")
    print(f"HTTP middleware                    {asyncio.run(http_middleware()) * 1e6:.1f} µs CPU per request")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
