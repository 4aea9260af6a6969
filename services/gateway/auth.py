"""Who is calling: the operator (SW_ADMIN_TOKEN) or a registered enterprise (one of its live API keys,
table `api_keys`), and how fast it may call (spec §7.2: per key, per gateway process)."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from sqlalchemy import select

from services.gateway.rules import api_key_hash
from services.gateway.tables import api_keys, enterprises
from shared.http import BearerToken, Problem, is_operator_token
from shared.settings import settings


@dataclass(frozen=True)
class Caller:
    code: str | None  # None for the operator
    roles: frozenset[str]
    key_id: str | None = None  # the API key it called with (rate limits are per key)

    @property
    def is_operator(self) -> bool:
        return self.code is None

    def require_role(self, role: str) -> None:
        if self.is_operator or role not in self.roles:
            raise Problem(403, "Forbidden", f"this endpoint needs an enterprise with the {role!r} role")

    def require_self(self, code: str, field: str) -> None:
        if self.code != code:
            raise Problem(403, "Forbidden", f"{field} must be your own enterprise code ({self.code})")


class CallerCache:
    """API-key hash → caller, remembered for a short time so that a request needs no database round trip
    to know who calls, while a key revoked or changed in the database (by this process or another) stops
    working within `ttl` seconds. Unknown keys are remembered for `negative_ttl` seconds (shorter), so a
    flood of bad keys does not reach the database, yet a key registered by another process is usable within
    that time; a registration in this process calls `forget` and its key works at once."""

    def __init__(self, ttl: float, negative_ttl: float, clock: Callable[[], float] = time.monotonic,
                 max_entries: int = 100_000):
        self.ttl, self.negative_ttl, self.clock, self.max_entries = ttl, negative_ttl, clock, max_entries
        self._entries: dict[str, tuple[float, Caller | None]] = {}  # key hash → (expires at, caller or unknown)

    def lookup(self, key_hash: str) -> tuple[bool, Caller | None]:
        """(True, caller) or (True, None) for a remembered key or unknown key; (False, None) to ask the database."""
        entry = self._entries.get(key_hash)
        if entry is None:
            return False, None
        expires, caller = entry
        if self.clock() >= expires:
            self._entries.pop(key_hash, None)
            return False, None
        return True, caller

    def remember(self, key_hash: str, caller: Caller | None) -> None:
        ttl = self.ttl if caller is not None else self.negative_ttl
        if ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            # Bounded memory whatever keys are thrown at us; everything is re-read within one round trip.
            self._entries.clear()
        self._entries[key_hash] = (self.clock() + ttl, caller)

    def forget(self, key_hash: str | None = None) -> None:
        """Drops one key (or every key): the next request reads the database."""
        if key_hash is None:
            self._entries.clear()
        else:
            self._entries.pop(key_hash, None)


caller_cache = CallerCache(settings().sw_api_key_cache_seconds, settings().sw_api_key_negative_cache_seconds)


class KeyRateLimit:
    """Spec §7.2: at most `per_second` requests a second per API key, on average over a moving window of
    `window_seconds` (the `limits` library's moving window, in this process's memory: with several gateway
    processes each counts on its own, so a key gets that rate from each). A batch counts one per document;
    a batch larger than the whole window's allowance counts as the whole window (it can still pass, alone).
    The operator is not limited. `per_second` 0: no limit."""

    def __init__(self, per_second: float, window_seconds: int):
        self.amount = max(1, math.floor(per_second * window_seconds)) if per_second > 0 else 0
        self.item = RateLimitItemPerSecond(self.amount, window_seconds) if self.amount else None
        self.limiter = MovingWindowRateLimiter(MemoryStorage()) if self.item else None

    async def hit(self, caller: Caller, cost: int = 1) -> None:
        """Counts `cost` requests against the caller's key; 429 with Retry-After (seconds) when over."""
        if self.limiter is None or self.item is None or caller.key_id is None or cost < 1:
            return
        cost = min(cost, self.amount)
        if await self.limiter.hit(self.item, caller.key_id, cost=cost):
            return
        stats = await self.limiter.get_window_stats(self.item, caller.key_id)
        retry = max(1, math.ceil(stats.reset_time - time.time()))
        raise Problem(429, "Too many requests", f"over the rate limit of API key {caller.key_id} "
                      f"({self.amount} requests per {self.item.multiples} s; a batch counts one per document); "
                      f"retry after {retry} s", headers={"Retry-After": str(retry)})


rate_limit = KeyRateLimit(settings().sw_rate_limit_per_second, settings().sw_rate_limit_window_seconds)


async def current_caller(request: Request, token: BearerToken) -> Caller:
    """The caller of a request: the operator, or the enterprise one of whose live (not revoked) API keys it
    is (401 otherwise). Counts the request against the key's rate limit (429): every request counts one
    before its body is read (so an envelope that is refused, or any path, costs the same as any request), and
    a batch then counts its further documents once it has read them (spec §7.2)."""
    if is_operator_token(token):
        return Caller(None, frozenset())
    key_hash = api_key_hash(token)
    known, caller = caller_cache.lookup(key_hash)
    if not known:
        service = request.app.state.service
        async with service.readers() as session:
            row = (await session.execute(
                select(api_keys.c.key_id, enterprises.c.code, enterprises.c.roles)
                .join(enterprises, enterprises.c.code == api_keys.c.enterprise_code)
                .where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))
            )).first()
        caller = Caller(row.code, frozenset(row.roles), row.key_id) if row is not None else None
        caller_cache.remember(key_hash, caller)
    if caller is None:
        raise Problem(401, "Unauthorized", "unknown API key", headers={"WWW-Authenticate": "Bearer"})
    await rate_limit.hit(caller)
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]
