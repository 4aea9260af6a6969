"""Who is calling: the operator (SW_ADMIN_TOKEN) or a registered enterprise (its API key)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select

from services.gateway.rules import api_key_hash
from services.gateway.tables import enterprises
from shared.http import BearerToken, Problem, is_operator_token


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


# An enterprise's key and roles never change once registered, so a key seen once needs no second
# database round trip. Unknown keys are not cached (a registration may come a moment later).
_known_callers: dict[str, Caller] = {}
_KNOWN_CALLERS_MAX = 100_000


async def current_caller(request: Request, token: BearerToken) -> Caller:
    if is_operator_token(token):
        return Caller(None, frozenset())
    key_hash = api_key_hash(token)
    caller = _known_callers.get(key_hash)
    if caller is not None:
        return caller
    service = request.app.state.service
    async with service.readers() as session:
        row = (await session.execute(
            select(enterprises.c.code, enterprises.c.roles).where(enterprises.c.api_key_hash == key_hash)
        )).first()
    if row is None:
        raise Problem(401, "Unauthorized", "unknown API key", headers={"WWW-Authenticate": "Bearer"})
    if len(_known_callers) >= _KNOWN_CALLERS_MAX:
        _known_callers.clear()
    caller = _known_callers[key_hash] = Caller(row.code, frozenset(row.roles))
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]
