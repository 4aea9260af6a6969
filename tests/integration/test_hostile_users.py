"""The webhooks' routes and the operator console as a hostile user (or a careless newcomer) meets them, on
the real gateway app in-process (httpx ASGI transport, its own SQLite database, no broker), as
tests/integration/test_console.py: each test is a problem found by trying, kept so it stays fixed."""
from __future__ import annotations

import hashlib
import hmac
import re
import time
from pathlib import Path

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer

from services.gateway import app as gateway
from services.gateway.console import session
from services.gateway.webhooks import rules
from shared.settings import settings
from tests.integration.test_console import HTML, OPERATOR, client, register, signed_in  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration

HOOK = {"url": "http://127.0.0.1:9/hook", "events": ["order.status_changed"]}


async def test_the_same_url_registered_twice_is_409_naming_the_webhook_it_has(client):
    """A second webhook for the same endpoint would send every change twice with two delivery ids, which
    the receiver's de-duplication by `delivery_id` cannot catch (a client retrying a POST that timed out
    does exactly this)."""
    _, key = await register(client, ["platform"])
    auth = {"Authorization": f"Bearer {key}"}
    first = await client.post("/v1/webhooks", json=HOOK, headers=auth)
    assert first.status_code == 201, first.text
    for url in (HOOK["url"], "HTTP://127.0.0.1:9/hook", "http://127.0.0.1:9/hook"):
        again = await client.post("/v1/webhooks", json={**HOOK, "url": url}, headers=auth)
        assert again.status_code == 409, (url, again.text)
        assert again.headers["content-type"] == "application/problem+json"
        problem = again.json()
        assert problem["errors"][0]["field"] == "url" and problem["errors"][0]["code"] == "duplicate"
        assert first.json()["id"] in problem["detail"] and first.json()["secret"] not in again.text
    listed = (await client.get("/v1/webhooks", headers=auth)).json()["webhooks"]
    assert len(listed) == 1
    # another path of the same host is another endpoint; another enterprise may use the same URL
    assert (await client.post("/v1/webhooks", json={**HOOK, "url": "http://127.0.0.1:9/other"},
                              headers=auth)).status_code == 201
    _, other_key = await register(client, ["platform"])
    assert (await client.post("/v1/webhooks", json=HOOK,
                              headers={"Authorization": f"Bearer {other_key}"})).status_code == 201


async def test_a_url_with_a_newline_or_space_is_422_naming_url_not_stored(client):
    _, key = await register(client, ["ecommerce"])
    auth = {"Authorization": f"Bearer {key}"}
    for url in ("http://127.0.0.1\n/hook", "http://ex ample.com/", "http://127.0.0.1:9/a\tb"):
        r = await client.post("/v1/webhooks", json={**HOOK, "url": url}, headers=auth)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "url", (url, r.text)
    assert (await client.get("/v1/webhooks", headers=auth)).json()["webhooks"] == []


async def test_the_secret_is_in_the_201_alone(client, caplog):
    _, key = await register(client, ["platform"])
    auth = {"Authorization": f"Bearer {key}"}
    with caplog.at_level("DEBUG"):
        made = await client.post("/v1/webhooks", json=HOOK, headers=auth)
    secret = made.json()["secret"]
    assert secret.startswith("whsec_") and secret not in caplog.text
    hook = made.json()["id"]
    for r in (await client.get("/v1/webhooks", headers=auth),
              await client.get("/v1/webhooks", headers={"Authorization": f"Bearer {OPERATOR}"}),
              await client.get(f"/v1/webhooks/{hook}/deliveries", headers=auth),
              await client.delete(f"/v1/webhooks/{hook}", headers=auth)):
        assert r.status_code == 200 and secret not in r.text and "secret" not in r.json()


async def test_the_receivers_sample_in_the_docs_verifies_a_real_signature():
    """docs/webhooks.md's Python sample, run as a receiver would copy it, on a body and header made as the
    sender makes them; and it refuses a changed body, an old timestamp and another secret."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
    sample = next(block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "def verify" in block)
    namespace: dict = {}
    exec(compile(sample, "docs/webhooks.md", "exec"), namespace)  # noqa: S102 - our own documentation
    verify = namespace["verify"]
    secret, body = rules.new_secret(), rules.delivery_body("d-1", gateway.utcnow(), {"order_no": "O-1"}).encode()
    now = int(time.time())
    header = rules.signature_header(secret, now, body)
    assert verify(secret, header, body)
    assert not verify(secret, header, body + b" ")
    assert not verify(rules.new_secret(), header, body)
    assert not verify(secret, rules.signature_header(secret, now - 301, body), body)
    assert hmac.compare_digest(header.split("v1=")[1], hmac.new(secret.encode(), f"{now}.".encode() + body,
                                                                  hashlib.sha256).hexdigest())


async def test_without_an_operator_token_the_console_signs_nobody_in_and_accepts_no_cookie(client, monkeypatch):
    """SW_ADMIN_TOKEN set empty (allowed in a development SW_ENV): the session key would be derived from the
    empty string, which anyone can compute, so a forged cookie would open the console."""
    monkeypatch.setattr(settings(), "sw_admin_token", "")
    forged = URLSafeTimedSerializer(hmac.new(b"", b"sw-console-session-v1", hashlib.sha256).hexdigest(),
                                    salt="sw-console").dumps({"v": 1, "csrf": "x"})
    client.cookies.set(session.COOKIE, forged, path="/console")
    r = await client.get("/console", headers=HTML)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/sign-in")
    r = await client.post("/console/sign-in", data={"token": ""})
    assert r.status_code == 401 and "set-cookie" not in r.headers
    assert session.NOT_CONFIGURED in r.text  # says why nobody can sign in
    assert session.NOT_CONFIGURED in (await client.get("/console/sign-in")).text


async def test_a_form_that_cannot_be_read_is_400_saying_so_not_malformed_json(client):
    csrf = await signed_in(client)
    r = await client.post("/console/dead-letters/tax/replay",
                          data={"dead_letter": [f"t.dlq:0:{i}" for i in range(1001)], "csrf_token": csrf})
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    assert "JSON" not in r.json()["title"] and "form" in r.json()["detail"], r.text


@pytest.fixture
def not_a_back_office():
    """An HTTP server that answers 200 to anything, with HTML or a JSON list: what a wrong SW_SERVICE_URLS
    entry (a web server, a proxy's page) or a service of another version answers."""
    import http.server  # noqa: PLC0415
    import threading  # noqa: PLC0415

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self) -> None:
            body = b"[1, 2]" if "list" in self.path or self.server.as_list else b"<html>hello</html>"
            self.send_response(self.server.status)
            self.send_header("Content-Type", "application/json" if body.startswith(b"[") else "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = answer  # noqa: N815

        def log_message(self, *args) -> None:  # noqa: ANN002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.as_list, server.status = False, 200
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.mark.parametrize("as_list", [False, True])
async def test_a_back_office_answering_something_else_is_shown_as_such_not_a_500(client, monkeypatch,
                                                                                 not_a_back_office, as_list):
    not_a_back_office.as_list = as_list
    monkeypatch.setenv("SW_SERVICE_URLS", f"tax=http://127.0.0.1:{not_a_back_office.server_address[1]}")
    csrf = await signed_in(client)
    section = await client.get("/console/dead-letters/tax", headers=HTML)
    assert section.status_code == 200 and "not a dead-letter list" in section.text, section.text
    replay = await client.post("/console/dead-letters/tax/replay", data={"dead_letter": "t.dlq:0:1", "csrf_token": csrf})
    assert replay.status_code == 200 and "not a replay&#39;s outcome" in replay.text, replay.text
    charts = await client.get("/console/metrics.json")
    assert charts.status_code == 200 and "error" in charts.json()["services"]["tax"]
    not_a_back_office.status = 404  # an error that is not problem details either
    section = await client.get("/console/dead-letters/tax", headers=HTML)
    assert section.status_code == 200 and "Not listed: 404" in section.text, section.text


@pytest.mark.parametrize("method, path", [("POST", "/console/dead-letters/tax/replay"),
                                          ("GET", "/console/dead-letters/tax"), ("GET", "/console/metrics.json")])
async def test_a_session_ending_mid_page_signs_in_back_to_the_page_not_to_a_part_of_it(client, method, path):
    """The session ends while a page is open; its next htmx request (a replay, a section loading, the charts'
    poll) is sent to sign in. Afterwards the operator must land on the page (HX-Current-URL), not on the part
    the request asked for: a POST-only route (405 to the browser's GET), an HTML fragment without the layout,
    or the charts' JSON."""
    headers = {"HX-Request": "true", "HX-Current-URL": "http://gateway/console/dead-letters"}
    r = await client.request(method, path, headers=headers, data={"dead_letter": "x"} if method == "POST" else None)
    assert r.status_code == 401
    assert r.headers["HX-Redirect"] == "/console/sign-in?next=%2Fconsole%2Fdead-letters", r.headers["HX-Redirect"]
    # without HX-Current-URL (a script's fetch): the console's home
    r = await client.request(method, path, headers={"HX-Request": "true"})
    assert r.headers["HX-Redirect"] == "/console/sign-in?next=%2Fconsole"
    # another site's address in HX-Current-URL is not followed
    r = await client.request(method, path, headers={"HX-Request": "true", "HX-Current-URL": "https://evil.example/console"})
    assert r.headers["HX-Redirect"] in ("/console/sign-in?next=%2Fconsole", "/console/sign-in?next=%2Fconsole%2F")
    signed = await client.post("/console/sign-in", data={"token": OPERATOR, "next": "/console/dead-letters"})
    assert signed.headers["location"] == "/console/dead-letters"
    assert (await client.get(signed.headers["location"], headers=HTML)).status_code == 200


async def test_names_that_never_resolve_do_not_starve_the_processs_other_lookups(monkeypatch):
    """A hostile enterprise registers URLs (production) whose name servers never answer. Registration gives
    up after its timeout, but the lookup's thread stays blocked for the resolver's own timeout; on the
    loop's default pool (a handful of threads) that starved every other lookup of the gateway: the
    database's and Kafka's connections by host name. A stand-in resolver that blocks for *.tarpit.test."""
    import asyncio  # noqa: PLC0415
    import socket  # noqa: PLC0415
    import threading  # noqa: PLC0415

    from services.gateway.webhooks import api  # noqa: PLC0415
    from shared.http import Problem  # noqa: PLC0415

    real, released = socket.getaddrinfo, threading.Event()

    def getaddrinfo(host, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if str(host).endswith(".tarpit.test"):
            released.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "timed out")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(api, "RESOLVE_TIMEOUT_SECONDS", 0.3)
    try:
        async def register(i: int) -> int:
            try:
                await api.check_url(f"https://h{i}.tarpit.test/hook", production=True)
            except Problem as problem:
                return problem.status
            return 201

        assert set(await asyncio.gather(*(register(i) for i in range(40)))) == {422}
        # what asyncpg and aiokafka do to connect to "postgres" or "kafka": the loop's own getaddrinfo
        found = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo("localhost", 5432), 3)
        assert found
    finally:
        released.set()


FULL_ID = "110101199003070011"


async def test_a_full_id_number_typed_in_the_buyer_search_stays_out_of_the_address_bar_and_history(client):
    """The page masks what it shows, but the search is a GET form: the full number would stay in the
    address bar, the browser's history (htmx pushes the URL) and bookmarks. The page the search lands on has
    the masked id in its URL instead (the search is by the masked id anyway)."""
    await signed_in(client)
    r = await client.get("/console", params={"by": "buyer", "q": FULL_ID}, headers=HTML)
    assert r.status_code == 303 and FULL_ID not in r.headers["location"]
    assert r.headers["location"] == "/console?by=buyer&q=1101%2A%2A%2A%2A%2A%2A%2A%2A%2A%2A0011"
    landed = await client.get(r.headers["location"], headers=HTML)
    assert landed.status_code == 200 and FULL_ID not in landed.text
    part = await client.get("/console", params={"by": "buyer", "q": FULL_ID},
                            headers={**HTML, "HX-Request": "true", "HX-Target": "results"})
    assert part.status_code == 200 and part.headers["HX-Push-Url"] == r.headers["location"]
    # an order number or platform is not personal data: searched and pushed as typed
    plain = await client.get("/console", params={"by": "order_no", "q": FULL_ID}, headers=HTML)
    assert plain.status_code == 200 and "HX-Push-Url" not in plain.headers


async def test_a_request_span_carries_no_full_id_number_in_its_url():
    """With tracing on, the SERVER span of a request keeps its URL (http.url), query string included: a full
    identity number typed into the console's buyer search (or any query) was exported to the collector."""
    from fastapi import FastAPI  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: PLC0415
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: PLC0415

    from shared import telemetry  # noqa: PLC0415

    exported = InMemorySpanExporter()
    telemetry.configure("hostile-probe", SimpleSpanProcessor(exported))
    app = FastAPI()

    @app.get("/console")
    async def search(q: str = "") -> dict:
        return {"q": len(q)}

    telemetry.instrument_app("hostile-probe", app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as c:
        await c.get("/console", params={"by": "buyer", "q": FULL_ID})
        await c.get("/console", params={"passport": "E12345678"})
    spans = exported.get_finished_spans()
    assert len(spans) == 2
    for span in spans:
        text = repr(dict(span.attributes))
        assert FULL_ID not in text and "E12345678" not in text, text
    assert spans[0].attributes["http.url"] == "http://gateway/console?by=buyer&q=1101**********0011"


async def test_a_hostile_receiver_costs_the_sender_one_bounded_attempt():
    """What a receiver answers cannot make the sender download it, follow it elsewhere or wait past the
    attempt's budget: an endless body (its status is enough), a redirect to the cloud metadata address (not
    followed: a failure, retried), headers dripped a byte at a time (cut at connect + read + 1 s)."""
    import asyncio  # noqa: PLC0415
    from datetime import datetime, timezone  # noqa: PLC0415

    from services.gateway.webhooks import store  # noqa: PLC0415
    from services.gateway.webhooks.sender import Sender  # noqa: PLC0415
    from services.gateway.webhooks.settings import WebhookSettings  # noqa: PLC0415

    sent = {"endless": 0}

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        path = (await reader.readuntil(b"\r\n\r\n")).split(b" ")[1]
        try:
            if path == b"/endless":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n")
                for _ in range(20000):
                    writer.write(b"x" * 65536)
                    await writer.drain()
                    sent["endless"] += 1
            elif path == b"/redirect":
                writer.write(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://169.254.169.254/latest/meta-data"
                             b"\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
            elif path == b"/drip":
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 200:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(0.1)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sender = Sender(None, WebhookSettings(connect_timeout_seconds=0.5, read_timeout_seconds=0.5), production=False,
                    gateway_key="k")
    sealed = rules.seal_secret(rules.secret_box("k"), rules.new_secret())

    async def attempt(path: str) -> store.Outcome:
        return await sender._attempt(store.Claimed(1, "d", "w", f"http://127.0.0.1:{port}/{path}", sealed, "{}", 0,
                                                   datetime.now(timezone.utc), "t"))

    try:
        endless = await attempt("endless")
        assert endless.status_code == 200 and endless.duration_ms < 2000 and sent["endless"] < 1000
        redirect = await attempt("redirect")
        assert redirect.status_code == 307 and not rules.succeeded(redirect.status_code)
        drip = await attempt("drip")
        assert drip.status_code is None and drip.error.startswith("timeout")
        assert drip.duration_ms < (0.5 + 0.5 + 1) * 1000 + 500
    finally:
        await sender.close()
        server.close()
