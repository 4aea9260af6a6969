"""Value types shared by every contract: money, quantities, codes, identity numbers."""
from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, WithJsonSchema

from contracts.identifiers import mask_id_number

CENT = Decimal("0.01")


def _parse_money(value: Any) -> Decimal:
    # Money travels as a decimal string; a JSON number (a float on most platforms) is refused
    # so that no rounding can happen before we see the value.
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        if not re.fullmatch(r"-?\d+(\.\d{1,2})?", value.strip()):
            raise ValueError('expected a decimal string with at most 2 decimals, such as "123.40"')
        amount = Decimal(value.strip())
    else:
        raise ValueError('expected a decimal string with at most 2 decimals, such as "123.40", not a number')
    if amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError("expected at most 2 decimals")
    if amount < 0:
        raise ValueError("expected an amount of 0 or more")
    return amount


def format_money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


Money = Annotated[
    Decimal,
    BeforeValidator(_parse_money),
    PlainSerializer(format_money, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d{1,2})?$", "examples": ["123.40"]}),
]


def _parse_quantity(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("expected a positive integer or decimal string")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError("expected a positive integer or decimal string") from None
        if not amount.is_finite():
            raise ValueError("expected a positive integer or decimal string")
    else:
        raise ValueError("expected a positive integer or decimal string, not a float")
    if amount <= 0:
        raise ValueError("expected a quantity greater than 0")
    if amount.as_tuple().exponent < -4:  # type: ignore[operator]
        raise ValueError("expected at most 4 decimals")
    return amount


def _format_quantity(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


Quantity = Annotated[
    Decimal,
    BeforeValidator(_parse_quantity),
    PlainSerializer(_format_quantity, return_type=str, when_used="json"),
    # Accepted as an integer or a decimal string; always written as a string.
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1},
                              {"type": "string", "pattern": r"^\d+(\.\d{1,4})?$"}], "examples": [2, "0.45"]},
                   mode="validation"),
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d{1,4})?$", "examples": ["2"]}, mode="serialization"),
]


def _hs_code(value: str) -> str:
    if not re.fullmatch(r"\d{10}", value):
        raise ValueError("expected a 10-digit HS code")
    return value


HsCode = Annotated[str, AfterValidator(_hs_code), WithJsonSchema({"type": "string", "pattern": r"^\d{10}$"})]


def _country(value: str) -> str:
    if not re.fullmatch(r"[A-Z]{2}", value):
        raise ValueError("expected an ISO 3166-1 alpha-2 country code such as CN")
    return value


Country = Annotated[str, AfterValidator(_country), WithJsonSchema({"type": "string", "pattern": "^[A-Z]{2}$"})]


def _currency(value: str) -> str:
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise ValueError("expected an ISO 4217 currency code such as CNY")
    return value


Currency = Annotated[str, AfterValidator(_currency), WithJsonSchema({"type": "string", "pattern": "^[A-Z]{3}$"})]


def _masked(value: str) -> str:
    # Always masked again, never trusted because it already holds a '*': masking is idempotent, so a
    # properly masked value is unchanged, while a full number or a half-masked one from a careless producer
    # (`E123*5678`, the 1.0 form of a passport) is cut down to what spec §7.2 lets non-customs readers see.
    return mask_id_number(value)


MaskedIdNumber = Annotated[str, AfterValidator(_masked), Field(description=(
    "the identity number as every party but customs sees it (spec §7.2): at most its first 4 and last 4 "
    "characters shown and at least half masked with '*' (resident id 1101**********0011); a number shorter "
    "than 12 characters shows only its last 2 (passport *******78). Readers mask the value again on receipt."))]
