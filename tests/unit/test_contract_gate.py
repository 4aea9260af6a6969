"""The compatibility gate of `make test`: every event type's schema, as the models generate it now, must be
FULL-compatible with every published revision of its major (contracts/schemas/history/<type>.v<major>/).

A breaking change to a v1 model fails here, naming the event type, the field and the rule; the way out is
a new major version on its own topic, never an edit of v1. The schema is generated exactly as
`python -m tooling.contracts.publish` publishes it (`event_schema`, then `revision_of`)."""
from __future__ import annotations

import dataclasses

import pytest
from pydantic import BaseModel, create_model

from tooling.contracts import publish
from tooling.contracts.compat import Problem, history_problems
from contracts.topics import EVENT_TYPES, EventType
from contracts.v1 import events as v1


def gate(et: EventType) -> list[Problem]:
    history = [revision for _, revision in publish.binding_revisions(publish.published_revisions(et))]
    return history_problems(history, publish.revision_of(publish.event_schema(et)))


def report(et: EventType, problems: list[Problem]) -> str:
    lines = [f"- {publish.event_id(et)}, rule {p.rule}: {p.message}" for p in problems]
    return (f"{len(problems)} incompatible change(s) to the published event {et.name} version {et.version} "
            f"(history in {publish.relative(publish.history_dir(et))}):\n" + "\n".join(lines))


@pytest.mark.parametrize("key", sorted(EVENT_TYPES), ids=lambda k: f"{k[0]}.v{k[1]}")
def test_every_event_schema_is_full_compatible_with_every_published_revision_of_its_major(key):
    et = EVENT_TYPES[key]
    assert publish.published_revisions(et), (
        f"{publish.event_id(et)} has no published revision in {publish.relative(publish.history_dir(et))}: "
        f"run `{publish.FIX}` and check the files in")
    problems = gate(et)
    assert not problems, report(et, problems)


@pytest.mark.parametrize("key", sorted(EVENT_TYPES), ids=lambda k: f"{k[0]}.v{k[1]}")
def test_each_published_revision_is_compatible_with_the_ones_before_it(key):
    # The history is append-only; a revision edited by hand to let a breaking change through shows here.
    et = EVENT_TYPES[key]
    # An acknowledged break (NNNN.acknowledged.json, `--acknowledge REASON`) must waive exactly the problems
    # the revision has, with a reason: editing the note to hide another break shows here too.
    revisions = publish.published_revisions(et)
    for n in range(1, len(revisions)):
        problems = history_problems([r for _, r in publish.binding_revisions(revisions[:n])], revisions[n][1])
        note = publish.acknowledgement_of(revisions[n][0])
        if note is not None:
            assert note["reason"].strip(), f"{publish.relative(revisions[n][0])}: an acknowledgement needs a reason"
            assert note["problems"] == sorted(f"{p.field}: {p.rule}" for p in problems), (
                f"{publish.relative(revisions[n][0])}: the acknowledgement does not list the problems it waives")
            continue
        assert not problems, f"{publish.relative(revisions[n][0])}:\n" + report(et, problems)


# --- the gate can fail: incompatible variants of the real OrderSubmitted v1 --------------------------


ORDER_SUBMITTED_V1 = EVENT_TYPES[("order.submitted", 1)]


def order_event_with(order_model: type[BaseModel]) -> EventType:
    """order.submitted v1 as it would be if `contracts.v1.events.Order` were `order_model`."""
    event_model = create_model("OrderSubmitted", __base__=v1.OrderSubmitted, __doc__=v1.OrderSubmitted.__doc__,
                               order=(order_model, ...))
    return dataclasses.replace(ORDER_SUBMITTED_V1, model=event_model)


def order_without(*names: str) -> type[BaseModel]:
    kept = {name: (info.annotation, info) for name, info in v1.Order.model_fields.items() if name not in names}
    return create_model("Order", __base__=v1.Payload, **kept)


def test_an_unchanged_copy_of_the_order_event_passes_the_gate():
    # So that the failures below come from the change, not from how the variants are built.
    assert gate(order_event_with(order_without())) == []


def test_removing_tax_total_from_the_v1_order_fails_the_gate_naming_the_field():
    variant = order_event_with(order_without("tax_total"))
    problems = gate(variant)
    assert [(p.field, p.rule) for p in problems] == [("order.tax_total", "field-removed")]
    message = report(variant, problems)
    assert "order.submitted.v1" in message and "`order.tax_total`" in message and "rule field-removed" in message
    assert "new major version" in message


def test_turning_actual_paid_into_a_number_fails_the_gate_naming_the_field():
    class FloatOrder(v1.Order):
        actual_paid: float

    problems = gate(order_event_with(FloatOrder))
    assert [(p.field, p.rule) for p in problems] == [("order.actual_paid", "type-changed")]
    assert "`order.actual_paid`" in problems[0].message and "string" in problems[0].message


def test_a_new_enum_value_in_a_nested_v1_field_fails_the_gate():
    from typing import Literal

    class MoreTradeModes(v1.Order):
        trade_mode: Literal["9610", "1210", "9710", "9810", "0110"]

    problems = gate(order_event_with(MoreTradeModes))
    assert [(p.field, p.rule) for p in problems] == [("order.trade_mode", "enum-value-added")]
    assert '"0110"' in problems[0].message


def test_an_optional_field_added_to_the_v1_order_passes_the_gate():
    class OrderWithNote(v1.Order):
        note: str | None = None

    assert gate(order_event_with(OrderWithNote)) == []
