"""Personal data scan (spec §6, §7.2; issue 9 item 4): a mixed workload through the real mesh, then every
topic (dead letters included), every service database, the gateway's read models and API answers, and
every service log line, searched for the identity numbers and names the workload used.

The rules checked, for every number submitted (resident ids, passports, other numbers):
  - its full form appears nowhere: not on any topic, not in any database (customs' included: customs
    keeps it sealed), not in any API answer, not in any log line;
  - nothing shows more of it than its masked form does (`E123*5678`, the 1.0 form of a passport, is a leak);
  - no valid resident id at all, whoever submitted it (the session's other tests share the mesh), appears
    in full;
and for every buyer's and payer's name:
  - it appears only in the documents as submitted and published on the `sw.*` topics (spec §4, §6) and
    in customs; never in an agency's answer topic (customs.decision.v1, tax, fx, logistics, credit) or its
    dead letters, a table of tax, FX, logistics or credit, the gateway's read models (agency_views,
    enterprise_views, trace), the status view and trace answers, or a log line.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import string
import uuid
from dataclasses import dataclass, field

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts.identifiers import mask_id_number, resident_id_problem
from contracts.topics import PAYMENT_SUBMITTED
from contracts.v1.documents import OrderIn
from shared.registry import SERVICE_NAMES
from tests.conftest import database_urls
from tests.e2e.conftest import inspected_order_no, released_order_no
from tests.support import new_resident_id, order_body, payment_body, wait_for, waybill_body

pytestmark = pytest.mark.e2e

# Where a name may legitimately be: the documents as submitted and published (sw.* topics, and their
# dead letters, which keep a record untouched; the gateway's own copies and outbox) and customs.
DOCUMENT_TOPIC = re.compile(r"^sw\.")
GATEWAY_DOCUMENT_TABLES = {"orders", "payments", "waybills", "outbox"}


def _rand(n: int, alphabet: str = string.digits) -> str:
    return "".join(random.choice(alphabet) for _ in range(n))


def _name(role: str) -> str:
    # Unique per run, so a hit is this test's data and nothing else's.
    return f"{role} {''.join(random.choice(string.ascii_uppercase) for _ in range(8))}"


@dataclass
class Workload:
    ids: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    orders: list[tuple[str, dict]] = field(default_factory=list)  # (expected customs status, order body)
    waybills: list[str] = field(default_factory=list)

    def person(self, role: str, id_type: str, number: str) -> dict:
        name = _name(role)
        self.ids.add(number.upper())
        self.names.add(name)
        return {"name": name, "id_type": id_type, "id_number": number}


@dataclass
class Finding:
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def _leak_pattern(number: str) -> re.Pattern:
    # Any run of len(number) characters where each is the number's own character or '*': the number, its
    # masked form, or any partial mask of it (E123*5678). Overlapping matches are all seen. The run must be
    # a whole token (no letter, digit or '*' on either side): inside another number's masked form
    # (X12*********433) a 9-character window '******433' would otherwise match any passport ending in 433,
    # about one run in a hundred with random numbers.
    body = "".join(f"[{re.escape(ch)}*]" for ch in number)
    return re.compile(f"(?<![0-9A-Za-z*])(?=({body})(?![0-9A-Za-z*]))", re.IGNORECASE)


def may_show(length: int) -> set[int]:
    """Positions of an identity number of `length` characters that may be shown outside customs, read
    straight from spec §7.2 (not from the code under test): shorter than 12 characters, the last 2; else at
    most the first 4 and last 4, with at least half masked."""
    if length < 12:
        return set(range(max(length - 2, 0), length))
    k = min(4, length // 4)
    return set(range(k)) | set(range(length - k, length))


def id_leaks(text: str, numbers: set[str]) -> list[str]:
    """Every form of one of `numbers` in `text` that shows more than its masked form (spec §7.2)."""
    leaks = []
    for number in numbers:
        allowed = may_show(len(number))
        for m in _leak_pattern(number).finditer(text):
            shown = {i for i, ch in enumerate(m.group(1)) if ch != "*"}
            if not shown <= allowed:
                leaks.append(f"{m.group(1)!r} shows more of a {len(number)}-character number than spec §7.2 allows")
    return leaks


_RESIDENT_ID_SHAPE = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dX](?![0-9A-Za-z])", re.IGNORECASE)


def any_resident_id(text: str) -> list[str]:
    """Every valid resident identity number in `text`, whoever submitted it (this session's other tests
    included): a real one (check character and birth date) is never shown in full outside customs' seal."""
    return [f"a full resident id {mask_id_number(m.group(0))}" for m in _RESIDENT_ID_SHAPE.finditer(text)
            if resident_id_problem(m.group(0).upper()) is None]


def name_leaks(text: str, names: set[str]) -> list[str]:
    lowered = text.lower()
    return [f"name {n!r}" for n in names if n.lower() in lowered]


# --- the workload -------------------------------------------------------------------------------


def run_workload(api, mesh, parties) -> Workload:
    w = Workload()
    platform = parties.platform.code

    def submit(expected: str, buyer: dict, payer: dict | None = None, order_no: str | None = None) -> dict:
        body = order_body(platform, parties.ecommerce.code, order_no or released_order_no(platform))
        body["buyer"] = {**buyer, "phone": "13800000000"}
        body["consignee"]["name"] = "Parcel Recipient"  # the consignee is logistics' business, not scanned
        payment = payment_body(parties.payment.code, body)
        payment["payer"] = payer or {k: buyer[k] for k in ("name", "id_type", "id_number")}
        waybill = waybill_body(parties.logistics.code, body)
        api.submit_import(parties, body=body, payment=payment, waybill=waybill)
        w.orders.append((expected, body))
        w.waybills.append(waybill["waybill_no"])
        return body

    # Every identity type, each matching its payer: released.
    submit("released", w.person("Buyer", "resident_id", new_resident_id()))
    passport = w.person("Buyer", "passport", "E" + _rand(8))          # the case: 9 characters
    submit("released", passport)
    submit("released", w.person("Buyer", "passport", "EA" + _rand(7)))
    submit("released", w.person("Buyer", "other", "H" + _rand(10)))    # 11: short, last 2 shown
    submit("released", w.person("Buyer", "other", "X" + _rand(14)))    # 15: at most 4+4 shown
    # Another person paid: IDENTITY_MISMATCH, with both names and both numbers known to customs only.
    submit("rejected", w.person("Buyer", "passport", "G" + _rand(8)),
           payer=w.person("Payer", "passport", "E" + _rand(8)))
    submit("rejected", w.person("Buyer", "resident_id", new_resident_id("19850101")),
           payer=w.person("Payer", "resident_id", new_resident_id("19851231")))
    # A passport filed through the batch twin (spec §7.1), with its payment and waybill.
    batch_buyer = w.person("Buyer", "passport", "E" + _rand(8))
    body = order_body(platform, parties.ecommerce.code, released_order_no(platform))
    body["buyer"] = {**batch_buyer, "phone": "13800000000"}
    body["consignee"]["name"] = "Parcel Recipient"
    r = api.http.post("/v1/orders:batch", json={"documents": [body]}, headers=parties.platform.auth)
    assert r.status_code == 200 and r.json()["results"][0]["status"] == 202, r.text
    payment = payment_body(parties.payment.code, body)
    payment["payer"] = {k: batch_buyer[k] for k in ("name", "id_type", "id_number")}
    r = api.http.post("/v1/payments:batch", json={"documents": [payment]}, headers=parties.payment.auth)
    assert r.status_code == 200 and r.json()["results"][0]["status"] == 202, r.text
    waybill = waybill_body(parties.logistics.code, body)
    assert api.waybill(parties.logistics, waybill).status_code == 202
    w.orders.append(("released", body))
    w.waybills.append(waybill["waybill_no"])
    # Held for inspection, then failed with a note naming the buyer and the number (an officer's free text).
    inspected_buyer = w.person("Buyer", "passport", "E" + _rand(8))
    inspected = submit("inspection", inspected_buyer, order_no=inspected_order_no(platform))
    # A document refused at the door (an invalid resident id): nothing of it may be logged in full.
    refused = order_body(platform, parties.ecommerce.code, released_order_no(platform))
    refused["buyer"] = {**w.person("Buyer", "resident_id", "11010119900307001" + "Y"), "phone": "13800000000"}
    assert api.order(parties.platform, refused).status_code == 422

    for expected, body in w.orders:
        view = api.wait_customs(parties.platform, body["order_no"])
        assert view["customs"]["status"] == expected, (body["buyer"]["id_type"], view["customs"])
    with api.agency("customs") as customs:
        r = customs.post(f"/v1/inspections/{platform}/{inspected['order_no']}", json={
            "result": "fail",
            "note": f"{inspected_buyer['name']} showed passport {inspected_buyer['id_number']}; goods differ"})
        assert r.status_code == 200, r.text
    wait_for(lambda: api.status(parties.platform, inspected["order_no"])["customs"]["status"] == "rejected",
             what="the failed inspection in the status view")
    # Tracking events (logistics and credit read them); one exception whose free text names the buyer and
    # the passport, as a carrier's clerk might write it (credit publishes exceptions with their note).
    for waybill_no in w.waybills:
        r = api.http.post(f"/v1/waybills/{parties.logistics.code}/{waybill_no}/events", headers=parties.logistics.auth,
                          json={"event": "picked_up", "at": "2026-11-24T12:00:00+08:00", "location": "Hangzhou",
                                "note": "picked up"})
        assert r.status_code == 202, r.text
    r = api.http.post(f"/v1/waybills/{parties.logistics.code}/{w.waybills[1]}/events", headers=parties.logistics.auth,
                      json={"event": "exception", "at": "2026-11-24T13:00:00+08:00",
                            "location": f"door of {passport['name']}",
                            "note": f"{passport['name']} (passport {passport['id_number']}) not at home"})
    assert r.status_code == 202, r.text
    # Poisoned records on a document topic: customs and FX dead-letter them (dead letters are scanned too).
    asyncio.run(produce_poison(mesh.bootstrap, passport))
    for expected, body in w.orders:
        if expected == "released":
            api.wait_view(parties.platform, body["order_no"], "fx")
            api.wait_view(parties.platform, body["order_no"], "tax")
    wait_for(lambda: api.status(parties.platform, w.orders[1][1]["order_no"])["logistics"]["status"] == "exception",
             what="the carrier's exception in the status view")
    for service in SERVICE_NAMES:
        api.produced(service)  # every outbox drained: what will ever be published has been
    return w


async def produce_poison(bootstrap: str, passport: dict) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(PAYMENT_SUBMITTED.name, b"not an envelope", key=b"poison:1")
        # An envelope whose payload does not match its contract, carrying a person's masked data: the
        # reason written into the dead letter's headers must not echo the input.
        await producer.send_and_wait(PAYMENT_SUBMITTED.name, json.dumps({
            "event_id": str(uuid.uuid4()), "type": "payment.submitted", "version": 1,
            "occurred_at": "2026-11-24T10:00:00+00:00", "source": "poison", "correlation_id": "poison:2",
            "payload": {"payment": {"payment_no": "P", "payer": {
                "name": "Poison Payer", "id_type": "passport",
                "id_number_masked": mask_id_number(passport["id_number"]), "id_number_sealed": "x"}}},
        }).encode(), key=b"poison:2")
    finally:
        await producer.stop()


# --- what the mesh holds afterwards ----------------------------------------------------------------


async def read_every_topic(bootstrap: str) -> list[tuple[str, str]]:
    """(topic, text of one record: key, value and headers) for every record of every topic, from the start."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([t for t in await admin.list_topics() if not t.startswith("__")])
    finally:
        await admin.close()
    partitions = [TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]]
    assert len({tp.topic for tp in partitions}) >= 18, "expected every topic and its dead-letter topic"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[tuple[str, str]] = []
        async def behind() -> bool:
            for tp, end in ends.items():
                if await consumer.position(tp) < end:
                    return True
            return False

        while await behind():
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, rs in batch.items():
                for r in rs:
                    headers = " ".join(f"{k}={v.decode('utf-8', 'replace')}" for k, v in r.headers or ())
                    records.append((tp.topic, " ".join(((r.key or b"").decode("utf-8", "replace"),
                                                        (r.value or b"").decode("utf-8", "replace"), headers))))
        return records
    finally:
        await consumer.stop()


async def read_every_table(url: str) -> list[tuple[str, str]]:
    """(table, text of one row) for every row of every table of one service database."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        tables = [r["table_name"] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
        rows = []
        for table in tables:
            rows += [(table, r["row"]) for r in await conn.fetch(f'SELECT t::text AS row FROM "{table}" t')]
        return rows
    finally:
        await conn.close()


def test_no_identity_number_or_name_outside_customs_beyond_its_masked_form(api, mesh, parties, postgres_port):
    w = run_workload(api, mesh, parties)
    findings: list[Finding] = []

    def check(where: str, text: str, *, names_allowed: bool) -> None:
        findings.extend(Finding(where, leak) for leak in id_leaks(text, w.ids) + any_resident_id(text))
        if not names_allowed:
            findings.extend(Finding(where, leak) for leak in name_leaks(text, w.names))

    # Topics, dead letters included. Names travel in the documents (sw.*), never in an agency's answer.
    records = asyncio.run(read_every_topic(mesh.bootstrap))
    dead_letters = [t for t, _ in records if t.endswith(".dlq")]
    assert f"{PAYMENT_SUBMITTED.name}.dlq" in dead_letters, "the poisoned records were not dead-lettered"
    for topic, text in records:
        check(f"topic {topic}", text, names_allowed=bool(DOCUMENT_TOPIC.match(topic)))
    # The scan sees the data it looks for: every accepted number travels masked, every name in a document.
    published = "\n".join(text for topic, text in records if DOCUMENT_TOPIC.match(topic)).lower()
    accepted = {p["id_number"].upper() for _, body in w.orders for p in (body["buyer"],)}
    assert all(mask_id_number(n).lower() in published for n in accepted)
    assert all(n.lower() in published for _, body in w.orders for n in (body["buyer"]["name"],))

    # Every table of every service database (customs: only the full numbers, it holds them sealed).
    for name, url in database_urls(postgres_port).items():
        service = name.removesuffix("_DATABASE_URL").lower()
        for table, row in asyncio.run(read_every_table(url)):
            names_allowed = service == "customs" or (service == "gateway" and table in GATEWAY_DOCUMENT_TABLES)
            if table == "outbox" and service != "gateway":
                # An agency's outbox holds its answers (no names) and dead letters of sw.* records, kept
                # untouched (the document as the gateway published it).
                names_allowed = names_allowed or ('"sw.' in row and ".dlq" in row)
            check(f"{service} table {table}", row, names_allowed=names_allowed)

    # A stored fingerprint must not be the plain digest of the document: with the rest of the document
    # stored, that digest gives the full identity number back to whoever tries the numbers its mask leaves.
    stored = {row for table, row in asyncio.run(read_every_table(database_urls(postgres_port)["GATEWAY_DATABASE_URL"]))
              if table in ("orders", "payments")}
    for _, body in w.orders:
        canonical = json.dumps(OrderIn.model_validate(body).model_dump(mode="json", exclude_none=True),
                               sort_keys=True, separators=(",", ":"))
        plain = hashlib.sha256(canonical.encode()).hexdigest()
        findings.extend(Finding("gateway table orders", f"plain fingerprint of order {body['order_no']}")
                        for row in stored if plain in row)

    # The gateway's read models as the platform sees them, and customs' own file (masked numbers only).
    with api.agency("customs") as customs:
        for _, body in w.orders:
            path = f"/v1/orders/{parties.platform.code}/{body['order_no']}"
            check(f"GET {path}", api.http.get(path, headers=parties.platform.auth).text, names_allowed=False)
            check(f"GET {path}/trace", api.http.get(path + "/trace", headers=parties.platform.auth).text,
                  names_allowed=False)
            check(f"customs GET {path}", customs.get(path).text, names_allowed=True)

    # Every log line of every service.
    logs = sorted((mesh.run_dir / "logs").glob("*.log"))
    assert {log.stem for log in logs} >= set(mesh.ports), "a service wrote no log"
    for log in logs:
        for n, line in enumerate(log.read_text(errors="replace").splitlines(), 1):
            check(f"log {log.name}:{n}", line, names_allowed=False)

    assert not findings, f"{len(findings)} personal data finding(s):\n" + "\n".join(map(str, findings[:40]))
