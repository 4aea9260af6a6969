"""The exactly-once batch core (shared/batch.py) on a real SQLite database, driven without a broker by
the single-threaded runner (shared/testing.py). The handlers here are the test's own, on the gateway's
database (its migrations give the inbox, the outbox and a `trace` table to write effects to)."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import OperationalError

from contracts.topics import CUSTOMS_DECISION
from contracts.v1.events import CustomsDecision, WaybillTracked
from services.gateway.tables import trace
from shared.batch import Received
from shared.outbox import build_envelope
from shared.runtime import Handlers, Service, UnitOfWork
from shared.tables import INBOX, OUTBOX
from shared.testing import LocalRunner

pytestmark = pytest.mark.integration


def decision(order_no: str) -> CustomsDecision:
    return CustomsDecision(platform_code="P", order_no=order_no, order_version=1, ecommerce_code="E",
                           direction="import", trade_mode="9610", status="released", channel="green",
                           decided_at=datetime.now(timezone.utc))


def tracked(order_no: str, event: str = "picked_up") -> WaybillTracked:
    return WaybillTracked(waybill_no=f"W-{order_no}", logistics_code="L", order_no=order_no, platform_code="P",
                          event=event, at=datetime.now(timezone.utc))


class Recorder:
    """Test handlers: write one trace row per event, remember every call's size, fail where told."""

    def __init__(self, poison: set[str] = frozenset(), outage: bool = False):
        self.calls: list[tuple[str, int]] = []
        self.order: list[str] = []
        self.handlers = Handlers()
        self.poison, self.outage = poison, outage

        @self.handlers.on_batch(CustomsDecision)
        async def on_decisions(uow: UnitOfWork, events: list[Received[CustomsDecision]]) -> None:
            await self.write(uow, "customs.decision", events)

        @self.handlers.on_batch(WaybillTracked)
        async def on_tracked(uow: UnitOfWork, events: list[Received[WaybillTracked]]) -> None:
            await self.write(uow, "waybill.tracked", events)

    async def write(self, uow: UnitOfWork, kind: str, events: list[Received]) -> None:
        self.calls.append((kind, len(events)))
        if self.outage:
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("the database is down"))
        now = datetime.now(timezone.utc)
        await uow.session.execute(insert(trace), [
            {"correlation_id": e.correlation_id, "at": now, "source": "test", "type": kind, "summary": e.payload.order_no}
            for e in events])  # one statement for the whole run
        for e in events:
            if e.payload.order_no in self.poison:
                raise ValueError(f"cannot handle {e.payload.order_no}")
            self.order.append(f"{kind}:{e.payload.order_no}")
            if kind == "customs.decision":
                uow.emit(e.payload, correlation_id=e.correlation_id, cause=e)


async def count(runner: LocalRunner, table, *where) -> int:  # noqa: ANN001
    async with runner.service.sessions() as session:
        return await session.scalar(select(func.count()).select_from(table).where(*where))


async def test_a_poisoned_record_in_a_batch_of_500_is_dead_lettered_alone(tmp_path):
    recorder = Recorder(poison={"ORD-0250"})
    async with LocalRunner(Service("gateway", handlers=recorder.handlers), tmp_path) as runner:
        events = [decision(f"ORD-{i:04d}") for i in range(500)]
        emitted = await runner.deliver(*events, correlation_id="P:batch")
        # the happy path saw the whole run at once; the failure made the core isolate record by record
        assert recorder.calls[0] == ("customs.decision", 500)
        assert all(size == 1 for _, size in recorder.calls[1:])
        assert await count(runner, trace) == 499
        assert await count(runner, trace, trace.c.summary == "ORD-0250") == 0
        assert len(emitted) == 499
        letters = await runner.dead_letters()
        assert len(letters) == 1
        assert letters[0]["topic"] == CUSTOMS_DECISION.dead_letter
        assert "ValueError: cannot handle ORD-0250" in letters[0]["dlq.error"]
        assert b"ORD-0250" in letters[0]["value"]
        assert await count(runner, INBOX) == 500
        assert await count(runner, INBOX, INBOX.c.outcome == "dead_letter") == 1


async def test_a_healthy_batch_is_one_call_per_run_and_keeps_the_order_of_mixed_types(tmp_path):
    recorder = Recorder()
    async with LocalRunner(Service("gateway", handlers=recorder.handlers), tmp_path) as runner:
        # waybills and their tracking events share a topic: a run never reorders what one key went through
        await runner.deliver(decision("A"), decision("B"), tracked("A"), tracked("B", "departed"), decision("C"))
        assert recorder.calls == [("customs.decision", 2), ("waybill.tracked", 2), ("customs.decision", 1)]
        assert recorder.order == ["customs.decision:A", "customs.decision:B", "waybill.tracked:A",
                                  "waybill.tracked:B", "customs.decision:C"]


async def test_a_redelivered_event_has_no_second_effect_in_a_later_batch_or_the_same_one(tmp_path):
    recorder = Recorder()
    async with LocalRunner(Service("gateway", handlers=recorder.handlers), tmp_path) as runner:
        _, envelope = build_envelope(decision("D"), "customs", "P:D")
        assert len(await runner.deliver(envelope, envelope)) == 1
        assert await runner.deliver(envelope) == []
        assert await count(runner, trace) == 1
        assert await count(runner, INBOX) == 1


async def test_an_outage_commits_nothing_and_is_raised_for_the_batch_to_be_retried(tmp_path):
    recorder = Recorder(outage=True)
    async with LocalRunner(Service("gateway", handlers=recorder.handlers), tmp_path) as runner:
        with pytest.raises(OperationalError):
            await runner.deliver(decision("E"), decision("F"))
        assert recorder.calls == [("customs.decision", 2)]  # not isolated record by record: not the records' fault
        assert await count(runner, INBOX) == 0
        assert await runner.dead_letters() == []
        recorder.outage = False
        _, retried = build_envelope(decision("E"), "customs", "P:E")
        assert len(await runner.deliver(retried)) == 1


async def test_unparseable_records_and_wrong_payloads_are_dead_lettered_beside_good_ones(tmp_path):
    recorder = Recorder()
    async with LocalRunner(Service("gateway", handlers=recorder.handlers), tmp_path) as runner:
        _, good = build_envelope(decision("G"), "customs", "P:G")
        wrong = good.model_copy(update={"event_id": uuid.uuid4(), "payload": {"status": "teleported"}})
        junk = runner.record(b"\x00 not json", "P:G", topic=CUSTOMS_DECISION.name)
        emitted = await runner.deliver(junk, wrong, good)
        assert [e.payload["order_no"] for e in emitted] == ["G"]
        errors = [d["dlq.error"] for d in await runner.dead_letters()]
        assert errors[0].startswith("not an event envelope")
        assert errors[1].startswith("payload does not match customs.decision v1")
        assert recorder.calls == [("customs.decision", 1)]


async def test_events_emitted_by_a_batch_handler_continue_the_trace_of_their_cause(tmp_path):
    recorder = Recorder()
    async with LocalRunner(Service("gateway", handlers=recorder.handlers), tmp_path) as runner:
        parent = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
        record = runner.record(decision("H"), "P:H")
        record.headers.append(("traceparent", parent.encode()))
        await runner.deliver(record)
        async with runner.service.sessions() as session:
            headers = await session.scalar(select(OUTBOX.c.headers).where(OUTBOX.c.key == "P:H"))
        assert json.loads(headers)["traceparent"].startswith("00-" + "ab" * 16 + "-")


async def test_a_redelivered_record_that_is_no_envelope_is_dead_lettered_once(tmp_path):
    recorder = Recorder()
    async with LocalRunner(Service("gateway", handlers=recorder.handlers), tmp_path) as runner:
        junk = runner.record(b"not an envelope", "P:J", topic=CUSTOMS_DECISION.name)
        await runner.deliver(junk)
        await runner.deliver(junk)  # the same place in the log again: a redelivery after a lost offset commit
        assert len(await runner.dead_letters()) == 1
        other = runner.record(b"not an envelope", "P:J", topic=CUSTOMS_DECISION.name)  # same bytes, a new record
        await runner.deliver(other)
        assert len(await runner.dead_letters()) == 2
