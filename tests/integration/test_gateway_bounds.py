"""Spec §2 bounds through the gateway's HTTP API (the real app on its own SQLite database, no broker):
every failing example of issue 9 is answered 422 naming its field (or 413), nothing of it is stored or
staged for publication; and a property-based run over orders, payments, waybills, tracking events and
batch bodies shows that whatever numbers and times a client sends, the gateway never answers 5xx, a
refused body leaves no row and no outbox event behind, and an accepted one publishes small events."""
from __future__ import annotations

import asyncio
import copy
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from tooling.contracts import publish

from services.gateway.app import app, service
from services.gateway.tables import orders, payments, trace, tracking_events, waybills
from shared.settings import settings as service_settings
from shared.tables import OUTBOX
from tests.support import close_in_process_gateway, new_uscc, order_body, payment_body, unique, waybill_body

pytestmark = pytest.mark.integration

TABLES = (orders, payments, waybills, tracking_events, trace, OUTBOX)
ROLES = ("platform", "ecommerce", "payment", "logistics")
# An event far larger than any valid document can make is the symptom of issue 9 (a quantity written out
# digit by digit): every event an accepted body stages must stay well under the broker's 1 MB default.
MAX_EVENT_BYTES = 64 * 1024
OPERATOR = service_settings().sw_admin_token


@dataclass
class Gateway:
    runner: asyncio.Runner
    http: httpx.AsyncClient
    codes: dict[str, str]  # role -> enterprise code
    keys: dict[str, str]  # role -> its API key

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def run(self, coroutine):  # noqa: ANN001, ANN201
        return self.runner.run(coroutine)

    def post(self, path: str, body: object, role: str, **kw) -> httpx.Response:  # noqa: ANN003
        if "content" in kw:
            return self.run(self.http.post(path, headers={**self.auth(role), **kw.pop("headers", {})}, **kw))
        return self.run(self.http.post(path, json=body, headers=self.auth(role)))

    def put(self, path: str, body: object, role: str) -> httpx.Response:
        return self.run(self.http.put(path, json=body, headers=self.auth(role)))

    def counts(self) -> dict[str, int]:
        async def count() -> dict[str, int]:
            async with service.sessions() as session:
                return {t.name: await session.scalar(select(func.count()).select_from(t)) for t in TABLES}

        return self.run(count())

    def staged_events(self, since: int) -> list[bytes]:
        async def read() -> list[bytes]:
            async with service.sessions() as session:
                rows = await session.execute(select(OUTBOX).order_by(OUTBOX.c.id).offset(since))
                return [json.dumps(dict(r._mapping), default=str).encode() for r in rows]

        return self.run(read())

    def order(self) -> dict:
        return order_body(self.codes["platform"], self.codes["ecommerce"], unique("ORD"))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[Gateway]:
    # Its own event loop (hypothesis drives plain functions): the database, the group commit writer and
    # the HTTP client all live on it.
    runner = asyncio.Runner()
    codes: dict[str, str] = {}
    keys: dict[str, str] = {}

    async def open_() -> httpx.AsyncClient:
        await service.open_database(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('bounds') / 'gateway.db'}")
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app, raise_app_exceptions=False),
                                   base_url="http://gateway")
        for role in ROLES:  # registered as the operator does, each with its API key
            code = new_uscc()
            r = await client.post("/v1/enterprises", headers={"Authorization": f"Bearer {OPERATOR}"},
                                  json={"code": code, "name": f"Enterprise {code}", "roles": [role]})
            assert r.status_code == 201, r.text
            codes[role], keys[role] = code, r.json()["api_key"]
        return client

    http = runner.run(open_())
    try:
        yield Gateway(runner, http, codes, keys)
    finally:
        runner.run(close_in_process_gateway(http))
        runner.close()


def refused_and_nothing_stored(gw: Gateway, path: str, body: object, role: str, status: int, field: str) -> dict:
    before = gw.counts()
    r = gw.post(path, body, role)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if field:
        assert field in [e["field"] for e in r.json()["errors"]], r.text
    assert gw.counts() == before
    return r.json()


# --- the failing examples of issue 9, each as its own test ---------------------------------------------


def test_an_exponent_quantity_at_a_zero_price_is_422_and_nothing_is_stored(gateway):
    body = gateway.order()
    body["items"] = [{"item_no": "SKU-1", "name": "Face cream", "hs_code": "3304990099", "quantity": "1E+999999",
                      "unit": "piece", "unit_price": "0.00", "origin_country": "FR"}]
    body["actual_paid"] = "87.50"
    refused_and_nothing_stored(gateway, "/v1/orders", body, "platform", 422, "items[0].quantity")


def test_a_decimal_overflow_in_a_quantity_is_422_not_500(gateway):
    for quantity in ("1E+400000", "9" * 40, "1" + "0" * 5000, "1E-999999"):
        body = gateway.order()
        body["items"][0]["quantity"] = quantity
        refused_and_nothing_stored(gateway, "/v1/orders", body, "platform", 422, "items[0].quantity")


def test_a_customs_style_paid_at_is_422_not_a_unix_time(gateway):
    order = gateway.order()
    assert gateway.post("/v1/orders", order, "platform").status_code == 202
    for paid_at in ("20261124100000", 1764000000, "2026-11-24T10:00:00"):
        body = payment_body(gateway.codes["payment"], order)
        body["paid_at"] = paid_at
        refused_and_nothing_stored(gateway, "/v1/payments", body, "payment", 422, "paid_at")


def test_a_tracking_event_time_in_customs_style_is_422(gateway):
    order = gateway.order()
    assert gateway.post("/v1/orders", order, "platform").status_code == 202
    bill = waybill_body(gateway.codes["logistics"], order)
    assert gateway.post("/v1/waybills", bill, "logistics").status_code == 202
    path = f"/v1/waybills/{gateway.codes['logistics']}/{bill['waybill_no']}/events"
    for at in ("20261124100000", 1764000000, "2026-11-24"):
        refused_and_nothing_stored(gateway, path, {"event": "picked_up", "at": at}, "logistics", 422, "at")
    r = gateway.post(path, {"event": "picked_up", "at": "2026-11-24T10:00:00+08:00"}, "logistics")
    assert r.status_code == 202, r.text


def test_statistics_times_are_rfc3339_with_an_offset_too(gateway):
    admin = {"Authorization": f"Bearer {OPERATOR}"}
    for bad in ("20261124100000", "1764000000", "2026-11-24T10:00:00"):
        r = gateway.run(gateway.http.get("/v1/stats", params={"from": bad}, headers=admin))
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "from", r.text
    r = gateway.run(gateway.http.get("/v1/stats", params={"from": "2026-11-24T10:00:00+08:00"}, headers=admin))
    assert r.status_code == 200, r.text


def test_a_quantity_with_five_decimals_is_accepted(gateway):
    body = gateway.order()
    body["items"][0]["quantity"] = "2.00000"
    assert gateway.post("/v1/orders", body, "platform").status_code == 202
    again = copy.deepcopy(body)
    again["items"][0]["quantity"] = 2  # the same order, written differently: the same document
    assert gateway.post("/v1/orders", again, "platform").status_code == 200


def test_a_number_too_long_for_the_json_parser_is_a_malformed_body_not_500(gateway):
    body = json.dumps(gateway.order()).replace('"quantity": 2', '"quantity": ' + "9" * 5000).encode()
    before = gateway.counts()
    r = gateway.post("/v1/orders", None, "platform", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["type"] == "/problems/malformed-json", r.text
    assert gateway.counts() == before


def test_an_order_of_101_lines_is_422(gateway):
    body = gateway.order()
    body["items"] = [{**body["items"][0], "item_no": f"SKU-{i}", "unit_price": "1.00", "quantity": 1}
                     for i in range(101)]
    body["actual_paid"] = f"{Decimal(101) + Decimal('12.00') - Decimal('10.00') + Decimal('85.50'):.2f}"
    refused_and_nothing_stored(gateway, "/v1/orders", body, "platform", 422, "items")


def test_a_chunked_body_over_1_mib_is_413(gateway):
    async def chunks():  # noqa: ANN202 - no Content-Length: the size is only known by reading
        yield b'{"order_no": "'
        for _ in range(11):
            yield b"x" * 100_000
        yield b'"}'

    before = gateway.counts()
    r = gateway.post("/v1/orders", None, "platform", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert gateway.counts() == before


def test_an_unknown_currency_is_422_naming_currency(gateway):
    body = gateway.order()
    body["currency"] = "XYZ"
    problem = refused_and_nothing_stored(gateway, "/v1/orders", body, "platform", 422, "currency")
    assert "CNY" in problem["errors"][0]["message"]  # it says which are accepted
    order = gateway.order()
    assert gateway.post("/v1/orders", order, "platform").status_code == 202
    payment = {**payment_body(gateway.codes["payment"], order), "currency": "XYZ"}
    refused_and_nothing_stored(gateway, "/v1/payments", payment, "payment", 422, "currency")
    before = gateway.counts()
    corrected = {**order, "currency": "XYZ"}  # a correction is held to the same list
    r = gateway.put(f"/v1/orders/{order['platform_code']}/{order['order_no']}", corrected, "platform")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "currency", r.text
    assert gateway.counts() == before


def test_a_payment_made_before_any_rate_is_422_naming_paid_at(gateway):
    order = gateway.order()
    assert gateway.post("/v1/orders", order, "platform").status_code == 202
    payment = {**payment_body(gateway.codes["payment"], order), "paid_at": "2019-01-01T10:00:00+08:00"}
    refused_and_nothing_stored(gateway, "/v1/payments", payment, "payment", 422, "paid_at")


def test_a_batch_answers_each_bad_document_alone(gateway):
    good, bad = gateway.order(), gateway.order()
    bad["items"][0]["quantity"] = "1E+999999"
    before = gateway.counts()
    r = gateway.post("/v1/orders:batch", {"documents": [good, bad]}, "platform")
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [202, 422]
    assert results[1]["body"]["errors"][0]["field"] == "items[0].quantity"
    after = gateway.counts()
    assert after["orders"] == before["orders"] + 1


# --- property: any numbers and times, never a 5xx, nothing stored when refused -------------------------


NASTY = ["1E+999999", "1e3", "NaN", "Infinity", "-0", "-1", "0", "1.00000", "1.000001", "0.00001", "١٢", "９",
         "20261124100000", "2026-11-24T10:00:00", "2026-11-24T10:00:00+08:00", "9999-12-31T23:59:59-23:59",
         "0001-01-01T00:00:00+23:59", "2026-02-30T10:00:00Z", "1" * 5000, "", " 1 ", "1.", ".5"]
VALUES = st.one_of(
    st.sampled_from(NASTY),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.integers(min_value=-(10**4000), max_value=10**4000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.from_regex(r"\A-?\d{0,14}(\.\d{0,8})?([eE][-+]?\d{1,7})?\Z"),
    st.from_regex(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?\Z"),
    st.booleans(), st.none(), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
ORDER_FIELDS = ["items.0.quantity", "items.0.unit_price", "freight", "insurance", "discount", "tax_total",
                "actual_paid", "currency"]
PAYMENT_FIELDS = ["amount", "paid_at", "currency"]
WAYBILL_FIELDS = ["freight", "insured_fee", "gross_weight_kg", "package_count"]


def _set(body: dict, path: str, value: object) -> None:
    *head, last = path.split(".")
    node: object = body
    for part in head:
        node = node[int(part)] if isinstance(node, list) else node[part]  # type: ignore[index]
    node[last] = value  # type: ignore[index]


def _rebalance(body: dict) -> None:
    # Where the mutated numbers still read as decimals, make actual_paid agree, so that bodies also reach
    # acceptance (and their events get measured) rather than all stopping at the sum check.
    try:
        goods = sum(Decimal(str(i["quantity"])) * Decimal(str(i["unit_price"])) for i in body["items"])
        total = goods + sum(Decimal(str(body[f])) * s for f, s in (("freight", 1), ("insurance", 1),
                                                                    ("discount", -1), ("tax_total", 1)))
        if total.is_finite() and abs(total) < Decimal("1e15"):
            body["actual_paid"] = f"{total:.2f}"
    except (InvalidOperation, ValueError, TypeError, KeyError, ArithmeticError):
        pass


OPENAPI = json.loads(publish.OPENAPI_FILE.read_text())


@functools.cache
def _validator(component: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"#/components/schemas/{component}", "components": OPENAPI["components"]})


def published_schema_refuses(component: str, document: object) -> bool:
    """Whether the published OpenAPI document (contracts/schemas/openapi.json) refuses this body: then the
    gateway must refuse it too (it has more checks than the schema can say, never fewer)."""
    return next(_validator(component).iter_errors(document), None) is not None


def _check(gw: Gateway, responses: list[tuple[int, object]], before: dict[str, int],
           component: str | None = None, document: object = None) -> None:
    after = gw.counts()
    accepted = sum(1 for status, _ in responses if status == 202)
    for status, body in responses:
        assert status < 500, (status, body)
    if component is not None and published_schema_refuses(component, document):
        assert all(status >= 400 for status, _ in responses), (document, responses)
    if accepted == 0:
        assert after == before, responses  # nothing stored, nothing staged for publication
    for event in gw.staged_events(before["outbox"]):
        assert len(event) < MAX_EVENT_BYTES, event[:300]


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(field=st.sampled_from(ORDER_FIELDS), value=VALUES, rebalance=st.booleans(), batch=st.booleans())
def test_orders_with_any_numbers_never_get_a_server_error(gateway, field, value, rebalance, batch):
    body = gateway.order()
    _set(body, field, value)
    if rebalance:
        _rebalance(body)
    before = gateway.counts()
    if batch:
        r = gateway.post("/v1/orders:batch", {"documents": [body]}, "platform")
        assert r.status_code == 200, r.text
        responses = [(x["status"], x["body"]) for x in r.json()["results"]]
    else:
        r = gateway.post("/v1/orders", body, "platform")
        responses = [(r.status_code, r.text)]
    _check(gateway, responses, before, "OrderIn", body)


def held_order(gateway: Gateway) -> dict:
    """A new order of its own (an order binds its first payment and waybill: spec §7.2)."""
    order = gateway.order()
    assert gateway.post("/v1/orders", order, "platform").status_code == 202
    return order


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(field=st.sampled_from(PAYMENT_FIELDS), value=VALUES, batch=st.booleans())
def test_payments_with_any_numbers_and_times_never_get_a_server_error(gateway, field, value, batch):
    body = payment_body(gateway.codes["payment"], held_order(gateway))
    _set(body, field, value)
    before = gateway.counts()
    if batch:
        r = gateway.post("/v1/payments:batch", {"documents": [body]}, "payment")
        assert r.status_code == 200, r.text
        responses = [(x["status"], x["body"]) for x in r.json()["results"]]
    else:
        r = gateway.post("/v1/payments", body, "payment")
        responses = [(r.status_code, r.text)]
    _check(gateway, responses, before, "PaymentIn", body)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(field=st.sampled_from(WAYBILL_FIELDS), value=VALUES, batch=st.booleans())
def test_waybills_with_any_numbers_never_get_a_server_error(gateway, field, value, batch):
    body = waybill_body(gateway.codes["logistics"], held_order(gateway))
    _set(body, field, value)
    before = gateway.counts()
    if batch:
        r = gateway.post("/v1/waybills:batch", {"documents": [body]}, "logistics")
        assert r.status_code == 200, r.text
        responses = [(x["status"], x["body"]) for x in r.json()["results"]]
    else:
        r = gateway.post("/v1/waybills", body, "logistics")
        responses = [(r.status_code, r.text)]
    _check(gateway, responses, before, "WaybillIn", body)


@pytest.fixture(scope="module")
def held_waybill(gateway) -> str:
    bill = waybill_body(gateway.codes["logistics"], held_order(gateway))
    assert gateway.post("/v1/waybills", bill, "logistics").status_code == 202
    return f"/v1/waybills/{gateway.codes['logistics']}/{bill['waybill_no']}/events"


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=VALUES)
def test_tracking_events_with_any_times_never_get_a_server_error(gateway, held_waybill, value):
    before = gateway.counts()
    event = {"event": "departed", "at": value, "location": "Hangzhou"}
    r = gateway.post(held_waybill, event, "logistics")
    _check(gateway, [(r.status_code, r.text)], before, "TrackingEventIn", event)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(documents=st.one_of(VALUES, st.lists(VALUES, max_size=3)))
def test_batch_envelopes_of_anything_never_get_a_server_error(gateway, documents):
    before = gateway.counts()
    r = gateway.post("/v1/orders:batch", {"documents": documents}, "platform")
    assert r.status_code in (200, 400, 422), r.text
    responses = [(x["status"], x["body"]) for x in r.json()["results"]] if r.status_code == 200 else [
        (r.status_code, r.text)]
    _check(gateway, responses, before)
