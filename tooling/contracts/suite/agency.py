"""The agency mode: plays one role's golden scenarios onto a Kafka broker and judges the agency's answers.

Events are published exactly as the mesh publishes them: the envelope from `shared.outbox.build_envelope`,
the Kafka key and headers (`type`, `version`, `source`, `correlation_id`, `traceparent`) from
`shared.outbox.outbox_row`, the source being the topic's writer in the catalogue (`gateway` for documents,
`customs` for the decisions the suite plays). Answers are read from the role's output topics (the topics
whose writer the role is, `contracts.topics.TOPICS`), from their end as it was before anything was
published, by a consumer without a group: the suite commits nothing and disturbs no one's offsets.

Scenarios run side by side, each with its own fresh keys and its own trace. The time limit is for the
whole run.

`topic_prefix` puts every topic the suite touches under a prefix (`sandbox.` + `tax.assessment.v1`): an
agency under test can then listen and answer on its own copies of the topics, on a broker where the real
agencies keep answering on theirs (the broken test double does exactly that)."""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from tooling.contracts.suite.golden import Golden, scenarios_for
from tooling.contracts.suite.scenario import Publish, Received, Scenario, ScenarioState, Verdict, scenario_for
from contracts.topics import TOPICS
from shared.outbox import outbox_row
from shared.settings import DEV_CUSTOMS_SEALING_PUBLIC_KEY
from shared.tracing import continue_trace

WRITER = {t.name: t.writer for t in TOPICS}
# After a wrong answer, how long the rest of that step's answers are still waited for, so that the report
# shows them too.
GRACE_AFTER_FAILURE = 2.0


class SuiteError(Exception):
    """The run could not be made (broker unreachable, topics missing): nothing was judged."""


def output_topics(role: str) -> list[str]:
    return [t.name for t in TOPICS if t.writer == role]


@dataclass(frozen=True)
class AgencyRun:
    role: str
    bootstrap: str
    timeout: float = 60.0
    customs_public_key: str = DEV_CUSTOMS_SEALING_PUBLIC_KEY
    topic_prefix: str = ""
    create_topics: bool = False
    only: tuple[str, ...] = ()  # scenario names; empty: all of the role's


@dataclass
class ScenarioResult:
    scenario: Scenario
    outcome: str  # passed | failed | timed out
    verdicts: list[list[Verdict]]
    steps_played: int
    seconds: float
    others: list[Received] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


@dataclass
class SuiteResult:
    run: AgencyRun
    run_id: str
    inputs: list[str]
    outputs: list[str]
    results: list[ScenarioResult]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)


def selected_scenarios(run: AgencyRun, golden: Golden) -> list[Scenario]:
    scenarios = scenarios_for(run.role, golden)
    if run.only:
        unknown = set(run.only) - {s.name for s in scenarios}
        if unknown:
            raise SuiteError(f"no scenario {', '.join(sorted(unknown))} for role {run.role}; "
                             f"there are: {', '.join(s.name for s in scenarios)}")
        scenarios = [s for s in scenarios if s.name in run.only]
    return scenarios


async def run_agency_suite(run: AgencyRun, golden: Golden | None = None) -> SuiteResult:
    golden = golden or Golden(customs_public_key=run.customs_public_key)
    scenarios = selected_scenarios(run, golden)
    prefix = run.topic_prefix
    outputs = [prefix + t for t in output_topics(run.role)]
    inputs = sorted({prefix + p.event_type.topic for s in scenarios for step in s.steps for p in step.publish})
    partitions = await ensure_topics(run.bootstrap, inputs + outputs, run.create_topics)

    consumer = AIOKafkaConsumer(bootstrap_servers=run.bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="latest")
    producer = AIOKafkaProducer(bootstrap_servers=run.bootstrap, acks="all", enable_idempotence=True)
    try:
        await consumer.start()
        await producer.start()
    except KafkaError as err:
        await _stop(consumer, producer)
        raise SuiteError(f"cannot reach the broker at {run.bootstrap}: {err}") from None
    states = [ScenarioState(s) for s in scenarios]
    arrived = asyncio.Condition()
    collector: asyncio.Task | None = None
    try:
        assigned = [TopicPartition(t, p) for t in outputs for p in partitions[t]]
        consumer.assign(assigned)
        await consumer.seek_to_end()
        for tp in assigned:  # resolve the end offsets now, before anything is published
            await consumer.position(tp)
        collector = asyncio.create_task(_collect(consumer, states, arrived))
        deadline = time.monotonic() + run.timeout
        results = await asyncio.gather(*(_play(state, producer, prefix, arrived, deadline) for state in states))
    finally:
        if collector is not None:
            collector.cancel()
            await asyncio.gather(collector, return_exceptions=True)
        await _stop(consumer, producer)
    return SuiteResult(run, golden.run_id, inputs, outputs, list(results))


async def _stop(consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
    for client in (consumer, producer):
        try:
            await client.stop()
        except Exception:  # noqa: BLE001 - stopping a client that never started
            pass


async def ensure_topics(bootstrap: str, names: list[str], create: bool, partitions: int = 4) -> dict[str, list[int]]:
    """The partitions of each topic; creates missing ones when asked, else says which are missing."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    try:
        await admin.start()
    except KafkaError as err:
        await admin.close()
        raise SuiteError(f"cannot reach the broker at {bootstrap}: {err}") from None
    try:
        missing = sorted(set(names) - set(await admin.list_topics()))
        if missing and not create:
            raise SuiteError(f"topics missing on {bootstrap}: {', '.join(missing)} (create them, or pass "
                             "--create-topics)")
        if missing:
            try:
                await admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1)
                                           for n in missing])
            except TopicAlreadyExistsError:
                pass  # someone else (the agency under test) just made them
        for _ in range(50):  # a topic just created takes a moment to have a leader for every partition
            described = {d["topic"]: d["partitions"] for d in await admin.describe_topics(names)}
            unready = [n for n in names if not described.get(n) or any(
                p["error_code"] or p["leader"] < 0 for p in described[n])]
            if not unready:
                return {n: [p["partition"] for p in described[n]] for n in names}
            await asyncio.sleep(0.2)
        raise SuiteError(f"topics without a leader for every partition on {bootstrap}: {', '.join(unready)}")
    finally:
        await admin.close()


async def _collect(consumer: AIOKafkaConsumer, states: list[ScenarioState], arrived: asyncio.Condition) -> None:
    while True:
        batch = await consumer.getmany(timeout_ms=200)
        records = [r for rs in batch.values() for r in rs]
        if not records:
            continue
        async with arrived:
            for r in records:
                received = Received(
                    topic=r.topic, key=r.key.decode("utf-8", "replace") if r.key is not None else None,
                    headers={k: v.decode("utf-8", "replace") for k, v in (r.headers or ())}, value=r.value or b"")
                state = scenario_for(states, received)
                if state is not None:
                    state.add(received)
            arrived.notify_all()


async def publish(producer: AIOKafkaProducer, item: Publish, prefix: str = "") -> None:
    """One event with the envelope, key and headers the mesh's outbox gives it."""
    row = outbox_row(item.payload, WRITER[item.event_type.topic], item.correlation_id, item.key)
    headers = [(k, str(v).encode()) for k, v in json.loads(row["headers"]).items()]
    await producer.send_and_wait(prefix + row["topic"], value=row["value"], key=row["key"].encode(), headers=headers)


async def _play(state: ScenarioState, producer: AIOKafkaProducer, prefix: str, arrived: asyncio.Condition,
                deadline: float) -> ScenarioResult:
    continue_trace(None)  # one trace per scenario, carried in every header it publishes
    started = time.monotonic()
    steps_played = 0
    for index, step in enumerate(state.scenario.steps):
        for item in step.publish:
            await publish(producer, item, prefix)
        steps_played += 1
        if not await _wait(arrived, lambda: state.step_done(index) or state.failed, deadline):
            break
        if state.failed:
            # The rest of this step's answers may be on their way; the report is more useful with them.
            await _wait(arrived, lambda: all(v.received for v in state.verdicts()[index]),
                        min(deadline, time.monotonic() + GRACE_AFTER_FAILURE))
            break
        if step.settle:
            await asyncio.sleep(step.settle)
    async with arrived:
        outcome = "passed" if state.passed else "failed" if state.failed else "timed out"
        return ScenarioResult(state.scenario, outcome, state.verdicts(), steps_played,
                              time.monotonic() - started, list(state.others))


async def _wait(arrived: asyncio.Condition, done, deadline: float) -> bool:  # noqa: ANN001
    remaining = deadline - time.monotonic()
    async with arrived:
        if done():
            return True
        if remaining <= 0:
            return False
        try:
            await asyncio.wait_for(arrived.wait_for(done), remaining)
        except asyncio.TimeoutError:
            return False
    return True
