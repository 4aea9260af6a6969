"""The one-stop read model as pure functions (no I/O): what an agency's answer makes of the gateway's
views, which answers are kept, and how the held views make the status view of spec §4.4.

The read model is agency-generic. An agency's answer about an order becomes an `OrderView`: the view
the status view shows under the agency's name (a JSON object), the order version it is about, and when
the agency said it. An answer about an enterprise becomes an `EnterpriseView`. Every answer about an
order also leaves a `TraceEntry` (the trace of spec §4.4). A sixth agency is one more mapping function
here and one more batch handler: its views go into the same tables, and the status view shows every
view it holds, so it needs no gateway migration. An agency whose event derives from
`contracts.v1.events.AgencyOrderStatus` needs not even that: `of_agency_status` maps every such event.

Which answers are kept (`kept_order_views`):
- an answer about an order the gateway does not hold changes no view (it stays in the trace);
- an answer about an older version of the order than the gateway holds (before a correction or a
  cancellation) is history only: trace, no view;
- an agency that does not say which version it answers (FX, logistics) answers the version the gateway
  holds when the answer is projected: last answer wins, as before versions existed;
- several answers of one agency about one order in one run: the newest version wins, the later one of
  equal versions (the run is in consumption order).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from contracts.topics import TOPICS
from contracts.types import format_money
from contracts.v1.events import (
    AgencyOrderStatus,
    CreditRatingChanged,
    CustomsDecision,
    FxDirectoryStatusChanged,
    FxSettled,
    LogisticsAnomaly,
    NegativeListChanged,
    ShipmentStatusChanged,
    TaxAssessment,
)

OrderKey = tuple[str, str]  # (platform_code, order_no)

# The agencies of spec §4.4 that the status view always shows, and what it shows before they answer.
PENDING_ORDER_VIEWS: dict[str, dict[str, Any]] = {
    "customs": {"status": "pending", "channel": None, "reasons": []},
    "tax": {"status": "pending"},
    "fx": {"status": "pending"},
    "logistics": {"status": "pending"},
}
# What the enterprise view shows for an agency that has said nothing about the enterprise yet.
EMPTY_ENTERPRISE_VIEWS: dict[str, dict[str, Any]] = {
    "fx": {"directory_status": "exempt", "year": None, "year_to_date_usd": "0.00"},
    "credit": {"score": None, "grade": None, "negative_listed": False, "on_negative_list": False},
}
# A correction (PUT) makes customs, tax and FX answer afresh; a cancellation (DELETE) is customs' status.
RESET_ON_CORRECTION = ("customs", "tax", "fx")
TRACE_SUMMARY_MAX = 500


@dataclass(frozen=True)
class TraceEntry:
    """One line of an order's trace: `at` (aware), `source` (gateway / customs / tax / fx / logistics /
    credit), `type` (e.g. customs.decision), a short `summary` (cut at 500 characters)."""

    correlation_id: str
    at: datetime
    source: str
    type: str
    summary: str

    def row(self) -> dict[str, Any]:
        return {"correlation_id": self.correlation_id, "at": self.at, "source": self.source, "type": self.type,
                "summary": self.summary[:TRACE_SUMMARY_MAX]}


@dataclass(frozen=True)
class OrderView:
    """What `agency` says about one order: `view` is shown as is under the agency's name in the status
    view; `version` is the order version it is about (None: the agency does not say); `at` is when the
    agency said it (for customs: the decision time of the statistics, spec §5)."""

    key: OrderKey
    agency: str
    version: int | None
    view: dict[str, Any]
    at: datetime

    def row(self) -> dict[str, Any]:
        assert self.version is not None, "a view is saved with the version it is about"
        return {"platform_code": self.key[0], "order_no": self.key[1], "agency": self.agency,
                "version": self.version, "view": self.view, "updated_at": self.at}


@dataclass(frozen=True)
class EnterpriseView:
    """What `agency` says about one enterprise (a registered code) at the agency's `revision` of it (0 when
    the event carries none): the greatest revision wins, and of equal ones the last answer."""

    code: str
    agency: str
    view: dict[str, Any]
    at: datetime
    revision: int = 0

    def row(self) -> dict[str, Any]:
        return {"enterprise_code": self.code, "agency": self.agency, "view": self.view, "revision": self.revision,
                "updated_at": self.at}


@dataclass(frozen=True)
class Projection:
    """What one consumed answer does to the read model: at most one order view, at most one enterprise
    view, at most one trace line."""

    order_view: OrderView | None = None
    enterprise_view: EnterpriseView | None = None
    trace: TraceEntry | None = None


# --- one answer, one projection (one function per consumed event type) -----------------------------


def of_customs_decision(d: CustomsDecision, correlation_id: str) -> Projection:
    """customs.decision: status, channel and reasons (spec §4.4 vocabularies), about `order_version`."""
    codes = ", ".join(r.code for r in d.reasons)
    summary = f"{d.status}" + (f" ({d.channel})" if d.channel else "") + (f": {codes}" if codes else "")
    view = {"status": d.status, "channel": d.channel, "reasons": [r.model_dump(mode="json") for r in d.reasons]}
    return Projection(
        order_view=OrderView((d.platform_code, d.order_no), "customs", d.order_version, view, d.decided_at),
        trace=TraceEntry(correlation_id, d.decided_at, "customs", "customs.decision", summary))


def of_tax_assessment(a: TaxAssessment, correlation_id: str) -> Projection:
    """tax.assessment: the status, and when a total was computed the amounts as CNY money strings."""
    view: dict[str, Any] = {"status": a.status}
    if a.total is not None:
        view.update({
            "dutiable_value": format_money(a.dutiable_value), "customs_duty": format_money(a.customs_duty),
            "vat": format_money(a.vat), "consumption_tax": format_money(a.consumption_tax),
            "total": format_money(a.total), "currency": a.currency,
            "declared_difference": str(a.declared_difference) if a.declared_difference is not None else None,
        })
    total = f" total {format_money(a.total)} CNY" if a.total is not None else ""
    return Projection(
        order_view=OrderView((a.platform_code, a.order_no), "tax", a.order_version, view, a.assessed_at),
        trace=TraceEntry(correlation_id, a.assessed_at, "tax", "tax.assessment", f"{a.status}{total}"))


def _fx_enterprise_view(year: int | None, year_to_date_usd: Decimal | None, status: str | None) -> dict[str, Any]:
    return {"directory_status": status or "exempt", "year": year,
            "year_to_date_usd": format_money(year_to_date_usd or Decimal(0))}


def of_fx_settlement(s: FxSettled, correlation_id: str) -> Projection:
    """fx.settlement: the order's settlement (no order version: the held one); when settled, the seller's
    year-to-date and directory status too (domain §11)."""
    view: dict[str, Any] = {"status": s.status}
    enterprise = None
    if s.status == "settled":
        view.update({"amount_usd": format_money(s.amount_usd), "rate": str(s.rate), "rate_date": s.rate_date,
                     "year_to_date_usd": format_money(s.year_to_date_usd), "directory_status": s.directory_status})
        enterprise = EnterpriseView(s.ecommerce_code, "fx", _fx_enterprise_view(
            s.year, s.year_to_date_usd, s.directory_status), s.settled_at, s.enterprise_revision or 0)
    usd = f" USD {format_money(s.amount_usd)}" if s.amount_usd is not None else ""
    return Projection(
        order_view=OrderView((s.platform_code, s.order_no), "fx", None, view, s.settled_at),
        enterprise_view=enterprise,
        trace=TraceEntry(correlation_id, s.settled_at, "fx", "fx.settlement", f"{s.status}{usd}"))


def of_fx_directory_status(c: FxDirectoryStatusChanged, correlation_id: str) -> Projection:
    """fx.directory_status: the enterprise's FX view; no order, no trace."""
    return Projection(enterprise_view=EnterpriseView(c.enterprise_code, "fx", _fx_enterprise_view(
        c.year, c.year_to_date_usd, c.status), c.changed_at, c.enterprise_revision or 0))


def of_shipment_status(s: ShipmentStatusChanged, correlation_id: str) -> Projection:
    """logistics.status: the shipment's state (no order version: the held one)."""
    view = {"status": s.status, "waybill_no": s.waybill_no, "at": s.at.isoformat()}
    return Projection(
        order_view=OrderView((s.platform_code, s.order_no), "logistics", None, view, s.at),
        trace=TraceEntry(correlation_id, s.at, "logistics", "logistics.status",
                         f"{s.previous_status or 'new'} -> {s.status} {s.location}".strip()))


def of_logistics_anomaly(a: LogisticsAnomaly, correlation_id: str) -> Projection:
    """logistics.anomaly: a trace line only."""
    return Projection(trace=TraceEntry(correlation_id, a.at, "logistics", "logistics.anomaly",
                                       f"{a.anomaly}: {a.detail}"))


# The agency that writes each event model: the writer of its topic.
WRITER_OF = {et.model: t.writer for t in TOPICS for et in t.events}
EVENT_TYPE_OF = {et.model: et.name for t in TOPICS for et in t.events}
# What of an AgencyOrderStatus is the view's frame, not the view.
_STATUS_FRAME = {"platform_code", "order_no", "order_version", "decided_at"}


def of_agency_status(s: AgencyOrderStatus, correlation_id: str) -> Projection:
    """Any agency's `AgencyOrderStatus` event (an agency with no mapping of its own): the view is every field
    but the order's key, version and time, under the name of the agency writing the event's topic."""
    agency = WRITER_OF[type(s)]
    view = {**s.model_dump(mode="json", exclude=_STATUS_FRAME), "at": s.decided_at.isoformat()}
    codes = ", ".join(r.code for r in s.reasons)
    return Projection(
        order_view=OrderView((s.platform_code, s.order_no), agency, s.order_version, view, s.decided_at),
        trace=TraceEntry(correlation_id, s.decided_at, agency, EVENT_TYPE_OF[type(s)],
                         s.status + (f": {codes}" if codes else "")))


def _credit_view(score: Decimal, grade: str, listed: bool) -> dict[str, Any]:
    return {"score": str(score), "grade": grade, "negative_listed": listed, "on_negative_list": listed}


def of_credit_rating(r: CreditRatingChanged, correlation_id: str) -> Projection:
    """credit.rating: the enterprise's credit view (score, grade A-D, negative list)."""
    return Projection(enterprise_view=EnterpriseView(
        r.enterprise_code, "credit", _credit_view(r.score, r.grade, r.negative_listed), r.changed_at,
        r.enterprise_revision or 0))


def of_negative_list(n: NegativeListChanged, correlation_id: str) -> Projection:
    """credit.negative_list: the enterprise's credit view."""
    return Projection(enterprise_view=EnterpriseView(
        n.enterprise_code, "credit", _credit_view(n.score, n.grade, n.listed), n.changed_at,
        n.enterprise_revision or 0))


# --- a run of answers: which views are kept ---------------------------------------------------------


def order_keys(projections: Iterable[Projection]) -> set[OrderKey]:
    """The orders a run of projections is about (whose held versions `kept_order_views` needs)."""
    return {p.order_view.key for p in projections if p.order_view is not None}


def kept_order_views(projections: Iterable[Projection], held_versions: Mapping[OrderKey, int]) -> list[OrderView]:
    """The order views a run of answers (consumption order) leaves, at most one per (order, agency),
    each with its version (see the module for the rules), sorted by key. `held_versions`: the version
    the gateway holds of each order, absent for an order it does not hold."""
    latest: dict[tuple[OrderKey, str], OrderView] = {}
    for p in projections:
        v = p.order_view
        if v is None or v.key not in held_versions:
            continue
        held = held_versions[v.key]
        version = held if v.version is None else v.version
        if version < held:
            continue  # about an older version of the order: history only
        kept = latest.get((v.key, v.agency))
        if kept is not None and version < kept.version:  # type: ignore[operator]
            continue
        latest[(v.key, v.agency)] = replace(v, version=version)
    return [latest[k] for k in sorted(latest)]


def latest_enterprise_views(projections: Iterable[Projection]) -> list[EnterpriseView]:
    """One enterprise view per (enterprise, agency): the one with the greatest revision, of equal ones the
    last of the run; sorted by key. (The agency's events about one enterprise travel on several topics
    or partitions, so consumption order is not the agency's order.)"""
    latest: dict[tuple[str, str], EnterpriseView] = {}
    for p in projections:
        v = p.enterprise_view
        if v is None:
            continue
        kept = latest.get((v.code, v.agency))
        if kept is None or kept.revision <= v.revision:
            latest[(v.code, v.agency)] = v
    return [latest[k] for k in sorted(latest)]


def trace_entries(projections: Iterable[Projection]) -> list[TraceEntry]:
    """Every trace line of the run, in consumption order (history keeps what the views drop)."""
    return [p.trace for p in projections if p.trace is not None]


# --- corrections and cancellations (spec §4.5) ------------------------------------------------------


def views_on_correction(key: OrderKey, version: int, at: datetime) -> list[OrderView]:
    """A correction to `version`: customs, tax and FX are pending again, about the new version (so an
    answer about an older version no longer shows)."""
    return [OrderView(key, agency, version, dict(PENDING_ORDER_VIEWS[agency]), at) for agency in RESET_ON_CORRECTION]


def view_on_cancellation(key: OrderKey, version: int, at: datetime, customs: Mapping[str, Any] | None) -> OrderView:
    """A cancellation to `version`: customs shows `cancelled` with no channel (its reasons stay)."""
    held = dict(customs or PENDING_ORDER_VIEWS["customs"])
    return OrderView(key, "customs", version, {**held, "status": "cancelled", "channel": None}, at)


def customs_status(views: Mapping[str, Mapping[str, Any]]) -> str:
    """The customs status PUT and DELETE decide on (spec §4.5): pending until customs answers."""
    return (views.get("customs") or PENDING_ORDER_VIEWS["customs"])["status"]


# --- the views as shown -----------------------------------------------------------------------------


def agency_sections(views: Mapping[str, Mapping[str, Any]], reserved: Iterable[str] = ()) -> dict[str, Any]:
    """The agencies' part of the status view (spec §4.4): every fixed agency (pending until it answers),
    then every other agency view held, by name; names in `reserved` (the order's own fields) are not
    overwritten."""
    shown: dict[str, Any] = {agency: dict(views.get(agency) or pending) for agency, pending in PENDING_ORDER_VIEWS.items()}
    reserved = set(reserved)
    for agency in sorted(views):
        if agency not in shown and agency not in reserved:
            shown[agency] = dict(views[agency])
    return shown


def enterprise_sections(views: Mapping[str, Mapping[str, Any]], reserved: Iterable[str] = ()) -> dict[str, Any]:
    """The agencies' part of the enterprise view: FX and credit (empty until they answer), then every
    other agency view held about the enterprise."""
    shown: dict[str, Any] = {agency: dict(views.get(agency) or empty) for agency, empty in EMPTY_ENTERPRISE_VIEWS.items()}
    reserved = set(reserved)
    for agency in sorted(views):
        if agency not in shown and agency not in reserved:
            shown[agency] = dict(views[agency])
    return shown


def last_update(order_updated_at: datetime, view_times: Iterable[datetime]) -> datetime:
    """The status view's `updated_at`: the latest of the order's own change and its agencies' answers."""
    return max([order_updated_at, *view_times])


def one_stop_view(row: Any, held: Mapping[str, tuple[Mapping[str, Any], datetime]]) -> dict[str, Any]:
    """The status view of spec §4.4 of one order: `row` is its line of `store.status_query` (the order's own
    columns, whether its payment and waybill arrived, the seller's credit view), `held` its agency views
    ({agency: (view, updated_at)}). What `GET /v1/orders/{platform_code}/{order_no}` answers and what a
    webhook delivery carries as `data` (spec §7.3)."""
    documents = {"order": "received",
                 "payment": "received" if row.has_payment else ("not_required" if row.direction == "export" else "missing"),
                 "waybill": "received" if row.has_waybill else "missing"}
    order = {
        "order_no": row.order_no, "platform_code": row.platform_code, "ecommerce_code": row.ecommerce_code,
        "direction": row.direction, "trade_mode": row.trade_mode, "version": row.version,
        "documents": documents,
    }
    credit = row.credit or {}
    fixed = {"credit": {"ecommerce_grade": credit.get("grade")},
             "submitted_at": row.submitted_at.isoformat(),
             "updated_at": last_update(row.updated_at, (at for _, at in held.values())).isoformat()}
    sections = agency_sections({agency: view for agency, (view, _) in held.items()}, reserved=[*order, *fixed])
    return {**order, **sections, **fixed}
