"""Payloads of every event on every topic (spec §6), version 1.

Buyers' and payers' identity numbers travel masked; the full number travels only sealed for customs
(`id_number_sealed`, see shared/sealing.py), so no other agency, log line or read model can read it."""
from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.identifiers import order_key
from contracts.types import (
    ORDER_MAX_LINES,
    Country,
    Currency,
    MaskedIdNumber,
    Money,
    Quantity,
    QuantityTotal,
    Rate,
    Score,
    SignedTotalMoney,
    TaxLineAmount,
    Timestamp,
    TotalMoney,
    exact,
)
from contracts.v1.documents import (
    CUSTOMS_CODE_PATTERN,
    CustomsCredit,
    Direction,
    IdType,
    Role,
    TrackingEventName,
    TradeMode,
)

CustomsStatus = Literal["pending", "released", "inspection", "rejected", "cancelled"]
Channel = Literal["green", "yellow", "red"]
ReasonCode = Literal[
    "AMOUNT_MISMATCH",
    "IDENTITY_MISMATCH",
    "ORDER_MISMATCH",
    "OVER_SINGLE_LIMIT",
    "OVER_ANNUAL_LIMIT",
    "NOT_ON_POSITIVE_LIST",
    "PROHIBITED_GOODS",
    "PARTY_NOT_REGISTERED",
    "PARTY_ON_NEGATIVE_LIST",
    "DOCUMENT_TIMEOUT",
    "SELECTED_FOR_INSPECTION",
]
TaxStatus = Literal["pending", "assessed", "exempt", "general_trade", "not_applicable"]
FxStatus = Literal["pending", "settled", "not_applicable"]
DirectoryStatus = Literal["exempt", "registration_required", "registered"]
ShipmentStatus = Literal[
    "pending", "created", "picked_up", "departed", "arrived_port", "cleared", "delivered", "exception"
]
Grade = Literal["A", "B", "C", "D"]


# Integers on topics: versions fit the databases' INTEGER columns; years have four digits.
Version = Annotated[int, Field(ge=1, le=2**31 - 1)]
Count = Annotated[int, Field(ge=0, le=2**31 - 1)]
Year = Annotated[int, Field(ge=1, le=9999)]


class Payload(BaseModel):
    # Readers ignore fields they do not know, so a producer may add fields within a major version.
    model_config = ConfigDict(extra="ignore")


# The revision of an agency's view of one enterprise that an event carries: a greater one is a later state.
# An agency's events about one enterprise travel on several topics (FX's settlements are keyed by order),
# so a reader consumes them in no guaranteed order; it keeps the view with the greatest revision (equal:
# the later consumed). Absent (producers before it was added): read as 0.
EnterpriseRevision = Annotated[int | None, Field(ge=0, le=2**63 - 1, description=(
    "revision of the agency's view of the enterprise: a greater one is a later state; keep the greatest"))]


# --- sw.enterprise.registered.v1 -------------------------------------------------------------


class EnterpriseRegistered(Payload):
    code: str
    name: str
    roles: list[Role]
    country: Country
    customs_credit: CustomsCredit
    registered_at: Timestamp
    # Added in spec 1.1 (§7.5), optional: the customs registration code, when the registration gave one.
    # No agency reads it yet; a reader built before it ignores it.
    customs_code: str | None = Field(default=None, description="customs registration code (海关注册编码)",
                                     json_schema_extra={"pattern": CUSTOMS_CODE_PATTERN})


# --- sw.order.submitted.v1 -------------------------------------------------------------------


class Consignee(Payload):
    """Where the parcel goes, as it travels on topics (readers ignore fields added later)."""

    name: str
    phone: str
    address: str
    country: Country = "CN"


class SealedPerson(Payload):
    name: str
    id_type: IdType
    id_number_masked: MaskedIdNumber
    id_number_sealed: str = Field(description="the full number, encrypted for customs alone")
    phone: str | None = None


class LegalQuantity(Payload):
    """A quantity in one of the HS code's legal units of measure (法定数量 / 法定计量单位)."""

    quantity: Quantity
    unit: str


class OrderLine(Payload):
    """One line of an order as it travels on sw.order.submitted.v1."""

    item_no: str
    name: str
    hs_code: str
    quantity: Quantity
    unit: str
    unit_price: Money
    origin_country: Country
    # Added in 1.1 (spec §7.5): the first and second legal quantities, when the document gave them. Left out
    # of the event when not given, so that an order without them is published exactly as before.
    legal_quantities: list[LegalQuantity] | None = Field(
        default=None, min_length=1, max_length=2, exclude_if=lambda value: value is None, description=(
            "the line's quantity in its HS code's first and (if any) second legal unit, in that order; "
            "absent if not given"))

    @property
    def line_value(self) -> Decimal:
        return self.quantity * self.unit_price


class Order(Payload):
    order_no: str
    platform_code: str
    ecommerce_code: str
    direction: Direction
    trade_mode: TradeMode
    currency: Currency
    items: list[OrderLine] = Field(min_length=1, max_length=ORDER_MAX_LINES)
    freight: Money
    insurance: Money
    discount: Money
    tax_total: Money
    actual_paid: Money
    buyer: SealedPerson | None = None
    consignee: Consignee | None = None
    destination_country: Country | None = None
    # Spec §7.2 (added in 1.1): the firms the order names; customs matches only their documents.
    payment_code: str | None = None
    payment_transaction_id: str | None = None
    logistics_code: str | None = None

    @property
    def key(self) -> str:
        return order_key(self.platform_code, self.order_no)

    @property
    def goods_value(self) -> Decimal:
        with exact():  # bounded operands: exact, never rounded (contracts.types.exact)
            return sum((i.quantity * i.unit_price for i in self.items), Decimal("0"))


class OrderSubmitted(Payload):
    """A new order, a correction (a full new version) or a cancellation."""

    action: Literal["new", "corrected", "cancelled"]
    version: Version = Field(description="1 for a new order, +1 for each correction or cancellation")
    submitted_at: Timestamp
    order: Order


# --- sw.payment.submitted.v1 -----------------------------------------------------------------


class Payment(Payload):
    payment_no: str
    payment_code: str
    order_no: str
    platform_code: str
    amount: Money
    currency: Currency
    payer: SealedPerson
    paid_at: Timestamp


class PaymentSubmitted(Payload):
    submitted_at: Timestamp
    payment: Payment


# --- sw.waybill.submitted.v1 -----------------------------------------------------------------


class Waybill(Payload):
    waybill_no: str
    logistics_code: str
    order_no: str
    platform_code: str
    freight: Money
    insured_fee: Money
    gross_weight_kg: Quantity
    package_count: int = Field(ge=1, le=10000)
    # Optional since spec 1.1 §7.5 (customs' export waybill CEB505 names none): absent only on the waybill of
    # an export order, whose parcel leaves China; an import order's waybill always carries it.
    consignee: Consignee | None = None


class WaybillSubmitted(Payload):
    submitted_at: Timestamp
    waybill: Waybill


class WaybillTracked(Payload):
    waybill_no: str
    logistics_code: str
    order_no: str
    platform_code: str
    event: TrackingEventName
    at: Timestamp
    location: str = ""
    note: str = ""


# --- customs.decision.v1 ---------------------------------------------------------------------


class Reason(Payload):
    code: ReasonCode
    message: str


class CustomsDecision(Payload):
    platform_code: str
    order_no: str
    order_version: Version
    ecommerce_code: str
    logistics_code: str | None = None
    payment_code: str | None = None
    direction: Direction
    trade_mode: TradeMode
    status: CustomsStatus
    channel: Channel | None = None
    reasons: list[Reason] = []
    tax_mode: Literal["retail", "general_trade"] | None = Field(
        default=None, description="for released imports: retail (within limits) or general trade"
    )
    dutiable_value_cny: TotalMoney | None = None
    documents_complete_at: Timestamp | None = None
    decided_at: Timestamp


LegalQuantitiesStatus = Literal["complete", "incomplete", "none"]
LegalQuantitiesIssue = Literal["LEGAL_QUANTITIES_MISSING", "SECOND_LEGAL_QUANTITY_MISSING", "LEGAL_UNITS_DIFFER"]


class LegalQuantityTotal(Payload):
    """The declaration line's total in one legal unit (法定数量): the sum over its parcel lines that gave
    their `position`-th legal quantity (1 first, 2 second legal unit) in `unit`."""

    position: int = Field(ge=1, le=2, description="1: the first legal unit, 2: the second")
    unit: str
    quantity: QuantityTotal
    parcel_count: Count = Field(description="the parcels whose lines make up this total")


class ExportDeclarationLine(Payload):
    ecommerce_code: str
    hs_code: str
    destination_country: str
    currency: Currency
    quantity: QuantityTotal
    value: TotalMoney
    parcel_count: Count
    # Added in 1.1 (spec §7.5, domain §12): the legal quantities, summed per (position, unit) over the lines
    # that gave them. Never summed across units, never silently partial: `legal_quantities_status` is
    # "complete" only when every line of the group gave them in one unit per position; otherwise
    # "incomplete" with `legal_quantities_issues` saying why (or "none": no line gave any).
    legal_quantities: list[LegalQuantityTotal] = Field(default_factory=list, description=(
        "totals per legal unit position (1, 2) and unit, over the parcel lines that gave them"))
    legal_quantities_status: LegalQuantitiesStatus | None = Field(default=None, description=(
        "complete: every parcel line gave them, one unit per position, the totals are the declaration's; "
        "incomplete: see legal_quantities_issues; none: no parcel line gave any; absent: published before 1.1"))
    legal_quantities_issues: list[LegalQuantitiesIssue] = Field(default_factory=list, description=(
        "LEGAL_QUANTITIES_MISSING: some parcel lines gave none; SECOND_LEGAL_QUANTITY_MISSING: some gave a "
        "second legal quantity and others not; LEGAL_UNITS_DIFFER: lines name different units for one position"))
    legal_quantities_note: str | None = Field(default=None, description="the issues in words, with parcel counts")


class ExportDeclarationsConsolidated(Payload):
    """One enterprise's consolidated export declarations for a month (domain §12), in parts of at most 500
    lines so that no event nears the broker's message size limit: part `part` of `parts`, all published
    together, in order, on the enterprise's key. The month's declarations are the lines of all its parts."""

    month: str = Field(pattern=r"^\d{4}-\d{2}$")
    ecommerce_code: str
    declarations: list[ExportDeclarationLine]
    consolidated_at: Timestamp
    part: int = Field(default=1, ge=1, le=2**31 - 1, description="which part of the enterprise's month this event is, from 1")
    parts: int = Field(default=1, ge=1, le=2**31 - 1, description="how many parts the enterprise's month was published in")


# --- tax.assessment.v1 -----------------------------------------------------------------------


class TaxLine(Payload):
    item_no: str
    hs_code: str
    dutiable_value: TaxLineAmount
    customs_duty: TaxLineAmount
    consumption_tax: TaxLineAmount
    vat: TaxLineAmount


class TaxAssessment(Payload):
    platform_code: str
    order_no: str
    order_version: Version
    ecommerce_code: str
    status: TaxStatus
    currency: Currency = "CNY"
    dutiable_value: TotalMoney | None = None
    customs_duty: TotalMoney | None = None
    vat: TotalMoney | None = None
    consumption_tax: TotalMoney | None = None
    total: TotalMoney | None = None
    declared_tax_total: TotalMoney | None = None
    declared_difference: SignedTotalMoney | None = Field(
        default=None, description="declared tax_total minus computed total (may be negative)"
    )
    lines: list[TaxLine] = []
    assessed_at: Timestamp


# --- fx.settlement.v1 ------------------------------------------------------------------------


class FxSettled(Payload):
    platform_code: str
    order_no: str
    ecommerce_code: str
    status: FxStatus
    amount: Money | None = None
    currency: Currency | None = None
    amount_cny: TotalMoney | None = None
    rate: Rate | None = Field(default=None, description="CNY per USD on the rate day")
    rate_date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    amount_usd: TotalMoney | None = None
    year: Year | None = None
    year_to_date_usd: TotalMoney | None = None
    directory_status: DirectoryStatus | None = None
    settled_at: Timestamp
    enterprise_revision: EnterpriseRevision = None


class FxDirectoryStatusChanged(Payload):
    enterprise_code: str
    year: Year
    status: DirectoryStatus
    previous_status: DirectoryStatus | None = None
    year_to_date_usd: TotalMoney
    changed_at: Timestamp
    enterprise_revision: EnterpriseRevision = None


# --- logistics.status.v1 ---------------------------------------------------------------------


class ShipmentStatusChanged(Payload):
    logistics_code: str
    waybill_no: str
    platform_code: str
    order_no: str
    status: ShipmentStatus
    previous_status: ShipmentStatus | None = None
    at: Timestamp
    location: str = ""


class LogisticsAnomaly(Payload):
    logistics_code: str
    waybill_no: str
    platform_code: str
    order_no: str
    anomaly: Literal["ORDER_NEVER_CAME", "DELIVERED_BEFORE_RELEASE", "EVENT_FOR_UNKNOWN_WAYBILL"]
    detail: str
    at: Timestamp


# --- credit.rating.v1 ------------------------------------------------------------------------


class CreditRatingChanged(Payload):
    enterprise_code: str
    score: Score
    grade: Grade
    previous_grade: Grade | None = None
    customs_credit: CustomsCredit
    negative_listed: bool
    reason: str
    changed_at: Timestamp
    enterprise_revision: EnterpriseRevision = None


class NegativeListChanged(Payload):
    enterprise_code: str
    listed: bool
    score: Score
    grade: Grade
    reason: str
    changed_at: Timestamp
    enterprise_revision: EnterpriseRevision = None


# --- any agency's status of an order, for the one-stop view -------------------------------------


class StatusReason(Payload):
    """Why an agency's status is what it is: a stable code (upper case) and a message for people."""

    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,63}$")
    message: str = Field(max_length=500)


class AgencyOrderStatus(Payload):
    """What an agency says about one version of an order, as the one-stop view shows it. An agency's event
    model that derives from this one is shown by the gateway with no code of the gateway's own: under the
    agency's name (the writer of the event's topic in contracts/topics.py), every field but the order's key,
    its version and the time (services/gateway/views.py, `of_agency_status`). Subclasses narrow `status` and
    may add fields; the newest `order_version` wins, as for customs and tax."""

    platform_code: str
    order_no: str
    order_version: Version
    status: str = Field(pattern=r"^[a-z][a-z_]{0,31}$")
    reasons: list[StatusReason] = []
    decided_at: Timestamp


# --- sw.order.status_changed.v1 (gateway, read by the gateway's webhook dispatcher) ---------------------


class OrderStatusChanged(Payload):
    """The gateway's one-stop view of an order changed (spec §7.3): an agency's answer was kept, or the
    order was corrected or cancelled. Carries no view: the dispatcher reads the view when it turns the event
    into webhook deliveries, so the last delivery shows every change committed before it."""

    platform_code: str
    order_no: str
    version: Version = Field(description="the order version the gateway held when the view changed")
    sources: list[str] = Field(min_length=1, description="what changed it: agencies (customs, tax, fx, "
                                                         "logistics, ...) or gateway (correction, cancellation)")
    changed_at: Timestamp
