"""The published contracts (contracts/schemas/) are what the code generates, and they are valid.

- the checked-in files equal what `python -m tooling.contracts.publish` generates now;
- every example validates against its Pydantic model and against its published JSON Schema, and the
  examples tell one consistent story (the order, its payment and its waybill agree);
- the AsyncAPI document validates against the official AsyncAPI 3.0.0 JSON Schema (npm @asyncapi/specs),
  and a broken copy does not;
- the OpenAPI document describes every gateway route, its request body and its problem responses;
- a change to a published event schema is appended to the history only when it is compatible.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from jsonschema import Draft7Validator, Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from contracts import examples
from tooling.contracts import publish
from contracts.envelope import Envelope
from contracts.topics import EVENT_TYPES, TOPICS
from contracts.v1 import documents
from contracts.v1.events import Order
from contracts.v2.events import OrderSubmittedV2

from shared.settings import DEV_CUSTOMS_SEALING_PRIVATE_KEY as DEV_CUSTOMS_ID_KEY


@pytest.fixture(scope="module")
def plan() -> publish.Plan:
    return publish.plan()


def generated(plan: publish.Plan, path: Path) -> dict:
    return json.loads(plan.files[path])


def validator(schema: dict) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def errors_of(v: Draft202012Validator, document: object) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in v.iter_errors(document)]


def within(document: dict, pointer: str) -> dict:
    """A schema of `document` by JSON pointer, its local `$ref`s resolving inside `document`."""
    return {"components": document["components"], "$ref": pointer}


# --- (a) no drift ----------------------------------------------------------------------------------


def test_checked_in_files_are_what_the_code_generates(plan):
    assert not plan.problems, "\n".join(plan.problems)
    differences = plan.differences()
    assert not differences, (
        "contracts/schemas is out of date with the models, the catalogue, the handlers or the gateway:\n  "
        + "\n  ".join(differences) + f"\nRun: {publish.FIX}")


def test_the_drift_check_notices_a_changed_example(plan, monkeypatch):
    et = EVENT_TYPES[("tax.assessment", 1)]
    changed = copy.deepcopy(examples.EVENT_EXAMPLES)
    changed[("tax.assessment", 1)][0]["declared_tax_total"] = "85.60"
    monkeypatch.setattr(examples, "EVENT_EXAMPLES", changed)
    again = publish.plan()
    assert f"contracts/schemas/events/{publish.event_id(et)}.json" in again.differences()
    assert not again.revisions, "an example is documentation, not a new revision of the contract"


def test_output_is_canonical_json(plan):
    for path, content in plan.files.items():
        assert content == publish.render(json.loads(content)), path
        assert content.endswith(b"}\n") and b'\n  "' in content


def test_publish_check_exits_0_when_up_to_date():
    result = subprocess.run([sys.executable, "-m", "tooling.contracts.publish", "--check"], capture_output=True, text=True,
                            cwd=publish.REPO)
    assert result.returncode == 0, result.stdout + result.stderr


# --- history: the compatibility gate -----------------------------------------------------------


def test_every_event_type_has_its_first_revision_published():
    for et in EVENT_TYPES.values():
        revisions = publish.published_revisions(et)
        assert revisions, f"no history for {publish.event_id(et)}: run {publish.FIX}"
        assert revisions[0][0].name == "0001.json"


def _patched_schema(monkeypatch, change):
    original = publish.event_schema

    def event_schema(et):
        schema = original(et)
        if (et.name, et.version) == ("customs.decision", 1):
            change(schema)
        return schema

    monkeypatch.setattr(publish, "event_schema", event_schema)


def test_an_incompatible_change_is_refused_and_nothing_is_written(monkeypatch, capsys):
    def drop_status(schema):
        del schema["properties"]["status"]
        schema["required"].remove("status")

    _patched_schema(monkeypatch, drop_status)
    written = []
    monkeypatch.setattr(publish, "write", lambda p: written.append(p) or [])  # never touch the real files here
    assert publish.main([]) == 1
    err = capsys.readouterr().err
    assert "customs.decision.v1: status: field-removed" in err
    assert "a new major version" in err
    assert written == []
    assert publish.main(["--check"]) == 1


def test_an_acknowledged_incompatible_change_is_written_with_its_reason_and_problems(monkeypatch, capsys):
    # Only for a correction the specification made (docs/contracts.md): the revision and, beside it, the
    # reason and the exact problems waived; a reason is required.
    def narrow_reasons(schema):
        schema["properties"]["reasons"]["maxItems"] = 20

    _patched_schema(monkeypatch, narrow_reasons)
    assert publish.plan().problems
    p = publish.plan(acknowledge="spec 9.9: at most 20 reasons")
    assert not p.problems
    latest = publish.published_revisions(EVENT_TYPES[("customs.decision", 1)])[-1][0]
    number = f"{int(latest.stem) + 1:04d}"
    note = json.loads(p.revisions[latest.parent / f"{number}.acknowledged.json"])
    assert note == {"reason": "spec 9.9: at most 20 reasons", "problems": ["reasons: constraint-narrowed"]}
    assert json.loads(p.revisions[latest.parent / f"{number}.json"])["properties"]["reasons"]["maxItems"] == 20
    monkeypatch.setattr(publish, "write", lambda plan: [])  # never touch the real files here
    assert publish.main(["--acknowledge"]) == 2
    assert publish.main(["--acknowledge", "x", "--check"]) == 2


def test_a_compatible_change_becomes_the_next_revision(monkeypatch):
    def add_optional(schema):
        schema["properties"]["inspector_note"] = {"type": "string", "default": ""}

    _patched_schema(monkeypatch, add_optional)
    p = publish.plan()
    assert not p.problems
    latest = publish.published_revisions(EVENT_TYPES[("customs.decision", 1)])[-1][0]
    expected = latest.parent / f"{int(latest.stem) + 1:04d}.json"
    assert list(p.revisions) == [expected]
    assert "inspector_note" in json.loads(p.revisions[expected])["properties"]


# --- (b) examples: valid, and one consistent story ---------------------------------------------


def test_every_event_type_and_version_has_examples():
    missing = sorted(set(EVENT_TYPES) - set(examples.EVENT_EXAMPLES))
    assert not missing, f"no example in contracts/examples.py for {missing}"
    assert not set(examples.EVENT_EXAMPLES) - set(EVENT_TYPES)


def test_every_rest_body_has_examples():
    for model in ("EnterpriseRegistration", "OrderIn", "PaymentIn", "WaybillIn", "TrackingEventIn",
                  "InspectionResultIn"):
        assert examples.REST_EXAMPLES.get(model), model


@pytest.mark.parametrize("event", sorted(EVENT_TYPES), ids=lambda e: f"{e[0]}.v{e[1]}")
def test_event_examples_are_what_producers_serialize(event):
    model = EVENT_TYPES[event].model
    for payload in examples.EVENT_EXAMPLES[event]:
        assert model.model_validate(payload).model_dump(mode="json") == payload


@pytest.mark.parametrize("event", sorted(EVENT_TYPES), ids=lambda e: f"{e[0]}.v{e[1]}")
def test_event_examples_validate_against_the_published_schema(plan, event):
    et = EVENT_TYPES[event]
    schema = generated(plan, publish.EVENTS / f"{publish.event_id(et)}.json")
    assert schema["$schema"] == publish.DIALECT
    assert schema["examples"] == examples.EVENT_EXAMPLES[event]
    assert et.topic in schema["description"] and et.key in schema["description"]
    v = validator(schema)
    for payload in examples.EVENT_EXAMPLES[event]:
        assert not errors_of(v, payload)


def test_the_published_event_schema_can_refuse_a_payload(plan):
    schema = generated(plan, publish.EVENTS / "tax.assessment.v1.json")
    bad = {**examples.EVENT_EXAMPLES[("tax.assessment", 1)][0], "total": 83.48, "status": "paid"}
    del bad["assessed_at"]
    problems = "\n".join(errors_of(validator(schema), bad))
    assert "total" in problems and "status" in problems and "assessed_at" in problems


def test_envelopes_validate_against_the_envelope_schema(plan):
    v = validator(generated(plan, publish.ENVELOPE_FILE))
    for case in examples.EVENT_CASES:
        envelope = examples.envelope_of(case)
        assert Envelope.model_validate(envelope).model_dump(mode="json") == envelope
        assert not errors_of(v, envelope)
    assert errors_of(v, {k: v for k, v in examples.envelope_of(examples.EVENT_CASES[0]).items() if k != "event_id"})


@pytest.mark.parametrize("model", sorted(examples.REST_EXAMPLES))
def test_rest_examples_validate_against_their_model_and_published_schema(plan, model):
    cls = getattr(documents, model)
    openapi = generated(plan, publish.OPENAPI_FILE)
    if model in openapi["components"]["schemas"]:
        schema = {"$schema": publish.DIALECT, **within(openapi, f"#/components/schemas/{model}")}
    else:  # a back-office body (customs' inspection result): not in the gateway's document
        schema = cls.model_json_schema()
    v = validator(schema)
    for body in examples.REST_EXAMPLES[model]:
        cls.model_validate(body)
        assert not errors_of(v, body), body


def test_the_import_order_is_domain_example_1():
    order = documents.OrderIn.model_validate(examples.IMPORT_ORDER_IN)
    assert [(i.hs_code, i.quantity, i.unit_price) for i in order.items] == [("3304990099", 2, Decimal("180.00"))]
    assert (order.freight, order.discount, order.tax_total, order.actual_paid) == (
        Decimal("12.00"), Decimal("10.00"), Decimal("85.50"), Decimal("447.50"))
    assert order.buyer.id_number == "110101199003070011"


def test_the_order_event_is_the_rest_order_as_the_gateway_publishes_it():
    from shared.sealing import unseal

    for rest, event in ((examples.IMPORT_ORDER_IN, examples.IMPORT_ORDER), (examples.EXPORT_ORDER_IN, examples.EXPORT_ORDER)):
        doc = documents.OrderIn.model_validate(rest)
        published = Order.model_validate(event)
        assert published.model_dump(exclude={"buyer"}) == Order(**doc.model_dump(exclude={"buyer"})).model_dump(
            exclude={"buyer"})
        if doc.buyer:
            assert published.buyer.id_number_masked == "1101**********0011"
            assert unseal(published.buyer.id_number_sealed, DEV_CUSTOMS_ID_KEY) == doc.buyer.id_number
            assert doc.buyer.id_number not in json.dumps(event)


def test_the_three_documents_agree():
    from shared.sealing import unseal

    order = documents.OrderIn.model_validate(examples.IMPORT_ORDER_IN)
    payment = documents.PaymentIn.model_validate(examples.PAYMENT_IN)
    waybill = documents.WaybillIn.model_validate(examples.IMPORT_WAYBILL_IN)
    for doc in (payment, waybill):
        assert (doc.platform_code, doc.order_no) == (order.platform_code, order.order_no)
    assert (payment.amount, payment.currency) == (order.actual_paid, order.currency)
    assert (payment.payer.name, payment.payer.id_number) == (order.buyer.name, order.buyer.id_number)
    assert waybill.freight == order.freight
    [payment_event] = examples.EVENT_EXAMPLES[("payment.submitted", 1)]
    assert unseal(payment_event["payment"]["payer"]["id_number_sealed"], DEV_CUSTOMS_ID_KEY) == payment.payer.id_number
    export = documents.OrderIn.model_validate(examples.EXPORT_ORDER_IN)
    export_waybill = documents.WaybillIn.model_validate(examples.EXPORT_WAYBILL_IN)
    assert (export_waybill.order_no, export_waybill.freight) == (export.order_no, export.freight)


def test_every_party_is_registered_with_its_role():
    registered = {b["code"]: set(b["roles"]) for b in examples.REST_EXAMPLES["EnterpriseRegistration"]}
    for body in examples.REST_EXAMPLES["OrderIn"]:
        assert "platform" in registered[body["platform_code"]] and "ecommerce" in registered[body["ecommerce_code"]]
    for body in examples.REST_EXAMPLES["PaymentIn"]:
        assert "payment" in registered[body["payment_code"]]
    for body in examples.REST_EXAMPLES["WaybillIn"]:
        assert "logistics" in registered[body["logistics_code"]]


def test_the_v2_order_carries_the_same_facts_as_v1():
    [v1] = [p for p in examples.EVENT_EXAMPLES[("order.submitted", 1)] if p["order"]["direction"] == "import"]
    [v2] = examples.EVENT_EXAMPLES[("order.submitted", 2)]
    assert OrderSubmittedV2.model_validate(v2).as_v1().model_dump(mode="json") == v1
    assert v2["order"]["items"][0]["brand"] == examples.IMPORT_ORDER_IN["items"][0]["brand"]


def test_tax_and_fx_examples_are_what_the_domain_rules_compute():
    from services.fx.rules import settle
    from services.tax import rules as tax
    from shared.reference import fx_rates, hs_catalogue

    order = Order.model_validate(examples.IMPORT_ORDER)
    [assessed] = [p for p in examples.EVENT_EXAMPLES[("tax.assessment", 1)] if p["status"] == "assessed"]
    a = tax.assess_import(order, "retail", hs_catalogue(), Decimal(1))
    assert [str(x) for x in (a.dutiable_value, a.customs_duty, a.vat, a.consumption_tax, a.total)] == [
        assessed[k] for k in ("dutiable_value", "customs_duty", "vat", "consumption_tax", "total")]
    assert str(a.declared_difference) == assessed["declared_difference"]

    # Imports settle on the payment's day, exports on the order's (both in China time).
    for case, day in (("import_settled", date(2026, 11, 24)), ("export_settled", date(2026, 11, 25))):
        [fx] = [c.payload for c in examples.EVENT_CASES if c.name == case]
        s = settle(Decimal(fx["amount"]), fx["currency"], day, fx_rates())
        assert (str(s.usd_rate), s.rate_date.isoformat(), str(s.amount_usd), f"{s.amount_cny:.2f}") == (
            fx["rate"], fx["rate_date"], fx["amount_usd"], fx["amount_cny"])


def test_correlation_ids_and_keys_follow_the_catalogue():
    for case in examples.EVENT_CASES:
        et = EVENT_TYPES[case.event]
        p = case.payload
        if et.key.startswith("correlation id"):
            order = p.get("order") or p.get("payment") or p.get("waybill") or p
            platform = order["platform"]["code"] if "platform" in order else order["platform_code"]
            assert case.key == case.correlation_id == f"{platform}:{order['order_no']}", case.name
        else:
            code = p.get("code") or p.get("enterprise_code") or p.get("ecommerce_code")
            assert case.key == code, case.name


# --- (c) AsyncAPI 3.0.0 --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def asyncapi_validator() -> Draft7Validator:
    try:
        path = publish.ensure_asyncapi_spec()
    except Exception as err:  # noqa: BLE001 - the message must say how to get the schema
        pytest.fail(f"the official AsyncAPI 3.0.0 JSON Schema is missing and could not be installed: {err}\n"
                    f"Install it with: python -m tooling.contracts.publish --ensure-asyncapi-spec "
                    f"(runs {' '.join(publish.asyncapi_install_command())})")
    spec = json.loads(path.read_text())
    # The bundle keys every definition by its `$id`; register each so that `$ref`s resolve offline.
    registry = Registry().with_resources(
        (uri, Resource.from_contents(schema, default_specification=DRAFT7))
        for uri, schema in spec["definitions"].items())
    registry = registry.with_resource(spec["$id"], Resource.from_contents(spec, default_specification=DRAFT7))
    return Draft7Validator(spec, registry=registry)


def asyncapi_errors(v: Draft7Validator, document: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in v.iter_errors(document)]


def test_asyncapi_document_is_valid_asyncapi_3(plan, asyncapi_validator):
    document = generated(plan, publish.ASYNCAPI_FILE)
    assert document["asyncapi"] == "3.0.0"
    assert not asyncapi_errors(asyncapi_validator, document)


@pytest.mark.parametrize("breakage", ["channel_address_not_a_string", "operation_action_publish",
                                      "operation_without_channel", "server_without_protocol"])
def test_a_broken_asyncapi_document_fails_validation(plan, asyncapi_validator, breakage):
    document = generated(plan, publish.ASYNCAPI_FILE)
    if breakage == "channel_address_not_a_string":
        document["channels"]["sw.order.submitted.v1"]["address"] = 42
    elif breakage == "operation_action_publish":
        document["operations"]["gateway.send.sw.order.submitted.v1"]["action"] = "publish"  # AsyncAPI 2 wording
    elif breakage == "operation_without_channel":
        del document["operations"]["gateway.send.sw.order.submitted.v1"]["channel"]
    else:
        del document["servers"]["local"]["protocol"]
    assert asyncapi_errors(asyncapi_validator, document)


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if isinstance(node.get("$ref"), str) else []) + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _pointer(document: dict, ref: str) -> object:
    node: object = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]  # type: ignore[index]
    return node


def test_asyncapi_references_resolve_and_operations_use_their_channels_messages(plan):
    # What the JSON Schema cannot check: every $ref points somewhere, and (AsyncAPI 3 §operation.messages)
    # an operation's messages are messages of its own channel.
    document = generated(plan, publish.ASYNCAPI_FILE)
    for ref in _refs(document):
        assert ref.startswith("#/"), ref
        _pointer(document, ref)
    for name, op in document["operations"].items():
        channel = op["channel"]["$ref"]
        for message in op["messages"]:
            assert message["$ref"].startswith(channel + "/messages/"), name


def test_asyncapi_describes_every_topic_message_key_header_and_consumer(plan):
    document = generated(plan, publish.ASYNCAPI_FILE)
    channels, operations, messages = document["channels"], document["operations"], document["components"]["messages"]
    for topic in TOPICS:
        assert channels[topic.name]["address"] == topic.name
        assert channels[topic.dead_letter]["address"] == topic.dead_letter
        assert operations[f"{topic.writer}.send.{topic.name}"]["action"] == "send"
        for et in topic.events:
            message = messages[publish.event_id(et)]
            assert message["payload"]["properties"]["payload"] == {
                "$ref": f"#/components/schemas/{publish.event_id(et)}", "description": "the event (see its schema)"}
            assert set(message["headers"]["required"]) == {"type", "version", "source", "correlation_id",
                                                           "traceparent"}
            assert message["bindings"]["kafka"]["key"]["type"] == "string"
            assert et.key in message["bindings"]["kafka"]["key"]["description"]
            assert message["examples"]
        dlq_headers = messages[topic.dead_letter]["headers"]["required"]
        assert "dlq.error" in dlq_headers and "dlq.original_offset" in dlq_headers
    for service, handlers in publish.consumers().items():
        for name, version in handlers.by_type:
            et = EVENT_TYPES[(name, version)]
            op = operations[f"{service}.receive.{et.topic}"]
            assert op["action"] == "receive"
            assert {"$ref": f"#/channels/{et.topic}/messages/{publish.event_id(et)}"} in op["messages"]


def test_asyncapi_message_examples_validate_against_their_message(plan):
    document = generated(plan, publish.ASYNCAPI_FILE)
    for name, message in document["components"]["messages"].items():
        if "examples" not in message:
            continue
        payload = validator({"$schema": publish.DIALECT, "components": document["components"], **message["payload"]})
        headers = validator({"$schema": publish.DIALECT, **message["headers"]})
        for example in message["examples"]:
            assert not errors_of(payload, example["payload"]), (name, example["name"])
            assert not errors_of(headers, example["headers"]), (name, example["name"])


def test_asyncapi_shares_a_nested_model_only_when_it_is_identical():
    schemas = {
        "a.v1": {"type": "object", "properties": {"x": {"$ref": "#/$defs/Money"}, "p": {"$ref": "#/$defs/Party"}},
                 "$defs": {"Money": {"type": "string"}, "Party": {"type": "object",
                                                                  "properties": {"m": {"$ref": "#/$defs/Money"}}}}},
        "b.v1": {"type": "object", "properties": {"x": {"$ref": "#/$defs/Money"}, "p": {"$ref": "#/$defs/Party"}},
                 "$defs": {"Money": {"type": "object"}, "Party": {"type": "object",
                                                                  "properties": {"m": {"$ref": "#/$defs/Money"}}}}},
    }
    hoisted = publish.hoist_definitions(schemas)
    assert hoisted["a.v1"]["properties"]["x"] == {"$ref": "#/components/schemas/a.v1.Money"}
    # Party reads the same but means a different Money in each event: not shared either.
    assert hoisted["a.v1.Party"]["properties"]["m"] == {"$ref": "#/components/schemas/a.v1.Money"}
    assert hoisted["b.v1.Party"]["properties"]["m"] == {"$ref": "#/components/schemas/b.v1.Money"}
    assert "Money" not in hoisted and "Party" not in hoisted


# --- (d) OpenAPI ---------------------------------------------------------------------------------


def test_openapi_has_every_gateway_route(plan):
    from fastapi.routing import APIRoute

    from services.gateway.app import app

    document = generated(plan, publish.OPENAPI_FILE)
    for route in app.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in route.methods - {"HEAD"}:
                assert method.lower() in document["paths"][route.path], (method, route.path)


def test_openapi_has_the_request_bodies_with_examples(plan):
    document = generated(plan, publish.OPENAPI_FILE)
    for (method, path), model in publish.REQUEST_BODIES.items():
        body = document["paths"][path][method]["requestBody"]
        media = body["content"]["application/json"]
        assert body["required"] is True
        assert media["schema"] == {"$ref": f"#/components/schemas/{model.__name__}"}
        assert {name: e["value"] for name, e in media["examples"].items()} == {
            c.name: c.body for c in examples.REST_CASES if c.model == model.__name__}
    order = document["components"]["schemas"]["OrderIn"]
    assert {"order_no", "items", "actual_paid"} <= set(order["required"])


def test_openapi_has_problem_responses_and_bearer_auth(plan):
    document = generated(plan, publish.OPENAPI_FILE)
    problem = document["components"]["schemas"]["ProblemDetails"]
    assert {"type", "title", "status"} <= set(problem["required"])
    field_error = document["components"]["schemas"]["FieldError"]
    assert set(field_error["required"]) == {"field", "code", "message"}
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, op in item.items():
            statuses = set(op["responses"])
            if path.startswith("/v1/"):
                assert {"401", "403"} <= statuses and op["security"] == [{"HTTPBearer": []}], (method, path)
            if "requestBody" in op:
                assert {"400", "413", "422"} <= statuses, (method, path)
            for status, response in op["responses"].items():
                if status == "422" and op.get("x-ceb-message"):
                    # spec §7.5: customs' messages are refused as customs refuses them, with a CEB900 receipt
                    assert list(response["content"]) == ["application/xml"], (method, path)
                elif status[0] == "4":
                    assert response["content"]["application/problem+json"]["schema"] == {
                        "$ref": "#/components/schemas/ProblemDetails"}, (method, path, status)
    assert "409" in document["paths"]["/v1/orders"]["post"]["responses"]
    example = document["paths"]["/v1/orders"]["post"]["responses"]["422"]["content"]["application/problem+json"]
    assert [e["field"] for e in example["example"]["errors"]] == ["freight"]
    v = validator({"$schema": publish.DIALECT, **within(document, "#/components/schemas/ProblemDetails")})
    assert not errors_of(v, example["example"])


def test_importing_the_gateway_app_starts_nothing():
    code = ("import threading, asyncio, services.gateway.app as g; "
            "assert threading.active_count() == 1, threading.enumerate(); "
            "assert g.service.engine is None and g.service.producer is None and g.service.consumer is None")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=publish.REPO)
    assert result.returncode == 0, result.stderr
