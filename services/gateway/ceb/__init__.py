"""Customs' own messages (CEB, spec §7.5): the gateway's second front door, onto the same submissions.

- messages.py: reading a message (hardened XML parser, typed records); codes.py: customs' code tables;
- mapping.py: records → §4 bodies (pure), completed by the list;
- submission.py: screening, keeping, completing and submitting a message's records through the intake;
- receipts.py: the receipt messages (pure, valid against the official schemas);
- feed.py: customs' decisions and timed-out records as receipts in the polling feed;
- store.py: the set-based database work; api.py: the routes; settings.py: `SW_CEB_*`.
docs/ceb.md is the integrator's guide."""
from __future__ import annotations

from fastapi import APIRouter

from shared.runtime import Service, UnitOfWork


def install(service: Service) -> APIRouter:
    """Adds the CEB front door to the gateway `service`: the timeout of held records as a periodic job (in a
    started service only), and returns the routes. Customs' decisions reach the feed through the gateway's
    handler of them (services/gateway/handlers.py)."""
    from services.gateway.ceb.api import ceb_router  # noqa: PLC0415
    from services.gateway.ceb.feed import return_timed_out  # noqa: PLC0415
    from services.gateway.ceb.settings import ceb_settings  # noqa: PLC0415
    from shared.clock import utcnow  # noqa: PLC0415

    config = ceb_settings()

    @service.every(lambda _s: config.expire_seconds)
    async def return_held_ceb_records(uow: UnitOfWork) -> None:
        await return_timed_out(uow.session, utcnow(), config.document_timeout_hours, config.expire_batch)

    return ceb_router(service)
