"""Status pushed to the trader (spec §7.3): webhooks per enterprise, in the gateway.

- rules.py: pure rules (signatures, URL policy, retry schedule, parties of an order);
- dispatch.py: view changes -> `sw.order.status_changed.v1` (outbox) -> delivery rows (consumer, inbox);
- sender.py: the job that sends due deliveries (leases, a bounded pipeline, timeouts);
- store.py: the set-based database work; api.py: the routes. docs/webhooks.md tells receivers the rest."""
from __future__ import annotations

from fastapi import APIRouter

from shared.runtime import Service, UnitOfWork


def install(service: Service) -> APIRouter:
    """Adds the webhooks to the gateway `service`: the sender and the pruner as periodic jobs (they run in
    a started service only, never in a test's LocalRunner), and returns the routes. The dispatcher is a
    handler of the gateway's own (services/gateway/handlers.py)."""
    from datetime import timedelta  # noqa: PLC0415

    from services.gateway.webhooks import store  # noqa: PLC0415
    from services.gateway.webhooks.api import webhook_router  # noqa: PLC0415
    from services.gateway.webhooks.sender import Sender  # noqa: PLC0415
    from services.gateway.webhooks.settings import webhook_settings  # noqa: PLC0415
    from shared.clock import utcnow  # noqa: PLC0415

    config = webhook_settings()
    senders: dict[int, Sender] = {}

    @service.every(lambda _s: config.poll_seconds)
    async def send_webhooks(_uow: UnitOfWork) -> None:
        # The job's own unit of work stays unused (no connection is taken): the sender opens its two short
        # transactions itself, so that none is open while a request is in flight.
        sender = senders.get(id(service.sessions))
        if sender is None:
            senders.clear()
            sender = senders[id(service.sessions)] = Sender(
                service.sessions, config, production=not service.settings.is_development,
                gateway_key=service.settings.sw_gateway_fingerprint_key)
        await sender.run()

    @service.every(lambda _s: config.prune_seconds)
    async def prune_webhook_log(uow: UnitOfWork) -> None:
        await store.prune(uow.session, utcnow() - timedelta(days=config.keep_days), config.prune_chunk)

    return webhook_router(service)
