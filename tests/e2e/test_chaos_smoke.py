"""`make chaos` in small (the full suite is not part of `make test`): its own broker, durable PostgreSQL
and mesh; a few dozen declarations through three faults — kill -9 of customs, PostgreSQL stopped
(-m immediate) and started again, every document sent by three clients at once — and zero lost, zero
doubled, zero wrong. Then the comparison is shown to fail when it should: a settlement deleted, a
year-to-date inflated, a customs decision published a second time and an outbox row left unpublished are
each counted."""
from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from chaos import checks, report
from chaos.__main__ import Chaos, Config

pytestmark = pytest.mark.e2e

FAULTS = ["kill:customs", "postgres", "duplicates"]


def test_faults_lose_and_double_nothing_and_the_comparison_sees_when_they_do(tmp_path):
    config = Config(faults=FAULTS, declarations=30, rate=6, mode="single", concurrency=8, kills=1, pg_down=3,
                    duplicate_clients=3, duplicate_declarations=12, stall=60, give_up=120, seed=7, out=tmp_path)
    suite = Chaos(config, say=lambda text: print(text, flush=True))
    suite.start()
    try:
        rows, tampered = asyncio.run(_runs_then_tamper(suite))
    finally:
        suite.stop()
    print(report.table({"faults": rows}))

    assert [r["fault"] for r in rows] == FAULTS
    for r in rows:
        failing = [c for c in r["checks"] if c["lost"] or c["duplicated"] or c["wrong"]]
        assert (r["lost"], r["duplicated"], r["wrong"], r["refused"]) == (0, 0, 0, 0), (r["fault"], failing, r["notes"])
        assert r["settled"], r["fault"]
        assert r["taken"] == r["declarations"]
        assert {c["name"] for c in r["checks"]} >= {"gateway order stored", "customs.decision.v1 published",
                                                    "tax assessment", "fx year-to-date = sum of settlements",
                                                    "credit score = its ledger", "gateway trace: fx.settlement",
                                                    "outbox published"}
    kill, pg, dup = rows
    assert any("kill -9 customs" in n for n in kill["notes"]) and kill["recover_seconds"] is not None
    assert any("PostgreSQL stopped" in n for n in pg["notes"])
    assert dup["answers"]["202"] * 2 == dup["answers"]["200"]  # one creates, the two others see it

    by_check = {c["name"]: c for c in tampered["checks"]}
    assert by_check["fx settlement"]["lost"] == 1
    assert by_check["fx year-to-date = sum of settlements"]["duplicated"] == 1  # the total now exceeds its parts
    assert by_check["fx.settlement.v1 published"]["lost"] == 0
    assert by_check["customs.decision.v1 published"]["duplicated"] == 1
    assert by_check["outbox published"]["lost"] == 1
    assert by_check["tax assessment"]["wrong"] == 1


async def _runs_then_tamper(suite: Chaos) -> tuple[list[dict], dict]:
    rows = [await suite.fault_run(i, name) for i, name in enumerate(suite.c.faults, 1)]
    # The last run's declarations, broken on purpose in five places.
    port = suite.pg_port
    declarations = suite.last_accepted
    platform = declarations[0]["platform"]
    first, second, third = [d["order_no"] for d in declarations[:3]]
    await checks.fetch(port, "fx", "DELETE FROM settlements WHERE platform_code = $1 AND order_no = $2", platform, first)
    await checks.fetch(port, "tax", "UPDATE assessments SET status = 'not_applicable' "
                                    "WHERE platform_code = $1 AND order_no = $2", platform, third)
    await asyncio.to_thread(suite.mesh.stop_service, "credit")  # its relay would publish the row at once
    await checks.fetch(port, "credit", "INSERT INTO outbox (topic, key, value, headers, created_at) "
                                       "VALUES ('credit.rating.v1', 'x', '\\x00', '{}', now())")
    decision = next(e for e in suite.ledger.by_key[f"{platform}:{second}"] if e.type == "customs.decision")
    envelope = {"event_id": str(uuid.uuid4()), "type": decision.type, "version": 1, "occurred_at": "2026-11-29T00:00:00Z",
                "source": "customs", "correlation_id": f"{platform}:{second}", "payload": decision.payload}
    producer = AIOKafkaProducer(bootstrap_servers=suite.mesh.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(decision.topic, json.dumps(envelope).encode(), key=decision.key.encode())
    finally:
        await producer.stop()
    try:
        verdict = await checks.compare(port, suite.ledger, declarations)
    finally:
        await suite.ledger.close()
    return rows, verdict.summary()

