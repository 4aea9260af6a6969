"""From CEB records to the §4 documents (spec §7.5): pure functions, no I/O.

| CEB                         | §4 body (contracts/v1/documents.py)                                   |
| --------------------------- | --------------------------------------------------------------------- |
| CEB311 / CEB303 `Order`     | `OrderIn` (`POST /v1/orders`), completed by the list (`complete_order`) |
| CEB411 `Payment`            | `PaymentIn` (`POST /v1/payments`), `payTransactionId` = `payment_no`    |
| CEB511 / CEB505 `Logistics` | `WaybillIn` (`POST /v1/waybills`), completed by the list for what it lacks |

Every function returns a `Mapped`: the body (a dict shaped as the REST body: money as strings with 2
decimals, times RFC 3339 `+08:00`), `missing` (the body fields that only another record can give: the body
is not submittable while `missing` is not empty), `problems` (what is wrong in the record itself, each naming
our field and the XML element: such a record is refused, never submitted) and `extras` (everything the
record carries that §4 has no field for, by XML element, values as text: nothing is dropped).

Conversions: times `yyyyMMddHHmmss` are China time (UTC+8) → RFC 3339 with `+08:00`; customs' currency,
country and unit codes → ISO 4217, ISO 3166-1 alpha-2 and our unit names (`codes.py`, which says which codes
are covered); amounts may carry zeros beyond the second decimal (`13.89000` → "13.89"), a non-zero third
decimal is a problem (never rounded). Party codes pass through `party`, a lookup from the code a CEB record
names (often the 10-character customs registration code) to the enterprise's code in our registry (an
18-character USCC for Chinese enterprises, §3); by default a code is kept as it is.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from contracts.types import exact
from services.gateway.ceb import codes
from services.gateway.ceb.messages import ListRecord, OrderRecord, PaymentRecord, WaybillRecord

PartyLookup = Callable[[str], str] | Mapping[str, str] | None
TRADE_MODES = {"9610", "1210", "9710", "9810"}  # contracts.v1.documents.TradeMode
MONEY_INTEGER_DIGITS = 12  # spec §2


@dataclass(frozen=True)
class MappingProblem:
    """One thing wrong in a record: `field` is our body's field (`items[1].unit_price`), `element` the XML
    element (`OrderList[2]/price`), `code` a short reason (`invalid`, `unknown_code`, `mismatch`, …)."""

    field: str
    element: str
    code: str
    message: str


@dataclass
class Mapped:
    """A §4 body built from CEB records: see the module docstring. `complete` when nothing is missing and
    nothing is wrong."""

    document: str  # "order" | "payment" | "waybill"
    body: dict[str, Any]
    missing: list[str] = field(default_factory=list)
    problems: list[MappingProblem] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.problems


# --- conversions ------------------------------------------------------------------------------------


def china_time(value: datetime) -> str:
    """A parsed CEB time (China time, `messages.CHINA_TIME`) as RFC 3339: `2016-03-15T15:35:55+08:00`."""
    return value.isoformat()


def text(value: Any) -> str:
    """A parsed value as text for `extras`: decimals as written (no exponent), times RFC 3339, dates ISO."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return china_time(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class _Builder:
    def __init__(self, party: PartyLookup):
        self.problems: list[MappingProblem] = []
        self._party = party

    def problem(self, field_: str, element: str, code: str, message: str) -> None:
        self.problems.append(MappingProblem(field_, element, code, message))

    def money(self, value: Decimal | None, field_: str, element: str) -> str | None:
        """Money with 2 decimals; zeros beyond them are accepted, anything else beyond them is a problem."""
        if value is None:
            return None
        if value != value.quantize(Decimal("0.01")):
            self.problem(field_, element, "invalid",
                         f"{format(value, 'f')} has a non-zero digit beyond the second decimal")
            return None
        if value >= Decimal(10) ** MONEY_INTEGER_DIGITS:
            self.problem(field_, element, "invalid",
                         f"{format(value, 'f')}: at most {MONEY_INTEGER_DIGITS} digits before the point")
            return None
        return f"{value:.2f}"

    def quantity(self, value: Decimal) -> str:
        # trailing zeros are not significant: "100.00000" → "100"; never exponent notation
        return format(value.normalize(), "f")

    def code(self, table: Mapping[str, str], value: str | None, field_: str, element: str, what: str) -> str | None:
        if value is None:
            return None
        if value not in table:
            self.problem(field_, element, "unknown_code",
                         f"{value!r} is not a customs {what} code this gateway knows (services/gateway/ceb/codes.py)")
            return None
        return table[value]

    def party(self, code: str | None) -> str | None:
        if code is None or self._party is None:
            return code
        if callable(self._party):
            return self._party(code)
        return self._party.get(code, code)


def _extras(obj: Any, consumed: set[str], prefix: str = "") -> dict[str, str]:
    """Every non-empty field of a parsed head or line that the body did not take, as text."""
    return {f"{prefix}{f.name}": text(getattr(obj, f.name)) for f in fields(obj)
            if f.name not in consumed and getattr(obj, f.name) is not None}


def _by_gnum(lines: list) -> dict[int, Any]:
    return {ln.gnum: ln for ln in lines}


# --- orders -------------------------------------------------------------------------------------------

_ORDER_HEAD_USED = {"orderNo", "ebpCode", "ebcCode", "currency", "freight", "discount", "taxTotal", "acturalPaid",
                    "buyerName", "buyerIdType", "buyerIdNumber", "buyerTelephone", "payCode", "payTransactionId",
                    "consignee", "consigneeTelephone", "consigneeAddress", "goodsValue", "orderType"}
_ORDER_LINE_USED = {"gnum", "itemNo", "itemName", "qty", "price", "totalPrice", "country", "unit"}
_LIST_LINE_USED = {"gnum", "gcode"}


def map_order(record: OrderRecord, party: PartyLookup = None) -> Mapped:
    """CEB311/CEB303 `Order` → an `OrderIn` body without what only the list gives: `items[].hs_code` and
    `trade_mode` (both directions), `destination_country` (exports). Those are listed in `missing`; call
    `complete_order(record, list_record)` to fill them. Problems name our field and the XML element.

    Rules: `payCode`/`payTransactionId` → `payment_code`/`payment_transaction_id`; `acturalPaid` →
    `actual_paid` (import); an export order has no paid amount, so `actual_paid` = `goodsValue` + `freight`
    (CEB303's own totals; no tax, discount or insurance on an export order); each line's `totalPrice` must be
    `qty` × `price` and `goodsValue` their sum (customs' rule, checked here so that the error names the
    element); a line without `itemNo` gets `item_no` "gnum-<n>"; an export line's `origin_country` is "CN"
    (an export order names no origin: the goods leave China), marked in `extras`."""
    return complete_order(record, None, party)


def complete_order(order: OrderRecord, list_record: ListRecord | None, party: PartyLookup = None) -> Mapped:
    """The order's `OrderIn` body, completed from its list (CEB621 for CEB311, CEB603 for CEB303): per line
    number `gnum`, `gcode` → `items[].hs_code` (and the list line's legal quantities `qty1`/`unit1`/`qty2`/
    `unit2`, `gname`, `gmodel`, … into `extras`); the list's `tradeMode` → `trade_mode`; for exports the
    list's `country` (运抵国, country of arrival) → `destination_country`; the waybill the list names
    (`logisticsCode`) → `logistics_code`. The list must be the order's (same `orderNo` and `ebpCode`, a line
    for every order line with the same `qty`, and no line the order does not have: else problems). Given no list, `missing` says what is still needed."""
    b = _Builder(party)
    h = order.head
    imp = order.direction == "import"
    missing: list[str] = []
    extras: dict[str, Any] = {"head": _extras(h, _ORDER_HEAD_USED), "items": []}
    if order.unknown:
        extras["unknown_elements"] = dict(order.unknown)

    if h.orderType and h.orderType != ("I" if imp else "E"):
        b.problem("direction", "OrderHead/orderType", "invalid",
                  f"orderType {h.orderType!r} in a {'CEB311 (import)' if imp else 'CEB303 (export)'} message")
    currency = b.code(codes.CURRENCIES, h.currency, "currency", "OrderHead/currency", "currency")

    list_lines: dict[int, Any] = {}
    if list_record is not None:
        lh = list_record.head
        if list_record.direction != order.direction:
            b.problem("direction", "InventoryHead", "mismatch", "the list is of the other direction")
        # Each sender may name the platform by its USCC or by its customs code: compare the enterprises.
        if lh.orderNo != h.orderNo or b.party(lh.ebpCode) != b.party(h.ebpCode):
            b.problem("order_no", "InventoryHead/orderNo", "mismatch",
                      f"the list names order {lh.ebpCode}/{lh.orderNo}, not {h.ebpCode}/{h.orderNo}")
        list_lines = _by_gnum(list_record.lines)

    items = []
    with_tot = Decimal(0)
    for n, line in enumerate(order.lines):
        i, el = f"items[{n}]", f"OrderList[{n + 1}]"
        item: dict[str, Any] = {
            "item_no": line.itemNo or f"gnum-{line.gnum}",
            "name": line.itemName,
            "quantity": b.quantity(line.qty),
            "unit": b.code(codes.UNITS, line.unit, f"{i}.unit", f"{el}/unit", "unit"),
            "unit_price": b.money(line.price, f"{i}.unit_price", f"{el}/price"),
        }
        with exact():  # 19-digit operands: exact in 60 digits, never rounded into a false match
            line_total = line.qty * line.price
            with_tot += line.totalPrice
        if line_total != line.totalPrice:
            b.problem(f"{i}.unit_price", f"{el}/totalPrice", "mismatch",
                      f"totalPrice {text(line.totalPrice)} is not qty {text(line.qty)} × price {text(line.price)}")
        if line.currency != h.currency:
            # one currency per order (OrderIn.currency): a line in another one cannot be summed with the rest
            b.problem("currency", f"{el}/currency", "mismatch",
                      f"the line's currency {line.currency!r} is not the order's {h.currency!r}")
        line_extra = _extras(line, _ORDER_LINE_USED)
        line_extra["gnum"] = str(line.gnum)
        line_extra["unit_code"] = line.unit
        if imp:
            item["origin_country"] = b.code(codes.COUNTRIES, line.country, f"{i}.origin_country",
                                            f"{el}/country", "country")
        else:
            item["origin_country"] = "CN"
            line_extra["origin_country_assumed"] = "CN: an export order names no origin"
        listed = list_lines.get(line.gnum)
        if listed is not None:
            item["hs_code"] = listed.gcode
            # The legal quantities (法定数量) the list states, first and second legal unit: kept on the line
            # for customs' consolidated export declaration (domain §12).
            legal = [(listed.qty1, listed.unit1, 1), (listed.qty2, listed.unit2, 2)]
            item["legal_quantities"] = [
                {"quantity": b.quantity(qty), "unit": b.code(
                    codes.UNITS, unit, f"{i}.legal_quantities[{k - 1}].unit",
                    f"InventoryList(gnum={line.gnum})/unit{k}", "unit")}
                for qty, unit, k in legal if qty is not None and unit is not None]
            line_extra.update(_extras(listed, _LIST_LINE_USED, prefix="list."))
            if listed.qty != line.qty:
                b.problem(f"{i}.quantity", f"InventoryList(gnum={line.gnum})/qty", "mismatch",
                          f"the list declares {text(listed.qty)}, the order {text(line.qty)}")
        elif list_record is not None:
            b.problem(f"{i}.hs_code", f"InventoryList(gnum={line.gnum})", "missing",
                      f"the list has no line gnum {line.gnum}")
        else:
            missing.append(f"{i}.hs_code")
        items.append(item)
        extras["items"].append(line_extra)
    for gnum in sorted(set(list_lines) - {line.gnum for line in order.lines}):
        # A list line the order does not have: its HS code and legal quantities would go nowhere.
        b.problem("items", f"InventoryList(gnum={gnum})", "mismatch", f"the order has no line gnum {gnum}")
    if with_tot != h.goodsValue:
        b.problem("items", "OrderHead/goodsValue", "mismatch",
                  f"goodsValue {text(h.goodsValue)} is not the sum of the lines' totalPrice {text(with_tot)}")

    body: dict[str, Any] = {
        "order_no": h.orderNo,
        "platform_code": b.party(h.ebpCode),
        "ecommerce_code": b.party(h.ebcCode),
        "direction": order.direction,
        "currency": currency,
        "items": items,
        "freight": b.money(h.freight, "freight", "OrderHead/freight"),
        "insurance": "0.00",
    }
    if imp:
        body.update({
            "discount": b.money(h.discount, "discount", "OrderHead/discount"),
            "tax_total": b.money(h.taxTotal, "tax_total", "OrderHead/taxTotal"),
            "actual_paid": b.money(h.acturalPaid, "actual_paid", "OrderHead/acturalPaid"),
            "buyer": {"name": h.buyerName,
                      "id_type": b.code(codes.ID_TYPES, h.buyerIdType, "buyer.id_type", "OrderHead/buyerIdType",
                                        "identity type"),
                      "id_number": h.buyerIdNumber, "phone": h.buyerTelephone},
            "consignee": {"name": h.consignee, "phone": h.consigneeTelephone, "address": h.consigneeAddress,
                          "country": "CN"},
        })
        if h.payCode is not None:
            body["payment_code"] = b.party(h.payCode)
        if h.payTransactionId is not None:
            body["payment_transaction_id"] = h.payTransactionId
    else:
        with exact():
            paid = h.goodsValue + h.freight
        body["actual_paid"] = b.money(paid, "actual_paid", "OrderHead/goodsValue")

    if list_record is not None:
        lh = list_record.head
        extras["list"] = _extras(lh, {"orderNo", "ebpCode", "tradeMode", "country", "logisticsCode"})
        if lh.tradeMode in TRADE_MODES:
            body["trade_mode"] = lh.tradeMode
        else:
            b.problem("trade_mode", "InventoryHead/tradeMode", "invalid",
                      f"tradeMode {lh.tradeMode!r}: expected one of {', '.join(sorted(TRADE_MODES))}")
        body["logistics_code"] = b.party(lh.logisticsCode)
        extras["list"]["country"] = lh.country
        if not imp:
            body["destination_country"] = b.code(codes.COUNTRIES, lh.country, "destination_country",
                                                 "InventoryHead/country", "country")
    else:
        missing.append("trade_mode")
        if not imp:
            missing.append("destination_country")
    return Mapped("order", body, missing, b.problems, extras)


# --- payments ------------------------------------------------------------------------------------------

_PAYMENT_USED = {"payTransactionId", "payCode", "orderNo", "ebpCode", "amountPaid", "currency", "payerName",
                 "payerIdType", "payerIdNumber", "payTime"}


def map_payment(record: PaymentRecord, party: PartyLookup = None) -> Mapped:
    """CEB411 `Payment` → a `PaymentIn` body: `payTransactionId` → `payment_no`, `payCode` → `payment_code`,
    `ebpCode` → `platform_code`, `amountPaid` → `amount`, `payTime` → `paid_at` (+08:00), the payer from
    `payerName`/`payerIdType`/`payerIdNumber` (`telephone` goes to `extras`: `Person` has no phone). A
    payment is complete on its own (`missing` is empty)."""
    b = _Builder(party)
    h = record.head
    body = {
        "payment_no": h.payTransactionId,
        "payment_code": b.party(h.payCode),
        "order_no": h.orderNo,
        "platform_code": b.party(h.ebpCode),
        "amount": b.money(h.amountPaid, "amount", "PaymentHead/amountPaid"),
        "currency": b.code(codes.CURRENCIES, h.currency, "currency", "PaymentHead/currency", "currency"),
        "payer": {"name": h.payerName,
                  "id_type": b.code(codes.ID_TYPES, h.payerIdType, "payer.id_type", "PaymentHead/payerIdType",
                                    "identity type"),
                  "id_number": h.payerIdNumber},
        "paid_at": china_time(h.payTime),
    }
    extras: dict[str, Any] = {"head": _extras(h, _PAYMENT_USED)}
    if record.unknown:
        extras["unknown_elements"] = dict(record.unknown)
    return Mapped("payment", body, [], b.problems, extras)


# --- waybills ------------------------------------------------------------------------------------------

_WAYBILL_USED = {"logisticsNo", "logisticsCode", "orderNo", "freight", "insuredFee", "weight", "grossWeight",
                 "packNo", "consignee", "consigneeTelephone", "consigneeAddress"}


def map_waybill(record: WaybillRecord, party: PartyLookup = None) -> Mapped:
    """CEB511/CEB505 `Logistics` → a `WaybillIn` body. `logisticsNo` → `waybill_no`, `weight` (CEB511) or
    `grossWeight` (CEB505) in kg → `gross_weight_kg`, `packNo` → `package_count`, `freight`/`insuredFee` →
    `freight`/`insured_fee` (CEB511 may leave them out: 0). The import waybill names no platform and the
    export one neither order nor consignee: `missing` lists them; `complete_waybill` fills what the list
    gives. `currency` must be CNY: `WaybillIn` has no currency (a problem otherwise)."""
    return complete_waybill(record, None, party)


def complete_waybill(record: WaybillRecord, list_record: ListRecord | None, party: PartyLookup = None) -> Mapped:
    """The waybill's body, completed from the list that names it (same `logisticsCode` and `logisticsNo`):
    the list's `ebpCode` → `platform_code`, and for exports its `orderNo` → `order_no`. An export waybill
    (CEB505) names no consignee and no list gives one: `consignee` stays in `missing` (WaybillIn requires it;
    see docs/ceb.md)."""
    b = _Builder(party)
    h = record.head
    imp = record.direction == "import"
    el = "LogisticsHead/" if imp else "Logistics/"
    currency = b.code(codes.CURRENCIES, h.currency, "freight", f"{el}currency", "currency")
    if currency is not None and currency != "CNY":
        b.problem("freight", f"{el}currency", "invalid",
                  f"the waybill's amounts must be in CNY (142), not {h.currency}")
    body: dict[str, Any] = {
        "waybill_no": h.logisticsNo,
        "logistics_code": b.party(h.logisticsCode),
        "freight": b.money(h.freight if h.freight is not None else Decimal(0), "freight", f"{el}freight"),
        "insured_fee": b.money(h.insuredFee if h.insuredFee is not None else Decimal(0), "insured_fee", f"{el}insuredFee"),
        "gross_weight_kg": format((h.weight if imp else h.grossWeight).normalize(), "f"),
        "package_count": h.packNo,
    }
    missing = []
    if imp:
        body["order_no"] = h.orderNo
        body["consignee"] = {"name": h.consignee, "phone": h.consigneeTelephone, "address": h.consigneeAddress,
                             "country": "CN"}
    if list_record is not None:
        lh = list_record.head
        if (b.party(lh.logisticsCode), lh.logisticsNo) != (b.party(h.logisticsCode), h.logisticsNo):
            b.problem("waybill_no", "InventoryHead/logisticsNo", "mismatch",
                      f"the list names waybill {lh.logisticsCode}/{lh.logisticsNo}")
        elif imp and lh.orderNo != h.orderNo:
            b.problem("order_no", "InventoryHead/orderNo", "mismatch",
                      f"the list names order {lh.orderNo}, the waybill {h.orderNo}")
        body["platform_code"] = b.party(lh.ebpCode)
        if not imp:
            body["order_no"] = lh.orderNo
    else:
        missing.append("platform_code")
        if not imp:
            missing.append("order_no")
    if not imp:
        missing.append("consignee")
    extras: dict[str, Any] = {"head": _extras(h, _WAYBILL_USED)}
    if record.unknown:
        extras["unknown_elements"] = dict(record.unknown)
    return Mapped("waybill", body, missing, b.problems, extras)


# --- what a record asks for ------------------------------------------------------------------------------

APP_TYPES = {"1": "new", "2": "correction", "3": "cancellation"}


def intent(head: Any) -> str:
    """What the sender asks (spec §7.5): "draft" when `appStatus` is 1 (acknowledged, never submitted), else
    `appStatus` 2 and `appType` 1 → "new", 2 → "correction", 3 → "cancellation"; "invalid" for any other
    appType or appStatus (`invalid_app` says which element)."""
    if head.appStatus == "1":
        return "draft"
    if head.appStatus != "2":  # customs' own values: 1 draft (暂存), 2 declared (申报); nothing else is a request
        return "invalid"
    return APP_TYPES.get(head.appType, "invalid")


def invalid_app(head: Any) -> tuple[str, str]:
    """(element name, message) of what makes `intent(head)` "invalid"."""
    if head.appStatus not in ("1", "2"):
        return "appStatus", f"appStatus {head.appStatus!r}: expected 1 (draft) or 2 (declared)"
    return "appType", f"appType {head.appType!r}: expected 1 (new), 2 (correction) or 3 (cancellation)"


# --- from our field back to the XML element ----------------------------------------------------------------

_ORDER_ELEMENTS = {
    "order_no": "OrderHead/orderNo", "platform_code": "OrderHead/ebpCode", "ecommerce_code": "OrderHead/ebcCode",
    "direction": "OrderHead/orderType", "currency": "OrderHead/currency", "freight": "OrderHead/freight",
    "insurance": "OrderHead", "discount": "OrderHead/discount", "tax_total": "OrderHead/taxTotal",
    "actual_paid": "OrderHead/acturalPaid", "buyer": "OrderHead/buyerName", "buyer.name": "OrderHead/buyerName",
    "buyer.id_type": "OrderHead/buyerIdType", "buyer.id_number": "OrderHead/buyerIdNumber",
    "buyer.phone": "OrderHead/buyerTelephone", "consignee": "OrderHead/consignee",
    "consignee.name": "OrderHead/consignee", "consignee.phone": "OrderHead/consigneeTelephone",
    "consignee.address": "OrderHead/consigneeAddress", "payment_code": "OrderHead/payCode",
    "payment_transaction_id": "OrderHead/payTransactionId", "trade_mode": "InventoryHead/tradeMode",
    "destination_country": "InventoryHead/country", "logistics_code": "InventoryHead/logisticsCode",
    "items": "OrderList",
}
_ITEM_ELEMENTS = {"item_no": "itemNo", "name": "itemName", "quantity": "qty", "unit": "unit",
                  "unit_price": "price", "origin_country": "country", "hs_code": "gcode"}
_PAYMENT_ELEMENTS = {
    "payment_no": "PaymentHead/payTransactionId", "payment_code": "PaymentHead/payCode",
    "order_no": "PaymentHead/orderNo", "platform_code": "PaymentHead/ebpCode", "amount": "PaymentHead/amountPaid",
    "currency": "PaymentHead/currency", "payer": "PaymentHead/payerName", "payer.name": "PaymentHead/payerName",
    "payer.id_type": "PaymentHead/payerIdType", "payer.id_number": "PaymentHead/payerIdNumber",
    "paid_at": "PaymentHead/payTime",
}
_WAYBILL_ELEMENTS = {
    "waybill_no": "logisticsNo", "logistics_code": "logisticsCode", "order_no": "orderNo", "freight": "freight",
    "insured_fee": "insuredFee", "gross_weight_kg": "weight", "package_count": "packNo", "consignee": "consignee",
    "consignee.name": "consignee", "consignee.phone": "consigneeTelephone",
    "consignee.address": "consigneeAddress",
}


def element_for(document: str, direction: str, field_: str) -> str:
    """The XML element a §4 body field came from, for `returnInfo` when the REST validation (the same code
    path as `POST /v1/…`) refuses a mapped body: `element_for("order", "import", "items[1].unit_price")` →
    "OrderList[2]/price"; `actual_paid` of an export order → "OrderHead/goodsValue"; an item's `hs_code` →
    "InventoryList[n]/gcode" (the list gave it); the export waybill's `order_no`/`platform_code` →
    "InventoryHead/orderNo"/"InventoryHead/ebpCode". A field without an element gives the record's head."""
    if document == "order":
        m = re.fullmatch(r"items\[(\d+)\](?:\.(\w+))?(?:\[\d+\]\.\w+)?", field_)
        if m:
            n, sub = int(m.group(1)) + 1, m.group(2)
            if sub == "hs_code":
                return f"InventoryList[{n}]/gcode"
            if sub == "legal_quantities":
                return f"InventoryList[{n}]/qty1"
            return f"OrderList[{n}]" + (f"/{_ITEM_ELEMENTS[sub]}" if sub in _ITEM_ELEMENTS else "")
        if field_ == "actual_paid" and direction == "export":
            return "OrderHead/goodsValue"
        return _ORDER_ELEMENTS.get(field_, "OrderHead")
    if document == "payment":
        return _PAYMENT_ELEMENTS.get(field_, "PaymentHead")
    if document == "waybill":
        if field_ == "platform_code" or (field_ == "order_no" and direction == "export"):
            return "InventoryHead/" + ("ebpCode" if field_ == "platform_code" else "orderNo")
        head = "LogisticsHead" if direction == "import" else "Logistics"
        name = _WAYBILL_ELEMENTS.get(field_)
        if name == "weight" and direction == "export":
            name = "grossWeight"
        return f"{head}/{name}" if name else head
    raise ValueError(f"unknown document {document!r}")
