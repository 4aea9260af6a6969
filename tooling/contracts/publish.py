"""Publishes the contracts as files that outsiders build against, generated from the code alone.

    python -m tooling.contracts.publish                  # (re)writes contracts/schemas/, appends history revisions
    python -m tooling.contracts.publish --check          # exit 1 listing every file that differs from the code
    python -m tooling.contracts.publish --acknowledge "spec 1.1 §2: …"   # publishes incompatible changes anyway,
                                                 # each revision with NNNN.acknowledged.json (docs/contracts.md)
    python -m tooling.contracts.publish --ensure-asyncapi-spec   # npm-installs the AsyncAPI 3 JSON Schema (tests)

What it writes under `contracts/schemas/`:

- `events/<event type>.v<version>.json`: the JSON Schema (2020-12) of each event payload of the catalogue
  (`contracts.topics.EVENT_TYPES`), with the payloads of `contracts.examples` as `examples`;
- `envelope.v1.json`: the envelope every event travels in (spec §6);
- `asyncapi.json`: an AsyncAPI 3.0.0 document: every topic and its dead-letter topic as a channel, one
  message per event type (envelope + payload, headers, Kafka key), `send` operations for the writer of
  each topic and `receive` operations for every service that registered a handler for it;
- `openapi.json`: the gateway's OpenAPI document with the request bodies, problem responses and bearer
  auth that FastAPI cannot see (the routes read raw JSON so that validation errors name their field);
- `history/<event type>.v<major>/<NNNN>.json`: every published revision of each event schema. A changed
  schema becomes a new revision only if `tooling.contracts.compat.history_problems` finds it FULL-compatible with
  every earlier revision of its major (since the last acknowledged break); otherwise nothing at all is
  written, unless `--acknowledge REASON` is given: then the revision is written with
  `<NNNN>.acknowledged.json` (the reason and the exact problems waived), and later revisions are held to
  it and the ones after it.

Which JSON Schema mode, and why serialization: consumers validate what producers put on the topic, and
producers put `model_dump(mode="json")` there. The serialization schema says exactly that (a `Decimal` is a
string, never a number), where the validation schema would describe what our own lax Pydantic readers
happen to coerce (`number or string`), a wider promise that outside producers would then rely on. Fields
with a default stay optional (Pydantic's default for this mode): our producers always write them, but a
reader must not require them, or adding an optional field within a major would break old events.

REST bodies are the other way round: the OpenAPI document describes what the gateway accepts, so their
schemas are Pydantic's validation mode, as FastAPI itself does for request bodies.

Output is canonical JSON (sorted keys, 2-space indent, UTF-8, trailing newline) so `--check` compares bytes.
"""
from __future__ import annotations

import copy
import importlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from contracts import examples
from tooling.contracts import compat
from contracts.envelope import Envelope
from contracts.topics import EVENT_TYPES, TOPICS, EventType, Topic
from contracts.v1 import documents

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = REPO / "contracts"
SCHEMAS = CONTRACTS / "schemas"
EVENTS = SCHEMAS / "events"
HISTORY = SCHEMAS / "history"
ENVELOPE_FILE = SCHEMAS / "envelope.v1.json"
ASYNCAPI_FILE = SCHEMAS / "asyncapi.json"
OPENAPI_FILE = SCHEMAS / "openapi.json"

DIALECT = "https://json-schema.org/draft/2020-12/schema"
# An identifier, not a promise that the host serves the files: the files are in this repository.
ID_BASE = "https://single-window.example/contracts/schemas/"
LOCAL_BROKER = "127.0.0.1:9092"
GATEWAY_URL = "http://127.0.0.1:8000"
KAFKA_BINDING_VERSION = "0.5.0"
TRACEPARENT_PATTERN = r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
FIX = "python -m tooling.contracts.publish"

# The official AsyncAPI JSON Schemas, from npm, in a folder git ignores (.cache/).
ASYNCAPI_SPECS_PACKAGE = "@asyncapi/specs"
ASYNCAPI_SPECS_VERSION = "6.11.1"
NPM_PREFIX = REPO / ".cache" / "npm"


class PublishError(Exception):
    """The code and the publishing rules disagree (a route or a schema this module cannot describe)."""


# --- canonical JSON ----------------------------------------------------------------------------


def render(document: Any) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


# --- event schemas -----------------------------------------------------------------------------


def event_id(et: EventType) -> str:
    """`order.submitted.v1`: the file name, component name and message name of an event type."""
    return f"{et.name}.v{et.version}"


def topic_of(et: EventType) -> Topic:
    return next(t for t in TOPICS if t.name == et.topic)


def where_it_travels(et: EventType) -> str:
    return (f"Payload of `{et.name}` version {et.version} events on the Kafka topic `{et.topic}`, written by "
            f"{topic_of(et).writer}. Record key: {et.key}. Each event travels as the `payload` of the envelope "
            f"(`envelope.v1.json`) whose `type` is `{et.name}` and `version` is {et.version}.")


def event_schema(et: EventType) -> dict:
    """The published JSON Schema of one event type and version, examples included."""
    schema = et.model.model_json_schema(mode="serialization")
    docstring = schema.get("description")
    schema.update({
        "$schema": DIALECT,
        "$id": f"{ID_BASE}events/{event_id(et)}.json",
        "description": f"{docstring}\n\n{where_it_travels(et)}" if docstring else where_it_travels(et),
        "examples": examples.EVENT_EXAMPLES.get((et.name, et.version), []),
    })
    return schema


def revision_of(schema: dict) -> dict:
    # Examples are documentation: a better example is not a new revision of the contract.
    return {k: v for k, v in schema.items() if k != "examples"}


def envelope_schema() -> dict:
    schema = Envelope.model_json_schema(mode="serialization")
    schema.update({
        "$schema": DIALECT,
        "$id": f"{ID_BASE}envelope.v1.json",
        # The defaults (a fresh event_id, now) are the producer's convenience; every event carries every field.
        "required": list(schema["properties"]),
        "description": "The envelope every event travels in (spec §6). `type` and `version` name the payload's "
                       "schema (`events/<type>.v<version>.json`); the Kafka record key is the correlation id "
                       "(`{platform_code}:{order_no}`), or the enterprise code for enterprise events. Readers "
                       "ignore envelope fields they do not know.",
        "examples": [examples.envelope_of(examples.EVENT_CASES[0])],
    })
    return schema


# --- AsyncAPI 3.0.0 ------------------------------------------------------------------------------


def consumers() -> dict[str, Any]:
    """Every service's `handlers` (services/<svc>/handlers.py), by service name: who consumes what. The
    services are the registry's (shared/registry.py), and the gateway's generic projector registers itself
    for every `AgencyOrderStatus` event of the catalogue when its handlers are imported, so a new agency's
    topic and the gateway's subscription to it are in the document after one run."""
    from shared.registry import SERVICES  # noqa: PLC0415

    found = {}
    for service in sorted(SERVICES, key=lambda s: s.name):
        if (REPO / "services" / service.name / "handlers.py").exists():
            found[service.name] = importlib.import_module(f"services.{service.name}.handlers").handlers
    return found


def _component_ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _structural_keys(schemas: dict[str, dict]) -> dict[tuple[str, str], str]:
    """A key per (event id, def name) that is equal exactly when the two definitions are the same all the
    way down (the definitions they refer to included), so only truly identical ones are shared."""
    keys: dict[tuple[str, str], str] = {}

    def key(owner: str, name: str, visiting: frozenset) -> str:
        if (owner, name) in keys:
            return keys[(owner, name)]
        if (owner, name) in visiting:  # a recursive model: compare it by name from here on
            return f"recursive:{name}"
        visiting = visiting | {(owner, name)}

        def expand(node: Any) -> Any:
            if isinstance(node, dict):
                ref = node.get("$ref", "")
                if ref.startswith("#/$defs/"):
                    return {**{k: expand(v) for k, v in node.items() if k != "$ref"},
                            "$ref": key(owner, ref[len("#/$defs/"):], visiting)}
                return {k: expand(v) for k, v in node.items()}
            if isinstance(node, list):
                return [expand(v) for v in node]
            return node

        keys[(owner, name)] = json.dumps(expand(schemas[owner]["$defs"][name]), sort_keys=True)
        return keys[(owner, name)]

    for owner, schema in schemas.items():
        for name in schema.get("$defs", {}):
            key(owner, name, frozenset())
    return keys


def hoist_definitions(schemas: dict[str, dict]) -> dict[str, dict]:
    """`components.schemas` for the AsyncAPI document: each event schema once (by event id) and the models
    they nest, under their model name when every event has the same one, else `<event id>.<model>`.

    AsyncAPI schemas are JSON Schema draft 07, where `#/$defs/...` inside a component would point at the
    document's root; every such reference becomes `#/components/schemas/...`."""
    keys = _structural_keys(schemas)
    variants: dict[str, set[str]] = {}
    for (owner, name), k in keys.items():
        variants.setdefault(name, set()).add(k)
    names = {(owner, name): name if len(variants[name]) == 1 else f"{owner}.{name}" for owner, name in keys}
    clash = set(names.values()) & set(schemas)
    if clash:
        raise PublishError(f"model names {sorted(clash)} clash with event ids in components.schemas")

    def rewrite(owner: str, node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                node = {**node, "$ref": _component_ref(names[(owner, ref[len('#/$defs/'):])])["$ref"]}
            return {k: rewrite(owner, v) for k, v in node.items()}
        if isinstance(node, list):
            return [rewrite(owner, v) for v in node]
        return node

    components: dict[str, dict] = {}
    for owner, schema in schemas.items():
        for name, definition in schema.get("$defs", {}).items():
            components[names[(owner, name)]] = rewrite(owner, definition)
        root = {k: v for k, v in schema.items() if k not in ("$defs", "$schema", "$id")}
        components[owner] = rewrite(owner, root)
    return components


def message_headers(et: EventType, writer: str) -> dict:
    return {
        "type": "object",
        "description": "Kafka record headers (UTF-8 strings), written by the outbox relay with every event.",
        "required": ["type", "version", "source", "correlation_id", "traceparent"],
        "properties": {
            "type": {"type": "string", "const": et.name, "description": "the envelope's `type`"},
            "version": {"type": "string", "const": str(et.version),
                        "description": "the envelope's `version`, as a decimal string"},
            "source": {"type": "string", "description": "the service that wrote the event", "examples": [writer]},
            "correlation_id": {"type": "string", "description": "the envelope's `correlation_id`"},
            "traceparent": {"type": "string", "pattern": TRACEPARENT_PATTERN,
                            "description": "W3C trace context: the span of the request or event that caused this one"},
            "sw.replay-of": {"type": "string", "description": "on a replayed dead letter only (`python -m "
                             "shared.deadletters replay`): the dead letter's id, `<dlq topic>:<partition>:<offset>`; "
                             "the record is a copy of an event already published, same event_id"},
            "sw.replay-for": {"type": "string", "description": "on a replayed dead letter only: the service that "
                              "dead-lettered it and is to handle it; every other reader ignores the record"},
            "sw.replayed-at": {"type": "string", "format": "date-time", "description": "on a replayed dead letter only"},
        },
    }


def message_payload(et: EventType, envelope: dict) -> dict:
    """The envelope whose `payload` is the event's schema (and `type`/`version` are fixed)."""
    properties = copy.deepcopy(envelope["properties"])
    properties["type"] = {**properties["type"], "const": et.name}
    properties["version"] = {**properties["version"], "const": et.version}
    properties["payload"] = {**_component_ref(event_id(et)), "description": "the event (see its schema)"}
    return {
        "type": "object",
        "title": f"{event_id(et)} envelope",
        "description": f"The envelope of spec §6 carrying a `{et.name}` version {et.version} payload.",
        "required": envelope["required"],
        "properties": properties,
    }


def kafka_key(et: EventType) -> dict:
    example = next((c.key for c in examples.EVENT_CASES if c.event == (et.name, et.version)), None)
    return {"type": "string", "description": f"The record key: {et.key}. One key's events stay in one partition, "
                                            f"in order.", **({"examples": [example]} if example else {})}


def event_message(et: EventType, envelope: dict) -> dict:
    writer = topic_of(et).writer
    cases = [c for c in examples.EVENT_CASES if c.event == (et.name, et.version)]
    return {
        "name": event_id(et),
        "title": f"{et.name}, version {et.version}",
        "summary": et.model.__doc__.strip().splitlines()[0] if et.model.__doc__ else f"{et.name} from {writer}",
        "description": where_it_travels(et),
        "contentType": "application/json",
        "correlationId": {"location": "$message.header#/correlation_id",
                          "description": "the envelope's correlation id: the order key, or the enterprise code"},
        "headers": message_headers(et, writer),
        "payload": message_payload(et, envelope),
        "bindings": {"kafka": {"key": kafka_key(et), "bindingVersion": KAFKA_BINDING_VERSION}},
        "examples": [{"name": c.name, "summary": c.summary, "headers": examples.headers_of(c),
                      "payload": examples.envelope_of(c)} for c in cases],
    }


def dead_letter_message(topic: Topic) -> dict:
    # What shared/outbox.py::dead_letter_row writes: the record untouched, what went wrong in headers.
    return {
        "name": f"{topic.name}.dead_letter",
        "title": f"dead letter of {topic.name}",
        "summary": "A record of the topic that a consumer could not process, untouched.",
        "description": "Written by the consumer that gave up on the record (not an envelope, a payload that does not "
                       "match its contract, or a handler that kept failing), in the same transaction as its offset "
                       "moves on. Key and value are the original record's (the value may not even be JSON); the "
                       "original headers are kept, and the `dlq.*` headers say what went wrong and where.",
        "headers": {
            "type": "object",
            "required": ["dlq.error", "dlq.source", "dlq.original_topic", "dlq.original_partition",
                         "dlq.original_offset"],
            "properties": {
                "dlq.error": {"type": "string", "maxLength": 2000, "description": "why the record was given up"},
                "dlq.source": {"type": "string", "description": "the service that dead-lettered it"},
                "dlq.original_topic": {"type": "string", "const": topic.name},
                "dlq.original_partition": {"type": "string", "pattern": r"^\d+$"},
                "dlq.original_offset": {"type": "string", "pattern": r"^\d+$"},
                "dlq.original_key": {"type": "string", "description": "the original key, when it is longer than "
                                     "the 200 characters the dead letter's own key keeps"},
                "type": {"type": "string", "description": "the original header, when the record had one"},
                "version": {"type": "string", "description": "the original header, when the record had one"},
                "source": {"type": "string", "description": "the original header, when the record had one"},
                "correlation_id": {"type": "string", "description": "the original header, when the record had one"},
                "traceparent": {"type": "string", "description": "the original header, when the record had one"},
            },
        },
        "payload": {"description": "the original record's value, byte for byte"},
        "bindings": {"kafka": {"key": {"type": "string", "description": "the original record's key (empty if none)"},
                               "bindingVersion": KAFKA_BINDING_VERSION}},
    }


def _message_ref(channel: str, message: str) -> dict:
    return {"$ref": f"#/channels/{channel}/messages/{message}"}


def asyncapi_document(event_schemas: dict[str, dict], envelope: dict) -> dict:
    handlers_by_service = consumers()
    channels: dict[str, dict] = {}
    operations: dict[str, dict] = {}
    messages: dict[str, dict] = {}
    for topic in TOPICS:
        dlq = topic.dead_letter
        for et in topic.events:
            messages[event_id(et)] = event_message(et, envelope)
        messages[f"{dlq}"] = dead_letter_message(topic)
        channels[topic.name] = {
            "address": topic.name,
            "title": topic.name,
            "summary": f"{topic.carries}; written by {topic.writer}",
            "servers": [{"$ref": "#/servers/local"}],
            "messages": {event_id(et): {"$ref": f"#/components/messages/{event_id(et)}"} for et in topic.events},
        }
        channels[dlq] = {
            "address": dlq,
            "title": dlq,
            "summary": f"records of {topic.name} that a consumer could not process",
            "servers": [{"$ref": "#/servers/local"}],
            "messages": {"dead_letter": {"$ref": f"#/components/messages/{dlq}"}},
        }
        operations[f"{topic.writer}.send.{topic.name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{topic.name}"},
            "title": f"{topic.writer} publishes {topic.carries}",
            "tags": [{"name": topic.writer}],
            "messages": [_message_ref(topic.name, event_id(et)) for et in topic.events],
        }
        for service, handlers in handlers_by_service.items():
            handled = [et for et in topic.events if (et.name, et.version) in handlers.by_type]
            if not handled:
                continue
            names = ", ".join(event_id(et) for et in handled)
            operations[f"{service}.receive.{topic.name}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{topic.name}"},
                "title": f"{service} consumes {names}",
                "description": f"Consumer group `{service}`. Other event types on the topic are skipped; a record "
                               f"it cannot process goes to `{dlq}`.",
                "tags": [{"name": service}],
                "messages": [_message_ref(topic.name, event_id(et)) for et in handled],
            }
            operations[f"{service}.dead_letter.{topic.name}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{dlq}"},
                "title": f"{service} dead-letters records of {topic.name} it cannot process",
                "tags": [{"name": service}],
                "messages": [_message_ref(dlq, "dead_letter")],
            }
    schemas = hoist_definitions(event_schemas)
    schemas["envelope.v1"] = {k: v for k, v in envelope.items() if k not in ("$schema", "$id")}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Single window events",
            "version": "1",
            "description": "The Kafka topics of the single window for cross-border e-commerce (spec §6). Every "
                           "event travels in one JSON envelope (`components.schemas[\"envelope.v1\"]`), keyed by "
                           "its correlation id, with headers `type`, `version`, `source`, `correlation_id` and "
                           "`traceparent`. A topic's name ends in its major version: a change a reader of the "
                           "previous schema could not read goes to a new `.v<N+1>` topic, never into this one. "
                           "Every topic has a dead-letter topic `<topic>.dlq`. Generated by "
                           "`python -m tooling.contracts.publish` from contracts/topics.py, the payload models and the "
                           "services' handler registrations.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": LOCAL_BROKER,
                "protocol": "kafka",
                "description": "the broker `make up` starts (KRaft); set KAFKA_BOOTSTRAP_SERVERS to use another",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


# --- OpenAPI (the gateway) ---------------------------------------------------------------------

# Routes that read their body as raw JSON (`JsonBody`), and the model the body must be.
REQUEST_BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("post", "/v1/enterprises"): documents.EnterpriseRegistration,
    ("post", "/v1/orders"): documents.OrderIn,
    ("put", "/v1/orders/{platform_code}/{order_no}"): documents.OrderIn,
    ("post", "/v1/payments"): documents.PaymentIn,
    ("post", "/v1/waybills"): documents.WaybillIn,
    ("post", "/v1/waybills/{logistics_code}/{waybill_no}/events"): documents.TrackingEventIn,
    ("post", "/v1/orders:batch"): documents.OrderBatchIn,
    ("post", "/v1/payments:batch"): documents.PaymentBatchIn,
    ("post", "/v1/waybills:batch"): documents.WaybillBatchIn,
    ("put", "/v1/enterprises/{code}/platforms"): documents.PlatformList,
    ("post", "/v1/webhooks"): documents.WebhookIn,
}
# Batch twins (spec §7.1): their body may be 8 MiB, and a refused document is a result, not the answer.
BATCHES = {key for key in REQUEST_BODIES if key[1].endswith(":batch")}
# Routes whose body is not JSON and describes itself (`openapi_extra`): customs' CEB XML (spec §7.5, 8 MiB).
RAW_BODIES = {("post", "/ceb/v1/messages")}
class FieldError(BaseModel):
    field: str = Field(description="the field's path in the body, e.g. `items[0].hs_code`; `(body)` for the whole")
    code: str = Field(description="a machine-readable code, e.g. `sum_mismatch`, `not_registered`, `string_type`")
    message: str


class ProblemDetails(BaseModel):
    """An error (RFC 9457, spec §2), as `application/problem+json`."""

    type: str = Field(description="a URI reference naming the kind of problem, e.g. `/problems/validation-failed`")
    title: str
    status: int
    detail: str = ""
    instance: str | None = Field(default=None, description="the request path")
    errors: list[FieldError] | None = Field(default=None, description="for validation failures: every problem found")


PROBLEMS = {
    "400": "Malformed JSON: the body is not JSON",
    "401": "Unauthorized: no bearer token, or an unknown one",
    "403": "Forbidden: the caller lacks the role, or asks about another enterprise's data",
    "404": "Not found",
    "409": "Conflict",
    "413": "Payload too large: the body is over 1 MiB",
    "413-batch": "Payload too large: the body is over 8 MiB",
    "415": "Unsupported media type: the body is not sent as `application/json`",
    "422": "Validation failed: `errors` names every field",
    "429": ("Too many requests: over the API key's rate (SW_RATE_LIMIT_PER_SECOND, default 200 a second over a "
            "moving window; a batch counts one per document); `Retry-After` says how many seconds to wait"),
    "503": ("Service unavailable: the database or the broker could not be reached; nothing of the request was "
            "stored, and sending it again is safe (`Retry-After`)"),
}


def route_class_statuses(key: tuple[str, str], op: dict) -> list[str]:
    """Which error statuses an operation answers, by what kind of route it is: the one table every route
    (a new one included) gets its problem responses from, so none has to list them.

    - every operation of the gateway's API (`/v1/...`): 503 on an outage (shared/http.py answers it to any
      request that meets an unreachable database);
    - authenticated (a bearer `security` requirement, from the route's caller dependency): 401 (no or unknown
      key), 403 (wrong role or another's data), 429 (the key's rate, services/gateway/auth.py);
    - with a JSON body: 400 (not JSON), 413 (over 1 MiB; 8 MiB for a batch), 415 (not sent as JSON), 422;
    - with path parameters (a document or an enterprise named in the path): 404;
    - with query parameters: 422 (FastAPI's own validation, answered as problem details).
    A route declares in services/gateway/app.py (`responses=`) what only it answers: its 409s, what its 404
    means, a second success status."""
    _, path = key
    statuses: list[str] = []
    params = op.get("parameters", [])
    if "security" in op:
        statuses += ["401", "403", "429"]
    if "requestBody" in op:
        statuses += ["400", "413", "415", "422"]
    if any(p["in"] == "path" for p in params):
        statuses.append("404")
    if any(p["in"] == "query" for p in params):
        statuses.append("422")
    if path.startswith("/v1/"):
        statuses.append("503")
    return sorted(set(statuses))


def _problem_response(status: str, detail: str | None = None, example: dict | None = None) -> dict:
    media: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
    if example is not None:
        media["example"] = example
    description = PROBLEMS.get(status) or PROBLEMS[status.split("-")[0]]
    return {"description": f"{description}: {detail}" if detail else description,
            "content": {"application/problem+json": media}}


def _declared_detail(response: dict | None) -> str | None:
    """What a route said its own error status means (`responses={409: {"description": ...}}` in
    services/gateway/app.py), or None when it left the status to the route-class table."""
    if not response:
        return None
    description = response.get("description", "")
    return None if description in ("", "Successful Response", "Validation Error") else description


def _validation_example() -> dict:
    # What the gateway answers for a body whose money is a JSON number and whose sum does not add up:
    # produced by the same code (shared.http), so the example cannot drift from the behaviour.
    from pydantic import ValidationError  # noqa: PLC0415

    from shared.http import problem_from_validation  # noqa: PLC0415

    body = {**examples.IMPORT_ORDER_IN, "freight": 12.0}
    try:
        documents.OrderIn.model_validate(body)
    except ValidationError as err:
        problem = problem_from_validation(err)
    else:  # pragma: no cover - the example body is invalid by construction
        raise PublishError("the 422 example body validated")
    return {"type": problem.type, "title": problem.title, "status": problem.status, "detail": problem.detail,
            "instance": "/v1/orders", "errors": problem.errors}


def _rest_schemas() -> dict[str, dict]:
    models = sorted({m for m in REQUEST_BODIES.values()}, key=lambda m: m.__name__)
    _, defs = models_json_schema([(m, "validation") for m in models] + [(ProblemDetails, "serialization")],
                                 ref_template="#/components/schemas/{model}")
    return defs["$defs"]


def _uses(node: Any, ref: str) -> bool:
    if isinstance(node, dict):
        return node.get("$ref") == ref or any(_uses(v, ref) for v in node.values())
    if isinstance(node, list):
        return any(_uses(v, ref) for v in node)
    return False


def _own_content(response: dict | None) -> bool:
    """Whether a route declared a body of its own for a status (a schema), rather than problem details."""
    media = (response or {}).get("content", {})
    return any(m.get("schema") not in (None, {}) for m in media.values())


def openapi_document() -> dict:
    """The gateway's OpenAPI document, as published and as the gateway serves it (`GET /openapi.json`):
    FastAPI's description of the routes, with the request bodies' real schemas (REQUEST_BODIES), every
    error status an operation can answer as `application/problem+json` (`route_class_statuses`, and what
    each route declares of its own), and the rules beyond the schema (`x-rules-beyond-schema`, declared by
    the route) in its description and its 422's."""
    from services.gateway.app import app  # noqa: PLC0415 - builds the FastAPI object only; starts nothing

    # FastAPI's description of the routes (the gateway itself serves the published document instead).
    doc = copy.deepcopy(app.openapi())
    operations = {(method, path): op for path, item in doc["paths"].items() for method, op in item.items()}
    unknown = sorted(set(REQUEST_BODIES) - set(operations))
    if unknown:
        raise PublishError(f"REQUEST_BODIES in tooling/contracts/publish.py names routes the gateway does not have: {unknown}")
    untyped = sorted(k for k, op in operations.items()
                     if "requestBody" in op and k not in REQUEST_BODIES and k not in RAW_BODIES)
    if untyped:
        raise PublishError(f"gateway routes with a body that REQUEST_BODIES (tooling/contracts/publish.py) does not "
                           f"describe: {untyped}")

    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(_rest_schemas())
    cases_by_model: dict[str, list[examples.RestExample]] = {}
    for case in examples.REST_CASES:
        cases_by_model.setdefault(case.model, []).append(case)
    validation_example = _validation_example()

    for key, op in sorted(operations.items()):
        method, path = key
        if path.startswith("/v1/") and "security" not in op:
            raise PublishError(f"{method.upper()} {path} has no bearer authentication")
        responses = op.setdefault("responses", {})
        if key in REQUEST_BODIES:
            model = REQUEST_BODIES[key].__name__
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": _component_ref(model),
                "examples": {c.name: {"summary": c.summary, "value": c.body} for c in cases_by_model.get(model, [])},
            }}}
        rules = op.get("x-rules-beyond-schema", {}).get("rules", [])
        # FastAPI's own 422 ("Validation Error", on any operation with parameters) is not a declaration.
        declared = {status for status, r in responses.items() if status[0] in "45" and _declared_detail(r)}
        for status in sorted(set(route_class_statuses(key, op)) | declared):
            detail = _declared_detail(responses.get(status))
            if detail and _own_content(responses.get(status)):
                continue  # a route that answers this status with its own body (e.g. /healthz's 503) said so
            if status == "413" and (key in BATCHES or key in RAW_BODIES):
                responses[status] = _problem_response("413-batch", detail)
            elif key in RAW_BODIES and status in ("400", "415") and detail:
                # Not JSON: the route's own words replace the JSON-body wording of the table.
                responses[status] = {"description": detail,
                                     "content": {"application/problem+json": {
                                         "schema": {"$ref": "#/components/schemas/ProblemDetails"}}}}
            elif status == "422" and key in BATCHES:
                responses[status] = _problem_response(
                    "422", "the body is not `{\"documents\": [1-500 documents]}` (a document's own problems are "
                           "its result's, in the 200 answer)")
            elif status == "422" and rules:
                example = validation_example if key == ("post", "/v1/orders") else None
                responses[status] = _problem_response(
                    "422", "also when the body is valid against its schema but breaks one of the operation's "
                           "`x-rules-beyond-schema`", example=example)
            else:
                responses[status] = _problem_response(status, detail)
        for status in [s for s in responses if s[0] in "45" and s not in declared
                       and s not in route_class_statuses(key, op)]:
            del responses[status]
        if rules:
            outcome = ("a schema-valid document that breaks one gets a 422 result naming the field"
                       if key in BATCHES else "a schema-valid body that breaks one is refused with 422 naming the field")
            op["description"] = (op.get("description", "").rstrip()
                                 + f"\n\nRules beyond the body's schema ({outcome}):\n"
                                 + "\n".join(f"- {rule}" for rule in rules)).lstrip()
        op["responses"] = dict(sorted(responses.items()))

    # FastAPI's own 422 body is never sent (shared/http.py answers with problem details): drop it once unused.
    for name in ("HTTPValidationError", "ValidationError"):
        others = {**doc, "components": {**doc["components"], "schemas": {n: s for n, s in schemas.items() if n != name}}}
        if name in schemas and not _uses(others, f"#/components/schemas/{name}"):
            del schemas[name]
    doc["components"]["securitySchemes"] = {name: {
        **scheme, "description": "`Authorization: Bearer <api key>`: an enterprise's key (shown once, at "
                                 "registration) or the operator token SW_ADMIN_TOKEN"}
        for name, scheme in doc["components"].get("securitySchemes", {}).items()}
    doc["servers"] = [{"url": GATEWAY_URL, "description": "the gateway `make up` starts (SW_GATEWAY_URL)"}]
    doc["info"]["description"] = (
        "The single window's public interface (spec v1): one submission per document, shared with every "
        "agency. Errors are RFC 9457 problem details (`application/problem+json`). Generated by `python -m "
        "tooling.contracts.publish` from the gateway's routes and the REST models; the gateway serves this very document "
        "at `/openapi.json` and renders it at `/docs`.")
    return doc


# --- the plan: what the files must be ------------------------------------------------------------


@dataclass
class Plan:
    files: dict[Path, bytes] = field(default_factory=dict)  # every generated file and its exact content
    stale: list[Path] = field(default_factory=list)  # generated once, generated by nothing now
    revisions: dict[Path, bytes] = field(default_factory=dict)  # history revisions to append
    problems: list[str] = field(default_factory=list)  # incompatible changes: nothing may be written

    def differences(self) -> list[str]:
        changed = [relative(p) for p, content in self.files.items() if not p.exists() or p.read_bytes() != content]
        return (sorted(changed) + [f"{relative(p)} (no longer generated)" for p in self.stale]
                + [f"{relative(p)} (new history revision)" for p in self.revisions])


def history_dir(et: EventType) -> Path:
    return HISTORY / f"{et.name}.v{et.version}"


def published_revisions(et: EventType) -> list[tuple[Path, dict]]:
    """The published revisions of an event's major, oldest first."""
    folder = history_dir(et)
    files = sorted(folder.glob("[0-9][0-9][0-9][0-9].json")) if folder.is_dir() else []
    return [(f, json.loads(f.read_text())) for f in files]


def acknowledgement_of(revision: Path) -> dict | None:
    """The acknowledgement published beside a revision that broke compatibility on purpose
    (`NNNN.acknowledged.json`: `reason`, and the exact `problems` it waived), or None."""
    note = revision.with_name(f"{revision.stem}.acknowledged.json")
    return json.loads(note.read_text()) if note.exists() else None


def binding_revisions(revisions: list[tuple[Path, dict]]) -> list[tuple[Path, dict]]:
    """The revisions a new one must be FULL-compatible with: all of them, or, after an acknowledged break,
    that revision and the ones after it (the break was published once, with its reason, and is not
    re-litigated by every later change)."""
    start = max((i for i, (path, _) in enumerate(revisions) if acknowledgement_of(path)), default=0)
    return revisions[start:]


def problem_lines(et: EventType, problems: list[compat.Problem]) -> list[str]:
    return [f"{event_id(et)}: {p.field}: {p.rule}: {p.message}" for p in problems]


def plan_history(et: EventType, schema: dict, plan: Plan, acknowledge: str | None = None) -> None:
    current = revision_of(schema)
    published = published_revisions(et)
    if published and published[-1][1] == current:
        return
    number = int(published[-1][0].stem) + 1 if published else 1
    path = history_dir(et) / f"{number:04d}.json"
    if published:
        problems = compat.history_problems([revision for _, revision in binding_revisions(published)], current)
        if problems and not acknowledge:
            plan.problems += problem_lines(et, problems)
            return
        if problems:
            plan.revisions[path.with_name(f"{number:04d}.acknowledged.json")] = render(
                {"reason": acknowledge, "problems": sorted(f"{p.field}: {p.rule}" for p in problems)})
    plan.revisions[path] = render(current)


def plan(acknowledge: str | None = None) -> Plan:
    """What the files must be. `acknowledge`: the reason for publishing incompatible changes anyway (a
    correction the specification itself made); each is written with an acknowledgement naming its problems."""
    p = Plan()
    schemas = {event_id(et): event_schema(et) for et in EVENT_TYPES.values()}
    for et in EVENT_TYPES.values():
        p.files[EVENTS / f"{event_id(et)}.json"] = render(schemas[event_id(et)])
        plan_history(et, schemas[event_id(et)], p, acknowledge)
    envelope = envelope_schema()
    p.files[ENVELOPE_FILE] = render(envelope)
    p.files[ASYNCAPI_FILE] = render(asyncapi_document(schemas, envelope))
    p.files[OPENAPI_FILE] = render(openapi_document())
    p.stale = sorted(f for f in EVENTS.glob("*.json") if f not in p.files) if EVENTS.is_dir() else []
    return p


def write(p: Plan) -> list[str]:
    changed = p.differences()
    for path, content in {**p.files, **p.revisions}.items():
        if not path.exists() or path.read_bytes() != content:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    for path in p.stale:
        path.unlink()
    return changed


# --- the AsyncAPI JSON Schema from npm (for the tests) ----------------------------------------


def asyncapi_spec_dir() -> Path:
    return NPM_PREFIX / "node_modules" / ASYNCAPI_SPECS_PACKAGE


def asyncapi_install_command() -> list[str]:
    return ["npm", "install", "--prefix", str(NPM_PREFIX), "--no-save", "--no-package-lock", "--no-audit",
            "--no-fund", f"{ASYNCAPI_SPECS_PACKAGE}@{ASYNCAPI_SPECS_VERSION}"]


def _installed_specs_version() -> str | None:
    package = asyncapi_spec_dir() / "package.json"
    return json.loads(package.read_text()).get("version") if package.exists() else None


def ensure_asyncapi_spec() -> Path:
    """The official AsyncAPI 3.0.0 JSON Schema (bundled, `$id`-keyed definitions), npm-installing the
    pinned `@asyncapi/specs` into .cache/npm when it is missing or another version."""
    schema = asyncapi_spec_dir() / "schemas" / "3.0.0.json"
    if _installed_specs_version() == ASYNCAPI_SPECS_VERSION and schema.exists():
        return schema
    command = asyncapi_install_command()
    if shutil.which("npm") is None:
        raise RuntimeError(f"npm is not installed; install Node.js/npm, then run: {' '.join(command)}")
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0 or not schema.exists():
        raise RuntimeError(f"could not install {ASYNCAPI_SPECS_PACKAGE}@{ASYNCAPI_SPECS_VERSION} "
                           f"(run it by hand: {' '.join(command)}):\n{result.stdout}\n{result.stderr}")
    return schema


# --- command line --------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    if "--ensure-asyncapi-spec" in argv:
        print(relative(ensure_asyncapi_spec()))
        return 0
    acknowledge = None
    if "--acknowledge" in argv:
        i = argv.index("--acknowledge")
        acknowledge = argv[i + 1] if i + 1 < len(argv) and argv[i + 1].strip() else None
        if acknowledge is None or "--check" in argv:
            print("--acknowledge needs a reason (and cannot go with --check)", file=sys.stderr)
            return 2
    p = plan(acknowledge)
    if p.problems:
        print("Incompatible change(s) to published event schemas; nothing was written.\n"
              "A breaking change needs a new major version: add a v2 model and topic. (Only a correction the\n"
              "specification itself made may be published with --acknowledge REASON: docs/contracts.md.)\n",
              file=sys.stderr)
        for problem in p.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    if "--check" in argv:
        differences = p.differences()
        if differences:
            print("Published contracts differ from what the code generates:", file=sys.stderr)
            for d in differences:
                print(f"  - {d}", file=sys.stderr)
            print(f"Run: {FIX}", file=sys.stderr)
            return 1
        print(f"contracts/schemas is up to date ({len(p.files)} files)")
        return 0
    changed = write(p)
    for c in changed:
        print(f"wrote {c}")
    print(f"contracts/schemas is up to date ({len(p.files)} files, {len(changed)} changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
