"""What the console reads from the other services: their back offices (dead letters, replay; spec §5a,
shared/deadletters.py `back_office`) and their Prometheus metrics (`GET /metrics`, shared/metrics.py).

The gateway learns where the services are from `SW_SERVICE_URLS` (`name=url,name=url`; `make up` and the
test harness set it from the ports they choose, deploy/mesh.py; docker-compose.yml from the registry,
deploy/generate.py). Unset: every service of the registry (shared/registry.py) on 127.0.0.1 at its
declared port (`make up`'s defaults). Every call carries the operator token, as an operator's own call would, and
has a short timeout: a service that is down is shown as "not reachable", never hangs the console.
"""
from __future__ import annotations

import asyncio
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from shared.registry import SERVICE_PORTS
from shared.settings import settings

TIMEOUT = httpx.Timeout(10.0, connect=2.0)
CONSUMER_LAG = "sw_consumer_lag_records"


def service_urls() -> dict[str, str]:
    """{service: base URL}, from SW_SERVICE_URLS (`gateway=http://…,customs=http://…`), else the defaults.
    A malformed entry (no `=`) is ignored rather than stopping the gateway: the console says what it lacks."""
    configured = os.environ.get("SW_SERVICE_URLS", "").strip()
    if not configured:
        return {name: f"http://127.0.0.1:{port}" for name, port in SERVICE_PORTS.items()}
    urls: dict[str, str] = {}
    for entry in configured.split(","):
        name, sep, url = entry.strip().partition("=")
        if sep and name.strip() and url.strip():
            urls[name.strip()] = url.strip().rstrip("/")
    return urls


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=TIMEOUT, headers={"Authorization": f"Bearer {settings().sw_admin_token}"})


@dataclass
class Answer:
    """One service's answer: its JSON (or text), or why there is none (`error`, shown to the operator)."""

    service: str
    data: Any = None
    error: str | None = None
    status: int | None = None


def _why(err: Exception) -> str:
    if isinstance(err, httpx.TimeoutException):
        return "timed out"
    if isinstance(err, httpx.ConnectError):
        return "not reachable (connection refused)"
    return f"not reachable ({type(err).__name__})"


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
        detail = body.get("detail") or body.get("title") or ""
        errors = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in body.get("errors") or [])
        return f"{response.status_code} {detail}" + (f" ({errors})" if errors else "")
    except (ValueError, AttributeError, TypeError):  # not JSON, or not problem details (a list, a string...)
        return f"{response.status_code} {response.text[:200]}"


def _shaped(service: str, response: httpx.Response, key: str, what: str) -> Answer:
    """The 200 answer as data when it is a JSON object whose `key` is a list of objects (what a back office
    answers); otherwise an error naming what came instead, so that a wrong SW_SERVICE_URLS entry (a web
    server's page) or another version of a service is shown as such, never a 500 of the console."""
    try:
        data = response.json()
    except ValueError:
        data = None
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        return Answer(service, error=f"answered 200 but not {what} ({kind})", status=response.status_code)
    return Answer(service, data=data, status=200)


async def dead_letters(service: str) -> Answer:
    """The service's `GET /v1/dead-letters`: {"service", "dead_letters": [...]} or the error."""
    url = service_urls().get(service)
    if url is None:
        return Answer(service, error="unknown service (not in SW_SERVICE_URLS)")
    try:
        async with _client() as client:
            r = await client.get(f"{url}/v1/dead-letters")
    except httpx.HTTPError as err:
        return Answer(service, error=_why(err))
    if r.status_code != 200:
        return Answer(service, error=_problem(r), status=r.status_code)
    return _shaped(service, r, "dead_letters", "a dead-letter list")


async def replay(service: str, ids: list[str] | None = None, all_open: bool = False) -> Answer:
    """The service's `POST /v1/dead-letters:replay` (handled in place by the service, recorded on
    ops.dead-letter-replays): {"service", "replayed": [...]} or the error (422: which id, 503: outage)."""
    url = service_urls().get(service)
    if url is None:
        return Answer(service, error="unknown service (not in SW_SERVICE_URLS)")
    body = {"all": True} if all_open else {"ids": ids or []}
    try:
        async with _client() as client:
            # replaying runs a batch through the service's core: give it longer than a read
            r = await client.post(f"{url}/v1/dead-letters:replay", json=body, timeout=60)
    except httpx.HTTPError as err:
        return Answer(service, error=_why(err))
    if r.status_code != 200:
        return Answer(service, error=_problem(r), status=r.status_code)
    return _shaped(service, r, "replayed", "a replay's outcome")


@dataclass
class Sample:
    """What the charts need of one service's /metrics at one moment. Counters are totals since the
    process started (the browser turns two samples into a rate); gauges are as they are; None: the service
    does not report the metric (e.g. consumer lag before a consumer reports it)."""

    consumed: float = 0.0
    produced: float = 0.0
    dead_lettered: float = 0.0
    handler_seconds_sum: float = 0.0
    handler_seconds_count: float = 0.0
    outbox_lag: float | None = None
    outbox_oldest_unsent_seconds: float | None = None
    consumer_lag: float | None = None
    consumer_lag_by_group: dict[str, float] = field(default_factory=dict)


def parse_metrics(text: str) -> Sample:
    """A Sample from Prometheus text: sums over every label set of each metric (`sw_consumer_lag_records`,
    labels group/topic/partition, also summed per group). NaN values are skipped."""
    s = Sample()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, value = sample.name, sample.value
            if value is None or math.isnan(value):
                continue
            if name == "sw_events_consumed_total":
                s.consumed += value
            elif name == "sw_events_produced_total":
                s.produced += value
            elif name == "sw_events_dead_lettered_total":
                s.dead_lettered += value
            elif name == "sw_handler_seconds_sum":
                s.handler_seconds_sum += value
            elif name == "sw_handler_seconds_count":
                s.handler_seconds_count += value
            elif name == "sw_outbox_lag":
                s.outbox_lag = (s.outbox_lag or 0.0) + value
            elif name == "sw_outbox_oldest_unsent_seconds":
                s.outbox_oldest_unsent_seconds = max(s.outbox_oldest_unsent_seconds or 0.0, value)
            elif name == CONSUMER_LAG:
                s.consumer_lag = (s.consumer_lag or 0.0) + value
                group = sample.labels.get("group", "")
                s.consumer_lag_by_group[group] = s.consumer_lag_by_group.get(group, 0.0) + value
    return s


async def _scrape(client: httpx.AsyncClient, service: str, url: str) -> Answer:
    try:
        r = await client.get(f"{url}/metrics")
    except httpx.HTTPError as err:
        return Answer(service, error=_why(err))
    if r.status_code != 200:
        return Answer(service, error=f"{r.status_code} from /metrics", status=r.status_code)
    try:
        return Answer(service, data=parse_metrics(r.text), status=200)
    except ValueError as err:
        return Answer(service, error=f"unreadable metrics ({err})")


async def metrics() -> tuple[float, list[Answer]]:
    """(when, one Answer per service with a Sample), every service scraped at once."""
    urls = service_urls()
    async with _client() as client:
        answers = await asyncio.gather(*(_scrape(client, name, url) for name, url in urls.items()))
    return time.time(), list(answers)


async def every_service(fetch) -> list[Answer]:  # noqa: ANN001 - an async function of a service name
    """`fetch(service)` for every known service, at once, in SW_SERVICE_URLS order."""
    return list(await asyncio.gather(*(fetch(name) for name in service_urls())))
