"""W3C trace context carried in Kafka headers and HTTP, so one order's path can be followed across services."""
from __future__ import annotations

import contextvars
import re
import secrets

_traceparent: contextvars.ContextVar[str | None] = contextvars.ContextVar("traceparent", default=None)
_FORMAT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def new_traceparent(parent: str | None = None) -> str:
    """A child span of `parent` (same trace id), or the root of a new trace."""
    match = _FORMAT.match(parent or "")
    trace_id = match.group(1) if match else secrets.token_hex(16)
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


def continue_trace(parent: str | None) -> contextvars.Token:
    return _traceparent.set(new_traceparent(parent))


def end_trace(token: contextvars.Token) -> None:
    _traceparent.reset(token)


def current_traceparent() -> str:
    value = _traceparent.get()
    if value is None:
        value = new_traceparent()
        _traceparent.set(value)
    return value
