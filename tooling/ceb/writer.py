"""§4 REST bodies as customs' CEB messages (spec §7.5), as an integrator's system would send them.

For the clients of the gateway's CEB front door (`POST /ceb/v1/messages`): the demo, the end-to-end tests and
the contract suite. Pure functions, no I/O; lxml builds the XML. The inverse of
`services/gateway/ceb/mapping.py` (and `codes.py`): `messages.parse_message` then `mapping` gives the REST body
back, except for what CEB cannot carry (listed below).

| function                                  | message | record                                         |
| ----------------------------------------- | ------- | ---------------------------------------------- |
| `import_order(order_body, ...)`           | CEB311  | `Order`: no HS code (the list gives it)        |
| `payment(payment_body, ...)`              | CEB411  | `Payment`                                      |
| `import_waybill(waybill_body, ...)`       | CEB511  | `Logistics`: names the order, not the platform |
| `import_list(order_body, waybill_body, ...)` | CEB621 | `Inventory`: HS codes, legal quantities        |
| `export_order(order_body, ...)`           | CEB303  | `Order`: no HS code, no destination            |
| `export_waybill(waybill_body, ...)`       | CEB505  | `Logistics`: no order, no platform, no consignee |
| `export_list(order_body, waybill_body, ...)` | CEB603 | `Inventory`: HS codes, destination, legal quantities |

Each of them returns one message (bytes, UTF-8 with an XML declaration) of one record. For 1–100 records in one
message, build the records with the `*_record` functions of the same names and pass them to `message(records,
cop_code=...)`.

**Validity.** Every message validates strictly against customs' official schemas
(`services/gateway/ceb/xsd/`, 2022-05 edition) with one exception: CEB621 requires a `ds:Signature`
(`minOccurs="1"`; the other six messages make it optional). Our messages carry no signature — this tooling has
no customs certificate, and a placeholder would be a signature that does not verify — so CEB621 alone misses
that one element; `validate(xml)` checks strictly with exactly that relaxation, and `official_errors(xml)`
reports the unrelaxed schema's errors (for a CEB621 of ours: the missing Signature only). The gateway keeps
signature verification off by default (spec §7.5) and reads an unsigned list.

**Conversions** (inverse of mapping.py): times → `yyyyMMddHHmmss` China time (UTC+8; seconds, sub-second
precision is dropped); currencies, countries and units → customs' numeric codes (`codes.py`; a unit name
several customs codes share takes the one in `PREFERRED_UNIT_CODES`, e.g. piece → 007 个 as customs' samples
use; `unit_codes=` overrides per unit name); `buyer/payer.id_type` resident_id → 1, other and passport → 2;
money as written with two decimals; quantities without trailing zeros; `item_no` → `itemNo`; `payment_no` →
`payTransactionId`; the import order's `payment_code`/`payment_transaction_id` → `payCode`/`payTransactionId`.
Party codes go through `party_codes` (our registry's code → the code to write, e.g. the enterprise's 10-character
customs code; by default the code itself), and must then fit CEB's 18 characters.

**What REST bodies lack and the schema requires** comes from keyword arguments, each with a documented default:
names (`names`: code → registered name; default the code itself), `buyer_reg_no` (default the buyer's phone),
`gmodel` (规格型号, per item: default the item's name, plus its brand when it has one), `bar_code` (default
"无", customs' word for "none"), `customs_office`/`port_office` (关区代码: default the values of customs'
own sample lists), `agent_code` (the declaring enterprise: default the seller), `owner_code` (CEB603: default
the seller), `assure_code` (CEB621: default the agent), `cop_no` (default the order number; CEB621 leaves it out
when longer than its 20 characters), `transport_mode` (default 5, air), `wrap_type` (default 2,
carton), `net_weight_kg` (default the gross weight), `destination_port` (指运港: default the destination's
country code), `statistics_flag` (default B, 汇总申报, domain §12), `goods_info` (CEB505: default "goods of order
<order_no>"), `dxp_id` (default the sender's code). Legal quantities (`qty1`/`unit1`, `qty2`/`unit2`) come from
an item's optional `legal_quantities` (`[{"quantity", "unit"}, …]`, first and second legal unit, units named as
`items[].unit` names them); without it `qty1`/`unit1` are the trade quantity and unit.

**What CEB cannot carry** (dropped by the writer, or given back differently by mapping.py; the round-trip
test lists the same):
- an item's `brand` (written into `gmodel` text, which mapping keeps in `extras`, not in the body);
- no `legal_quantities`: the list must state some, so `qty1`/`unit1` are the trade quantity and unit, which
  mapping reads back as the line's legal quantity;
- `passport` as an id type (CEB knows 1 resident id and 2 other: read back as `other`);
- times below the second; a time's offset (read back as `+08:00`, the same instant);
- an import order's `logistics_code` is not in CEB311: the list names the waybill's firm, and mapping sets
  `logistics_code` from it (an order without one gets the waybill's firm);
- export order: `buyer` and `consignee` (CEB303 has neither), `origin_country` (read back as CN);
- export waybill: `consignee` (CEB505 has none; `order_no`/`platform_code` come from the list).

Values CEB would change rather than drop raise `WriterError` naming the field (never silent garbage): an import
order or payment not in CNY (customs' import schema fixes every currency at 142), a non-zero
`insurance` (no CEB order has it), an export order's non-zero `discount`/`tax_total` or its payment firm, an
export line whose origin is not CN, an import consignee outside CN, a code or text longer than CEB allows, a
currency, country or unit codes.py does not know, more lines than the message allows (CEB311: 99).

**Stable guids.** A record's guid is uuid5 over its content (every element but `appTime` and the guid itself),
upper case as customs asks; the message's guid is uuid5 over its records' guids. Given the same `app_time`, the
same bodies give the same bytes (a resend is byte-identical); `app_time` defaults to now.
"""
from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from lxml import etree

from services.gateway.ceb import codes
from services.gateway.ceb.messages import CHINA_TIME, NS
from services.gateway.ceb.receipts import XSD_DIR, schema

XS = "http://www.w3.org/2001/XMLSchema"
VERSION = "1.0"  # the messages' `version` attribute: the schema's documented default
MAX_RECORDS = 100
_GUID_NAMESPACE = uuid.UUID("3b0f6c52-5d1e-4f0a-9c47-2a8e1d9b7c61")  # ours: names the writer's records

# A unit name that several customs codes share (codes.UNITS) is written with this code.
PREFERRED_UNIT_CODES = {"piece": "007", "set": "006", "pair": "025", "box": "140"}
ID_TYPE_CODES = {"resident_id": "1", "other": "2", "passport": "2"}
NO_BAR_CODE = "无"  # customs' instruction for a list line without a bar code (CEB621 barCode)

# customs' own sample lists' 关区代码 (customsCode, portCode): stand-ins until the caller names real ones.
IMPORT_CUSTOMS_OFFICE, IMPORT_PORT_OFFICE = "3700", "3700"
EXPORT_CUSTOMS_OFFICE, EXPORT_PORT_OFFICE = "1500", "1501"


class WriterError(ValueError):
    """A body this writer cannot express as a CEB message without changing it; `field` names the body's field."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Record:
    """One record element (`Order`, `Payment`, `Logistics` or `Inventory`) of `message_type`, with its guid."""

    message_type: str
    element: Any  # lxml element
    guid: str


# --- conversions ------------------------------------------------------------------------------------


def _invert(table: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for code, ours in table.items():
        out.setdefault(ours, code)
    return out


_CURRENCY_CODES = _invert(codes.CURRENCIES)
_COUNTRY_CODES = _invert(codes.COUNTRIES)
_UNIT_CODES = {**_invert(codes.UNITS), **PREFERRED_UNIT_CODES}


def currency_code(iso: str, field: str = "currency") -> str:
    """ISO 4217 → customs' currency code (`CNY` → "142"); WriterError for a currency codes.py lacks."""
    if iso not in _CURRENCY_CODES:
        raise WriterError(field, f"{iso!r} has no customs currency code in services/gateway/ceb/codes.py")
    return _CURRENCY_CODES[iso]


def _import_currency(iso: str) -> str:
    # customs' import schema fixes every currency element at 142 (`fixed="142"`): CEB imports are in CNY
    if iso != "CNY":
        raise WriterError("currency", f"{iso!r}: customs' import messages are in CNY only (currency fixed at 142)")
    return currency_code(iso)


def country_code(iso: str, field: str) -> str:
    """ISO 3166-1 alpha-2 → customs' country code (`FR` → "305")."""
    if iso not in _COUNTRY_CODES:
        raise WriterError(field, f"{iso!r} has no customs country code in services/gateway/ceb/codes.py")
    return _COUNTRY_CODES[iso]


def unit_code(unit: str, field: str, overrides: Mapping[str, str] | None = None) -> str:
    """Our unit name → customs' unit code (`piece` → "007", `kg` → "035"); a customs code itself passes."""
    if overrides and unit in overrides:
        return overrides[unit]
    if unit in _UNIT_CODES:
        return _UNIT_CODES[unit]
    if unit in codes.UNITS:
        return unit
    raise WriterError(field, f"{unit!r} has no customs unit code in services/gateway/ceb/codes.py "
                             "(pass unit_codes={name: code})")


def id_type_code(id_type: str, field: str) -> str:
    """Our id type → CEB's buyerIdType/payerIdType: resident_id → "1", other and passport → "2"."""
    if id_type not in ID_TYPE_CODES:
        raise WriterError(field, f"{id_type!r}: expected one of {', '.join(ID_TYPE_CODES)}")
    return ID_TYPE_CODES[id_type]


def china_time(value: str | datetime, field: str = "") -> str:
    """An RFC 3339 time (or an aware datetime) as CEB writes it: yyyyMMddHHmmss in China time."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise WriterError(field, f"{value!r} is not an RFC 3339 time") from None
    if value.tzinfo is None:
        raise WriterError(field, "a time needs its offset")
    return value.astimezone(CHINA_TIME).strftime("%Y%m%d%H%M%S")


def _decimal(value: Any, field: str) -> Decimal:
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise WriterError(field, f"{value!r} is not a number") from None
    if not d.is_finite():
        raise WriterError(field, f"{value!r} is not a number")
    exponent = d.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -5:
        raise WriterError(field, f"{value} has more than the 5 decimals CEB allows")
    if len(format(d.normalize(), "f").replace(".", "").lstrip("0")) > 19:
        raise WriterError(field, f"{value} has more than the 19 digits CEB allows")
    return d


def amount(value: Any, field: str = "") -> str:
    """An amount as CEB writes it: two decimals when it has no more ("180.00"), else up to five."""
    d = _decimal(value, field)
    if d == d.quantize(Decimal("0.01")):
        return f"{d:.2f}"
    return format(d.normalize(), "f")


def quantity(value: Any, field: str = "") -> str:
    """A quantity (or weight) without trailing zeros: "2", "0.45"."""
    return format(_decimal(value, field).normalize(), "f")


class _Parties:
    def __init__(self, party_codes: Mapping[str, str] | None, names: Mapping[str, str] | None):
        self.codes = dict(party_codes or {})
        self.names = dict(names or {})

    def code(self, ours: str, field: str) -> str:
        written = self.codes.get(ours, ours)
        return _fit(written, 18, field, "a CEB party code (pass party_codes={code: customs code})")

    def name(self, ours: str, field: str) -> str:
        return _fit(self.names.get(ours, ours), 100, field, "a CEB name")


def _fit(text: str, size: int, field: str, what: str) -> str:
    if text is None or text == "":
        raise WriterError(field, f"{what} is required")
    if len(text) > size:
        raise WriterError(field, f"{text!r} is longer than the {size} characters of {what}")
    return text


# --- elements ---------------------------------------------------------------------------------------


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def _fill(parent: Any, pairs: list[tuple[str, Any]]) -> Any:
    """Append `<ceb:name>value</ceb:name>` in the given (schema) order; None leaves an optional element out."""
    for name, value in pairs:
        if value is None:
            continue
        etree.SubElement(parent, _q(name)).text = str(value)
    return parent


def _app(app_type: str, app_status: str, app_time: datetime | None) -> list[tuple[str, Any]]:
    if app_type not in ("1", "2", "3"):
        raise WriterError("app_type", f"{app_type!r}: 1 new, 2 correction, 3 cancellation")
    if app_status not in ("1", "2"):
        raise WriterError("app_status", f"{app_status!r}: 1 draft, 2 declared")
    at = app_time if app_time is not None else datetime.now(CHINA_TIME)
    return [("guid", ""), ("appType", app_type), ("appTime", china_time(at, "app_time")),
            ("appStatus", app_status)]


def _order_head(order: dict, order_type: str, p: "_Parties", goods: Decimal) -> list[tuple[str, Any]]:
    """The elements CEB311's and CEB303's OrderHead begin with, in schema order: type, number, platform and
    seller, the goods' value and the freight."""
    return [
        ("orderType", order_type),
        ("orderNo", _fit(order["order_no"], 60, "order_no", "orderNo")),
        ("ebpCode", p.code(order["platform_code"], "platform_code")),
        ("ebpName", p.name(order["platform_code"], "platform_code")),
        ("ebcCode", p.code(order["ecommerce_code"], "ecommerce_code")),
        ("ebcName", p.name(order["ecommerce_code"], "ecommerce_code")),
        ("goodsValue", amount(goods, "items")),
        ("freight", amount(order.get("freight", "0"), "freight")),
    ]


def _record(message_type: str, element: Any) -> Record:
    """Give `element` (and every head in it) its stable guid: uuid5 over its canonical form without appTime."""
    probe = etree.fromstring(etree.tostring(element))
    for el in probe.iter(_q("appTime"), _q("guid")):
        el.text = ""
    content = message_type.encode() + etree.tostring(probe, method="c14n")
    guid = str(uuid.uuid5(_GUID_NAMESPACE, content.decode("utf-8"))).upper()
    for el in element.iter(_q("guid")):
        el.text = guid
    return Record(message_type, element, guid)


def _date(app_time: datetime | None) -> str:
    return china_time(app_time if app_time is not None else datetime.now(CHINA_TIME))[:8]


def _gmodel(item: dict, size: int, field: str, gmodels: Mapping[str, str] | None) -> str:
    text = (gmodels or {}).get(item["item_no"])
    if text is None:
        text = item["name"] + (f"; brand: {item['brand']}" if item.get("brand") else "")
    return _fit(text, size, field, "gmodel (规格型号)")


def _zero(body: dict, name: str, why: str) -> None:
    if _decimal(body.get(name) or "0", name) != 0:
        raise WriterError(name, why)


def _lines(order: dict, max_lines: int, message: str) -> list[dict]:
    items = order.get("items") or []
    if not items:
        raise WriterError("items", "an order needs at least one line")
    if len(items) > max_lines:
        raise WriterError("items", f"{len(items)} lines; {message} holds at most {max_lines}")
    return items


def _line_total(item: dict, i: int) -> Decimal:
    total = _decimal(item["quantity"], f"items[{i}].quantity") * _decimal(item["unit_price"], f"items[{i}].unit_price")
    _decimal(total, f"items[{i}]")  # qty × price must itself fit CEB's 5 decimals
    return total


def _body_fields(fn: Any) -> Any:
    """A body missing a field CEB needs is a WriterError naming it, not a KeyError."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KeyError as e:
            raise WriterError(str(e.args[0]), "missing from the body, and CEB requires it") from None
    return wrapper


# --- orders -------------------------------------------------------------------------------------------


@_body_fields
def import_order_record(order: dict, *, app_type: str = "1", app_status: str = "2",
                        app_time: datetime | None = None, party_codes: Mapping[str, str] | None = None,
                        names: Mapping[str, str] | None = None, unit_codes: Mapping[str, str] | None = None,
                        buyer_reg_no: str | None = None, gmodels: Mapping[str, str] | None = None) -> Record:
    """An import `OrderIn` body (§4.1) as a CEB311 `Order` record. `gmodels`: item_no → 规格型号 text (default
    the item's name and brand); `buyer_reg_no`: the buyer's account on the platform (default the buyer's phone).
    The HS codes and trade mode travel on the list (`import_list_record`). WriterError: see the module."""
    if order.get("direction") != "import":
        raise WriterError("direction", "CEB311 carries import orders; use export_order for exports")
    _zero(order, "insurance", "CEB311 has no insurance: acturalPaid would not be the order's actual_paid")
    p = _Parties(party_codes, names)
    buyer, consignee = order.get("buyer"), order.get("consignee")
    if not buyer:
        raise WriterError("buyer", "an import order needs its buyer (CEB311 buyerName, buyerIdNumber, …)")
    if not consignee:
        raise WriterError("consignee", "CEB311 requires the consignee's name, phone and address")
    if consignee.get("country", "CN") != "CN":
        raise WriterError("consignee.country", "CEB311 delivers in China: the consignee's country is CN")
    currency = _import_currency(order.get("currency", "CNY"))
    items = _lines(order, 99, "CEB311")
    el = etree.Element(_q("Order"))
    head = etree.SubElement(el, _q("OrderHead"))
    lines, goods = [], Decimal(0)
    for n, item in enumerate(items):
        i = f"items[{n}]"
        total = _line_total(item, n)
        goods += total
        lines.append([
            ("gnum", n + 1),
            ("itemNo", _fit(item["item_no"], 30, f"{i}.item_no", "CEB311 itemNo")),
            ("itemName", _fit(item["name"], 250, f"{i}.name", "CEB311 itemName")),
            ("gmodel", _gmodel(item, 510, f"{i}.name", gmodels)),
            ("unit", unit_code(item["unit"], f"{i}.unit", unit_codes)),
            ("qty", quantity(item["quantity"], f"{i}.quantity")),
            ("price", amount(item["unit_price"], f"{i}.unit_price")),
            ("totalPrice", amount(total, f"{i}.unit_price")),
            ("currency", currency),
            ("country", country_code(item["origin_country"], f"{i}.origin_country")),
        ])
    pay_code = order.get("payment_code")
    _fill(head, _app(app_type, app_status, app_time) + [
        *_order_head(order, "I", p, goods),
        ("discount", amount(order.get("discount", "0"), "discount")),
        ("taxTotal", amount(order.get("tax_total", "0"), "tax_total")),
        ("acturalPaid", amount(order["actual_paid"], "actual_paid")),
        ("currency", currency),
        ("buyerRegNo", _fit(buyer_reg_no or buyer["phone"], 60, "buyer.phone", "buyerRegNo")),
        ("buyerName", _fit(buyer["name"], 60, "buyer.name", "buyerName")),
        ("buyerTelephone", _fit(buyer["phone"], 30, "buyer.phone", "buyerTelephone")),
        ("buyerIdType", id_type_code(buyer.get("id_type", "resident_id"), "buyer.id_type")),
        ("buyerIdNumber", _fit(buyer["id_number"], 60, "buyer.id_number", "buyerIdNumber")),
        ("payCode", p.code(pay_code, "payment_code") if pay_code else None),
        ("payName", p.name(pay_code, "payment_code") if pay_code else None),
        ("payTransactionId", _fit(order["payment_transaction_id"], 60, "payment_transaction_id", "payTransactionId")
         if order.get("payment_transaction_id") else None),
        ("consignee", _fit(consignee["name"], 100, "consignee.name", "consignee")),
        ("consigneeTelephone", _fit(consignee["phone"], 50, "consignee.phone", "consigneeTelephone")),
        ("consigneeAddress", _fit(consignee["address"], 200, "consignee.address", "consigneeAddress")),
    ])
    for line in lines:
        _fill(etree.SubElement(el, _q("OrderList")), line)
    return _record("CEB311Message", el)


@_body_fields
def export_order_record(order: dict, *, app_type: str = "1", app_status: str = "2",
                        app_time: datetime | None = None, party_codes: Mapping[str, str] | None = None,
                        names: Mapping[str, str] | None = None, unit_codes: Mapping[str, str] | None = None) -> Record:
    """An export `OrderIn` body (§4.1) as a CEB303 `Order` record: no HS code and no destination (the list,
    `export_list_record`, gives them), no buyer or consignee (CEB303 has none: dropped). CEB303's total is
    goodsValue + freight, so insurance, discount and tax_total must be 0 (WriterError otherwise), as must a
    payment firm; every line's origin must be CN (an export order names none: read back as CN)."""
    if order.get("direction") != "export":
        raise WriterError("direction", "CEB303 carries export orders; use import_order for imports")
    for name in ("insurance", "discount", "tax_total"):
        _zero(order, name, f"CEB303 has no {name}: its total is goodsValue + freight")
    for name in ("payment_code", "payment_transaction_id"):
        if order.get(name):
            raise WriterError(name, "CEB303 names no payment firm")
    p = _Parties(party_codes, names)
    currency = currency_code(order.get("currency", "CNY"))
    items = _lines(order, 100, "CEB303")
    el = etree.Element(_q("Order"))
    head = etree.SubElement(el, _q("OrderHead"))
    lines, goods = [], Decimal(0)
    for n, item in enumerate(items):
        i = f"items[{n}]"
        if item.get("origin_country", "CN") != "CN":
            raise WriterError(f"{i}.origin_country", "CEB303 names no origin: an export line is read back as CN")
        total = _line_total(item, n)
        goods += total
        lines.append([
            ("gnum", n + 1),
            ("itemNo", _fit(item["item_no"], 30, f"{i}.item_no", "CEB303 itemNo")),
            ("itemName", _fit(item["name"], 250, f"{i}.name", "CEB303 itemName")),
            ("unit", unit_code(item["unit"], f"{i}.unit", unit_codes)),
            ("currency", currency),
            ("qty", quantity(item["quantity"], f"{i}.quantity")),
            ("price", amount(item["unit_price"], f"{i}.unit_price")),
            ("totalPrice", amount(total, f"{i}.unit_price")),
        ])
    _fill(head, _app(app_type, app_status, app_time) + [
        *_order_head(order, "E", p, goods),
        ("currency", currency),
    ])
    for line in lines:
        _fill(etree.SubElement(el, _q("OrderList")), line)
    return _record("CEB303Message", el)


# --- payments -----------------------------------------------------------------------------------------


@_body_fields
def payment_record(payment: dict, *, app_type: str = "1", app_status: str = "2", app_time: datetime | None = None,
                   party_codes: Mapping[str, str] | None = None, names: Mapping[str, str] | None = None) -> Record:
    """A `PaymentIn` body (§4.2) as a CEB411 `Payment` record: `payment_no` → payTransactionId, `paid_at` →
    payTime (China time)."""
    p = _Parties(party_codes, names)
    payer = payment["payer"]
    el = etree.Element(_q("Payment"))
    _fill(etree.SubElement(el, _q("PaymentHead")), _app(app_type, app_status, app_time) + [
        ("payCode", p.code(payment["payment_code"], "payment_code")),
        ("payName", p.name(payment["payment_code"], "payment_code")),
        ("payTransactionId", _fit(payment["payment_no"], 60, "payment_no", "payTransactionId")),
        ("orderNo", _fit(payment["order_no"], 60, "order_no", "orderNo")),
        ("ebpCode", p.code(payment["platform_code"], "platform_code")),
        ("ebpName", p.name(payment["platform_code"], "platform_code")),
        ("payerIdType", id_type_code(payer.get("id_type", "resident_id"), "payer.id_type")),
        ("payerIdNumber", _fit(payer["id_number"], 60, "payer.id_number", "payerIdNumber")),
        ("payerName", _fit(payer["name"], 60, "payer.name", "payerName")),
        ("amountPaid", amount(payment["amount"], "amount")),
        ("currency", _import_currency(payment.get("currency", "CNY"))),
        ("payTime", china_time(payment["paid_at"], "paid_at")),
    ])
    return _record("CEB411Message", el)


# --- waybills -----------------------------------------------------------------------------------------


@_body_fields
def import_waybill_record(waybill: dict, *, app_type: str = "1", app_status: str = "2",
                          app_time: datetime | None = None, party_codes: Mapping[str, str] | None = None,
                          names: Mapping[str, str] | None = None, bill_no: str | None = None,
                          goods_info: str | None = None) -> Record:
    """A `WaybillIn` body (§4.3) of an import as a CEB511 `Logistics` record. It names the order but not the
    platform (`platform_code` is dropped: the list gives it back). Amounts are CNY (142: WaybillIn has no
    currency); the consignee is required and in CN. `bill_no` (提运单号) and `goods_info` are optional."""
    p = _Parties(party_codes, names)
    consignee = waybill.get("consignee")
    if not consignee:
        raise WriterError("consignee", "CEB511 requires the consignee's name, phone and address")
    if consignee.get("country", "CN") != "CN":
        raise WriterError("consignee.country", "CEB511 delivers in China: the consignee's country is CN")
    el = etree.Element(_q("Logistics"))
    _fill(etree.SubElement(el, _q("LogisticsHead")), _app(app_type, app_status, app_time) + [
        ("logisticsCode", p.code(waybill["logistics_code"], "logistics_code")),
        ("logisticsName", p.name(waybill["logistics_code"], "logistics_code")),
        ("logisticsNo", _fit(waybill["waybill_no"], 60, "waybill_no", "logisticsNo")),
        ("billNo", _fit(bill_no, 37, "bill_no", "billNo") if bill_no else None),
        ("orderNo", _fit(waybill["order_no"], 60, "order_no", "orderNo")),
        ("freight", amount(waybill["freight"], "freight")),
        ("insuredFee", amount(waybill.get("insured_fee", "0"), "insured_fee")),
        ("currency", currency_code("CNY")),
        ("weight", quantity(waybill["gross_weight_kg"], "gross_weight_kg")),
        ("packNo", int(waybill["package_count"])),
        ("goodsInfo", _fit(goods_info, 200, "goods_info", "goodsInfo") if goods_info else None),
        ("consignee", _fit(consignee["name"], 100, "consignee.name", "consignee")),
        ("consigneeAddress", _fit(consignee["address"], 200, "consignee.address", "consigneeAddress")),
        ("consigneeTelephone", _fit(consignee["phone"], 50, "consignee.phone", "consigneeTelephone")),
    ])
    return _record("CEB511Message", el)


@_body_fields
def export_waybill_record(waybill: dict, *, app_type: str = "1", app_status: str = "2",
                          app_time: datetime | None = None, party_codes: Mapping[str, str] | None = None,
                          names: Mapping[str, str] | None = None, goods_info: str | None = None) -> Record:
    """A `WaybillIn` body (§4.3) of an export as a CEB505 `Logistics` record (flat: the record is its head).
    CEB505 names no order, no platform and no consignee (all three dropped: the list names the order and
    platform; see the module for the consignee). `goods_info` (required by the schema) defaults to
    "goods of order <order_no>". Amounts are CNY."""
    p = _Parties(party_codes, names)
    info = goods_info if goods_info is not None else f"goods of order {waybill['order_no']}"
    el = etree.Element(_q("Logistics"))
    _fill(el, _app(app_type, app_status, app_time) + [
        ("logisticsCode", p.code(waybill["logistics_code"], "logistics_code")),
        ("logisticsName", p.name(waybill["logistics_code"], "logistics_code")),
        ("logisticsNo", _fit(waybill["waybill_no"], 32, "waybill_no", "CEB505 logisticsNo")),
        ("freight", amount(waybill["freight"], "freight")),
        ("insuredFee", amount(waybill.get("insured_fee", "0"), "insured_fee")),
        ("currency", currency_code("CNY")),
        ("grossWeight", quantity(waybill["gross_weight_kg"], "gross_weight_kg")),
        ("packNo", int(waybill["package_count"])),
        ("goodsInfo", _fit(" ".join(info.split()), 200, "goods_info", "goodsInfo")),
    ])
    return _record("CEB505Message", el)


# --- lists ----------------------------------------------------------------------------------------------


def _legal(item: dict, i: str, unit_codes: Mapping[str, str] | None) -> list[tuple[str, Any]]:
    """qty1/unit1 (and qty2/unit2) from the item's `legal_quantities`, else the trade quantity and unit."""
    legal = item.get("legal_quantities") or [{"quantity": item["quantity"], "unit": item["unit"]}]
    if len(legal) > 2:
        raise WriterError(f"{i}.legal_quantities", "at most two legal quantities (qty1, qty2)")
    out = []
    for k, lq in enumerate(legal, start=1):
        f = f"{i}.legal_quantities[{k - 1}]"
        out.append((f"qty{k}", quantity(lq["quantity"], f"{f}.quantity")))
        out.append((f"unit{k}", unit_code(lq["unit"], f"{f}.unit", unit_codes)))
    return out


def _list_checks(order: dict, waybill: dict, direction: str) -> None:
    if order.get("direction") != direction:
        raise WriterError("direction", f"a {'CEB621' if direction == 'import' else 'CEB603'} list is of an "
                                       f"{direction} order")
    if waybill["order_no"] != order["order_no"] or waybill["platform_code"] != order["platform_code"]:
        raise WriterError("order_no", "the waybill is not the order's (order_no and platform_code must match)")
    if order.get("logistics_code") and order["logistics_code"] != waybill["logistics_code"]:
        raise WriterError("logistics_code", "the order names another logistics firm than the waybill's")


@_body_fields
def import_list_record(order: dict, waybill: dict, *, app_type: str = "1", app_status: str = "2",
                       app_time: datetime | None = None, party_codes: Mapping[str, str] | None = None,
                       names: Mapping[str, str] | None = None, unit_codes: Mapping[str, str] | None = None,
                       agent_code: str | None = None, assure_code: str | None = None, cop_no: str | None = None,
                       customs_office: str = IMPORT_CUSTOMS_OFFICE, port_office: str | None = None,
                       transport_mode: str = "5", departure_country: str | None = None,
                       net_weight_kg: Any = None, wrap_type: str | None = None, bill_no: str | None = None,
                       transport_name: str | None = None, voyage_no: str | None = None,
                       gmodels: Mapping[str, str] | None = None, bar_codes: Mapping[str, str] | None = None) -> Record:
    """The CEB621 `Inventory` (customs' import list) of an import order and its waybill: ebpCode, ebcCode,
    orderNo, logisticsCode/No, tradeMode, the buyer, the waybill's freight, weight and packages (CNY), and per
    order line (gnum = its position, 1-based) `gcode` = the item's hs_code, qty/unit, legal quantities
    qty1/unit1 (module docstring), price and origin country.

    What no REST body gives (keywords): `agent_code` (申报企业, the declaring enterprise; our code, default the
    order's seller — pass the sender's code when a logistics firm declares for it), `assure_code` (担保企业;
    default the agent), `cop_no` (企业内部编号, ≤ 20; default the order number when it fits, else left out),
    `customs_office`/`port_office` (关区代码; default customs' sample's 3700, port = customs office),
    `transport_mode` (运输方式; default 5 air), `departure_country` (起运国, ISO; default the first line's
    origin for 9610, CN for 1210 as customs asks), `net_weight_kg` (default the gross weight), `wrap_type`
    (optional), `bill_no`/`transport_name`/`voyage_no` (optional), `gmodels` and `bar_codes` by item_no.
    `declTime` is app_time's date."""
    _list_checks(order, waybill, "import")
    p = _Parties(party_codes, names)
    buyer, consignee = order.get("buyer") or {}, order.get("consignee") or {}
    if not buyer:
        raise WriterError("buyer", "CEB621 requires the buyer")
    if not consignee:
        raise WriterError("consignee", "CEB621 requires the consignee's address")
    currency = _import_currency(order.get("currency", "CNY"))
    items = _lines(order, 99, "CEB621")
    agent = agent_code or order["ecommerce_code"]
    if departure_country is None:
        departure_country = "CN" if order["trade_mode"] == "1210" else items[0]["origin_country"]
    if cop_no is None and len(order["order_no"]) <= 20:
        cop_no = order["order_no"]
    el = etree.Element(_q("Inventory"))
    head = etree.SubElement(el, _q("InventoryHead"))
    _fill(head, _app(app_type, app_status, app_time) + [
        ("orderNo", _fit(order["order_no"], 60, "order_no", "orderNo")),
        ("ebpCode", p.code(order["platform_code"], "platform_code")),
        ("ebpName", p.name(order["platform_code"], "platform_code")),
        ("ebcCode", p.code(order["ecommerce_code"], "ecommerce_code")),
        ("ebcName", p.name(order["ecommerce_code"], "ecommerce_code")),
        ("logisticsNo", _fit(waybill["waybill_no"], 60, "waybill_no", "logisticsNo")),
        ("logisticsCode", p.code(waybill["logistics_code"], "logistics_code")),
        ("logisticsName", p.name(waybill["logistics_code"], "logistics_code")),
        ("copNo", _fit(cop_no, 20, "cop_no", "CEB621 copNo") if cop_no else None),
        ("assureCode", p.code(assure_code or agent, "assure_code")),
        ("ieFlag", "I"),
        ("declTime", _date(app_time)),
        ("customsCode", _fit(customs_office, 4, "customs_office", "customsCode")),
        ("portCode", _fit(port_office or customs_office, 4, "port_office", "portCode")),
        ("buyerIdType", id_type_code(buyer.get("id_type", "resident_id"), "buyer.id_type")),
        ("buyerIdNumber", _fit(buyer["id_number"], 60, "buyer.id_number", "buyerIdNumber")),
        ("buyerName", _fit(buyer["name"], 60, "buyer.name", "buyerName")),
        ("buyerTelephone", _fit(buyer["phone"], 30, "buyer.phone", "buyerTelephone")),
        ("consigneeAddress", _fit(consignee["address"], 200, "consignee.address", "consigneeAddress")),
        ("agentCode", p.code(agent, "agent_code")),
        ("agentName", p.name(agent, "agent_code")),
        ("tradeMode", order["trade_mode"]),
        ("trafMode", _fit(transport_mode, 1, "transport_mode", "trafMode")),
        ("trafNo", _fit(transport_name, 100, "transport_name", "trafNo") if transport_name else None),
        ("voyageNo", _fit(voyage_no, 32, "voyage_no", "voyageNo") if voyage_no else None),
        ("billNo", _fit(bill_no, 37, "bill_no", "billNo") if bill_no else None),
        ("country", country_code(departure_country, "departure_country")),
        ("freight", amount(waybill["freight"], "freight")),
        ("insuredFee", amount(waybill.get("insured_fee", "0"), "insured_fee")),
        ("currency", currency_code("CNY")),
        ("wrapType", _fit(wrap_type, 1, "wrap_type", "wrapType") if wrap_type else None),
        ("packNo", int(waybill["package_count"])),
        ("grossWeight", quantity(waybill["gross_weight_kg"], "gross_weight_kg")),
        ("netWeight", quantity(net_weight_kg if net_weight_kg is not None else waybill["gross_weight_kg"],
                               "net_weight_kg")),
    ])
    for n, item in enumerate(items):
        i = f"items[{n}]"
        item_no = item["item_no"]
        _fill(etree.SubElement(el, _q("InventoryList")), [
            ("gnum", n + 1),
            ("itemNo", item_no if len(item_no) <= 20 else None),  # optional here, at most 20 characters
            ("itemName", _fit(item["name"], 250, f"{i}.name", "itemName")),
            ("gcode", _fit(item["hs_code"], 10, f"{i}.hs_code", "gcode")),
            ("gname", _fit(item["name"], 250, f"{i}.name", "gname")),
            ("gmodel", _gmodel(item, 510, f"{i}.name", gmodels)),
            ("barCode", (bar_codes or {}).get(item_no)),
            ("country", country_code(item["origin_country"], f"{i}.origin_country")),
            ("currency", currency),
            ("qty", quantity(item["quantity"], f"{i}.quantity")),
            ("unit", unit_code(item["unit"], f"{i}.unit", unit_codes)),
            *_legal(item, i, unit_codes),
            ("price", amount(item["unit_price"], f"{i}.unit_price")),
            ("totalPrice", amount(_line_total(item, n), f"{i}.unit_price")),
        ])
    return _record("CEB621Message", el)


@_body_fields
def export_list_record(order: dict, waybill: dict, *, app_type: str = "1", app_status: str = "2",
                       app_time: datetime | None = None, party_codes: Mapping[str, str] | None = None,
                       names: Mapping[str, str] | None = None, unit_codes: Mapping[str, str] | None = None,
                       agent_code: str | None = None, owner_code: str | None = None, cop_no: str | None = None,
                       customs_office: str = EXPORT_CUSTOMS_OFFICE, port_office: str = EXPORT_PORT_OFFICE,
                       statistics_flag: str = "B", transport_mode: str = "5", destination_port: str | None = None,
                       net_weight_kg: Any = None, wrap_type: str = "2", bill_no: str | None = None,
                       transport_name: str | None = None, voyage_no: str | None = None,
                       gmodels: Mapping[str, str] | None = None, bar_codes: Mapping[str, str] | None = None) -> Record:
    """The CEB603 `Inventory` (customs' export list) of an export order and its waybill: orderNo, ebpCode,
    ebcCode, logisticsCode/No, tradeMode, destination `country` (运抵国) = destination_country, the waybill's
    freight/insurance (CNY, fFlag/iFlag 3 total), weight and packages, and per line gnum, itemNo (≤ 20:
    WriterError otherwise, CEB603 requires it), `gcode` = hs_code, qty/unit, legal quantities qty1/unit1,
    price, and the line's `country` = the destination (CEB603's line country is 最终目的国).

    Keywords for what no REST body gives: `agent_code` (报关企业, default the seller), `owner_code`
    (生产销售单位, default the seller), `cop_no` (≤ 30, default the order number; WriterError if longer),
    `customs_office`/`port_office` (default customs' sample's 1500/1501), `statistics_flag` (B 汇总申报 as
    domain §12 consolidates, or A 简化申报), `transport_mode` (default 5 air), `destination_port` (指运港, 3-4
    characters; default the destination's customs country code), `net_weight_kg` (default the gross weight),
    `wrap_type` (default 2 carton), `bar_codes` by item_no (default "无", none), `gmodels` by item_no.
    `ieDate` is app_time's date."""
    _list_checks(order, waybill, "export")
    p = _Parties(party_codes, names)
    if not order.get("destination_country"):
        raise WriterError("destination_country", "an export list names the destination")
    if statistics_flag not in ("A", "B"):
        raise WriterError("statistics_flag", "A 简化申报 or B 汇总申报")
    currency = currency_code(order.get("currency", "CNY"))
    destination = country_code(order["destination_country"], "destination_country")
    items = _lines(order, 100, "CEB603")
    seller = order["ecommerce_code"]
    el = etree.Element(_q("Inventory"))
    _fill(etree.SubElement(el, _q("InventoryHead")), _app(app_type, app_status, app_time) + [
        ("customsCode", _fit(customs_office, 4, "customs_office", "customsCode")),
        ("ebpCode", p.code(order["platform_code"], "platform_code")),
        ("ebpName", p.name(order["platform_code"], "platform_code")),
        ("orderNo", _fit(order["order_no"], 60, "order_no", "orderNo")),
        ("logisticsCode", p.code(waybill["logistics_code"], "logistics_code")),
        ("logisticsName", p.name(waybill["logistics_code"], "logistics_code")),
        ("logisticsNo", _fit(waybill["waybill_no"], 32, "waybill_no", "CEB603 logisticsNo")),
        ("copNo", _fit(cop_no or order["order_no"], 30, "cop_no", "CEB603 copNo (pass cop_no=)")),
        ("ieFlag", "E"),
        ("portCode", _fit(port_office, 4, "port_office", "portCode")),
        ("ieDate", _date(app_time)),
        ("statisticsFlag", statistics_flag),
        ("agentCode", p.code(agent_code or seller, "agent_code")),
        ("agentName", p.name(agent_code or seller, "agent_code")),
        ("ebcCode", p.code(seller, "ecommerce_code")),
        ("ebcName", p.name(seller, "ecommerce_code")),
        ("ownerCode", p.code(owner_code or seller, "owner_code")),
        ("ownerName", p.name(owner_code or seller, "owner_code")),
        ("tradeMode", order["trade_mode"]),
        ("trafMode", _fit(transport_mode, 1, "transport_mode", "trafMode")),
        ("trafName", _fit(transport_name, 100, "transport_name", "trafName") if transport_name else None),
        ("voyageNo", _fit(voyage_no, 32, "voyage_no", "voyageNo") if voyage_no else None),
        ("billNo", _fit(bill_no, 37, "bill_no", "billNo") if bill_no else None),
        ("country", destination),
        ("POD", _fit(destination_port or destination, 4, "destination_port", "POD")),
        ("freight", amount(waybill["freight"], "freight")),
        ("fCurrency", currency_code("CNY")),
        ("fFlag", "3"),
        ("insuredFee", amount(waybill.get("insured_fee", "0"), "insured_fee")),
        ("iCurrency", currency_code("CNY")),
        ("iFlag", "3"),
        ("wrapType", _fit(wrap_type, 1, "wrap_type", "wrapType")),
        ("packNo", int(waybill["package_count"])),
        ("grossWeight", quantity(waybill["gross_weight_kg"], "gross_weight_kg")),
        ("netWeight", quantity(net_weight_kg if net_weight_kg is not None else waybill["gross_weight_kg"],
                               "net_weight_kg")),
    ])
    for n, item in enumerate(items):
        i = f"items[{n}]"
        legal = _legal(item, i, unit_codes)  # CEB603 orders them qty1, qty2, unit, unit1, unit2
        lq = dict(legal)
        _fill(etree.SubElement(el, _q("InventoryList")), [
            ("gnum", n + 1),
            ("itemNo", _fit(item["item_no"], 20, f"{i}.item_no", "CEB603 itemNo")),
            ("itemName", _fit(item["name"], 250, f"{i}.name", "itemName")),
            ("gcode", _fit(item["hs_code"], 10, f"{i}.hs_code", "gcode")),
            ("gname", _fit(item["name"], 250, f"{i}.name", "gname")),
            ("gmodel", _gmodel(item, 250, f"{i}.name", gmodels)),
            ("barCode", (bar_codes or {}).get(item["item_no"], NO_BAR_CODE)),
            ("country", destination),
            ("currency", currency),
            ("qty", quantity(item["quantity"], f"{i}.quantity")),
            ("qty1", lq["qty1"]),
            ("qty2", lq.get("qty2")),
            ("unit", unit_code(item["unit"], f"{i}.unit", unit_codes)),
            ("unit1", lq["unit1"]),
            ("unit2", lq.get("unit2")),
            ("price", amount(item["unit_price"], f"{i}.unit_price")),
            ("totalPrice", amount(_line_total(item, n), f"{i}.unit_price")),
        ])
    return _record("CEB603Message", el)


# --- messages -------------------------------------------------------------------------------------------


def message(records: Sequence[Record], *, cop_code: str, party_codes: Mapping[str, str] | None = None,
            names: Mapping[str, str] | None = None, dxp_id: str | None = None) -> bytes:
    """One message of 1–100 records of one kind (all `Record`s of the same message type), sent by `cop_code`
    (our code; written through `party_codes`, named through `names`): the records in order, then
    `BaseTransfer` (copCode, copName, dxpMode DXP, dxpId: China E-Port's user id, default the sender's code).
    The message guid is uuid5 over the records' guids. Returns UTF-8 bytes with an XML declaration."""
    if not 1 <= len(records) <= MAX_RECORDS:
        raise WriterError("records", f"{len(records)} records; a message holds 1 to {MAX_RECORDS}")
    types = {r.message_type for r in records}
    if len(types) != 1:
        raise WriterError("records", f"one kind of record per message, not {', '.join(sorted(types))}")
    message_type = types.pop()
    p = _Parties(party_codes, names)
    guid = str(uuid.uuid5(_GUID_NAMESPACE, message_type + ":" + ",".join(r.guid for r in records))).upper()
    root = etree.Element(_q(message_type), nsmap={"ceb": NS}, guid=guid, version=VERSION)
    for r in records:
        root.append(etree.fromstring(etree.tostring(r.element)))  # a copy: a Record can go into several messages
    code = p.code(cop_code, "cop_code")
    _fill(etree.SubElement(root, _q("BaseTransfer")), [
        ("copCode", code), ("copName", p.name(cop_code, "cop_code")), ("dxpMode", "DXP"),
        ("dxpId", _fit(dxp_id or code, 30, "dxp_id", "dxpId")),
    ])
    etree.cleanup_namespaces(root)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(root, encoding="UTF-8", pretty_print=True)



def _one(record_fn: Any, *args: Any, cop_code: str, dxp_id: str | None = None, **options: Any) -> bytes:
    record = record_fn(*args, **options)
    return message([record], cop_code=cop_code, party_codes=options.get("party_codes"),
                   names=options.get("names"), dxp_id=dxp_id)


def import_order(order_body: dict, *, cop_code: str, app_type: str = "1",
                 party_codes: Mapping[str, str] | None = None, **options: Any) -> bytes:
    """CEB311 of one import order (`import_order_record` says what is written; `options` are its keywords,
    plus `dxp_id`). `cop_code`: the sender, normally the order's platform."""
    return _one(import_order_record, order_body, cop_code=cop_code, app_type=app_type, party_codes=party_codes,
                **options)


def export_order(order_body: dict, *, cop_code: str, app_type: str = "1",
                 party_codes: Mapping[str, str] | None = None, **options: Any) -> bytes:
    """CEB303 of one export order (see `export_order_record`)."""
    return _one(export_order_record, order_body, cop_code=cop_code, app_type=app_type, party_codes=party_codes,
                **options)


def payment(payment_body: dict, *, cop_code: str, app_type: str = "1",
            party_codes: Mapping[str, str] | None = None, **options: Any) -> bytes:
    """CEB411 of one payment (see `payment_record`). `cop_code`: normally the payment firm."""
    return _one(payment_record, payment_body, cop_code=cop_code, app_type=app_type, party_codes=party_codes,
                **options)


def import_waybill(waybill_body: dict, *, cop_code: str, app_type: str = "1",
                   party_codes: Mapping[str, str] | None = None, **options: Any) -> bytes:
    """CEB511 of one import waybill (see `import_waybill_record`). `cop_code`: normally the logistics firm."""
    return _one(import_waybill_record, waybill_body, cop_code=cop_code, app_type=app_type,
                party_codes=party_codes, **options)


def export_waybill(waybill_body: dict, *, cop_code: str, app_type: str = "1",
                   party_codes: Mapping[str, str] | None = None, **options: Any) -> bytes:
    """CEB505 of one export waybill (see `export_waybill_record`)."""
    return _one(export_waybill_record, waybill_body, cop_code=cop_code, app_type=app_type,
                party_codes=party_codes, **options)


def import_list(order_body: dict, waybill_body: dict, *, cop_code: str, app_type: str = "1",
                party_codes: Mapping[str, str] | None = None, **options: Any) -> bytes:
    """CEB621 of one import list (see `import_list_record`). `cop_code`: the seller, or the logistics firm
    acting for it (spec §7.5)."""
    return _one(import_list_record, order_body, waybill_body, cop_code=cop_code, app_type=app_type,
                party_codes=party_codes, **options)


def export_list(order_body: dict, waybill_body: dict, *, cop_code: str, app_type: str = "1",
                party_codes: Mapping[str, str] | None = None, **options: Any) -> bytes:
    """CEB603 of one export list (see `export_list_record`)."""
    return _one(export_list_record, order_body, waybill_body, cop_code=cop_code, app_type=app_type,
                party_codes=party_codes, **options)


# --- validation -----------------------------------------------------------------------------------------

UNSIGNED_EXCEPTION = "CEB621Message"  # the one message whose schema requires ds:Signature


@lru_cache(maxsize=2)
def _unsigned_schema(direction: str) -> etree.XMLSchema:
    """The official schema with one change: CEB621's `ds:Signature` is optional (module docstring)."""
    path = XSD_DIR / ("ceb-import.xsd" if direction == "import" else "ceb-export.xsd")
    tree = etree.parse(str(path), etree.XMLParser(no_network=True, resolve_entities=False))
    if direction == "import":
        sig = tree.xpath(f"/xs:schema/xs:element[@name='{UNSIGNED_EXCEPTION}']//xs:element[@ref='ds:Signature']",
                         namespaces={"xs": XS})
        assert len(sig) == 1, "the CEB621 schema changed: review the unsigned exception"
        sig[0].set("minOccurs", "0")
    return etree.XMLSchema(tree)


def _direction(doc: Any) -> str:
    return "export" if etree.QName(doc).localname in ("CEB303Message", "CEB505Message", "CEB603Message") else "import"


def validate(xml: bytes) -> list[str]:
    """Strict validation of a message against customs' official schema, with the single documented exception
    (CEB621 without `ds:Signature`). Returns the errors, `[]` when valid."""
    doc = etree.fromstring(xml)
    s = _unsigned_schema(_direction(doc))
    return [] if s.validate(doc) else [f"line {e.line}: {e.message}" for e in s.error_log]


def official_errors(xml: bytes) -> list[str]:
    """The unrelaxed official schema's errors (`receipts.schema`): for our CEB621, the missing Signature only."""
    doc = etree.fromstring(xml)
    s = schema(_direction(doc))
    return [] if s.validate(doc) else [f"line {e.line}: {e.message}" for e in s.error_log]


__all__ = [
    "WriterError", "Record", "message", "validate", "official_errors",
    "import_order", "export_order", "payment", "import_waybill", "export_waybill", "import_list", "export_list",
    "import_order_record", "export_order_record", "payment_record", "import_waybill_record",
    "export_waybill_record", "import_list_record", "export_list_record",
    "currency_code", "country_code", "unit_code", "id_type_code", "china_time", "amount", "quantity", "PREFERRED_UNIT_CODES",
]
