"""Prometheus metrics every service exposes on /metrics."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter("sw_events_consumed_total", "Events consumed", ["service", "topic", "type"])
EVENTS_DUPLICATE = Counter("sw_events_duplicate_total", "Redelivered events skipped by the inbox", ["service", "topic"])
EVENTS_PRODUCED = Counter("sw_events_produced_total", "Events published from the outbox", ["service", "topic"])
EVENTS_DEAD_LETTERED = Counter("sw_events_dead_lettered_total", "Records sent to a dead-letter topic", ["service", "topic"])
HANDLER_SECONDS = Histogram(
    "sw_handler_seconds", "Time spent in one event handler", ["service", "type"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
EVENT_AGE = Histogram(
    "sw_event_age_seconds", "Time from an event's creation (its envelope's occurred_at) to its handling here: how "
    "long one hop of the mesh takes, queueing included", ["service", "type"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
BATCH_SIZE = Histogram("sw_consumer_batch_size", "Records per consumed batch", ["service"],
                       buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000))
OUTBOX_LAG = Gauge("sw_outbox_lag", "Outbox rows not yet published", ["service"])
OUTBOX_OLDEST_SECONDS = Gauge("sw_outbox_oldest_unsent_seconds", "Age of the oldest unpublished outbox row", ["service"])
OUTBOX_SET_ASIDE_TOTAL = Counter("sw_outbox_set_aside_total",
                                 "Outbox rows the broker refused for good, set aside instead of published", ["service", "topic"])
OUTBOX_SET_ASIDE = Gauge("sw_outbox_set_aside_rows", "Outbox rows set aside and not yet dealt with", ["service"])
ROWS_PRUNED = Counter("sw_runtime_rows_pruned_total", "Published outbox rows and old inbox rows deleted", ["service", "table"])
HTTP_RESPONSES = Counter("sw_http_responses_total", "HTTP responses by method and status code", ["service", "method", "status"])
CONSUMER_LAG = Gauge("sw_consumer_lag_records",
                     "Records of a partition not yet committed by the consumer group (log end offset - committed offset)",
                     ["group", "topic", "partition"])
