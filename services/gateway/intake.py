"""Document intake: the one way an order, a payment or a waybill is accepted (spec §2, §4, §7.1).

Three callers share it: the single endpoints (`POST /v1/orders` …, through the group commit), and the
batch twins (`POST /v1/orders:batch` …). Each document goes through two steps:

1. `prepare` (no database): role, body validation (spec §2 bounds, and a currency the reference rate
   table converts), own-code check, fingerprint. A refusal here is the
   document's answer at once (403, 422); nothing of it reaches a transaction.
2. `accept` (in the caller's unit of work, for many documents of one kind at once): registered parties,
   stored fingerprints and order directions are read with one query each for the whole lot, then every
   document is decided on its own; its writes (row, completeness stamp) happen inside a SAVEPOINT, so a
   failing document is undone alone and its neighbours still commit. Events and trace rows are staged and
   written once for the lot, minus those of documents that failed.

A later document of the same lot sees the earlier ones (200 if identical, 409 if different), exactly as if
they had been submitted one after the other. Every answer is final only once the unit of work commits:
`run_lots` commits, and the callers answer only after it returned.

`GroupCommit` collects single-document requests arriving within `SW_GROUP_COMMIT_MS` into one unit of
work (one transaction, one fsync) and answers each request after that commit; if the commit fails, every
request in the group gets 503 and nothing is stored.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import and_, bindparam, insert, or_, select, tuple_, update
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from contracts.identifiers import mask_id_number, order_key
from contracts.types import format_money
from contracts.v1.documents import OrderIn, PaymentIn, WaybillIn
from contracts.v1.events import Order, Payment, PaymentSubmitted, SealedPerson, Waybill, WaybillSubmitted
from services.gateway import contracts_policy, rules, views
from services.gateway.auth import Caller
from services.gateway.tables import (
    agency_views,
    enterprise_platforms,
    enterprises,
    order_bindings,
    orders,
    payments,
    trace,
    waybills,
)
from shared.clock import china_date, utcnow
from shared.http import Problem, problem_from_validation, unavailable, unprocessable
from shared.reference import fx_rates
from shared.runtime import UnitOfWork
from shared.sealing import seal
from shared.settings import settings
from shared.tracing import current_traceparent

log = logging.getLogger(__name__)


# --- what the gateway answers ------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One document's answer: the status and JSON body its single endpoint sends."""

    status: int
    body: dict
    problem: Problem | None = None  # set for errors: the single endpoint raises it, so headers travel too

    @classmethod
    def refused(cls, problem: Problem, instance: str) -> "Outcome":
        return cls(problem.status, problem.body(instance), problem)


def parse(model: type[BaseModel], body: Any) -> Any:
    """A JSON body as `model`, or a 422 naming every field (cross-field problems name their field); 415 for
    a body sent as another media type than JSON (FastAPI hands such a body over as bytes, unread)."""
    if isinstance(body, (bytes, bytearray)):
        raise Problem(415, "Unsupported media type", "send the body as application/json",
                      type_="/problems/unsupported-media-type")
    if not isinstance(body, dict):
        raise unprocessable([{"field": "(body)", "code": "type", "message": "expected a JSON object"}])
    try:
        return model.model_validate(body)
    except ValidationError as err:
        raise problem_from_validation(err) from None


def read_document(model: type[BaseModel], body: Any) -> Any:
    """An order, payment or waybill body (POST, batch or PUT) as it will be stored and published: parsed as
    `model` (422 naming every field), its own people's identity numbers masked in its free text
    (`rules.without_own_id_numbers`), and checked against the reference rate table: 422 naming the field
    when it names a currency (or a payment day) that cannot be converted (`rules.reference_problems`),
    refused here rather than left pending at an agency."""
    doc = rules.without_own_id_numbers(parse(model, body))
    problems = rules.reference_problems(doc, fx_rates(), china_date(utcnow()))
    if problems:
        raise unprocessable(problems)
    return doc


def status_url(platform_code: str, order_no: str) -> str:
    return f"/v1/orders/{platform_code}/{order_no}"


# --- kinds of document --------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    name: str  # order | payment | waybill
    path: str  # the single endpoint: problem details name it as `instance`
    model: type[BaseModel]
    role: str  # the caller's role the endpoint needs
    own_field: str  # the field that must be the caller's own code
    number_field: str  # with own_field, the business key


ORDER = Kind("order", "/v1/orders", OrderIn, "platform", "platform_code", "order_no")
PAYMENT = Kind("payment", "/v1/payments", PaymentIn, "payment", "payment_code", "payment_no")
WAYBILL = Kind("waybill", "/v1/waybills", WaybillIn, "logistics", "logistics_code", "waybill_no")
KINDS = {k.name: k for k in (ORDER, PAYMENT, WAYBILL)}
# Orders first: in a group holding an order and its payment, the payment then finds the order's direction.
KIND_ORDER = (ORDER, PAYMENT, WAYBILL)


@dataclass
class Prepared:
    """A document that passed the checks needing no database: valid, the caller's own, fingerprinted."""

    kind: Kind
    doc: Any
    fingerprint: str
    # The submitting request's trace, taken when the request prepared it: its events are staged later, by
    # the group commit's writer task, and must still continue that request's trace.
    traceparent: str = field(default_factory=current_traceparent)

    @property
    def key(self) -> tuple[str, str]:
        return getattr(self.doc, self.kind.own_field), getattr(self.doc, self.kind.number_field)

    def answer(self) -> dict:
        d = self.doc
        head = {} if self.kind is ORDER else {self.kind.number_field: getattr(d, self.kind.number_field)}
        return {**head, "order_no": d.order_no, "status_url": status_url(d.platform_code, d.order_no)}


def prepare(caller: Caller, kind: Kind, body: Any) -> Prepared | Outcome:
    """The checks of a single endpoint that need no database, in its order: role (403), body (422), the
    caller's own code (403). Returns the refusal as an Outcome, or the document ready for `accept`."""
    try:
        caller.require_role(kind.role)
        doc = read_document(kind.model, body)
        caller.require_self(getattr(doc, kind.own_field), kind.own_field)
    except Problem as problem:
        return Outcome.refused(problem, kind.path)
    return Prepared(kind, doc, rules.fingerprint(doc))


# --- the order event (shared with PUT and DELETE) ---------------------------------------------------


def sealed(person, with_phone: bool) -> SealedPerson:  # noqa: ANN001
    """A person as published: identity number masked, and sealed for customs alone."""
    return SealedPerson(
        name=person.name, id_type=person.id_type, id_number_masked=mask_id_number(person.id_number),
        id_number_sealed=seal(person.id_number), phone=getattr(person, "phone", None) if with_phone else None,
    )


def order_event_document(doc: OrderIn) -> Order:
    data = doc.model_dump(exclude={"buyer"})
    return Order(**data, buyer=sealed(doc.buyer, True) if doc.buyer else None)


def order_country(doc: OrderIn) -> str | None:
    if doc.direction == "export":
        return doc.destination_country
    return max(doc.items, key=lambda i: i.line_value).origin_country


def order_columns(doc: OrderIn, event_doc: Order, fp: str) -> dict:
    return dict(
        content_hash=fp, document=contracts_policy.stored_document(event_doc, contracts_policy.brands_of(doc.items)),
        ecommerce_code=doc.ecommerce_code,
        direction=doc.direction, trade_mode=doc.trade_mode, currency=doc.currency, actual_paid=doc.actual_paid,
        country=order_country(doc), payment_code=doc.payment_code,
        payment_transaction_id=doc.payment_transaction_id, logistics_code=doc.logistics_code,
    )


def order_events(action: contracts_policy.Action, version: int, at: datetime, order: Order,
                 brands: contracts_policy.Brands, country: dict[str, str]) -> list[BaseModel]:
    """The order events the gateway publishes for one action (POST, PUT, DELETE): v2 and, during v1's
    deprecation period, v1. `country`: code → country of the platform and the ecommerce enterprise."""
    s = settings()
    return list(contracts_policy.order_events(
        action, version, at, order, country[order.platform_code], country[order.ecommerce_code], brands,
        v1_until=s.sw_order_v1_until, v2_enabled=s.sw_order_v2_enabled))


async def emit_order_events(uow: UnitOfWork, action: contracts_policy.Action, version: int, at: datetime,
                            order: Order, brands: contracts_policy.Brands) -> None:
    """Stages `order_events` in the caller's unit of work, under the order's correlation id, reading the
    parties' countries (a registration never changes its country, so a cancellation finds the original's)."""
    rows = await uow.session.execute(select(enterprises.c.code, enterprises.c.country).where(
        enterprises.c.code.in_({order.platform_code, order.ecommerce_code})))
    for event in order_events(action, version, at, order, brands, {r.code: r.country for r in rows}):
        uow.emit(event, correlation_id=order_key(order.platform_code, order.order_no))


async def mark_complete_if_all_documents(uow: UnitOfWork, keys: set[tuple[str, str]], at: datetime) -> None:
    """Records when the last needed document arrived (the start of the decision-time statistic), in one
    statement for every order of `keys` ((platform_code, order_no)): an order's row is stamped once, when
    its waybill and (imports) its payment are there."""
    if not keys:
        return
    has_waybill = select(waybills.c.waybill_no).where(and_(
        waybills.c.platform_code == orders.c.platform_code, waybills.c.order_no == orders.c.order_no)).exists()
    has_payment = select(payments.c.payment_no).where(and_(
        payments.c.platform_code == orders.c.platform_code, payments.c.order_no == orders.c.order_no)).exists()
    await uow.session.execute(update(orders).where(
        tuple_(orders.c.platform_code, orders.c.order_no).in_(sorted(keys)), orders.c.documents_complete_at.is_(None),
        has_waybill, or_(orders.c.direction == "export", has_payment)).values(documents_complete_at=at))


# --- accepting a lot of one kind ---------------------------------------------------------------------


TABLES = {"order": orders, "payment": payments, "waybill": waybills}


@dataclass
class Lot:
    """What the decisions of one lot need, read once for the whole lot, and what it will write at the end."""

    kind: Kind
    parties: dict[str, tuple[frozenset[str], str]]  # code → (roles, country), the parties the lot names
    stored: dict[tuple[str, str], str]  # business key → fingerprint, stored or accepted earlier in the lot
    # Payments and waybills (spec §7.2): the orders they name, as (direction, named firm, named number), the
    # document each order is bound to ((firm, number)), and customs' status of the orders bound already.
    named: dict[tuple[str, str], tuple[str, str | None, str | None]] = field(default_factory=dict)
    bindings: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    customs: dict[tuple[str, str], str] = field(default_factory=dict)
    # Orders: ecommerce code → the platforms it lets declare for it (absent: any platform may), and the
    # payments and waybills their orders are bound to already ((platform, order_no, kind) → (firm, number)).
    platforms: dict[str, set[str]] = field(default_factory=dict)
    bound: dict[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)
    traces: list[dict] = field(default_factory=list)


def _pairs_query(table, first: str, second: str, keys: set[tuple[str, str]], *columns):  # noqa: ANN001, ANN202
    # Both IN lists hit the two-column primary key; the few extra pairs they admit are filtered in Python.
    # (Row-value IN would be exact but is spelled differently across databases.)
    return select(table.c[first], table.c[second], *columns).where(
        table.c[first].in_({a for a, _ in keys}), table.c[second].in_({b for _, b in keys}))


async def _stored_fingerprints(uow: UnitOfWork, kind: Kind, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    table = TABLES[kind.name]
    rows = await uow.session.execute(_pairs_query(table, kind.own_field, kind.number_field, keys, table.c.content_hash))
    return {(r[0], r[1]): r.content_hash for r in rows if (r[0], r[1]) in keys}


def _named_firms(doc: OrderIn) -> list[tuple[str, str, str]]:
    """(field, code, role) of the firms an order names (spec §7.2)."""
    return [(f, code, role) for f, code, role in (("payment_code", doc.payment_code, "payment"),
                                                   ("logistics_code", doc.logistics_code, "logistics")) if code]


async def _bindings_of(session, kinds: set[str], wanted: set[tuple[str, str]]) -> dict:  # noqa: ANN001
    """(platform_code, order_no, kind) → (firm, number) of the documents `wanted` orders are bound to."""
    if not wanted:
        return {}
    rows = await session.execute(_pairs_query(order_bindings, "platform_code", "order_no", wanted, order_bindings.c.kind,
                                              order_bindings.c.party_code, order_bindings.c.document_no
                                              ).where(order_bindings.c.kind.in_(kinds)))
    return {(r[0], r[1], r.kind): (r.party_code, r.document_no) for r in rows if (r[0], r[1]) in wanted}


async def _open_lot(uow: UnitOfWork, kind: Kind, items: Sequence[Prepared]) -> Lot:
    """Everything the lot's decisions need, one query per table for the whole lot: the parties it names,
    the stored fingerprints of its business keys; for orders the platform lists of their sellers and the
    bindings of the firms they name (`read_order_parties`); for payments and waybills the orders they name,
    their bindings and (for corrections) customs' status."""
    keys = {d.key for d in items}
    if kind is ORDER:
        parties, platforms, bound = await read_order_parties(uow.session, [d.doc for d in items])
        lot = Lot(kind, parties, await _stored_fingerprints(uow, kind, keys))
        lot.platforms, lot.bound = platforms, bound
        return lot
    parties = await registered_parties(uow.session, {d.doc.platform_code for d in items})
    wanted = {(d.doc.platform_code, d.doc.order_no) for d in items}
    # A payment's or waybill's bindings are read BEFORE the stored fingerprints: a concurrent request writes
    # its document and its binding in one transaction, so a binding seen here has its document seen by the
    # next read. Read the other way round, an identical copy racing its original could see the binding but
    # not the document, and be answered 409 instead of 200 (make chaos, duplicates:batch on PostgreSQL).
    bindings = await _bindings_of(uow.session, {kind.name}, wanted)
    lot = Lot(kind, parties, await _stored_fingerprints(uow, kind, keys))
    rows = await uow.session.execute(_pairs_query(
        orders, "platform_code", "order_no", wanted, orders.c.direction,
        orders.c.payment_code if kind is PAYMENT else orders.c.logistics_code,
        orders.c.payment_transaction_id if kind is PAYMENT else orders.c.logistics_code.label("unnamed")))
    lot.named = {(r[0], r[1]): (r[2], r[3], r[4] if kind is PAYMENT else None) for r in rows}
    lot.bindings = {(p, o): bound for (p, o, _), bound in bindings.items()}
    corrections = {(d.doc.platform_code, d.doc.order_no) for d in items if d.key in lot.stored}
    if corrections:
        rows = await uow.session.execute(_pairs_query(agency_views, "platform_code", "order_no", corrections,
                                                      agency_views.c.view).where(agency_views.c.agency == "customs"))
        lot.customs = {(r[0], r[1]): views.customs_status({"customs": r.view}) for r in rows if (r[0], r[1]) in corrections}
    return lot


def _require_registered(lot: Lot, checks: list[tuple[str, str, str]]) -> None:
    errors = []
    for field_name, code, role in checks:
        if code not in lot.parties:
            errors.append({"field": field_name, "code": "not_registered",
                           "message": f"{code} is not a registered enterprise"})
        elif role not in lot.parties[code][0]:
            errors.append({"field": field_name, "code": "wrong_role",
                           "message": f"{code} is not registered with the {role} role"})
    if errors:
        raise unprocessable(errors)


def _refused(status: int, field_name: str, code: str, message: str) -> Problem:
    """A 403 or 409 naming its field the way a 422 does (spec §7.2: "field named")."""
    title = {403: "Forbidden", 409: "Conflict"}[status]
    return Problem(status, title, message, errors=[{"field": field_name, "code": code, "message": message}])


def check_order_parties(lot_parties: dict, platforms: dict[str, set[str]], bindings: dict, doc: OrderIn) -> None:
    """An order's parties (spec §4.1, §7.2), for POST and PUT alike: every code registered with its role
    (422); the platform on the seller's list when it keeps one (403, `ecommerce_code`); a named firm
    agreeing with a payment or waybill the order is already bound to (409, the field)."""
    lot = Lot(ORDER, lot_parties, {})
    _require_registered(lot, [("platform_code", doc.platform_code, "platform"),
                              ("ecommerce_code", doc.ecommerce_code, "ecommerce"), *_named_firms(doc)])
    allowed = platforms.get(doc.ecommerce_code)
    if allowed is not None and doc.platform_code not in allowed:
        raise _refused(403, "ecommerce_code", "platform_not_allowed",
                       f"{doc.ecommerce_code} does not let platform {doc.platform_code} declare for it")
    for field_name, number_field, kind, code, number in (
            ("payment_code", "payment_transaction_id", "payment", doc.payment_code, doc.payment_transaction_id),
            ("logistics_code", None, "waybill", doc.logistics_code, None)):
        bound = bindings.get((doc.platform_code, doc.order_no, kind))
        if code is None or bound is None:
            continue
        if bound[0] != code:
            raise _refused(409, field_name, "bound_to_another_firm",
                           f"the order's {kind} was already filed by {bound[0]}, not {code}")
        if number is not None and bound[1] != number:
            raise _refused(409, number_field or field_name, "bound_to_another_document",
                           f"the order's {kind} already filed is {bound[1]}, not {number}")


async def registered_parties(session, codes: set[str]) -> dict[str, tuple[frozenset[str], str]]:  # noqa: ANN001
    """code → (roles, country) of the registered enterprises among `codes` (one query)."""
    rows = await session.execute(
        select(enterprises.c.code, enterprises.c.roles, enterprises.c.country).where(enterprises.c.code.in_(codes)))
    return {r.code: (frozenset(r.roles), r.country) for r in rows}


async def read_order_parties(session, docs: Sequence[OrderIn]) -> tuple[dict, dict[str, set[str]], dict]:  # noqa: ANN001
    """What `check_order_parties` needs for orders `docs` (a lot of POSTs, or a PUT's one), one query per
    table: the parties they name, their sellers' platform lists, and the bindings of the orders that name
    firms."""
    parties = await registered_parties(session, {d.platform_code for d in docs} | {d.ecommerce_code for d in docs}
                             | {c for d in docs for _, c, _ in _named_firms(d)})
    platforms: dict[str, set[str]] = {}
    for r in await session.execute(select(enterprise_platforms).where(
            enterprise_platforms.c.ecommerce_code.in_({d.ecommerce_code for d in docs}))):
        platforms.setdefault(r.ecommerce_code, set()).add(r.platform_code)
    bindings = await _bindings_of(session, {"payment", "waybill"},
                                  {(d.platform_code, d.order_no) for d in docs if _named_firms(d)})
    return parties, platforms, bindings


def _check(lot: Lot, item: Prepared) -> None:
    """The checks that need the database (read for the whole lot): 422 naming the field; for payments and
    waybills the order's named firm (403, the firm's field) and number (409, `order_no`)."""
    d = item.doc
    if lot.kind is ORDER:
        check_order_parties(lot.parties, lot.platforms, lot.bound, d)
        return
    _require_registered(lot, [("platform_code", d.platform_code, "platform")])
    named = lot.named.get((d.platform_code, d.order_no))
    if lot.kind is WAYBILL:
        _check_consignee(d, named[0] if named else None)
    if named is None:
        return  # the order has not come yet: documents arrive in any order
    direction, firm, number = named
    if lot.kind is PAYMENT and direction == "export":
        raise unprocessable([{"field": "order_no", "code": "export_order",
                              "message": "payments are for import orders only"}])
    own = lot.kind.own_field
    if firm is not None and firm != getattr(d, own):
        raise _refused(403, own, "not_the_named_firm",
                       f"order {d.order_no} names {firm} as its {lot.kind.name} firm, not {getattr(d, own)}")
    if number is not None and number != getattr(d, lot.kind.number_field):
        raise _refused(409, "order_no", "not_the_named_document",
                       f"order {d.order_no} names {lot.kind.name} {number}, not {getattr(d, lot.kind.number_field)}")


def _check_consignee(waybill: WaybillIn, direction: str | None) -> None:
    """A waybill may leave out its consignee only when its order is held already and is an export order
    (spec 1.1 §7.5: customs' export waybill CEB505 names none; an export parcel's consignee is abroad and
    the export order is what customs judges it by). An import parcel is delivered in China: its waybill
    always names the consignee. Without the order the direction is unknown, so the consignee is required
    until the order is filed (then the waybill may be sent again without it). 422 naming `consignee`."""
    if waybill.consignee is not None or direction == "export":
        return
    message = ("required for an import order's waybill" if direction == "import"
               else "required until the waybill's export order is filed")
    raise unprocessable([{"field": "consignee", "code": "required", "message": message}])


def _decide(lot: Lot, item: Prepared) -> str | Outcome:
    """One document against what the lot read: "new" (write it and bind its order), "correct" (the bound
    document of its firm, corrected), or the final Outcome (200 identical, 403, 409, 422)."""
    outcome = rules.submission_outcome(lot.stored.get(item.key), item.fingerprint)
    if outcome == "same":
        return Outcome(200, item.answer())
    if outcome == "conflict" and lot.kind is ORDER:
        return Outcome.refused(_conflict(item), item.kind.path)  # corrections of orders are PUT (§4.5)
    try:
        _check(lot, item)
        if lot.kind is ORDER:
            return "new"
        order = (item.doc.platform_code, item.doc.order_no)
        bound = lot.bindings.get(order)
        action = rules.bound_document_action(bound, item.key, outcome == "conflict", lot.customs.get(order, "pending"))
    except Problem as problem:
        return Outcome.refused(problem, item.kind.path)
    if action in ("new", "correct"):
        return action
    if action == "conflict":
        return Outcome.refused(_conflict(item), item.kind.path)
    if action == "bound_elsewhere":
        # A rival firm learns that the order is taken, not by whom or under which number; the firm that
        # filed it is told its own number (it may be resubmitting under a new one by mistake).
        holder = f"{bound[1]}" if bound[0] == item.key[0] else "another firm's"  # type: ignore[index]
        return Outcome.refused(_refused(409, "order_no", "order_already_bound", (
            f"order {item.doc.order_no} already has its {item.kind.name} ({holder}); an order has "
            f"one {item.kind.name}")), item.kind.path)
    return Outcome.refused(_refused(409, "order_no", "order_not_correctable", (
        f"the order is {action}; a {item.kind.name} can be corrected only while customs has not released it "
        "(pending, inspection or rejected)")), item.kind.path)


@dataclass
class NewDocument:
    """What accepting one new document writes: its row, its events, its trace line."""

    row: dict
    events: list[BaseModel]
    trace: dict
    traceparent: str | None = None  # the submitting request's (Prepared.traceparent)

    @property
    def order(self) -> tuple[str, str]:
        return self.row["platform_code"], self.row["order_no"]


def new_document(lot: Lot, item: Prepared, at: datetime) -> NewDocument:
    """The row, events and trace line of a new document (no I/O): sealed identity numbers, the v2 and,
    during v1's deprecation, v1 order events, the payment or waybill event."""
    d = item.doc
    key = order_key(d.platform_code, d.order_no)
    if lot.kind is ORDER:
        event_doc = order_event_document(d)
        events = order_events("new", 1, at, event_doc, contracts_policy.brands_of(d.items),
                              {code: c for code, (_, c) in lot.parties.items()})
        row = dict(platform_code=d.platform_code, order_no=d.order_no, version=1, submitted_at=at, updated_at=at,
                   **order_columns(d, event_doc, item.fingerprint))
        summary = f"order received ({d.direction}, {d.trade_mode})"
    elif lot.kind is PAYMENT:
        event_doc = Payment(**d.model_dump(exclude={"payer"}), payer=sealed(d.payer, False))
        events = [PaymentSubmitted(submitted_at=at, payment=event_doc)]
        row = dict(payment_code=d.payment_code, payment_no=d.payment_no, platform_code=d.platform_code,
                   order_no=d.order_no, content_hash=item.fingerprint, document=event_doc.model_dump(mode="json"),
                   received_at=at)
        summary = f"payment {d.payment_no} of {format_money(d.amount)} {d.currency} received"
    else:
        event_doc = Waybill(**d.model_dump())
        events = [WaybillSubmitted(submitted_at=at, waybill=event_doc)]
        row = dict(logistics_code=d.logistics_code, waybill_no=d.waybill_no, platform_code=d.platform_code,
                   order_no=d.order_no, content_hash=item.fingerprint, document=event_doc.model_dump(mode="json"),
                   received_at=at)
        summary = f"waybill {d.waybill_no} received"
    trace_line = {"correlation_id": key, "at": at, "source": "gateway", "type": f"{lot.kind.name}.received",
                  "summary": summary[:500]}
    return NewDocument(row, events, trace_line, item.traceparent)


def corrected_document(lot: Lot, item: Prepared, at: datetime) -> NewDocument:
    """A payment's or waybill's correction by its own firm under the same business key (spec §7.2): the
    row's new content, the event published again (a later `submitted_at` replaces the earlier one
    downstream), a trace line."""
    document = new_document(lot, item, at)
    number = getattr(item.doc, lot.kind.number_field)
    trace_line = {**document.trace, "type": f"{lot.kind.name}.corrected",
                  "summary": f"{lot.kind.name} {number} corrected by {getattr(item.doc, lot.kind.own_field)}"[:500]}
    return NewDocument(document.row, document.events, trace_line, document.traceparent)


async def write_corrections(uow: UnitOfWork, lot: Lot, documents: Sequence[NewDocument]) -> None:
    """One executemany update of the corrected rows (new fingerprint and document, same business key and
    order); their events are staged and their trace lines kept for the lot's one trace insert."""
    if not documents:
        return
    table, own, number = TABLES[lot.kind.name], lot.kind.own_field, lot.kind.number_field
    await uow.session.execute(
        update(table).where(table.c[own] == bindparam("k_own"), table.c[number] == bindparam("k_number"))
        .values(content_hash=bindparam("content_hash"), document=bindparam("document")),
        [{"k_own": d.row[own], "k_number": d.row[number], "content_hash": d.row["content_hash"],
          "document": d.row["document"]} for d in documents])
    for document in documents:
        for event in document.events:
            uow.emit(event, correlation_id=order_key(*document.order), traceparent=document.traceparent)
        lot.traces.append(document.trace)


async def write_new(uow: UnitOfWork, lot: Lot, documents: Sequence[NewDocument], at: datetime) -> None:
    """One executemany insert of the lot's new rows, one completeness stamp for their orders; their events
    are staged and their trace lines kept for the lot's one trace insert. Raises IntegrityError when a
    business key was committed by another transaction meanwhile (the caller undoes and decides again)."""
    if not documents:
        return
    await uow.session.execute(insert(TABLES[lot.kind.name]), [d.row for d in documents])
    if lot.kind is not ORDER:
        # The order's binding (spec §7.2): its primary key makes a concurrent second document lose the race.
        own, number = lot.kind.own_field, lot.kind.number_field
        await uow.session.execute(insert(order_bindings), [
            {"platform_code": d.row["platform_code"], "order_no": d.row["order_no"], "kind": lot.kind.name,
             "party_code": d.row[own], "document_no": d.row[number], "bound_at": at} for d in documents])
    await mark_complete_if_all_documents(uow, {d.order for d in documents}, at)
    for document in documents:
        for event in document.events:
            uow.emit(event, correlation_id=order_key(*document.order), traceparent=document.traceparent)
        lot.traces.append(document.trace)


def _conflict(item: Prepared) -> Problem:
    d, kind = item.doc, item.kind
    if kind is ORDER:
        return Problem(409, "Conflict", f"order {d.order_no} was already submitted with different content; "
                       f"use PUT {status_url(d.platform_code, d.order_no)} to correct it")
    return Problem(409, "Conflict", f"{kind.name} {getattr(d, kind.number_field)} was already submitted with "
                   "different content")


# A document whose insert keeps losing races to rows that then vanish (rolled back elsewhere) is not
# decided after this many tries; the unit of work fails instead (503), rather than guessing an answer.
_RACE_TRIES = 3


async def _accept_one(uow: UnitOfWork, lot: Lot, item: Prepared) -> Outcome:
    for _ in range(_RACE_TRIES):
        action = _decide(lot, item)
        if isinstance(action, Outcome):
            return action
        staged, traced = len(uow._staged), len(lot.traces)
        try:
            async with uow.session.begin_nested():
                at = utcnow()
                if action == "correct":
                    await write_corrections(uow, lot, [corrected_document(lot, item, at)])
                else:
                    await write_new(uow, lot, [new_document(lot, item, at)], at)
        except IntegrityError:
            # Another transaction committed the same business key (or bound the order) after this lot read
            # them (PostgreSQL; SQLite writers queue instead). The savepoint is undone; read again, decide again.
            del uow._staged[staged:], lot.traces[traced:]
            fresh = await _open_lot(uow, item.kind, [item])
            lot.stored.pop(item.key, None)
            lot.stored.update(fresh.stored)
            order = (item.doc.platform_code, item.doc.order_no)
            for held, read in ((lot.bindings, fresh.bindings), (lot.named, fresh.named), (lot.customs, fresh.customs)):
                held.pop(order, None)  # type: ignore[attr-defined]
                held.update(read)  # type: ignore[attr-defined]
            continue
        except SQLAlchemyError:
            raise  # the database, not the document: the whole unit of work fails (503)
        except Exception:
            # A bug met by this document alone: it is undone and answered 500; its neighbours go on.
            del uow._staged[staged:], lot.traces[traced:]
            log.exception("accepting a document failed", extra={"event_type": item.kind.name})
            return Outcome.refused(Problem(500, "Internal error", "the document could not be accepted; nothing "
                                           "of it was stored"), item.kind.path)
        _note_accepted(lot, item)
        return Outcome(202, item.answer())
    raise IntegrityError(f"{item.kind.name} {item.key} kept losing insert races", None, Exception("race"))


def _note_accepted(lot: Lot, item: Prepared) -> None:
    """A later document of the lot sees this one: its fingerprint and, for a payment or waybill, its binding."""
    lot.stored[item.key] = item.fingerprint
    if lot.kind is not ORDER:
        lot.bindings[(item.doc.platform_code, item.doc.order_no)] = item.key


async def accept(uow: UnitOfWork, items: Sequence[Prepared]) -> list[Outcome]:
    """Decides and stages a lot of prepared documents of one kind, in order, each independently: a later
    document sees the earlier ones (200 identical, 409 different). The answers hold only if `uow` commits.

    Set-based first: the lot's reads were done once (`_open_lot`), every new document is written by one
    executemany per table inside one savepoint. Only if that loses a race (another transaction committed
    one of the business keys meanwhile: IntegrityError) is the savepoint undone and the lot decided again
    one document at a time, each in its own savepoint, from a fresh read."""
    if not items:
        return []
    kind = items[0].kind
    lot = await _open_lot(uow, kind, items)
    staged = len(uow._staged)
    outcomes, documents, corrections, at = [], [], [], utcnow()
    for item in items:
        action = _decide(lot, item)
        if isinstance(action, Outcome):
            outcomes.append(action)
            continue
        try:
            if action == "correct":
                corrections.append(corrected_document(lot, item, at))
            else:
                documents.append(new_document(lot, item, at))
        except Exception:
            # A bug met by this document alone: answered 500, nothing of it stored; its neighbours go on.
            log.exception("accepting a document failed", extra={"event_type": kind.name})
            outcomes.append(Outcome.refused(Problem(500, "Internal error", "the document could not be accepted; "
                                                    "nothing of it was stored"), kind.path))
            continue
        _note_accepted(lot, item)
        outcomes.append(Outcome(202, item.answer()))
    try:
        async with uow.session.begin_nested():
            await write_new(uow, lot, documents, at)
            await write_corrections(uow, lot, corrections)
    except IntegrityError:
        del uow._staged[staged:]
        lot = await _open_lot(uow, kind, items)
        outcomes = [await _accept_one(uow, lot, item) for item in items]
    if lot.traces:
        await uow.session.execute(insert(trace), lot.traces)
    return outcomes


async def accept_order(uow: UnitOfWork, caller: Caller, body: Any) -> tuple[int, dict]:
    """`POST /v1/orders` for one body in `uow`: (status, JSON body). Valid once `uow` commits."""
    return await _accept_body(uow, caller, ORDER, body)


async def accept_payment(uow: UnitOfWork, caller: Caller, body: Any) -> tuple[int, dict]:
    """`POST /v1/payments` for one body in `uow`: (status, JSON body). Valid once `uow` commits."""
    return await _accept_body(uow, caller, PAYMENT, body)


async def accept_waybill(uow: UnitOfWork, caller: Caller, body: Any) -> tuple[int, dict]:
    """`POST /v1/waybills` for one body in `uow`: (status, JSON body). Valid once `uow` commits."""
    return await _accept_body(uow, caller, WAYBILL, body)


async def _accept_body(uow: UnitOfWork, caller: Caller, kind: Kind, body: Any) -> tuple[int, dict]:
    item = prepare(caller, kind, body)
    outcome = item if isinstance(item, Outcome) else (await accept(uow, [item]))[0]
    return outcome.status, outcome.body


# --- units of work ---------------------------------------------------------------------------------


UnitOfWorkFactory = Callable[[], Any]  # Service.unit_of_work: an async context manager giving a UnitOfWork
_RETRIED_SQLSTATES = ("40P01", "40001")  # deadlock, serialization failure: about timing, not the documents


async def in_retried_unit_of_work(unit_of_work: UnitOfWorkFactory, work: Callable[[UnitOfWork], Any]) -> Any:
    """`await work(uow)` in a fresh unit of work, committed; its result only after the commit. A deadlock or
    serialization failure re-runs it from the start (nothing of a failed attempt was committed; `work` must
    build its state anew each time); any other failure propagates: nothing was stored."""
    attempt = 0
    while True:
        try:
            async with unit_of_work() as uow:
                return await work(uow)
        except DBAPIError as err:
            code = getattr(err.orig, "sqlstate", None) or getattr(err.orig, "pgcode", None)
            attempt += 1
            if code not in _RETRIED_SQLSTATES or attempt >= 3:
                raise
            log.warning("unit of work retried", extra={"error": repr(err)})


async def run_lots(unit_of_work: UnitOfWorkFactory, lots: Sequence[Sequence[Prepared]]) -> list[list[Outcome]]:
    """Accepts several lots (one kind each) in ONE transaction and commits it; returns their outcomes only
    after the commit (`in_retried_unit_of_work`)."""
    async def work(uow: UnitOfWork) -> list[list[Outcome]]:
        return [await accept(uow, lot) for lot in lots]

    return await in_retried_unit_of_work(unit_of_work, work)


async def accept_batch(unit_of_work: UnitOfWorkFactory, caller: Caller, kind: Kind,
                       bodies: Sequence[Any]) -> list[Outcome]:
    """A batch of bodies of one kind (spec §7.1), in one transaction: one outcome per body, in order.
    Raises `unavailable()` when the transaction fails (then nothing is stored)."""
    outcomes: list[Outcome | Prepared] = [prepare(caller, kind, body) for body in bodies]
    ready = [o for o in outcomes if isinstance(o, Prepared)]
    if ready:
        try:
            (accepted,) = await run_lots(unit_of_work, [ready])
        except Exception:
            log.exception("a batch could not be stored")
            raise unavailable() from None
        answers = iter(accepted)
        outcomes = [next(answers) if isinstance(o, Prepared) else o for o in outcomes]
    return outcomes  # type: ignore[return-value]


# --- group commit ----------------------------------------------------------------------------------


class GroupCommit:
    """Single-document submissions share transactions: one writer task takes what arrived within the
    window (at most `max_size` documents), accepts it with `run_lots` in one unit of work, commits, and
    only then answers each waiting request. A document refused on its own (409, 422) does not touch its
    neighbours (savepoints); a failed commit answers 503 to every request of the group.

    Requests that arrive while a group commits wait in the queue and form the next group, so under load
    groups grow by themselves and the window is only paid when the gateway is idle."""

    def __init__(self, unit_of_work: UnitOfWorkFactory, window_seconds: float, max_size: int):
        self.unit_of_work = unit_of_work
        self.window = window_seconds
        self.max_size = max_size
        self.queue: asyncio.Queue[tuple[Prepared, asyncio.Future]] = asyncio.Queue()
        self.groups = 0  # how many transactions were committed or attempted (for tests and metrics)

    async def submit(self, item: Prepared) -> Outcome:
        """Queues one prepared document and waits for its answer (given after its group's commit)."""
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((item, future))
        return await future

    async def run(self) -> None:
        """The writer: forever, one group per transaction. Cancelled, it answers 503 to whoever waits."""
        group: list[tuple[Prepared, asyncio.Future]] = []
        try:
            while True:
                group = [await self.queue.get()]
                if self.queue.qsize() + 1 < self.max_size and self.window > 0:
                    # Sleeping (rather than waiting on the queue with a timeout) keeps this obviously
                    # correct: nothing can be taken off the queue and then lost to a timeout.
                    await asyncio.sleep(self.window)
                while len(group) < self.max_size and not self.queue.empty():
                    group.append(self.queue.get_nowait())
                try:
                    await self.commit(group)
                except Exception:  # never let the writer die: every later request would wait forever
                    log.exception("group commit writer failed", extra={"event_type": "group_commit"})
                    self._unavailable(group)
                group = []
        except asyncio.CancelledError:
            while not self.queue.empty():
                group.append(self.queue.get_nowait())
            self._unavailable(group)
            raise

    async def commit(self, group: list[tuple[Prepared, asyncio.Future]]) -> None:
        """One transaction for the group; every request answered after it, never before."""
        self.groups += 1
        lots = [[(i, item) for i, (item, _) in enumerate(group) if item.kind is kind] for kind in KIND_ORDER]
        lots = [lot for lot in lots if lot]
        try:
            results = await run_lots(self.unit_of_work, [[item for _, item in lot] for lot in lots])
        except Exception:
            log.exception("a group commit failed", extra={"event_type": "group_commit"})
            self._unavailable(group)
            return
        for lot, outcomes in zip(lots, results):
            for (i, _), outcome in zip(lot, outcomes):
                future = group[i][1]
                if not future.done():  # a client that went away no longer waits
                    future.set_result(outcome)

    @staticmethod
    def _unavailable(group: list[tuple[Prepared, asyncio.Future]]) -> None:
        """503 to every request of a group whose transaction did not commit (nothing of it was stored)."""
        for item, future in group:
            if not future.done():
                future.set_result(Outcome.refused(unavailable(), item.kind.path))


async def submit_one(intake: "GroupCommit | None", unit_of_work: UnitOfWorkFactory, caller: Caller, kind: Kind,
                     body: Any) -> Outcome:
    """A single endpoint: a batch of one, through the group commit when there is one."""
    item = prepare(caller, kind, body)
    if isinstance(item, Outcome):
        return item
    if intake is not None:
        return await intake.submit(item)
    try:
        (outcomes,) = await run_lots(unit_of_work, [[item]])
    except Exception:
        log.exception("a document could not be stored")
        return Outcome.refused(unavailable(), kind.path)
    return outcomes[0]

