"""The receipt messages the gateway answers with (spec §7.5): pure functions, no I/O.

- `message_receipt(message, outcomes, at)`: the synchronous answer to an accepted message: CEB312, 412,
  512, 622 (imports) or CEB304, 506, 604 (exports), one `…Return` per record, in record order, each with the
  `Outcome` the route decided: `accepted()` (120; an identical replay too), `held(waiting_for)` (2, saying
  what it waits for), `refused(kind, problems)` (customs' negative codes, `returnInfo` naming our field and the
  XML element) or `not_the_party(...)` (-10102).
- `decision_receipt(direction, keys, status, reasons, at)`: customs' decision on a list, as CEB622 (imports)
  or CEB604 (exports) for the polling feed: 120 accepted, 300 document review (yellow), 500 inspection (red),
  800 released, 100 returned with one `[Code:<REASON>;Desc:<text>]` per reason of §4.4.
- `format_error_receipt(...)`: CEB900 for a well-formed message the gateway does not accept.
- `validate_receipt(xml)`: the errors of strict validation against the official schema (empty when valid).

Every receipt is built to validate strictly against `xsd/ceb-import.xsd` or `xsd/ceb-export.xsd` (2022-05
edition): values are clipped to the schema's lengths, and an element the schema requires but the record
did not give is filled as documented at `_value`. Guids are stable: the same inputs give the same receipt,
byte for byte (a replay is answered identically). Times are China time, `yyyyMMddHHmmssSSS` (17 digits).
"""
from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from lxml import etree

from services.gateway.ceb.messages import (
    CHINA_TIME,
    NS,
    CebMessage,
    ListRecord,
    MalformedMessage,
    _DOCTYPE,
    _PARSER_OPTIONS,
)

XSD_DIR = Path(__file__).with_name("xsd")
_GUID_NAMESPACE = uuid.UUID("6f1c2a3e-9a57-4c1e-8f1e-0c2b5e7d4a10")  # ours: names the gateway's receipts

# Customs' refusal codes (spec §7.5). The export messages use the same codes: customs' export system has its
# own, which the spec does not name.
REFUSAL_CODES = {"order": "-301008", "payment": "-401009", "waybill": "-504011", "list": "-621001"}
NOT_THE_PARTY = "-10102"
FORMAT_ERROR = "-1"  # CEB900: "a number below 0 means the message failed the format check" (ceb-import.xsd)

# The decision on a list (§4.4) as customs' list receipt status.
DECISION_STATUS = {"accepted": "120", "document_review": "300", "inspection": "500", "released": "800",
                   "returned": "100"}

RECEIPT_TYPES = {
    "CEB311Message": ("CEB312Message", "OrderReturn"), "CEB303Message": ("CEB304Message", "OrderReturn"),
    "CEB411Message": ("CEB412Message", "PaymentReturn"),
    "CEB511Message": ("CEB512Message", "LogisticsReturn"), "CEB505Message": ("CEB506Message", "LogisticsReturn"),
    "CEB621Message": ("CEB622Message", "InventoryReturn"), "CEB603Message": ("CEB604Message", "InventoryReturn"),
}

# Each Return's elements in schema order, with (maximum length, exact length?): the official schemas'.
_RETURN_FIELDS: dict[tuple[str, str], list[tuple[str, int, bool]]] = {
    ("import", "OrderReturn"): [("guid", 36, True), ("ebpCode", 18, False), ("ebcCode", 18, False),
                                ("orderNo", 60, False)],
    ("export", "OrderReturn"): [("guid", 36, True), ("ebpCode", 18, False), ("ebcCode", 18, False),
                                ("orderNo", 60, False)],
    ("import", "PaymentReturn"): [("guid", 36, True), ("payCode", 18, False), ("payTransactionId", 60, False)],
    ("import", "LogisticsReturn"): [("guid", 36, True), ("logisticsCode", 18, False), ("logisticsNo", 60, False)],
    ("export", "LogisticsReturn"): [("guid", 36, True), ("logisticsCode", 18, False), ("logisticsNo", 32, False)],
    # CEB622: customsCode, ebpCode, ebcCode, agentCode, invtNo are optional (left out when unknown).
    ("import", "InventoryReturn"): [("guid", 36, True), ("customsCode?", 4, True), ("ebpCode?", 18, False),
                                    ("ebcCode?", 18, False), ("agentCode?", 18, False), ("copNo", 20, False),
                                    ("preNo", 18, True), ("invtNo?", 18, True)],
    ("export", "InventoryReturn"): [("guid", 36, True), ("agentCode", 18, False), ("copNo", 30, False),
                                    ("preNo", 18, True), ("invtNo", 20, False), ("ebcCode", 18, False),
                                    ("ebpCode", 18, False), ("orderNo", 60, False), ("statisticsFlag", 1, True)],
}


@dataclass(frozen=True)
class Outcome:
    """What the gateway did with one record: `status` (customs' returnStatus) and `info` (returnInfo)."""

    status: str
    info: str


def accepted(info: str = "accepted") -> Outcome:
    """120: the record was taken (an identical replay of a taken record too)."""
    return Outcome("120", info)


def held(waiting_for: Iterable[str], what: str = "") -> Outcome:
    """2: the record is kept and waits for another record; `waiting_for` names our missing fields (e.g.
    `items[0].hs_code`), `what` the message that gives them (e.g. "CEB621 list")."""
    fields = ", ".join(waiting_for)
    return Outcome("2", f"held: waiting for {what + ' for ' if what else ''}{fields}")


def refused(kind: str, problems: Iterable[Any]) -> Outcome:
    """A refused record, with customs' negative code for its kind ("order", "payment", "waybill", "list").
    `problems`: objects with `element` and `message`, and `field` (our body's field) when known —
    `messages.RecordProblem`, `mapping.MappingProblem`, or the REST validation's problems adapted to them.
    returnInfo lists each as `<field> (<XML element>): <message>`."""
    parts = []
    for p in problems:
        field = getattr(p, "field", None)
        parts.append(f"{field + ' ' if field else ''}({p.element}): {p.message}")
    return Outcome(REFUSAL_CODES[kind], "; ".join(parts) or "refused")


def not_the_party(element: str, code: str) -> Outcome:
    """-10102: the caller is not the record's party (spec §7.5: copCode and the party code must be the caller)."""
    return Outcome(NOT_THE_PARTY, f"the caller is not {element} {code!r}")


def return_time(at: datetime) -> str:
    """`at` as customs' receipt time: China time, yyyyMMddHHmmssSSS (17 digits). `at` must be timezone-aware."""
    if at.tzinfo is None:
        raise ValueError("a receipt time must be timezone-aware")
    local = at.astimezone(CHINA_TIME)
    return local.strftime("%Y%m%d%H%M%S") + f"{local.microsecond // 1000:03d}"


def stable_guid(*parts: str) -> str:
    """A 36-character uppercase guid, the same for the same parts (UUID 5 in the gateway's namespace)."""
    return str(uuid.uuid5(_GUID_NAMESPACE, "\x1f".join(parts))).upper()


def pre_no(*parts: str) -> str:
    """Our 18-character pre-entry number for a list (customs' `preNo`; customs assigns its own): "SW" and 16
    digits derived from the list's identity, so the same list always gets the same number."""
    digest = int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")
    return f"SW{digest % 10 ** 16:016d}"


def _clip(value: str, size: int) -> str:
    return value[:size]


def _value(name: str, keys: dict[str, str], size: int, exact: bool, record_guid: str) -> str | None:
    """The value of one Return element. Missing required values are filled so the receipt stays valid:
    a record guid that is not 36 characters → a stable guid of the record; `preNo` → `pre_no(...)`;
    `statisticsFlag` → "A" (simplified declaration); other texts → "-" (their schema requires ≥ 1 character).
    Optional elements without a value are left out (None)."""
    optional = name.endswith("?")
    name = name.rstrip("?")
    value = keys.get(name, "")
    if name == "guid":
        return value if len(value) == 36 else record_guid
    if name == "preNo" and len(value) != 18:
        return pre_no(keys.get("ebcCode", ""), keys.get("copNo", ""), keys.get("orderNo", ""))
    if name == "statisticsFlag" and len(value) != 1:
        return "A"
    if exact and value and len(value) != size:
        return None if optional else _clip(value.ljust(size, "0"), size)
    if not value:
        return None if optional else "-"
    return _clip(value, size)


def _root(message_type: str, guid: str) -> Any:
    return etree.Element(f"{{{NS}}}{message_type}", nsmap={"ceb": NS}, guid=guid, version="1.0")


def _sub(parent: Any, name: str, text: str) -> None:
    etree.SubElement(parent, f"{{{NS}}}{name}").text = text


def _serialize(root: Any) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _append_return(root: Any, direction: str, element: str, keys: dict[str, str], outcome: Outcome,
                   at: datetime, record_guid: str) -> None:
    ret = etree.SubElement(root, f"{{{NS}}}{element}")
    for name, size, exact in _RETURN_FIELDS[(direction, element)]:
        value = _value(name, keys, size, exact, record_guid)
        if value is not None:
            _sub(ret, name.rstrip("?"), value)
    _sub(ret, "returnStatus", _clip(outcome.status, 10))
    _sub(ret, "returnTime", return_time(at))
    _sub(ret, "returnInfo", _clip(outcome.info or "-", 1000))


def message_receipt(message: CebMessage, outcomes: list[Outcome], at: datetime) -> bytes:
    """The receipt message answering `message` (UTF-8 XML bytes): one Return per record, in order, with the
    outcome at the same position (`len(outcomes)` must equal the number of records). Each Return names its
    record by the keys it was sent with (`ParsedRecord.keys`), even a record that could not be read. The
    receipt's guid is stable over the message's bytes and the outcomes, so a replay gets the same receipt
    when `at` is the same (the route stores the answer for replays)."""
    if len(outcomes) != len(message.records):
        raise ValueError(f"{len(outcomes)} outcomes for {len(message.records)} records")
    receipt_type, element = RECEIPT_TYPES[message.message_type]
    digest = hashlib.sha256(message.raw).hexdigest()
    guid = stable_guid(receipt_type, message.guid or "", digest,
                       *(f"{o.status}:{o.info}" for o in outcomes))
    root = _root(receipt_type, guid)
    for rec, outcome in zip(message.records, outcomes):
        keys = rec.keys
        record_guid = stable_guid(receipt_type, digest, str(rec.index))
        _append_return(root, message.direction, element, keys, outcome, at, record_guid)
    return _serialize(root)


def record_receipt(message_type: str, direction: str, keys: dict[str, str], outcome: Outcome, at: datetime,
                   *source: str) -> tuple[str, str, bytes]:
    """A receipt for ONE record outside the answer to its message (the polling feed): a held record's 120
    when the record that completes it arrives, its refusal then, or its DOCUMENT_TIMEOUT. `message_type` is
    the record's own message (e.g. "CEB311Message"), `keys` the record's `ParsedRecord.keys` as kept.
    `source` names the event (e.g. the record's key and what completed it): the guid is stable over it, so
    the same event gives the same receipt. Returns (guid, receipt message type, UTF-8 XML)."""
    receipt_type, element = RECEIPT_TYPES[message_type]
    guid = stable_guid(receipt_type, *source, outcome.status)
    root = _root(receipt_type, guid)
    _append_return(root, direction, element, keys, outcome, at, stable_guid(receipt_type, *source, "record"))
    return guid, receipt_type, _serialize(root)


def list_keys(record: ListRecord) -> dict[str, str]:
    """What a decision receipt needs from a list (CEB621/CEB603 head): the route keeps it with the list."""
    h = record.head
    names = ("guid", "customsCode", "ebpCode", "ebcCode", "agentCode", "copNo", "preNo", "invtNo", "orderNo",
             "statisticsFlag")
    return {n: str(getattr(h, n)) for n in names if getattr(h, n, None) is not None}


def decision_receipt(direction: str, keys: dict[str, str], decision: str, reasons: Iterable[tuple[str, str]],
                     at: datetime, event_id: str) -> tuple[str, str, bytes]:
    """Customs' decision on a list, as CEB622 (import) or CEB604 (export) with one InventoryReturn.
    `decision`: a key of `DECISION_STATUS` ("accepted" 120, "document_review" 300 yellow, "inspection" 500
    red, "released" 800, "returned" 100); `reasons`: (code, text) pairs of §4.4 (`AMOUNT_MISMATCH`, …),
    written as `[Code:<REASON>;Desc:<text>]` each; `keys` from `list_keys`; `event_id` identifies the decision
    (e.g. the customs event's id): the guid is stable over it, so a replayed feed gives the same receipt.
    Returns (guid, receipt message type, UTF-8 XML), as `record_receipt` does."""
    status = DECISION_STATUS[decision]
    info = "".join(f"[Code:{code};Desc:{text}]" for code, text in reasons) or decision
    receipt_type = "CEB622Message" if direction == "import" else "CEB604Message"
    guid = stable_guid(receipt_type, event_id)
    root = _root(receipt_type, guid)
    _append_return(root, direction, "InventoryReturn", keys, Outcome(status, info), at,
                   stable_guid(receipt_type, event_id, "record"))
    return guid, receipt_type, _serialize(root)


def decision_of(status: str, channel: str | None) -> str:
    """§4.4's customs status and channel as a `DECISION_STATUS` key: released → "released"; inspection on
    the yellow channel → "document_review", on red (or unknown) → "inspection"; rejected → "returned";
    pending → "accepted". ValueError for "cancelled" (a cancellation has its own messages, CEB623/624)."""
    if status == "released":
        return "released"
    if status == "inspection":
        return "document_review" if channel == "yellow" else "inspection"
    if status == "rejected":
        return "returned"
    if status == "pending":
        return "accepted"
    raise ValueError(f"no list receipt for customs status {status!r}")


def format_error_receipt(original_type: str, info: str, at: datetime, body: bytes = b"") -> bytes:
    """CEB900 (`MessageReturn`): the message could not be taken as a whole (unknown type, 0 or more than 100
    records). `original_type` is the root element's name as sent; the guid is stable over the body."""
    guid = stable_guid("CEB900Message", hashlib.sha256(body).hexdigest(), original_type, info)
    root = _root("CEB900Message", guid)
    ret = etree.SubElement(root, f"{{{NS}}}MessageReturn")
    _sub(ret, "guid", guid)
    _sub(ret, "returnStatus", FORMAT_ERROR)
    _sub(ret, "returnInfo", _clip(info, 5000))
    _sub(ret, "returnTime", return_time(at))
    _sub(ret, "oriCopMsgId", "")
    _sub(ret, "oriMessageType", _clip(original_type, 15))
    _sub(ret, "oriBizMessage", "")
    return _serialize(root)


# --- validation and reading receipts ---------------------------------------------------------------------

_EXPORT_TYPES = {"CEB304Message", "CEB506Message", "CEB604Message", "CEB606Message"}


@lru_cache(maxsize=2)
def schema(direction: str) -> etree.XMLSchema:
    """The official schema of `direction` ("import" or "export"), loaded once from `xsd/`."""
    path = XSD_DIR / ("ceb-import.xsd" if direction == "import" else "ceb-export.xsd")
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(path), parser))


def validate_receipt(xml: bytes) -> list[str]:
    """The schema errors of a receipt (empty list when valid), against the import schema, or the export one
    for CEB304/506/604/606. Strict: element order, lengths and required elements as the schema says."""
    doc = etree.fromstring(xml, etree.XMLParser(**_PARSER_OPTIONS))
    direction = "export" if etree.QName(doc).localname in _EXPORT_TYPES else "import"
    s = schema(direction)
    if s.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in s.error_log]


def parse_receipt(data: bytes) -> tuple[str, list[dict[str, str]]]:
    """Read a receipt message (ours or customs' samples): its type and, per `…Return`, its elements as text.
    The same hardening as `messages.parse_message` (no DOCTYPE, no entities)."""
    if _DOCTYPE.search(data):
        raise MalformedMessage("a DOCTYPE or ENTITY declaration is not accepted in a CEB message")
    try:
        root = etree.fromstring(data, etree.XMLParser(**_PARSER_OPTIONS))
    except etree.XMLSyntaxError as e:
        raise MalformedMessage(f"not well-formed XML: {e}") from None
    returns = []
    for ret in root:
        if isinstance(ret.tag, str) and re.fullmatch(r"\w+Return", etree.QName(ret).localname):
            returns.append({etree.QName(c).localname: (c.text or "") for c in ret if isinstance(c.tag, str)})
    return etree.QName(root).localname, returns
