"""Sends due webhook deliveries (spec §7.3): a periodic job of the gateway process, beside intake and never
inside a request.

Each pass claims up to SW_WEBHOOK_CLAIM_BATCH due deliveries with a lease (one short transaction), sends
them over HTTP with at most SW_WEBHOOK_CONCURRENCY requests in flight, each bounded by its connect and read
timeouts, then records every attempt (a second short transaction). No database transaction or lock is open
while a request is in flight; a gateway that dies mid-pass leaves leases that expire, and the deliveries are
sent again (at least once, with the same `delivery_id` and body). A receiver that is down costs its own
deliveries' timeouts, in this task, and nothing to intake.

In production (SW_ENV not a development environment) the host is resolved before every attempt and every
address must be public (rules.address_problem), and the request goes to the address that was checked (the
`Host` header and TLS server name stay the URL's host): a name that resolved to a public address at
registration and to an internal one now (DNS rebinding) is refused, not called."""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
import time
import uuid
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx
from nacl.exceptions import CryptoError
from prometheus_client import Counter

from services.gateway.webhooks import rules, store
from services.gateway.webhooks.settings import WebhookSettings
from shared.clock import utcnow

log = logging.getLogger(__name__)

USER_AGENT = "single-window-webhooks/1"
ATTEMPTS = Counter("sw_webhook_attempts_total", "Webhook delivery attempts, by outcome "
                   "(delivered, http_error: a non-2xx answer, timeout, refused: the URL policy, error)", ["outcome"])


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an IP literal resolves to itself)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


async def checked_target(url: str, production: bool, timeout: float) -> tuple[str, dict, dict]:
    """(the URL to call, extra headers, httpx extensions). In development: the URL as is. In production:
    the URL with its host replaced by a checked public address, `Host` and the TLS server name set to the
    URL's host; raises ValueError naming why the URL may not be called."""
    problem = rules.url_problem(url, production)
    if problem:
        raise ValueError(problem)
    if not production:
        return url, {}, {}
    host, port = rules.host_and_port(url)
    try:
        addresses = await asyncio.wait_for(resolve(host, port), timeout)
    except (OSError, asyncio.TimeoutError) as err:
        raise ValueError(f"the host does not resolve: {type(err).__name__}") from None
    problem = rules.address_problem(addresses)
    if problem:
        raise ValueError(problem)
    parts = urlsplit(url)
    address = addresses[0]
    literal = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=netloc)), {"Host": host_header}, {"sni_hostname": host}


def outcome_of(o: store.Outcome) -> str:
    """The metric's label for one attempt."""
    if rules.succeeded(o.status_code):
        return "delivered"
    if o.status_code is not None:
        return "http_error"
    error = o.error or ""
    return "timeout" if error.startswith("timeout") else "refused" if error.startswith("refused") else "error"


class Sender:
    """One gateway process's sender. `production`: check every address before calling (see the module)."""

    def __init__(self, sessions, config: WebhookSettings, production: bool, gateway_key: str,  # noqa: ANN001
                 rng: random.Random | None = None):
        self.sessions = sessions
        self.box = rules.secret_box(gateway_key)
        self.config = config
        self.production = production
        self.rng = rng or random.Random()
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(config.read_timeout_seconds, connect=config.connect_timeout_seconds),
            limits=httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency),
            follow_redirects=False, trust_env=False, headers={"User-Agent": USER_AGENT})

    async def close(self) -> None:
        await self.client.aclose()

    def attempt_budget(self) -> float:
        """The longest one attempt may take, in seconds (resolving, connecting, waiting for the answer)."""
        return self.config.connect_timeout_seconds + self.config.read_timeout_seconds + 1

    def lease(self) -> timedelta:
        """How long a pass holds its claims: SW_WEBHOOK_LEASE_SECONDS, or more if a full pass could take
        longer (its attempts go in waves of SW_WEBHOOK_CONCURRENCY), so a lease never ends mid-pass."""
        waves = -(-self.config.claim_batch // self.config.concurrency)
        return timedelta(seconds=max(self.config.lease_seconds, 1.5 * waves * self.attempt_budget() + 5))

    async def run(self, max_passes: int = 20) -> int:
        """Passes until nothing due is left (at most `max_passes`); returns how many attempts were made."""
        made = 0
        for _ in range(max_passes):
            sent = await self.run_once()
            made += sent
            if sent < self.config.claim_batch:
                break
        return made

    async def run_once(self) -> int:
        """One pass: claim, send, record; returns how many attempts were made."""
        token = str(uuid.uuid4())
        async with self.sessions() as session, session.begin():
            claimed = await store.claim_due(session, utcnow(), self.lease(), token, self.config.claim_batch)
        if not claimed:
            return 0
        gate = asyncio.Semaphore(self.config.concurrency)
        outcomes = await asyncio.gather(*(self._attempt(c, gate) for c in claimed))
        jitters = {c.seq: self.rng.random() for c in claimed}
        async with self.sessions() as session, session.begin():
            await store.record_outcomes(session, outcomes, token, self.config.schedule, jitters)
        for o in outcomes:
            ATTEMPTS.labels(outcome_of(o)).inc()
            if not rules.succeeded(o.status_code):
                log.info("webhook delivery attempt failed",
                         extra={"event_type": rules.ORDER_STATUS_CHANGED, "error": o.error or f"HTTP {o.status_code}"})
        return len(claimed)

    async def _attempt(self, delivery: store.Claimed, gate: asyncio.Semaphore) -> store.Outcome:
        async with gate:
            started, at = time.perf_counter(), utcnow()
            status_code, error = None, None
            # The whole attempt (resolving included) is bounded: a receiver that accepts and never answers
            # costs at most this, whatever its stream does.
            try:
                async with asyncio.timeout(self.attempt_budget()):
                    url, headers, extensions = await checked_target(
                        delivery.url, self.production, self.config.connect_timeout_seconds)
                    body = delivery.body.encode()
                    secret = rules.open_secret(self.box, delivery.secret)
                    headers |= {"Content-Type": "application/json",
                                rules.SIGNATURE_HEADER: rules.signature_header(secret, int(time.time()), body)}
                    # The answer's body is never read: only its status matters, and a receiver cannot make us
                    # download anything.
                    async with self.client.stream("POST", url, content=body, headers=headers,
                                                  extensions=extensions) as response:
                        status_code = response.status_code
            except ValueError as err:
                error = f"refused: {err}"
            except CryptoError:
                error = "the webhook's secret does not open with this gateway's key (SW_GATEWAY_FINGERPRINT_KEY changed?)"
            except (httpx.TimeoutException, TimeoutError):
                error = "timeout: no answer within the connect and read timeouts"
            except httpx.HTTPError as err:
                error = f"{type(err).__name__}: {err}"[:500] or type(err).__name__
            return store.Outcome(delivery, at, status_code, error, int((time.perf_counter() - started) * 1000))
