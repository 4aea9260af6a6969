"""The operator console's sign-in, CSRF and escaping (spec §7.4), on the real gateway app in-process
(httpx ASGI transport, its own SQLite database, no broker), as tests/integration/test_gateway_parties.py.
The browser test on the whole mesh is tests/e2e/test_console_browser.py."""
from __future__ import annotations

import re

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer

from contracts.identifiers import mask_id_number
from services.gateway import app as gateway
from services.gateway.console import session, sources
from shared.settings import settings
from tests.support import new_uscc, order_body, unique

pytestmark = pytest.mark.integration

OPERATOR = settings().sw_admin_token
HTML = {"Accept": "text/html,application/xhtml+xml"}
XSS = '<script>alert("x")</script>'


@pytest.fixture
async def client(tmp_path, monkeypatch):
    # the back offices the console calls: a port nobody listens on (the console must say so, not hang)
    monkeypatch.setenv("SW_SERVICE_URLS", "gateway=http://127.0.0.1:9,tax=http://127.0.0.1:9")
    await gateway.service.open_database(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app), base_url="http://gateway") as c:
            yield c
    finally:
        await gateway.service.stop()
        gateway.group_commit = None


async def signed_in(client: httpx.AsyncClient) -> str:
    """Signs `client` in; returns the session's CSRF token (as the pages embed it)."""
    r = await client.post("/console/sign-in", data={"token": OPERATOR, "next": "/console"})
    assert r.status_code == 303 and r.headers["location"] == "/console"
    page = await client.get("/console", headers=HTML)
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


PAGES = ["/console", "/console/enterprises", "/console/dead-letters", "/console/dead-letters/tax",
         "/console/charts", "/console/orders/P1/O1"]


@pytest.mark.parametrize("path", PAGES)
async def test_without_a_session_a_page_sends_the_browser_to_sign_in_and_anything_else_gets_401(client, path):
    r = await client.get(path, headers=HTML)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/sign-in?next=" + path.replace("/", "%2F")
    for headers in ({"Accept": "application/json"}, {**HTML, "HX-Request": "true"}):
        r = await client.get(path, headers=headers)
        assert r.status_code == 401 and r.headers["HX-Redirect"].startswith("/console/sign-in")
    assert (await client.get("/console/metrics.json")).status_code == 401
    # the operator token as a bearer header is not a console session either
    r = await client.get(path, headers={**HTML, "Authorization": f"Bearer {OPERATOR}"})
    assert r.status_code == 303


async def test_a_wrong_token_is_refused_and_sets_no_cookie(client):
    for token in ("", "dev-admin-toke", OPERATOR + "x", "sw_" + "a" * 40):
        r = await client.post("/console/sign-in", data={"token": token})
        assert r.status_code == 401, token
        assert "set-cookie" not in r.headers
        assert "That is not the operator token." in r.text
    assert (await client.get("/console", headers=HTML)).status_code == 303


async def test_the_right_token_gives_a_signed_httponly_samesite_strict_cookie_and_no_token_in_any_url(client):
    r = await client.post("/console/sign-in", data={"token": OPERATOR, "next": "/console/charts"})
    assert r.status_code == 303 and r.headers["location"] == "/console/charts"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{session.COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert OPERATOR not in cookie and OPERATOR not in r.headers["location"]
    page = await client.get("/console/charts", headers=HTML)
    assert page.status_code == 200 and "How the mesh is keeping up" in page.text
    assert "Content-Security-Policy" in page.headers and page.headers["Cache-Control"] == "no-store"
    assert OPERATOR not in page.text
    # the sign-in form posts the token in the body; the page never asks for it in a query
    form = (await client.get("/console/sign-in")).text
    assert 'method="post"' in form and 'type="password"' in form


async def test_after_sign_in_only_console_paths_are_followed(client):
    for target in ("https://evil.example/", "//evil.example/x", "/v1/stats", "/console\\@evil"):
        r = await client.post("/console/sign-in", data={"token": OPERATOR, "next": target})
        assert r.headers["location"] == "/console", target


async def test_a_tampered_expired_or_foreign_cookie_is_no_session(client, monkeypatch):
    await signed_in(client)
    good = client.cookies[session.COOKIE]
    domain = next(c.domain for c in client.cookies.jar if c.name == session.COOKIE)
    for forged in (good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
                   URLSafeTimedSerializer("another-key", salt="sw-console").dumps({"v": 1, "csrf": "x"}),
                   "not-even-signed"):
        client.cookies.clear()
        client.cookies.set(session.COOKIE, forged, domain=domain, path="/console")
        assert (await client.get("/console", headers=HTML)).status_code == 303
    client.cookies.clear()
    client.cookies.set(session.COOKIE, good, domain=domain, path="/console")
    assert (await client.get("/console", headers=HTML)).status_code == 200
    monkeypatch.setattr(session, "SESSION_MAX_AGE", -1)  # older than the maximum age
    assert (await client.get("/console", headers=HTML)).status_code == 303


async def test_every_post_needs_the_sessions_csrf_token(client):
    csrf = await signed_in(client)
    replay = "/console/dead-letters/tax/replay"
    assert (await client.post(replay, data={"dead_letter": "x.dlq:0:1"})).status_code == 403
    assert (await client.post(replay, data={"dead_letter": "x.dlq:0:1", "csrf_token": "wrong"})).status_code == 403
    assert (await client.post(replay, data={"dead_letter": "x.dlq:0:1"},
                              headers={session.CSRF_HEADER: csrf[:-1]})).status_code == 403
    assert (await client.post("/console/sign-out")).status_code == 403
    # the right token (form field or htmx's header): the replay is tried; tax is down here, and the page says so
    for kwargs in ({"data": {"dead_letter": "x.dlq:0:1", "csrf_token": csrf}},
                   {"data": {"dead_letter": "x.dlq:0:1"}, "headers": {session.CSRF_HEADER: csrf}}):
        r = await client.post(replay, **kwargs)
        assert r.status_code == 200 and "Replay refused or failed: not reachable" in r.text
    # another session's token is not this one's
    other = httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app), base_url="http://gateway")
    async with other:
        other_csrf = await signed_in(other)
    assert other_csrf != csrf
    assert (await client.post(replay, data={"dead_letter": "x.dlq:0:1", "csrf_token": other_csrf})).status_code == 403
    # without a session at all: 401 whatever the token
    signed_out = await client.post("/console/sign-out", data={"csrf_token": csrf})
    assert signed_out.status_code == 303 and 'Max-Age=0' in signed_out.headers["set-cookie"]
    client.cookies.clear()
    assert (await client.post(replay, data={"dead_letter": "x", "csrf_token": csrf})).status_code == 401


async def register(client: httpx.AsyncClient, roles: list[str], name: str | None = None) -> tuple[str, str]:
    code = new_uscc()
    r = await client.post("/v1/enterprises", headers={"Authorization": f"Bearer {OPERATOR}"},
                          json={"code": code, "name": name or f"Enterprise {code}", "roles": roles})
    assert r.status_code == 201, r.text
    return code, r.json()["api_key"]


async def test_user_data_is_escaped_on_every_page(client):
    await signed_in(client)
    seller, _ = await register(client, ["ecommerce"], name=XSS)
    platform, key = await register(client, ["platform"])
    order_no = unique("ORD")
    r = await client.post("/v1/orders", json=order_body(platform, seller, order_no),
                          headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 202, r.text
    enterprises = await client.get("/console/enterprises", params={"q": seller}, headers=HTML)
    assert enterprises.status_code == 200 and seller in enterprises.text
    assert XSS not in enterprises.text and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in enterprises.text
    for path, params in (("/console", {"by": "order_no", "q": XSS}), ("/console/enterprises", {"q": XSS})):
        page = await client.get(path, params=params, headers=HTML)
        assert page.status_code == 200 and XSS not in page.text and "&lt;script&gt;" in page.text
    missing = await client.get("/console/orders/%3Cb%3Ex/%3Ci%3Ey", headers=HTML)
    assert missing.status_code == 404 and "<b>x" not in missing.text and "&lt;b&gt;x" in missing.text
    # a dead letter's error (free text from a failed handler) is escaped too
    from services.gateway.console.routes import templates  # noqa: PLC0415

    html = templates.get_template("_dead_letters_service.html").render(
        service="tax", csrf="t", result=None, answer=sources.Answer("tax", data={}),
        letters=[{"id": "a.dlq:0:1", "at": "now", "original_topic": "a", "original_partition": 0,
                  "original_offset": 1, "key": XSS, "error": XSS, "status": "open", "replays": []}])
    assert XSS not in html and html.count("&lt;script&gt;") == 3


async def test_an_order_is_found_by_number_platform_and_buyers_masked_id_and_shown_with_its_timeline(client):
    await signed_in(client)
    seller, _ = await register(client, ["ecommerce"])
    platform, key = await register(client, ["platform"])
    order_no = unique("ORD")
    body = order_body(platform, seller, order_no)
    full_id = body["buyer"]["id_number"]
    assert (await client.post("/v1/orders", json=body, headers={"Authorization": f"Bearer {key}"})).status_code == 202
    for by, q in (("order_no", order_no), ("platform", platform), ("buyer", mask_id_number(full_id)),
                  ("buyer", full_id)):
        # a full id number lands on the masked id's page (tests/integration/test_hostile_users.py)
        page = await client.get("/console", params={"by": by, "q": q}, headers=HTML, follow_redirects=True)
        assert page.status_code == 200 and f"/console/orders/{platform}/{order_no}" in page.text, (by, q)
        assert full_id not in page.text  # a full number typed in is never shown back
    part = await client.get("/console", params={"by": "order_no", "q": order_no},
                            headers={**HTML, "HX-Request": "true", "HX-Target": "results"})
    assert "<html" not in part.text and order_no in part.text  # htmx gets the results alone
    assert "No order for" in (await client.get("/console", params={"by": "buyer", "q": "9999**********9999"},
                                               headers=HTML)).text
    view = await client.get(f"/console/orders/{platform}/{order_no}", headers=HTML)
    assert view.status_code == 200
    for text in ("One-stop view", "Timeline across every agency", "order.received", "customs", "pending"):
        assert text in view.text, text
    assert full_id not in view.text


async def test_dead_letters_of_an_unreachable_service_say_so(client):
    await signed_in(client)
    page = await client.get("/console/dead-letters", headers=HTML)
    assert 'hx-get="/console/dead-letters/tax"' in page.text and 'hx-get="/console/dead-letters/gateway"' in page.text
    part = await client.get("/console/dead-letters/tax", headers=HTML)
    assert part.status_code == 200 and "Not listed: not reachable" in part.text


async def test_metrics_sample_reads_what_each_service_reports_and_says_when_it_does_not(client):
    await signed_in(client)
    r = await client.get("/console/metrics.json")
    assert r.status_code == 200
    body = r.json()
    assert set(body["services"]) == {"gateway", "tax"} and "not reachable" in body["services"]["tax"]["error"]
    assert body["decision_seconds"]["count"] == 0 and body["decision_seconds"]["p50"] is None
    text = "\n".join([
        '# TYPE sw_events_consumed_total counter',
        'sw_events_consumed_total{service="tax",topic="a",type="t"} 3.0',
        'sw_events_consumed_total{service="tax",topic="b",type="t"} 4.0',
        '# TYPE sw_outbox_lag gauge', 'sw_outbox_lag{service="tax"} 2.0',
        '# TYPE sw_handler_seconds histogram',
        'sw_handler_seconds_bucket{service="tax",type="t",le="+Inf"} 7.0',
        'sw_handler_seconds_count{service="tax",type="t"} 7.0', 'sw_handler_seconds_sum{service="tax",type="t"} 0.07',
    ]) + "\n"
    sample = sources.parse_metrics(text)
    assert (sample.consumed, sample.outbox_lag, sample.handler_seconds_count) == (7.0, 2.0, 7.0)
    assert sample.consumer_lag is None  # not reported: the charts say so
    lag = text + "\n".join(['# TYPE sw_consumer_lag_records gauge',
                            'sw_consumer_lag_records{group="tax",topic="a",partition="0"} 5.0',
                            'sw_consumer_lag_records{group="tax",topic="a",partition="1"} 6.0']) + "\n"
    assert sources.parse_metrics(lag).consumer_lag == 11.0


def test_service_urls_come_from_sw_service_urls_or_the_registry(monkeypatch):
    from shared.registry import SERVICE_PORTS  # noqa: PLC0415

    monkeypatch.delenv("SW_SERVICE_URLS", raising=False)
    assert sources.service_urls() == {name: f"http://127.0.0.1:{port}" for name, port in SERVICE_PORTS.items()}
    assert sources.service_urls()["credit"] == "http://127.0.0.1:8005"
    monkeypatch.setenv("SW_SERVICE_URLS", "gateway=http://a:1/, tax=http://b:2,broken")
    assert sources.service_urls() == {"gateway": "http://a:1", "tax": "http://b:2"}


def test_the_console_is_not_in_the_published_api_description():
    assert not [p for p in gateway.app.openapi()["paths"] if p.startswith("/console")]


async def test_decision_times_are_the_median_and_95th_percentile_of_recent_decided_orders(tmp_path):
    from datetime import timedelta  # noqa: PLC0415

    from sqlalchemy import insert  # noqa: PLC0415

    from services.gateway.console import queries  # noqa: PLC0415
    from services.gateway.tables import agency_views, orders  # noqa: PLC0415
    from shared.clock import utcnow  # noqa: PLC0415

    await gateway.service.open_database(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    try:
        now = utcnow()
        rows, views = [], []
        # 20 decided orders taking 1..20 s, one pending, one decided but submitted 20 minutes ago (outside)
        for i in range(22):
            submitted = now - (timedelta(minutes=20) if i == 21 else timedelta(seconds=60))
            complete = submitted + timedelta(seconds=5)
            rows.append({"platform_code": "P", "order_no": f"O{i}", "version": 1, "content_hash": "h", "document": {},
                         "ecommerce_code": "E", "direction": "import", "trade_mode": "9610", "currency": "CNY",
                         "actual_paid": 1, "submitted_at": submitted, "updated_at": submitted,
                         "documents_complete_at": complete})
            status = "pending" if i == 20 else "released"
            views.append({"platform_code": "P", "order_no": f"O{i}", "agency": "customs", "version": 1,
                          "view": {"status": status}, "updated_at": complete + timedelta(seconds=min(i + 1, 20))})
        async with gateway.service.unit_of_work() as uow:
            await uow.session.execute(insert(orders), rows)
            await uow.session.execute(insert(agency_views), views)
        async with gateway.service.readers() as s:
            got = await queries.decision_times(s, now)
        assert got["count"] == 20 and got["window_minutes"] == 15
        assert got["p50"] == pytest.approx(10.5) and got["p95"] == pytest.approx(19.05)
    finally:
        await gateway.service.stop()
        gateway.group_commit = None


async def test_searches_on_postgresql_never_fail_on_what_is_typed(postgres_port, monkeypatch):
    """PostgreSQL refuses NUL characters in any text: a search with one finds nothing rather than a 500;
    the buyer search reads the JSON document there as on SQLite."""
    from tests.conftest import create_database  # noqa: PLC0415

    url = create_database(postgres_port, f"console_{unique('db').replace('-', '_').lower()}")
    monkeypatch.setenv("SW_SERVICE_URLS", "gateway=http://127.0.0.1:9")
    await gateway.service.open_database(url)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app), base_url="http://gateway") as c:
            await signed_in(c)
            seller, _ = await register(c, ["ecommerce"])
            platform, key = await register(c, ["platform"])
            order_no = unique("ORD")
            body = order_body(platform, seller, order_no)
            assert (await c.post("/v1/orders", json=body, headers={"Authorization": f"Bearer {key}"})).status_code == 202
            for by in ("order_no", "platform", "buyer"):
                r = await c.get("/console", params={"by": by, "q": "a\x00b"}, headers=HTML, follow_redirects=True)
                assert r.status_code == 200 and "No order for" in r.text, by
            assert (await c.get("/console/enterprises", params={"q": "\x00"}, headers=HTML)).status_code == 200
            assert (await c.get("/console/orders/P%00/O", headers=HTML)).status_code == 404
            found = await c.get("/console", params={"by": "buyer", "q": mask_id_number(body["buyer"]["id_number"])},
                                headers=HTML)
            assert f"/console/orders/{platform}/{order_no}" in found.text
            assert (await c.get("/console/metrics.json")).status_code == 200  # the decision-time query on PostgreSQL
    finally:
        await gateway.service.stop()
        gateway.group_commit = None
