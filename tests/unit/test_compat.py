"""The FULL compatibility checker (tooling/contracts/compat.py): one test per rule, on hand-written schemas and on the
schemas Pydantic generates for v1 / v1' model pairs, plus the compatible changes that must report nothing
and the transitive check over a history of revisions."""
from __future__ import annotations

from datetime import date
from typing import Literal

import pytest
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from tooling.contracts.compat import Problem, full_compatibility_problems, history_problems
from contracts.types import Money


def schema(model: type[BaseModel]) -> dict:
    return model.model_json_schema(mode="serialization")


def found(old: dict, new: dict) -> set[tuple[str, str]]:
    problems = full_compatibility_problems(old, new)
    for p in problems:
        assert f"`{p.field}`" in p.message, p  # every message names its field
        assert "new major version" in p.message, p  # ... and says what to do
    return {(p.field, p.rule) for p in problems}


def obj(properties: dict, required: tuple[str, ...] = (), **more) -> dict:
    return {"type": "object", "properties": properties, "required": list(required), **more}


STRING = {"type": "string"}
NULLABLE_STRING = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}


class Payload(BaseModel):
    model_config = ConfigDict(extra="ignore")  # as contracts.v1.events.Payload


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")  # as contracts.v1.documents.Strict


# --- compatible changes report nothing ----------------------------------------------------------------


class Item(Payload):
    sku: str
    price: Money


class ItemWithBrand(Payload):
    sku: str
    price: Money
    brand: str | None = None


def test_adding_an_optional_field_is_compatible_both_ways_for_readers_that_ignore_unknown_fields():
    assert found(schema(Item), schema(ItemWithBrand)) == set()


def test_removing_an_optional_field_is_compatible_for_readers_that_ignore_unknown_fields():
    # Old readers fill in its default; new readers ignore it in old events.
    assert found(schema(ItemWithBrand), schema(Item)) == set()


def test_documentation_renamed_definitions_and_reordered_unions_are_compatible():
    old = {"$defs": {"Line": obj({"sku": STRING}, ("sku",), title="Line")},
           "type": "object", "properties": {"lines": {"type": "array", "items": {"$ref": "#/$defs/Line"}},
                                            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}}}
    new = {"$defs": {"OrderLine": obj({"sku": {"type": "string", "description": "the seller's SKU"}}, ("sku",))},
           "type": "object", "description": "renamed and documented",
           "properties": {"lines": {"type": "array", "items": {"$ref": "#/$defs/OrderLine"}, "title": "Lines"},
                          "note": {"anyOf": [{"type": "null"}, {"type": "string"}], "default": None}}}
    assert found(old, new) == set()


def test_every_current_event_schema_is_compatible_with_itself():
    from contracts.topics import EVENT_TYPES

    for event in EVENT_TYPES.values():
        assert found(schema(event.model), schema(event.model)) == set(), event.name


def test_an_integer_bound_spelled_gt_0_or_ge_1_is_the_same_bound():
    class Gt(Payload):
        version: int = Field(gt=0)

    class Ge(Payload):
        version: int = Field(ge=1)

    assert found(schema(Gt), schema(Ge)) == set()
    assert found(schema(Ge), schema(Gt)) == set()


def test_closing_an_open_object_is_harmless_by_itself_because_writers_send_only_declared_fields():
    class Open(Payload):
        sku: str

    class Shut(Closed):
        sku: str

    assert found(schema(Open), schema(Shut)) == set()
    assert found(schema(Shut), schema(Open)) == set()  # opening to "ignore" too


# --- fields -------------------------------------------------------------------------------------------


def test_removing_a_required_field_breaks_old_readers():
    class V1(Payload):
        sku: str
        brand: str

    class V1b(Payload):
        sku: str

    assert found(schema(V1), schema(V1b)) == {("brand", "field-removed")}
    assert found(obj({"a": STRING, "b": STRING}, ("a", "b")), obj({"a": STRING}, ("a",))) == {("b", "field-removed")}


def test_the_message_says_what_changed_who_breaks_and_what_to_do():
    class V1(Payload):
        brand: str

    class V1b(Payload):
        pass

    [problem] = full_compatibility_problems(schema(V1), schema(V1b))
    assert problem == Problem("brand", "field-removed", problem.message)
    assert "`brand`" in problem.message
    assert "previous schema require it" in problem.message
    assert "new major version" in problem.message


def test_adding_a_required_field_breaks_new_readers_of_old_events():
    class V1(Payload):
        sku: str

    class V1b(Payload):
        sku: str
        brand: str

    assert found(schema(V1), schema(V1b)) == {("brand", "required-field-added")}
    assert found(obj({"a": STRING}, ("a",)), obj({"a": STRING, "b": STRING}, ("a", "b"))) == {("b", "required-field-added")}


def test_adding_an_optional_field_to_a_closed_object_breaks_old_readers():
    class V1(Closed):
        sku: str

    class V1b(Closed):
        sku: str
        brand: str | None = None

    assert found(schema(V1), schema(V1b)) == {("brand", "field-added")}
    closed = {"additionalProperties": False}
    assert found(obj({"a": STRING}, **closed), obj({"a": STRING, "b": STRING}, **closed)) == {("b", "field-added")}


def test_removing_an_optional_field_from_a_closed_object_breaks_new_readers_of_old_events():
    class V1(Closed):
        sku: str
        brand: str | None = None

    class V1b(Closed):
        sku: str

    assert found(schema(V1), schema(V1b)) == {("brand", "field-removed")}


def test_making_a_field_required_breaks_new_readers_of_old_events():
    class V1(Payload):
        brand: str = ""

    class V1b(Payload):
        brand: str

    assert found(schema(V1), schema(V1b)) == {("brand", "required-added")}
    assert found(obj({"b": STRING}), obj({"b": STRING}, ("b",))) == {("b", "required-added")}


def test_making_a_field_optional_breaks_old_readers_that_require_it():
    class V1(Payload):
        brand: str

    class V1b(Payload):
        brand: str = ""

    assert found(schema(V1), schema(V1b)) == {("brand", "required-removed")}
    assert found(obj({"b": STRING}, ("b",)), obj({"b": STRING})) == {("b", "required-removed")}


def test_changing_a_default_changes_what_an_event_that_omits_the_field_means():
    class V1(Payload):
        currency: str = "CNY"

    class V1b(Payload):
        currency: str = "USD"

    class V1c(Payload):
        currency: str | None = None

    assert found(schema(V1), schema(V1b)) == {("currency", "default-changed")}
    [problem] = full_compatibility_problems(schema(V1), schema(V1b))
    assert '"CNY"' in problem.message and '"USD"' in problem.message
    assert ("currency", "default-changed") in found(schema(V1), schema(V1c))
    assert found(obj({"c": {"type": "integer", "default": 1}}), obj({"c": {"type": "integer", "default": 2}})) == {
        ("c", "default-changed")}


# --- types --------------------------------------------------------------------------------------------


def test_changing_a_type_breaks_readers_in_both_directions():
    class V1(Payload):
        actual_paid: Money

    class V1b(Payload):
        actual_paid: float

    assert found(schema(V1), schema(V1b)) == {("actual_paid", "type-changed")}
    assert found(obj({"n": STRING}), obj({"n": {"type": "boolean"}})) == {("n", "type-changed")}


def test_integer_to_number_widens_and_number_to_integer_narrows():
    class Count(Payload):
        parcels: int

    class Weight(Payload):
        parcels: float

    assert found(schema(Count), schema(Weight)) == {("parcels", "type-widened")}
    assert found(schema(Weight), schema(Count)) == {("parcels", "type-narrowed")}


def test_accepting_null_widens_and_refusing_it_narrows():
    # Both stay optional, so only the null itself is at stake.
    class Required(Payload):
        phone: str = ""

    class Nullable(Payload):
        phone: str | None = ""

    assert found(schema(Required), schema(Nullable)) == {("phone", "type-widened")}
    assert found(schema(Nullable), schema(Required)) == {("phone", "type-narrowed")}
    [problem] = full_compatibility_problems(schema(Nullable), schema(Required))
    assert "null" in problem.message
    assert found(obj({"p": STRING}), obj({"p": NULLABLE_STRING | {"default": None}})) >= {("p", "type-widened")}


def test_a_string_format_added_narrows_dropped_widens_and_changed_breaks_both():
    class Free(Payload):
        at: str

    class Stamp(Payload):
        at: AwareDatetime

    class Day(Payload):
        at: date

    assert found(schema(Free), schema(Stamp)) == {("at", "type-narrowed")}
    assert found(schema(Stamp), schema(Free)) == {("at", "type-widened")}
    assert found(schema(Stamp), schema(Day)) == {("at", "format-changed")}


def test_a_free_string_restricted_to_values_narrows_and_the_reverse_widens():
    class Free(Payload):
        status: str

    class Listed(Payload):
        status: Literal["pending", "released"]

    assert found(schema(Free), schema(Listed)) == {("status", "type-narrowed")}
    assert found(schema(Listed), schema(Free)) == {("status", "type-widened")}


def test_a_writer_branch_must_fit_one_of_the_readers_union_branches():
    old = obj({"v": {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 4}]}})
    fits = obj({"v": {"anyOf": [{"type": "string", "maxLength": 4}, {"type": "integer"}]}})
    longer = obj({"v": {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 8}]}})
    assert found(old, fits) == set()
    assert found(old, longer) == {("v", "constraint-widened")}


# --- enum and const -----------------------------------------------------------------------------------


class Decision(Payload):
    status: Literal["released", "rejected"]


class DecisionWithInspection(Payload):
    status: Literal["released", "rejected", "inspection"]


def test_an_enum_value_added_breaks_old_readers_reading_new_events():
    assert found(schema(Decision), schema(DecisionWithInspection)) == {("status", "enum-value-added")}
    [problem] = full_compatibility_problems(schema(Decision), schema(DecisionWithInspection))
    assert '"inspection"' in problem.message and "previous schema" in problem.message


def test_an_enum_value_removed_breaks_new_readers_reading_old_events():
    assert found(schema(DecisionWithInspection), schema(Decision)) == {("status", "enum-value-removed")}
    assert found({"enum": ["a", "b"]}, {"enum": ["a"]}) == {("$", "enum-value-removed")}


def test_a_const_changed_breaks_both_directions():
    class V1(Payload):
        kind: Literal["order"]

    class V1b(Payload):
        kind: Literal["purchase"]

    assert found(schema(V1), schema(V1b)) == {("kind", "const-changed")}


def test_json_equality_is_used_for_listed_values():
    assert found({"enum": [1, True]}, {"enum": [True, 1]}) == set()
    assert found({"enum": [1]}, {"enum": [True]}) == {("$", "type-changed")}


# --- constraints --------------------------------------------------------------------------------------


def test_a_tightened_bound_narrows_and_a_loosened_one_widens():
    class Loose(Payload):
        version: int = Field(ge=1)
        code: str = Field(max_length=32)

    class Tight(Payload):
        version: int = Field(ge=2)
        code: str = Field(max_length=16)

    assert found(schema(Loose), schema(Tight)) == {("version", "constraint-narrowed"), ("code", "constraint-narrowed")}
    assert found(schema(Tight), schema(Loose)) == {("version", "constraint-widened"), ("code", "constraint-widened")}
    [problem] = [p for p in full_compatibility_problems(schema(Loose), schema(Tight)) if p.field == "code"]
    assert "maxLength" in problem.message and "32" in problem.message and "16" in problem.message


def test_exclusive_and_inclusive_bounds_and_multiple_of():
    number = {"type": "number"}
    assert found(obj({"x": number | {"minimum": 0}}), obj({"x": number | {"exclusiveMinimum": 0}})) == {
        ("x", "constraint-narrowed")}
    assert found(obj({"x": number | {"multipleOf": 0.01}}), obj({"x": number | {"multipleOf": 0.1}})) == {
        ("x", "constraint-narrowed")}
    assert found(obj({"x": number | {"multipleOf": 0.1}}), obj({"x": number | {"multipleOf": 0.01}})) == {
        ("x", "constraint-widened")}


def test_a_pattern_added_narrows_dropped_widens_and_edited_breaks_both():
    class Free(Payload):
        hs_code: str

    class Ten(Payload):
        hs_code: str = Field(pattern=r"^\d{10}$")

    class Twelve(Payload):
        hs_code: str = Field(pattern=r"^\d{12}$")

    assert found(schema(Free), schema(Ten)) == {("hs_code", "constraint-narrowed")}
    assert found(schema(Ten), schema(Free)) == {("hs_code", "constraint-widened")}
    assert found(schema(Ten), schema(Twelve)) == {("hs_code", "pattern-changed")}


def test_listed_values_are_checked_against_the_other_sides_constraints():
    # Restricting a free string to listed values always narrows (old events may carry any lowercase word);
    # whether new events still fit the old pattern depends on the values listed.
    lower = {"type": "string", "pattern": "^[a-z]+$"}
    assert found(lower, {"type": "string", "enum": ["ok", "yes"]}) == {("$", "type-narrowed")}
    assert found(lower, {"type": "string", "enum": ["ok", "NO"]}) == {("$", "type-narrowed"), ("$", "constraint-widened")}


# --- nested objects, arrays, maps ---------------------------------------------------------------------


class Line(Payload):
    item_no: str
    unit_price: Money


class Order(Payload):
    order_no: str
    items: list[Line]


class OrderEvent(Payload):
    order: Order


class LineNumber(Payload):
    item_no: str
    unit_price: float


class OrderNumber(Payload):
    order_no: str
    items: list[LineNumber]


class OrderEventNumber(Payload):
    order: OrderNumber


def test_nested_objects_through_refs_and_array_items_are_named_by_their_path():
    assert found(schema(OrderEvent), schema(OrderEventNumber)) == {("order.items[].unit_price", "type-changed")}


def test_array_items_and_item_counts():
    class Codes(Payload):
        codes: list[str]

    class Numbers(Payload):
        codes: list[int]

    class AtLeastOne(Payload):
        codes: list[str] = Field(min_length=1)

    assert found(schema(Codes), schema(Numbers)) == {("codes[]", "type-changed")}
    assert found(schema(Codes), schema(AtLeastOne)) == {("codes", "constraint-narrowed")}
    assert found(obj({"c": {"type": "array", "items": STRING}}), obj({"c": {"type": "array"}})) == {("c[]", "type-widened")}


def test_tuple_positions():
    class Pair(Payload):
        span: tuple[int, int]

    class PairStr(Payload):
        span: tuple[int, str]

    assert found(schema(Pair), schema(PairStr)) == {("span[1]", "type-changed")}


def test_map_values():
    class Labels(Payload):
        labels: dict[str, str]

    class Counts(Payload):
        labels: dict[str, int]

    assert found(schema(Labels), schema(Counts)) == {("labels.*", "type-changed")}


def test_a_changed_shared_definition_is_reported_at_every_field_that_uses_it():
    class Amount(Payload):
        value: Money

    class AmountCurrency(Payload):
        value: Money
        currency: str

    class Totals(Payload):
        freight: Amount
        tax_total: Amount

    class Totals2(Payload):
        freight: AmountCurrency
        tax_total: AmountCurrency

    assert found(schema(Totals), schema(Totals2)) == {("freight.currency", "required-field-added"),
                                                      ("tax_total.currency", "required-field-added")}


class Category(Payload):
    name: str
    parent: "Category | None" = None
    children: list["Category"] = []


class CategoryCoded(Payload):
    name: str
    code: int
    parent: "CategoryCoded | None" = None
    children: list["CategoryCoded"] = []


def test_recursive_models_terminate_and_are_compared():
    assert found(schema(Category), schema(Category)) == set()
    assert ("code", "required-field-added") in found(schema(Category), schema(CategoryCoded))


# --- additionalProperties -----------------------------------------------------------------------------


class Open(Payload):
    sku: str


class OpenKeeping(BaseModel):
    model_config = ConfigDict(extra="allow")  # writers send the extra fields they were given
    sku: str


class Shut(Closed):
    sku: str


def test_opening_a_closed_object_to_extra_properties_breaks_old_readers():
    assert found(schema(Shut), schema(OpenKeeping)) == {("$", "additional-properties-opened")}
    assert found(obj({}, additionalProperties=False), obj({}, additionalProperties={"type": "string"})) == {
        ("$", "additional-properties-opened")}


def test_closing_an_object_that_carried_extra_properties_breaks_new_readers_of_old_events():
    assert found(schema(OpenKeeping), schema(Shut)) == {("$", "additional-properties-closed")}


def test_extra_properties_that_readers_ignore_are_compatible():
    assert found(schema(Open), schema(OpenKeeping)) == set()
    assert found(schema(OpenKeeping), schema(Open)) == set()


# --- transitivity -------------------------------------------------------------------------------------


class Rev1(Payload):
    order_no: str
    note: str = ""


class Rev2(Payload):
    order_no: str
    note: str = ""
    channel: str | None = None


class Rev3(Payload):
    order_no: str
    note: str = ""
    channel: str | None = None
    country: str | None = None


def test_a_history_of_compatible_revisions_has_no_problem():
    assert history_problems([schema(Rev1), schema(Rev2)], schema(Rev3)) == []


def test_a_change_compatible_with_the_latest_revision_but_not_an_older_one_is_reported():
    # Revision 1 had an enum; revision 2 widened it (a mistake the gate would have caught then, say it was
    # forced through); revision 3 now matches revision 2 exactly, yet still breaks revision 1's readers.
    rev1 = obj({"status": {"type": "string", "enum": ["new", "cancelled"]}}, ("status",))
    rev2 = obj({"status": {"type": "string", "enum": ["new", "cancelled", "corrected"]}}, ("status",))
    rev3 = rev2
    assert full_compatibility_problems(rev2, rev3) == []
    [problem] = history_problems([rev1, rev2], rev3)
    assert (problem.field, problem.rule) == ("status", "enum-value-added")
    assert "revision(s) 0001 of 2" in problem.message and "new major version" in problem.message


def test_transitivity_with_pydantic_revisions():
    class Rev1Optional(Payload):
        order_no: str
        channel: str | None = None

    class Rev2Dropped(Payload):  # dropping an optional field is compatible with Rev1
        order_no: str

    class Rev3Reused(Payload):  # reusing the name with another type fits Rev2 (it ignores it), not Rev1
        order_no: str
        channel: int | None = None

    history = [schema(Rev1Optional), schema(Rev2Dropped)]
    assert history_problems(history[:1], schema(Rev2Dropped)) == []
    assert full_compatibility_problems(schema(Rev2Dropped), schema(Rev3Reused)) == []
    [problem] = history_problems(history, schema(Rev3Reused))
    assert (problem.field, problem.rule) == ("channel", "type-changed")
    assert "0001" in problem.message and "0002" not in problem.message


def test_a_problem_against_several_revisions_is_reported_once_naming_them_all():
    [problem] = history_problems([schema(Rev1), schema(Rev2)], schema(Rev1).copy() | {"required": ["order_no", "note"]})
    assert (problem.field, problem.rule) == ("note", "required-added")
    assert "0001, 0002 of 2" in problem.message


def test_unsupported_refs_are_refused_rather_than_guessed():
    with pytest.raises(ValueError, match="local"):
        full_compatibility_problems({"$ref": "https://example.com/schema.json"}, {"type": "string"})


# --- every rule once more, on hand-written schemas ----------------------------------------------------

CLOSED = {"additionalProperties": False}
INTEGER, NUMBER = {"type": "integer"}, {"type": "number"}
DEFS = {"Line": obj({"price": STRING}, ("price",))}
DEFS_NUMBER = {"Line": obj({"price": NUMBER}, ("price",))}

HAND_WRITTEN = {
    "field-removed (required)": (obj({"a": STRING, "b": STRING}, ("a", "b")), obj({"a": STRING}, ("a",)),
                                 {("b", "field-removed")}),
    "field-removed (closed object)": (obj({"a": STRING, "b": STRING}, **CLOSED), obj({"a": STRING}, **CLOSED),
                                      {("b", "field-removed")}),
    "field-added (closed object)": (obj({"a": STRING}, **CLOSED), obj({"a": STRING, "b": STRING}, **CLOSED),
                                    {("b", "field-added")}),
    "optional field added (open object)": (obj({"a": STRING}), obj({"a": STRING, "b": NULLABLE_STRING}), set()),
    "optional field removed (open object)": (obj({"a": STRING, "b": NULLABLE_STRING}), obj({"a": STRING}), set()),
    "required-field-added": (obj({"a": STRING}), obj({"a": STRING, "b": STRING}, ("b",)), {("b", "required-field-added")}),
    "required-added": (obj({"b": STRING}), obj({"b": STRING}, ("b",)), {("b", "required-added")}),
    "required-removed": (obj({"b": STRING}, ("b",)), obj({"b": STRING}), {("b", "required-removed")}),
    "default-changed": (obj({"c": STRING | {"default": "CNY"}}), obj({"c": STRING | {"default": "USD"}}),
                        {("c", "default-changed")}),
    "type-changed": (obj({"n": STRING}), obj({"n": {"type": "boolean"}}), {("n", "type-changed")}),
    "type-widened (integer to number)": (obj({"n": INTEGER}), obj({"n": NUMBER}), {("n", "type-widened")}),
    "type-narrowed (number to integer)": (obj({"n": NUMBER}), obj({"n": INTEGER}), {("n", "type-narrowed")}),
    "type-widened (null added)": (obj({"p": STRING | {"default": ""}}),
                                  obj({"p": {"anyOf": [STRING, {"type": "null"}], "default": ""}}),
                                  {("p", "type-widened")}),
    "type-narrowed (null removed)": (obj({"p": {"type": ["string", "null"]}}), obj({"p": STRING}),
                                     {("p", "type-narrowed")}),
    "type-narrowed (format added)": (obj({"at": STRING}), obj({"at": STRING | {"format": "date-time"}}),
                                     {("at", "type-narrowed")}),
    "type-widened (format dropped)": (obj({"at": STRING | {"format": "date-time"}}), obj({"at": STRING}),
                                      {("at", "type-widened")}),
    "format-changed": (obj({"at": STRING | {"format": "date-time"}}), obj({"at": STRING | {"format": "date"}}),
                       {("at", "format-changed")}),
    "type-narrowed (free string to listed values)": (obj({"s": STRING}), obj({"s": STRING | {"enum": ["a"]}}),
                                                     {("s", "type-narrowed")}),
    "enum-value-added": (obj({"s": STRING | {"enum": ["a"]}}), obj({"s": STRING | {"enum": ["a", "b"]}}),
                         {("s", "enum-value-added")}),
    "enum-value-removed": (obj({"s": STRING | {"enum": ["a", "b"]}}), obj({"s": STRING | {"enum": ["a"]}}),
                           {("s", "enum-value-removed")}),
    "const-changed": (obj({"k": STRING | {"const": "a"}}), obj({"k": STRING | {"const": "b"}}), {("k", "const-changed")}),
    "enum-value-added (const to enum)": (obj({"k": {"const": "a"}}), obj({"k": {"enum": ["a", "b"]}}),
                                         {("k", "enum-value-added")}),
    "constraint-narrowed (maxLength lowered)": (obj({"c": STRING | {"maxLength": 32}}), obj({"c": STRING | {"maxLength": 16}}),
                                                {("c", "constraint-narrowed")}),
    "constraint-widened (minimum dropped)": (obj({"v": INTEGER | {"minimum": 1}}), obj({"v": INTEGER}),
                                             {("v", "constraint-widened")}),
    "constraint-narrowed (pattern added)": (obj({"h": STRING}), obj({"h": STRING | {"pattern": "^\\d{10}$"}}),
                                            {("h", "constraint-narrowed")}),
    "pattern-changed": (obj({"h": STRING | {"pattern": "^\\d{10}$"}}), obj({"h": STRING | {"pattern": "^\\d{12}$"}}),
                        {("h", "pattern-changed")}),
    "nested through $ref and items": ({"$defs": DEFS, **obj({"lines": {"type": "array", "items": {"$ref": "#/$defs/Line"}}})},
                                      {"$defs": DEFS_NUMBER, **obj({"lines": {"type": "array", "items": {"$ref": "#/$defs/Line"}}})},
                                      {("lines[].price", "type-changed")}),
    "constraint-narrowed (minItems raised)": (obj({"l": {"type": "array", "items": STRING}}),
                                              obj({"l": {"type": "array", "items": STRING, "minItems": 1}}),
                                              {("l", "constraint-narrowed")}),
    "additional-properties-opened": (obj({}, **CLOSED), obj({}, additionalProperties=True),
                                     {("$", "additional-properties-opened")}),
    "additional-properties-closed": (obj({}, additionalProperties=True), obj({}, **CLOSED),
                                     {("$", "additional-properties-closed")}),
    "closing an object writers sent no extras in": (obj({"a": STRING}), obj({"a": STRING}, **CLOSED), set()),
    "map values": (obj({"m": {"type": "object", "additionalProperties": STRING}}),
                   obj({"m": {"type": "object", "additionalProperties": INTEGER}}), {("m.*", "type-changed")}),
}


@pytest.mark.parametrize("case", HAND_WRITTEN)
def test_hand_written_schemas(case):
    old, new, expected = HAND_WRITTEN[case]
    assert found(old, new) == expected
