"""Dead letters recovered on the real mesh: tax has a bug and dead-letters a customs decision; tax is
restarted without it (the fix); `python -m shared.deadletters replay` sends the dead letter back; tax
assesses the order, once, and no other consumer of customs' decisions acts on the replay. Replaying it
again (from tax's back office, which handles it in place) changes nothing."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from contracts.topics import TAX_ASSESSMENT
from deploy.mesh import ROOT
from shared.deadletters import dead_letters
from tests.e2e.conftest import released_order_no
from tests.support import wait_for

pytestmark = pytest.mark.e2e


def command(mesh, *args: str) -> str:  # noqa: ANN001
    """`python -m shared.deadletters ARGS` as an operator runs it against the mesh's broker."""
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": mesh.bootstrap, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "shared.deadletters", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def listed(mesh, key: str) -> list[dict]:  # noqa: ANN001
    return [d for d in json.loads(command(mesh, "list", "--service", "tax", "--json")) if d["key"] == key]


def assessments_on_topic(bootstrap: str, key: str) -> list[dict]:
    """Every tax assessment published for `key`, read from the topic itself."""

    async def read() -> list[dict]:
        consumer = AIOKafkaConsumer(TAX_ASSESSMENT.name, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    group_id=f"test-reader-{uuid.uuid4().hex[:8]}", enable_auto_commit=False)
        await consumer.start()
        found: list[dict] = []
        try:
            quiet_since = time.time()
            while time.time() - quiet_since < 3:
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                if batch:
                    quiet_since = time.time()
                found += [json.loads(r.value) for rs in batch.values() for r in rs if r.key == key.encode()]
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())


def test_a_dead_letter_is_replayed_after_the_fix_handled_once_and_by_its_service_alone(api, mesh, parties):
    platform = parties.platform.code
    bug, fine = released_order_no(platform, "BUG"), released_order_no(platform, "FINE")
    bug_key = f"{platform}:{bug}"
    mesh.stop_service("tax")
    mesh.start_service("tax", app="tests.doubles.faulty_tax:app")
    try:
        mesh.wait_healthy(["tax"])
        for order_no in (bug, fine):
            api.submit_import(parties, order_no)
        assert api.wait_view(parties.platform, fine, "tax")["tax"]["status"] == "assessed"  # the rest goes on
        [letter] = wait_for(lambda: listed(mesh, bug_key), 60, what="tax's dead letter")
    finally:
        mesh.stop_service("tax")
        mesh.start_service("tax")  # the fix: tax without the bug
        mesh.wait_healthy(["tax"])
    assert letter["status"] == "open" and letter["original_topic"] == "customs.decision.v1"
    assert "RuntimeError: a bug in tax" in letter["error"]
    assert api.status(parties.platform, bug)["tax"]["status"] == "pending"

    assert "1 replayed" in command(mesh, "replay", "--service", "tax", "--id", letter["id"])
    view = api.wait_view(parties.platform, bug, "tax")
    assert view["tax"]["status"] == "assessed"
    wait_for(lambda: listed(mesh, bug_key)[0]["status"] == "replayed, handled", 60, what="the replay handled")

    tax = api.agency("tax")  # tax's back office, operator token
    listed_by_tax = tax.get("/v1/dead-letters").json()
    assert [d["inbox"] for d in listed_by_tax["dead_letters"] if d["id"] == letter["id"]] == ["handled"]
    refused = tax.post("/v1/dead-letters:replay", json={"ids": ["customs.decision.v1.dlq:0:999999"]})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "ids[0]"
    for headers in ({}, parties.platform.auth):  # the operator's alone: no token, an enterprise's key
        assert httpx.post(mesh.url("tax") + "/v1/dead-letters:replay", json={"all": True}, headers=headers).status_code == 401
        assert httpx.get(mesh.url("gateway") + "/v1/dead-letters", headers=headers).status_code == 401
    # again, by mistake, from the back office: handled in place, known to tax's inbox, no second effect
    again = tax.post("/v1/dead-letters:replay", json={"ids": [letter["id"]]})
    assert again.status_code == 200, again.text
    assert [(r["dead_letter"], r["outcome"]) for r in again.json()["replayed"]] == [(letter["id"], "handled")]
    [again] = wait_for(lambda: [d for d in listed(mesh, bug_key) if d["status"] == "replayed, handled"
                                and len(d["replays"]) == 2], 60, what="the second replay consumed")
    assert again["id"] == letter["id"]
    api.produced("tax")  # tax's outbox is drained: whatever it made of the replays is on the topic
    assert [a["payload"]["status"] for a in assessments_on_topic(mesh.bootstrap, bug_key)] == ["assessed"]
    # the gateway (another consumer of customs' decisions) ignored both replays: one decision in the trace
    trace = api.http.get(f"/v1/orders/{platform}/{bug}/trace", headers=parties.platform.auth).json()["events"]
    assert len([e for e in trace if e["type"] == "customs.decision"]) == 1, trace
    assert [d.id for d in asyncio.run(dead_letters(mesh.bootstrap, "tax")) if d.key == bug_key] == [letter["id"]]
