"""The operator console's pages (spec §7.4), served by the gateway under /console.

Server-rendered Jinja2 templates (autoescaped: every value from a document, a dead letter or a metric is
escaped), htmx for the parts that update in place (search results, each service's dead letters, replay),
Chart.js for the charts; both vendored under static/vendor (VERSIONS), nothing fetched from elsewhere.
The routes stay out of the published API description (include_in_schema=False): they are pages for a
person, not part of the interface platforms and agencies build against.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

from services.gateway.console import queries, session, sources
from shared.http import Problem

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(env=Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True))

# Pages hold operators' data: not cached, not framed, no script or style from anywhere but here.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class NotSignedIn(Exception):
    """Raised by `signed_in`: answered by `not_signed_in` (redirect to the sign-in page, or 401)."""


def signed_in(request: Request) -> session.ConsoleSession:
    found = session.current(request)
    if found is None:
        raise NotSignedIn()
    return found


Session = Annotated[session.ConsoleSession, Depends(signed_in)]


async def not_signed_in(request: Request, _: NotSignedIn) -> Response:
    """No (valid) session: a page the browser navigates to (GET accepting text/html) goes to the sign-in
    page and comes back after; anything else (a POST, an htmx request, the charts' JSON) is 401 with the
    sign-in page (htmx is told where to go by HX-Redirect)."""
    browsing = "text/html" in request.headers.get("accept", "") and "hx-request" not in request.headers
    if request.method == "GET" and browsing:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    else:
        # A part of a page (a replay, a section, the charts' poll): back to the page it was on after
        # signing in (htmx names it), never to the part (a POST-only route, a fragment, JSON); a path only.
        page_url = urlsplit(request.headers.get("hx-current-url", ""))
        target = safe_next(page_url.path + (f"?{page_url.query}" if page_url.query else ""))
    sign_in_url = f"/console/sign-in?next={quote(target, safe='')}"
    if request.method == "GET" and browsing:
        return RedirectResponse(sign_in_url, status_code=303, headers=SECURITY_HEADERS)
    response = page(request, "sign_in.html", {"error": "Your session has ended: sign in again.", "next": target},
                    status_code=401)
    response.headers["HX-Redirect"] = sign_in_url
    return response


def page(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200,
         current: session.ConsoleSession | None = None) -> HTMLResponse:
    """A template rendered with the security headers; `current` gives the page its CSRF token."""
    context = {"csrf": current.csrf if current else None, "signed_in": current is not None, **(context or {})}
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def csrf_checked(request: Request, current: Session,
                 csrf_token: Annotated[str | None, Form()] = None) -> session.ConsoleSession:
    """The session of a POST whose CSRF token (form field or X-CSRF-Token header) is the session's; 403."""
    if not session.csrf_ok(current, csrf_token or request.headers.get(session.CSRF_HEADER)):
        raise Problem(403, "Forbidden", "the form's CSRF token is missing or not this session's: reload the page")
    return current


Checked = Annotated[session.ConsoleSession, Depends(csrf_checked)]


def searchable(text: str, limit: int) -> str:
    """A search as typed, cut to `limit` characters and without NUL characters (PostgreSQL refuses them in
    any text, which would make the page a 500 instead of "nothing found")."""
    return text[:limit].replace("\x00", "")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only (never another site: no open redirect)."""
    if target and target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console"


router = APIRouter(prefix="/console", include_in_schema=False)


# --- signing in and out -------------------------------------------------------------------------


@router.get("/sign-in")
async def sign_in_page(request: Request, next: str | None = None):  # noqa: A002 - the query parameter
    return page(request, "sign_in.html", {"next": safe_next(next),
                                          "error": None if session.configured() else session.NOT_CONFIGURED})


@router.post("/sign-in")
async def sign_in(request: Request, token: Annotated[str, Form(max_length=1000)] = "",
                  next: Annotated[str, Form(max_length=2000)] = "/console"):  # noqa: A002
    found = session.sign_in(token)
    if found is None:
        error = "That is not the operator token." if session.configured() else session.NOT_CONFIGURED
        return page(request, "sign_in.html", {"error": error, "next": safe_next(next)}, status_code=401)
    response = RedirectResponse(safe_next(next), status_code=303, headers=SECURITY_HEADERS)
    session.set_cookie(response, request, found)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, _: Checked):
    response = RedirectResponse("/console/sign-in", status_code=303, headers=SECURITY_HEADERS)
    session.clear_cookie(response, request)
    return response


# --- orders --------------------------------------------------------------------------------------


def _service(request: Request):  # noqa: ANN202 - shared.runtime.Service
    return request.app.state.service


@router.get("")
async def home(request: Request, current: Session, q: str = "", by: str = "order_no"):
    """Finding an order: by number, platform or buyer's masked id; the results (also as an htmx part)."""
    by = by if by in queries.SEARCH_KINDS else "order_no"
    q = searchable(q, 200)
    # A full id number typed in the buyer search never stays in a URL (address bar, history, bookmarks):
    # the page lands on the masked id's URL, which finds the same orders (the search is by the masked id).
    masked_url = None
    if by == "buyer" and q.strip() and queries.buyer_key(q) != q:
        masked_url = "/console?" + urlencode({"by": "buyer", "q": queries.buyer_key(q)})
        if "hx-request" not in request.headers:
            return RedirectResponse(masked_url, status_code=303, headers=SECURITY_HEADERS)
    found = None
    if q.strip():
        async with _service(request).readers() as s:
            found = await queries.find_orders(s, by, q)
    shown_q = queries.buyer_key(q) if by == "buyer" and q.strip() else q  # never echo a full id number
    context = {"q": shown_q, "by": by, "found": found, "max_rows": queries.MAX_ROWS}
    response = page(request, "_results.html" if "hx-request" in request.headers
                    and request.headers.get("hx-target") == "results" else "orders.html", context, current=current)
    if masked_url:
        response.headers["HX-Push-Url"] = masked_url  # what htmx puts in the history instead of the request's URL
    return response


@router.get("/orders/{platform_code}/{order_no}")
async def order_page(request: Request, current: Session, platform_code: str, order_no: str):
    """The order's one-stop view (spec §4.4) and its timeline across every agency, as the operator sees
    them through the public API (the same functions answer GET /v1/orders/… and …/trace)."""
    from services.gateway import app as gateway  # noqa: PLC0415 - the app module installs this router
    from services.gateway.auth import Caller  # noqa: PLC0415

    operator = Caller(None, frozenset())
    try:
        if "\x00" in platform_code + order_no:  # no such order can exist (nor be asked of PostgreSQL)
            raise Problem(404, "Not found", "no such order")
        status = await gateway.order_status(platform_code, order_no, operator)
        timeline = await gateway.order_trace(platform_code, order_no, operator)
    except Problem as problem:
        if problem.status != 404:
            raise
        return page(request, "order.html", {"missing": True, "platform_code": platform_code, "order_no": order_no},
                    status_code=404, current=current)
    fixed = ("order_no", "platform_code", "ecommerce_code", "direction", "trade_mode", "version", "documents",
             "submitted_at", "updated_at")
    agencies = {k: v for k, v in status.items() if k not in fixed}
    return page(request, "order.html", {"status": status, "agencies": agencies, "events": timeline["events"],
                                        "platform_code": platform_code, "order_no": order_no}, current=current)


# --- enterprises ---------------------------------------------------------------------------------


@router.get("/enterprises")
async def enterprises_page(request: Request, current: Session, q: str = ""):
    async with _service(request).readers() as s:
        found = await queries.list_enterprises(s, searchable(q, 100))
    return page(request, "enterprises.html", {"q": q, "found": found, "max_rows": queries.MAX_ROWS}, current=current)


# --- dead letters --------------------------------------------------------------------------------


@router.get("/dead-letters")
async def dead_letters_page(request: Request, current: Session):
    """Every service's section; each loads its own list (htmx), so a slow or absent service delays only
    its own section."""
    return page(request, "dead_letters.html", {"services": list(sources.service_urls())}, current=current)


@router.get("/dead-letters/{service}")
async def service_dead_letters(request: Request, current: Session, service: str, open: bool = False):  # noqa: A002
    answer = await sources.dead_letters(service)
    letters = (answer.data or {}).get("dead_letters", [])
    if open:
        letters = [d for d in letters if d.get("status") == "open"]
    return page(request, "_dead_letters_service.html",
                {"service": service, "answer": answer, "letters": letters, "result": None}, current=current)


@router.post("/dead-letters/{service}/replay")
async def replay_dead_letters(request: Request, current: Checked, service: str,
                              dead_letter: Annotated[list[str] | None, Form()] = None,
                              all_open: Annotated[bool, Form()] = False):
    """Replays one or more dead letters of `service` (or every open one) through its back office, then
    shows its section again with what happened."""
    if service not in sources.service_urls():
        raise Problem(404, "Not found", f"no service {service}")
    if not all_open and not dead_letter:
        raise Problem(422, "Unprocessable Content", "name a dead letter or all_open",
                      errors=[{"field": "dead_letter", "code": "missing", "message": "no dead letter named"}])
    result = await sources.replay(service, ids=dead_letter, all_open=all_open)
    answer = await sources.dead_letters(service)
    context = {"service": service, "answer": answer, "letters": (answer.data or {}).get("dead_letters", []),
               "result": result}
    # 200 even when the service refused or was unreachable: the section shows why (htmx swaps only 2xx).
    return page(request, "_dead_letters_service.html", context, current=current)


# --- charts --------------------------------------------------------------------------------------


@router.get("/charts")
async def charts_page(request: Request, current: Session):
    return page(request, "charts.html", {"services": list(sources.service_urls())}, current=current)


@router.get("/metrics.json")
async def metrics_json(request: Request, _: Session):
    """One sample for the charts: every service's counters and gauges (sources.Sample; `error` when it did
    not answer), and the customs decision times of the last 15 minutes (queries.decision_times)."""
    at, answers = await sources.metrics()
    async with _service(request).readers() as s:
        decisions = await queries.decision_times(s)
    services = {a.service: ({"error": a.error} if a.error else asdict(a.data)) for a in answers}
    return JSONResponse({"at": at, "services": services, "decision_seconds": decisions},
                        headers={"Cache-Control": "no-store"})
