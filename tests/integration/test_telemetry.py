"""Observability on a real broker and a real PostgreSQL (docs/observability.md).

- Traces: the gateway and customs run in this process, each its own Service on its own database and
  consumer group, exporting by OTLP/HTTP (protobuf) to a receiver on loopback that decodes what it gets
  with opentelemetry-proto. One submission's spans in the gateway (the HTTP request, the handling of
  customs' decision) and in customs (the handling of the order) share one trace id, parent to child.
- With OTEL_EXPORTER_OTLP_ENDPOINT unset, the same path exports nothing and works as before, the records
  still carrying the W3C trace context.
- Consumer lag: `sw_consumer_lag_records` is positive while records wait and 0 once they are handled."""
from __future__ import annotations

import asyncio
import gzip
import json
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from opentelemetry import context as otel_context
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from contracts.identifiers import order_key
from contracts.topics import CREDIT_RATING, CUSTOMS_DECISION, ORDER_SUBMITTED_V2
from contracts.v1.events import CreditRatingChanged
from services.customs.tables import parties
from shared import telemetry
from shared.batch import Handlers
from shared.outbox import build_envelope
from shared.runtime import Service
from shared.settings import settings
from shared.tables import OUTBOX
from tests.conftest import create_database
from tests.support import new_uscc, order_body, payment_body, unique, wait_until, waybill_body

pytestmark = pytest.mark.integration

SERVER, CONSUMER, PRODUCER = 2, 5, 4  # opentelemetry.proto.trace.v1.Span.SpanKind


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict


class OtlpReceiver:
    """An OTLP/HTTP trace receiver (POST /v1/traces, protobuf) on loopback, as a collector would be."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                assert self.path == "/v1/traces", self.path
                receiver.accept(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accept(self, request: ExportTraceServiceRequest) -> None:
        self.requests += 1
        for resource_spans in request.resource_spans:
            service = next(a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name")
            for scope in resource_spans.scope_spans:
                for s in scope.spans:
                    attributes = {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in s.attributes}
                    self.spans.append(ReceivedSpan(service, s.name, s.kind, s.trace_id.hex(), s.span_id.hex(),
                                                   s.parent_span_id.hex(), attributes))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = OtlpReceiver()
    yield r
    r.close()


async def start_at_the_end(bootstrap: str, group: str, topics: set[str]) -> None:
    """Commits `group`'s offsets at the end of `topics`. A new group reads from the earliest offset (a new
    service must see everything); these tests' groups are new on the session's shared broker, where earlier
    tests left thousands of records: read from the start, they made the services wade through them (and the
    span queue overflow) before reaching this test's records."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(t, p) for t in sorted(topics) for p in consumer.partitions_for_topic(t) or ()]
        if partitions:
            consumer.assign(partitions)
            await consumer.commit(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


@pytest.fixture
async def mesh_in_process(postgres_port, kafka_bootstrap, monkeypatch, receiver, request):
    """The gateway (its HTTP app and its Service) and customs, in this process on real Kafka and PostgreSQL;
    tracing on (exporting to `receiver`) when the test is parametrized with True."""
    tracing_on = request.param
    # A clean trace context: a test before this one in the session (anything calling
    # shared.tracing.current_traceparent outside a trace, which keeps the trace it starts in its context) can
    # leave a current span in the context every later task copies. A request handled in-process would then
    # be an INTERNAL child of that stray trace instead of a SERVER span continuing the caller's traceparent.
    otel_context.attach(otel_context.Context())
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("SW_BATCH_WAIT_MS", "50")
    for name in ("gateway", "customs"):
        monkeypatch.setenv(f"{name.upper()}_DATABASE_URL", create_database(postgres_port, f"otel_{name}_{uuid.uuid4().hex[:8]}"))
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    if tracing_on:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
    else:
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    settings.cache_clear()
    from services.customs.app import service as customs
    from services.gateway.app import router, service as gateway

    services = (gateway, customs)
    saved = [(s.settings, s.group_id) for s in services]
    for s in services:
        s.settings, s.group_id = settings(), f"otel-test-{s.name}-{uuid.uuid4().hex[:8]}"
        await start_at_the_end(kafka_bootstrap, s.group_id, s.handlers.topics)
    app = gateway.http(router, title="gateway under test")  # built now, so tracing is decided as a process would
    for s in services:
        await s.start()
    try:
        yield app, gateway, customs
    finally:
        for s in services:
            await s.stop()
            telemetry.shutdown(s.name)
        for s, (own_settings, group) in zip(services, saved):
            s.settings, s.group_id = own_settings, group
        settings.cache_clear()


async def submit(app, gateway, customs) -> list[tuple[dict, dict[str, str]]]:  # noqa: ANN001
    """Registers the parties and submits two orders with their payments and waybills: the first three
    documents with a caller's `traceparent` (a trader's instrumented system), the second order without.
    Returns [(order body, {document: the trace id it was sent in or ""})]; waits for both customs decisions.
    Customs learns the registrations first: a file waiting for one would be decided in the registration's
    trace, not the documents'."""
    otel_context.attach(otel_context.Context())  # as in mesh_in_process: this task copied the session's context
    admin = {"Authorization": f"Bearer {settings().sw_admin_token}"}
    submitted = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
        keys = {}
        for role in ("platform", "ecommerce", "payment", "logistics"):
            code = new_uscc()
            r = await client.post("/v1/enterprises", headers=admin, json={
                "code": code, "name": f"Enterprise {code}", "roles": [role], "country": "CN", "customs_credit": "general"})
            assert r.status_code == 201, r.text
            keys[role] = (code, {"Authorization": f"Bearer {r.json()['api_key']}"})

        async def customs_knows_them():
            async with customs.sessions() as session:
                known = (await session.execute(select(parties.c.code).where(
                    parties.c.code.in_([c for c, _ in keys.values()]), parties.c.registered_at.is_not(None)))).all()
            return len(known) == len(keys)
        await wait_until(customs_knows_them, what="customs' copy of the registrations")
        for traced in (True, False):
            body = order_body(keys["platform"][0], keys["ecommerce"][0], unique("OTEL"))
            documents = {"order": ("/v1/orders", "platform", body),
                         "payment": ("/v1/payments", "payment", payment_body(keys["payment"][0], body)),
                         "waybill": ("/v1/waybills", "logistics", waybill_body(keys["logistics"][0], body))}
            sent = {}
            for document, (path, role, json_body) in documents.items():
                trace_id = uuid.uuid4().hex if traced else ""
                headers = {**keys[role][1], **({"traceparent": f"00-{trace_id}-{'ab' * 8}-01"} if traced else {})}
                r = await client.post(path, json=json_body, headers=headers)
                assert r.status_code == 202, r.text
                sent[document] = trace_id
            submitted.append((body, sent))
        platform_auth = keys["platform"][1]
        for body, _ in submitted:
            async def decided(body=body):
                r = await client.get(f"/v1/orders/{body['platform_code']}/{body['order_no']}", headers=platform_auth)
                return r.status_code == 200 and r.json()["customs"]["status"] != "pending"
            await wait_until(decided, what=f"customs' decision on {body['order_no']}")
    return submitted


@pytest.mark.parametrize("mesh_in_process", [True], indirect=True)
async def test_one_submission_is_one_trace_across_gateway_kafka_customs_and_back(mesh_in_process, receiver):
    app, gateway, customs = mesh_in_process
    submitted = await submit(app, gateway, customs)
    (traced_order, sent), (plain_order, _) = submitted

    def spans(service: str, kind: int, topic: str | None = None, key: str | None = None) -> list[ReceivedSpan]:
        return [s for s in receiver.spans if s.service == service and s.kind == kind
                and (topic is None or s.attributes.get("messaging.destination.name") == topic)
                and (key is None or s.attributes.get("sw.correlation_id") == key)]

    async def exported():
        for s in (gateway, customs):
            telemetry.flush(s.name)
        # Every span the assertions below read: the requests', customs' handling of the orders, and the
        # gateway's handling of customs' decisions (exports are batched: under load some come later).
        keys = [order_key(b["platform_code"], b["order_no"]) for b, _ in submitted]
        requests = {s.trace_id for s in spans("gateway", SERVER)}
        return (all(t in requests for t in sent.values())
                and all(spans("customs", CONSUMER, ORDER_SUBMITTED_V2.name, k) for k in keys)
                and all(spans("gateway", CONSUMER, CUSTOMS_DECISION.name, k) for k in keys))

    try:
        await wait_until(exported, what="the spans of the requests, customs' handling and the gateway's of decisions")
    except AssertionError:
        got = sorted({(s.service, s.kind, s.name) for s in receiver.spans})
        raise AssertionError(f"sent {sent}; the spans received (service, kind, name): {got}") from None

    # The traced order: the request's span continues the caller's trace; customs' handling of the order's
    # record is that span's child; the gateway's handling of customs' decision is the child of customs'
    # handling of whichever document completed the file.
    key = order_key(traced_order["platform_code"], traced_order["order_no"])
    (request_span,) = [s for s in spans("gateway", SERVER) if s.trace_id == sent["order"]]
    assert request_span.parent_id == "ab" * 8 and "/v1/orders" in request_span.name
    customs_orders = spans("customs", CONSUMER, ORDER_SUBMITTED_V2.name, key)  # a republished copy: a span too
    assert customs_orders and all(c.trace_id == sent["order"] and c.parent_id == request_span.span_id
                                  for c in customs_orders)
    customs_spans = {s.span_id: s for s in spans("customs", CONSUMER, key=key)}
    assert {s.trace_id for s in customs_spans.values()} <= set(sent.values())
    # Publishing is at least once: a copy of the decision handled (and dropped by the inbox) is a span too.
    decision_spans = spans("gateway", CONSUMER, CUSTOMS_DECISION.name, key)
    assert decision_spans
    for decision_span in decision_spans:
        assert decision_span.parent_id in customs_spans
        assert decision_span.trace_id == customs_spans[decision_span.parent_id].trace_id
        assert decision_span.trace_id in sent.values()

    # The order sent without a traceparent: the gateway starts its trace, and customs continues it.
    plain_key = order_key(plain_order["platform_code"], plain_order["order_no"])
    plain_customs = spans("customs", CONSUMER, ORDER_SUBMITTED_V2.name, plain_key)[0]
    (plain_request,) = [s for s in spans("gateway", SERVER) if s.span_id == plain_customs.parent_id]
    assert plain_request.parent_id == "" and plain_request.trace_id == plain_customs.trace_id
    assert plain_request.trace_id not in sent.values()

    # Batches and relay passes are spans too, and SQL statements appear inside traced work only.
    assert spans("customs", CONSUMER) and any(s.name == "customs process" for s in receiver.spans)
    assert spans("gateway", PRODUCER) and spans("customs", PRODUCER)
    by_id = {s.span_id for s in receiver.spans}
    statements = [s for s in receiver.spans if "db.system" in s.attributes or "db.system.name" in s.attributes]
    assert statements and all(s.parent_id for s in statements)
    assert all(s.parent_id in by_id or s.parent_id == "" for s in statements)
    assert not [s for s in spans("gateway", SERVER) if "/metrics" in s.name or "/healthz" in s.name]


@pytest.mark.parametrize("mesh_in_process", [False], indirect=True)
async def test_without_an_endpoint_nothing_is_exported_and_the_trace_context_still_travels(mesh_in_process, receiver):
    app, gateway, customs = mesh_in_process
    assert not telemetry.enabled("gateway") and not telemetry.enabled("customs")
    submitted = await submit(app, gateway, customs)
    (traced_order, sent), _ = submitted
    # Customs' decision about the traced order carries on the trace of the document that completed its file.
    key = order_key(traced_order["platform_code"], traced_order["order_no"])

    async def decision_headers():
        async with customs.sessions() as session:
            rows = (await session.execute(select(OUTBOX.c.headers).where(
                OUTBOX.c.key == key, OUTBOX.c.topic == CUSTOMS_DECISION.name))).scalars().all()
        return [json.loads(h) for h in rows]

    headers = await wait_until(decision_headers, what="customs' decision in its outbox")
    assert all(h["traceparent"].split("-")[1] in sent.values() for h in headers)
    await asyncio.sleep(0.5)
    assert receiver.requests == 0 and receiver.spans == []


async def test_consumer_lag_is_positive_while_records_wait_and_zero_once_handled(postgres_port, kafka_bootstrap,
                                                                                  monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", create_database(postgres_port, f"lag_{uuid.uuid4().hex[:10]}"))
    monkeypatch.setenv("SW_BATCH_WAIT_MS", "50")
    settings.cache_clear()
    released = asyncio.Event()
    handlers = Handlers()

    @handlers.on_batch(CreditRatingChanged)
    async def hold(uow, events) -> None:  # noqa: ANN001
        await released.wait()  # the batch (and its offsets' commit) waits until the test has seen the lag

    group = f"lag-test-{uuid.uuid4().hex[:8]}"
    service = Service("gateway", handlers=handlers, group_id=group, lag_every=0.2)
    key = f"E-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        partitions = set()
        for score in ("90", "80", "70"):
            _, envelope = build_envelope(CreditRatingChanged(
                enterprise_code=key, score=score, grade="A", customs_credit="general", negative_listed=False,
                reason="test", changed_at="2026-11-29T00:00:00Z"), "credit", key)
            sent = await producer.send_and_wait(CREDIT_RATING.name, envelope.model_dump_json().encode(), key=key.encode())
            partitions.add(sent.partition)
    finally:
        await producer.stop()
    (partition,) = partitions

    def lag(p: int = partition) -> float | None:
        return REGISTRY.get_sample_value("sw_consumer_lag_records",
                                         {"group": group, "topic": CREDIT_RATING.name, "partition": str(p)})

    await service.start()
    try:
        async def waiting():
            return (lag() or 0) >= 3
        await wait_until(waiting, 30, what="a positive lag while the handler holds the batch")
        released.set()

        async def caught_up():
            values = [lag(p) for p in range(8)]
            return lag() == 0 and all(v in (None, 0) for v in values)
        await wait_until(caught_up, 30, what="the lag to fall to 0")
        scraped = [sample for family in text_string_to_metric_families(generate_latest().decode())  # as /metrics
                   for sample in family.samples if sample.name == "sw_consumer_lag_records"]
        assert ({"group": group, "topic": CREDIT_RATING.name, "partition": str(partition)}, 0.0) in [
            (sample.labels, sample.value) for sample in scraped]
    finally:
        released.set()
        await service.stop()
        settings.cache_clear()
