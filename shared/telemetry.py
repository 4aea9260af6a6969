"""OpenTelemetry tracing for every service, configured in this one place (docs/observability.md).

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: then nothing is
created but OpenTelemetry's no-op tracer, no middleware is added, and records still carry the W3C
`traceparent` (shared/tracing.py). On, each service (`shared/runtime.py` calls `configure` when it builds
the app and when it starts) gets a tracer provider of its own, named `OTEL_SERVICE_NAME` or else the
service's name, whose spans go by OTLP/HTTP protobuf through a batching processor (a background thread:
export never waits in a request or a consumer batch). The SDK's own variables apply (`OTEL_TRACES_SAMPLER`,
`OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SDK_DISABLED`, ...).

What is traced (kept set-based: spans follow batches, not statements per record):
- every HTTP request, by opentelemetry-instrumentation-fastapi (a SERVER span continuing the caller's
  `traceparent`);
- every consumed batch (one span, linked to its records' traces) and, inside it, one CONSUMER span per
  handled record as the child of the record's `traceparent`, so that a submission's spans in the gateway
  and in every agency share one trace id (shared/batch.py);
- every outbox relay pass (one PRODUCER span linked to the records it published, shared/outbox.py);
- SQL statements, by opentelemetry-instrumentation-sqlalchemy, as children of whichever span is current.

Providers are per service rather than one global one so that tests running several services in one
process see each under its own name."""
from __future__ import annotations

import os
import threading

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult, ALWAYS_ON
from opentelemetry.trace import SpanKind

_NO_OP = trace.NoOpTracer()
_lock = threading.Lock()
_providers: dict[str, TracerProvider] = {}


def wanted() -> bool:
    """Whether this process is asked to export traces: an OTLP endpoint is set and the SDK is not disabled."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure(service: str, processor: SpanProcessor | None = None) -> bool:
    """Turns tracing on for `service` when `wanted()` (or when a test hands its own `processor`); True if it
    is on. Idempotent: a second call for the same service changes nothing."""
    with _lock:
        if service in _providers:
            return True
        if processor is None:
            if not wanted():
                return False
            processor = BatchSpanProcessor(_otlp_exporter())
        name = os.environ.get("OTEL_SERVICE_NAME") or service
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}), sampler=NoLoneStatements(_sampler()))
        provider.add_span_processor(processor)
        _providers[service] = provider
        return True


class NoLoneStatements(Sampler):
    """Drops a SQL statement's span (a CLIENT span) that belongs to no traced work: the relay's idle polls,
    lease renewals, health checks and pruning would otherwise each be a trace of one span, several a second
    per service. Everything else is decided by `inner` (the SDK's sampler from OTEL_TRACES_SAMPLER)."""

    def __init__(self, inner: Sampler):
        self.inner = inner

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None,  # noqa: ANN001, PLR0913
                      trace_state=None) -> SamplingResult:
        if kind is SpanKind.CLIENT and not trace.get_current_span(parent_context).get_span_context().is_valid:
            return SamplingResult(Decision.DROP)
        return self.inner.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"NoLoneStatements{{{self.inner.get_description()}}}"


def _sampler() -> Sampler:
    """OTEL_TRACES_SAMPLER's sampler, or the SDK's default (parent-based, always on)."""
    try:
        from opentelemetry.sdk.trace.sampling import _get_from_env_or_default  # noqa: PLC0415

        return _get_from_env_or_default()
    except ImportError:  # a private helper of the SDK: if it moves, the default is still right
        return ParentBased(ALWAYS_ON)


def _otlp_exporter() -> SpanExporter:
    # Imported only when tracing is on: the exporter pulls in protobuf and an HTTP client.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

    return OTLPSpanExporter()


def enabled(service: str) -> bool:
    return service in _providers


def provider(service: str) -> TracerProvider | None:
    return _providers.get(service)


def tracer(service: str) -> trace.Tracer:
    """The service's tracer, or OpenTelemetry's no-op tracer when its tracing is off."""
    p = _providers.get(service)
    return p.get_tracer("single-window") if p is not None else _NO_OP


def instrument_app(service: str, app) -> None:  # noqa: ANN001 - a FastAPI app
    """A SERVER span per HTTP request (opentelemetry-instrumentation-fastapi), when tracing is on. Must run
    before the app serves its first request (Starlette builds its middleware stack then)."""
    p = _providers.get(service)
    if p is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: PLC0415

    # /metrics and /healthz are scraped every few seconds: spans of them would drown the traces that matter;
    # the ASGI `receive`/`send` spans of each request say nothing the request's span does not.
    FastAPIInstrumentor.instrument_app(app, tracer_provider=p, excluded_urls="/metrics,/healthz",
                                       exclude_spans=["receive", "send"], server_request_hook=_mask_request_url)


# The attributes of a SERVER span that carry the query string (old and stable HTTP conventions).
_URL_ATTRIBUTES = ("http.url", "http.target", "url.full", "url.query")


def _mask_request_url(span, scope: dict) -> None:  # noqa: ANN001 - an SDK span
    """Masks identity numbers in the request's URL on its span, as the logs mask them (shared/logs.py): a
    query string may carry one (the console's buyer search, typed in full) and spans leave the process."""
    from shared.logs import mask_personal_data  # noqa: PLC0415 - logs imports nothing of ours but contracts

    if not scope.get("query_string") or not span.is_recording():
        return
    for name in _URL_ATTRIBUTES:
        value = (getattr(span, "attributes", None) or {}).get(name)
        if isinstance(value, str):
            masked = mask_personal_data(value)
            if masked != value:
                span.set_attribute(name, masked)


def instrument_engine(service: str, engine) -> None:  # noqa: ANN001 - an AsyncEngine
    """A span per SQL statement (opentelemetry-instrumentation-sqlalchemy's EngineTracer), when tracing is
    on. The engine's tracer is the service's: `SQLAlchemyInstrumentor().instrument` would also patch
    `create_engine` process-wide (one service's name on every engine) and declines SQLAlchemy 2.1, which its
    event listeners serve as they do 2.0 (tests/integration/test_telemetry.py)."""
    p = _providers.get(service)
    if p is None or engine is None:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer  # noqa: PLC0415
    from opentelemetry.metrics import NoOpMeter  # noqa: PLC0415

    # Connection-pool usage is a metric, and our metrics are Prometheus's (shared/metrics.py): not counted here.
    pool_usage = NoOpMeter("single-window").create_up_down_counter("db.client.connections.usage")
    EngineTracer(p.get_tracer("opentelemetry.instrumentation.sqlalchemy"), engine.sync_engine, pool_usage)


def flush(service: str) -> None:
    """Exports what is buffered (at stop: the last spans of a process are not lost)."""
    p = _providers.get(service)
    if p is not None:
        p.force_flush(5000)


def shutdown(service: str) -> None:
    """Exports what is still buffered and forgets the service's provider (at stop; tests turn it off so)."""
    with _lock:
        p = _providers.pop(service, None)
    if p is not None:
        p.force_flush(5000)
        p.shutdown()
