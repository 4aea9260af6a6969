"""What the inputs demand, compared with what every service holds and published.

The inputs of one fault run are the declarations the gateway took (chaos.load): every one is valid (bench's
generator: registered parties, goods on the positive list, a fresh buyer well inside the limits, amounts that
match) and customs runs with a base inspection rate of 0, so the domain rules (../shared/domain/rules.md)
demand for each one exactly:

| where | what | rule |
| --- | --- | --- |
| gateway `orders`, `payments`, `waybills` | one row per document, the order at version 1 (nothing corrected it) | spec §3: an identical resubmission changes nothing |
| topics `sw.order.submitted.v1/.v2`, `sw.payment…`, `sw.waybill…` | one event per document | one 202, one outbox row |
| customs `order_files` | released, about version 1 | §4 three-document match, §5, §6, §10 |
| topic `customs.decision.v1` | one decision per order | decided once |
| customs `quota_holdings`, `buyer_year_totals` | imports: one holding; the buyer's year total = the sum of its holdings | §5 "a duplicate submission counts once" |
| customs `released_export_lines` | exports: one line per order line | §12 |
| tax `assessments`, topic `tax.assessment.v1` | one assessment per order version: `assessed` (retail import) or `exempt` (export) | §7, §8 |
| tax `export_revenue` | exports: one row | §8 |
| fx `settlements`, topic `fx.settlement.v1` | one settlement per released order | §11 |
| fx `enterprise_years` | year-to-date = the sum of that seller's settlements; settlement count = their number | §11 |
| logistics `shipments` | one per waybill, released, `cleared`; each status published once | logistics rules |
| credit `score_events` | one "released" score event per order; the file's score = its ledger replayed by the rules | §9 |
| gateway `agency_views` | customs, tax, FX and logistics answered (not pending) | the one-stop view |
| gateway `trace` | one line per agency answer (customs, tax, FX; logistics: one per status change published) | spec §4.4 |
| every outbox | nothing left unpublished | the relay's promise |
| every `.dlq` topic | nothing about these declarations | no record is the faults' victim |

Counting (per check and fact): **lost** = demanded but absent (or short, for sums); **duplicated** =
present more than once, or a version bumped by a resubmission, or a sum that exceeds what its parts give;
**wrong** = present once but not what the rules demand (e.g. rejected instead of released). Events are
counted by distinct `event_id`: a relay that publishes a row twice (allowed: the consumers' inboxes drop the
copy) is not a duplicate; two events for one fact are. The inboxes cannot hold a duplicate (event_id is
their key), so a consumer that handled one event twice shows as a doubled effect in the tables above.
"""
from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.topics import all_topic_names
from services.credit.rules import apply_score_change, open_credit_file, release_event_key
from shared.registry import SERVICE_NAMES

SERVICES = SERVICE_NAMES
EXAMPLES = 5


@dataclass
class Check:
    """One comparison: how many facts it demanded, and which were lost, doubled or wrong (examples)."""

    name: str
    expected: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"name": self.name, "expected": self.expected, "lost": len(self.lost),
                "duplicated": len(self.duplicated), "wrong": len(self.wrong),
                "examples": {k: v[:EXAMPLES] for k, v in
                             (("lost", self.lost), ("duplicated", self.duplicated), ("wrong", self.wrong)) if v}}


class Verdict:
    def __init__(self) -> None:
        self.checks: dict[str, Check] = {}

    def check(self, name: str) -> Check:
        return self.checks.setdefault(name, Check(name))

    def one(self, name: str, key: str, count: int, ok: bool = True, detail: str = "") -> None:
        """A fact demanded once: `count` times present; `ok` whether what is present is what the rules demand."""
        c = self.check(name)
        c.expected += 1
        if count == 0:
            c.lost.append(key)
        elif count > 1:
            c.duplicated.append(f"{key} ×{count}")
        elif not ok:
            c.wrong.append(f"{key}: {detail}" if detail else key)

    def total(self, name: str, key: str, held: Decimal, demanded: Decimal) -> None:
        """A running total that must equal the sum of its parts: short is lost, over is doubled."""
        c = self.check(name)
        c.expected += 1
        if held < demanded:
            c.lost.append(f"{key}: {held} < {demanded}")
        elif held > demanded:
            c.duplicated.append(f"{key}: {held} > {demanded}")

    @property
    def lost(self) -> int:
        return sum(len(c.lost) for c in self.checks.values())

    @property
    def duplicated(self) -> int:
        return sum(len(c.duplicated) for c in self.checks.values())

    @property
    def wrong(self) -> int:
        return sum(len(c.wrong) for c in self.checks.values())

    def summary(self) -> dict:
        return {"lost": self.lost, "duplicated": self.duplicated, "wrong": self.wrong,
                "checks": [c.summary() for c in self.checks.values()]}


# --- the topics ----------------------------------------------------------------------------------


@dataclass
class Published:
    topic: str
    key: str
    event_id: str
    type: str
    payload: dict


class TopicLedger:
    """Every event on every topic of the catalogue and its dead-letter topic, read from the beginning and
    then incrementally (one reader for the whole suite, so each fault run reads only what is new)."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.by_key: dict[str, list[Published]] = defaultdict(list)
        self.dead: dict[str, list[Published]] = defaultdict(list)
        self.consumer: AIOKafkaConsumer | None = None

    async def catch_up(self, timeout: float = 120) -> None:
        if self.consumer is None:
            self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                             auto_offset_reset="earliest", group_id=None)
            await self.consumer.start()
            partitions = []
            for topic in all_topic_names():
                for p in self.consumer.partitions_for_topic(topic) or await self._partitions(topic):
                    partitions.append(TopicPartition(topic, p))
            self.consumer.assign(partitions)
            await self.consumer.seek_to_beginning()
        consumer = self.consumer
        ends = await consumer.end_offsets(list(consumer.assignment()))
        deadline = asyncio.get_running_loop().time() + timeout
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("could not read the topics to their end")
            batch = await consumer.getmany(timeout_ms=500, max_records=10000)
            for tp, records in batch.items():
                for r in records:
                    self._add(tp.topic, r)

    async def _partitions(self, topic: str) -> set[int]:
        assert self.consumer is not None
        await self.consumer._client.force_metadata_update()  # noqa: SLF001 - a fresh reader knows no topics yet
        return self.consumer.partitions_for_topic(topic) or set()

    def _add(self, topic: str, record) -> None:  # noqa: ANN001
        key = (record.key or b"").decode("utf-8", "replace")
        if topic.endswith(".dlq"):
            self.dead[key].append(Published(topic, key, "", "", {}))
            return
        try:
            envelope = json.loads(record.value)
            event = Published(topic, key, envelope["event_id"], envelope["type"], envelope.get("payload") or {})
        except (ValueError, KeyError, TypeError):
            return
        self.by_key[key].append(event)

    def distinct(self, key: str, type_: str, topic: str | None = None, **match) -> list[Published]:
        """Events of `type_` under `key` (optionally on `topic`, with payload fields equal to `match`),
        one per event_id."""
        seen: dict[str, Published] = {}
        for e in self.by_key.get(key, []):
            if e.type == type_ and (topic is None or e.topic == topic) and \
                    all(e.payload.get(k) == v for k, v in match.items()):
                seen.setdefault(e.event_id, e)
        return list(seen.values())

    async def close(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
            self.consumer = None


# --- the databases ---------------------------------------------------------------------------------


async def fetch(port: int, database: str, query: str, *args) -> list[asyncpg.Record]:  # noqa: ANN002
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database=database, timeout=10)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def unpublished(port: int) -> dict[str, int]:
    """Outbox rows not yet published, per service."""
    counts = await asyncio.gather(*(fetch(port, s, "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")
                                    for s in SERVICES))
    return {s: rows[0]["n"] for s, rows in zip(SERVICES, counts)}


async def decided(port: int, platform: str) -> dict[str, int]:
    """Orders of `platform` whose one-stop view shows customs, tax, FX and logistics all answered."""
    rows = await fetch(port, "gateway", """
        SELECT order_no, count(*) AS n FROM agency_views
        WHERE platform_code = $1 AND agency IN ('customs', 'tax', 'fx', 'logistics')
          AND (view::jsonb ->> 'status') <> 'pending'
        GROUP BY order_no""", platform)
    return {r["order_no"]: r["n"] for r in rows}


async def credited(port: int, platform: str) -> set[str]:
    """Orders of `platform` whose release the credit service has counted (its score ledger). Platform
    codes are unified social credit codes: no LIKE wildcard in them."""
    prefix = release_event_key(platform, "")[:-len('""]')]  # the key of any of its orders, up to the order number
    rows = await fetch(port, "credit", "SELECT event_key FROM score_events WHERE event_key LIKE $1",
                       prefix + "%")
    return {json.loads(r["event_key"])[2] for r in rows}


async def compare(port: int, ledger: TopicLedger, declarations: list[dict]) -> Verdict:
    """Every check of the module docstring for `declarations` (chaos.load.declaration_facts of what the
    gateway took; all of one platform, payer and carrier registered for this fault run)."""
    v = Verdict()
    if not declarations:
        return v
    await ledger.catch_up()
    platform = declarations[0]["platform"]
    sellers = sorted({d["seller"] for d in declarations})
    carrier = declarations[0]["waybill"][0]
    payer = next((d["payment"][0] for d in declarations if d["payment"]), "")
    q = {
        "orders": fetch(port, "gateway", "SELECT order_no, version FROM orders WHERE platform_code = $1", platform),
        "payments": fetch(port, "gateway", "SELECT payment_no FROM payments WHERE payment_code = $1", payer),
        "waybills": fetch(port, "gateway", "SELECT waybill_no FROM waybills WHERE logistics_code = $1", carrier),
        "views": fetch(port, "gateway", "SELECT order_no, agency, view::jsonb ->> 'status' AS status "
                                        "FROM agency_views WHERE platform_code = $1", platform),
        "files": fetch(port, "customs", "SELECT order_no, status, order_version, decided_version, payment_no, "
                                        "waybill_no, reasons::text AS reasons FROM order_files WHERE platform_code = $1",
                       platform),
        "holdings": fetch(port, "customs", "SELECT order_no, buyer, year, amount_cny FROM quota_holdings "
                                           "WHERE platform_code = $1", platform),
        "lines": fetch(port, "customs", "SELECT order_no, count(*) AS n FROM released_export_lines "
                                        "WHERE platform_code = $1 GROUP BY order_no", platform),
        "assessments": fetch(port, "tax", "SELECT order_no, order_version, status FROM assessments "
                                          "WHERE platform_code = $1", platform),
        "revenue": fetch(port, "tax", "SELECT order_no FROM export_revenue WHERE platform_code = $1", platform),
        "settlements": fetch(port, "fx", "SELECT order_no, status, order_version FROM settlements "
                                         "WHERE platform_code = $1", platform),
        "years": fetch(port, "fx", "SELECT code, year, year_to_date_usd, settlements FROM enterprise_years "
                                   "WHERE code = ANY($1::text[])", sellers),
        "settled": fetch(port, "fx", "SELECT ecommerce_code AS code, year, sum(amount_usd) AS usd, count(*) AS n "
                                     "FROM settlements WHERE status = 'settled' AND ecommerce_code = ANY($1::text[]) "
                                     "GROUP BY ecommerce_code, year", sellers),
        "shipments": fetch(port, "logistics", "SELECT waybill_no, status, released FROM shipments "
                                              "WHERE logistics_code = $1", carrier),
        "score_events": fetch(port, "credit", "SELECT event_key, enterprise_code, delta FROM score_events "
                                              "WHERE enterprise_code = ANY($1::text[]) ORDER BY id", sellers),
        "credit_files": fetch(port, "credit", "SELECT code, customs_credit, score FROM credit_files "
                                              "WHERE code = ANY($1::text[])", sellers),
        "trace": fetch(port, "gateway", "SELECT correlation_id, type, count(*) AS n FROM trace "
                                        "WHERE correlation_id LIKE $1 AND type IN ('customs.decision', 'tax.assessment', "
                                        "'fx.settlement', 'logistics.status') GROUP BY correlation_id, type",
                       platform + ":%"),
        "outbox": unpublished(port),
    }
    got = dict(zip(q, await asyncio.gather(*q.values())))

    orders = {r["order_no"]: r["version"] for r in got["orders"]}
    payments = {r["payment_no"] for r in got["payments"]}
    waybills = {r["waybill_no"] for r in got["waybills"]}
    views = {(r["order_no"], r["agency"]): r["status"] for r in got["views"]}
    files = {r["order_no"]: r for r in got["files"]}
    holdings = defaultdict(list)
    for r in got["holdings"]:
        holdings[r["order_no"]].append(r)
    lines = {r["order_no"]: r["n"] for r in got["lines"]}
    assessments = {r["order_no"]: r for r in got["assessments"]}
    revenue = {r["order_no"] for r in got["revenue"]}
    settlements = {r["order_no"]: r for r in got["settlements"]}
    shipments = {r["waybill_no"]: r for r in got["shipments"]}
    score_keys = Counter(r["event_key"] for r in got["score_events"])
    trace = {(r["correlation_id"], r["type"]): r["n"] for r in got["trace"]}

    for d in declarations:
        no, key, imp = d["order_no"], f"{d['platform']}:{d['order_no']}", d["direction"] == "import"
        # gateway: the documents, stored once; the order still at version 1
        version = orders.get(no)
        v.one("gateway order stored", no, 0 if version is None else (1 if version == 1 else version))
        if imp:
            v.one("gateway payment stored", no, 1 if d["payment"][1] in payments else 0)
        v.one("gateway waybill stored", no, 1 if d["waybill"][1] in waybills else 0)
        # the gateway's events, one per document
        for topic in ("sw.order.submitted.v1", "sw.order.submitted.v2"):
            v.one(f"{topic} published", no, len(ledger.distinct(key, "order.submitted", topic)))
        if imp:
            v.one("sw.payment.submitted.v1 published", no, len(ledger.distinct(key, "payment.submitted")))
        v.one("sw.waybill.submitted.v1 published", no, len(ledger.distinct(key, "waybill.submitted")))
        # customs: decided once, released, about version 1
        f = files.get(no)
        v.one("customs file decided", no, 0 if f is None or f["status"] == "pending" else 1,
              ok=f is not None and f["status"] == "released" and f["decided_version"] == f["order_version"] == 1,
              detail=f and f"{f['status']} v{f['decided_version']}/{f['order_version']} {f['reasons']}")
        if f is not None:
            v.one("customs file holds the waybill", no, 1 if f["waybill_no"] == d["waybill"][1] else 0)
            if imp:
                v.one("customs file holds the payment", no, 1 if f["payment_no"] == d["payment"][1] else 0)
        decisions = ledger.distinct(key, "customs.decision")
        v.one("customs.decision.v1 published", no, len(decisions),
              ok=all(e.payload.get("status") == "released" for e in decisions),
              detail=",".join(e.payload.get("status", "?") for e in decisions))
        # customs: the buyer's quota (imports), the export lines (§12)
        if imp:
            v.one("customs quota holding", no, len(holdings.get(no, [])))
        else:
            n = lines.get(no, 0)
            v.one("customs released export lines", no, 0 if n == 0 else (1 if n == d["items"] else n))
        # tax: one assessment per order version, of the right kind
        a = assessments.get(no)
        want = ("assessed", "general_trade") if imp else ("exempt",)
        v.one("tax assessment", no, 0 if a is None else 1,
              ok=a is not None and a["status"] in want and a["order_version"] == 1,
              detail=a and f"{a['status']} v{a['order_version']}")
        v.one("tax.assessment.v1 published", no, len(ledger.distinct(key, "tax.assessment", order_version=1)))
        if not imp:
            v.one("tax export revenue", no, 1 if no in revenue else 0)
        # FX: one settlement per released order
        s = settlements.get(no)
        v.one("fx settlement", no, 0 if s is None or s["status"] != "settled" else 1,
              ok=s is not None and s["order_version"] == 1, detail=s and f"{s['status']} v{s['order_version']}")
        v.one("fx.settlement.v1 published", no, len(ledger.distinct(key, "fx.settlement", status="settled")))
        # logistics: one shipment, cleared by the release; each status change published once
        sh = shipments.get(d["waybill"][1])
        v.one("logistics shipment released", no, 0 if sh is None or not sh["released"] else 1,
              ok=sh is not None and sh["status"] == "cleared", detail=sh and sh["status"])
        changes = Counter(e.payload.get("status") for e in ledger.distinct(key, "logistics.status"))
        v.one("logistics.status.v1 cleared published", no, changes.get("cleared", 0))
        for status, n in changes.items():
            if n > 1:
                v.check("logistics.status.v1 cleared published").duplicated.append(f"{no} {status} ×{n}")
        # credit: the release counted once for the seller
        event_key = release_event_key(d["platform"], no)
        v.one("credit score event", no, score_keys.get(event_key, 0))
        # the one-stop view
        for agency in ("customs", "tax", "fx", "logistics"):
            status = views.get((no, agency))
            v.one(f"gateway view: {agency}", no, 0 if status in (None, "pending") else 1)
        # the gateway's trace: one line per agency answer it consumed (a consumed event applied twice shows)
        for type_ in ("customs.decision", "tax.assessment", "fx.settlement"):
            v.one(f"gateway trace: {type_}", no, trace.get((key, type_), 0))
        extra = trace.get((key, "logistics.status"), 0) - sum(changes.values())  # lines beyond the changes published
        v.one("gateway trace: logistics.status", no, 0 if extra < 0 else 1 + extra)
        # dead letters
        if ledger.dead.get(key):
            v.check("dead-lettered").lost.append(f"{no} ×{len(ledger.dead[key])}")

    # the buyer's year total is the sum of its holdings (a fresh buyer per import: exactly its one order)
    buyers = sorted({r["buyer"] for rows in holdings.values() for r in rows})
    if buyers:
        totals, held = await asyncio.gather(
            fetch(port, "customs", "SELECT buyer, year, total_cny FROM buyer_year_totals WHERE buyer = ANY($1::text[])",
                  buyers),
            fetch(port, "customs", "SELECT buyer, year, sum(amount_cny) AS s FROM quota_holdings "
                                   "WHERE buyer = ANY($1::text[]) GROUP BY buyer, year", buyers))
        sums = {(r["buyer"], r["year"]): r["s"] for r in held}
        for r in totals:
            v.total("customs buyer year total = its holdings", r["buyer"][:12], r["total_cny"],
                    sums.pop((r["buyer"], r["year"]), Decimal(0)))
        for (buyer, _), s in sums.items():
            v.total("customs buyer year total = its holdings", buyer[:12], Decimal(0), s)
    # FX year-to-date is the sum of the seller's settlements, and their count
    settled = {(r["code"], r["year"]): r for r in got["settled"]}
    for r in got["years"]:
        parts = settled.pop((r["code"], r["year"]), None)
        v.total("fx year-to-date = sum of settlements", f"{r['code']} {r['year']}", r["year_to_date_usd"],
                parts["usd"] if parts else Decimal(0))
        v.total("fx settlement count", f"{r['code']} {r['year']}", Decimal(r["settlements"]),
                Decimal(parts["n"] if parts else 0))
    for (code, year), parts in settled.items():
        v.total("fx year-to-date = sum of settlements", f"{code} {year}", Decimal(0), parts["usd"])
    # credit: each seller's score is its ledger replayed by the rules (a change applied twice shows here)
    ledger_of = defaultdict(list)
    for r in got["score_events"]:
        ledger_of[r["enterprise_code"]].append(r["delta"])
    for r in got["credit_files"]:
        replayed = open_credit_file(r["code"], r["customs_credit"])
        for delta in ledger_of.get(r["code"], []):
            replayed = apply_score_change(replayed, delta).file
        v.total("credit score = its ledger", r["code"], r["score"], replayed.score)
    # every outbox drained
    for service, n in got["outbox"].items():
        c = v.check("outbox published")
        c.expected += 1
        if n:
            c.lost.append(f"{service}: {n} rows unpublished")
    return v
