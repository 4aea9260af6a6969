"""FULL, transitive compatibility of event schemas within one major version.

Within a major version (one topic, e.g. `sw.order.submitted.v1`) an event contract may change only so that
  - a consumer on the previous schema reads events written on the new one (forward), and
  - a consumer on the new schema reads events written on the previous one (backward),
against *every* published revision of that major, not just the latest (transitive): topics are replayed,
and consumers upgrade at their own pace. `history_problems` is the gate; `full_compatibility_problems`
compares two revisions.

The checker reads JSON Schemas as Pydantic v2 writes them (`model_json_schema(mode="serialization")`):
`$defs`/`$ref`, `anyOf` with `{"type": "null"}` for optionals, `enum`/`const` for Literals, `default`,
`format`, `pattern`, bounds, arrays with `items`, nested objects, `additionalProperties`.

The compatibility model: what we assume writers and readers do
----------------------------------------------------------------
Writers (producers) send what their schema *declares* and nothing else, which is what a Pydantic model
serialises: every required property, any optional one (or leave it out), each value valid for its
schema. Unknown properties are sent only by an object whose `additionalProperties` is `true`
(extra="allow") or a schema (a `dict[str, X]`).

Readers (consumers) validate against their schema, strictly by the JSON Schema types (we judge the
published contract, not Pydantic's lax coercions, because outsiders read it with other libraries):
  - a property the reader requires must be there;
  - a property the reader declares must have a value its schema accepts; one it does not declare is
    ignored when `additionalProperties` is absent or `true` (Pydantic extra="ignore"/"allow") and
    refused when it is `false` (extra="forbid"): such an event is dead-lettered;
  - an optional property that is missing takes the reader's `default`.

So a change is compatible when, in both directions, every document the writer's schema allows is
accepted by the reader's schema and means the same to it. The consequences, case by case:
  - optional field added (or removed): compatible both ways where the reader ignores unknown fields;
    incompatible where the object is closed (`additionalProperties: false`), since closed readers refuse
    the field (`field-added`, `field-removed`);
  - required field removed: old readers miss it (`field-removed`); required field added: old events lack
    it (`required-field-added`); optional -> required (`required-added`) and required -> optional
    (`required-removed`) break the side that requires it;
  - types, `null`, string formats, `enum`/`const` values and constraints (pattern, min/max, lengths,
    item counts, multipleOf): a narrowing breaks new readers of old events (`type-narrowed`,
    `enum-value-removed`, `constraint-narrowed`), a widening breaks old readers of new events
    (`type-widened`, `enum-value-added`, `constraint-widened`); changes that do both are `type-changed`,
    `const-changed`, `format-changed`, `pattern-changed` (whether one regular expression contains
    another cannot be decided, so any edit of a pattern counts);
  - `integer` -> `number` widens, `number` -> `integer` narrows;
  - a changed `default` of an optional field makes the same event mean different things to the two
    readers (`default-changed`);
  - closing an object (`additionalProperties` absent -> `false`) is harmless by itself, because writers
    send no undeclared property; every later field addition is then reported against that revision.
    Where writers do send extra properties (`true`, or a schema), closed readers refuse them: opening a
    closed object that way breaks old readers (`additional-properties-opened`), and closing an object
    whose writers sent extras breaks new readers (`additional-properties-closed`); map values (a schema
    in `additionalProperties`) are compared like any other value;
  - titles, descriptions and examples are documentation and are ignored.

Fields are named by dotted paths: `order.items[].unit_price` (`[]` an array's items, `[0]` a tuple
position, `.*` the values of a map); the payload itself is `$`.

Why our own checker: the maintained tools we looked at judge another question. `jsoncompat` (PyPI, alpha)
uses pure JSON Schema set semantics, where an open object already accepts *any* value under an undeclared
name, so it calls adding an optional field breaking (the opposite of our readers' behaviour); it answers
only true/false, without field or rule, and a changed default is invisible to it. `api-schema-diff` checks
one direction (old clients) and by structure only. Neither follows `$ref` into per-field messages.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterable

ROOT = "$"

# Why a producer may not simply edit a published major: the remedy every message ends with.
REMEDY = (
    "Revert this change, or make it in a new major version of the event (its own `.v<N+1>` topic, "
    "dual-published during the deprecation period) instead of editing this one."
)

FORWARD = "forward"    # consumers on the previous schema read events written on the new one
BACKWARD = "backward"  # consumers on the new schema read events written on the previous one

_WHO_BREAKS = {
    FORWARD: "consumers still on the previous schema would reject new events",
    BACKWARD: "consumers on the new schema would reject events written on the previous one (and every replay of them)",
}

_ALL_TYPES = frozenset({"string", "integer", "number", "boolean", "null", "object", "array"})


@dataclass(frozen=True)
class Problem:
    field: str    # dotted path of the field, e.g. "order.items[].unit_price" or "status"
    rule: str     # which rule broke, e.g. "field-removed", "type-narrowed", "enum-value-added"
    message: str  # what changed, which readers it breaks and why, and what to do


def full_compatibility_problems(old: dict, new: dict) -> list[Problem]:
    """Every way in which `new` is not FULL-compatible with `old` (both reader directions)."""
    return [Problem(p.field, p.rule, f"{p.message} {REMEDY}") for p in _problems(old, new)]


def history_problems(history: list[dict], new: dict) -> list[Problem]:
    """`new` against every published revision of its major (`history` oldest first, revision 1 first).

    One problem per field and rule; its message names the revisions it breaks, so a change that fits the
    latest revision but not an older one is still reported, and says which."""
    broken_in: dict[tuple[str, str], list[int]] = {}
    first: dict[tuple[str, str], Problem] = {}
    for revision, old in enumerate(history, start=1):
        for problem in _problems(old, new):
            key = (problem.field, problem.rule)
            first.setdefault(key, problem)
            broken_in.setdefault(key, []).append(revision)
    return [
        Problem(p.field, p.rule, f"{p.message} Breaks published revision(s) "
                                 f"{', '.join(f'{n:04d}' for n in broken_in[key])} of {len(history)}. {REMEDY}")
        for key, p in first.items()
    ]


def _problems(old: dict, new: dict) -> list[Problem]:
    found: list[Problem] = []
    for direction in (FORWARD, BACKWARD):
        reader, writer = (old, new) if direction == FORWARD else (new, old)
        walk = _Walk(direction, reader_root=reader, writer_root=writer)
        walk.value(reader, writer, ROOT)
        found.extend(walk.problems)
    return _first_per_field_and_rule(found)


def _first_per_field_and_rule(problems: Iterable[Problem]) -> list[Problem]:
    # Symmetric rules (type-changed, default-changed, ...) are found from both reader directions.
    seen: dict[tuple[str, str], Problem] = {}
    for p in problems:
        seen.setdefault((p.field, p.rule), p)
    return list(seen.values())


# --- the walk: does every document the writer's schema allows pass the reader's schema? ----------


def _child(path: str, name: str) -> str:
    return name if path == ROOT else f"{path}.{name}"


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _key(value: Any) -> str:
    # JSON equality, not Python's: true != 1, and dicts compare by content.
    return json.dumps(value, sort_keys=True)


@dataclass
class _Walk:
    direction: str
    reader_root: dict
    writer_root: dict
    problems: list[Problem] = field(default_factory=list)
    _refs_on_path: set[tuple[str, str]] = field(default_factory=set)

    # -- reporting -------------------------------------------------------------------------------

    def report(self, path: str, rule: str, what_changed: str, why: str | None = None) -> None:
        consequence = why or _WHO_BREAKS[self.direction]
        self.problems.append(Problem(path, rule, f"`{path}`: {what_changed}; {consequence}."))

    def old_new(self, reader: Any, writer: Any) -> tuple[Any, Any]:
        return (reader, writer) if self.direction == FORWARD else (writer, reader)

    def by_direction(self, widened: str, narrowed: str) -> str:
        # What the writer sends beyond the reader: new beyond old is a widening, old beyond new a narrowing.
        return widened if self.direction == FORWARD else narrowed

    # -- values ----------------------------------------------------------------------------------

    def value(self, reader: Any, writer: Any, path: str) -> None:
        """Report every way a value the writer's schema allows fails the reader's schema."""
        r_branches, w_branches = _flat(reader, self.reader_root), _flat(writer, self.writer_root)
        if not w_branches:  # `false`: the writer sends nothing here
            return
        r_null = any(_allows_null(node) for node, _ in r_branches)
        w_null = any(_allows_null(node) for node, _ in w_branches)
        r_values = [(rest, ref) for node, ref in r_branches if (rest := _without_null(node)) is not None]
        w_values = [(rest, ref) for node, ref in w_branches if (rest := _without_null(node)) is not None]
        if w_null and not r_null and r_values:
            old, _ = self.old_new(r_null, w_null)
            self.report(path, self.by_direction("type-widened", "type-narrowed"),
                        "now accepts null" if not old else "no longer accepts null", self._null_why())
        if not w_values:
            return
        if not r_values:
            self._type_changed(path, {"null"} if r_null else set(), _types_of_all([n for n, _ in w_values]))
            return
        for w in w_values:
            self._branch(r_values, w, path)

    def _null_why(self) -> str:
        if self.direction == FORWARD:
            return "new events may carry null there, which consumers on the previous schema reject"
        return "events written on the previous schema may carry null there, which consumers on the new schema reject"

    def _branch(self, readers: list[tuple[dict, str]], writer: tuple[dict, str], path: str) -> None:
        if len(readers) == 1:
            self._guarded(readers[0], writer, path)
            return
        # A union: the writer's branch must fit one of the reader's. Report against the closest one.
        candidates = []
        for reader in readers:
            trial = _Walk(self.direction, self.reader_root, self.writer_root, [], set(self._refs_on_path))
            trial._guarded(reader, writer, path)
            if not trial.problems:
                return
            apart = not (_types(reader[0]) & _types(writer[0]))
            candidates.append((apart, len(trial.problems), trial.problems))
        self.problems.extend(min(candidates, key=lambda c: (c[0], c[1]))[2])

    def _guarded(self, reader: tuple[dict, str], writer: tuple[dict, str], path: str) -> None:
        (r_node, r_ref), (w_node, w_ref) = reader, writer
        if not (r_ref and w_ref):
            self._single(r_node, w_node, path)
            return
        pair = (r_ref, w_ref)
        if pair in self._refs_on_path:  # a recursive model: this pair is being compared further up
            return
        self._refs_on_path.add(pair)
        try:
            self._single(r_node, w_node, path)
        finally:
            self._refs_on_path.discard(pair)

    def _single(self, reader: dict, writer: dict, path: str) -> None:
        r_types, w_types = _types(reader), _types(writer)
        if not self._types(r_types, w_types, path):
            return
        shared = {t for t in w_types if _accepts(r_types, t)}
        if "number" in w_types and "integer" in r_types:
            shared.add("integer")  # the integers among the writer's numbers still reach the reader
        if not self._values(reader, writer, path):
            return
        if _enumerated(writer) is not None:
            self._enumerated_fit(reader, writer, path)
            return
        if "string" in shared:
            self._string(reader, writer, path)
        if shared & {"integer", "number"}:
            self._number(reader, writer, path, integer="number" not in shared)
        if "array" in shared:
            self._array(reader, writer, path)
        if "object" in shared:
            self._object(reader, writer, path)

    def _types(self, r_types: frozenset[str], w_types: frozenset[str], path: str) -> bool:
        """False when nothing of the writer's type fits the reader (no point looking further)."""
        rejected = {t for t in w_types if not _accepts(r_types, t)}
        if not rejected:
            return True
        overlap = (w_types - rejected) or ("number" in w_types and "integer" in r_types)
        if not overlap:
            self._type_changed(path, r_types, w_types)
            return False
        old, new = self.old_new(r_types, w_types)
        self.report(path, self.by_direction("type-widened", "type-narrowed"),
                    f"type changed from {_type_names(old)} to {_type_names(new)}")
        return True

    def _type_changed(self, path: str, r_types: Iterable[str], w_types: Iterable[str]) -> None:
        old, new = self.old_new(r_types, w_types)
        self.report(path, "type-changed", f"type changed from {_type_names(old)} to {_type_names(new)}",
                    "readers of either revision reject the events written on the other")

    def _values(self, reader: dict, writer: dict, path: str) -> bool:
        """enum and const: the writer may send only values the reader lists. False if none fits."""
        r_values, w_values = _enumerated(reader), _enumerated(writer)
        if r_values is None:
            return True
        if w_values is None:
            old_v, _ = self.old_new(r_values, w_values)
            listed = ", ".join(_show(v) for v in (r_values or {}).values())
            self.report(path, self.by_direction("type-widened", "type-narrowed"),
                        f"is no longer restricted to {listed}" if old_v is not None else f"is now restricted to {listed}")
            return True
        missing = [v for k, v in w_values.items() if k not in r_values]
        if not missing:
            return True
        if "const" in reader and "const" in writer:
            old, new = self.old_new(reader["const"], writer["const"])
            self.report(path, "const-changed", f"constant changed from {_show(old)} to {_show(new)}",
                        "readers of either revision reject every event written on the other")
            return False
        shown = ", ".join(_show(v) for v in missing)
        if self.direction == FORWARD:
            self.report(path, "enum-value-added", f"value(s) {shown} added",
                        "consumers on the previous schema reject new events carrying them")
        else:
            self.report(path, "enum-value-removed", f"value(s) {shown} removed",
                        "events written on the previous schema may carry them, and consumers on the new schema reject those")
        return len(missing) < len(w_values)

    def _enumerated_fit(self, reader: dict, writer: dict, path: str) -> None:
        # The writer sends listed values only: each must pass the reader's constraints.
        for value in (_enumerated(writer) or {}).values():
            broken = _violated(reader, value)
            if broken:
                self.report(path, self.by_direction("constraint-widened", "constraint-narrowed"),
                            f"value {_show(value)} no longer satisfies {broken}" if self.direction == BACKWARD
                            else f"value {_show(value)} does not satisfy the previous schema's {broken}")

    # -- strings, numbers, arrays ------------------------------------------------------------------

    def _string(self, reader: dict, writer: dict, path: str) -> None:
        r_format, w_format = reader.get("format"), writer.get("format")
        if r_format and r_format != w_format:
            old, new = self.old_new(r_format, w_format)
            if w_format:
                self.report(path, "format-changed", f"string format changed from {old!r} to {new!r}",
                            "readers of either revision reject strings written in the other format")
            else:
                self.report(path, self.by_direction("type-widened", "type-narrowed"),
                            f"string format {old!r} dropped" if old else f"string format {new!r} required")
        r_pattern, w_pattern = reader.get("pattern"), writer.get("pattern")
        if r_pattern and r_pattern != w_pattern:
            old, new = self.old_new(r_pattern, w_pattern)
            if w_pattern:
                self.report(path, "pattern-changed", f"pattern changed from {old!r} to {new!r}",
                            "values matching one need not match the other, so readers of either revision may "
                            "reject events written on the other")
            else:
                self.report(path, self.by_direction("constraint-widened", "constraint-narrowed"),
                            f"pattern {old!r} dropped" if old else f"pattern {new!r} added")
        self._bounds(reader, writer, path, "minLength", "maxLength")

    def _number(self, reader: dict, writer: dict, path: str, integer: bool) -> None:
        for side, more in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
            r_bound, w_bound = _bound(reader, side, more, integer), _bound(writer, side, more, integer)
            if r_bound is None or _within(w_bound, r_bound, lower=side == "minimum"):
                continue
            old, new = self.old_new(r_bound, w_bound)
            self._constraint(path, side, _show_bound(old, side), _show_bound(new, side))
        r_step, w_step = reader.get("multipleOf"), writer.get("multipleOf")
        if r_step is not None and (w_step is None or Decimal(str(w_step)) % Decimal(str(r_step)) != 0):
            old, new = self.old_new(r_step, w_step)
            self._constraint(path, "multipleOf", _show(old) if old is not None else "none",
                             _show(new) if new is not None else "none")

    def _array(self, reader: dict, writer: dict, path: str) -> None:
        r_tuple, w_tuple = reader.get("prefixItems") or [], writer.get("prefixItems") or []
        for i in range(max(len(r_tuple), len(w_tuple))):
            r_item = r_tuple[i] if i < len(r_tuple) else reader.get("items", {})
            w_item = w_tuple[i] if i < len(w_tuple) else writer.get("items", {})
            self.value(r_item, w_item, f"{path}[{i}]")
        if "items" in reader or "items" in writer:
            self.value(reader.get("items", {}), writer.get("items", {}), f"{path}[]")
        self._bounds(reader, writer, path, "minItems", "maxItems")
        if reader.get("uniqueItems") and not writer.get("uniqueItems"):
            old, new = self.old_new(True, False)
            self._constraint(path, "uniqueItems", _show(old), _show(new))

    def _bounds(self, reader: dict, writer: dict, path: str, low: str, high: str) -> None:
        for keyword, lower in ((low, True), (high, False)):
            r_bound, w_bound = reader.get(keyword), writer.get(keyword)
            if r_bound is None:
                continue
            if w_bound is not None and (w_bound >= r_bound if lower else w_bound <= r_bound):
                continue
            old, new = self.old_new(r_bound, w_bound)
            self._constraint(path, keyword, _show(old) if old is not None else "none",
                             _show(new) if new is not None else "none")

    def _constraint(self, path: str, keyword: str, old: str, new: str) -> None:
        self.report(path, self.by_direction("constraint-widened", "constraint-narrowed"),
                    f"{keyword} changed from {old} to {new}")

    # -- objects -----------------------------------------------------------------------------------

    def _object(self, reader: dict, writer: dict, path: str) -> None:
        r_props, w_props = reader.get("properties", {}), writer.get("properties", {})
        r_required, w_required = set(reader.get("required", [])), set(writer.get("required", []))
        r_extra, w_extra = _extra(reader), _extra(writer)
        in_object = "" if path == ROOT else f" `{path}`"

        for name in w_props:
            if name in r_props:
                continue
            where = _child(path, name)
            if r_extra is False:
                if self.direction == FORWARD:
                    self.report(where, "field-added", f"added to the object{in_object}, which forbids unknown fields "
                                "(additionalProperties: false)",
                                "consumers on the previous schema refuse every new event that carries it")
                else:
                    self.report(where, "field-removed", f"removed from the object{in_object}, which forbids unknown "
                                "fields (additionalProperties: false)",
                                "consumers on the new schema refuse events written on the previous one that carry it")
            elif isinstance(r_extra, dict):
                self.value(r_extra, w_props[name], where)

        for name, r_schema in r_props.items():
            where = _child(path, name)
            if name not in w_props:
                if isinstance(w_extra, dict) or w_extra is True:
                    # The writer may still send it, as one of its extra properties.
                    self.value(r_schema, w_extra if isinstance(w_extra, dict) else {}, where)
                if name in r_required:
                    if self.direction == FORWARD:
                        self.report(where, "field-removed", "removed, but consumers on the previous schema require it",
                                    "they reject every new event")
                    else:
                        self.report(where, "required-field-added", "added as a required field",
                                    "events written on the previous schema lack it, so consumers on the new schema "
                                    "reject them (an optional field with a default would be compatible)")
                continue
            if name in r_required and name not in w_required:
                if self.direction == FORWARD:
                    self.report(where, "required-removed", "no longer required",
                                "new events may omit it, and consumers on the previous schema, which require it, "
                                "reject them")
                else:
                    self.report(where, "required-added", "became required",
                                "events written on the previous schema may omit it, and consumers on the new schema "
                                "reject them")
            elif name not in r_required and name not in w_required:
                self._default(r_schema, w_props[name], where)
            self.value(r_schema, w_props[name], where)

        self._extra_properties(r_extra, w_extra, path)
        self._bounds(reader, writer, path, "minProperties", "maxProperties")

    def _default(self, reader: Any, writer: Any, path: str) -> None:
        r_default, w_default = _default_of(reader), _default_of(writer)
        if _same(r_default, w_default):
            return
        old, new = self.old_new(r_default, w_default)
        self.report(path, "default-changed",
                    f"default changed from {_show_default(old)} to {_show_default(new)}",
                    "an event that leaves the field out means one thing to consumers on the previous schema and "
                    "another to consumers on the new one")

    def _extra_properties(self, r_extra: Any, w_extra: Any, path: str) -> None:
        if w_extra is None or w_extra is False or r_extra is None or r_extra is True:
            return  # the writer sends no undeclared property, or the reader ignores them
        where = f"{path}.*" if path != ROOT else "*"
        if isinstance(r_extra, dict):
            self.value(r_extra, w_extra if isinstance(w_extra, dict) else {}, where)
            return
        if self.direction == FORWARD:
            self.report(path, "additional-properties-opened", "now carries extra properties (additionalProperties)",
                        "consumers on the previous schema forbid unknown properties and refuse new events")
        else:
            self.report(path, "additional-properties-closed", "now forbids extra properties (additionalProperties: false)",
                        "events written on the previous schema may carry them, and consumers on the new schema refuse those")


# --- schema helpers ------------------------------------------------------------------------------

_MISSING = object()


def _resolve(node: Any, root: dict) -> tuple[dict | None, str]:
    """The node with `$ref`s (and single-branch `allOf`s) replaced by their target; sibling keywords win."""
    ref = ""
    seen: set[str] = set()
    while True:
        if node is True or node is None:
            return {}, ref
        if node is False:
            return None, ref
        if "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                raise ValueError(f"circular $ref {ref}")
            seen.add(ref)
            target = _pointer(root, ref)
            node = {**(target if isinstance(target, dict) else {}), **{k: v for k, v in node.items() if k != "$ref"}}
            continue
        if "allOf" in node:
            merged = {k: v for k, v in node.items() if k != "allOf"}
            for part in node["allOf"]:
                part, _ = _resolve(part, root)
                merged = {**(part or {}), **merged}
            node = merged
            continue
        return node, ref


def _pointer(root: dict, ref: str) -> Any:
    if not ref.startswith("#"):
        raise ValueError(f"only local $refs are supported, not {ref!r}")
    node: Any = root
    for part in [p for p in ref[1:].split("/") if p]:
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _flat(node: Any, root: dict) -> list[tuple[dict, str]]:
    """The alternatives a schema allows, resolved, each with the $ref it came through ("" if none).

    `anyOf`/`oneOf` (nested ones too) become a list; `false` allows nothing and becomes an empty one.
    Keywords beside `anyOf` are annotations (title, default) in the schemas Pydantic writes."""
    resolved, ref = _resolve(node, root)
    if resolved is None:
        return []
    for keyword in ("anyOf", "oneOf"):
        if keyword in resolved:
            return [(branch, branch_ref or ref) for part in resolved[keyword] for branch, branch_ref in _flat(part, root)]
    return [(resolved, ref)]


def _allows_null(node: dict) -> bool:
    if "const" in node:
        return node["const"] is None
    if "enum" in node:
        return None in node["enum"]
    t = node.get("type")
    return (t is None and not _implied_types(node)) or t == "null" or (isinstance(t, list) and "null" in t)


def _without_null(node: dict) -> dict | None:
    """The node with null taken out (None when null was all it allowed)."""
    if "const" in node and node["const"] is None:
        return None
    if "enum" in node and None in node["enum"]:
        rest = [v for v in node["enum"] if v is not None]
        return {**node, "enum": rest} if rest else None
    t = node.get("type")
    if t == "null":
        return None
    if isinstance(t, list) and "null" in t:
        rest = [x for x in t if x != "null"]
        return {**node, "type": rest} if rest else None
    if t is None and not _implied_types(node):
        return {**node, "type": sorted(_ALL_TYPES - {"null"})}
    return node


def _implied_types(node: dict) -> frozenset[str]:
    if "const" in node or "enum" in node:
        return frozenset(_json_type(v) for v in ([node["const"]] if "const" in node else node["enum"]))
    implied = set()
    if {"properties", "required", "additionalProperties"} & node.keys():
        implied.add("object")
    if {"items", "prefixItems"} & node.keys():
        implied.add("array")
    return frozenset(implied)


def _types(node: dict) -> frozenset[str]:
    t = node.get("type")
    if isinstance(t, str):
        return frozenset({t})
    if isinstance(t, list):
        return frozenset(t)
    return _implied_types(node) or _ALL_TYPES


def _types_of_all(nodes: list[dict]) -> frozenset[str]:
    return frozenset().union(*(_types(n) for n in nodes))


def _accepts(reader_types: frozenset[str], t: str) -> bool:
    return t in reader_types or (t == "integer" and "number" in reader_types)


def _type_names(types: Iterable[str]) -> str:
    names = sorted(types)
    if not names:
        return "nothing"
    return names[0] if len(names) == 1 else " or ".join(names)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _enumerated(node: dict) -> dict[str, Any] | None:
    """The values a schema lists (const or enum), keyed by their JSON text; None when it lists none."""
    if "const" in node:
        return {_key(node["const"]): node["const"]}
    if "enum" in node:
        return {_key(v): v for v in node["enum"]}
    return None


def _violated(reader: dict, value: Any) -> str | None:
    """The reader's constraint that a listed value breaks, if any (pattern, lengths, bounds)."""
    if isinstance(value, str):
        if "pattern" in reader and not re.search(reader["pattern"], value):
            return f"pattern {reader['pattern']!r}"
        if len(value) < reader.get("minLength", 0):
            return f"minLength {reader['minLength']}"
        if "maxLength" in reader and len(value) > reader["maxLength"]:
            return f"maxLength {reader['maxLength']}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for keyword, fails in (("minimum", lambda b: value < b), ("exclusiveMinimum", lambda b: value <= b),
                               ("maximum", lambda b: value > b), ("exclusiveMaximum", lambda b: value >= b)):
            if keyword in reader and fails(reader[keyword]):
                return f"{keyword} {reader[keyword]}"
    return None


def _bound(node: dict, inclusive: str, exclusive: str, integer: bool) -> tuple[Decimal, bool] | None:
    """A numeric bound as (value, exclusive); on integers `> 0` is `>= 1`, so both spellings compare equal."""
    candidates = []
    if inclusive in node:
        candidates.append((Decimal(str(node[inclusive])), False))
    if exclusive in node:
        value = Decimal(str(node[exclusive]))
        if integer and value == value.to_integral_value():
            candidates.append((value + 1 if inclusive == "minimum" else value - 1, False))
        else:
            candidates.append((value, True))
    if not candidates:
        return None
    lower = inclusive == "minimum"
    # The tighter of the two, when a schema has both.
    return max(candidates, key=lambda b: (b[0], b[1])) if lower else min(candidates, key=lambda b: (b[0], not b[1]))


def _within(writer: tuple[Decimal, bool] | None, reader: tuple[Decimal, bool], lower: bool) -> bool:
    if writer is None:
        return False
    (w, w_excl), (r, r_excl) = writer, reader
    if w == r:
        return w_excl or not r_excl
    return w > r if lower else w < r


def _show_bound(bound: tuple[Decimal, bool] | None, side: str) -> str:
    if bound is None:
        return "none"
    value, exclusive = bound
    op = (">" if exclusive else ">=") if side == "minimum" else ("<" if exclusive else "<=")
    return f"{op} {value}"


def _extra(node: dict) -> Any:
    """additionalProperties: None when absent (readers ignore extras, writers send none)."""
    return node.get("additionalProperties")


def _default_of(node: Any) -> Any:
    return node.get("default", _MISSING) if isinstance(node, dict) else _MISSING


def _same(a: Any, b: Any) -> bool:
    if a is _MISSING or b is _MISSING:
        return a is b
    return _key(a) == _key(b)


def _show_default(value: Any) -> str:
    return "none" if value is _MISSING else _show(value)
