"""The platform mode's CEB mode: customs' XML messages (spec 1.1 §7.5) checked as the gateway's CEB front
door (`POST /ceb/v1/messages`) and customs would take them, offline.

The suite judges with the *published* mapping: it reads each message with the gateway's CEB codec
(`services.gateway.ceb.messages.parse_message`) and maps records to §4 bodies with its published mapping
(`services.gateway.ceb.mapping`: `complete_order`, `map_payment`, `complete_waybill`, `element_for`), the
mapping docs/ceb.md documents. That codec is the contract of the front door, not an agency's rules: the suite
still never imports an agency, nor the gateway's intake or database code. Strict schema checks use
`tooling.ceb.writer.validate` (customs' official 2022-05 schemas; CEB621's required `ds:Signature` relaxed).

How a set of messages becomes documents:

- every `*.xml` file is one message; each record is located as `file#Order[2]` (the record element, 1-based);
- records are paired as the gateway pairs them: an order with its list by (ebpCode, orderNo), a waybill with
  the list that names it by (logisticsCode, logisticsNo); party codes are first resolved through the
  registrations in the set (`customs_code` → `code`), as the gateway resolves them through its registry;
- each complete record becomes a `platform.Document` (kind order, payment or waybill) that then goes through
  the suite's existing checks unchanged (contract, between documents, goods, parties); every violation on
  such a document names our field and, in `element`, the XML element (`mapping.element_for`).

CEB-only checks (codes as the gateway's receipts or customs give them):

| finding | code | in the mesh |
| --- | --- | --- |
| not well-formed XML, a DOCTYPE or ENTITY | `malformed` | the gateway answers 400 |
| a message type the gateway does not take, 0 or > 100 records, no `BaseTransfer/copCode` | `CEB900` | 422 with a CEB900 receipt |
| customs' official schema refuses the message | `schema_invalid` | customs refuses it; the gateway is lenient about the order of a message's top-level elements and keeps unknown elements, so it may take it |
| a record that cannot be read (missing, invalid, too long element), or maps with problems | `-301008` order, `-401009` payment, `-504011` waybill, `-621001` list | the record's Return |
| `copCode` is not the record's party (ebpCode, payCode, logisticsCode; a list: ebcCode or logisticsCode) | `-10102` | the record's Return |
| `appType` not 1/2/3; a cancellation (3) of anything but an order | the record's refusal code | the record's Return |
| a second list for the same order, with other content | `-621001` | the record's Return |
| an order without its list, a waybill no list names, a list without its order | `DOCUMENT_TIMEOUT` | the gateway holds the record (Return 2) and times it out |

Notes (reported, not violations): drafts (`appStatus` 1: acknowledged, never submitted), records sent twice
identically (one record), corrections (`appType` 2: the later order replaces the earlier), cancellations of
orders (the order is not submitted), and what the parser tolerated (a repeated `BaseTransfer`).

Where the suite differs from the live gateway, deliberately: a record refused for its sender (-10102) is
still mapped and checked, so that one run shows every layer of problems; the caller is taken to be
`copCode` (offline there is no API key; the gateway answers 403 when they differ).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.gateway.ceb import mapping
from services.gateway.ceb.messages import (
    MESSAGES,
    CebMessage,
    MalformedMessage,
    RecordCountError,
    UnknownMessageType,
    parse_message,
    record_to_json,
)
from services.gateway.ceb.receipts import NOT_THE_PARTY, RECEIPT_TYPES, REFUSAL_CODES
from tooling.ceb import writer
from tooling.contracts.suite.platform import CUSTOMS, GATEWAY, KINDS, Document, Violation, contract_violations

# The element naming the record's party, which must be the sender (spec §7.5; the gateway's screen).
PARTY_ELEMENT = {"order": "ebpCode", "payment": "payCode", "waybill": "logisticsCode", "list": "ebcCode"}
# Our field for that element, to name in the violation.
PARTY_FIELD = {"order": "platform_code", "payment": "payment_code", "waybill": "logistics_code", "list": "ecommerce_code"}
LIST_MESSAGE = {"import": "CEB621", "export": "CEB603"}
ORDER_MESSAGE = {"import": "CEB311", "export": "CEB303"}
# A valid stand-in for what only a partner record gives, so the rest of a held record's body is checked now
# (the gateway does the same before holding it); the stand-in fields themselves are never judged.
_STAND_INS = {"trade_mode": "9610", "destination_country": "US", "order_no": "-"}

TIMEOUT = "DOCUMENT_TIMEOUT"
# The receipts the gateway and customs answer with (CEB312 … CEB622, CEB304 … CEB604, CEB900, and customs'
# cancellation and summary receipts): named as such when someone puts one among the messages to check.
RECEIPTS = {r for r, _ in RECEIPT_TYPES.values()} | {"CEB900Message", "CEB624Message", "CEB606Message"}


@dataclass
class CebRecord:
    """One record of a message, readable: where it is, what it is, and its keys (party codes resolved)."""

    location: str  # `orders.xml#Order[2]`
    message_type: str  # "CEB311Message"
    kind: str  # order | payment | waybill | list
    direction: str  # import | export
    record: Any  # messages.OrderRecord | PaymentRecord | WaybillRecord | ListRecord
    intent: str  # new | correction | cancellation | draft | invalid
    head_element: str  # "OrderHead", "Logistics" (CEB505 is flat), …
    key: tuple[str, str]  # order/list: (platform, orderNo); payment: (payCode, payTransactionId); waybill: (logisticsCode, logisticsNo)
    waybill: tuple[str, str] | None = None  # a list's waybill (logisticsCode, logisticsNo)
    fingerprint: str = ""


@dataclass
class CebMessageFile:
    """One message file, for the sandbox: its bytes and, when it parsed, its type and records' locations."""

    path: str
    data: bytes
    message_type: str | None = None
    cop_code: str | None = None
    locations: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CebOrigin:
    """Where a document made from CEB records came from: the record, and the list that completed it."""

    kind: str
    direction: str
    list_location: str | None = None


@dataclass
class CebSet:
    """What the CEB files give the platform check: documents (complete §4 bodies), violations, notes, the
    message files (for the sandbox), where each document came from, and the orders held until they time out
    (their payments and waybills are not also reported as naming an unknown order)."""

    documents: list[Document] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    notes: list[Violation] = field(default_factory=list)
    messages: list[CebMessageFile] = field(default_factory=list)
    origins: dict[str, CebOrigin] = field(default_factory=dict)
    held_orders: set[tuple[str, str]] = field(default_factory=set)
    mapped_fields: dict[str, set[str]] = field(default_factory=dict)  # location → fields its mapping refused



def party_lookup(registrations: Sequence[Any]) -> dict[str, str]:
    """A code a CEB record names → the enterprise's code, from the valid registrations of the set: their
    `customs_code` (the 10 characters CEB names parties by) and their own code."""
    out: dict[str, str] = {}
    for reg in registrations:
        out[reg.code] = reg.code
        if getattr(reg, "customs_code", None):
            out[reg.customs_code] = reg.code
    return out


def fingerprint(record: Any, intent: str) -> str:
    """What makes two records "the same record sent twice" (spec §7.5): every value read but the record's
    guid and application time, and what it asks."""
    data = record_to_json(record)
    head = {k: v for k, v in data["head"].items() if k not in ("guid", "appTime")}
    return hashlib.sha256(json.dumps([intent, data["direction"], head, data["lines"], data["unknown"]],
                                     sort_keys=True, default=str).encode()).hexdigest()


# --- reading the messages -----------------------------------------------------------------------------------


def _refusal(location: str, kind: str, field_: str, element: str, message: str) -> Violation:
    return Violation(location, field_ or "(record)", REFUSAL_CODES[kind], message, GATEWAY, element)


def read_message(path: Path, out: CebSet, lookup: Mapping[str, str]) -> list[CebRecord]:
    """One message file: the message-level findings into `out`, and its readable records."""
    where = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        out.violations.append(Violation(where, "(file)", "not_found", "no such file"))
        return []
    file = CebMessageFile(where, data)
    out.messages.append(file)
    try:
        message = parse_message(data)
    except MalformedMessage as err:
        out.violations.append(Violation(where, "(message)", "malformed", f"{err}; the gateway answers 400"))
        return []
    except (UnknownMessageType, RecordCountError) as err:
        receipt = getattr(err, "message_type", "") in RECEIPTS
        out.violations.append(Violation(where, "(message)", "CEB900", (
            f"{err}; " + ("it is a receipt, which customs (or the gateway) sends back, not a message to send; "
                          if receipt else "")
            + "the gateway answers 422 with a CEB900 receipt (it takes CEB311, CEB411, CEB511, CEB621, CEB303, "
            "CEB505 and CEB603 of 1 to 100 records)")))
        return []
    file.message_type = message.message_type
    record_el = MESSAGES[message.message_type][2]
    file.locations = [f"{where}#{record_el}[{r.index + 1}]" for r in message.records]
    cop = message.base_transfer.copCode if message.base_transfer else None
    file.cop_code = cop
    if not cop:
        out.violations.append(Violation(where, "(message)", "CEB900", (
            "BaseTransfer/copCode is required: it names the sending enterprise; the gateway answers 422 with a "
            "CEB900 receipt"), GATEWAY, "BaseTransfer/copCode"))
        return []
    for err in writer.validate(data):
        out.violations.append(Violation(where, "(message)", "schema_invalid", (
            f"customs' official schema refuses it: {err} (the gateway reads leniently: it does not check the "
            "order of the message's top-level elements and keeps elements it does not know, so it may take what "
            "customs refuses)"), CUSTOMS))
    for note in message.notes:
        out.notes.append(Violation(where, "(message)", "tolerated", f"{note} (the gateway tolerates it)"))
    return _records(message, file.locations, cop, out, lookup)


def _records(message: CebMessage, locations: list[str], cop: str, out: CebSet,
             lookup: Mapping[str, str]) -> list[CebRecord]:
    kind, direction = message.kind, message.direction
    head_el = MESSAGES[message.message_type][3] or MESSAGES[message.message_type][2]
    resolve = lambda code: lookup.get(code, code) if code else code  # noqa: E731
    records = []
    for parsed, location in zip(message.records, locations):
        if not parsed.ok:
            for p in parsed.problems:
                out.violations.append(_refusal(location, kind, "", p.element, f"{p.code}: {p.message}"))
            continue
        head = parsed.record.head
        element = PARTY_ELEMENT[kind]
        may_send = {resolve(getattr(head, element))} | ({resolve(head.logisticsCode)} if kind == "list" else set())
        if resolve(cop) not in may_send:
            out.violations.append(Violation(location, PARTY_FIELD[kind], NOT_THE_PARTY, (
                f"BaseTransfer/copCode {cop!r} (the sender) is not {element} {getattr(head, element)!r}"
                + (f" nor logisticsCode {head.logisticsCode!r}" if kind == "list" else "")
                + ": the sender must be the record's party (spec §7.5)"), GATEWAY, f"{head_el}/{element}"))
        intent = mapping.intent(head)
        if intent == "invalid":
            out.violations.append(_refusal(location, kind, "", f"{head_el}/appType",
                                           f"appType {head.appType!r}: expected 1 (new), 2 (correction) or 3 (cancellation)"))
            continue
        if intent == "draft":
            out.notes.append(Violation(location, "(record)", "draft", (
                "appStatus 1 (draft): the gateway acknowledges it (120) and does not submit it"), GATEWAY,
                f"{head_el}/appStatus"))
            continue
        if intent == "cancellation" and kind != "order":
            out.violations.append(_refusal(location, kind, "", f"{head_el}/appType",
                                           "appType 3 cancels an order (CEB311/CEB303); send the order's cancellation"))
            continue
        if kind == "list" and head.tradeMode not in mapping.TRADE_MODES:
            out.violations.append(_refusal(location, kind, "trade_mode", "InventoryHead/tradeMode", (
                f"tradeMode {head.tradeMode!r}: expected one of {', '.join(sorted(mapping.TRADE_MODES))}")))
            continue
        if kind in ("order", "list"):
            key = (resolve(head.ebpCode), head.orderNo)
        elif kind == "payment":
            key = (resolve(head.payCode), head.payTransactionId)
        else:
            key = (resolve(head.logisticsCode), head.logisticsNo)
        records.append(CebRecord(
            location, message.message_type, kind, direction, parsed.record, intent, head_el, key,
            (resolve(head.logisticsCode), head.logisticsNo) if kind == "list" else None,
            fingerprint(parsed.record, intent)))
    return records


# --- pairing and mapping --------------------------------------------------------------------------------------


def _one_per_key(records: list[CebRecord], out: CebSet) -> list[CebRecord]:
    """Records sent twice identically are one record; an order's correction replaces it, its cancellation
    withdraws it; a second list of an order with other content is refused."""
    kept: dict[tuple[str, tuple], CebRecord] = {}
    for r in records:
        k = (r.kind, r.key)
        first = kept.get(k)
        if first is not None and first.fingerprint == r.fingerprint:
            out.notes.append(Violation(r.location, "(record)", "duplicate", (
                f"the same record as {first.location}: sent twice identically, it is one record (its receipt is "
                "the first one's)")))
            continue
        if r.intent == "cancellation":
            if first is not None:
                del kept[k]
            out.notes.append(Violation(r.location, "(record)", "cancellation", (
                f"cancels order {r.key[0]}:{r.key[1]}" + (f" ({first.location}), which is not submitted"
                                                         if first is not None else
                                                         "; the order is not in the set (the gateway cancels it "
                                                         "if it was submitted before)")), GATEWAY, f"{r.head_element}/appType"))
            continue
        if r.intent == "correction" and first is not None:
            out.notes.append(Violation(r.location, "(record)", "correction", (
                f"corrects {first.location}: the corrected order is checked"), GATEWAY, f"{r.head_element}/appType"))
            kept[k] = r
            continue
        if first is not None and r.kind == "list":
            out.violations.append(_refusal(r.location, "list", "order_no", "InventoryHead/orderNo", (
                f"order {r.key[0]}:{r.key[1]} already has a list ({first.location}) with other content")))
            continue
        if first is not None:
            # Orders, payments and waybills: both are documents, and the check between documents reports the
            # conflict (one business key, one content) as the gateway's 409.
            kept[(r.kind, r.key, r.location)] = r  # type: ignore[index]
            continue
        kept[k] = r
    return list(kept.values())


def _problem_violations(out: CebSet, r: CebRecord, done: mapping.Mapped, list_rec: CebRecord | None) -> None:
    """A mapping's problems as the refusal of the record they are in: the list's elements blame the list."""
    for p in done.problems:
        if p.element.startswith("Inventory") and list_rec is not None:
            out.violations.append(_refusal(list_rec.location, "list", p.field, p.element,
                                           f"{p.code}: {p.message} (completing {r.location})"))
        else:
            out.violations.append(_refusal(r.location, r.kind, p.field, p.element, f"{p.code}: {p.message}"))
        out.mapped_fields.setdefault(r.location, set()).add(p.field)


def _held_violations(out: CebSet, r: CebRecord, done: mapping.Mapped, waits_for: str) -> None:
    """A record the set never completes: its DOCUMENT_TIMEOUT, and what the REST validation already refuses
    in the rest of its body (the gateway checks that before holding it)."""
    out.violations.append(Violation(r.location, done.missing[0] if done.missing else "(record)", TIMEOUT, (
        f"{waits_for}; the gateway holds the {r.kind} (Return 2: waiting for {', '.join(done.missing)}) and, "
        "as nothing in the set completes it, times it out with DOCUMENT_TIMEOUT"), CUSTOMS,
        r.head_element))
    body = json.loads(json.dumps(done.body))
    for name in done.missing:
        if name.startswith("items["):
            body["items"][int(name[6:name.index("]")])]["hs_code"] = "0000000000"
        elif name == "platform_code":
            body[name] = r.key[0]
        elif name in _STAND_INS:
            body[name] = _STAND_INS[name]
    probe = Document(r.location, r.kind, body)
    for v in contract_violations(probe):
        if v.field not in done.missing and not v.field.startswith("consignee"):
            out.violations.append(Violation(v.location, v.field, v.code, v.message, v.refused_by,
                                            mapping.element_for(r.kind, r.direction, v.field)))


def _document(out: CebSet, r: CebRecord, done: mapping.Mapped, list_rec: CebRecord | None) -> None:
    out.documents.append(Document(r.location, r.kind, done.body))
    out.origins[r.location] = CebOrigin(r.kind, r.direction, list_rec.location if list_rec else None)


def build(records: list[CebRecord], out: CebSet, lookup: Mapping[str, str]) -> None:
    """Pairs the records and maps them into `out.documents` (see the module docstring)."""
    records = _one_per_key(records, out)
    lists_by_order = {r.key: r for r in records if r.kind == "list"}
    lists_by_waybill = {r.waybill: r for r in records if r.kind == "list"}
    orders = {r.key for r in records if r.kind == "order"}
    party = dict(lookup)
    for r in records:
        if r.kind == "order":
            listed = lists_by_order.get(r.key)
            done = mapping.complete_order(r.record, listed.record if listed else None, party)
            _problem_violations(out, r, done, listed)
            if listed is None:
                out.held_orders.add((done.body["platform_code"], done.body["order_no"]))
                if not done.problems:
                    _held_violations(out, r, done, f"no {LIST_MESSAGE[r.direction]} list names order "
                                     f"{r.key[0]}:{r.key[1]} in the set")
                continue
            _document(out, r, done, listed)
        elif r.kind == "payment":
            done = mapping.map_payment(r.record, party)
            _problem_violations(out, r, done, None)
            _document(out, r, done, None)
        elif r.kind == "waybill":
            listed = lists_by_waybill.get(r.key)
            done = mapping.complete_waybill(r.record, listed.record if listed else None, party)
            # No export message names a consignee: the export waybill goes without (WaybillIn, spec §7.5).
            done.missing = [m for m in done.missing if not (m == "consignee" and r.direction == "export")]
            _problem_violations(out, r, done, listed)
            if listed is None:
                if not done.problems:
                    _held_violations(out, r, done, f"no {LIST_MESSAGE[r.direction]} list names waybill "
                                     f"{r.key[0]}:{r.key[1]} in the set")
                continue
            _document(out, r, done, listed)
        elif r.key not in orders:
            out.violations.append(Violation(r.location, "order_no", TIMEOUT, (
                f"the list names order {r.key[0]}:{r.key[1]}, and no {ORDER_MESSAGE[r.direction]} order of the set "
                "is it; the gateway holds the list (Return 2: waiting for the order) and times it out with "
                "DOCUMENT_TIMEOUT"), CUSTOMS, "InventoryHead/orderNo"))


def read_ceb(files: Sequence[Path], lookup: Mapping[str, str] | None = None) -> CebSet:
    """Every message of `files` read, paired and mapped: see the module docstring. `lookup`: a code CEB names
    → the registered enterprise's code (`party_lookup`)."""
    out = CebSet()
    lookup = lookup or {}
    records: list[CebRecord] = []
    for path in files:
        records += read_message(Path(path), out, lookup)
    build(records, out, lookup)
    return out


def annotate(violations: list[Violation], ceb: CebSet, documents: Sequence[Document]) -> list[Violation]:
    """The existing checks' violations on documents made from CEB records, each given its XML element
    (`mapping.element_for`; an element of the list names the list's location too). Dropped: a contract
    violation of a field the mapping already refused (reported once, with the record's refusal code), and a
    payment's or waybill's `ORDER_MISMATCH` for an order the set holds until it times out (that order's
    DOCUMENT_TIMEOUT says it)."""
    facts = {d.location: d.facts for d in documents}
    out = []
    for v in violations:
        origin = ceb.origins.get(v.location)
        if origin is None:
            out.append(v)
            continue
        refused = ceb.mapped_fields.get(v.location, set()) if v.element is None else set()
        if v.field in refused or any(v.field.startswith(f + ".") or v.field.startswith(f + "[") for f in refused if f):
            continue
        f = facts.get(v.location)
        if v.code == "ORDER_MISMATCH" and f is not None and (f.platform_code, f.order_no) in ceb.held_orders:
            continue
        element = v.element
        if element is None and not v.field.startswith("("):
            element = mapping.element_for(origin.kind, origin.direction, v.field)
            if element.startswith("Inventory") and origin.list_location:
                element += f" of {origin.list_location}"
        out.append(Violation(v.location, v.field, v.code, v.message, v.refused_by, element))
    return out


# --- good messages for an integrator to start from ------------------------------------------------------------


def example_messages(app_time: Any = None) -> dict[str, bytes | dict]:
    """File name → content: the contract examples (`golden.example_documents`) as customs' messages, written
    by `tooling.ceb.writer` as an integrator's system would send them — the import as CEB311, CEB411, CEB511
    and CEB621, the export as CEB303, CEB505 and CEB603, each sent by its party — beside the enterprise
    registrations as JSON (bodies of `POST /v1/enterprises`), so that the parties are checked too. The set
    passes the platform mode clean. Messages are bytes, registrations dicts."""
    from tooling.contracts.suite.golden import example_documents

    docs = example_documents()
    order, pay, waybill = (docs["order-import_9610.json"], docs["payment-import_payment.json"],
                           docs["waybill-import_waybill.json"])
    x_order, x_waybill = docs["order-export_9610.json"], docs["waybill-export_waybill.json"]
    at = {"app_time": app_time} if app_time is not None else {}
    out: dict[str, bytes | dict] = {name: body for name, body in docs.items() if name.startswith("enterprise-")}
    out |= {
        "import-1-CEB311-order.xml": writer.import_order(order, cop_code=order["platform_code"], **at),
        "import-2-CEB411-payment.xml": writer.payment(pay, cop_code=pay["payment_code"], **at),
        "import-3-CEB511-waybill.xml": writer.import_waybill(waybill, cop_code=waybill["logistics_code"], **at),
        "import-4-CEB621-list.xml": writer.import_list(order, waybill, cop_code=waybill["logistics_code"],
                                                       agent_code=waybill["logistics_code"], **at),
        "export-1-CEB303-order.xml": writer.export_order(x_order, cop_code=x_order["platform_code"], **at),
        "export-2-CEB505-waybill.xml": writer.export_waybill(x_waybill, cop_code=x_waybill["logistics_code"], **at),
        "export-3-CEB603-list.xml": writer.export_list(x_order, x_waybill, cop_code=x_order["ecommerce_code"], **at),
    }
    return out


__all__ = ["CebSet", "CebRecord", "CebMessageFile", "read_ceb", "annotate", "party_lookup", "example_messages", "KINDS"]
