"""The gateway's API description is the published one, and the answers it describes are the ones given.

Each finding of schemathesis against the gateway's own FastAPI description (issue 10, item 6) as a test on the
real app, without a database or broker (the routes answer these before they reach either):
- `/openapi.json` was FastAPI's own document, with bodies described as anything and most errors missing;
- a 405 named in `Allow` only the methods of the first route of the path (`POST`, not `GET, POST`);
- a body sent as `text/plain` was read as a 422 "expected a JSON object", a status for a wrong document;
- `/metrics` was described as JSON.
The full run of every schemathesis check is tests/e2e/test_schemathesis.py.
"""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tooling.contracts import publish
from services.gateway.app import app
from shared.settings import settings

OPERATOR = {"Authorization": f"Bearer {settings().sw_admin_token}"}


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(app)  # not entered: the lifespan (database, broker) is not started


def test_the_gateway_serves_the_published_description_byte_for_byte(client):
    served = client.get("/openapi.json")
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/json"
    assert served.content == publish.OPENAPI_FILE.read_bytes()
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    # the pages that show the description are not in it
    assert {"/openapi.json", "/docs", "/redoc"}.isdisjoint(json.loads(served.content)["paths"])


@pytest.mark.parametrize(("path", "allowed"), [
    ("/v1/enterprises/X1/keys", "GET, POST"),
    ("/v1/orders/P1/O1", "GET, PUT, DELETE"),
    ("/v1/enterprises/X1/platforms", "GET, PUT"),
    ("/v1/orders", "POST"),
    ("/metrics", "GET"),
])
def test_a_method_the_path_lacks_is_405_naming_every_method_it_has(client, path, allowed):
    answer = client.request("PATCH", path, headers=OPERATOR)
    assert answer.status_code == 405
    assert answer.headers["allow"] == allowed
    assert answer.headers["content-type"] == "application/problem+json"
    document = json.loads(publish.OPENAPI_FILE.read_text())
    template = {"/v1/enterprises/X1/keys": "/v1/enterprises/{code}/keys",
                "/v1/orders/P1/O1": "/v1/orders/{platform_code}/{order_no}",
                "/v1/enterprises/X1/platforms": "/v1/enterprises/{code}/platforms"}.get(path, path)
    assert {m.upper() for m in document["paths"][template]} == set(allowed.split(", "))


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_body_not_sent_as_json_is_415(client, content_type):
    body = json.dumps({"code": "91330100MA27U8AA1U", "name": "x", "roles": ["platform"]})
    answer = client.post("/v1/enterprises", content=body, headers={**OPERATOR, "Content-Type": content_type})
    assert answer.status_code == 415, answer.text
    assert answer.json()["type"] == "/problems/unsupported-media-type"
    assert answer.headers["content-type"] == "application/problem+json"


def test_a_json_body_with_a_json_media_type_is_read(client):
    # `application/json` and a `+json` type are JSON: the body is judged, here as a bad document (422)
    for content_type in ("application/json", "application/json; charset=utf-8", "application/merge-patch+json"):
        answer = client.post("/v1/enterprises", content=b"[]", headers={**OPERATOR, "Content-Type": content_type})
        assert answer.status_code == 422, (content_type, answer.text)


def test_metrics_are_described_as_the_text_they_are(client):
    answer = client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    described = json.loads(publish.OPENAPI_FILE.read_text())["paths"]["/metrics"]["get"]["responses"]["200"]
    assert list(described["content"]) == ["text/plain"]


def test_the_statuses_of_a_route_follow_from_what_it_is():
    """A route added later (a webhook endpoint, say) gets its problem responses by being what it is."""
    def op(**parts) -> dict:  # noqa: ANN003
        return {"responses": {"200": {}}, **parts}

    path_param = {"in": "path", "name": "id", "required": True, "schema": {"type": "string"}}
    query_param = {"in": "query", "name": "q", "required": False, "schema": {"type": "string"}}
    secured = {"security": [{"HTTPBearer": []}]}
    body = {"requestBody": {"content": {"application/json": {"schema": {}}}}}
    assert publish.route_class_statuses(("get", "/healthz"), op()) == []
    assert publish.route_class_statuses(("get", "/v1/things"), op(**secured)) == ["401", "403", "429", "503"]
    assert publish.route_class_statuses(("post", "/v1/things"), op(**secured, **body)) == [
        "400", "401", "403", "413", "415", "422", "429", "503"]
    assert publish.route_class_statuses(("get", "/v1/things/{id}"), op(**secured, parameters=[path_param])) == [
        "401", "403", "404", "429", "503"]
    assert publish.route_class_statuses(("get", "/v1/things"), op(**secured, parameters=[query_param])) == [
        "401", "403", "422", "429", "503"]


def test_every_published_operation_documents_its_problems_and_rules():
    document = json.loads(publish.OPENAPI_FILE.read_text())
    for path, item in document["paths"].items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            assert set(publish.route_class_statuses((method, path), operation)) <= statuses, (method, path)
            assert any(s[0] == "2" for s in statuses), (method, path)
            if "requestBody" in operation and operation.get("x-ceb-message"):
                # spec §7.5: customs' XML, which no JSON Schema describes (schemathesis.toml knows the mark)
                assert set(operation["requestBody"]["content"]) == {"application/xml", "text/xml"}, (method, path)
            elif "requestBody" in operation:
                schema = operation["requestBody"]["content"]["application/json"]["schema"]
                assert schema.get("$ref", "").startswith("#/components/schemas/"), (method, path)
            rules = operation.get("x-rules-beyond-schema")
            if rules:
                assert rules["rules"] and all(rule in operation["description"] for rule in rules["rules"])
                assert ("refused-with" in rules) != bool(operation.get("x-batch-results")), (method, path)
