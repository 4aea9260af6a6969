"""W3C trace context (`traceparent`) carried in Kafka headers and HTTP, so one order's path can be followed
across services; kept in OpenTelemetry's context and read and written by its W3C propagator.

Every record a service publishes carries the `traceparent` current when its event was staged
(shared/outbox.py). With tracing on (shared/telemetry.py) that is a real span's: the HTTP request's, or the
span of the record whose handling emitted it (shared/batch.py). With tracing off no span is made, and the
trace id still goes on: a request continues its caller's trace under a span id of its own, and a handled
record's events carry its `traceparent` on unchanged."""
from __future__ import annotations

from opentelemetry import context, trace
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

PROPAGATOR = TraceContextTextMapPropagator()
_IDS = RandomIdGenerator()
# Links per span: OpenTelemetry's default limit (OTEL_SPAN_LINK_COUNT_LIMIT); building more is wasted work.
MAX_LINKS = 128


def span_context(traceparent: str | None) -> SpanContext | None:
    """The span context a `traceparent` header names, or None when it is absent or malformed."""
    if not traceparent:
        return None
    found = trace.get_current_span(PROPAGATOR.extract({"traceparent": traceparent})).get_span_context()
    return found if found.is_valid else None


def links(traceparents) -> list[Link]:  # noqa: ANN001 - an iterable of str | None
    """Links to the first MAX_LINKS valid contexts among `traceparents` (a batch span's records)."""
    found: list[Link] = []
    for value in traceparents:
        sc = span_context(value)
        if sc is not None:
            found.append(Link(sc))
            if len(found) == MAX_LINKS:
                break
    return found


def continue_trace(parent: str | None) -> object:
    """Makes current a new span id in `parent`'s trace (or in a new trace when there is none). Only an id:
    used where tracing is off (an HTTP request) or where there is no caller (a job, a contract scenario).
    Returns the token for `end_trace`."""
    sc = span_context(parent)
    own = SpanContext(sc.trace_id if sc else _IDS.generate_trace_id(), _IDS.generate_span_id(), is_remote=False,
                      trace_flags=sc.trace_flags if sc else TraceFlags(TraceFlags.SAMPLED))
    return context.attach(trace.set_span_in_context(NonRecordingSpan(own)))


def resume(traceparent: str | None) -> object | None:
    """Makes `traceparent` itself current, so what is emitted now is its child (a handled record's events).
    None (nothing to undo) when it is absent or malformed."""
    sc = span_context(traceparent)
    return None if sc is None else context.attach(trace.set_span_in_context(NonRecordingSpan(sc)))


def end_trace(token: object | None) -> None:
    if token is not None:
        context.detach(token)  # type: ignore[arg-type]


def current_traceparent() -> str:
    """The `traceparent` of the current span; when nothing started a trace (a script, a test), this context
    starts one and keeps it."""
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier)
    if "traceparent" not in carrier:
        continue_trace(None)  # kept for the rest of this context, as a contextvar set here would be
        PROPAGATOR.inject(carrier)
    return carrier["traceparent"]


def traceparent_of(span: trace.Span) -> str | None:
    """The `traceparent` naming `span` as parent, or None for a span without a valid context (no-op)."""
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier, trace.set_span_in_context(span))
    return carrier.get("traceparent")
