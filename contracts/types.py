"""Value types shared by every contract: money, quantities, times, codes, identity numbers.

The bounds are spec §2 (version 1.1), and every body and every event uses these types, so one rule holds
on the way in and on every topic:

- money (`Money`): a decimal *string* (never a JSON number), at most 2 decimals, at most 12 digits
  before the point, 0 or more;
- quantities (`Quantity`): an integer or a decimal string, more than 0, at most 5 decimal places (trailing
  zeros beyond them, "1.0000000", are never refused: they change nothing), at most 9 digits before the
  point; exponent notation ("1E+3"), signs, spaces, NaN and Infinity are refused;
- times (`Timestamp`): RFC 3339 with an offset (`2026-11-24T10:00:00+08:00`, `…Z`), nothing else: a bare
  number or customs' `20261124100000` is refused, never read as a Unix time.

Leading zeros are not digits of the value ("007" has 1 digit before the point). Amounts the agencies
derive (conversions, sums over a month or a year, tax line amounts, rates, scores) have their own, wider
types below, bounded by the database columns that hold them (NUMERIC(18, 2) and the like), so that
nothing an agency writes can be refused by its own database or by a reader of its topic.

Every value is checked before any arithmetic: a string of a million digits is refused by its length
and shape, never turned into a Decimal. Sums over validated values run in `exact()`, a decimal context
wide enough that they are exact and that traps any rounding.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import (
    ROUND_HALF_UP,
    Clamped,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Underflow,
    localcontext,
)
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, WithJsonSchema

from contracts.identifiers import mask_id_number

CENT = Decimal("0.01")

# Spec §2 (version 1.1).
MONEY_INTEGER_DIGITS = 12
MONEY_DECIMALS = 2
QUANTITY_INTEGER_DIGITS = 9
QUANTITY_DECIMALS = 5
ORDER_MAX_LINES = 100

# What agencies derive, bounded by the columns that hold it: NUMERIC(18, 2) for amounts (16 digits
# before the point), NUMERIC(18, 5) for monthly quantities, NUMERIC(18, 8) for rates, NUMERIC(12, 2) for
# credit scores; tax line amounts keep up to 10 decimals (services/tax/rules.line_amount).
TOTAL_INTEGER_DIGITS = 16
QUANTITY_TOTAL_INTEGER_DIGITS = 13
TAX_LINE_DECIMALS = 10
RATE_INTEGER_DIGITS = 10
RATE_DECIMALS = 8
SCORE_INTEGER_DIGITS = 10

# Wide enough for any sum or product of the values above (a 100-line order: 9+5 digits times 12+2,
# summed 100 times, is under 35 digits), and every rounding or overflow is an error, never silent.
_EXACT = Context(prec=60, Emax=99, Emin=-99, traps=[Inexact, Overflow, Underflow, InvalidOperation,
                                                     DivisionByZero, Clamped])


@contextmanager
def exact() -> Iterator[Context]:
    """A decimal context for sums and products of bounded values (an order's lines, its total): 60
    significant digits, exponents within ±99. Anything that would round, overflow or be invalid raises
    (`decimal.Inexact`, `Overflow`, `InvalidOperation`: ArithmeticError) instead of giving a wrong answer,
    and no operation can grow slow, since no operand may have more than 60 digits."""
    with localcontext(_EXACT) as ctx:
        yield ctx


# --- decimals ------------------------------------------------------------------------------------------


# ASCII digits only: Python's \d (and Decimal) would take "９" or "١", which JSON Schema patterns do not.
_DECIMAL = re.compile(r"(-)?([0-9]+)(?:\.([0-9]+))?")


@dataclass(frozen=True)
class DecimalBounds:
    """The shape of one kind of decimal: how many digits before the point (leading zeros not counted),
    how many decimals, whether it may be negative or zero, whether a JSON integer or only a string is
    accepted, whether zeros beyond `decimals` are tolerated (quantities), and the example in messages."""

    what: str  # "amount", "quantity", …: the noun of error messages
    integer_digits: int
    decimals: int
    example: str
    signed: bool = False
    positive: bool = False  # more than 0 (else 0 or more, or any sign when `signed`)
    integers: bool = False  # a JSON integer is accepted besides a decimal string
    trailing_zeros: bool = False  # "1.0000000" accepted where `decimals` is 5

    def expected(self) -> str:
        kind = "an integer or a decimal string" if self.integers else "a decimal string"
        return (f"expected {kind} with at most {self.integer_digits} digits before the point and at most "
                f"{self.decimals} decimals, such as {self.example!r}")

    def parse(self, value: Any) -> Decimal:
        """The value as a Decimal, or ValueError saying what is expected. Never parses a string that does
        not have the shape of the pattern: no exponent, no sign unless signed, no space, no NaN."""
        if isinstance(value, bool) or isinstance(value, float):
            raise ValueError(f"{self.expected()}, not a {'boolean' if isinstance(value, bool) else 'JSON number'}")
        if isinstance(value, int):
            if not self.integers:
                raise ValueError(f"{self.expected()}, not a JSON number (so that nothing is rounded on the way)")
            if abs(value) >= 10 ** self.integer_digits:
                raise ValueError(f"{self.expected()}: {self.what} too large")
            return self._sign_checked(Decimal(value))
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise ValueError(f"{self.expected()}, not {value}")
            return self._checked(value)
        if not isinstance(value, str):
            raise ValueError(self.expected())
        match = _DECIMAL.fullmatch(value)
        if match is None:
            raise ValueError(f"{self.expected()}; exponent notation, spaces and other signs are refused")
        sign, whole, fraction = match.group(1) or "", match.group(2).lstrip("0"), match.group(3) or ""
        if sign and not self.signed:
            raise ValueError(f"{self.expected()}: a negative {self.what} is refused")
        if len(whole) > self.integer_digits:
            raise ValueError(f"{self.expected()}: {self.what} too large")
        significant = fraction.rstrip("0") if self.trailing_zeros else fraction
        if len(significant) > self.decimals:
            raise ValueError(f"{self.expected()}: at most {self.decimals} decimals")
        # Built from the trimmed digits: a kept run of trailing zeros never reaches a Decimal.
        kept = significant if self.trailing_zeros else fraction
        return self._sign_checked(Decimal(f"{sign}{whole or '0'}{'.' + kept if kept else ''}"))

    def _checked(self, amount: Decimal) -> Decimal:
        # A Decimal built by our own code: the same bounds, read from the value itself.
        if not amount.is_zero() and amount.adjusted() >= self.integer_digits:
            raise ValueError(f"{self.expected()}: {self.what} too large")
        sign, digits, exponent = amount.as_tuple()
        assert isinstance(exponent, int)  # finite
        if self.trailing_zeros:
            while exponent < -self.decimals and len(digits) > 1 and digits[-1] == 0:
                digits, exponent = digits[:-1], exponent + 1
            amount = Decimal((sign, digits, exponent))
        if exponent < -self.decimals and not amount.is_zero():
            raise ValueError(f"{self.expected()}: at most {self.decimals} decimals")
        return self._sign_checked(amount)

    def _sign_checked(self, amount: Decimal) -> Decimal:
        if amount < 0 and not self.signed:
            raise ValueError(f"{self.expected()}: a negative {self.what} is refused")
        if self.positive and amount <= 0:
            raise ValueError(f"expected a {self.what} greater than 0")
        return amount + 0 if amount.is_zero() else amount  # -0 is 0

    def pattern(self) -> str:
        """The JSON Schema pattern of the decimal strings this accepts."""
        sign = "-?" if self.signed else ""
        fraction = rf"\.\d{{1,{self.decimals}}}0*" if self.trailing_zeros else rf"\.\d{{1,{self.decimals}}}"
        return rf"^{sign}0*\d{{1,{self.integer_digits}}}({fraction})?$"

    def written_pattern(self) -> str:
        """The pattern of what our producers write (`format`): no leading zeros, no trailing zeros beyond
        the fixed decimals of money."""
        sign = "-?" if self.signed else ""
        return rf"^{sign}\d{{1,{self.integer_digits}}}(\.\d{{1,{self.decimals}}})?$"


def _decimal_type(bounds: DecimalBounds, write: Any, examples: list[Any]) -> Any:
    accepted: dict[str, Any] = {"type": "string", "pattern": bounds.pattern(), "examples": examples}
    if bounds.integers:
        limit = 10 ** bounds.integer_digits - 1
        accepted = {"anyOf": [{"type": "integer", "minimum": 1 if bounds.positive else 0, "maximum": limit},
                              {"type": "string", "pattern": bounds.pattern()}], "examples": examples}
    return Annotated[
        Decimal,
        BeforeValidator(bounds.parse),
        PlainSerializer(write, return_type=str, when_used="json"),
        WithJsonSchema(accepted, mode="validation"),
        WithJsonSchema({"type": "string", "pattern": bounds.written_pattern(), "examples": [str(e) for e in examples]},
                       mode="serialization"),
    ]


def format_money(value: Decimal) -> str:
    """Money as written on every topic and answer: always 2 decimals ("12.30"), never exponent notation."""
    return format(value.quantize(CENT, rounding=ROUND_HALF_UP, context=Context(prec=60)), "f")


def format_decimal(value: Decimal) -> str:
    """A decimal as written on every topic: the fewest digits that say it ("2", "0.45"), never "1E+2"."""
    if value.is_zero():
        return "0"
    return format(value.normalize(context=Context(prec=60)), "f")


def format_exact(value: Decimal) -> str:
    """A derived decimal as its producer computed it, scale kept ("7.1300", "362.00"), never "1E+2"."""
    return format(value, "f")


# A document's money is a string only (spec §2: nothing rounded before we see it); what agencies derive is
# written as a string too, and read from an integer as well (an integer is exact; floats stay refused).
MONEY = DecimalBounds("amount", MONEY_INTEGER_DIGITS, MONEY_DECIMALS, "123.40")
QUANTITY = DecimalBounds("quantity", QUANTITY_INTEGER_DIGITS, QUANTITY_DECIMALS, "0.45", positive=True,
                         integers=True, trailing_zeros=True)
TOTAL = DecimalBounds("amount", TOTAL_INTEGER_DIGITS, MONEY_DECIMALS, "123.40", integers=True)
SIGNED_TOTAL = DecimalBounds("amount", TOTAL_INTEGER_DIGITS, MONEY_DECIMALS, "-3.20", signed=True, integers=True)
TAX_LINE = DecimalBounds("amount", TOTAL_INTEGER_DIGITS, TAX_LINE_DECIMALS, "12.3456789", integers=True)
QUANTITY_TOTAL = DecimalBounds("quantity", QUANTITY_TOTAL_INTEGER_DIGITS, QUANTITY_DECIMALS, "120.5", positive=True,
                                integers=True)
RATE = DecimalBounds("rate", RATE_INTEGER_DIGITS, RATE_DECIMALS, "7.1150", positive=True, integers=True)
SCORE = DecimalBounds("score", SCORE_INTEGER_DIGITS, MONEY_DECIMALS, "99.5", signed=True, integers=True)

Money = _decimal_type(MONEY, format_money, ["123.40"])
"""An amount of a document (spec §2): a decimal string, at most 2 decimals and 12 digits before the point."""
Quantity = _decimal_type(QUANTITY, format_decimal, [2, "0.45"])
"""A quantity or weight of a document (spec §2): an integer or a decimal string, more than 0, at most 5
decimals (zeros beyond them tolerated) and 9 digits before the point; written as a string."""
TotalMoney = _decimal_type(TOTAL, format_money, ["123.40"])
"""An amount an agency derives (a conversion to CNY or USD, a sum over a month or a year), 0 or more."""
SignedTotalMoney = _decimal_type(SIGNED_TOTAL, format_money, ["-3.20"])
"""A derived difference of amounts, which may be negative."""
TaxLineAmount = _decimal_type(TAX_LINE, format_exact, ["12.3456789"])
"""A tax line amount before the order's rounding: up to 10 decimals."""
QuantityTotal = _decimal_type(QUANTITY_TOTAL, format_decimal, ["120.5"])
"""A sum of quantities (a month's consolidated export line)."""
Rate = _decimal_type(RATE, format_exact, ["7.115"])
"""An exchange rate: CNY per unit, more than 0, up to 8 decimals."""
Score = _decimal_type(SCORE, format_exact, ["99.5"])
"""A credit score or its change: may be negative, up to 2 decimals."""


# --- times ---------------------------------------------------------------------------------------------


# RFC 3339 §5.6 date-time: full-date "T" full-time with a mandatory offset ("Z" or ±hh:mm). ABNF is
# case-insensitive, so "t" and "z" are RFC 3339 too. Fractions of a second: up to nanoseconds.
RFC3339_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
_RFC3339 = re.compile(RFC3339_PATTERN, re.ASCII)
_FARTHEST_ZONES = (timezone(timedelta(hours=23, minutes=59)), timezone(-timedelta(hours=23, minutes=59)))
_TIME_EXPECTED = "expected an RFC 3339 time with an offset, such as 2026-11-24T10:00:00+08:00"


def parse_timestamp(value: Any) -> datetime:
    """An RFC 3339 time with offset (spec §2), as an aware datetime; ValueError for anything else: a
    number (never read as a Unix time), customs' 20261124100000, a time without an offset, a date alone,
    an impossible date, or an instant some time zone cannot show (years 1-9999 at every offset)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        if not _RFC3339.fullmatch(value):
            raise ValueError(f"{_TIME_EXPECTED}; got {value[:40]!r}")
        text = value.upper()
        head, dot, rest = text.partition(".")
        if dot:  # Python keeps microseconds: digits beyond six are dropped, as pydantic does
            digits = re.match(r"\d+", rest).group(0)  # type: ignore[union-attr]
            text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits):]}"
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as err:
            raise ValueError(f"{_TIME_EXPECTED}: {err}") from None
    else:
        raise ValueError(f"{_TIME_EXPECTED}, not a {'number' if isinstance(value, (int, float)) else type(value).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{_TIME_EXPECTED}: the offset is missing")
    try:
        # Every reader may show it in its own zone (China time for rate days and quotas): the instant must
        # be a date in years 1-9999 at every offset, or astimezone() would fail later, far from here.
        for zone in _FARTHEST_ZONES:
            moment.astimezone(zone)
    except (OverflowError, ValueError):
        raise ValueError(f"{_TIME_EXPECTED}: out of range") from None
    return moment


Timestamp = Annotated[
    datetime,
    BeforeValidator(parse_timestamp),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": RFC3339_PATTERN,
                    "examples": ["2026-11-24T10:00:00+08:00"]}),
]
"""A time (spec §2): RFC 3339 with an offset. Written as pydantic writes an aware datetime (`…+08:00`, `…Z`)."""

def _hs_code(value: str) -> str:
    if not re.fullmatch(r"[0-9]{10}", value):
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
