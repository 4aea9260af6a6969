"""The one-stop read model: the gateway listens to every agency's answer and keeps what the status
view, the trace, the enterprise view and the statistics show. It never asks an agency directly.

One batch handler per consumed event type, all the same shape: map each answer of the run to its
projection (services/gateway/views.py, pure), load the versions of the orders the run is about and
whether a party watches them with a webhook (one query), keep the views that win (pure), and save them
with one upsert per table and one insert of the trace lines. What is kept, and why, is in views.py: a decision about an older order version is history
only (trace, no view); answers without a version (FX, logistics) are about the version held; the newest
version wins, the later answer of equal versions."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from contracts.topics import EVENT_TYPES
from contracts.v1.events import (
    AgencyOrderStatus,
    CreditRatingChanged,
    CustomsDecision,
    FxDirectoryStatusChanged,
    FxSettled,
    LogisticsAnomaly,
    NegativeListChanged,
    OrderStatusChanged,
    ShipmentStatusChanged,
    TaxAssessment,
)
from services.gateway import store, views
from services.gateway.ceb import feed as ceb_feed
from services.gateway.webhooks import dispatch
from services.gateway.webhooks import store as webhook_store
from shared.batch import Received
from shared.runtime import Handlers, UnitOfWork

handlers = Handlers()

Mapping = Callable[[Any, str], views.Projection]


async def project(uow: UnitOfWork, events: list[Received[Any]], mapping: Mapping) -> None:
    """A run of answers into the read model: one query, then one statement per table."""
    projections = [mapping(e.payload, e.correlation_id) for e in events]
    # The versions held and (spec §7.3) which orders a party watches with a webhook: one query.
    held, watched = await webhook_store.held_versions_and_watched(uow.session, views.order_keys(projections))
    kept = views.kept_order_views(projections, held)
    await store.save_order_views(uow.session, kept)
    # The changed views of watched orders are announced to the webhook dispatcher, in this transaction.
    await dispatch.announce(uow, ((v.key, v.version, v.agency) for v in kept), watched)
    await store.save_enterprise_views(uow.session, views.latest_enterprise_views(projections))
    await store.add_trace_entries(uow.session, views.trace_entries(projections))


def projector(model: type[BaseModel], mapping: Mapping, on: Handlers = handlers) -> None:
    """Registers (on `on`) the batch handler projecting `model`'s answers with `mapping`: all a new
    agency's answers need, besides their mapping in views.py."""

    async def handle(uow: UnitOfWork, events: list[Received[Any]]) -> None:
        await project(uow, events, mapping)

    handle.__name__ = f"project_{mapping.__name__.removeprefix('of_')}"
    on.on_batch(model)(handle)




@handlers.on_batch(CustomsDecision)
async def project_customs_decision(uow: UnitOfWork, events: list[Received[Any]]) -> None:
    """Customs' decisions into the read model, and (spec §7.5) as list receipts in the CEB polling feed for
    the orders that came with a CEB list."""
    await project(uow, events, views.of_customs_decision)
    await ceb_feed.customs_decisions(uow.session, events)


projector(TaxAssessment, views.of_tax_assessment)
projector(FxSettled, views.of_fx_settlement)
projector(FxDirectoryStatusChanged, views.of_fx_directory_status)
projector(ShipmentStatusChanged, views.of_shipment_status)
projector(LogisticsAnomaly, views.of_logistics_anomaly)
projector(CreditRatingChanged, views.of_credit_rating)
projector(NegativeListChanged, views.of_negative_list)
# Every other agency's status of an order (contracts.v1.events.AgencyOrderStatus): one generic mapping, so
# an agency added to the catalogue shows in the one-stop view with no gateway code.
for _et in EVENT_TYPES.values():
    if issubclass(_et.model, AgencyOrderStatus) and (_et.name, _et.version) not in handlers.by_type:
        projector(_et.model, views.of_agency_status)

# spec §7.3: the gateway's own announcements of view changes become webhook deliveries.
handlers.on_batch(OrderStatusChanged)(dispatch.dispatch)
