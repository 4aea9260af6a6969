"""The operator console's sign-in: a signed session cookie and a CSRF token (spec §7.4).

The operator signs in once with the operator token (`SW_ADMIN_TOKEN`, the token of every back office),
typed into a form and sent in a POST body, never in a URL. The console then holds a session cookie:

- signed (itsdangerous, HMAC-SHA1 over a key derived from the operator token: changing the token ends every
  session at once, and several gateway processes accept each other's sessions without a shared store);
- `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page sends it), `Path=/console`,
  `Secure` outside development (SW_ENV) or whenever the request came over https;
- timed: refused after `SESSION_MAX_AGE` seconds (8 hours, a working day), whatever the browser keeps.

The session carries a random CSRF token. Every POST of the console (replay, sign-out) must send it back,
as the form field `csrf_token` or the `X-CSRF-Token` header (htmx sends the header), compared in constant
time; SameSite=Strict already keeps other sites' requests cookie-less, the token is the second lock (old
browsers, same-site subdomains). The sign-in form itself needs no token: forging it would need the operator
token, which only the operator knows.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from shared.http import is_operator_token
from shared.settings import settings

COOKIE = "sw_console"
COOKIE_PATH = "/console"
SESSION_MAX_AGE = 8 * 3600  # seconds
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in operator: the session's CSRF token (what every POST must send back)."""

    csrf: str


NOT_CONFIGURED = "No operator token is set (SW_ADMIN_TOKEN is empty): nobody can sign in to the console."


def configured() -> bool:
    """Whether an operator token is set. Without one (SW_ADMIN_TOKEN empty, which a development SW_ENV
    allows) nobody signs in and no cookie is a session: the cookies' key would be derived from the empty
    string, which anyone can compute."""
    return bool(settings().sw_admin_token.strip())


def _serializer() -> URLSafeTimedSerializer:
    # A key of its own, derived from the operator token (never the token itself in a cookie's signature
    # input): a new SW_ADMIN_TOKEN invalidates every console session.
    key = hmac.new(settings().sw_admin_token.encode(), b"sw-console-session-v1", hashlib.sha256).hexdigest()
    return URLSafeTimedSerializer(key, salt="sw-console")


def sign_in(token: str) -> ConsoleSession | None:
    """A new session when `token` is the operator token (constant-time comparison), else None."""
    if not configured() or not token or not is_operator_token(token):
        return None
    return ConsoleSession(csrf=secrets.token_urlsafe(32))


def current(request: Request) -> ConsoleSession | None:
    """The request's session: its cookie, signed by us and younger than SESSION_MAX_AGE; None otherwise."""
    raw = request.cookies.get(COOKIE)
    if not raw or not configured():
        return None
    try:
        data = _serializer().loads(raw, max_age=SESSION_MAX_AGE)
    except BadSignature:  # also SignatureExpired
        return None
    if not isinstance(data, dict) or data.get("v") != 1 or not isinstance(data.get("csrf"), str):
        return None
    return ConsoleSession(csrf=data["csrf"])


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or not settings().is_development


def set_cookie(response: Response, request: Request, session: ConsoleSession) -> None:
    response.set_cookie(COOKIE, _serializer().dumps({"v": 1, "csrf": session.csrf}), max_age=SESSION_MAX_AGE,
                        path=COOKIE_PATH, httponly=True, samesite="strict", secure=_secure(request))


def clear_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict", secure=_secure(request))


def csrf_ok(session: ConsoleSession, sent: str | None) -> bool:
    """True when `sent` (form field or header) is the session's CSRF token (constant time)."""
    return bool(sent) and hmac.compare_digest(sent.encode(), session.csrf.encode())
