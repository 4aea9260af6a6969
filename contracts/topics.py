"""The topic catalogue (spec §6): topic -> event types -> (version, payload model).

Producers and consumers both look topics and models up here; no topic name is written anywhere else."""
from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from contracts.v1 import events as v1
from contracts.v1.quarantine import QuarantineStatus
from contracts.v2 import events as v2


@dataclass(frozen=True)
class EventType:
    name: str
    version: int
    model: type[BaseModel]
    topic: str = ""
    key: str = "correlation id: {platform_code}:{order_no}"


@dataclass(frozen=True)
class Topic:
    name: str
    writer: str
    carries: str
    events: tuple[EventType, ...] = field(default_factory=tuple)

    @property
    def dead_letter(self) -> str:
        return f"{self.name}.dlq"


def _topic(name: str, writer: str, carries: str, *events: tuple[str, type[BaseModel], str], version: int = 1) -> Topic:
    return Topic(
        name, writer, carries, tuple(EventType(n, version, m, name, key) for n, m, key in events)
    )


ORDER_KEY = "correlation id: {platform_code}:{order_no}"
ENTERPRISE_KEY = "enterprise code"

ENTERPRISE_REGISTERED = _topic(
    "sw.enterprise.registered.v1", "gateway", "enterprise registrations",
    ("enterprise.registered", v1.EnterpriseRegistered, ENTERPRISE_KEY),
)
ORDER_SUBMITTED = _topic(
    "sw.order.submitted.v1", "gateway", "orders (new, corrected, cancelled)",
    ("order.submitted", v1.OrderSubmitted, ORDER_KEY),
)
ORDER_SUBMITTED_V2 = _topic(
    "sw.order.submitted.v2", "gateway", "orders (new, corrected, cancelled), money as {amount, currency}",
    ("order.submitted", v2.OrderSubmittedV2, ORDER_KEY), version=2,
)
PAYMENT_SUBMITTED = _topic(
    "sw.payment.submitted.v1", "gateway", "payments",
    ("payment.submitted", v1.PaymentSubmitted, ORDER_KEY),
)
WAYBILL_SUBMITTED = _topic(
    "sw.waybill.submitted.v1", "gateway", "waybills and tracking events",
    ("waybill.submitted", v1.WaybillSubmitted, ORDER_KEY),
    ("waybill.tracked", v1.WaybillTracked, ORDER_KEY),
)
CUSTOMS_DECISION = _topic(
    "customs.decision.v1", "customs", "release / inspection / rejection with reasons and channel",
    ("customs.decision", v1.CustomsDecision, ORDER_KEY),
    ("customs.export_declarations", v1.ExportDeclarationsConsolidated, ENTERPRISE_KEY),
)
TAX_ASSESSMENT = _topic(
    "tax.assessment.v1", "tax", "assessments and exemptions",
    ("tax.assessment", v1.TaxAssessment, ORDER_KEY),
)
FX_SETTLEMENT = _topic(
    "fx.settlement.v1", "fx", "settlements and directory-status changes",
    ("fx.settlement", v1.FxSettled, ORDER_KEY),
    ("fx.directory_status", v1.FxDirectoryStatusChanged, ENTERPRISE_KEY),
)
LOGISTICS_STATUS = _topic(
    "logistics.status.v1", "logistics", "shipment status changes and anomalies",
    ("logistics.status", v1.ShipmentStatusChanged, ORDER_KEY),
    ("logistics.anomaly", v1.LogisticsAnomaly, ORDER_KEY),
)
CREDIT_RATING = _topic(
    "credit.rating.v1", "credit", "grade changes and negative-list entries",
    ("credit.rating", v1.CreditRatingChanged, ENTERPRISE_KEY),
    ("credit.negative_list", v1.NegativeListChanged, ENTERPRISE_KEY),
)
QUARANTINE_STATUS = _topic(
    "quarantine.status.v1", "quarantine", "orders held for inspection (HS chapters 01-14) or cleared",
    ("quarantine.status", QuarantineStatus, ORDER_KEY),
)
ORDER_STATUS_CHANGED = _topic(
    "sw.order.status_changed.v1", "gateway", "changes of an order's one-stop view, for webhook deliveries",
    ("order.status_changed", v1.OrderStatusChanged, ORDER_KEY),
)

TOPICS: tuple[Topic, ...] = (
    ENTERPRISE_REGISTERED,
    ORDER_SUBMITTED,
    ORDER_SUBMITTED_V2,
    PAYMENT_SUBMITTED,
    WAYBILL_SUBMITTED,
    CUSTOMS_DECISION,
    TAX_ASSESSMENT,
    FX_SETTLEMENT,
    LOGISTICS_STATUS,
    CREDIT_RATING,
    QUARANTINE_STATUS,
    ORDER_STATUS_CHANGED,
)

EVENT_TYPES: dict[tuple[str, int], EventType] = {
    (e.name, e.version): e for t in TOPICS for e in t.events
}
EVENT_BY_MODEL: dict[type[BaseModel], EventType] = {e.model: e for e in EVENT_TYPES.values()}


def event_type_of(model: type[BaseModel]) -> EventType:
    return EVENT_BY_MODEL[model]


# Not an event topic: the operators' record of dead letters replayed (shared/deadletters.py), one JSON
# record per replay, keyed by the dead letter's id.
DEAD_LETTER_REPLAYS = "ops.dead-letter-replays"


def all_topic_names(with_dead_letters: bool = True) -> list[str]:
    """Every topic to create: the catalogue's, and with `with_dead_letters` their dead-letter topics and the
    record of replays."""
    names = [t.name for t in TOPICS]
    return names + [t.dead_letter for t in TOPICS] + [DEAD_LETTER_REPLAYS] if with_dead_letters else names
