"""The gateway's intake machinery without a database: the API-key cache (a fake clock) and the group
commit's collector (a fake unit of work): who gets which answer, and when a failed commit answers 503."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from services.gateway import intake
from services.gateway.auth import Caller, CallerCache
from services.gateway.intake import GroupCommit, Outcome, Prepared


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_known_key_is_remembered_for_the_ttl_then_read_again():
    clock = Clock()
    cache = CallerCache(ttl=5, negative_ttl=1, clock=clock)
    caller = Caller("91330100MA27U8AA1U", frozenset({"platform"}))
    assert cache.lookup("h") == (False, None)
    cache.remember("h", caller)
    clock.now += 4.9
    assert cache.lookup("h") == (True, caller)
    clock.now += 0.1  # a key revoked or changed in the database stops working once this passes
    assert cache.lookup("h") == (False, None)


def test_an_unknown_key_is_remembered_briefly_and_a_registration_forgets_it():
    clock = Clock()
    cache = CallerCache(ttl=5, negative_ttl=1, clock=clock)
    cache.remember("new", None)
    assert cache.lookup("new") == (True, None)  # answered 401 without the database
    clock.now += 1
    assert cache.lookup("new") == (False, None)  # registered meanwhile by another process: asked again
    cache.remember("new", None)
    cache.forget("new")  # registered by this process: usable at once
    assert cache.lookup("new") == (False, None)


def test_a_zero_ttl_remembers_nothing_and_memory_is_bounded():
    clock = Clock()
    assert CallerCache(ttl=0, negative_ttl=0, clock=clock).lookup("h") == (False, None)
    off = CallerCache(ttl=0, negative_ttl=0, clock=clock)
    off.remember("h", Caller("x", frozenset()))
    assert off.lookup("h") == (False, None)
    small = CallerCache(ttl=5, negative_ttl=1, clock=clock, max_entries=3)
    for i in range(10):
        small.remember(str(i), None)
        assert len(small._entries) <= 3


# --- the group commit ------------------------------------------------------------------------------


def prepared(kind: intake.Kind, n: int) -> Prepared:
    fields = {"order_no": f"ORD-{n}", "platform_code": "P", kind.own_field: "P"}
    if kind is not intake.ORDER:
        fields[kind.number_field] = f"N-{n}"
    doc = SimpleNamespace(**fields)
    return Prepared(kind, doc, f"fp-{n}")


class FakeRunLots:
    """Stands for `run_lots`: records each transaction's lots; answers 202 to each, or fails."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[list[Prepared]]] = []
        self.fail = fail
        self.committed = asyncio.Event()

    async def __call__(self, unit_of_work, lots):  # noqa: ANN001
        self.calls.append([list(lot) for lot in lots])
        await asyncio.sleep(0)
        if self.fail:
            raise ConnectionError("the database went away during COMMIT")
        self.committed.set()
        return [[Outcome(202, item.answer()) for item in lot] for lot in lots]


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


def test_requests_waiting_together_share_one_transaction_and_each_gets_its_own_answer(monkeypatch):
    fake = FakeRunLots()
    monkeypatch.setattr(intake, "run_lots", fake)

    async def scenario():
        group = GroupCommit(unit_of_work=None, window_seconds=0.001, max_size=100)
        items = [prepared(intake.PAYMENT, 0), prepared(intake.ORDER, 1), prepared(intake.WAYBILL, 2),
                 prepared(intake.ORDER, 3)]
        waiting = [asyncio.ensure_future(group.submit(item)) for item in items]
        await asyncio.sleep(0)  # every request is queued before the writer starts
        writer = asyncio.create_task(group.run())
        answers = await asyncio.gather(*waiting)
        writer.cancel()
        return items, answers

    items, answers = run(scenario())
    assert len(fake.calls) == 1  # one transaction for the four
    # Orders first, so that a payment in the same group finds its order; arrival order within a kind.
    assert [[i.doc.order_no for i in lot] for lot in fake.calls[0]] == [["ORD-1", "ORD-3"], ["ORD-0"], ["ORD-2"]]
    assert [a.body for a in answers] == [i.answer() for i in items]
    assert answers[0].body["payment_no"] == "N-0" and "payment_no" not in answers[1].body


def test_a_group_is_at_most_max_size_documents(monkeypatch):
    fake = FakeRunLots()
    monkeypatch.setattr(intake, "run_lots", fake)

    async def scenario():
        group = GroupCommit(unit_of_work=None, window_seconds=0, max_size=3)
        waiting = [asyncio.ensure_future(group.submit(prepared(intake.ORDER, n))) for n in range(7)]
        await asyncio.sleep(0)
        writer = asyncio.create_task(group.run())
        answers = await asyncio.gather(*waiting)
        writer.cancel()
        return answers

    answers = run(scenario())
    assert [sum(len(lot) for lot in call) for call in fake.calls] == [3, 3, 1]
    assert [a.status for a in answers] == [202] * 7


def test_a_failed_commit_answers_503_to_every_request_of_the_group_and_the_writer_goes_on(monkeypatch):
    fake = FakeRunLots(fail=True)
    monkeypatch.setattr(intake, "run_lots", fake)

    async def scenario():
        group = GroupCommit(unit_of_work=None, window_seconds=0.001, max_size=100)
        writer = asyncio.create_task(group.run())
        first = await asyncio.gather(*(group.submit(prepared(intake.ORDER, n)) for n in range(5)))
        fake.fail = False
        later = await group.submit(prepared(intake.WAYBILL, 9))
        writer.cancel()
        return first, later

    first, later = run(scenario())
    assert [a.status for a in first] == [503] * 5
    assert all(a.problem is not None and a.body["instance"] == "/v1/orders" for a in first)
    assert later.status == 202  # the next group is not affected


def test_stopping_the_writer_answers_503_to_whoever_still_waits(monkeypatch):
    monkeypatch.setattr(intake, "run_lots", FakeRunLots())

    async def scenario():
        group = GroupCommit(unit_of_work=None, window_seconds=60, max_size=100)
        writer = asyncio.create_task(group.run())
        waiting = [asyncio.ensure_future(group.submit(prepared(intake.ORDER, n))) for n in range(3)]
        await asyncio.sleep(0.01)  # the writer has taken the first and sleeps through its window
        writer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writer
        return await asyncio.gather(*waiting)

    assert [a.status for a in run(scenario())] == [503] * 3
