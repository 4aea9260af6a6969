"""What platforms, payment firms and logistics firms submit to the gateway (spec §3, §4)."""
from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.identifiers import resident_id_problem, uscc_problem
from contracts.types import ORDER_MAX_LINES, Country, Currency, HsCode, Money, Quantity, Timestamp, exact

Role = Literal["platform", "ecommerce", "payment", "logistics"]
CustomsCredit = Literal["advanced", "general", "untrustworthy"]
Direction = Literal["import", "export"]
TradeMode = Literal["9610", "1210", "9710", "9810"]
IdType = Literal["resident_id", "passport", "other"]
TrackingEventName = Literal["picked_up", "departed", "arrived_port", "delivered", "exception"]

# A customs registration code (海关注册编码): the 10 characters China customs registers an enterprise under and
# CEB messages name parties by (spec 1.1 §7.5). Customs issues them as digits and upper-case letters.
CUSTOMS_CODE_PATTERN = r"^[0-9A-Z]{10}$"

Code = str  # an enterprise code: a USCC for Chinese enterprises, 1-32 characters for foreign ones


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # A NUL character cannot be stored in a PostgreSQL text column and is never meaningful in a document.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("expected text without NUL (U+0000) characters")
        return value


class EnterpriseRegistration(Strict):
    # The schema states the code's characters and the roles' uniqueness; the validator below checks them (with
    # the codes the tests know) and what no schema can say: a CN code's check digit (GB 32100-2015).
    code: str = Field(min_length=1, max_length=32, json_schema_extra={"pattern": r"^[A-Za-z0-9._-]{1,32}$"})
    name: str = Field(min_length=1, max_length=200)
    roles: list[Role] = Field(min_length=1, json_schema_extra={"uniqueItems": True})
    country: Country = "CN"
    customs_credit: CustomsCredit = "general"
    # Spec 1.1 §3, §7.5: the enterprise's customs registration code (海关注册编码), the 10 characters CEB messages
    # name parties by; unique across registrations (the gateway answers 409 naming it).
    customs_code: str | None = Field(
        default=None, description="customs registration code (海关注册编码): 10 upper-case letters or digits",
        json_schema_extra={"pattern": CUSTOMS_CODE_PATTERN, "minLength": 10, "maxLength": 10})

    @model_validator(mode="after")
    def _code_fits_country(self) -> "EnterpriseRegistration":
        # Codes name enterprises in paths (/v1/enterprises/{code}, /v1/orders/{platform_code}/…), so a foreign
        # code is letters, digits, '.', '_' and '-' (a '/', '?' or space would make its own paths unreachable).
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,32}", self.code):
            raise_field("code", "invalid_code", "expected 1-32 letters, digits, '.', '_' or '-'")
        if self.country == "CN":
            problem = uscc_problem(self.code)
            if problem:
                raise_field("code", "invalid_uscc", f"not a valid unified social credit code: {problem}")
        if len(set(self.roles)) != len(self.roles):
            raise_field("roles", "duplicate", "each role may be named once")
        # Checked here rather than by a Field pattern so the 422 says what a customs code is, whatever is wrong
        # with it (length or characters); lower case is refused, not folded: customs issues codes upper-case.
        if self.customs_code is not None and not re.fullmatch(CUSTOMS_CODE_PATTERN, self.customs_code):
            raise_field("customs_code", "invalid_customs_code",
                        "expected the 10-character customs registration code: upper-case letters A-Z and digits")
        return self


class PlatformList(Strict):
    """`PUT /v1/enterprises/{code}/platforms` (spec §7.2): the platforms that may declare for this ecommerce
    enterprise; an empty list lifts the restriction (any registered platform may, as in 1.0)."""

    platforms: list[str] = Field(max_length=1000, description="platform enterprise codes; [] lifts the restriction",
                                 json_schema_extra={"items": {"type": "string", "minLength": 1, "maxLength": 32}})

    @model_validator(mode="after")
    def _codes(self) -> "PlatformList":
        for i, code in enumerate(self.platforms):
            if not 1 <= len(code) <= 32:
                raise_field(f"platforms[{i}]", "length", "an enterprise code has 1 to 32 characters")
        self.platforms = sorted(set(self.platforms))
        return self


class FieldProblem(ValueError):
    """A cross-field check that names the field it is about (spec §2: `errors[].field`)."""

    def __init__(self, field: str, code: str, message: str):
        super().__init__(message)
        self.field, self.code, self.message = field, code, message


def raise_field(field: str, code: str, message: str) -> None:
    raise FieldProblem(field, code, message)


class Person(Strict):
    name: str = Field(min_length=1, max_length=100)
    id_type: IdType = "resident_id"
    id_number: str = Field(min_length=1, max_length=32)

    @field_validator("id_number")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.upper()

    @model_validator(mode="after")
    def _valid_resident_id(self):
        if self.id_type == "resident_id":
            problem = resident_id_problem(self.id_number)
            if problem:
                raise_field("id_number", "invalid_resident_id", f"not a valid resident identity number: {problem}")
        return self


class Buyer(Person):
    phone: str = Field(min_length=1, max_length=32)


class Consignee(Strict):
    name: str = Field(min_length=1, max_length=100)
    phone: str = Field(min_length=1, max_length=32)
    address: str = Field(min_length=1, max_length=500)
    country: Country = "CN"


LEGAL_UNITS_MAX = 2


class LegalQuantity(Strict):
    """A line's quantity in one of its HS code's legal units of measure (法定数量 / 法定计量单位): what
    customs' lists (CEB621/CEB603 `qty1`/`unit1`, `qty2`/`unit2`) state beside the trade quantity, and what
    the monthly consolidated export declaration (domain §12) sums."""

    quantity: Quantity
    unit: str = Field(min_length=1, max_length=16, description="a unit as `items[].unit` names units (kg, piece, ...)")


class OrderItem(Strict):
    item_no: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    hs_code: HsCode
    quantity: Quantity
    unit: str = Field(min_length=1, max_length=16)
    unit_price: Money
    origin_country: Country
    brand: str | None = Field(default=None, max_length=100, description="the brand, carried on sw.order.submitted.v2")
    legal_quantities: list[LegalQuantity] | None = Field(
        default=None, min_length=1, max_length=LEGAL_UNITS_MAX,
        description="optional: the line's quantity in its HS code's first and (if it has one) second legal unit "
                    "of measure (法定数量), in that order; summed in customs' consolidated export declaration")

    @property
    def line_value(self) -> Decimal:
        return self.quantity * self.unit_price


class OrderIn(Strict):
    order_no: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    platform_code: str = Field(min_length=1, max_length=32)
    ecommerce_code: str = Field(min_length=1, max_length=32)
    direction: Direction
    trade_mode: TradeMode
    currency: Currency = "CNY"
    items: list[OrderItem] = Field(min_length=1, max_length=ORDER_MAX_LINES, description="1-100 lines (spec §2)")
    freight: Money = Decimal("0")
    insurance: Money = Decimal("0")
    discount: Money = Decimal("0")
    tax_total: Money = Decimal("0")
    actual_paid: Money
    buyer: Buyer | None = None
    consignee: Consignee | None = None
    destination_country: Country | None = None
    # Spec §7.2: the firms the order was paid and shipped with (as customs' own order message names them).
    # Named, they are the only firms whose payment and waybill the single window accepts for the order.
    payment_code: str | None = Field(default=None, min_length=1, max_length=32,
                                     description="the payment firm that took the payment (optional)")
    payment_transaction_id: str | None = Field(default=None, min_length=1, max_length=64,
                                               description="that firm's payment_no for it (optional; needs payment_code)")
    logistics_code: str | None = Field(default=None, min_length=1, max_length=32,
                                       description="the logistics firm that ships it (optional)")

    @model_validator(mode="after")
    def _consistent(self) -> "OrderIn":
        if self.payment_transaction_id is not None and self.payment_code is None:
            raise_field("payment_code", "required", "payment_transaction_id names a payment of a firm: name payment_code too")
        seen: set[str] = set()
        for i, item in enumerate(self.items):
            if item.item_no in seen:
                raise_field(f"items[{i}].item_no", "duplicate", f"item_no {item.item_no!r} appears twice; each line needs its own")
            seen.add(item.item_no)
        if self.trade_mode in ("9710", "9810") and self.direction != "export":
            raise_field("trade_mode", "export_only", f"trade mode {self.trade_mode} is for exports only")
        if self.direction == "import" and self.buyer is None:
            raise_field("buyer", "required", "import orders need the buyer")
        if self.direction == "export" and not self.destination_country:
            raise_field("destination_country", "required", "export orders need the destination country")
        # Every operand is bounded (spec §2), so the sum is exact in `exact()`'s 60 digits and costs at
        # most 100 products of 14-digit numbers; it can neither round nor grow slow.
        with exact():
            goods = sum((i.line_value for i in self.items), Decimal("0"))
            expected = goods + self.freight + self.insurance - self.discount + self.tax_total
        if expected != self.actual_paid:
            raise_field(
                "actual_paid",
                "sum_mismatch",
                f"expected {expected:.2f} = goods {goods:.2f} + freight + insurance - discount + tax_total",
            )
        return self


class PaymentIn(Strict):
    payment_no: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    payment_code: str = Field(min_length=1, max_length=32)
    order_no: str = Field(min_length=1, max_length=64)
    platform_code: str = Field(min_length=1, max_length=32)
    amount: Money
    currency: Currency = "CNY"
    payer: Person
    paid_at: Timestamp


class WaybillIn(Strict):
    waybill_no: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    logistics_code: str = Field(min_length=1, max_length=32)
    order_no: str = Field(min_length=1, max_length=64)
    platform_code: str = Field(min_length=1, max_length=32)
    freight: Money
    insured_fee: Money = Decimal("0")
    gross_weight_kg: Quantity
    package_count: int = Field(ge=1, le=10000, strict=True)  # a JSON integer, as published: not "1", "1.0" or true
    # Optional since spec 1.1 §7.5: customs' export waybill (CEB505) names no consignee. The gateway accepts a
    # waybill without one only for an export order it already holds (services/gateway/intake.py, `_check`).
    consignee: Consignee | None = Field(default=None, description=(
        "required unless the waybill's order is an export order already filed"))


class TrackingEventIn(Strict):
    event: TrackingEventName
    at: Timestamp
    location: str = Field(default="", max_length=200)
    note: str = Field(default="", max_length=500)


class InspectionResultIn(Strict):
    result: Literal["pass", "fail"]
    note: str = Field(default="", max_length=500)


# --- batch submission (spec §7.1) -------------------------------------------------------------------

BATCH_MAX_DOCUMENTS = 500


class BatchIn(Strict):
    """The batch envelope as the gateway reads it: each document is judged on its own afterwards (a bad
    document is a 422 *result*, never a refusal of the batch), so here a document is any JSON value."""

    documents: list[object] = Field(min_length=1, max_length=BATCH_MAX_DOCUMENTS)


class OrderBatchIn(Strict):
    """`POST /v1/orders:batch`: 1-500 bodies of `POST /v1/orders`, each judged on its own."""

    documents: list[OrderIn] = Field(min_length=1, max_length=BATCH_MAX_DOCUMENTS)


class PaymentBatchIn(Strict):
    """`POST /v1/payments:batch`: 1-500 bodies of `POST /v1/payments`, each judged on its own."""

    documents: list[PaymentIn] = Field(min_length=1, max_length=BATCH_MAX_DOCUMENTS)


class WaybillBatchIn(Strict):
    """`POST /v1/waybills:batch`: 1-500 bodies of `POST /v1/waybills`, each judged on its own."""

    documents: list[WaybillIn] = Field(min_length=1, max_length=BATCH_MAX_DOCUMENTS)


WebhookEvent = Literal["order.status_changed"]
WEBHOOK_URL_MAX = 2048


class WebhookIn(Strict):
    """`POST /v1/webhooks` (spec §7.3): where to push, and which events. The URL's policy (https and a
    public address in production) is the gateway's (services/gateway/webhooks/rules.py), not the schema's."""

    url: str = Field(min_length=1, max_length=WEBHOOK_URL_MAX, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s]+$",
                     description="absolute http(s) URL; in production https only, resolving to public addresses")
    events: list[WebhookEvent] = Field(min_length=1, max_length=8, description="the event types to push")

    @model_validator(mode="after")
    def _distinct(self) -> "WebhookIn":
        if len(set(self.events)) != len(self.events):
            raise_field("events", "duplicate", "each event type may be named once")
        return self


class BatchResult(BaseModel):
    """What the single endpoint would have answered for the document at `index`, alone."""

    index: int = Field(ge=0, description="the document's position in `documents`")
    status: int = Field(description="202 accepted, 200 already accepted (identical), 409 conflict, "
                                    "422 invalid, 403 not yours to file")
    body: dict = Field(description="the single endpoint's JSON body: its answer, or problem details (RFC 9457)")


class BatchResults(BaseModel):
    """200 to a batch: one result per document, in order; every 202/200 is durable before it is sent."""

    results: list[BatchResult]


__all__ = [n for n in dir() if not n.startswith("_")] + ["datetime"]
