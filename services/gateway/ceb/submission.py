"""Taking one CEB message (spec §7.5): each record is screened, kept, completed by its partner record and
submitted as a §4 document through the REST intake's own code path, in ONE unit of work.

1. `screen` (no database): per record, in message order: readable (else customs' refusal code with the
   element), the caller is the record's party (-10102), what it asks (`appType`/`appStatus`), its business
   key, and the body it maps to, checked with exactly the REST validation (`intake.prepare`) except for the
   fields only its partner record can give.
2. `take` (in the caller's unit of work): the records of the message and their partners are read with two
   queries; each record is answered in order, seeing the earlier ones:
   - an identical replay gets the answer it got before (`outcome` kept with the row);
   - a payment is complete on its own; an order waits for its list (HS codes, trade mode, destination); a
     waybill waits for the list that names it (the platform; for exports the order); a list completes both;
   - a complete document goes through `intake.accept` (new documents, a lot per kind, orders first) or
     `changes.correct_order` / `changes.cancel_order` (appType 2 and 3 of a submitted order): the same
     validation, authorization, idempotency, durability and who-files-for-whom rules as REST;
   - a record that was waiting and is now completed (or refused) by another enterprise's record gets its
     receipt in the polling feed (`ceb_receipts`), as does every customs decision about a list (handlers.py).

Held records are kept encrypted (they hold identity numbers) in `ceb_records`; a record's elements that §4
has no field for are kept there with it, and shown (but for personal data) in the order's trace.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nacl.secret import SecretBox

from contracts.identifiers import order_key
from services.gateway import changes, intake, views
from services.gateway.auth import Caller
from services.gateway.ceb import mapping, receipts
from services.gateway.ceb.messages import CebMessage, ParsedRecord, RecordProblem, record_from_json, record_to_json
from services.gateway.ceb.store import (
    RecordKey,
    feed_row,
    load_records,
    lock_key,
    open_record,
    save_records,
    seal_record,
)
from services.gateway.store import add_trace_entries, enterprise_codes
from shared.db import lock_keys
from shared.logs import mask_personal_data
from shared.http import Problem

# The element naming the record's party, which must be the caller (spec §7.5). A list may also be sent by
# the logistics firm acting for the seller.
PARTY_ELEMENT = {"order": "ebpCode", "payment": "payCode", "waybill": "logisticsCode", "list": "ebcCode"}
DOCUMENT_KIND = {"order": intake.ORDER, "payment": intake.PAYMENT, "waybill": intake.WAYBILL}
# What §4 needs that only a partner gives, and a valid stand-in used to check the rest of the body now.
_STAND_INS = {"trade_mode": "9610", "destination_country": "US", "platform_code": None, "order_no": "-"}
# Elements never shown in a trace: they name or reach a person (spec §6; the record keeps them, encrypted).
PERSONAL_ELEMENTS = {"buyerName", "buyerIdNumber", "buyerIdType", "buyerTelephone", "buyerRegNo", "consignee",
                     "consigneeTelephone", "consigneeAddress", "consigneeDistrict", "payerName", "payerIdNumber",
                     "payerIdType", "telephone", "ebcTelephone"}
# The record's head element and the element holding its business number, for refusals naming them.
HEAD_ELEMENT = {"CEB311Message": "OrderHead", "CEB303Message": "OrderHead", "CEB411Message": "PaymentHead",
                "CEB511Message": "LogisticsHead", "CEB505Message": "Logistics", "CEB621Message": "InventoryHead",
                "CEB603Message": "InventoryHead"}
NUMBER_ELEMENT = {"order": "orderNo", "payment": "payTransactionId", "waybill": "logisticsNo", "list": "orderNo"}
WAITING_FOR_MAX = 500  # ceb_records.waiting_for
# Parts of element names that name or reach a person, for elements outside the schemas (a sender's own).
_PERSONAL_PARTS = ("buyer", "payer", "consignee", "idnumber", "idno", "telephone", "phone", "mobile", "email",
                   "address")


def _personal(name: str) -> bool:
    lowered = name.lower()
    return name in PERSONAL_ELEMENTS or any(part in lowered for part in _PERSONAL_PARTS)


_NOISE = {"guid", "appType", "appTime", "appStatus", "gnum", "unit_code"}


@dataclass
class Arrival:
    """One record of the message on its way: `outcome` is its answer once decided."""

    parsed: ParsedRecord
    kind: str
    direction: str
    message_type: str
    intent: str = ""
    key: RecordKey | None = None
    waybill: tuple[str, str] | None = None  # a list's waybill (logistics code, waybill no)
    fingerprint: str = ""
    outcome: receipts.Outcome | None = None
    twin: "Arrival | None" = None  # an identical earlier record of the same message: answered as it is
    # What `screen` found, kept so taking the record does not map and validate it again: the record's own
    # mapping (no partner), and when that needed no stand-in (a payment) the REST-validated document.
    mapped: mapping.Mapped | None = None
    prepared: intake.Prepared | None = None


def _party(lookup: dict[str, str], code: str | None) -> str | None:
    return lookup.get(code, code) if code else code


def fingerprint(record: Any, intent: str) -> str:
    """What makes two records "the same record sent twice": every value read, but the record's guid and
    application time (a resend gets new ones) — and what it asks."""
    data = record_to_json(record)
    head = {k: v for k, v in data["head"].items() if k not in ("guid", "appTime")}
    return hashlib.sha256(json.dumps([intent, data["direction"], head, data["lines"], data["unknown"]],
                                     sort_keys=True, default=str).encode()).hexdigest()


def _problems(kind: str, direction: str, body: dict) -> list[RecordProblem | mapping.MappingProblem]:
    """A REST refusal's body (problem details) as problems naming our field and the XML element."""
    errors = body.get("errors") or [{"field": "", "message": body.get("detail") or body.get("title", "refused")}]
    out = []
    for e in errors:
        f = e.get("field") or ""
        element = mapping.element_for(kind, direction, f) if f and kind != "list" else "(record)"
        out.append(mapping.MappingProblem(f, element, e.get("code", "refused"), e.get("message", "")))
    return out


def _refusal(kind: str, direction: str, status: int, body: dict) -> receipts.Outcome:
    outcome = receipts.refused(kind, _problems(kind, direction, body))
    return receipts.Outcome(outcome.status, f"HTTP {status}: {outcome.info}")


def screen(message: CebMessage, caller: Caller, lookup: dict[str, str]) -> list[Arrival]:
    """Every record of `message` as an Arrival (spec §7.5), in order, without the database: refused ones
    carry their `outcome`. `lookup`: a code named in the message → the registered enterprise code (a
    registration's customs code or its own code)."""
    out = []
    seen: dict[RecordKey, Arrival] = {}
    for parsed in message.records:
        a = Arrival(parsed, message.kind, message.direction, message.message_type)
        out.append(a)
        if not parsed.ok:
            a.outcome = receipts.refused(a.kind, parsed.problems)
            continue
        head = parsed.record.head
        element = PARTY_ELEMENT[a.kind]
        party = _party(lookup, getattr(head, element))
        may_send = {party} | ({_party(lookup, head.logisticsCode)} if a.kind == "list" else set())
        if caller.code not in may_send:
            a.outcome = receipts.not_the_party(element, getattr(head, element))
            continue
        if a.kind == "list" and not ((caller.code == party and "ecommerce" in caller.roles)
                                     or (caller.code == _party(lookup, head.logisticsCode) and "logistics" in caller.roles)):
            # The seller (ebcCode, role ecommerce) or the logistics firm acting for it (logisticsCode, role
            # logistics): a payment firm naming itself as the list's logistics firm is not either.
            a.outcome = receipts.refused("list", [mapping.MappingProblem(
                "", "InventoryHead/ebcCode", "forbidden", "a list is sent by its seller (ebcCode, role ecommerce) "
                "or by its logistics firm (logisticsCode, role logistics)")])
            continue
        a.intent = mapping.intent(head)
        if a.intent == "invalid":
            name, why = mapping.invalid_app(head)
            a.outcome = receipts.refused(a.kind, [RecordProblem(f"{HEAD_ELEMENT[a.message_type]}/{name}", "invalid", why)])
            continue
        if a.intent == "draft":
            a.outcome = receipts.accepted("draft (appStatus 1): acknowledged, not submitted")
            continue
        if a.intent == "cancellation" and a.kind != "order":
            a.outcome = receipts.refused(a.kind, [RecordProblem(
                f"{HEAD_ELEMENT[a.message_type]}/appType", "invalid",
                "appType 3 cancels an order (CEB311/CEB303); send the order's cancellation")])
            continue
        owner = party if a.kind != "list" else _party(lookup, head.ebpCode)
        a.key = (a.kind, owner, getattr(head, NUMBER_ELEMENT[a.kind]))
        if a.kind == "list":
            a.waybill = (_party(lookup, head.logisticsCode), head.logisticsNo)
            if head.tradeMode not in mapping.TRADE_MODES:
                a.outcome = receipts.refused("list", [mapping.MappingProblem(
                    "trade_mode", "InventoryHead/tradeMode", "invalid",
                    f"tradeMode {head.tradeMode!r}: expected one of {', '.join(sorted(mapping.TRADE_MODES))}")])
                continue
        a.fingerprint = fingerprint(parsed.record, a.intent)
        # Two different records under one key in one message: which one is meant cannot be told; the first
        # stands and the later one is refused (an identical repeat gets the first one's answer).
        first = seen.setdefault(a.key, a)
        if first is not a:
            if first.fingerprint != a.fingerprint:
                a.outcome = receipts.refused(a.kind, [RecordProblem(
                    f"{HEAD_ELEMENT[a.message_type]}/{NUMBER_ELEMENT[a.kind]}", "duplicate",
                    f"record {first.parsed.index + 1} of this message has the same key with other content")])
                continue
            a.twin = first
            continue
        if a.kind != "list" and a.intent != "cancellation":
            a.outcome = early_refusal(a, caller, lookup)
    return out


def _map(kind: str, record: Any, list_record: Any, lookup: dict[str, str]) -> mapping.Mapped:
    if kind == "order":
        return mapping.complete_order(record, list_record, lookup)
    if kind == "waybill":
        done = mapping.complete_waybill(record, list_record, lookup)
        # No export message names a consignee; an export waybill goes without (WaybillIn: consignee optional
        # once its export order is filed).
        done.missing = [m for m in done.missing if not (m == "consignee" and record.direction == "export")]
        return done
    return mapping.map_payment(record, lookup)


def early_refusal(a: Arrival, caller: Caller, lookup: dict[str, str]) -> receipts.Outcome | None:
    """The record's refusal now, by its own content: its mapping problems, or what the REST validation
    refuses in its body with stand-ins for the fields only its partner gives (those are not judged here).
    Keeps the mapping on `a` (and the validated document when nothing was stood in) for `take`."""
    mapped = a.mapped = _map(a.kind, a.parsed.record, None, lookup)
    if mapped.problems:
        return receipts.refused(a.kind, mapped.problems)
    body = _with_stand_ins(mapped, caller) if mapped.missing else mapped.body
    prepared = intake.prepare(caller, DOCUMENT_KIND[a.kind], body)
    if not isinstance(prepared, intake.Outcome) and not mapped.missing:
        a.prepared = prepared
    if isinstance(prepared, intake.Outcome):
        missing = set(mapped.missing)
        problems = [p for p in _problems(a.kind, a.direction, prepared.body) if p.field not in missing]
        if problems:
            return _refusal(a.kind, a.direction, prepared.status, {**prepared.body, "errors": [
                {"field": p.field, "code": p.code, "message": p.message} for p in problems]})
    return None


def _with_stand_ins(mapped: mapping.Mapped, caller: Caller) -> dict:
    body = json.loads(json.dumps(mapped.body))
    for name in mapped.missing:
        if name.startswith("items["):
            index = int(name[6:name.index("]")])
            body["items"][index]["hs_code"] = "0000000000"
        elif name == "platform_code":
            body[name] = caller.code
        elif name in _STAND_INS:
            body[name] = _STAND_INS[name]
    return body


# --- taking the message -----------------------------------------------------------------------------------


@dataclass
class Kept:
    """A row of `ceb_records` in memory: its columns (record sealed) and the record, typed."""

    row: dict[str, Any]
    record: Any
    changed: bool = False

    @property
    def key(self) -> RecordKey:
        return (self.row["kind"], self.row["party_code"], self.row["number"])

    @property
    def live(self) -> bool:
        """Held or submitted: a record that still completes, or is completed by, its partners."""
        return self.row["state"] in ("held", "submitted")


@dataclass
class Submission:
    """A §4 document made complete now: who sent the records it is made of, and what to do with it."""

    kind: str
    body: dict
    sender: str
    rows: list[RecordKey]  # the records whose state follows the document's fate (first: the document's own)
    blame_list: RecordKey | None  # the list it was completed with (refusals of list elements blame it)
    arrival: Arrival | None  # the record of this message waiting for the answer, if any
    correction: bool = False
    extras: dict = field(default_factory=dict)
    outcome: intake.Outcome | None = None
    prepared: intake.Prepared | None = None  # `body` already validated for `sender` (screen), if it was


@dataclass
class Taking:
    """What one message's records do to `ceb_records`, the feed, and the intake."""

    box: SecretBox
    caller: str  # the enterprise sending the message
    at: datetime
    expires_at: datetime
    lookup: dict[str, str]
    senders: dict[str, Caller]
    kept: dict[RecordKey, Kept] = field(default_factory=dict)
    lists_by_waybill: dict[tuple[str, str], RecordKey] = field(default_factory=dict)
    submissions: list[Submission] = field(default_factory=list)
    planned: set[RecordKey] = field(default_factory=set)  # records whose document is submitted in this message
    feed: list[dict] = field(default_factory=list)
    traces: list[views.TraceEntry] = field(default_factory=list)

    def keep(self, row: Any) -> Kept:
        data = open_record(self.box, row.record)
        kept = Kept(dict(row._mapping), record_from_json(row.kind, data))
        self.kept[kept.key] = kept
        if row.kind == "list" and row.waybill_code:
            self.lists_by_waybill[(row.waybill_code, row.waybill_no)] = kept.key
        return kept

    def put(self, a: Arrival, sender: str, state: str, outcome: receipts.Outcome, waiting_for: str | None) -> Kept:
        """Keeps the arriving record under its key (a replacement of the one held, if any)."""
        record = a.parsed.record
        old = self.kept.get(a.key)  # type: ignore[arg-type]
        row = {
            "kind": a.kind, "party_code": a.key[1], "number": a.key[2], "direction": a.direction,  # type: ignore[index]
            "message_type": a.message_type, "sender": sender, "state": state, "waiting_for": waiting_for,
            "fingerprint": a.fingerprint, "record": seal_record(self.box, record_to_json(record)),
            "keys": dict(a.parsed.keys), "signature": None,
            "waybill_code": a.waybill[0] if a.waybill else None, "waybill_no": a.waybill[1] if a.waybill else None,
            "outcome": outcome.status, "outcome_info": outcome.info[:1000],
            "received_at": old.row["received_at"] if old else self.at, "updated_at": self.at,
            "expires_at": self.expires_at if state == "held" else None,
        }
        kept = self.kept[a.key] = Kept(row, record, changed=True)  # type: ignore[index]
        if a.waybill:
            self.lists_by_waybill[a.waybill] = a.key  # type: ignore[assignment]
        return kept

    def settle(self, key: RecordKey, state: str, outcome: receipts.Outcome, *, notify: bool) -> None:
        """Moves a kept record to `state` with `outcome`; `notify`: its sender learns it from the feed (the
        record was answered before, in another message)."""
        kept = self.kept[key]
        kept.row.update(state=state, outcome=outcome.status, outcome_info=outcome.info[:1000], updated_at=self.at,
                        waiting_for=None if state != "held" else kept.row["waiting_for"],
                        expires_at=kept.row["expires_at"] if state == "held" else None)
        kept.changed = True
        if notify:
            self.feed.append(feed_row(kept.row["sender"], receipts.record_receipt(
                kept.row["message_type"], kept.row["direction"], kept.row["keys"], outcome, self.at,
                *key, kept.row["fingerprint"], state), self.at))


def _same_seller(t: Taking, order: Any, list_record: Any) -> bool:
    """Whether the list is the order's seller's (spec §7.2: a seller's list completes only its own orders)."""
    return _party(t.lookup, order.head.ebcCode) == _party(t.lookup, list_record.head.ebcCode)


def _other_seller(list_record: Any) -> receipts.Outcome:
    return receipts.refused("list", [mapping.MappingProblem(
        "ecommerce_code", "InventoryHead/ebcCode", "mismatch",
        f"the order names another seller than the list's ebcCode {list_record.head.ebcCode!r}")])


def _waiting_for(missing: list[str]) -> str:
    """What a held record waits for, as kept (at most WAITING_FOR_MAX characters): a hundred lines' HS codes
    are said once, not a hundred times."""
    lines = [m for m in missing if m.startswith("items[")]
    said = [m for m in missing if not m.startswith("items[")]
    if len(lines) > 1:
        said.insert(0, f"items[0..{len(lines) - 1}].hs_code")
    elif lines:
        said.insert(0, lines[0])
    return ", ".join(said)[:WAITING_FOR_MAX]


def _list_of_order(t: Taking, platform: str, order_no: str) -> Kept | None:
    kept = t.kept.get(("list", platform, order_no))
    return kept if kept is not None and kept.live else None


def _list_of_waybill(t: Taking, waybill: tuple[str, str]) -> Kept | None:
    key = t.lists_by_waybill.get(waybill)
    kept = t.kept.get(key) if key else None
    return kept if kept is not None and kept.live else None


def _waiting(kind: str, direction: str, missing: list[str]) -> receipts.Outcome:
    what = "CEB621 list" if direction == "import" else "CEB603 list"
    if kind == "list":
        return receipts.held(["the order"], "CEB311 order" if direction == "import" else "CEB303 order")
    return receipts.held([_waiting_for(missing)], what)


def _plan(t: Taking, kind: str, key: RecordKey, list_kept: Kept | None, arrival: Arrival | None) -> str | None:
    """Completes the kept record `key` with its list and plans its submission; returns None when planned,
    else why it cannot be completed (mapping problems, as text; they are the list's when it just arrived)."""
    kept = t.kept[key]
    done = _map(kind, kept.record, list_kept.record if list_kept else None, t.lookup)
    if done.missing:
        return "missing: " + ", ".join(done.missing)
    if done.problems:
        return "; ".join(f"{p.field} ({p.element}): {p.message}" for p in done.problems)
    rows = [key] + ([list_kept.key] if list_kept is not None and kind == "order" else [])
    t.submissions.append(Submission(kind, done.body, kept.row["sender"], rows,
                                    list_kept.key if list_kept else None, arrival,
                                    correction=kind == "order" and kept.row["state"] == "submitted",
                                    extras=done.extras))
    t.planned.add(key)
    return None


def _order_filed(t: Taking, list_kept: Kept) -> bool:
    """Whether the list's order is (or is being) submitted: an export waybill, which names no consignee, is
    accepted only once its export order is filed (WaybillIn)."""
    key = ("order", list_kept.row["party_code"], list_kept.row["number"])
    kept = t.kept.get(key)
    return key in t.planned or (kept is not None and kept.row["state"] == "submitted")


def _plan_waybill_of(t: Taking, list_kept: Kept) -> None:
    """Submits the held waybill the list names, now complete (its sender learns it from the feed)."""
    key = ("waybill", list_kept.row["waybill_code"], list_kept.row["waybill_no"])
    waybill = t.kept.get(key)
    if waybill is None or waybill.row["state"] != "held" or key in t.planned:
        return
    if waybill.row["direction"] == "export" and not _order_filed(t, list_kept):
        return
    why = _plan(t, "waybill", key, list_kept, None)
    if why is not None and waybill.row["sender"] != list_kept.row["sender"]:
        # Another enterprise's list does not match the held waybill (another order, say): one enterprise's
        # record never gets another's refused. The waybill keeps waiting for a list that matches it (and
        # is returned after DOCUMENT_TIMEOUT_HOURS otherwise).
        waybill.row["waiting_for"] = _waiting_for([f"a list matching it ({why})"])
        waybill.changed = True
        return
    if why is not None:
        t.settle(key, "refused", receipts.refused("waybill", [mapping.MappingProblem(
            "", "(with its list)", "mismatch", why)]), notify=True)


async def take(uow: Any, message: CebMessage, arrivals: list[Arrival], t: Taking) -> list[receipts.Outcome]:
    """Answers every record of `message` in `uow` (see the module docstring); the answers hold once `uow`
    commits. Returns one outcome per record, in order."""
    live = [a for a in arrivals if a.outcome is None and a.key is not None and a.twin is None]
    # Records completing each other in two messages at once take turns (PostgreSQL advisory locks): the
    # second reads what the first kept, so neither waits for a partner that already came. An export order
    # and its waybill share no key: only their list ties them (the waybill waits until its order is filed),
    # so the keys of the lists already kept are found by a first, unlocked read and locked too, in the same
    # statement (two messages locking overlapping sets queue, never deadlock).
    locks = _own_locks(live)
    exporting = any(a.direction == "export" and a.kind in ("order", "waybill") for a in live)
    if exporting:
        await _read(uow, t, live)
        locks |= _partner_locks(t)
        t.kept.clear()
        t.lists_by_waybill.clear()
    await lock_keys(uow.session, sorted(locks))
    await _read(uow, t, live)
    extra = _partner_locks(t) - locks if exporting else set()
    if extra:
        # A list committed between the two reads: its keys are locked now (rare; should two messages do this
        # at once, PostgreSQL ends one as a deadlock and the route tries that message again) and read afresh.
        await lock_keys(uow.session, sorted(extra))
        t.kept.clear()
        t.lists_by_waybill.clear()
        await _read(uow, t, live)

    for a in live:
        _arrive(t, a)

    await _submit(uow, t)
    await save_records(uow.session, [k.row for k in t.kept.values() if k.changed])
    return [(a.twin.outcome if a.twin is not None and a.outcome is None else a.outcome) or receipts.accepted()
            for a in arrivals]


def _own_locks(live: list[Arrival]) -> set[str]:
    """The advisory lock keys of the records of a message: an order's and a list's order key, a waybill's
    and a list's waybill key."""
    return ({lock_key(*a.key) for a in live if a.kind in ("order", "list")}  # type: ignore[misc]
            | {lock_key("waybill", *w) for w in _waybills(live)})


def _partner_locks(t: Taking) -> set[str]:
    """The lock keys of the lists kept in `t`: their order's and their waybill's."""
    out = set()
    for k in t.kept.values():
        if k.row["kind"] == "list" and k.live:
            out.add(lock_key("order", k.row["party_code"], k.row["number"]))
            if k.row["waybill_code"]:
                out.add(lock_key("waybill", k.row["waybill_code"], k.row["waybill_no"]))
    return out


async def _read(uow: Any, t: Taking, live: list[Arrival]) -> None:
    """Reads into `t` the records of `live` and their partners, the codes they name and their senders
    (at most five queries)."""
    wanted: set[RecordKey] = set()
    for a in live:
        _, owner, number = a.key  # type: ignore[misc]
        wanted.add(a.key)  # type: ignore[arg-type]
        if a.kind in ("order", "list"):
            wanted |= {("order", owner, number), ("list", owner, number)}
        if a.kind == "list" and a.waybill:
            wanted.add(("waybill", *a.waybill))
    by_key, lists = await load_records(uow.session, wanted, _waybills(live))
    for row in [*by_key.values(), *lists.values()]:
        if (row.kind, row.party_code, row.number) not in t.kept:
            t.keep(row)
    # A second round for the partners' partners, one query: the orders of the lists found by their waybill
    # (an export waybill waits until its order is filed), the waybills of the lists found by their order.
    lists_kept = [k.row for k in t.kept.values() if k.row["kind"] == "list"]
    further = ({("order", r["party_code"], r["number"]) for r in lists_kept}
               | {("waybill", r["waybill_code"], r["waybill_no"]) for r in lists_kept if r["waybill_code"]}) - set(t.kept)
    if further:
        for row in (await load_records(uow.session, further, ()))[0].values():
            t.keep(row)
    # The codes the records kept earlier name (a customs code in a list, say) are looked up too: this
    # message's lookup only knows its own (one query).
    named = {v for k in t.kept.values() for n, v in k.row["keys"].items() if n.endswith("Code") and n != "customsCode"}
    if named - set(t.lookup):
        t.lookup.update(await enterprise_codes(uow.session, named - set(t.lookup)))
    # The senders of the records kept earlier: their documents are submitted as theirs (one query).
    others = {k.row["sender"] for k in t.kept.values()} - set(t.senders)
    for code, (roles, _) in (await intake.registered_parties(uow.session, others)).items() if others else ():
        t.senders[code] = Caller(code, roles)



def _waybills(live: list[Arrival]) -> set[tuple[str, str]]:
    out = set()
    for a in live:
        if a.kind == "list" and a.waybill:
            out.add(a.waybill)
        elif a.kind == "waybill":
            out.add((a.key[1], a.key[2]))  # type: ignore[index]
    return out


def _arrive(t: Taking, a: Arrival) -> None:
    """One live record against what is kept (in message order: it sees the earlier records)."""
    key = a.key
    old = t.kept.get(key)  # type: ignore[arg-type]
    sender = t.caller
    if old is not None and old.row["fingerprint"] == a.fingerprint:
        a.outcome = receipts.Outcome(old.row["outcome"], old.row["outcome_info"])  # an identical replay
        return
    if a.intent == "cancellation":
        _cancel(t, a, old)
        return
    if old is not None and a.kind == "list" and old.row["sender"] != sender and old.row["state"] != "refused":
        a.outcome = receipts.refused("list", [mapping.MappingProblem(
            "order_no", "InventoryHead/orderNo", "conflict", "the order's list was sent by another enterprise")])
        return
    if old is not None and old.row["state"] == "submitted" and a.intent == "new" and a.kind == "order":
        a.outcome = receipts.refused("order", [mapping.MappingProblem(
            "order_no", "OrderHead/orderNo", "conflict",
            "the order was declared with other content; send appType 2 to correct it")])
        return
    state = "submitted" if old is not None and old.row["state"] == "submitted" else "held"
    if a.kind == "payment":
        t.put(a, sender, "held", receipts.accepted(), None)
        done = a.mapped or _map("payment", a.parsed.record, None, t.lookup)
        t.submissions.append(Submission("payment", done.body, sender, [a.key], None, a, extras=done.extras,  # type: ignore[list-item]
                                        prepared=a.prepared))
        return
    if a.kind in ("order", "waybill"):
        list_kept = (_list_of_order(t, key[1], key[2]) if a.kind == "order"  # type: ignore[index]
                     else _list_of_waybill(t, (key[1], key[2])))  # type: ignore[index]
        if a.kind == "order" and list_kept is not None and not _same_seller(t, a.parsed.record, list_kept.record):
            # A list from another seller than the order's came first: it never completes (nor refuses) the
            # order; its sender learns it is refused, and the order waits for its own seller's list.
            t.settle(list_kept.key, "refused", _other_seller(list_kept.record), notify=True)
            list_kept = None
        missing = (a.mapped or _map(a.kind, a.parsed.record, None, t.lookup)).missing
        t.put(a, sender, state, _waiting(a.kind, a.direction, missing), _waiting_for(missing))
        if list_kept is None:
            a.outcome = _waiting(a.kind, a.direction, missing)
            return
        if a.kind == "waybill" and a.direction == "export" and not _order_filed(t, list_kept):
            a.outcome = receipts.held(["the export order"], "CEB303 order")
            t.kept[key].row["waiting_for"] = "the export order (CEB303)"  # type: ignore[index]
            return
        why = _plan(t, a.kind, key, list_kept, a)  # type: ignore[arg-type]
        if why is not None and a.kind == "waybill" and list_kept.row["sender"] != sender:
            # The list that names this waybill is another enterprise's and does not match it (another
            # order): it cannot get the waybill refused; the waybill waits for a list that matches it.
            t.kept[key].row["waiting_for"] = _waiting_for([f"a list matching it ({why})"])  # type: ignore[index]
            a.outcome = receipts.held([f"a list matching it ({why})"], "")
            return
        if why is not None:
            a.outcome = receipts.refused(a.kind, [mapping.MappingProblem("", "(with its list)", "mismatch", why)])
            t.settle(key, "refused", a.outcome, notify=False)  # type: ignore[arg-type]
        elif a.kind == "order":
            _plan_waybill_of(t, list_kept)
        return
    # A list: completes its order and its waybill, if they came.
    order = t.kept.get(("order", key[1], key[2]))  # type: ignore[index]
    if order is not None and order.live and not _same_seller(t, order.record, a.parsed.record):
        a.outcome = _other_seller(a.parsed.record)  # another seller's list: never kept over the order's own
        return
    t.put(a, sender, "held", _waiting("list", a.direction, []), "the order")
    list_kept = t.kept[key]  # type: ignore[index]
    if order is not None and order.live:
        why = _plan(t, "order", order.key, list_kept, a)
        if why is not None:
            a.outcome = receipts.refused("list", [mapping.MappingProblem("", "(with its order)", "mismatch", why)])
            t.settle(key, "refused", a.outcome, notify=False)  # type: ignore[arg-type]
            return
    else:
        a.outcome = _waiting("list", a.direction, [])
    _plan_waybill_of(t, list_kept)


def _cancel(t: Taking, a: Arrival, old: Kept | None) -> None:
    if old is not None and old.row["state"] == "held":
        t.settle(a.key, "cancelled", receipts.accepted("cancelled: the order was held and never submitted"),  # type: ignore[arg-type]
                 notify=False)
        old.row["fingerprint"] = a.fingerprint
        a.outcome = receipts.accepted("cancelled: the order was held and never submitted")
        return
    t.submissions.append(Submission("cancel", {}, t.caller, [a.key] if old else [], None, a))  # type: ignore[list-item]


async def _submit(uow: Any, t: Taking) -> None:
    """Runs the planned submissions through the intake (orders first, then payments, then waybills, so a
    payment or waybill finds its order of the same message), and settles their records."""
    for kind in ("cancel", "order", "payment", "waybill"):
        subs = [s for s in t.submissions if s.kind == kind]
        if not subs:
            continue
        if kind == "cancel":
            for s in subs:
                s.outcome = await _changed(uow, lambda: changes.cancel_order(
                    uow, *s.arrival.key[1:]), intake.ORDER.path)  # type: ignore[union-attr, misc]
            continue
        new = []
        for s in subs:
            sender = t.senders.get(s.sender) or Caller(s.sender, frozenset())
            # A payment was validated for its sender when the message was screened: not again.
            prepared = s.prepared or intake.prepare(sender, DOCUMENT_KIND[kind], s.body)
            if isinstance(prepared, intake.Outcome):
                s.outcome = prepared
            elif s.correction:
                s.outcome = await _changed(uow, lambda p=prepared: changes.correct_order(uow, p.doc), intake.ORDER.path)
            else:
                new.append((s, prepared))
        if new:
            for (s, _), outcome in zip(new, await intake.accept(uow, [p for _, p in new])):
                s.outcome = outcome
    for s in t.submissions:
        _settle_submission(t, s)
    await add_trace_entries(uow.session, t.traces)


async def _changed(uow: Any, change: Any, path: str) -> intake.Outcome:
    """A correction or cancellation inside a savepoint: refused (Problem), nothing of it stays."""
    staged = len(uow._staged)
    try:
        async with uow.session.begin_nested():
            status, body = await change()
        return intake.Outcome(status, body)
    except Problem as problem:
        del uow._staged[staged:]
        return intake.Outcome.refused(problem, path)


def _settle_submission(t: Taking, s: Submission) -> None:
    o = s.outcome
    assert o is not None
    ok = o.status in (200, 202)
    kind = "order" if s.kind == "cancel" else s.kind
    direction = t.kept[s.rows[0]].row["direction"] if s.rows else (s.arrival.direction if s.arrival else "import")
    if s.kind == "cancel":
        a = s.arrival
        a.outcome = receipts.accepted("cancelled") if ok else _refusal("order", a.direction, o.status, o.body)  # type: ignore[union-attr]
        if s.rows and ok:
            t.settle(s.rows[0], "cancelled", a.outcome, notify=False)  # type: ignore[union-attr, arg-type]
            t.kept[s.rows[0]].row["fingerprint"] = a.fingerprint  # type: ignore[union-attr]
        return
    if ok:
        what = f"{kind} submitted (HTTP {o.status})"
        outcome = receipts.accepted(what)
        for key in s.rows:
            mine = s.arrival is not None and s.arrival.key == key
            t.settle(key, "submitted", outcome, notify=not mine and t.kept[key].row["state"] != "submitted")
        if s.arrival is not None:
            s.arrival.outcome = outcome
        platform, order_no = s.body.get("platform_code"), s.body.get("order_no")
        t.traces.extend(_trace_entries(order_key(platform, order_no), t.at, t.kept[s.rows[0]].row["message_type"],
                                       s.extras))
        return
    refusal = _refusal(kind, direction, o.status, o.body)
    problems = _problems(kind, direction, o.body)
    list_blamed = s.blame_list is not None and problems and all(p.element.startswith("Inventory") for p in problems)
    if list_blamed:
        # The list's lines are wrong (an HS code, a trade mode): the list is refused; the record it completed
        # waits for a corrected list.
        list_refusal = receipts.Outcome(receipts.REFUSAL_CODES["list"], refusal.info)
        arrived_list = s.arrival is not None and s.arrival.key == s.blame_list
        t.settle(s.blame_list, "refused", list_refusal, notify=not arrived_list)  # type: ignore[arg-type]
        if arrived_list:
            s.arrival.outcome = list_refusal  # type: ignore[union-attr]
        elif s.arrival is not None:
            s.arrival.outcome = receipts.held(["a corrected list"], "")
        return
    own = s.rows[0]
    mine = s.arrival is not None and s.arrival.key == own
    t.settle(own, "refused", refusal, notify=not mine)
    if s.arrival is not None:
        s.arrival.outcome = refusal if mine else receipts.held(["a corrected " + kind], "")


def _trace_entries(correlation_id: str, at: datetime, message_type: str, extras: dict) -> list[views.TraceEntry]:
    """The record's elements §4 has no field for, shown in the order's trace (spec §7.5: never dropped
    silently), but for personal data (kept, encrypted, with the record); in parts of at most 500 characters."""
    shown = []
    for path, value in _flatten(extras):
        name = path.rsplit(".", 1)[-1].rsplit("/", 1)[-1]
        if _personal(name) or name in _NOISE or value in (None, ""):
            continue
        # An element we do not know may still carry a person's number (a sender's own `buyerIdNo`, say):
        # what looks like one is masked as in logs.
        shown.append(mask_personal_data(f"{path}={value}"))
    if not shown:
        return []
    head = f"{message_type[:6]} kept beyond §4: "
    parts, current = [], head
    for item in shown:
        if len(current) + len(item) + 2 > views.TRACE_SUMMARY_MAX:
            parts.append(current.rstrip(", "))
            current = head
        current += item + ", "
    parts.append(current.rstrip(", "))
    return [views.TraceEntry(correlation_id, at, "gateway", "ceb.kept", p) for p in parts]


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            name = k if k != "head" else ""
            out += _flatten(v, f"{prefix}.{name}".strip(".") if name else prefix)
        return out
    if isinstance(value, list):
        out = []
        for i, v in enumerate(value):
            out += _flatten(v, f"{prefix}[{i + 1}]")
        return out
    return [(prefix, value)]
