"""Reading one CEB message (China customs' cross-border e-commerce XML, 2022-05 edition; spec §7.5).

`parse_message(data)` takes the body of `POST /ceb/v1/messages` (bytes) and returns a `CebMessage`: the
message type, its `BaseTransfer`, the `ds:Signature` as received, and one `ParsedRecord` per record, in
order. Each `ParsedRecord` holds either a typed record (`OrderRecord`, `PaymentRecord`, `WaybillRecord`,
`ListRecord`) or the problems that keep it from being one, each naming the XML element; one bad record never
refuses its neighbours.

Accepted (spec §7.5): imports CEB311 (order), CEB411 (payment), CEB511 (waybill), CEB621 (list); exports
CEB303 (order), CEB505 (waybill), CEB603 (list). The element names and their sizes are those of the official
schemas (`xsd/ceb-import.xsd`, `xsd/ceb-export.xsd`), read leniently in two ways real senders need: the order
of the message's top-level elements is not checked (customs' own export samples put `BaseTransfer` where the
schema expects `BaseSubscribe`/`Signature`, and CEB303 repeats it), and an element we do not know inside a
record is kept (in `values`) rather than refused. Inside a record, what the schema requires must be there.

Errors that refuse the whole message:
- `MalformedMessage`: not well-formed XML, not UTF-8 compatible, or carrying a DOCTYPE (so never an external
  entity, never an entity expansion: "billion laughs" and XXE are refused before anything is resolved);
  the route answers 400.
- `UnknownMessageType`: well-formed, but not one of the seven messages above (or not in customs' namespace);
  the route answers 422 with a CEB900 receipt (`receipts.format_error_receipt`).
- `RecordCountError`: 0 records, or more than 100 (the schema's `maxOccurs`); 422 with a CEB900 receipt.

The parser is lxml with entity resolution, DTD loading and network access off and `huge_tree` off (lxml's
own limits on depth and text size stay on).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, make_dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from lxml import etree

NS = "http://www.chinaport.gov.cn/ceb"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
CHINA_TIME = timezone(timedelta(hours=8), "China")
MAX_RECORDS = 100  # every record element of the seven messages has maxOccurs="100"
MAX_LINES = 100  # export OrderList maxOccurs 100 (import: 99); our own bound is ORDER_MAX_LINES = 100


class CebError(Exception):
    """Base of the errors that refuse a whole message."""


class MalformedMessage(CebError):
    """Not well-formed XML, or forbidden constructs (DOCTYPE, entities): HTTP 400."""


class UnknownMessageType(CebError):
    """Well-formed XML, but not a CEB message this gateway accepts: HTTP 422 with a CEB900 receipt."""

    def __init__(self, message_type: str, detail: str):
        super().__init__(detail)
        self.message_type = message_type


class RecordCountError(CebError):
    """0 records, or more than 100: HTTP 422 with a CEB900 receipt."""

    def __init__(self, message_type: str, count: int):
        super().__init__(f"{message_type} holds {count} records; a message holds 1 to {MAX_RECORDS}")
        self.message_type, self.count = message_type, count


# --- field specifications ------------------------------------------------------------------------------
# kind: "s" text, "d" decimal (≤ 19 digits, ≤ 5 decimals: the schema's totalDigits/fractionDigits), "i" integer,
# "t" time yyyyMMddHHmmss (China time), "D" date yyyyMMdd. A trailing "?" marks an element the schema
# lets the sender leave out. The third item is the schema's maximum length for text.

Spec = tuple[str, str, int]


def _spec(text: str) -> list[Spec]:
    out = []
    for token in text.split():
        name, kind, size = token.split(":")
        out.append((name, kind, int(size)))
    return out


_APP = "guid:s:36 appType:s:1 appTime:t:14 appStatus:s:3 "

IMPORT_ORDER_HEAD = _spec(
    _APP + "orderType:s:1 orderNo:s:60 ebpCode:s:18 ebpName:s:100 ebcCode:s:18 ebcName:s:100 "
    "goodsValue:d:0 freight:d:0 discount:d:0 taxTotal:d:0 acturalPaid:d:0 currency:s:3 buyerRegNo:s:60 "
    "buyerName:s:60 buyerTelephone:s:30 buyerIdType:s:1 buyerIdNumber:s:60 payCode?:s:18 payName?:s:100 "
    "payTransactionId?:s:60 batchNumbers?:s:100 consignee:s:100 consigneeTelephone:s:50 "
    "consigneeAddress:s:200 consigneeDistrict?:s:6 note?:s:1000")
IMPORT_ORDER_LINE = _spec(
    "gnum:i:0 itemNo?:s:30 itemName:s:250 gmodel:s:510 itemDescribe?:s:1000 barCode?:s:50 unit:s:3 qty:d:0 "
    "price:d:0 totalPrice:d:0 currency:s:3 country:s:3 note?:s:1000")
EXPORT_ORDER_HEAD = _spec(
    _APP + "orderType:s:1 orderNo:s:60 ebpCode:s:18 ebpName:s:100 ebcCode:s:18 ebcName:s:100 "
    "goodsValue:d:0 freight:d:0 currency:s:3 note?:s:1000")
EXPORT_ORDER_LINE = _spec(
    "gnum:i:0 itemNo:s:30 itemName:s:250 itemDescribe?:s:1000 barCode?:s:50 unit:s:3 currency:s:3 qty:d:0 "
    "price:d:0 totalPrice:d:0 note?:s:1000")
PAYMENT_HEAD = _spec(
    _APP + "payCode:s:18 payName:s:100 payTransactionId:s:60 orderNo:s:60 ebpCode:s:18 ebpName:s:100 "
    "payerIdType:s:1 payerIdNumber:s:60 payerName:s:60 telephone?:s:60 amountPaid:d:0 currency:s:3 "
    "payTime:t:14 note?:s:1000")
IMPORT_WAYBILL_HEAD = _spec(
    _APP + "logisticsCode:s:18 logisticsName:s:100 logisticsNo:s:60 billNo?:s:37 orderNo:s:60 freight?:d:0 "
    "insuredFee?:d:0 currency:s:3 weight:d:0 packNo:i:0 goodsInfo?:s:200 consignee:s:100 "
    "consigneeAddress:s:200 consigneeTelephone:s:50 note?:s:1000")
EXPORT_WAYBILL_HEAD = _spec(
    _APP + "logisticsCode:s:18 logisticsName:s:100 logisticsNo:s:32 freight:d:0 insuredFee:d:0 currency:s:3 "
    "grossWeight:d:0 packNo:i:0 goodsInfo:s:200 ebcCode?:s:18 ebcName?:s:100 ebcTelephone?:s:50 note?:s:1000")
IMPORT_LIST_HEAD = _spec(
    _APP + "orderNo:s:60 ebpCode:s:18 ebpName:s:100 ebcCode:s:18 ebcName:s:100 logisticsNo:s:60 "
    "logisticsCode:s:18 logisticsName:s:100 copNo?:s:20 preNo?:s:18 assureCode:s:30 emsNo?:s:30 invtNo?:s:18 "
    "ieFlag:s:1 declTime:D:8 customsCode:s:4 portCode:s:4 ieDate?:D:8 buyerIdType:s:1 buyerIdNumber:s:60 "
    "buyerName:s:60 buyerTelephone:s:30 consigneeAddress:s:200 agentCode:s:18 agentName:s:100 "
    "areaCode?:s:18 areaName?:s:100 tradeMode:s:4 trafMode:s:1 trafNo?:s:100 voyageNo?:s:32 billNo?:s:37 "
    "loctNo?:s:10 licenseNo?:s:19 country:s:3 freight:d:0 insuredFee:d:0 currency:s:3 wrapType?:s:1 "
    "packNo:i:0 grossWeight:d:0 netWeight:d:0 note?:s:1000")
IMPORT_LIST_LINE = _spec(
    "gnum:i:0 itemRecordNo?:s:30 itemNo?:s:20 itemName?:s:250 gcode:s:10 gname:s:250 gmodel:s:510 "
    "barCode?:s:50 country:s:3 tradeCountry?:s:3 currency:s:3 qty:d:0 unit:s:3 qty1:d:0 unit1:s:3 qty2?:d:0 "
    "unit2?:s:3 price:d:0 totalPrice:d:0 note?:s:1000")
# The export list (CEB603) as the 2022-05 schema and customs' sample have it; what is optional follows the
# schema's minOccurs.
EXPORT_LIST_HEAD = _spec(
    _APP + "customsCode:s:4 ebpCode:s:18 ebpName:s:100 orderNo:s:60 logisticsCode:s:18 logisticsName:s:100 "
    "logisticsNo:s:60 copNo:s:30 preNo?:s:18 invtNo?:s:20 ieFlag:s:1 portCode:s:4 ieDate:D:8 "
    "statisticsFlag:s:1 agentCode:s:18 agentName:s:100 ebcCode:s:18 ebcName:s:100 ownerCode:s:18 "
    "ownerName:s:100 iacCode?:s:18 iacName?:s:100 emsNo?:s:30 tradeMode:s:4 trafMode:s:1 trafName?:s:100 "
    "voyageNo?:s:32 billNo?:s:37 totalPackageNo?:s:20 loctNo?:s:10 licenseNo?:s:19 country:s:3 POD:s:3 "
    "freight:d:0 fCurrency:s:3 fFlag:s:1 insuredFee:d:0 iCurrency:s:3 iFlag:s:1 wrapType:s:1 packNo:i:0 "
    "grossWeight:d:0 netWeight:d:0 note?:s:1000")
EXPORT_LIST_LINE = _spec(
    "gnum:i:0 itemNo?:s:30 itemRecordNo?:s:30 itemName?:s:250 gcode:s:10 gname:s:250 gmodel:s:510 "
    "barCode?:s:50 country:s:3 currency:s:3 qty:d:0 qty1:d:0 qty2?:d:0 unit:s:3 unit1:s:3 unit2?:s:3 "
    "price:d:0 totalPrice:d:0 note?:s:1000")


_KINDS: dict[str, type] = {"s": str, "d": Decimal, "i": int, "t": datetime, "D": date}


def _record_class(name: str, specs: list[Spec], doc: str) -> type:
    """A frozen dataclass with one attribute per element of `specs` (named as customs names the element),
    typed by its kind; the optional elements default to None."""
    required = [(n, _KINDS[k]) for n, k, _ in specs if not n.endswith("?")]
    optional = [(n.rstrip("?"), _KINDS[k] | None, field(default=None)) for n, k, _ in specs if n.endswith("?")]
    cls = make_dataclass(name, required + optional, frozen=True)
    cls.__doc__ = doc
    cls.__module__ = __name__
    return cls


# Element names are kept as customs spells them (camelCase), so every value traces to its XML element.
ImportOrderHead = _record_class("ImportOrderHead", IMPORT_ORDER_HEAD, "CEB311 OrderHead, typed.")
ImportOrderLine = _record_class("ImportOrderLine", IMPORT_ORDER_LINE, "CEB311 OrderList, typed.")
ExportOrderHead = _record_class("ExportOrderHead", EXPORT_ORDER_HEAD, "CEB303 OrderHead, typed.")
ExportOrderLine = _record_class("ExportOrderLine", EXPORT_ORDER_LINE, "CEB303 OrderList, typed.")
PaymentHead = _record_class("PaymentHead", PAYMENT_HEAD, "CEB411 PaymentHead, typed.")
ImportWaybillHead = _record_class("ImportWaybillHead", IMPORT_WAYBILL_HEAD, "CEB511 LogisticsHead, typed.")
ExportWaybillHead = _record_class("ExportWaybillHead", EXPORT_WAYBILL_HEAD, "CEB505 Logistics, typed.")
ImportListHead = _record_class("ImportListHead", IMPORT_LIST_HEAD, "CEB621 InventoryHead, typed.")
ImportListLine = _record_class("ImportListLine", IMPORT_LIST_LINE, "CEB621 InventoryList, typed.")
ExportListHead = _record_class("ExportListHead", EXPORT_LIST_HEAD, "CEB603 InventoryHead, typed.")
ExportListLine = _record_class("ExportListLine", EXPORT_LIST_LINE, "CEB603 InventoryList, typed.")


@dataclass(frozen=True)
class OrderRecord:
    """One `Order` of CEB311 (import) or CEB303 (export): its head and 1-100 lines."""

    direction: str  # "import" | "export"
    head: Any  # ImportOrderHead | ExportOrderHead
    lines: list  # ImportOrderLine | ExportOrderLine, in message order
    unknown: dict[str, str] = field(default_factory=dict)  # elements the schema does not name, path → text


@dataclass(frozen=True)
class PaymentRecord:
    """One `Payment` of CEB411 (import only)."""

    direction: str
    head: Any  # PaymentHead
    lines: list = field(default_factory=list)
    unknown: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WaybillRecord:
    """One `Logistics` of CEB511 (import, with a LogisticsHead) or CEB505 (export, flat)."""

    direction: str
    head: Any  # ImportWaybillHead | ExportWaybillHead
    lines: list = field(default_factory=list)
    unknown: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ListRecord:
    """One `Inventory` (customs' list) of CEB621 (import) or CEB603 (export): head and 1-100 lines."""

    direction: str
    head: Any  # ImportListHead | ExportListHead
    lines: list  # ImportListLine | ExportListLine
    unknown: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BaseTransfer:
    """The sender of the message (`BaseTransfer`): copCode is the enterprise that sends it."""

    copCode: str
    copName: str | None
    dxpMode: str | None
    dxpId: str | None
    note: str | None = None


@dataclass(frozen=True)
class RecordProblem:
    """Why one record cannot be read: `element` is the XML element's path inside the record (e.g.
    `OrderHead/acturalPaid`, `OrderList[2]/qty`); `code` is `missing`, `invalid` or `too_long`."""

    element: str
    code: str
    message: str


@dataclass(frozen=True)
class ParsedRecord:
    """One record of the message, in order: `record` when it reads, else `problems` (never both).
    `keys` holds the head's identifying elements as sent (orderNo, ebpCode, payTransactionId, …), even for a
    record with problems, so that its receipt can name it."""

    index: int
    record: OrderRecord | PaymentRecord | WaybillRecord | ListRecord | None
    problems: list[RecordProblem]
    keys: dict[str, str]

    @property
    def ok(self) -> bool:
        return self.record is not None


@dataclass(frozen=True)
class CebMessage:
    """A parsed message: `message_type` such as "CEB311Message", `kind` ("order", "payment", "waybill",
    "list"), `direction`, its `guid` attribute, `base_transfer` (None when absent: the route refuses such a
    message, since copCode names the sender), `signature` (the `ds:Signature` element's bytes as sent; for
    a body in an encoding that is not ASCII-compatible, lxml's serialization of it; None if unsigned),
    `raw` (the body as received, bytes) and the records."""

    message_type: str
    kind: str
    direction: str
    guid: str | None
    version: str | None
    base_transfer: BaseTransfer | None
    signature: bytes | None
    records: list[ParsedRecord]
    raw: bytes = field(repr=False, default=b"")
    notes: list[str] = field(default_factory=list)  # tolerated deviations (e.g. a repeated BaseTransfer)


# message root → (kind, direction, record element, head element or None when flat, head spec, line element,
# line spec, record class)
MESSAGES: dict[str, tuple] = {
    "CEB311Message": ("order", "import", "Order", "OrderHead", IMPORT_ORDER_HEAD, ImportOrderHead,
                      "OrderList", IMPORT_ORDER_LINE, ImportOrderLine, OrderRecord),
    "CEB303Message": ("order", "export", "Order", "OrderHead", EXPORT_ORDER_HEAD, ExportOrderHead,
                      "OrderList", EXPORT_ORDER_LINE, ExportOrderLine, OrderRecord),
    "CEB411Message": ("payment", "import", "Payment", "PaymentHead", PAYMENT_HEAD, PaymentHead,
                      None, None, None, PaymentRecord),
    "CEB511Message": ("waybill", "import", "Logistics", "LogisticsHead", IMPORT_WAYBILL_HEAD, ImportWaybillHead,
                      None, None, None, WaybillRecord),
    "CEB505Message": ("waybill", "export", "Logistics", None, EXPORT_WAYBILL_HEAD, ExportWaybillHead,
                      None, None, None, WaybillRecord),
    "CEB621Message": ("list", "import", "Inventory", "InventoryHead", IMPORT_LIST_HEAD, ImportListHead,
                      "InventoryList", IMPORT_LIST_LINE, ImportListLine, ListRecord),
    "CEB603Message": ("list", "export", "Inventory", "InventoryHead", EXPORT_LIST_HEAD, ExportListHead,
                      "InventoryList", EXPORT_LIST_LINE, ExportListLine, ListRecord),
}

# What a receipt needs to name a record, even a refused one.
KEY_ELEMENTS = ("guid", "orderNo", "ebpCode", "ebcCode", "payCode", "payTransactionId", "logisticsCode",
                "logisticsNo", "copNo", "preNo", "invtNo", "agentCode", "customsCode", "statisticsFlag", "appType", "appStatus")

_PARSER_OPTIONS = dict(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                       huge_tree=False, remove_blank_text=False)
_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_INTEGER = re.compile(r"[0-9]{1,9}")


def _local(el: Any) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def parse_message(data: bytes) -> CebMessage:
    """Parse one CEB message. `data`: the request body (bytes, UTF-8 XML as spec §7.5 asks; an XML
    declaration naming another encoding is honoured by lxml). Returns a `CebMessage` whose `records` are in
    message order. Raises `MalformedMessage`, `UnknownMessageType` or `RecordCountError` (module docstring)."""
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("parse_message takes bytes, as received")
    data = bytes(data)
    # Refused before parsing: a DTD is how external entities and entity expansion bombs get in, and no CEB
    # message has one. The check after parsing (docinfo) covers encodings this byte scan cannot see.
    if _DOCTYPE.search(data):
        raise MalformedMessage("a DOCTYPE or ENTITY declaration is not accepted in a CEB message")
    parser = etree.XMLParser(**_PARSER_OPTIONS)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as e:
        raise MalformedMessage(f"not well-formed XML: {e}") from None
    except ValueError as e:  # e.g. an encoding lxml refuses
        raise MalformedMessage(f"not readable XML: {e}") from None
    if root.getroottree().docinfo.doctype:
        raise MalformedMessage("a DOCTYPE is not accepted in a CEB message")
    qname = etree.QName(root)
    if qname.namespace != NS:
        raise UnknownMessageType(qname.localname,
                                 f"the root element {qname.localname!r} is not in customs' namespace {NS}")
    message_type = qname.localname
    if message_type not in MESSAGES:
        raise UnknownMessageType(message_type, f"{message_type} is not a message this gateway accepts "
                                 f"(accepted: {', '.join(sorted(MESSAGES))})")
    (kind, direction, record_el, head_el, head_spec, head_cls, line_el, line_spec, line_cls,
     record_cls) = MESSAGES[message_type]

    records_xml, transfers, signature, notes = [], [], None, []
    for child in root:
        if not isinstance(child.tag, str):
            continue  # comments, processing instructions
        q = etree.QName(child)
        if q.namespace == DS_NS and q.localname == "Signature":
            signature = _signature_as_received(data) or etree.tostring(child)
        elif q.namespace == NS and q.localname == record_el:
            records_xml.append(child)
        elif q.namespace == NS and q.localname == "BaseTransfer":
            transfers.append(child)
        # BaseSubscribe, ExtendMessage: not used by the gateway
    if not 1 <= len(records_xml) <= MAX_RECORDS:
        raise RecordCountError(message_type, len(records_xml))
    base_transfer = None
    if transfers:
        base_transfer = _base_transfer(transfers[0])
        if len(transfers) > 1:
            notes.append(f"{len(transfers)} BaseTransfer elements; the first was read")

    parsed = [
        _parse_record(i, el, direction, head_el, head_spec, head_cls, line_el, line_spec, line_cls, record_cls)
        for i, el in enumerate(records_xml)
    ]
    return CebMessage(message_type=message_type, kind=kind, direction=direction, guid=root.get("guid"),
                      version=root.get("version"), base_transfer=base_transfer, signature=signature,
                      records=parsed, raw=data, notes=notes)


_SIGNATURE = re.compile(rb"<([A-Za-z_][A-Za-z0-9_.-]*:)?Signature[\s>].*?</\1Signature\s*>", re.S)


def _signature_as_received(data: bytes) -> bytes | None:
    """The message's last `Signature` element, byte for byte as sent (an ASCII-compatible encoding such as
    UTF-8: the spec's). None when not found that way (UTF-16), and the caller serializes the parsed element."""
    found = list(_SIGNATURE.finditer(data))
    return found[-1].group(0) if found else None


_IN_NS = "{" + NS + "}"  # lxml's tag of an element in customs' namespace: "{namespace}localname"


def _children(el: Any) -> dict[str, list]:
    # The tag's text rather than two etree.QName objects per child: this runs for every element of every
    # record (a profiled hot spot of 100-record messages).
    out: dict[str, list] = {}
    for c in el:
        tag = c.tag
        if isinstance(tag, str) and tag.startswith(_IN_NS):
            out.setdefault(tag[len(_IN_NS):], []).append(c)
    return out


def _text(el: Any) -> str:
    return (el.text or "").strip()


def _base_transfer(el: Any) -> BaseTransfer:
    kids = _children(el)

    def get(name: str) -> str | None:
        return _text(kids[name][0]) if name in kids else None

    return BaseTransfer(copCode=get("copCode") or "", copName=get("copName"), dxpMode=get("dxpMode"),
                        dxpId=get("dxpId"), note=get("note"))


def _convert(kind: str, text: str) -> Any:
    """The value of one element's text, or ValueError saying what was expected."""
    if kind == "s":
        return text
    if kind == "d":
        if not _DECIMAL.fullmatch(text):
            raise ValueError(f"expected a decimal number such as 13.89, not {text!r}")
        whole, _, frac = text.partition(".")
        if len(frac) > 5 or len(whole.lstrip("0")) + len(frac) > 19:
            raise ValueError(f"expected at most 19 digits with at most 5 decimals, not {text!r}")
        return Decimal(text)
    if kind == "i":
        if not _INTEGER.fullmatch(text):
            raise ValueError(f"expected a whole number (at most 9 digits), not {text!r}")
        return int(text)
    if kind == "t":
        try:
            if not re.fullmatch(r"[0-9]{14}", text):
                raise ValueError
            return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=CHINA_TIME)
        except ValueError:
            raise ValueError(f"expected a China time yyyyMMddHHmmss such as 20261124100000, not {text!r}") from None
    if kind == "D":
        try:
            if not re.fullmatch(r"[0-9]{8}", text):
                raise ValueError
            return datetime.strptime(text, "%Y%m%d").date()
        except ValueError:
            raise ValueError(f"expected a date yyyyMMdd such as 20261124, not {text!r}") from None
    raise AssertionError(kind)


def _read_fields(el: Any, specs: list[Spec], cls: type, path: str, problems: list[RecordProblem],
                 unknown: dict[str, str]) -> Any:
    kids = _children(el)
    values: dict[str, Any] = {}
    known = set()
    for raw_name, kind, size in specs:
        optional = raw_name.endswith("?")
        name = raw_name.rstrip("?")
        known.add(name)
        where = f"{path}/{name}"
        found = kids.get(name, [])
        if len(found) > 1:
            problems.append(RecordProblem(where, "invalid", f"{name} appears {len(found)} times; once expected"))
            continue
        text = _text(found[0]) if found else ""
        if not text:
            # An empty optional element (customs' samples send `<ceb:note></ceb:note>`) is an absent one.
            if not optional:
                problems.append(RecordProblem(where, "missing", f"{name} is required"))
            values[name] = None
            continue
        if kind == "s" and size and len(text) > size:
            problems.append(RecordProblem(where, "too_long", f"{name} has {len(text)} characters; at most {size}"))
            continue
        try:
            values[name] = _convert(kind, text)
        except ValueError as e:
            problems.append(RecordProblem(where, "invalid", f"{name}: {e}"))
    for name, els in kids.items():
        if name not in known:
            for n, e in enumerate(els):
                if len(e) == 0:
                    unknown[f"{path}/{name}" + (f"[{n + 1}]" if len(els) > 1 else "")] = _text(e)
    if any(p.element.startswith(path + "/") for p in problems):
        return None
    return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


def _parse_record(index: int, el: Any, direction: str, head_el: str | None, head_spec: list[Spec], head_cls: type,
                  line_el: str | None, line_spec: list[Spec] | None, line_cls: type | None,
                  record_cls: type) -> ParsedRecord:
    problems: list[RecordProblem] = []
    unknown: dict[str, str] = {}
    kids = _children(el)
    if head_el is None:  # CEB505: the record element is itself the head
        head_node, head_path = el, _local(el)
    else:
        heads = kids.get(head_el, [])
        head_node, head_path = (heads[0] if len(heads) == 1 else None), head_el
        if head_node is None:
            problems.append(RecordProblem(head_el, "missing" if not heads else "invalid",
                                          f"exactly one {head_el} expected, found {len(heads)}"))
    keys: dict[str, str] = {}
    head = None
    if head_node is not None:
        head_kids = _children(head_node)
        keys = {k: _text(head_kids[k][0]) for k in KEY_ELEMENTS if k in head_kids and _text(head_kids[k][0])}
        head = _read_fields(head_node, head_spec, head_cls, head_path, problems, unknown)
    lines = []
    if line_el is not None:
        line_nodes = kids.get(line_el, [])
        if not line_nodes:
            problems.append(RecordProblem(line_el, "missing", f"at least one {line_el} is required"))
        elif len(line_nodes) > MAX_LINES:
            problems.append(RecordProblem(line_el, "invalid",
                                          f"{len(line_nodes)} {line_el} elements; at most {MAX_LINES}"))
        else:
            for n, node in enumerate(line_nodes, start=1):
                lines.append(_read_fields(node, line_spec, line_cls, f"{line_el}[{n}]", problems, unknown))
            gnums = [ln.gnum for ln in lines if ln is not None]
            if len(set(gnums)) != len(gnums):
                problems.append(RecordProblem(f"{line_el}/gnum", "invalid", "each line needs its own gnum"))
    if problems:
        return ParsedRecord(index=index, record=None, problems=problems, keys=keys)
    return ParsedRecord(index=index, record=record_cls(direction=direction, head=head, lines=lines,
                                                         unknown=unknown),
                        problems=[], keys=keys)


# --- keeping a record (the gateway holds incomplete records until their list arrives) ---------------------

_RECORD_CLASSES = {(v[0], v[1]): v for v in MESSAGES.values()}  # (kind, direction) → MESSAGES entry


def _plain(value: Any) -> Any:
    if isinstance(value, (Decimal, datetime, date)):
        return value.isoformat() if not isinstance(value, Decimal) else str(value)
    return value


def _typed(specs: list[Spec], values: dict[str, Any]) -> dict[str, Any]:
    kinds = {n.rstrip("?"): k for n, k, _ in specs}
    out = {}
    for name, value in values.items():
        kind = kinds.get(name)
        if value is None or kind in (None, "s", "i"):
            out[name] = value
        elif kind == "d":
            out[name] = Decimal(value)
        elif kind == "t":
            out[name] = datetime.fromisoformat(value)
        else:
            out[name] = date.fromisoformat(value)
    return out


def record_to_json(record: OrderRecord | PaymentRecord | WaybillRecord | ListRecord) -> dict[str, Any]:
    """A read record as JSON-ready values (decimals and times as ISO text), for `record_from_json`."""
    return {"direction": record.direction, "head": _values(record.head),
            "lines": [_values(line) for line in record.lines], "unknown": dict(record.unknown)}


def _values(part: Any) -> dict[str, Any]:
    # Heads and lines hold scalars only, so their fields are read directly: `dataclasses.asdict` deep-copies
    # every value, which was most of the cost of keeping a record (profiled on 100-record messages).
    return {f.name: _plain(getattr(part, f.name)) for f in fields(part)}


def record_from_json(kind: str, data: dict[str, Any]) -> OrderRecord | PaymentRecord | WaybillRecord | ListRecord:
    """The record `record_to_json` gave, typed again. `kind`: "order", "payment", "waybill" or "list"."""
    (_, direction, _, _, head_spec, head_cls, _, line_spec, line_cls,
     record_cls) = _RECORD_CLASSES[(kind, data["direction"])]
    lines = [line_cls(**_typed(line_spec, line)) for line in data["lines"]] if line_cls else []
    return record_cls(direction=direction, head=head_cls(**_typed(head_spec, data["head"])), lines=lines,
                      unknown=dict(data.get("unknown", {})))


__all__ = [
    "NS", "DS_NS", "CHINA_TIME", "MAX_RECORDS", "CebError", "MalformedMessage", "UnknownMessageType",
    "RecordCountError", "BaseTransfer", "RecordProblem", "ParsedRecord", "CebMessage", "OrderRecord",
    "PaymentRecord", "WaybillRecord", "ListRecord", "parse_message", "MESSAGES",
    "ImportOrderHead", "ImportOrderLine", "ExportOrderHead", "ExportOrderLine", "PaymentHead",
    "ImportWaybillHead", "ExportWaybillHead", "ImportListHead", "ImportListLine", "ExportListHead",
    "ExportListLine", "record_to_json", "record_from_json",
]
