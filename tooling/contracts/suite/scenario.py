"""Golden scenarios and how an agency's answers are judged against them. Pure: no broker here.

A scenario is a few steps. Each step publishes input events (as the gateway, or customs, would) and names
the answers it expects: event type and version, Kafka key, and payload fields with their values. The next
step is published only once every answer of the step before came, so an agency is never asked to cope with
an order of arrival that the real mesh could not produce (a decision about an enterprise before its
registration was handled, say).

Answers are matched per (key, event type), in the order they arrive: the n-th answer of a type on a key is
compared with the n-th expectation of that type on that key. A wrong answer in between therefore shows up
as a mismatch, which is how "a late event changes nothing" is checked: a later expected answer on the same
key comes after it. Answers beyond the expected ones are not judged: in a mesh with a real customs, the
same parcel may be decided again later (a document timeout), and that is not the agency's fault.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ValidationError

from contracts.envelope import Envelope
from contracts.topics import EVENT_TYPES, EventType, event_type_of
from shared.http import validation_errors


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


MISSING: Any = _Missing()


# --- what is published ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Publish:
    """One input event, published as its writer (spec §6) would: envelope, key and headers."""

    payload: BaseModel
    correlation_id: str
    key: str | None = None  # the correlation id unless the event is keyed otherwise

    @property
    def event_type(self) -> EventType:
        return event_type_of(type(self.payload))


# --- what is expected ----------------------------------------------------------------------------


class Matcher:
    """An expected value that is not a single literal."""

    def matches(self, got: Any) -> bool:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class OneOf(Matcher):
    values: tuple[Any, ...]

    def matches(self, got: Any) -> bool:
        return any(same(v, got) for v in self.values)

    def __str__(self) -> str:
        return " or ".join(show(v) for v in self.values)


@dataclass(frozen=True)
class Codes(Matcher):
    """Reason codes as a set: every `required` code, and nothing outside `required | tolerated`."""

    required: frozenset[str]
    tolerated: frozenset[str] = frozenset()

    def matches(self, got: Any) -> bool:
        if not isinstance(got, list):
            return False
        found = set(got)
        return self.required <= found <= self.required | self.tolerated

    def __str__(self) -> str:
        text = "[" + ", ".join(sorted(self.required)) + "]"
        if self.tolerated:
            text += f" (also accepted alongside: {', '.join(sorted(self.tolerated))})"
        return text


def codes(*required: str, tolerated: Sequence[str] = ()) -> Codes:
    return Codes(frozenset(required), frozenset(tolerated))


@dataclass(frozen=True)
class Expect:
    """An answer the agency must publish: its type and version (the payload model), its Kafka key, and
    payload fields. `alternatives` are other field sets that are just as right (customs' inspection
    selection depends on a salt the suite does not know)."""

    model: type[BaseModel]
    key: str
    fields: Mapping[str, Any]
    alternatives: tuple[Mapping[str, Any], ...] = ()

    @property
    def event_type(self) -> EventType:
        return event_type_of(self.model)

    def describe(self) -> str:
        et = self.event_type
        return f"{et.name} v{et.version}, key {self.key}"


@dataclass(frozen=True)
class Step:
    publish: tuple[Publish, ...] = ()
    expect: tuple[Expect, ...] = ()
    # Seconds to wait after the step when it expects no answer but the next step depends on it being
    # handled (registrations before documents, for customs).
    settle: float = 0.0


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str  # what it checks and where the rule is (domain §)
    steps: tuple[Step, ...]
    note: str = ""  # shown in the report, e.g. which alternatives are accepted and why

    @property
    def expectations(self) -> list[Expect]:
        return [e for s in self.steps for e in s.expect]

    @property
    def keys(self) -> set[str]:
        return {e.key for e in self.expectations}


# --- comparing values ----------------------------------------------------------------------------


def same(expected: Any, got: Any) -> bool:
    if isinstance(expected, Matcher):
        return expected.matches(got)
    if expected is None:
        return got is None or got is MISSING
    if got is MISSING:
        return False
    if isinstance(expected, bool) or isinstance(got, bool):
        return expected is got
    if isinstance(expected, Decimal):
        # Money and scores travel as decimal strings; "95" and "95.0" are the same score.
        if not isinstance(got, (str, int)):
            return False
        try:
            return Decimal(str(got)) == expected
        except InvalidOperation:
            return False
    return got == expected


def show(value: Any) -> str:
    if value is MISSING:
        return "(absent)"
    if isinstance(value, (Matcher, Decimal)):
        return str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value)


_PATH_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d*)\]")


def value_at(document: Any, path: str) -> Any:
    """`vat`, `lines[0].vat`, `reasons[].code` (the list of every reason's code) in a JSON document."""
    parts = [(m.group(1), m.group(2)) for m in _PATH_PART.finditer(path)]
    return _walk(document, parts)


def _walk(value: Any, parts: list[tuple[str | None, str | None]]) -> Any:
    for i, (name, index) in enumerate(parts):
        if name is not None:
            if not isinstance(value, dict) or name not in value:
                return MISSING
            value = value[name]
        elif index == "":
            if not isinstance(value, list):
                return MISSING
            return [_walk(v, parts[i + 1:]) for v in value]
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                return MISSING
            value = value[int(index)]
    return value


# --- judging one answer --------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """A record read from the agency's output topic."""

    topic: str
    key: str | None
    headers: Mapping[str, str]
    value: bytes

    def envelope_json(self) -> dict | None:
        try:
            data = json.loads(self.value)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    @property
    def type_name(self) -> str | None:
        data = self.envelope_json()
        if data is not None and isinstance(data.get("type"), str):
            return data["type"]
        return self.headers.get("type")

    def describe(self) -> str:
        data = self.envelope_json() or {}
        return f"{data.get('type', self.headers.get('type', '?'))} v{data.get('version', self.headers.get('version', '?'))}"


@dataclass(frozen=True)
class Finding:
    """One field that is not what the contract or the domain says."""

    field: str
    expected: str
    got: str


def _field_findings(fields: Mapping[str, Any], payload: dict) -> list[Finding]:
    return [Finding(path, show(want), show(got)) for path, want in fields.items()
            if not same(want, got := value_at(payload, path))]


def judge(expect: Expect, received: Received) -> list[Finding]:
    """Everything wrong with `received` as the answer `expect` describes; [] when it is right."""
    et = expect.event_type
    findings: list[Finding] = []
    if received.key != expect.key:
        findings.append(Finding("(Kafka key)", expect.key, show(received.key if received.key is not None else MISSING)))
    data = received.envelope_json()
    if data is None:
        return findings + [Finding("(record)", "a JSON envelope (spec §6)", received.value[:80].decode("utf-8", "replace"))]
    try:
        envelope = Envelope.model_validate(data)
    except ValidationError as err:
        return findings + [Finding(f"envelope.{e['field']}", "valid per the envelope contract", e["message"])
                           for e in validation_errors(list(err.errors()))]
    if (envelope.type, envelope.version) != (et.name, et.version):
        return findings + [Finding("(event type)", f"{et.name} v{et.version}", f"{envelope.type} v{envelope.version}")]
    for header, want in (("type", et.name), ("version", str(et.version))):
        if received.headers.get(header) != want:
            findings.append(Finding(f"(header {header})", want, show(received.headers.get(header, MISSING))))
    if not received.headers.get("traceparent"):
        findings.append(Finding("(header traceparent)", "the W3C trace context", "(absent)"))
    model = EVENT_TYPES[(et.name, et.version)].model
    try:
        model.model_validate(envelope.payload)
    except ValidationError as err:
        findings += [Finding(e["field"], f"valid per the {et.name} v{et.version} contract", e["message"])
                     for e in validation_errors(list(err.errors()))]
    variants = [expect.fields, *expect.alternatives]
    # A field already reported as breaking the contract is not reported a second time as a wrong value.
    broken = {f.field for f in findings}
    attempts = [[f for f in _field_findings(v, envelope.payload) if f.field not in broken] for v in variants]
    if any(not a for a in attempts):
        return findings
    return findings + min(attempts, key=len)


# --- judging a scenario as answers come in ---------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    expect: Expect
    received: Received | None  # None: not (yet) received
    findings: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        return self.received is not None and not self.findings


@dataclass
class ScenarioState:
    """What has come back for one scenario so far, and what that means."""

    scenario: Scenario
    streams: dict[tuple[str, str], list[Received]] = field(default_factory=dict)
    others: list[Received] = field(default_factory=list)  # on the scenario's keys, of no expected type

    def add(self, received: Received) -> None:
        # Filed under the scenario key it names, so that an answer with the right correlation id but the
        # wrong Kafka key is judged (and its key reported) rather than missed.
        key = next((k for k in _named_keys(received) if k in self.scenario.keys), received.key or "")
        stream = (key, received.type_name or "?")
        expected_streams = {(e.key, e.event_type.name) for e in self.scenario.expectations}
        if stream in expected_streams:
            self.streams.setdefault(stream, []).append(received)
        else:
            self.others.append(received)

    def verdicts(self) -> list[list[Verdict]]:
        """Per step, a verdict per expectation: the n-th expectation of a (key, type) against the n-th answer."""
        seen: dict[tuple[str, str], int] = {}
        out = []
        for step in self.scenario.steps:
            row = []
            for e in step.expect:
                stream = (e.key, e.event_type.name)
                index = seen.get(stream, 0)
                seen[stream] = index + 1
                answers = self.streams.get(stream, [])
                if index < len(answers):
                    row.append(Verdict(e, answers[index], tuple(judge(e, answers[index]))))
                else:
                    row.append(Verdict(e, None))
            out.append(row)
        return out

    def step_done(self, step: int) -> bool:
        return all(v.ok for row in self.verdicts()[: step + 1] for v in row)

    @property
    def failed(self) -> bool:
        return any(v.findings for row in self.verdicts() for v in row)

    @property
    def passed(self) -> bool:
        return all(v.ok for row in self.verdicts() for v in row)


def scenario_for(scenarios: Sequence[ScenarioState], received: Received) -> ScenarioState | None:
    """The scenario whose keys the record is about (its Kafka key, else its envelope's correlation id)."""
    for candidate in _named_keys(received):
        for state in scenarios:
            if candidate in state.scenario.keys:
                return state
    return None


def _named_keys(received: Received) -> list[str]:
    """The record's Kafka key, then its envelope's correlation id."""
    names = [received.key] if received.key else []
    data = received.envelope_json()
    if data is not None and isinstance(data.get("correlation_id"), str):
        names.append(data["correlation_id"])
    return names
