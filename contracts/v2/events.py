"""sw.order.submitted.v2: what platforms asked for and v1 could not carry compatibly.

- money as `{amount, currency}` objects, so an amount never travels without its currency;
- the parties as `{code, country}`, so a foreign seller's country is on the order itself;
- an item's `brand`.
Renaming `platform_code` to `platform.code` and turning strings into objects break v1 readers, so this
is a new major version on its own topic; the gateway publishes both during the deprecation period."""
from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from contracts.types import ORDER_MAX_LINES, Country, Currency, Money, Quantity, Timestamp
from contracts.v1 import events as v1
from contracts.v1.documents import Direction, TradeMode
from contracts.v1.events import Consignee, LegalQuantity, Payload, SealedPerson, Version


class Amount(Payload):
    amount: Money
    currency: Currency


class PartyRef(Payload):
    code: str
    country: Country


class OrderLineV2(Payload):
    item_no: str
    name: str
    brand: str | None = None
    hs_code: str
    quantity: Quantity
    unit: str
    unit_price: Amount
    origin_country: Country
    # Added in 1.1 (spec §7.5), as on v1's OrderLine.
    legal_quantities: list[LegalQuantity] | None = Field(
        default=None, min_length=1, max_length=2, exclude_if=lambda value: value is None, description=(
            "the line's quantity in its HS code's first and (if any) second legal unit, in that order; "
            "absent if not given"))


class OrderV2(Payload):
    order_no: str
    platform: PartyRef
    ecommerce: PartyRef
    direction: Direction
    trade_mode: TradeMode
    items: list[OrderLineV2] = Field(min_length=1, max_length=ORDER_MAX_LINES)
    freight: Amount
    insurance: Amount
    discount: Amount
    tax_total: Amount
    actual_paid: Amount
    buyer: SealedPerson | None = None
    consignee: Consignee | None = None
    destination_country: Country | None = None
    # Spec §7.2 (added in 1.1): the firms the order names; customs and FX use only their documents.
    payment_code: str | None = None
    payment_transaction_id: str | None = None
    logistics_code: str | None = None

    @model_validator(mode="after")
    def _one_currency(self) -> "OrderV2":
        currencies = {a.currency for a in (self.freight, self.insurance, self.discount, self.tax_total, self.actual_paid)}
        currencies |= {i.unit_price.currency for i in self.items}
        if len(currencies) != 1:
            raise ValueError(f"an order is in one currency; found {sorted(currencies)}")
        return self

    @property
    def key(self) -> str:
        return f"{self.platform.code}:{self.order_no}"


class OrderSubmittedV2(Payload):
    """A new order, a correction (a full new version) or a cancellation."""

    action: Literal["new", "corrected", "cancelled"]
    version: Version = Field(description="1 for a new order, +1 for each correction or cancellation")
    submitted_at: Timestamp
    order: OrderV2

    @classmethod
    def from_v1(cls, event: v1.OrderSubmitted, platform_country: str, ecommerce_country: str,
                brands: dict[str, str | None] | None = None) -> "OrderSubmittedV2":
        o = event.order

        def amount(value: Decimal) -> Amount:
            return Amount(amount=value, currency=o.currency)

        return cls(action=event.action, version=event.version, submitted_at=event.submitted_at, order=OrderV2(
            order_no=o.order_no, platform=PartyRef(code=o.platform_code, country=platform_country),
            ecommerce=PartyRef(code=o.ecommerce_code, country=ecommerce_country), direction=o.direction,
            trade_mode=o.trade_mode,
            items=[OrderLineV2(item_no=i.item_no, name=i.name, brand=(brands or {}).get(i.item_no), hs_code=i.hs_code,
                               quantity=i.quantity, unit=i.unit, unit_price=amount(i.unit_price),
                               origin_country=i.origin_country, legal_quantities=i.legal_quantities)
                   for i in o.items],
            freight=amount(o.freight), insurance=amount(o.insurance), discount=amount(o.discount),
            tax_total=amount(o.tax_total), actual_paid=amount(o.actual_paid), buyer=o.buyer, consignee=o.consignee,
            destination_country=o.destination_country, payment_code=o.payment_code,
            payment_transaction_id=o.payment_transaction_id, logistics_code=o.logistics_code))

    def as_v1(self) -> v1.OrderSubmitted:
        """The same facts in the v1 shape, which the agencies' rules are written over."""
        o = self.order
        return v1.OrderSubmitted(action=self.action, version=self.version, submitted_at=self.submitted_at, order=v1.Order(
            order_no=o.order_no, platform_code=o.platform.code, ecommerce_code=o.ecommerce.code, direction=o.direction,
            trade_mode=o.trade_mode, currency=o.actual_paid.currency,
            items=[v1.OrderLine(item_no=i.item_no, name=i.name, hs_code=i.hs_code, quantity=i.quantity, unit=i.unit,
                                unit_price=i.unit_price.amount, origin_country=i.origin_country,
                                legal_quantities=i.legal_quantities) for i in o.items],
            freight=o.freight.amount, insurance=o.insurance.amount, discount=o.discount.amount,
            tax_total=o.tax_total.amount, actual_paid=o.actual_paid.amount, buyer=o.buyer, consignee=o.consignee,
            destination_country=o.destination_country, payment_code=o.payment_code,
            payment_transaction_id=o.payment_transaction_id, logistics_code=o.logistics_code))
