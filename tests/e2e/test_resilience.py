"""Crashes and races: customs killed mid-stream decides every order exactly once; two customs instances
racing one buyer's annual quota cannot both slip under the limit."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import DefaultPartitioner

from contracts.topics import CUSTOMS_DECISION
from deploy.mesh import free_port
from tests.e2e.conftest import released_order_no
from tests.support import new_resident_id, order_body, payment_body, waybill_body

pytestmark = pytest.mark.e2e


def decisions_on_topic(bootstrap: str, keys: set[str], expected: int, timeout: float = 60) -> dict[str, set]:
    """event_ids of customs decisions per order key, read from the topic itself."""

    async def read() -> dict[str, set]:
        consumer = AIOKafkaConsumer(CUSTOMS_DECISION.name, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    group_id=f"test-reader-{uuid.uuid4().hex[:8]}", enable_auto_commit=False)
        await consumer.start()
        found: dict[str, set] = {}
        try:
            deadline = time.time() + timeout
            while time.time() < deadline:
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                for records in batch.values():
                    for r in records:
                        key = r.key.decode()
                        if key in keys:
                            envelope = json.loads(r.value)
                            if envelope["type"] == "customs.decision":
                                found.setdefault(key, set()).add(envelope["event_id"])
                if len(found) >= expected and not batch:
                    break
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())


def test_customs_killed_mid_stream_decides_every_order_exactly_once(api, mesh, parties):
    orders = [order_body(parties.platform.code, parties.ecommerce.code, released_order_no(parties.platform.code, "KILL"))
              for _ in range(60)]
    for body in orders:
        assert api.order(parties.platform, body).status_code == 202
        assert api.payment(parties.payment, payment_body(parties.payment.code, body)).status_code == 202

    def complete(body: dict) -> int:
        return api.waybill(parties.logistics, waybill_body(parties.logistics.code, body)).status_code

    with ThreadPoolExecutor(4) as pool:
        first = list(pool.map(complete, orders[:30]))
        mesh.stop_service("customs", hard=True)  # SIGKILL while it is deciding
        rest = list(pool.map(complete, orders[30:]))
    assert set(first + rest) == {202}
    mesh.start_service("customs")
    mesh.wait_healthy(["customs"])

    views = [api.wait_customs(parties.platform, body["order_no"], timeout=120) for body in orders]
    assert {v["customs"]["status"] for v in views} == {"released"}
    keys = {f"{parties.platform.code}:{body['order_no']}" for body in orders}
    per_order = decisions_on_topic(mesh.bootstrap, keys, expected=len(keys))
    assert set(per_order) == keys
    assert {k: len(ids) for k, ids in per_order.items() if len(ids) != 1} == {}


def partition_of(key: str, partitions: int = 4) -> int:
    return DefaultPartitioner()(key.encode(), list(range(partitions)), list(range(partitions)))


def test_two_customs_instances_cannot_both_spend_one_buyers_annual_quota(api, mesh, parties):
    second_port = free_port()
    mesh.start_service("customs", instance="2", port=second_port)
    try:
        mesh.wait_healthy(["customs"], ports={"customs": second_port})
        time.sleep(5)  # let the group rebalance so both instances own partitions
        pairs = []
        for _ in range(6):
            buyer = new_resident_id("19700101")
            first = released_order_no(parties.platform.code, "RACE")
            second = released_order_no(parties.platform.code, "RACE")
            while partition_of(f"{parties.platform.code}:{second}") == partition_of(f"{parties.platform.code}:{first}"):
                second = released_order_no(parties.platform.code, "RACE")
            pair = [order_body(parties.platform.code, parties.ecommerce.code, no, buyer_id=buyer, freight="0.00",
                               discount="0.00", tax_total="0.00",
                               items=[{"item_no": "SKU-1", "name": "Handbag", "hs_code": "4202210090", "quantity": 1,
                                       "unit": "piece", "unit_price": "14000.00", "origin_country": "IT"}])
                    for no in (first, second)]
            for body in pair:  # 14,000 + 14,000 = 28,000 > 26,000: one of them must be refused
                assert api.order(parties.platform, body).status_code == 202
                assert api.payment(parties.payment, payment_body(parties.payment.code, body)).status_code == 202
            pairs.append(pair)
        with ThreadPoolExecutor(12) as pool:  # the last documents of both orders at the same moment
            codes = list(pool.map(lambda b: api.waybill(parties.logistics, waybill_body(parties.logistics.code, b)).status_code,
                                  [b for pair in pairs for b in pair]))
        assert set(codes) == {202}
        for pair in pairs:
            views = [api.wait_customs(parties.platform, b["order_no"]) for b in pair]
            outcomes = sorted(v["customs"]["status"] for v in views)
            assert outcomes in (["inspection", "rejected"], ["rejected", "released"]), outcomes
            rejected = next(v for v in views if v["customs"]["status"] == "rejected")
            assert [r["code"] for r in rejected["customs"]["reasons"]] == ["OVER_ANNUAL_LIMIT"]
        produced = [api.produced("customs")]
        second_metrics = __import__("httpx").get(f"http://127.0.0.1:{second_port}/metrics", timeout=10).text
        produced.append(sum(float(line.rsplit(" ", 1)[1]) for line in second_metrics.splitlines()
                            if line.startswith("sw_events_consumed_total{")))
        assert all(p > 0 for p in produced), "both instances should have taken part"
    finally:
        mesh.stop_service("customs-2")
