"""The secured broker (`make up` with SW_KAFKA_SECURE=1, deploy/kafka/start.sh): SASL/SCRAM, one principal per
service, ACLs from shared/kafka_acls.py. A service may write its own topics and read what it consumes, and
is refused anything else by the broker itself."""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from contracts.topics import CUSTOMS_DECISION, PAYMENT_SUBMITTED, TAX_ASSESSMENT
from deploy import kafka_secure
from deploy.mesh import ROOT
from shared import kafka_acls
from shared.topics_admin import create_topics

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secure_broker():
    kafka_dir = Path(tempfile.mkdtemp(prefix="sw-kafka-secure-"))
    creds = kafka_secure.credentials(kafka_dir)
    out = subprocess.run([str(ROOT / "deploy/kafka/start.sh"), str(kafka_dir)], capture_output=True, text=True,
                         env={**os.environ, **kafka_secure.broker_env(creds)})
    assert out.returncode == 0, out.stdout + out.stderr
    bootstrap = f"127.0.0.1:{(kafka_dir / 'kafka.port').read_text().strip()}"
    asyncio.run(create_topics(bootstrap, 2, options=kafka_secure.client_options(creds, "admin")))
    yield bootstrap, creds
    subprocess.run([str(ROOT / "deploy/kafka/stop.sh"), str(kafka_dir)], check=False)
    shutil.rmtree(kafka_dir, ignore_errors=True)


def producer(bootstrap: str, creds: dict, user: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all",
                            request_timeout_ms=10000, **kafka_secure.client_options(creds, user))


def consumer(bootstrap: str, creds: dict, user: str, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                            enable_auto_commit=False, **kafka_secure.client_options(creds, user))


async def test_a_service_writes_its_own_topic_and_reads_what_it_consumes(secure_broker):
    bootstrap, creds = secure_broker
    marker = uuid.uuid4().hex.encode()
    customs = producer(bootstrap, creds, "customs")
    await customs.start()
    try:
        await customs.send_and_wait(CUSTOMS_DECISION.name, marker, key=b"k")
        await customs.send_and_wait(f"{PAYMENT_SUBMITTED.name}.dlq", marker, key=b"k")  # dead-letters what it consumes
    finally:
        await customs.stop()
    tax = consumer(bootstrap, creds, "tax", CUSTOMS_DECISION.name, "tax")
    await tax.start()
    try:
        seen: list[bytes] = []
        for _ in range(40):
            batch = await tax.getmany(timeout_ms=500)
            seen += [r.value for records in batch.values() for r in records]
            if marker in seen:
                break
        assert marker in seen
        await tax.commit()  # its own group
    finally:
        await tax.stop()
    own = producer(bootstrap, creds, "tax")
    await own.start()
    try:
        await own.send_and_wait(TAX_ASSESSMENT.name, b"assessment", key=b"k")
    finally:
        await own.stop()


async def test_a_service_cannot_write_another_services_topic(secure_broker):
    bootstrap, creds = secure_broker
    tax = producer(bootstrap, creds, "tax")
    await tax.start()
    try:
        for topic in (CUSTOMS_DECISION.name, PAYMENT_SUBMITTED.name, f"{PAYMENT_SUBMITTED.name}.dlq"):
            with pytest.raises(TopicAuthorizationFailedError):
                await tax.send_and_wait(topic, b"forged", key=b"k")
    finally:
        await tax.stop()
    gateway = producer(bootstrap, creds, "gateway")  # the gateway writes documents, never decisions
    await gateway.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await gateway.send_and_wait(CUSTOMS_DECISION.name, b"forged release", key=b"k")
    finally:
        await gateway.stop()


async def test_a_service_cannot_read_a_topic_it_does_not_consume(secure_broker):
    bootstrap, creds = secure_broker
    # tax does not consume payments (they carry the payer's sealed identity and are for customs and FX)
    tax = consumer(bootstrap, creds, "tax", PAYMENT_SUBMITTED.name, "tax")
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await tax.start()
            for _ in range(20):
                await tax.getmany(timeout_ms=500)
    finally:
        await tax.stop()


async def test_a_service_cannot_join_another_services_group(secure_broker):
    bootstrap, creds = secure_broker
    tax = consumer(bootstrap, creds, "tax", CUSTOMS_DECISION.name, "customs")
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            await tax.start()
            for _ in range(20):
                await tax.getmany(timeout_ms=500)
    finally:
        await tax.stop()


async def test_a_wrong_password_is_not_let_in(secure_broker):
    bootstrap, creds = secure_broker
    wrong = {**creds, "tax": "not-the-password"}
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=5000,
                         **kafka_secure.client_options(wrong, "tax"))
    try:
        with pytest.raises(KafkaConnectionError):
            await p.start()
    finally:
        await p.stop()


async def test_acls_follow_the_code_and_topics_the_replication_settings(secure_broker):
    bootstrap, creds = secure_broker
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_secure.client_options(creds, "admin"))
    await admin.start()
    try:
        wanted = kafka_acls.acls_for(kafka_acls.subscriptions())
        assert await kafka_acls.current(admin, sorted({a.principal for a in wanted})) == set(wanted)
        # a right the code no longer grants is taken away, and given back when it grants it again
        dropped = next(a for a in wanted if a.principal == "User:tax" and a.operation == "READ"
                       and a.resource == CUSTOMS_DECISION.name)
        created, deleted = await kafka_acls.apply(admin, [a for a in wanted if a != dropped])
        assert (created, deleted) == ([], [dropped])
        created, deleted = await kafka_acls.apply(admin, wanted)
        assert (created, deleted) == ([dropped], [])
        assert await kafka_acls.apply(admin, wanted) == ([], [])
        [described] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, CUSTOMS_DECISION.name)])
        configs = {name: value for name, value, *_ in described.resources[0][4]}
        assert configs["min.insync.replicas"] == "1"
    finally:
        await admin.close()
