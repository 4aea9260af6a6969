"""The demo's CEB share (spec §7.5, issue 11): part of `make demo`'s parcels arrive as customs' own XML
messages at `POST /ceb/v1/messages` instead of REST documents, as integrators' existing systems send them.

- Imports as CEB311 (order, from the platform), CEB411 (payment, from the payment firm), CEB511 (waybill, from
  the logistics firm) and CEB621 (list, from the seller); exports as CEB303, CEB505 and CEB603. Each sender
  uses its own API key; messages are written by `tooling/ceb/writer.py` from the same REST bodies the rest of
  the demo posts, so a parcel's story (a wrong payment amount, a payer who is not the buyer) is the same.
- Several records a message, as real senders batch them: a platform's order message carries up to
  `ORDERS_PER_MESSAGE` orders, a payment or logistics firm's up to `DOCUMENTS_PER_MESSAGE`, a seller's list
  message up to `LISTS_PER_MESSAGE`.
- Mixed arrival order: every sender is its own concurrent stream and each stream sends its parcels in its own
  shuffled order, so a list often arrives before its order or waybill (those records are held, status 2, and
  completed when the partner comes).
- Enterprises registered with a `customs_code` are named by it in the messages (`party_codes`).

`report` prints the synchronous receipts (accepted / held / refused) and the sellers' polling feed
(`GET /ceb/v1/receipts?since=0`, every page): customs' decisions as CEB622/CEB604 by status, each receipt
checked against the official schema (`validate_receipt`).
"""
from __future__ import annotations

import asyncio
import os
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random
from typing import Any

import httpx

from services.gateway.ceb.receipts import parse_receipt, validate_receipt
from tooling.ceb import writer

CEB_SHARE = float(os.environ.get("SW_DEMO_CEB_SHARE", "0.3"))  # of the demo's ordinary parcels
ORDERS_PER_MESSAGE = 100  # spec §7.5: 1-100 records a message
DOCUMENTS_PER_MESSAGE = 25
LISTS_PER_MESSAGE = 10
DECISION_STATUS = {"120": "120 accepted (a held list completed)", "300": "300 document review (yellow)", "500": "500 inspection (red)",
                   "800": "800 released", "100": "100 returned (rejected)"}
SYNC_STATUS = {"120": "accepted (120)", "2": "held, waiting for a partner record (2)"}


@dataclass
class Parcel:
    """One parcel's documents, as REST bodies, and its messages' records (`writer.Record`) by kind."""

    order: dict
    story: str
    records: dict[str, writer.Record]  # "order" / "payment" / "waybill" / "list"
    senders: dict[str, str]  # kind -> our code of the enterprise sending it


@dataclass
class Message:
    sender: str  # our code
    kind: str
    parcels: list[Parcel]
    xml: bytes


@dataclass
class CebTraffic:
    """The CEB share of a demo run. `keys`: our code -> API key; `party_codes`: our code -> customs code of
    the enterprises registered with one; `names`: our code -> registered name."""

    http: httpx.AsyncClient
    keys: dict[str, str]
    party_codes: dict[str, str]
    names: dict[str, str]
    rng: Random
    parcels: list[Parcel] = field(default_factory=list)
    fallbacks: Counter = field(default_factory=Counter)  # why a parcel picked for CEB went by REST
    messages_sent: Counter = field(default_factory=Counter)  # message type -> messages
    sync: Counter = field(default_factory=Counter)  # returnStatus -> records
    refusals: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # receipts that fail the official schema
    refused_orders: set[str] = field(default_factory=set)

    def wants(self) -> bool:
        """Whether the next ordinary parcel goes as CEB messages (a `CEB_SHARE` of them)."""
        return self.rng.random() < CEB_SHARE

    def add(self, order: dict, story: str, payment: dict | None, waybill: dict) -> bool:
        """Writes the parcel's records (False, and the parcel stays REST, when the writer cannot express it:
        e.g. a destination without a customs country code)."""
        options = {"party_codes": self.party_codes, "names": self.names}
        seller, platform = order["ecommerce_code"], order["platform_code"]
        try:
            if order["direction"] == "import":
                records = {"order": writer.import_order_record(order, **options),
                           "payment": writer.payment_record(payment, **options),
                           "waybill": writer.import_waybill_record(waybill, **options),
                           "list": writer.import_list_record(order, waybill, **options)}
                senders = {"order": platform, "payment": payment["payment_code"],
                           "waybill": waybill["logistics_code"], "list": seller}
            else:
                records = {"order": writer.export_order_record(order, **options),
                           "waybill": writer.export_waybill_record(waybill, **options),
                           "list": writer.export_list_record(order, waybill, **options)}
                senders = {"order": platform, "waybill": waybill["logistics_code"], "list": seller}
        except writer.WriterError as e:
            self.fallbacks[str(e)] += 1
            return False
        self.parcels.append(Parcel(order, story, records, senders))
        return True

    def messages(self) -> list[list[Message]]:
        """The messages, one list per stream (a sender's messages of one kind and direction), each stream in its
        own shuffled order and cut into messages of a random number of records."""
        streams: dict[tuple[str, str, str], list[Parcel]] = defaultdict(list)
        for p in self.parcels:
            for kind, sender in p.senders.items():
                streams[(sender, kind, p.order["direction"])].append(p)
        out = []
        for (sender, kind, _), parcels in streams.items():
            self.rng.shuffle(parcels)
            most = {"order": ORDERS_PER_MESSAGE, "list": LISTS_PER_MESSAGE}.get(kind, DOCUMENTS_PER_MESSAGE)
            stream, i = [], 0
            while i < len(parcels):
                n = self.rng.randint(1, most)
                chunk = parcels[i:i + n]
                xml = writer.message([p.records[kind] for p in chunk], cop_code=sender,
                                     party_codes=self.party_codes, names=self.names)
                stream.append(Message(sender, kind, chunk, xml))
                i += n
            out.append(stream)
        return out

    async def send(self, streams: list[list[Message]], tick: Callable[[], Any]) -> None:
        """Sends the streams (`messages()`) concurrently, each message after the previous one of its stream (a
        sender's system sends in order); `tick` after each message."""
        async def stream(messages: list[Message]) -> None:
            for m in messages:
                await self._send(m)
                tick()

        await asyncio.gather(*(stream(s) for s in streams))

    async def _send(self, m: Message) -> None:
        # An identical resend gets the same answer and stores nothing twice (spec §7.5), so a lost connection,
        # a 429 or a 503 (both with Retry-After; nothing of the message was stored) is simply sent again, as a
        # sender's system would.
        for attempt in range(4):
            try:
                r = await self.http.post("/ceb/v1/messages", content=m.xml, headers={
                    "Authorization": f"Bearer {self.keys[m.sender]}", "Content-Type": "application/xml"})
            except httpx.TransportError:
                if attempt == 3:
                    raise
                await asyncio.sleep(0.5)
                continue
            if r.status_code in (429, 503) and attempt < 3:
                await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                continue
            break
        if r.status_code != 200:
            raise RuntimeError(f"POST /ceb/v1/messages ({m.kind} from {m.sender}) answered {r.status_code}: {r.text}")
        self._check(r.content)
        message_type, returns = parse_receipt(m.xml)[0], parse_receipt(r.content)[1]
        self.messages_sent[message_type] += 1
        for parcel, ret in zip(m.parcels, returns, strict=True):
            status = ret["returnStatus"]
            self.sync[status] += 1
            if status not in SYNC_STATUS:
                self.refused_orders.add(parcel.order["order_no"])
                self.refusals.append(f"{message_type} {parcel.order['order_no']}: {status} {ret['returnInfo']}")

    def _check(self, receipt: bytes) -> None:
        errors = validate_receipt(receipt)
        if errors:
            self.invalid.append(f"{parse_receipt(receipt)[0]}: {errors[0]}")

    def delivered(self) -> list[Parcel]:
        """The parcels every record of which was taken (120 or held then completed): customs decides these."""
        return [p for p in self.parcels if p.order["order_no"] not in self.refused_orders]

    async def feed(self, recipient: str) -> list[dict]:
        """Every receipt in `recipient`'s polling feed from the start, page by page."""
        out, since = [], 0
        while True:
            r = await self.http.get("/ceb/v1/receipts", params={"since": since},
                                    headers={"Authorization": f"Bearer {self.keys[recipient]}"})
            r.raise_for_status()
            page = r.json()
            out += page["receipts"]
            if not page["receipts"]:
                return out
            since = page["next"]

    async def report(self, decided: dict[str, str]) -> bool:
        """Prints the CEB section; `decided`: order_no -> customs status of the CEB parcels (pending when still
        undecided). False when a receipt is not schema-valid, a record was refused, or a decided CEB parcel has
        no list receipt in its seller's feed."""
        if not self.parcels:
            print(f"\nCEB messages: none (SW_DEMO_CEB_SHARE={CEB_SHARE})")
            return True
        sellers = sorted({p.senders["list"] for p in self.parcels})
        decisions: Counter = Counter()
        other: Counter = Counter()
        answered: set[str] = set()
        for seller in sellers:
            for receipt in await self.feed(seller):
                xml = receipt["xml"].encode()
                self._check(xml)
                kind, returns = parse_receipt(xml)
                if kind in ("CEB622Message", "CEB604Message"):
                    for ret in returns:
                        decisions[(kind, ret["returnStatus"])] += 1
                        if ret["returnStatus"] != "120":  # 120: a held list's completion, not a decision
                            answered.add(ret.get("orderNo") or ret["copNo"])  # CEB604 names the order; CEB622 copNo
                else:
                    other[kind] += 1
        imports = sum(p.order["direction"] == "import" for p in self.parcels)
        print(f"\nCEB messages (customs' XML, POST /ceb/v1/messages): {len(self.parcels)} of the parcels "
              f"({imports} imports, {len(self.parcels) - imports} exports)")
        rows = [(t, n) for t, n in sorted(self.messages_sent.items())]
        print("  messages sent:       " + ", ".join(f"{t.removesuffix('Message')} {n}" for t, n in rows)
              + f" ({sum(self.messages_sent.values())} messages, {sum(self.sync.values())} records)")
        refused = sum(n for s, n in self.sync.items() if s not in SYNC_STATUS)
        print(f"  synchronous receipts: {self.sync['120']} accepted (120), {self.sync['2']} held until their "
              f"partner came (2), {refused} refused")
        for line in self.refusals[:5]:
            print(f"    refused: {line}")
        if self.fallbacks:
            print(f"  {sum(self.fallbacks.values())} parcels picked for CEB went by REST: the writer cannot express "
                  f"them ({'; '.join(sorted(self.fallbacks))})")
        print(f"  polling feed of the {len(sellers)} sellers (GET /ceb/v1/receipts?since=0):")
        width = max((len(DECISION_STATUS.get(s, s)) for _, s in decisions), default=0)
        for (kind, status), n in sorted(decisions.items(), key=lambda x: (x[0][0], -int(x[0][1]))):
            print(f"    {kind.removesuffix('Message')}  {DECISION_STATUS.get(status, status):{width}}  {n}")
        if other:
            print("    and " + ", ".join(f"{n} {k.removesuffix('Message')}" for k, n in sorted(other.items()))
                  + " (receipts of other held records of theirs, when completed)")
        missing = sorted(no for no, status in decided.items() if status != "pending" and no not in answered)
        checked = sum(self.messages_sent.values()) + sum(decisions.values()) + sum(other.values())
        print(f"  receipts valid against customs' official schema: {checked - len(self.invalid)} of {checked}")
        ok = True
        if self.invalid:
            print(f"  NOT schema-valid: {self.invalid[:3]}")
            ok = False
        if refused:
            ok = False
        if missing:
            print(f"  {len(missing)} decided CEB parcels have no list receipt in the feed, e.g. {missing[:3]}")
            ok = False
        return ok
