"""The gateway's pure rules: idempotency fingerprints, who may see what, the one-stop view, statistics."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel

from contracts.identifiers import mask_id_number, redact
from contracts.types import format_money
from shared.clock import china_date
from shared.reference import FxRates
from contracts.v1.documents import TrackingEventIn
from shared.logs import mask_personal_data
from shared.settings import settings

AMENDABLE = ("pending", "inspection", "rejected")
CANCELLABLE = ("pending", "inspection", "rejected")


def fingerprint(document: BaseModel, key: str | None = None) -> str:
    """Same document, same fingerprint, whatever the key order or number formatting it was sent with:
    64 hex characters, HMAC-SHA256 under `key` (default SW_GATEWAY_FINGERPRINT_KEY) of the canonical
    form's SHA-256.

    Keyed because the fingerprint covers the buyer's or payer's full identity number while the stored
    document keeps only its masked form: with every other field known, a plain digest gives the number
    back to anyone who tries the few million resident ids the mask leaves open (spec §7.2)."""
    # Absent and null are the same submission: a field added later as optional must not turn an old
    # document's identical resubmission into a conflict.
    canonical = json.dumps(document.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":"))
    return keyed_fingerprint(hashlib.sha256(canonical.encode()).hexdigest(), key)


def keyed_fingerprint(digest: str, key: str | None = None) -> str:
    """The stored fingerprint of a document whose canonical SHA-256 is `digest` (hex); gateway migration
    0006 applies it to the plain digests stored before 1.1."""
    secret = (key if key is not None else settings().sw_gateway_fingerprint_key).encode()
    return hmac.new(secret, digest.encode(), hashlib.sha256).hexdigest()


def tracking_without_personal_data(doc: TrackingEventIn, names: Iterable[str | None],
                                   masked_ids: Iterable[str | None] = ()) -> TrackingEventIn:
    """A carrier's tracking report as the mesh may carry it (spec §6, §7.2): its free text (`location`,
    `note`) reaches logistics, credit's published reasons and the trace, so the names of the order's buyer
    and payers (`names`) become `[name withheld]`, any word whose masked form is one of theirs
    (`masked_ids`: the gateway holds only the masked numbers; the full ones are sealed for customs) is
    masked, and anything else shaped like an identity number is masked (the patterns of
    `shared.logs.mask_personal_data`). Cut back to the fields' lengths (200, 500)."""
    known = {m.upper() for m in masked_ids if m}

    def theirs(match: re.Match) -> str:
        masked = mask_id_number(match.group(0).upper())
        return masked if masked.upper() in known else match.group(0)

    def clean(text: str, limit: int) -> str:
        if not text:
            return text
        text = re.sub(r"[A-Za-z0-9]{5,}", theirs, redact(text, names)) if known else redact(text, names)
        return mask_personal_data(text)[:limit]

    return doc.model_copy(update={"location": clean(doc.location, 200), "note": clean(doc.note, 500)})


def without_own_id_numbers(document: BaseModel) -> BaseModel:
    """`document` (a parsed body) with every occurrence of its own people's identity numbers (a buyer's, a
    payer's) in its free text (an address, an item name, a note) replaced by the masked form (spec §6,
    §7.2): a careless platform that writes the buyer's passport into the address must not publish it to
    every agency. The `id_number` fields themselves stay whole: they are sealed for customs at publication.
    The same document always gives the same result, so resubmissions keep their fingerprint."""
    # Numbers under 5 characters are left alone: they would match ordinary text, and show little anyway.
    ids = [p.id_number for p in (getattr(document, "buyer", None), getattr(document, "payer", None))
           if p is not None and len(p.id_number) >= 5]
    if not ids:
        return document
    # The common case, cheaply (one JSON dump, about a tenth of the walk below): each number appears only in
    # the id_number fields that hold it, so there is nothing to mask.
    text = document.model_dump_json().lower()
    if all(text.count(i.lower()) == ids.count(i) for i in ids):
        return document

    def clean(value):  # noqa: ANN001, ANN202 - any JSON-shaped value
        if isinstance(value, str):
            return redact(value, id_numbers=ids)
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: (v if k == "id_number" else clean(v)) for k, v in value.items()}
        return value

    data = document.model_dump(mode="json", exclude_none=True)
    cleaned = clean(data)
    return document if cleaned == data else type(document).model_validate(cleaned)


def reference_problems(document: BaseModel, rates: FxRates, today: date) -> list[dict]:
    """What is wrong with a valid order or payment body against the reference rate table, as 422 errors
    (`{"field", "code", "message"}`); empty when nothing is.

    - `currency` must be one the table converts (CNY, or a currency with a row: `FxRates.currencies`):
      customs, tax and FX convert every amount, and one they cannot convert would leave the order
      pending for ever (issue 9);
    - FX converts on a day (a payment's `paid_at`, China time; an order's submission, `today`) through
      CNY into USD, at the latest rates on or before that day: a day before the first rate of the
      currency or of USD cannot be converted either (`paid_at`, or `currency` for an order)."""
    currency = getattr(document, "currency", None)
    if currency is None:
        return []
    if currency not in rates.currencies():
        accepted = ", ".join(sorted(rates.currencies()))
        return [{"field": "currency", "code": "unknown_currency",
                 "message": f"{currency} is not a currency the single window converts; accepted: {accepted}"}]
    paid_at = getattr(document, "paid_at", None)
    day, field = (china_date(paid_at), "paid_at") if paid_at is not None else (today, "currency")
    first = max(rates.first_day(currency) or date.max, rates.first_day("USD") or date.max)
    if day < first:
        return [{"field": field, "code": "no_rate", "message": f"no exchange rate for {currency} on "
                 f"{day.isoformat()} (China time): the rate table starts on {first.isoformat()}"}]
    return []


def api_key_hash(api_key: str) -> str:
    # Keys are 256-bit random tokens, so a plain SHA-256 cannot be brute-forced; no salt or KDF needed.
    return hashlib.sha256(api_key.encode()).hexdigest()


def submission_outcome(stored_fingerprint: str | None, new_fingerprint: str) -> str:
    """new (202), same (200, nothing published) or conflict (409)."""
    if stored_fingerprint is None:
        return "new"
    return "same" if stored_fingerprint == new_fingerprint else "conflict"


def bound_document_action(bound: tuple[str, str] | None, key: tuple[str, str], changed: bool,
                          customs_status: str) -> str:
    """A payment or waybill with business key `key` (firm, number) for an order bound to `bound` (the first
    one accepted for it, or None), `changed` when `key` is already stored with other content (spec §7.2):
    "new" (it binds the order), "correct" (the bound document corrected by its firm while customs has not
    released the order, §4.5), "conflict" (the key is stored for something else), "bound_elsewhere" (the
    order has another payment or waybill: one per order), or the customs status that forbids the correction."""
    if bound is None:
        return "conflict" if changed else "new"
    if bound != key:
        return "bound_elsewhere"
    if not changed:
        return "conflict"  # a binding always has its stored document; never reached
    return "correct" if correction_allowed(customs_status) else customs_status


def correction_allowed(customs_status: str) -> bool:
    return customs_status in AMENDABLE


def cancellation_allowed(customs_status: str) -> bool:
    return customs_status in CANCELLABLE


@dataclass(frozen=True)
class OrderFacts:
    """One order as the statistics see it."""

    direction: str
    trade_mode: str
    country: str | None
    customs_status: str
    channel: str | None
    value_cny: Decimal
    tax_total: Decimal | None
    fx_usd: Decimal | None
    complete_at: datetime | None
    decided_at: datetime | None


def _percentile(sorted_values: list[float], fraction: float) -> float:
    # Nearest-rank percentile: a value that was actually observed.
    index = max(0, min(len(sorted_values) - 1, int(-(-fraction * len(sorted_values) // 1)) - 1))
    return sorted_values[index]


def statistics_of(orders: Iterable[OrderFacts]) -> dict:
    groups: dict[str, dict[str, dict]] = {k: defaultdict(lambda: {"count": 0, "value_cny": Decimal(0)})
                                         for k in ("direction", "trade_mode", "country", "customs_status", "channel")}
    total = {"count": 0, "value_cny": Decimal(0)}
    tax_collected = Decimal(0)
    fx_settled = Decimal(0)
    latencies: list[float] = []
    for o in orders:
        keys = {"direction": o.direction, "trade_mode": o.trade_mode, "country": o.country or "unknown",
                "customs_status": o.customs_status, "channel": o.channel or "none"}
        for group, key in keys.items():
            groups[group][key]["count"] += 1
            groups[group][key]["value_cny"] += o.value_cny
        total["count"] += 1
        total["value_cny"] += o.value_cny
        tax_collected += o.tax_total or 0
        fx_settled += o.fx_usd or 0
        if o.complete_at and o.decided_at and o.customs_status not in ("pending", "cancelled"):
            latencies.append(max(0.0, (o.decided_at - o.complete_at).total_seconds()))
    latencies.sort()

    def money_group(g: Mapping[str, dict]) -> dict:
        return {k: {"count": v["count"], "value_cny": format_money(v["value_cny"])} for k, v in sorted(g.items())}

    return {
        "orders": {"count": total["count"], "value_cny": format_money(total["value_cny"])},
        "by_direction": money_group(groups["direction"]),
        "by_trade_mode": money_group(groups["trade_mode"]),
        "by_country": money_group(groups["country"]),
        "by_customs_status": money_group(groups["customs_status"]),
        "by_channel": money_group(groups["channel"]),
        "tax_collected_cny": format_money(tax_collected),
        "fx_settled_usd": format_money(fx_settled),
        "decision_time_seconds": {
            "count": len(latencies),
            "median": round(statistics.median(latencies), 3) if latencies else None,
            "p95": round(_percentile(latencies, 0.95), 3) if latencies else None,
        },
    }
