"""Spec 1.1 §3, §7.5: a registration may carry the enterprise's 10-character customs registration code
(海关注册编码): upper-case letters and digits, anything else refused with a 422 naming `customs_code`; the
published schema states the pattern; the registration event carries it (optional, compatible)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from contracts.v1.documents import CUSTOMS_CODE_PATTERN, EnterpriseRegistration
from contracts.v1.events import EnterpriseRegistered
from services.gateway.intake import parse
from shared.http import Problem

SCHEMAS = Path(__file__).resolve().parents[2] / "contracts" / "schemas"
USCC = "91330100MA27U8AA1U"


def registration(**extra: object) -> dict:
    return {"code": USCC, "name": "Hangzhou Example Trading Co., Ltd.", "roles": ["platform"], **extra}


def refusal(body: dict) -> Problem:
    with pytest.raises(Problem) as err:
        parse(EnterpriseRegistration, body)
    return err.value


@pytest.mark.parametrize("code", ["1105910159", "3120961ZB3", "ABCDEFGHIJ"])
def test_a_customs_code_of_ten_upper_case_letters_or_digits_is_taken(code):
    assert parse(EnterpriseRegistration, registration(customs_code=code)).customs_code == code


def test_the_customs_code_is_optional():
    assert parse(EnterpriseRegistration, registration()).customs_code is None
    assert parse(EnterpriseRegistration, registration(customs_code=None)).customs_code is None


@pytest.mark.parametrize("code", [
    "110591015",       # 9 characters
    "11059101590",     # 11
    "",                # empty
    "3120961zb3",      # lower case: refused, not folded (customs issues codes upper-case)
    "1105-10159",      # punctuation
    "11059１0159",     # a full-width digit
])
def test_a_customs_code_that_is_not_ten_upper_case_letters_or_digits_is_422_naming_it(code):
    problem = refusal(registration(customs_code=code))
    assert problem.status == 422
    assert [(e["field"], e["code"]) for e in problem.errors] == [("customs_code", "invalid_customs_code")]
    assert "10-character customs registration code" in problem.errors[0]["message"]


def test_a_customs_code_that_is_not_text_is_422_naming_it():
    problem = refusal(registration(customs_code=1105910159))
    assert problem.status == 422 and [e["field"] for e in problem.errors] == ["customs_code"]


def test_the_published_schema_states_the_pattern():
    """What the gateway refuses, the published OpenAPI refuses too (a client validating before sending)."""
    schema = json.loads((SCHEMAS / "openapi.json").read_text())["components"]["schemas"]["EnterpriseRegistration"]
    field = schema["properties"]["customs_code"]
    assert field["pattern"] == CUSTOMS_CODE_PATTERN and field["minLength"] == field["maxLength"] == 10
    assert "customs_code" not in schema["required"]
    validator = Draft202012Validator(schema)
    assert validator.is_valid(registration(customs_code="1105910159"))
    assert validator.is_valid(registration(customs_code=None))
    for bad in ("110591015", "3120961zb3", "11059101590"):
        assert not validator.is_valid(registration(customs_code=bad)), bad


def test_the_registration_event_carries_it_and_an_old_event_still_reads():
    reg = parse(EnterpriseRegistration, registration(customs_code="1105910159"))
    event = EnterpriseRegistered(**reg.model_dump(), registered_at="2026-11-29T10:00:00+08:00")
    assert event.model_dump(mode="json")["customs_code"] == "1105910159"
    old = {"code": USCC, "name": "X", "roles": ["platform"], "country": "CN", "customs_credit": "general",
           "registered_at": "2026-11-29T10:00:00+08:00"}
    assert EnterpriseRegistered.model_validate(old).customs_code is None
    published = json.loads((SCHEMAS / "events" / "enterprise.registered.v1.json").read_text())
    assert "customs_code" not in published.get("required", [])
    assert Draft202012Validator(published).is_valid(event.model_dump(mode="json"))
    assert Draft202012Validator(published).is_valid(old)
