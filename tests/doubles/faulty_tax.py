"""The real tax service with one bug, for the dead-letter replay test (tests/e2e/test_dead_letter_replay.py):
its handler of customs decisions fails for every order whose number starts with `BUG-`, as a handler with a
bug fails for the records that reach it. Everything else is the real tax: its database, its group, its
dead letters. Run in the place of tax, then restart tax without it (the fix):

    mesh.start_service("tax", app="tests.doubles.faulty_tax:app")
"""
from __future__ import annotations

from contracts.topics import event_type_of
from contracts.v1.events import CustomsDecision
from services.tax.app import app, service
from shared.batch import Received
from shared.runtime import UnitOfWork

_DECISION = event_type_of(CustomsDecision)
_real = service.handlers.by_type[(_DECISION.name, _DECISION.version)]


async def on_customs_decisions_with_a_bug(uow: UnitOfWork, events: list[Received[CustomsDecision]]) -> None:
    for event in events:
        if event.payload.order_no.startswith("BUG-"):
            raise RuntimeError(f"a bug in tax: cannot assess {event.payload.order_no}")
    await _real(uow, events)


service.handlers.by_type[(_DECISION.name, _DECISION.version)] = on_customs_decisions_with_a_bug

__all__ = ["app"]
