"""Sends due webhook deliveries (spec §7.3): a periodic job of the gateway process, beside intake and never
inside a request.

It claims due deliveries with a lease (short transactions), sends them over HTTP with at most
SW_WEBHOOK_CONCURRENCY requests in flight (SW_WEBHOOK_PER_WEBHOOK_CONCURRENCY per webhook), each bounded by
its connect and read timeouts, and records the attempts as they finish (short transactions again, one
statement per table for all that finished together). No database transaction or lock is open while a
request is in flight; a gateway that dies mid-send leaves leases that expire, and the deliveries are
sent again (at least once, with the same `delivery_id` and body). A receiver that is down costs its own
deliveries' timeouts, in this task, and nothing to intake.

In production (SW_ENV not a development environment) the host is resolved before every attempt and every
address must be public (rules.address_problem), and the request goes to the address that was checked (the
`Host` header and TLS server name stay the URL's host): a name that resolved to a public address at
registration and to an internal one now (DNS rebinding) is refused, not called."""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import ipaddress
import logging
import random
import socket
import time
import uuid
import collections
from collections.abc import Mapping, Sequence
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


# Webhook hosts are resolved on threads of their own. A name whose servers never answer holds its thread
# for the system resolver's own timeout (asyncio's wait_for stops waiting, not the thread); on the loop's
# default pool (a few threads) a hostile enterprise's URLs would starve every other lookup of the process:
# the database's and Kafka's connections by host name. Here they can only slow other webhooks' lookups
# (which time out and are retried); a lookup still queued when its caller gives up is dropped.
RESOLVER_THREADS = 8
_resolver = concurrent.futures.ThreadPoolExecutor(RESOLVER_THREADS, thread_name_prefix="webhook-resolver")


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an IP literal resolves to itself), looked up on the webhooks' own
    resolver threads."""
    infos = await asyncio.get_running_loop().run_in_executor(
        _resolver, functools.partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM))
    return sorted({info[4][0] for info in infos})


class Refused(Exception):
    """The URL may not be called (the URL policy); the message says why."""


async def checked_target(url: str, production: bool, timeout: float) -> tuple[str, dict, dict]:
    """(the URL to call, extra headers, httpx extensions). In development: the URL as is. In production:
    the URL with its host replaced by a checked public address, `Host` and the TLS server name set to the
    URL's host; raises Refused naming why the URL may not be called."""
    problem = rules.url_problem(url, production)
    if problem:
        raise Refused(problem)
    if not production:
        return url, {}, {}
    host, port = rules.host_and_port(url)
    try:
        addresses = await asyncio.wait_for(resolve(host, port), timeout)
    except (OSError, asyncio.TimeoutError) as err:
        raise Refused(f"the host does not resolve: {type(err).__name__}") from None
    problem = rules.address_problem(addresses)
    if problem:
        raise Refused(problem)
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
        self.client: httpx.AsyncClient | None = None  # opened when there is something to send

    def _http(self) -> httpx.AsyncClient:
        if self.client is None:
            config = self.config
            self.client = httpx.AsyncClient(
                timeout=httpx.Timeout(config.read_timeout_seconds, connect=config.connect_timeout_seconds),
                limits=httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency),
                follow_redirects=False, trust_env=False, headers={"User-Agent": USER_AGENT})
        return self.client

    async def close(self) -> None:
        """Closes the HTTP client (its connections); the next attempt opens a new one."""
        client, self.client = self.client, None
        if client is not None:
            await client.aclose()

    def attempt_budget(self) -> float:
        """The longest one attempt may take, in seconds (resolving, connecting, waiting for the answer)."""
        return self.config.connect_timeout_seconds + self.config.read_timeout_seconds + 1

    def lease(self) -> timedelta:
        """How long a claim holds a delivery: SW_WEBHOOK_LEASE_SECONDS, and at least twice what an attempt may
        take (a claimed delivery's attempt starts at once), so a lease never ends while its attempt runs."""
        return timedelta(seconds=max(self.config.lease_seconds, 2 * self.attempt_budget() + 5))

    async def _claim(self, limit: int, in_flight: Mapping[str, int] | None = None,
                     owners_in_flight: Mapping[str, int] | None = None) -> list[store.Claimed]:
        """Claims up to `limit` due deliveries, at most SW_WEBHOOK_PER_WEBHOOK_CONCURRENCY of one webhook
        and SW_WEBHOOK_PER_ENTERPRISE_CONCURRENCY of one enterprise's webhooks with those in flight (one
        short transaction)."""
        async with self.sessions() as session, session.begin():
            return await store.claim_due(session, utcnow(), self.lease(), str(uuid.uuid4()), limit,
                                         self.config.per_webhook_concurrency, in_flight,
                                         self.config.per_enterprise_concurrency, owners_in_flight)

    async def _record(self, outcomes: Sequence[store.Outcome]) -> None:
        """Records attempts (one short transaction, one statement per table) and counts them."""
        jitters = {o.delivery.seq: self.rng.random() for o in outcomes}
        async with self.sessions() as session, session.begin():
            await store.record_outcomes(session, outcomes, self.config.schedule, jitters)
        for o in outcomes:
            ATTEMPTS.labels(outcome_of(o)).inc()
            if not rules.succeeded(o.status_code):
                log.info("webhook delivery attempt failed",
                         extra={"event_type": rules.ORDER_STATUS_CHANGED, "error": o.error or f"HTTP {o.status_code}"})

    async def run(self) -> int:
        """Sends until nothing is due and nothing is in flight; returns how many attempts were made.

        A pipeline, not passes: at most SW_WEBHOOK_CONCURRENCY attempts in flight, and at most
        SW_WEBHOOK_PER_WEBHOOK_CONCURRENCY of one webhook and SW_WEBHOOK_PER_ENTERPRISE_CONCURRENCY of one
        enterprise's, so a receiver that hangs (or an enterprise's many) holds a few slots for its timeout
        while every other receiver's deliveries keep leaving. Finished attempts are recorded
        together as they come in (one statement per table); a freed slot is filled by the next claim."""
        in_flight: dict[asyncio.Task, store.Claimed] = {}
        per_webhook: collections.Counter[str] = collections.Counter()
        per_owner: collections.Counter[str] = collections.Counter()
        made = 0
        try:
            while True:
                room = self.config.concurrency - len(in_flight)
                if room > 0:
                    for claimed in await self._claim(min(room, self.config.claim_batch), per_webhook, per_owner):
                        in_flight[asyncio.create_task(self._attempt(claimed))] = claimed
                        per_webhook[claimed.webhook_id] += 1
                        per_owner[claimed.owner] += 1
                if not in_flight:
                    return made
                done, _ = await asyncio.wait(in_flight, timeout=self.config.poll_seconds,
                                             return_when=asyncio.FIRST_COMPLETED)
                if done:
                    outcomes = [task.result() for task in done]
                    for task in done:
                        finished = in_flight.pop(task)
                        per_webhook[finished.webhook_id] -= 1
                        per_owner[finished.owner] -= 1
                    await self._record(outcomes)
                    made += len(outcomes)
        finally:
            # Stopped (the service stops) with attempts in flight: their leases run out and they are sent again.
            for task in in_flight:
                task.cancel()
            if made or in_flight:
                # Idle from here on (or stopping): the connections go; a busy period keeps them open.
                await asyncio.gather(*in_flight, return_exceptions=True)
                await self.close()

    async def run_once(self) -> int:
        """One claim of up to SW_WEBHOOK_CLAIM_BATCH due deliveries, sent, then recorded together; returns how
        many attempts were made (tests step the sender with it)."""
        claimed = await self._claim(self.config.claim_batch)
        if not claimed:
            return 0
        gate = asyncio.Semaphore(self.config.concurrency)

        async def gated(c: store.Claimed) -> store.Outcome:
            async with gate:
                return await self._attempt(c)

        outcomes = await asyncio.gather(*(gated(c) for c in claimed))
        await self._record(outcomes)
        return len(claimed)

    async def _attempt(self, delivery: store.Claimed) -> store.Outcome:
        """One attempt; never raises (every failure is its outcome)."""
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
                async with self._http().stream("POST", url, content=body, headers=headers,
                                              extensions=extensions) as response:
                    status_code = response.status_code
        except Refused as err:
            error = f"refused: {err}"
        except CryptoError:
            error = "the webhook's secret does not open with this gateway's key (SW_GATEWAY_FINGERPRINT_KEY changed?)"
        except (httpx.TimeoutException, TimeoutError):
            error = "timeout: no answer within the connect and read timeouts"
        except httpx.HTTPError as err:
            error = f"{type(err).__name__}: {err}"[:500]
        except Exception as err:  # anything else (an invalid URL stored before a rule existed...) is this
            error = f"{type(err).__name__}: {err}"[:500]  # attempt's failure, never the sender's
        return store.Outcome(delivery, at, status_code, error, int((time.perf_counter() - started) * 1000))
