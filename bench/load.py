"""The load generator: its own process, driven by the bench controller (`python -m bench`).

    python -m bench.load --gateway URL --out RESULT.json [--mode single|batch] [--loop closed|open]
                         [--declarations N] [--concurrency C] [--rate R] [--no-poll]

It registers its own enterprises first (one platform, several sellers, a payment firm and a logistics
firm, through the operator API), then plays realistic declarations drawn from the reference data
(`shared.reference`: HS codes from hs_catalogue.csv, currencies from fx_rates.csv):

- an import is an order, a payment and a waybill (three documents);
- an export is an order and a waybill (two documents).

`--loop closed`: C clients, each sending its next declaration as soon as the previous one is accepted
(the maximum rate). `--loop open`: declarations start at a fixed offered rate R per second whatever the
answers (C only bounds the connection pool). `--mode batch` sends the same documents through the
`…:batch` endpoints of spec §7.1, 100 declarations per request; an endpoint answering 404/405 makes the
result `{"available": false}`. `--mode ceb` sends the same declarations as customs' own messages (spec §7.5,
`POST /ceb/v1/messages`), 100 records a message: the orders (CEB311), then the payments (CEB411), the
waybills (CEB511) and last the lists (CEB621, sent by the logistics firm for the sellers), so every order
and waybill is first held and then completed by its list. CEB import messages are in CNY only, so this mode
plays imports in CNY (`--imports-only`, which a REST run can take too, to compare like with like); the
messages are written (tooling/ceb/writer.py) before the clock starts.

While it submits, a poller reads the one-stop view `GET /v1/orders/{platform}/{order_no}` of accepted
declarations, oldest first, and records when each one is decided: customs, tax, FX (imports only) and
logistics all show a non-pending status (a customs `inspection` holds the order for an officer, so it
counts as decided by customs with tax and FX left pending). It stops when every declaration is decided or
nothing was decided for `--stall` seconds. Progress goes to stdout as `progress <accepted> <decided> <total>`
lines; the figures go to --out as JSON.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import httpx

from contracts.identifiers import USCC_ALPHABET, resident_id_check_character, uscc_check_character
from shared.reference import hs_catalogue, reference_dir

BATCH_SIZE = 100
COUNTRIES = ["US", "GB", "DE", "FR", "JP", "AU", "SG", "MY", "TH", "BR"]
ORIGINS = ["FR", "JP", "KR", "US", "DE", "AU", "IT", "GB"]
NAMES = ["Zhang San", "Li Si", "Wang Wu", "Zhao Liu", "Chen Qi", "Liu Yang", "Huang Mei", "Zhou Lan"]


def percentiles(values: list[float], scale: float = 1.0) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "count": 0}
    s = sorted(values)

    def at(q: float) -> float:
        return round(s[min(len(s) - 1, int(q * len(s)))] * scale, 3)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": round(s[-1] * scale, 3), "count": len(s)}


def money(x: Decimal) -> str:
    return f"{x.quantize(Decimal('0.01')):.2f}"


class Documents:
    """Realistic declarations from the reference data, reproducible from a seed."""

    def __init__(self, seed: int, export_share: float, run_tag: str, imports_only: bool = False):
        self.rng = random.Random(seed)  # the documents: the same seed plays the same declarations
        self.codes = random.Random()  # enterprise codes and identity numbers: fresh each run (they must be new)
        # imports in CNY only: what customs' import messages carry (their currency is fixed at 142)
        self.export_share = 0.0 if imports_only else export_share
        self.run_tag = run_tag
        catalogue = list(hs_catalogue().values())
        self.import_goods = [e for e in catalogue if e.positive_list and not e.prohibited]
        self.export_goods = [e for e in catalogue if not e.prohibited]
        rates: dict[str, Decimal] = {}
        with open(reference_dir() / "fx_rates.csv", newline="") as f:
            for row in csv.DictReader(f):  # the latest rate of each currency, to keep values in CNY limits
                rates[row["currency"]] = Decimal(row["cny_per_unit"])
        self.rates = {"CNY": Decimal(1), **rates}
        self.currencies = ["CNY"] if imports_only else sorted(self.rates)

    def uscc(self) -> str:
        first = "91" + "".join(self.codes.choice(USCC_ALPHABET) for _ in range(15))
        return first + uscc_check_character(first)

    def resident_id(self) -> str:
        r = self.codes
        first = f"110101{r.randint(1960, 2004)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}{r.randrange(1000):03d}"
        return first + resident_id_check_character(first)

    def price(self, cny_low: int, cny_high: int, currency: str) -> Decimal:
        """A unit price worth between the two CNY figures, in the currency (at least 0.01)."""
        cny = Decimal(self.rng.randint(cny_low * 100, cny_high * 100)) / 100
        return max(Decimal("0.01"), (cny / self.rates[currency]).quantize(Decimal("0.01")))

    def declaration(self, i: int, p: "Parties") -> dict:
        r = self.rng
        order_no = f"BENCH-{self.run_tag}-{i:07d}"
        currency = r.choice(self.currencies)
        seller = r.choice(p.sellers)
        if r.random() < self.export_share:
            entry = r.choice(self.export_goods)
            qty, price = r.randint(1, 5), self.price(50, 600, currency)
            freight = self.price(15, 40, currency)
            country = r.choice(COUNTRIES)
            order = {
                "order_no": order_no, "platform_code": p.platform, "ecommerce_code": seller, "direction": "export",
                "trade_mode": "9610", "currency": currency,
                "items": [{"item_no": "SKU-1", "name": entry.description[:60], "hs_code": entry.hs_code,
                           "quantity": qty, "unit": "piece", "unit_price": money(price), "origin_country": "CN"}],
                "freight": money(freight), "insurance": "0.00", "discount": "0.00", "tax_total": "0.00",
                "actual_paid": money(qty * price + freight), "destination_country": country,
                "consignee": {"name": "Jane Doe", "phone": "+1 555 0100", "address": "1 Main St", "country": country},
            }
        else:  # an import well inside the single (5,000 CNY) and annual limits: a fresh buyer each time
            items = []
            for n in range(r.choice([1, 1, 2, 3])):
                entry = r.choice(self.import_goods)
                items.append({"item_no": f"SKU-{n + 1}", "name": entry.description[:60], "hs_code": entry.hs_code,
                              "quantity": r.choice([1, 1, 2]), "unit": "piece",
                              "unit_price": money(self.price(20, 600, currency)), "origin_country": r.choice(ORIGINS)})
            goods = sum(Decimal(str(i["quantity"])) * Decimal(i["unit_price"]) for i in items)
            freight = self.price(0, 20, currency) if r.random() < 0.7 else Decimal("0.00")
            tax = (goods * Decimal("0.091")).quantize(Decimal("0.01"))
            name, id_number = r.choice(NAMES), self.resident_id()
            order = {
                "order_no": order_no, "platform_code": p.platform, "ecommerce_code": seller, "direction": "import",
                "trade_mode": r.choice(["9610", "9610", "1210"]), "currency": currency, "items": items,
                "freight": money(freight), "insurance": "0.00", "discount": "0.00", "tax_total": money(tax),
                "actual_paid": money(goods + freight + tax),
                "buyer": {"name": name, "id_type": "resident_id", "id_number": id_number, "phone": "13800000000"},
                "consignee": {"name": name, "phone": "13800000000", "address": "88 Bench Road, Hangzhou", "country": "CN"},
            }
        docs: list[tuple[str, str, dict]] = [("orders", p.platform, order)]
        if order["direction"] == "import":
            docs.append(("payments", p.payer, {
                "payment_no": "PAY-" + order_no, "payment_code": p.payer, "order_no": order_no,
                "platform_code": p.platform, "amount": order["actual_paid"], "currency": currency,
                "payer": {k: order["buyer"][k] for k in ("name", "id_type", "id_number")},
                "paid_at": "2026-11-24T10:00:00+08:00"}))
        docs.append(("waybills", p.carrier, {
            "waybill_no": "SF" + order_no, "logistics_code": p.carrier, "order_no": order_no,
            "platform_code": p.platform, "freight": order["freight"], "insured_fee": "0.00",
            "gross_weight_kg": f"{r.randint(2, 40) / 10:.1f}", "package_count": 1, "consignee": order["consignee"]}))
        return {"order_no": order_no, "platform": p.platform, "direction": order["direction"], "docs": docs}


@dataclass
class Parties:
    platform: str = ""
    sellers: list[str] = field(default_factory=list)
    payer: str = ""
    carrier: str = ""
    keys: dict[str, str] = field(default_factory=dict)


@dataclass
class Track:
    """One declaration's timeline (time.monotonic seconds)."""
    order_no: str
    platform: str
    direction: str
    started: float = 0.0
    accepted: float | None = None  # when its last document was accepted (202/200)
    decided: float | None = None
    failed: bool = False
    customs: str = "pending"
    checks: int = 0
    next_check: float = 0.0


class Load:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.admin = {"Authorization": f"Bearer {os.environ.get('SW_ADMIN_TOKEN', 'dev-admin-token')}"}
        limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
        self.http = httpx.AsyncClient(base_url=args.gateway, timeout=args.timeout, limits=limits)
        self.poll_http = httpx.AsyncClient(base_url=args.gateway, timeout=args.timeout,
                                           limits=httpx.Limits(max_connections=args.poll_concurrency))
        self.docs = Documents(args.seed, args.export_share, args.run_tag or f"{int(time.time()) % 10**6:06d}",
                              imports_only=args.imports_only or args.mode == "ceb")
        self.parties = Parties()
        self.request_latency: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors: list[str] = []
        self.tracks: list[Track] = []
        self.pending: list[Track] = []  # accepted, not yet decided, oldest first
        self.accepted_docs = 0
        self.records: Counter[str] = Counter()  # CEB records answered, by kind and return status
        self.polls = 0
        self.retries = 0
        self.rate_limited = 0
        self.submitting = True
        self.lateness: list[float] = []

    # --- setup ---------------------------------------------------------------------------------

    async def register(self, roles: list[str]) -> str:
        code = self.docs.uscc()
        r = await self.http.post("/v1/enterprises", headers=self.admin, json={
            "code": code, "name": f"Bench {roles[0]} {code[-6:]}", "roles": roles, "country": "CN",
            "customs_credit": "general"})
        if r.status_code != 201:
            raise RuntimeError(f"registering {roles} answered {r.status_code}: {r.text[:300]}")
        self.parties.keys[code] = r.json()["api_key"]
        return code

    async def setup(self) -> None:
        p = self.parties
        p.platform = await self.register(["platform"])
        p.sellers = [await self.register(["ecommerce"]) for _ in range(4)]
        p.payer = await self.register(["payment"])
        p.carrier = await self.register(["logistics"])

    def auth(self, code: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.parties.keys[code]}"}

    async def batch_available(self) -> bool:
        """An empty batch is refused (422) by an implementation of §7.1; 404/405 means there is none."""
        if self.args.mode == "ceb":  # the CEB front door's polling feed answers any enterprise
            r = await self.http.get("/ceb/v1/receipts", headers=self.auth(self.parties.platform))
            return r.status_code == 200
        r = await self.http.post("/v1/orders:batch", json={"documents": []}, headers=self.auth(self.parties.platform))
        return r.status_code not in (404, 405)

    # --- submitting ----------------------------------------------------------------------------

    async def post(self, path: str, code: str, body: dict | bytes) -> httpx.Response | None:
        started = time.monotonic()
        if isinstance(body, bytes):  # a CEB message
            request = {"content": body, "headers": {**self.auth(code), "Content-Type": "application/xml"}}
        else:
            request = {"json": body, "headers": self.auth(code)}
        attempt = 0
        while True:
            try:
                r = await self.http.post(path, **request)
                if r.status_code == 429 and self.rate_limited < 1000:
                    # Over the key's rate limit (spec §7.2; a batch or a CEB message counts one per document):
                    # a client waits as told and resends. Counted; the latency includes the wait.
                    self.rate_limited += 1
                    retry_after = r.headers.get("Retry-After", "1")
                    await asyncio.sleep(min(float(retry_after), 10.0) if retry_after.isdigit() else 1.0)
                    continue
                break
            except httpx.TransportError as e:
                # Typically a kept-alive connection the server closed as we reused it. Documents are
                # idempotent by business key, so a client resends; counted, and the latency includes it.
                self.retries += 1
                attempt += 1
                if attempt == 3:
                    self.statuses[0] += 1
                    self.errors.append(f"{path}: {type(e).__name__} {e}"[:300])
                    return None
        self.request_latency.append(time.monotonic() - started)
        self.statuses[r.status_code] += 1
        if r.status_code not in (200, 202):
            self.errors.append(f"{path} {r.status_code}: {r.text[:300]}")
        return r

    def accept(self, track: Track) -> None:
        track.accepted = time.monotonic()
        self.pending.append(track)

    async def single(self, decl: dict, track: Track) -> None:
        track.started = track.started or time.monotonic()
        for kind, code, body in decl["docs"]:
            r = await self.post(f"/v1/{kind}", code, body)
            if r is None or r.status_code not in (200, 202):
                track.failed = True
                return
            self.accepted_docs += 1
        self.accept(track)

    async def batch(self, decls: list[dict], tracks: list[Track]) -> None:
        now = time.monotonic()
        for t in tracks:
            t.started = t.started or now
        failed: set[int] = set()
        for kind, code in (("orders", self.parties.platform), ("payments", self.parties.payer),
                           ("waybills", self.parties.carrier)):
            members = [(n, body) for n, d in enumerate(decls) for k, _, body in d["docs"] if k == kind and n not in failed]
            if not members:
                continue
            r = await self.post(f"/v1/{kind}:batch", code, {"documents": [b for _, b in members]})
            if r is None or r.status_code != 200:
                failed.update(n for n, _ in members)
                continue
            for (n, _), result in zip(members, r.json()["results"]):
                if result["status"] in (200, 202):
                    self.accepted_docs += 1
                else:
                    failed.add(n)
                    self.errors.append(f"{kind}:batch[{result['index']}] {result['status']}: {json.dumps(result['body'])[:200]}")
        for n, t in enumerate(tracks):
            if n in failed:
                t.failed = True
            else:
                self.accept(t)

    def ceb_messages(self, decls: list[dict]) -> list[tuple[str, str, bytes, str]]:
        """The CEB messages of up to 100 import declarations, in the order they are sent: (kind, sender,
        XML, the return status every record should get: 2 held, 120 accepted)."""
        from tooling.ceb import writer  # noqa: PLC0415 - lxml, only in this mode

        p = self.parties
        docs = [{k: body for k, _, body in d["docs"]} for d in decls]
        return [
            ("order", p.platform, writer.message([writer.import_order_record(d["orders"]) for d in docs],
                                                 cop_code=p.platform), "2"),
            ("payment", p.payer, writer.message([writer.payment_record(d["payments"]) for d in docs],
                                                cop_code=p.payer), "120"),
            ("waybill", p.carrier, writer.message([writer.import_waybill_record(d["waybills"]) for d in docs],
                                                  cop_code=p.carrier), "2"),
            # the logistics firm files the lists for the sellers (the list's agent: the sender)
            ("list", p.carrier, writer.message([writer.import_list_record(d["orders"], d["waybills"], agent_code=p.carrier)
                                                for d in docs], cop_code=p.carrier), "120"),
        ]

    async def ceb(self, decls: list[dict], tracks: list[Track], messages: list[tuple[str, str, bytes, str]]) -> None:
        from services.gateway.ceb.receipts import parse_receipt  # noqa: PLC0415

        now = time.monotonic()
        for t in tracks:
            t.started = t.started or now
        failed: set[int] = set()
        for kind, code, xml, expected in messages:
            r = await self.post("/ceb/v1/messages", code, xml)
            if r is None or r.status_code != 200:
                failed.update(range(len(decls)))
                break
            for n, ret in enumerate(parse_receipt(r.content)[1]):
                status = ret.get("returnStatus", "")
                self.records[f"{kind} {status}"] += 1
                if status != expected and n not in failed:
                    failed.add(n)
                    self.errors.append(f"CEB {kind}[{n}] {status}: {ret.get('returnInfo', '')[:200]}")
        for n, t in enumerate(tracks):
            if n in failed:
                t.failed = True
            else:
                self.accepted_docs += len(decls[n]["docs"])  # the §4 documents the records made
                self.accept(t)

    def units(self) -> list[tuple]:
        """What one client request sequence carries: one declaration, or a batch of BATCH_SIZE (in CEB mode
        with its messages, written now, before the clock starts)."""
        per = self.args.batch_size if self.args.mode in ("batch", "ceb") else 1
        decls = [self.docs.declaration(i, self.parties) for i in range(self.args.declarations)]
        self.tracks = [Track(d["order_no"], d["platform"], d["direction"]) for d in decls]
        units = [(decls[i:i + per], self.tracks[i:i + per]) for i in range(0, len(decls), per)]
        if self.args.mode == "ceb":
            units = [(d, t, self.ceb_messages(d)) for d, t in units]
        return units

    async def send(self, unit: tuple) -> None:
        decls, tracks = unit[0], unit[1]
        if self.args.mode == "ceb":
            await self.ceb(decls, tracks, unit[2])
        elif self.args.mode == "batch":
            await self.batch(decls, tracks)
        else:
            await self.single(decls[0], tracks[0])

    async def closed_loop(self, units: list) -> None:
        queue = iter(units)

        async def client() -> None:
            for unit in queue:
                await self.send(unit)

        await asyncio.gather(*(client() for _ in range(self.args.concurrency)))

    async def open_loop(self, units: list) -> None:
        per = len(units[0][0]) if units else 1
        interval = per / self.args.rate  # seconds between requests sequences
        t0 = time.monotonic()
        tasks = []
        for n, unit in enumerate(units):
            due = t0 + n * interval
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                self.lateness.append(-delay)
            for t in unit[1]:
                t.started = due  # latency of an open loop counts from when it was due, not when it got a connection
            tasks.append(asyncio.create_task(self.send(unit)))
        await asyncio.gather(*tasks)

    # --- watching decisions --------------------------------------------------------------------

    @staticmethod
    def is_decided(view: dict, direction: str) -> bool:
        customs = view["customs"]["status"]
        if customs == "pending":
            return False
        if customs == "inspection":
            return True
        sections = ["tax", "logistics"] + (["fx"] if direction == "import" else [])
        return all(view[s]["status"] != "pending" for s in sections)

    async def check(self, t: Track) -> bool:
        self.polls += 1
        try:
            r = await self.poll_http.get(f"/v1/orders/{t.platform}/{t.order_no}", headers=self.admin)
        except httpx.HTTPError:
            return False
        if r.status_code != 200:
            return False
        view = r.json()
        t.customs = view["customs"]["status"]
        if self.is_decided(view, t.direction):
            t.decided = time.monotonic()
            return True
        return False

    async def poller(self) -> None:
        """Oldest first, a group at a time; a group with nothing newly decided ends the cycle, so the
        view is read about once per decided declaration plus one group per cycle. A declaration found
        pending is not read again for 0.25, 0.5, then 1 s at most, so a few that never settle cannot hold
        up the others."""
        group = self.args.poll_concurrency
        last_progress = time.monotonic()
        while True:
            now = time.monotonic()
            due = [t for t in self.pending if t.next_check <= now]
            for i in range(0, len(due), group):
                chunk = due[i:i + group]
                done = await asyncio.gather(*(self.check(t) for t in chunk))
                checked = time.monotonic()
                for t, d in zip(chunk, done):
                    if not d:
                        t.checks += 1
                        t.next_check = checked + min(1.0, 0.125 * 2 ** t.checks)
                if not any(done):
                    break
            before = len(self.pending)
            self.pending = [t for t in self.pending if t.decided is None]
            if len(self.pending) < before:
                last_progress = time.monotonic()
            if not self.submitting and not self.pending:
                return
            if not self.submitting and time.monotonic() - last_progress > self.args.stall:
                return
            if self.submitting:
                last_progress = max(last_progress, time.monotonic() - self.args.stall / 2)
            await asyncio.sleep(self.args.poll_interval)

    async def progress(self) -> None:
        while True:
            accepted = sum(1 for t in self.tracks if t.accepted is not None)
            decided = sum(1 for t in self.tracks if t.decided is not None)
            print(f"progress {accepted} {decided} {len(self.tracks)}", flush=True)
            await asyncio.sleep(0.5)

    # --- the run -------------------------------------------------------------------------------

    async def run(self) -> dict:
        a = self.args
        await self.setup()
        result: dict = {"mode": a.mode, "loop": a.loop, "offered_rate": a.rate if a.loop == "open" else None,
                        "declarations": a.declarations, "concurrency": a.concurrency, "available": True}
        if a.mode in ("batch", "ceb") and not await self.batch_available():
            result["available"] = False
            result["note"] = ("GET /ceb/v1/receipts did not answer 200: the CEB front door (spec §7.5) not available"
                              if a.mode == "ceb" else
                              "POST /v1/orders:batch answered 404/405: batch submission (spec §7.1) not available")
            return result
        units = self.units()
        self.request_latency.clear()
        self.statuses.clear()
        reporter = asyncio.create_task(self.progress())
        poller = asyncio.create_task(self.poller()) if not a.no_poll else None
        t0 = time.monotonic()
        if a.loop == "closed":
            await self.closed_loop(units)
        else:
            await self.open_loop(units)
        t_submitted = time.monotonic()
        self.submitting = False
        if poller:
            await poller
        reporter.cancel()
        accepted = [t for t in self.tracks if t.accepted is not None]
        decided = [t for t in self.tracks if t.decided is not None]
        submit_s = max([t.accepted for t in accepted], default=t_submitted) - t0
        result.update({
            "documents_accepted": self.accepted_docs,
            "declarations_accepted": len(accepted),
            "declarations_failed": sum(1 for t in self.tracks if t.failed),
            "submit_seconds": round(submit_s, 3),
            "accepted_docs_per_s": round(self.accepted_docs / submit_s, 2) if submit_s > 0 else None,
            "accepted_declarations_per_s": round(len(accepted) / submit_s, 2) if submit_s > 0 else None,
            "http_statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "requests": sum(self.statuses.values()),
            "transport_retries": self.retries,
            "rate_limited_retries": self.rate_limited,
            "documents_sent": sum(len(d["docs"]) for unit in units for d in unit[0]),
            "errors_sample": self.errors[:5],
            "gateway_latency_ms": percentiles(self.request_latency, 1000),
            "imports_only": self.docs.export_share == 0,
        })
        if a.mode == "ceb":
            result["ceb_records"] = dict(sorted(self.records.items()))
        if a.loop == "open":
            span = (units[-1][1][0].started - units[0][1][0].started) if len(units) > 1 else 0
            result["achieved_offered_rate"] = round((len(self.tracks) - len(units[-1][1])) / span, 2) if span else None
            result["scheduler_late_ms"] = percentiles(self.lateness, 1000)
        if not a.no_poll:
            decided_s = max([t.decided for t in decided], default=t0) - t0
            result.update({
                "declarations_decided": len(decided),
                "declarations_undecided": len(accepted) - len(decided),
                "decided_seconds": round(decided_s, 3),
                "decided_per_s": round(len(decided) / decided_s, 2) if decided_s > 0 else None,
                "end_to_end_latency_s": percentiles([t.decided - t.accepted for t in decided]),
                # from the first request (open loop: from when the declaration was due) to decided
                "start_to_decided_s": percentiles([t.decided - t.started for t in decided]),
                "customs_outcomes": dict(Counter(t.customs for t in accepted)),
                "status_polls": self.polls,
                "poll_interval_s": a.poll_interval,
            })
        return result


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    p.add_argument("--gateway", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--mode", choices=["single", "batch", "ceb"], default="single")
    p.add_argument("--loop", choices=["closed", "open"], default="closed")
    p.add_argument("--declarations", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE,
                   help="declarations per request (batch mode), records per message (ceb mode)")
    p.add_argument("--rate", type=float, default=10.0, help="declarations/s offered (open loop)")
    p.add_argument("--export-share", type=float, default=0.3)
    p.add_argument("--imports-only", action="store_true", help="imports in CNY only (what CEB mode plays)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--run-tag", default="")
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--poll-interval", type=float, default=0.5)
    p.add_argument("--poll-concurrency", type=int, default=8)
    p.add_argument("--stall", type=float, default=90, help="give up after this long without a new decision")
    p.add_argument("--no-poll", action="store_true", help="submit only (the bare-endpoint ceiling)")
    return p.parse_args(argv)


async def amain(args: argparse.Namespace) -> dict:
    load = Load(args)
    try:
        return await load.run()
    finally:
        await load.http.aclose()
        await load.poll_http.aclose()


def main(argv: list[str]) -> int:
    args = parse(argv)
    result = asyncio.run(amain(args))
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
