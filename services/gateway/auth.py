"""Who is calling: the operator (SW_ADMIN_TOKEN) or a registered enterprise (its API key)."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select

from services.gateway.rules import api_key_hash
from services.gateway.tables import enterprises
from shared.http import BearerToken, Problem, is_operator_token
from shared.settings import settings


@dataclass(frozen=True)
class Caller:
    code: str | None  # None for the operator
    roles: frozenset[str]

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


async def current_caller(request: Request, token: BearerToken) -> Caller:
    """The caller of a request: the operator, or the enterprise whose API key it is (401 otherwise)."""
    if is_operator_token(token):
        return Caller(None, frozenset())
    key_hash = api_key_hash(token)
    known, caller = caller_cache.lookup(key_hash)
    if not known:
        service = request.app.state.service
        async with service.readers() as session:
            row = (await session.execute(
                select(enterprises.c.code, enterprises.c.roles).where(enterprises.c.api_key_hash == key_hash)
            )).first()
        caller = Caller(row.code, frozenset(row.roles)) if row is not None else None
        caller_cache.remember(key_hash, caller)
    if caller is None:
        raise Problem(401, "Unauthorized", "unknown API key", headers={"WWW-Authenticate": "Bearer"})
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]
