"""The platform mode: checks a platform's documents (JSON files) against the REST contracts and against the
rules that hold between documents, and reports every violation, not only the first.

What is checked, and who would refuse the document in the real mesh:

- each document against its REST contract (`contracts.v1.documents`): the gateway's 422, with the same
  `errors[].field` paths (`items[0].hs_code`) and codes, from the same function (`shared.http.validation_errors`);
- between documents (domain §4, the three-document match that customs runs; the gateway's own checks):
  a payment or waybill must name an order of the set with the same platform_code (`ORDER_MISMATCH`);
  `payment.amount == order.actual_paid` in the same currency and `waybill.freight == order.freight`
  (`AMOUNT_MISMATCH`); the payer's name and identity number are the buyer's (`IDENTITY_MISMATCH`); an import
  order has a payment and a waybill, an export a waybill (else customs rejects it with `DOCUMENT_TIMEOUT`);
  a payment names an import order (the gateway's 422 `export_order`); a waybill without a consignee names an
  export order (the gateway's 422 `consignee`, spec 1.1 §7.5); one business key, one content (409);
- the goods and the single-transaction limit of imports (domain §5, §6: `PROHIBITED_GOODS`,
  `NOT_ON_POSITIVE_LIST`, `OVER_SINGLE_LIMIT`), from the reference HS catalogue and FX rates;
- when the set holds enterprise registrations, that every party is registered with its role (the gateway's
  422 `not_registered` / `wrong_role`).

Kinds of document: `--kind` says it for every file; otherwise a document's shape tells (the fields only one
kind has: `waybill_no`, `payment_no`, `items`/`actual_paid`, `roles`, `event`), and when the shape is not
enough the file's name does (`order*.json`, `payment*.json`, `waybill*.json`, `tracking*.json`/`event*.json`,
`enterprise*.json`/`registration*.json`). A file holds one document or a JSON array of documents; a
directory is read recursively (`*.json`).

CEB messages (`*.xml`, or every file named with `ceb=True`) are read, paired and mapped into documents by
`ceb.py`, with the CEB-only checks; those documents then go through every check above, and their violations
name the XML element (`Violation.element`)."""
from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field as dataclass_field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from contracts.identifiers import mask_id_number
from tooling.contracts.suite import domain
from contracts.types import Currency, Money, format_money
from contracts.v1.documents import Direction, EnterpriseRegistration, OrderIn, PaymentIn, TrackingEventIn, WaybillIn
from shared.http import validation_errors
from shared.reference import FxRates, HsEntry, MissingRate, fx_rates, hs_catalogue

KINDS: dict[str, type[BaseModel]] = {
    "order": OrderIn, "payment": PaymentIn, "waybill": WaybillIn, "tracking": TrackingEventIn,
    "enterprise": EnterpriseRegistration,
}
# Fields that only one kind of document has; the kind with most of them present is the document's kind.
_SHAPES: dict[str, frozenset[str]] = {
    "waybill": frozenset({"waybill_no", "logistics_code", "gross_weight_kg", "package_count", "insured_fee"}),
    "payment": frozenset({"payment_no", "payment_code", "payer", "paid_at"}),
    "order": frozenset({"items", "actual_paid", "ecommerce_code", "trade_mode", "direction", "buyer", "tax_total"}),
    "enterprise": frozenset({"roles", "customs_credit"}),
    "tracking": frozenset({"event"}),
}
_NAMES: dict[str, tuple[str, ...]] = {
    "tracking": ("tracking", "event", "events"), "enterprise": ("enterprise", "enterprises", "registration"),
    "payment": ("payment", "payments"), "waybill": ("waybill", "waybills"), "order": ("order", "orders"),
}

GATEWAY, CUSTOMS = "gateway", "customs"


@dataclass(frozen=True)
class Violation:
    location: str  # the file, and the document's index when the file holds a list: `orders.json[2]`
    field: str  # `items[0].hs_code`; `(body)` for the document as a whole, `(file)` for the file
    code: str  # the gateway's error code, or the reason code customs would give
    message: str
    refused_by: str = GATEWAY  # who refuses it in the mesh: the gateway (422/409) or customs (a rejection)
    element: str | None = None  # CEB messages: the XML element (`OrderList[2]/price`), see ceb.py


@dataclass
class Document:
    location: str
    kind: str | None
    body: Any
    model: Any = None  # the validated REST model, when the body is valid
    facts: Any = None  # what the rules between documents need of it, when those fields are valid


# What the rules between documents need of each document. A document invalid in another field (an HS code,
# say) is still compared with the others, so that one run reports every violation, not the first layer.
class _Facts(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class PersonFacts(_Facts):
    name: str
    id_number: str


class OrderFacts(_Facts):
    platform_code: str
    order_no: str
    direction: Direction
    currency: Currency = "CNY"
    freight: Money = Decimal("0")
    actual_paid: Money
    buyer: PersonFacts | None = None


class PaymentFacts(_Facts):
    payment_code: str
    payment_no: str
    platform_code: str
    order_no: str
    amount: Money
    currency: Currency = "CNY"
    payer: PersonFacts


class WaybillFacts(_Facts):
    logistics_code: str
    waybill_no: str
    platform_code: str
    order_no: str
    freight: Money
    consignee: dict | None = None


FACTS: dict[str, type[_Facts]] = {"order": OrderFacts, "payment": PaymentFacts, "waybill": WaybillFacts}


@dataclass
class PlatformReport:
    documents: list[Document]
    violations: list[Violation]
    notes: list[Violation] = dataclass_field(default_factory=list)  # reported, not failing: CEB drafts, duplicates, …
    ceb: Any = None  # ceb.CebSet when the set held CEB messages (the sandbox posts them as they are)

    @property
    def clean(self) -> bool:
        return not self.violations


# --- reading ---------------------------------------------------------------------------------------


def json_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(p.rglob("*.json")) if p.is_dir() else [p])
    return files


def input_files(paths: Iterable[str | Path], ceb: bool = False) -> tuple[list[Path], list[Path]]:
    """(JSON documents, CEB messages): a directory gives its `*.json` and `*.xml` files (recursively, in name
    order); a file named `*.xml` is a CEB message, any other file a JSON one — with `ceb`, every file given by
    name is a CEB message."""
    documents: list[Path] = []
    messages: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            documents.extend(sorted(p.rglob("*.json")))
            messages.extend(sorted(p.rglob("*.xml")))
        elif ceb or p.suffix.lower() == ".xml":
            messages.append(p)
        else:
            documents.append(p)
    return documents, messages


def kind_by_shape(body: dict) -> str | None:
    scores = {kind: len(fields & body.keys()) for kind, fields in _SHAPES.items()}
    best = max(scores.values())
    winners = [k for k, s in scores.items() if s == best]
    return winners[0] if best and len(winners) == 1 else None


def kind_by_name(path: Path) -> str | None:
    words = set(re.split(r"[^a-z0-9]+", path.stem.lower()))
    return next((kind for kind, names in _NAMES.items() if words & set(names)), None)


def read_documents(files: Sequence[Path], kind: str | None = None) -> tuple[list[Document], list[Violation]]:
    documents, violations = [], []
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            violations.append(Violation(str(path), "(file)", "not_found", "no such file"))
            continue
        except (ValueError, UnicodeDecodeError) as err:
            violations.append(Violation(str(path), "(file)", "json_invalid", f"not valid JSON: {err}"))
            continue
        bodies = [(f"{path}[{i}]", b) for i, b in enumerate(data)] if isinstance(data, list) else [(str(path), data)]
        for location, body in bodies:
            found = kind or (kind_by_shape(body) if isinstance(body, dict) else None) or kind_by_name(path)
            documents.append(Document(location, found, body))
            if found is None:
                violations.append(Violation(location, "(body)", "unknown_kind", (
                    "cannot tell which kind of document this is; pass --kind or name the file order-*.json, "
                    "payment-*.json, waybill-*.json, tracking-*.json or enterprise-*.json")))
    return documents, violations


# --- each document on its own (the gateway's 422) ------------------------------------------------


def contract_violations(doc: Document) -> list[Violation]:
    if doc.kind is None:
        return []
    if not isinstance(doc.body, dict):
        return [Violation(doc.location, "(body)", "type", "expected a JSON object")]
    if doc.kind in FACTS:
        try:
            doc.facts = FACTS[doc.kind].model_validate(doc.body)
        except ValidationError:
            pass  # the contract check below reports why
    try:
        doc.model = KINDS[doc.kind].model_validate(doc.body)
    except ValidationError as err:
        return [Violation(doc.location, e["field"], e["code"], e["message"])
                for e in validation_errors(list(err.errors()))]
    return []


# --- between documents -------------------------------------------------------------------------------


def _valid(documents: Iterable[Document], kind: str) -> list[Document]:
    return [d for d in documents if d.kind == kind and d.model is not None]


def _comparable(documents: Iterable[Document], kind: str) -> list[Document]:
    return [d for d in documents if d.kind == kind and d.facts is not None]


def _order_key(body: Any) -> tuple[str, str] | None:
    """(platform_code, order_no) of a document too broken for its facts, if it names them at all."""
    if isinstance(body, dict) and isinstance(body.get("platform_code"), str) and isinstance(body.get("order_no"), str):
        return body["platform_code"].strip(), body["order_no"].strip()
    return None


def _money(amount: Decimal) -> str:
    return format_money(amount)


def cross_document_violations(documents: Sequence[Document]) -> list[Violation]:
    out: list[Violation] = []
    orders: dict[tuple[str, str], Document] = {}
    for d in _comparable(documents, "order"):
        key = (d.facts.platform_code, d.facts.order_no)
        if key in orders:
            if orders[key].body != d.body:
                out.append(Violation(d.location, "order_no", "conflict", (
                    f"order {key[0]}:{key[1]} is also in {orders[key].location} with other content; the second "
                    "submission is refused with 409 (use PUT to correct an order)")))
            continue
        orders[key] = d
    # Orders whose facts cannot be read: what names them is not compared, nor reported as naming nothing.
    unreadable = {k for d in documents if d.kind == "order" and d.facts is None and (k := _order_key(d.body))}
    by_order_no: dict[str, list[str]] = defaultdict(list)
    for platform_code, order_no in orders:
        by_order_no[order_no].append(platform_code)

    seen: dict[tuple[str, str, str], Document] = {}
    held: dict[tuple[str, tuple[str, str]], Document] = {}
    for kind, code_field, number_field in (("payment", "payment_code", "payment_no"),
                                           ("waybill", "logistics_code", "waybill_no")):
        for d in _comparable(documents, kind):
            f = d.facts
            business_key = (kind, getattr(f, code_field), getattr(f, number_field))
            if business_key in seen:
                if seen[business_key].body != d.body:
                    out.append(Violation(d.location, number_field, "conflict", (
                        f"{kind} {business_key[2]} of {business_key[1]} is also in {seen[business_key].location} "
                        "with other content; the second submission is refused with 409")))
                continue
            seen[business_key] = d
            key = (f.platform_code, f.order_no)
            order = orders.get(key)
            if order is None:
                if key not in unreadable:
                    out.append(_order_not_found(d, kind, f, by_order_no))
                continue
            first = held.setdefault((kind, key), d)
            if first is not d:
                out.append(Violation(d.location, number_field, f"second_{kind}", (
                    f"order {key[0]}:{key[1]} already has {kind} {getattr(first.facts, number_field)} "
                    f"({first.location}); customs keeps the first and ignores this one"), CUSTOMS))
                continue
            out += (_payment_violations if kind == "payment" else _waybill_violations)(d, order)

    for key, order in orders.items():
        direction = order.facts.direction
        needed = ("payment", "waybill") if direction == "import" else ("waybill",)
        for kind in needed:
            if (kind, key) not in held:
                out.append(Violation(order.location, "order_no", f"{kind}_missing", (
                    f"{direction} order {key[0]}:{key[1]} has no {kind} among the documents; "
                    f"{'imports need an order, a payment and a waybill' if len(needed) == 2 else 'exports need an order and a waybill'} "
                    "(domain §4), else customs rejects the order with DOCUMENT_TIMEOUT"), CUSTOMS))
    return out


def _order_not_found(d: Document, kind: str, f: Any, by_order_no: dict[str, list[str]]) -> Violation:
    elsewhere = by_order_no.get(f.order_no, [])
    if elsewhere:
        return Violation(d.location, "platform_code", "ORDER_MISMATCH", (
            f"the {kind} names order {f.order_no} of platform {f.platform_code}, but that order is in the set "
            f"under platform {', '.join(elsewhere)}"), CUSTOMS)
    return Violation(d.location, "order_no", "ORDER_MISMATCH", (
        f"the {kind} names order {f.platform_code}:{f.order_no}, which is not among the documents checked"), CUSTOMS)


def _payment_violations(d: Document, order: Document) -> list[Violation]:
    pay, o = d.facts, order.facts
    out = []
    if o.direction == "export":
        return [Violation(d.location, "order_no", "export_order", (
            f"order {o.platform_code}:{o.order_no} is an export; payments are for import orders only"))]
    if pay.amount != o.actual_paid:
        out.append(Violation(d.location, "amount", "AMOUNT_MISMATCH", (
            f"expected {_money(o.actual_paid)}, the order's actual_paid ({order.location}); got {_money(pay.amount)}"),
            CUSTOMS))
    if pay.currency != o.currency:
        out.append(Violation(d.location, "currency", "AMOUNT_MISMATCH", (
            f"expected {o.currency}, the order's currency ({order.location}); got {pay.currency}"), CUSTOMS))
    buyer = o.buyer
    if buyer is not None:
        if pay.payer.name != buyer.name:
            out.append(Violation(d.location, "payer.name", "IDENTITY_MISMATCH", (
                f"expected {buyer.name!r}, the buyer's name on the order ({order.location}); got {pay.payer.name!r}"),
                CUSTOMS))
        if pay.payer.id_number.upper() != buyer.id_number.upper():
            # Identity numbers are personal data: even here, only their masked form is printed.
            out.append(Violation(d.location, "payer.id_number", "IDENTITY_MISMATCH", (
                f"expected the buyer's identity number {mask_id_number(buyer.id_number.upper())} ({order.location}); "
                f"got {mask_id_number(pay.payer.id_number.upper())}"), CUSTOMS))
    return out


def _waybill_violations(d: Document, order: Document) -> list[Violation]:
    bill, o = d.facts, order.facts
    out = []
    if bill.consignee is None and o.direction != "export":
        # Spec 1.1 §7.5: only an export order's waybill may leave its consignee out (the gateway's intake).
        out.append(Violation(d.location, "consignee", "required", "required for an import order's waybill"))
    if bill.freight != o.freight:
        out.append(Violation(d.location, "freight", "AMOUNT_MISMATCH", (
            f"expected {_money(o.freight)}, the order's freight ({order.location}); got {_money(bill.freight)}"),
            CUSTOMS))
    return out


# --- goods and limits (domain §5, §6): what customs would reject ----------------------------------


def goods_violations(documents: Sequence[Document], catalogue: dict[str, HsEntry], rates: FxRates,
                     today: Any = None) -> list[Violation]:
    out = []
    for d in _valid(documents, "order"):
        o = d.model
        for i, line in enumerate(o.items):
            entry = catalogue.get(line.hs_code)
            where = f"items[{i}].hs_code"
            if entry is not None and entry.prohibited:
                out.append(Violation(d.location, where, "PROHIBITED_GOODS",
                                     f"{line.hs_code} ({entry.description}) is prohibited (domain §6)", CUSTOMS))
            elif o.direction == "import" and (entry is None or not entry.positive_list):
                what = "is not in the HS catalogue" if entry is None else f"({entry.description}) is not"
                out.append(Violation(d.location, where, "NOT_ON_POSITIVE_LIST",
                                     f"{line.hs_code} {what} on the retail-import positive list (domain §6)", CUSTOMS))
        if o.direction == "import":
            out += _single_limit(d, rates, today or domain.china_day(datetime.now(timezone.utc)))
    return out


def _single_limit(d: Document, rates: FxRates, today: Any) -> list[Violation]:
    o = d.model
    value = domain.dutiable_value(sum((i.line_value for i in o.items), Decimal(0)), o.freight, o.insurance, o.discount)
    try:
        value_cny = domain.money(rates.to_cny(value, o.currency, today))
    except MissingRate as err:
        return [Violation(d.location, "currency", "missing_rate", f"{err}; customs cannot decide the order", CUSTOMS)]
    single_item = len(o.items) == 1 and o.items[0].quantity == 1
    if value_cny > domain.SINGLE_LIMIT_CNY and not single_item:
        return [Violation(d.location, "items", "OVER_SINGLE_LIMIT", (
            f"dutiable value {_money(value_cny)} CNY is over the single-transaction limit "
            f"{_money(domain.SINGLE_LIMIT_CNY)} and the order is not a single indivisible item (domain §5)"), CUSTOMS)]
    return []


# --- parties, when registrations are in the set -------------------------------------------------------


def party_violations(documents: Sequence[Document]) -> list[Violation]:
    registered = {d.model.code: set(d.model.roles) for d in _valid(documents, "enterprise")}
    if not registered:
        return []
    checks = {"order": (("platform_code", "platform"), ("ecommerce_code", "ecommerce")),
              "payment": (("payment_code", "payment"), ("platform_code", "platform")),
              "waybill": (("logistics_code", "logistics"), ("platform_code", "platform"))}
    out = []
    for kind, fields in checks.items():
        for d in _valid(documents, kind):
            for field, role in fields:
                code = getattr(d.model, field)
                if code not in registered:
                    out.append(Violation(d.location, field, "not_registered",
                                         f"{code} is not a registered enterprise (no registration in the set)"))
                elif role not in registered[code]:
                    out.append(Violation(d.location, field, "wrong_role",
                                         f"{code} is not registered with the {role} role"))
    return out


# --- the whole check -------------------------------------------------------------------------------


def check_platform_documents(paths: Sequence[str | Path], kind: str | None = None, cross: bool = True,
                             catalogue: dict[str, HsEntry] | None = None,
                             rates: FxRates | None = None, ceb: bool = False) -> PlatformReport:
    """Every violation of the documents in `paths` (files and directories): JSON documents, and CEB messages
    (`*.xml`, or every named file with `ceb`) read, paired and mapped by `ceb.py` into documents that go
    through the same checks. `kind` applies to the JSON documents."""
    from tooling.contracts.suite import ceb as ceb_mode

    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    json_paths, xml_paths = input_files(paths, ceb)
    documents, violations = read_documents(json_paths, kind)
    for doc in documents:
        violations += contract_violations(doc)
    messages = None
    if xml_paths:
        registrations = [d.model for d in _valid(documents, "enterprise")]
        messages = ceb_mode.read_ceb(xml_paths, ceb_mode.party_lookup(registrations))
        violations += messages.violations
        for doc in messages.documents:
            violations += contract_violations(doc)
        documents += messages.documents
    if cross:
        violations += cross_document_violations(documents)
        violations += party_violations(documents)
        violations += goods_violations(documents, catalogue if catalogue is not None else hs_catalogue(),
                                       rates or fx_rates())
    if messages is not None:
        violations = ceb_mode.annotate(violations, messages, documents)
    # Reported in reading order: documents as read, then each message and its records in message order.
    order: dict[str, int] = {}
    for loc in [d.location for d in documents if messages is None or d.location not in messages.origins] + [
            loc for m in (messages.messages if messages else []) for loc in [m.path, *m.locations]]:
        order.setdefault(loc, len(order))
    violations.sort(key=lambda v: (order.get(v.location, -1), v.location))
    notes = sorted(messages.notes, key=lambda v: order.get(v.location, -1)) if messages else []
    return PlatformReport(documents, violations, notes, messages)
