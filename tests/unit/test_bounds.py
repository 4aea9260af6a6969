"""Spec §2 (version 1.1), bounds on input: money, quantities and times in every body and every event, the
published schemas saying the same, and the order's sum check staying exact and fast with the largest
values. The failing examples of issue 9 are here by name; the property tests show the code and the
published patterns agree on every string, and that no input makes a value type fail other than by
refusing it."""
from __future__ import annotations

import json
import re
import time
import typing
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from contracts import types
from tooling.contracts import publish
from contracts.topics import EVENT_TYPES
from contracts.types import Money, Quantity, Timestamp
from contracts.v1 import documents
from contracts.v1.documents import OrderIn, PaymentIn, TrackingEventIn, WaybillIn
from services.gateway.rules import reference_problems
from shared.http import validation_errors
from shared.reference import FxRates
from tests.support import new_uscc, order_body, payment_body, waybill_body

QUANTITY = TypeAdapter(Quantity)
MONEY = TypeAdapter(Money)
TIME = TypeAdapter(Timestamp)


def refused(adapter: TypeAdapter, value: object) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return True
    return False


def order(**kw) -> dict:  # noqa: ANN003
    return order_body(new_uscc(), new_uscc(), "ORD-1", **kw)


def line(quantity: object, unit_price: str = "10.00", item_no: str = "SKU-1") -> dict:
    return {"item_no": item_no, "name": "Face cream", "hs_code": "3304990099", "quantity": quantity, "unit": "piece",
            "unit_price": unit_price, "origin_country": "FR"}


def errors_of(model: type[BaseModel], body: dict) -> list[str]:
    """The fields a 422 would name (`errors[].field`, as the gateway reports them)."""
    try:
        model.model_validate(body)
    except ValidationError as err:
        return [e["field"] for e in validation_errors(list(err.errors()))]
    return []


# --- the failing examples of issue 9 ------------------------------------------------------------------


def test_a_quantity_in_exponent_notation_is_refused_even_at_a_zero_price():
    body = order(items=[line("0", "0.00")])
    body["items"][0]["quantity"] = "1E+999999"
    assert "items[0].quantity" in errors_of(OrderIn, body)


def test_a_customs_style_or_numeric_paid_at_is_refused_never_read_as_a_unix_time():
    body = payment_body(new_uscc(), order())
    for paid_at in ("20261124100000", 20261124100000, 1764000000, "1764000000", 1764000000.5):
        body["paid_at"] = paid_at
        assert errors_of(PaymentIn, body) == ["paid_at"], paid_at


@pytest.mark.parametrize("at", ["20261124100000", 1764000000, "2026-11-24T10:00:00", "2026-11-24", "10:00:00+08:00",
                                "2026-11-24 10:00:00+08:00", "2026-11-24T10:00+08:00", "2026-13-24T10:00:00Z"])
def test_a_tracking_event_time_must_be_rfc3339_with_an_offset(at):
    assert errors_of(TrackingEventIn, {"event": "picked_up", "at": at}) == ["at"]


@pytest.mark.parametrize("quantity, unit_price", [("1.00000", "10.00"), ("1.0000000000", "10.00"),
                                                   ("0.00001", "100000.00"), ("2.50000", "10.00"),
                                                   ("999999999.99999", "0.00"), ("007", "10.00")])
def test_five_decimals_and_trailing_zeros_are_accepted(quantity, unit_price):
    body = order(items=[line(quantity, unit_price)])
    assert errors_of(OrderIn, body) == []
    assert OrderIn.model_validate(body).items[0].quantity == Decimal(quantity)


@pytest.mark.parametrize("quantity", ["1E+3", "1e3", "1.000001", "1000000000", 1000000000, "0", 0, "-1", " 1", "1.",
                                      ".5", "NaN", "Infinity", "+1", "1_000", 2.5, True, "9" * 5000, "1" + "0" * 40])
def test_quantities_out_of_bounds_are_refused_with_422_not_an_overflow(quantity):
    body = order()
    body["items"][0]["quantity"] = quantity
    assert "items[0].quantity" in errors_of(OrderIn, body)


@pytest.mark.parametrize("amount", ["1.000", "1E+2", "1000000000000", "-1.00", "-0.00", "NaN", 12, 12.5, "1,00",
                                    "９.00"])
def test_money_out_of_bounds_is_refused(amount):
    assert refused(MONEY, amount)


@pytest.mark.parametrize("amount", ["0", "0.00", "999999999999.99", "000000000000012.30", "12.3"])
def test_money_within_bounds_is_accepted(amount):
    assert MONEY.validate_python(amount) == Decimal(amount)


def test_an_order_has_at_most_100_lines():
    hundred = [line(1, "1.00", f"SKU-{i}") for i in range(100)]
    assert errors_of(OrderIn, order(items=hundred)) == []
    assert "items" in errors_of(OrderIn, order(items=hundred + [line(1, "1.00", "SKU-100")]))


def test_the_sum_check_is_exact_and_fast_with_the_largest_values():
    # 100 lines of the largest quantity at the largest price: products of 28 digits, a sum of 31 digits,
    # more than the default decimal context (28) holds; one cent off must still be caught.
    items = [line("999999999.99999", "999999999999.99", f"SKU-{i}") for i in range(100)]
    body = order(items=items, freight="0.00", discount="0.00", tax_total="0.00")
    with types.exact():
        exact = Decimal("999999999.99999") * Decimal("999999999999.99") * 100
    body["actual_paid"] = "999999999999.99"
    started = time.perf_counter()
    problems = errors_of(OrderIn, body)
    assert time.perf_counter() - started < 0.5
    assert problems == ["actual_paid"]
    assert exact > Decimal("1e22")  # far beyond what actual_paid can say: refused, never rounded into a match


def test_money_and_quantities_are_written_without_exponent_notation():
    assert MONEY.dump_json(Decimal("1E+2")) == b'"100.00"'
    assert QUANTITY.dump_json(QUANTITY.validate_python("100.00000")) == b'"100"'
    assert QUANTITY.dump_json(QUANTITY.validate_python("0.00010")) == b'"0.0001"'


def test_times_keep_their_offset_and_refuse_instants_no_time_zone_can_show():
    assert TIME.validate_python("2026-11-24T10:00:00+08:00") == datetime(2026, 11, 24, 2, tzinfo=timezone.utc)
    assert TIME.dump_json(TIME.validate_python("2026-11-24t10:00:00z")) == b'"2026-11-24T10:00:00Z"'
    assert refused(TIME, "9999-12-31T23:00:00Z")  # China time would be in the year 10000
    assert refused(TIME, datetime(2026, 11, 24))  # naive, even from our own code


# --- every number and time field of every body and event follows §2 ----------------------------------


BOUNDED_DECIMALS = {types.MONEY, types.QUANTITY, types.TOTAL, types.SIGNED_TOTAL, types.TAX_LINE,
                    types.QUANTITY_TOTAL, types.RATE, types.SCORE}


def _fields(model: type[BaseModel], seen: set | None = None):
    seen = seen if seen is not None else set()
    if model in seen:
        return
    seen.add(model)
    for name, field in model.model_fields.items():
        yield model, name, field
        for arg in _flatten(field.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                yield from _fields(arg, seen)


def _flatten(annotation):  # noqa: ANN001, ANN202
    yield annotation
    for arg in typing.get_args(annotation):
        yield from _flatten(arg)


def _validators(field) -> list:  # noqa: ANN001
    # On the field itself, or inside an Annotated within `X | None`.
    return [getattr(m, "func", None) for m in [*field.metadata, *_flatten(field.annotation)]]


MODELS = [et.model for et in EVENT_TYPES.values()] + [OrderIn, PaymentIn, WaybillIn, TrackingEventIn,
                                                       documents.EnterpriseRegistration]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_decimal_and_time_field_is_a_bounded_type(model):
    for owner, name, field in _fields(model):
        kinds = set(_flatten(field.annotation))
        where = f"{owner.__name__}.{name}"
        if Decimal in kinds:
            bounds = {getattr(v, "__self__", None) for v in _validators(field)}
            assert bounds & BOUNDED_DECIMALS, f"{where} is a Decimal without spec §2 bounds"
        if datetime in kinds:
            assert types.parse_timestamp in _validators(field), f"{where} is a time that is not a Timestamp"
        if int in kinds and name not in ("index",):
            found = [*field.metadata, *_flatten(field.annotation)]
            found += [c for m in found if isinstance(m, FieldInfo) for c in m.metadata]
            constraints = {type(m).__name__ for m in found}
            assert {"Ge", "Le"} <= constraints or "Interval" in constraints, f"{where} is an unbounded integer"


def _schema_nodes(node, path="$"):  # noqa: ANN001, ANN202
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            if k != "examples":
                yield from _schema_nodes(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _schema_nodes(v, f"{path}[{i}]")


def test_the_published_schemas_say_the_same():
    schemas = {path.name: json.loads(path.read_text()) for path in publish.EVENTS.glob("*.json")}
    schemas["openapi.json"] = json.loads(publish.OPENAPI_FILE.read_text())
    schemas["envelope.v1.json"] = json.loads(publish.ENVELOPE_FILE.read_text())
    for name, schema in schemas.items():
        for path, node in _schema_nodes(schema):
            if node.get("format") == "date-time":
                assert node.get("pattern") == types.RFC3339_PATTERN, f"{name} {path}: a time without the pattern"
            if node.get("type") == "number":
                raise AssertionError(f"{name} {path}: a JSON number (money and quantities travel as strings)")
            if node.get("type") == "integer" and name != "openapi.json":
                assert "maximum" in node, f"{name} {path}: an integer without a maximum"
            if node.get("type") == "string" and "pattern" not in node and "enum" not in node and "const" not in node:
                assert "format" not in node or node["format"] in ("uuid",), f"{name} {path}"
    openapi = schemas["openapi.json"]["components"]["schemas"]
    assert openapi["OrderIn"]["properties"]["items"]["maxItems"] == 100
    for event in ("order.submitted.v1.json", "order.submitted.v2.json"):
        defs = schemas[event]["$defs"]
        order_def = defs.get("Order") or defs.get("OrderV2")
        assert order_def["properties"]["items"]["maxItems"] == 100


# --- the code and the published patterns agree -------------------------------------------------------


DECIMALISH = st.one_of(
    st.from_regex(r"\A[-+]?\d{0,14}(\.\d{0,9})?([eE][-+]?\d{1,7})?\Z"),
    st.from_regex(r"\A0*\d{1,13}(\.\d{1,6}0{0,30})?\Z"),
    st.sampled_from(["1E+999999", "NaN", "-0", "sNaN", "Infinity", "1.00000", "0.000010", "١٢"]),
    st.text(max_size=20),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(DECIMALISH)
def test_quantity_and_money_strings_are_accepted_exactly_when_the_published_pattern_matches(text):
    for adapter, bounds in ((QUANTITY, types.QUANTITY), (MONEY, types.MONEY)):
        try:
            value = adapter.validate_python(text)
        except ValidationError:
            accepted = False
        else:
            accepted = True
            written = json.loads(adapter.dump_json(value))
            assert re.fullmatch(bounds.written_pattern(), written, re.ASCII), written
            assert adapter.validate_python(written) == value  # what we write, we read back the same
        # Beyond the pattern, a quantity of 0 is refused (more than 0) — a bound the pattern cannot say.
        # re.ASCII: a JSON Schema (ECMA-262) \\d is 0-9 only, Python's would take "٠".
        expected = re.fullmatch(bounds.pattern(), text, re.ASCII) is not None and not (
            bounds.positive and Decimal(text) == 0)
        assert accepted == expected, (text, bounds.what)


@given(st.one_of(st.integers(), st.floats(allow_nan=True), st.booleans(), st.none(), st.decimals(),
                 st.lists(st.integers(), max_size=2), st.datetimes(), st.dates()))
def test_any_other_value_is_refused_or_accepted_never_crashes(value):
    for adapter in (QUANTITY, MONEY, TIME):
        try:
            adapter.validate_python(value)
        except ValidationError:
            pass


@settings(max_examples=300)
@given(st.datetimes(min_value=datetime(1, 1, 3), max_value=datetime(9999, 12, 29),
                    timezones=st.sampled_from([timezone.utc, datetime.now().astimezone().tzinfo])),
       st.booleans())
def test_a_time_written_is_read_back_the_same_and_matches_the_pattern(moment, as_text):
    value = TIME.validate_python(moment.isoformat() if as_text else moment)
    written = json.loads(TIME.dump_json(value))
    assert re.fullmatch(types.RFC3339_PATTERN, written, re.ASCII)
    assert TIME.validate_python(written) == moment


# --- the currency: one list, the reference rate table --------------------------------------------------


RATES = FxRates([(date(2026, 1, 1), "USD", Decimal("7.1")), (date(2026, 3, 1), "EUR", Decimal("7.7"))])


def test_a_currency_the_rate_table_cannot_convert_is_refused_naming_currency():
    doc = OrderIn.model_validate(order(currency="XYZ"))
    assert [p["field"] for p in reference_problems(doc, RATES, date(2026, 11, 29))] == ["currency"]
    for known in ("CNY", "USD", "EUR"):
        doc = OrderIn.model_validate(order(currency=known))
        assert reference_problems(doc, RATES, date(2026, 11, 29)) == []


def test_a_payment_before_the_first_rate_of_its_currency_or_of_usd_is_refused_naming_paid_at():
    body = payment_body(new_uscc(), order(currency="EUR"))
    for paid_at, problems in (("2026-02-28T12:00:00+08:00", ["paid_at"]), ("2026-03-01T00:30:00+08:00", []),
                              ("2026-02-28T23:30:00+00:00", []),  # 1 March in China
                              ("2025-12-31T12:00:00+08:00", ["paid_at"])):
        body["paid_at"] = paid_at
        doc = PaymentIn.model_validate(body)
        assert [p["field"] for p in reference_problems(doc, RATES, date(2026, 11, 29))] == problems, paid_at
    body = {**body, "currency": "CNY", "paid_at": "2025-12-31T12:00:00+08:00"}  # FX still needs a USD rate
    assert [p["field"] for p in reference_problems(PaymentIn.model_validate(body), RATES, date(2026, 11, 29))] == [
        "paid_at"]


def test_the_accepted_currencies_are_the_reference_rate_table():
    from shared.reference import fx_rates, reference_dir  # noqa: PLC0415

    in_file = {row.split(",")[1] for row in (reference_dir() / "fx_rates.csv").read_text().splitlines()[1:] if row}
    assert fx_rates().currencies() == in_file | {"CNY"}


def test_waybill_weights_and_counts_are_bounded():
    body = waybill_body(new_uscc(), order())
    for weight, ok in (("0.45", True), ("0.000001", False), ("1E+3", False), ("1000000000", False), (3, True)):
        assert (errors_of(WaybillIn, {**body, "gross_weight_kg": weight}) == []) is ok, weight
    assert errors_of(WaybillIn, {**body, "package_count": 10001}) == ["package_count"]



@pytest.mark.parametrize("code", ["a/b", "x?y", "p q", "ÄÖ", "a%2Fb", ""])
def test_a_foreign_enterprise_code_is_one_a_path_can_carry(code):
    """Codes travel in paths (/v1/orders/{platform_code}/…): 'a/b' was registered, then none of its own
    paths could reach it (found by a newcomer's attempt)."""
    from contracts.v1.documents import EnterpriseRegistration  # noqa: PLC0415

    with pytest.raises(ValidationError):
        EnterpriseRegistration.model_validate({"code": code, "name": "X", "roles": ["platform"], "country": "US"})
    assert EnterpriseRegistration.model_validate(
        {"code": "US-Shop_1.co", "name": "X", "roles": ["platform"], "country": "US"}).code == "US-Shop_1.co"


def test_text_with_a_nul_character_is_refused_in_every_body():
    from contracts.v1.documents import OrderIn  # noqa: PLC0415
    from tests.support import order_body  # noqa: PLC0415

    body = order_body("91330100MA27U8AA1U", "91330100MA27U8AA1U", "ORD-NUL-1")
    body["items"][0]["name"] = "Cream\x00"
    with pytest.raises(ValidationError) as err:
        OrderIn.model_validate(body)
    assert "NUL" in str(err.value)
