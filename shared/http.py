"""HTTP conventions shared by every service: RFC 9457 problem details, body size limit, operator auth."""
from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry import trace
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.v1.documents import FieldProblem
from shared import metrics
from shared.db import is_transient
from shared.settings import settings
from shared.tracing import continue_trace, end_trace

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1024 * 1024
# A batch twin of a document endpoint (`POST /v1/orders:batch`, spec §7.1) carries up to 500 documents.
MAX_BATCH_BODY_BYTES = 8 * 1024 * 1024
BATCH_SUFFIX = ":batch"
# Paths that take a whole set of documents, with the batch limit: customs' own messages (spec §7.5, 1-100 records).
LARGE_BODY_PATHS = frozenset({"/ceb/v1/messages"})
PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """An error answered as application/problem+json."""

    def __init__(self, status: int, title: str, detail: str = "", errors: list[dict] | None = None,
                 type_: str | None = None, headers: dict | None = None):
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.errors = status, title, detail, errors
        self.type = type_ or f"/problems/{title.lower().replace(' ', '-')}"
        self.headers = headers

    def body(self, instance: str | None = None) -> dict[str, Any]:
        """The problem details document (what `response` sends; a batch result's `body`)."""
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status, "detail": self.detail}
        if instance:
            body["instance"] = instance
        if self.errors is not None:
            body["errors"] = self.errors
        return body

    def response(self, instance: str | None = None) -> JSONResponse:
        return JSONResponse(self.body(instance), status_code=self.status, media_type=PROBLEM_JSON,
                            headers=self.headers)


def field_path(loc: tuple | list) -> str:
    """('body', 'items', 0, 'hs_code') -> 'items[0].hs_code'."""
    path = ""
    for part in loc:
        if part in ("body", "query", "path") and path == "":
            continue
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and (part.startswith("function-") or part in ("constrained-str",)):
            continue
        else:
            path += ("." if path else "") + str(part)
    return path


def validation_errors(errors: list[dict], prefix: tuple = ()) -> list[dict]:
    out = []
    for e in errors:
        loc = tuple(prefix) + tuple(e.get("loc", ()))
        problem = (e.get("ctx") or {}).get("error")
        if isinstance(problem, FieldProblem):
            out.append({"field": field_path(loc + (problem.field,)), "code": problem.code, "message": problem.message})
            continue
        message = e.get("msg", "invalid")
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        out.append({"field": field_path(loc) or "(body)", "code": e.get("type", "invalid"), "message": message})
    return out


def unprocessable(errors: list[dict], detail: str | None = None) -> Problem:
    fields = ", ".join(e["field"] for e in errors[:5])
    return Problem(422, "Validation failed", detail or f"the document is not valid: {fields}", errors,
                   type_="/problems/validation-failed")


def problem_from_validation(err: ValidationError | RequestValidationError, prefix: tuple = ()) -> Problem:
    return unprocessable(validation_errors(list(err.errors()), prefix))


class BodySizeLimit:
    """413 for bodies over 1 MiB (8 MiB for a `…:batch` path and `LARGE_BODY_PATHS`), whether or not
    Content-Length is sent."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES, batch_limit: int = MAX_BATCH_BODY_BYTES):
        self.app, self.limit, self.batch_limit = app, limit, batch_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The limit follows the path, so a single document keeps its 1 MiB even beside the batch twin.
        path = scope.get("path", "")
        limit = self.batch_limit if path.endswith(BATCH_SUFFIX) or path in LARGE_BODY_PATHS else self.limit
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_large = Problem(413, "Payload too large", f"the body is over {limit} bytes")
        if declared and declared.isdigit() and int(declared) > limit:
            await too_large.response()(scope, receive, send)
            return
        # The body is read here, up to the limit, and handed on whole. (Raising from inside the app's own
        # receive does not work: FastAPI turns any exception met while reading a body into a 400.)
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                await self.app(scope, _replay([], message, receive), send)
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                await too_large.response()(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(chunks, None, receive), send)


def _replay(chunks: list[bytes], first: Message | None, receive: Receive) -> Receive:
    """A receive that gives the body already read (or the message already taken), then the client's own."""
    pending: list[Message] = [first] if first is not None else [
        {"type": "http.request", "body": b"".join(chunks), "more_body": False}]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed


class TraceContext:
    """Continues the caller's W3C trace (`traceparent` header) for everything the request does, and counts
    responses by status (`sw_http_responses_total`). Plain ASGI rather than `@app.middleware("http")`,
    whose extra task and streaming wrapper cost ~10% of a request. With tracing on, the OpenTelemetry
    middleware around it (shared/telemetry.py) has already made the request's span current: that is left
    as it is."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.service: str | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.service is None:
            owner = getattr(getattr(scope.get("app"), "state", None), "service", None)
            self.service = getattr(owner, "name", None) or "-"
        token = None
        if not trace.get_current_span().is_recording():
            parent = dict(scope.get("headers") or []).get(b"traceparent", b"").decode("latin-1") or None
            token = continue_trace(parent)
        status = 0

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counted)
        except Exception as err:
            # Answered by the outermost error handler (install_problem_details' `_unexpected`): 503 for an
            # outage, 500 otherwise.
            status = status or (503 if is_transient(err) else 500)
            raise
        finally:
            metrics.HTTP_RESPONSES.labels(self.service, scope.get("method", ""), str(status)).inc()
            end_trace(token)


def unavailable() -> Problem:
    """503 with `Retry-After: 1`: the request met an outage (a unit of work that did not commit, a database
    that could not be reached); nothing of it was stored, and sending it again is safe (idempotency, §2)."""
    return Problem(503, "Service unavailable", "the submission could not be stored; nothing of it was "
                   "stored, submit it again", headers={"Retry-After": "1"})


def install_problem_details(app: FastAPI) -> None:
    app.add_middleware(TraceContext)
    app.add_middleware(BodySizeLimit)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        return exc.response(request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return Problem(400, "Malformed JSON", "the body is not valid JSON",
                           [{"field": "(body)", "code": "json_invalid", "message": errors[0].get("msg", "")}],
                           type_="/problems/malformed-json").response(request.url.path)
        return problem_from_validation(exc).response(request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        content_type = request.headers.get("content-type", "")
        if exc.status_code == 400 and content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            # A form (the console's) Starlette would not parse: too many fields or files, a part too large.
            return Problem(400, "Malformed form", "the form could not be read",
                           [{"field": "(body)", "code": "form_invalid", "message": str(exc.detail)}],
                           type_="/problems/malformed-form").response(request.url.path)
        if exc.status_code == 400:
            # FastAPI could not read the body as JSON at all (e.g. a number of more than 4300 digits, which
            # Python's parser refuses to convert): the same answer as any other malformed body.
            return Problem(400, "Malformed JSON", "the body could not be read as JSON",
                           [{"field": "(body)", "code": "json_invalid", "message": str(exc.detail)}],
                           type_="/problems/malformed-json").response(request.url.path)
        titles = {401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed"}
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return Problem(exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail),
                       headers=headers).response(request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        if is_transient(exc):
            # The database (or broker) is unreachable, wherever in the request that showed (the API-key
            # lookup, a read, a commit): an outage, not a bug, so the client is told to come back (spec §2:
            # nothing was stored) rather than given a final-looking 500.
            log.warning("request refused during an outage: %s", type(exc).__name__)
            return unavailable().response(request.url.path)
        log.exception("unhandled error")
        return Problem(500, "Internal error", "the request could not be completed; nothing was stored").response(
            request.url.path)


def allowed_methods(request: Request) -> str:
    """The `Allow` header of a 405 (RFC 9110 §15.5.6): every method of every route at the request's path.
    Starlette names only the methods of the first route whose path matched, and FastAPI has one route per
    method, so `GET` and `POST` on one path would each deny the other."""
    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


_bearer = HTTPBearer(auto_error=False)


def bearer_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    if credentials is None or not credentials.credentials:
        raise Problem(401, "Unauthorized", "send Authorization: Bearer <api key>",
                      headers={"WWW-Authenticate": "Bearer"})
    return credentials.credentials


BearerToken = Annotated[str, Depends(bearer_token)]


def is_operator_token(token: str) -> bool:
    return hmac.compare_digest(token.encode(), settings().sw_admin_token.encode())


def require_operator(token: BearerToken) -> None:
    if not is_operator_token(token):
        raise Problem(401, "Unauthorized", "this endpoint needs the operator token",
                      headers={"WWW-Authenticate": "Bearer"})


Operator = Annotated[None, Depends(require_operator)]


def beyond_schema(*rules: str) -> dict:
    """`openapi_extra` for a route whose body can be valid against its JSON Schema and still be refused with
    422: the rules (cross-field, checksums, the registry of enterprises, reference rates) the schema cannot
    state. Published as the operation's `x-rules-beyond-schema` (`{"refused-with": 422, "rules": [...]}`, which
    schemathesis.toml selects by) and in its description."""
    return {"x-rules-beyond-schema": {"refused-with": 422, "rules": list(rules)}}
