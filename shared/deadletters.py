"""Dead letters: list them per service, and replay them after a fix.

    python -m shared.deadletters list [--service customs] [--open] [--json]
    python -m shared.deadletters replay --service customs (--id ID [--id ID …] | --all) [--json]
    make dead-letters                      # the list; make dead-letters ARGS="replay --service customs --all"

A consumer that gives up on a record writes it, untouched, to `<topic>.dlq` with what went wrong in `dlq.*`
headers (shared/batch.py, shared/outbox.py `dead_letter_row`). This command reads every `.dlq` topic with a
consumer of its own (no group, nothing committed) and shows each dead letter: its id
(`<dlq topic>:<partition>:<offset>`), the service that gave up on it (`dlq.source`), the original topic,
partition and offset, the error, when, and what became of it:

- `open`: not replayed yet;
- `replayed, pending`: replayed, and the service's consumer group has not yet committed past the replay;
- `replayed, handled`: the group has moved past the replay and did not dead-letter it again (a replay that
  fails again shows up as a dead letter within a relay cycle; the service's back office, `GET
  /v1/dead-letters`, also shows what its inbox made of the replay);
- `replayed, failed again as ID`: the replay was dead-lettered again (the fix did not cover it); replay ID
  after the next fix.

Replaying republishes the dead letter's key, value and original headers to the original topic and partition
(so it stays in order with its key), with `sw.replay-of` (the dead letter's id) and `sw.replay-for` (the
service). Every consumer group of that topic reads it, but only the named service handles it; the others
ignore it, having handled the original. That service's inbox knows a replay by the dead letter it replays, not
by the event id (which it already holds as dead-lettered), so the replay is handled as a new delivery, and a
replay delivered twice, or the same dead letter replayed twice, is handled once. Each replay is recorded on
the `ops.dead-letter-replays` topic (contracts/topics.py DEAD_LETTER_REPLAYS), which is how `list` knows.
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from contracts.topics import DEAD_LETTER_REPLAYS
from shared import kafka
from shared.batch import REPLAY_FOR, REPLAY_OF, is_transient, replay_inbox_id
from shared.http import Operator, Problem
from shared.settings import settings
from shared.tables import INBOX

REPLAYED_AT = "sw.replayed-at"


@dataclass
class Replay:
    """One replay of a dead letter, as recorded on DEAD_LETTER_REPLAYS."""

    dead_letter: str
    service: str
    topic: str
    partition: int
    offset: int  # where the replay landed on the original topic; -1: handled in place by the service's back office
    replayed_at: str
    by: str
    outcome: str | None = None  # in place: what the service's inbox holds for it (handled, dead_letter)


@dataclass
class DeadLetter:
    """A record of a `.dlq` topic and what the operator needs to know about it."""

    id: str  # <dlq topic>:<partition>:<offset>
    service: str
    original_topic: str
    original_partition: int
    original_offset: int
    error: str
    at: str  # when it was dead-lettered (the dead letter's broker timestamp, UTC, ISO 8601)
    key: str | None
    replay_of: str | None = None  # set when this dead letter is a replay that failed again
    status: str = "open"
    replays: list[Replay] = field(default_factory=list)
    failed_again_as: str | None = None
    value: bytes = field(default=b"", repr=False)
    headers: list[tuple[str, bytes]] = field(default_factory=list, repr=False)

    def summary(self) -> dict:
        """What `list --json` prints: everything but the record's value and headers."""
        data = asdict(self)
        data.pop("value"), data.pop("headers")
        return data


def bootstrap_servers(explicit: str | None = None) -> str:
    """The broker: `--bootstrap`, else KAFKA_BOOTSTRAP_SERVERS, else the one `make up` started (its port in
    `$SW_RUN_DIR/kafka/kafka.port`), else the settings' default."""
    if explicit:
        return explicit
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    port_file = Path(settings().sw_run_dir) / "kafka" / "kafka.port"
    if port_file.exists():
        return f"127.0.0.1:{port_file.read_text().strip()}"
    return settings().kafka_bootstrap_servers


def _client_options() -> dict:
    """Security options of this command's Kafka clients, as every client of the process (shared/kafka.py).
    On a broker with ACLs the command runs as the admin principal (KAFKA_SASL_USERNAME/PASSWORD): it reads
    every `.dlq` topic and the services' group offsets and writes the original topics, which no service may.
    A service's back office replays in place instead (`back_office`), within its own rights."""
    return kafka.client_options()


async def _partitions(admin: AIOKafkaAdminClient, topics: list[str]) -> list[TopicPartition]:
    described = await admin.describe_topics(topics) if topics else []
    return sorted(TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"])


async def _read_all(bootstrap: str, partitions: list[TopicPartition]) -> list:
    """Every record of `partitions` from the beginning to their end offsets as of now, with a consumer of
    our own (no group, nothing committed)."""
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                client_id="sw-dead-letters", **_client_options())
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        pending = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
        records: list = []
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, rs in batch.items():
                records += [r for r in rs if r.offset < ends[tp]]
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return sorted(records, key=lambda r: (r.topic, r.partition, r.offset))
    finally:
        await consumer.stop()


def _dead_letter(record) -> DeadLetter:  # noqa: ANN001
    """A `.dlq` record as a DeadLetter (status open until `dead_letters` looks at the replays)."""
    headers = list(record.headers or [])
    h = {k: v.decode("utf-8", "replace") for k, v in headers}
    key = h.get("dlq.original_key") or (record.key.decode("utf-8", "replace") if record.key else None)
    return DeadLetter(
        id=f"{record.topic}:{record.partition}:{record.offset}", service=h.get("dlq.source", "?"),
        original_topic=h.get("dlq.original_topic", record.topic.removesuffix(".dlq")),
        original_partition=int(h.get("dlq.original_partition", -1)),
        original_offset=int(h.get("dlq.original_offset", -1)), error=h.get("dlq.error", ""),
        at=datetime.fromtimestamp(record.timestamp / 1000, timezone.utc).isoformat(timespec="seconds"),
        key=key or None, replay_of=h.get(REPLAY_OF), value=record.value or b"", headers=headers)


async def _committed(admin: AIOKafkaAdminClient, group: str) -> dict[tuple[str, int], int]:
    """The offsets `group` has committed (a service's consumer group is its name); none if it has none."""
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except KafkaError:  # no such group yet (not even its coordinator is known): nothing committed
        return {}
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}


async def dead_letters(bootstrap: str | None = None, service: str | None = None,
                       groups: dict[str, str] | None = None) -> list[DeadLetter]:
    """Every dead letter on the broker (of `service` only, if given), in topic, partition and offset order,
    each with its status and replays (see the module). `groups`: a service's consumer group when it is not
    the service's name (tests)."""
    bootstrap = bootstrap_servers(bootstrap)
    groups = groups or {}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="sw-dead-letters", **_client_options())
    await admin.start()
    try:
        topics = set(await admin.list_topics())
        letters = [_dead_letter(r) for r in
                   await _read_all(bootstrap, await _partitions(admin, sorted(t for t in topics if t.endswith(".dlq"))))]
        replays: dict[str, list[Replay]] = {}
        if DEAD_LETTER_REPLAYS in topics:
            for r in await _read_all(bootstrap, await _partitions(admin, [DEAD_LETTER_REPLAYS])):
                replay = Replay(**json.loads(r.value))
                replays.setdefault(replay.dead_letter, []).append(replay)
        committed = {group: await _committed(admin, group)
                     for group in {groups.get(d.service, d.service) for d in letters if d.id in replays}}
    finally:
        await admin.close()
    failed_again = {d.replay_of: d.id for d in letters if d.replay_of}
    for d in letters:
        d.replays = replays.get(d.id, [])
        if d.id in failed_again:
            d.status, d.failed_again_as = f"replayed, failed again as {failed_again[d.id]}", failed_again[d.id]
        elif d.replays:
            offsets = committed.get(groups.get(d.service, d.service), {})
            # handled once the group has moved past every replay of it (and none came back as a dead letter)
            handled = all(r.outcome == "handled" if r.offset < 0 else offsets.get((r.topic, r.partition), -1) > r.offset
                          for r in d.replays)
            d.status = "replayed, handled" if handled else "replayed, pending"
    return [d for d in letters if service is None or d.service == service]


async def replay(letters: list[DeadLetter], bootstrap: str | None = None, by: str | None = None) -> list[Replay]:
    """Republishes each dead letter to its original topic and partition for the service that dead-lettered
    it (see the module), then records the replay on DEAD_LETTER_REPLAYS. Replaying one twice is harmless: the
    service's inbox knows the second copy. Returns what was replayed, in order."""
    bootstrap = bootstrap_servers(bootstrap)
    by = by or _operator()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all",
                                client_id="sw-dead-letters", **_client_options())
    await producer.start()
    done: list[Replay] = []
    try:
        for d in letters:
            now = datetime.now(timezone.utc).isoformat(timespec="seconds")
            partition = d.original_partition if d.original_partition >= 0 else None
            meta = await producer.send_and_wait(d.original_topic, value=d.value,
                                                key=d.key.encode() if d.key is not None else None,
                                                partition=partition, headers=replay_headers(d, now))
            record = Replay(dead_letter=d.id, service=d.service, topic=meta.topic, partition=meta.partition,
                            offset=meta.offset, replayed_at=now, by=by)
            await producer.send_and_wait(DEAD_LETTER_REPLAYS, json.dumps(asdict(record)).encode(), key=d.id.encode())
            done.append(record)
    finally:
        await producer.stop()
    return done


def why_not_replay(d: DeadLetter) -> str | None:
    """Why `d` must not be replayed, or None. A dead letter whose replay failed again is replayed through
    the newer dead letter: its own replay id is already in the service's inbox (as dead-lettered), so
    another replay of it would be taken for a copy and skipped."""
    if d.failed_again_as:
        return f"{d.id} was replayed and failed again as {d.failed_again_as}: replay that one"
    return None


def replay_headers(d: DeadLetter, replayed_at: str) -> list[tuple[str, bytes]]:
    """The headers of the replay of `d`: the original ones (type, version, correlation_id, traceparent, ...)
    without the dead letter's `dlq.*` and the marks of an earlier replay, then who is to handle it."""
    headers = [(k, v) for k, v in d.headers if not k.startswith(("dlq.", "sw.replay"))]
    return headers + [(REPLAY_OF, d.id.encode()), (REPLAY_FOR, d.service.encode()), (REPLAYED_AT, replayed_at.encode())]


def _operator() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in a container: say so rather than fail the replay
        return "unknown"


def replay_record(d: DeadLetter, replayed_at: str) -> ConsumerRecord:
    """The record a replay of `d` is: its key, value and original headers on its original topic, partition
    and offset, with the replay headers (`replay_headers`)."""
    headers = replay_headers(d, replayed_at)
    key = d.key.encode() if d.key is not None else None
    return ConsumerRecord(topic=d.original_topic, partition=max(d.original_partition, 0),
                          offset=max(d.original_offset, 0), timestamp=0, timestamp_type=0, key=key, value=d.value,
                          checksum=None, serialized_key_size=len(key or b""), serialized_value_size=len(d.value),
                          headers=headers)


async def replay_in_place(service, letters: list[DeadLetter]) -> list[Replay]:  # noqa: ANN001 - shared.runtime.Service
    """Handles `letters` (dead letters of `service`) as one batch of replays through the service's batch core,
    then records each replay, with what the service's inbox now holds for it, on DEAD_LETTER_REPLAYS.
    Raises what the batch core raises on an outage (nothing handled, nothing recorded)."""
    if not letters:
        return []
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    await service.handle_batch([replay_record(d, now) for d in letters])
    ids = {replay_inbox_id(d.id): d.id for d in letters}
    async with service.sessions() as session:
        rows = await session.execute(select(INBOX.c.event_id, INBOX.c.outcome).where(INBOX.c.event_id.in_(ids)))
        outcomes = {ids[r.event_id]: r.outcome for r in rows}
    done = [Replay(dead_letter=d.id, service=service.name, topic=d.original_topic, partition=d.original_partition,
                   offset=-1, replayed_at=now, by="back office", outcome=outcomes.get(d.id)) for d in letters]
    producer = AIOKafkaProducer(bootstrap_servers=service.settings.kafka_bootstrap_servers, acks="all",
                                client_id=f"{service.name}-dead-letters", **kafka.client_options(service.settings))
    await producer.start()
    try:
        for r in done:
            await producer.send_and_wait(DEAD_LETTER_REPLAYS, json.dumps(asdict(r)).encode(), key=r.dead_letter.encode())
    finally:
        await producer.stop()
    return done


class ReplayRequest(BaseModel):
    """`POST /v1/dead-letters:replay`: the dead letters of this service to replay, or all its open ones."""

    model_config = ConfigDict(extra="forbid")
    ids: list[str] = Field(default_factory=list, max_length=1000, description="dead letter ids, as listed")
    all: bool = Field(default=False, description="every open dead letter of this service")


def back_office(service) -> APIRouter:  # noqa: ANN001 - shared.runtime.Service (imported by it)
    """The operator's routes of every service (operator token): its dead letters, and replaying them.

    `GET /v1/dead-letters[?open=true]`: this service's dead letters as `list --json` shows them, each with
    `inbox`, what this service's inbox holds for its replay (`handled`, `dead_letter`, or null: not yet
    delivered). `POST /v1/dead-letters:replay` `{"ids": [...]}` or `{"all": true}`: the chosen dead letters
    are handled here and now, as one batch of replays through the service's own batch core (the same
    replay headers, hence the same inbox ids, as the command's: a dead letter replayed both ways is handled
    once), and recorded on DEAD_LETTER_REPLAYS with their outcome; 200 with the replays. Nothing is
    republished, so the service needs no right to write the topics it consumes. An id that is not one of this
    service's dead letters, or whose replay failed again, is 422 naming `ids[i]`, and nothing is replayed;
    a database outage is 503 and nothing is replayed."""
    # Operations, not the public interface of spec v1: kept out of the published OpenAPI document.
    router = APIRouter(prefix="/v1", tags=["dead letters"], include_in_schema=False)

    async def listing(open_only: bool = False) -> list[DeadLetter]:
        letters = await dead_letters(service.settings.kafka_bootstrap_servers, service.name,
                                     groups={service.name: service.group_id or service.name})
        return [d for d in letters if d.status == "open"] if open_only else letters

    @router.get("/dead-letters")
    async def list_dead_letters(_: Operator, open: bool = False):  # noqa: A002 - the query parameter's name
        letters = await listing(open)
        ids = {replay_inbox_id(d.id): d for d in letters if d.replays}
        outcomes: dict[str, str] = {}
        if ids:
            async with service.readers() as session:
                rows = await session.execute(select(INBOX.c.event_id, INBOX.c.outcome).where(INBOX.c.event_id.in_(ids)))
                outcomes = {ids[r.event_id].id: r.outcome for r in rows}
        return {"service": service.name,
                "dead_letters": [{**d.summary(), "inbox": outcomes.get(d.id)} for d in letters]}

    @router.post("/dead-letters:replay")
    async def replay_dead_letters(body: ReplayRequest, _: Operator):
        letters = await listing()
        if body.all:
            chosen = [d for d in letters if d.status == "open"]
        else:
            by_id = {d.id: d for d in letters}
            errors = [{"field": f"ids[{i}]", "code": "unknown_dead_letter",
                       "message": f"{x} is not a dead letter of {service.name}"} for i, x in enumerate(body.ids) if x not in by_id]
            if errors or not body.ids:
                raise Problem(422, "Unprocessable Content", "name dead letters of this service, or all: true",
                              errors=errors or [{"field": "ids", "code": "missing", "message": "no dead letter named"}])
            chosen = [by_id[x] for x in body.ids]
            refused = [{"field": f"ids[{i}]", "code": "replayed_and_failed_again", "message": why_not_replay(d)}
                       for i, d in enumerate(chosen) if why_not_replay(d)]
            if refused:
                raise Problem(422, "Unprocessable Content", "replay the newer dead letter instead", errors=refused)
        try:
            done = await replay_in_place(service, chosen)
        except Exception as err:  # nothing of the batch was committed (shared/batch.py): say so, and why
            kind = "the database is unavailable" if is_transient(err) else f"the replay failed ({type(err).__name__})"
            raise Problem(503, "Service Unavailable", f"{kind}; nothing was replayed, try again",
                          headers={"Retry-After": "5"}) from err
        return {"service": service.name, "replayed": [asdict(r) for r in done]}

    return router


def _print_table(letters: list[DeadLetter]) -> None:
    if not letters:
        print("no dead letters")
        return
    by_service: dict[str, list[DeadLetter]] = {}
    for d in letters:
        by_service.setdefault(d.service, []).append(d)
    for service in sorted(by_service):
        rows = by_service[service]
        print(f"{service}: {len(rows)} dead letter(s), {sum(d.status == 'open' for d in rows)} open")
        for d in rows:
            print(f"  {d.id}  {d.at}  from {d.original_topic}:{d.original_partition}:{d.original_offset}"
                  f"  key {d.key or '-'}  [{d.status}]" + (f"  (replay of {d.replay_of})" if d.replay_of else ""))
            print(f"      {d.error[:300]}")


async def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.deadletters", description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="host:port of the broker (default: see bootstrap_servers)")
    commands = parser.add_subparsers(dest="command", required=True)
    ls = commands.add_parser("list", help="dead letters per service, with what became of them")
    ls.add_argument("--service", help="only the dead letters this service wrote")
    ls.add_argument("--open", action="store_true", help="only those not replayed yet")
    ls.add_argument("--json", action="store_true", help="one JSON array instead of the table")
    rp = commands.add_parser("replay", help="republish dead letters of one service to their original topics")
    rp.add_argument("--service", required=True, help="the service that dead-lettered them (and will handle the replay)")
    chosen = rp.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--id", action="append", dest="ids", metavar="ID", help="a dead letter's id (repeatable)")
    chosen.add_argument("--all", action="store_true", help="every open dead letter of the service")
    rp.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    if args.command == "list":
        letters = await dead_letters(args.bootstrap, args.service)
        if args.open:
            letters = [d for d in letters if d.status == "open"]
        if args.json:
            print(json.dumps([d.summary() for d in letters], indent=2, default=str))
        else:
            _print_table(letters)
        return 0

    letters = await dead_letters(args.bootstrap, args.service)
    if args.all:
        chosen_letters = [d for d in letters if d.status == "open"]
    else:
        by_id = {d.id: d for d in letters}
        unknown = [i for i in args.ids if i not in by_id]
        if unknown:
            print(f"not a dead letter of {args.service}: {', '.join(unknown)}", file=sys.stderr)
            return 2
        chosen_letters = [by_id[i] for i in args.ids]
        refused = [why for d in chosen_letters if (why := why_not_replay(d))]
        if refused:
            print("\n".join(refused), file=sys.stderr)
            return 2
    done = await replay(chosen_letters, args.bootstrap)
    if args.json:
        print(json.dumps([asdict(r) for r in done], indent=2))
    else:
        for r in done:
            print(f"replayed {r.dead_letter} to {r.topic}:{r.partition}:{r.offset} for {r.service}")
        print(f"{len(done)} replayed")
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(_main(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
