"""`make demo`: plays a few hundred realistic orders through the gateway, as platforms, payment firms and
logistics firms would, then prints what every agency decided and why.

The traffic is drawn from the HS catalogue: imports of positive-list goods, exports to several countries,
B2B exports, and a share that must be refused (wrong payment amount, wrong payer, goods off the positive
list, prohibited goods, over the single limit, a buyer over the annual limit). One seller is driven onto
the negative list by repeated prohibited goods; one exporter crosses the FX directory threshold.

A share of the ordinary parcels (SW_DEMO_CEB_SHARE, default 0.3) arrive as customs' own XML messages at the
CEB front door instead (deploy/demo_ceb.py), each from its own sender, in mixed order; some enterprises are
registered with a customs code and named by it. The demo waits for their decisions like the others' and
prints a CEB section: messages sent, the synchronous receipts, and the sellers' polling feed by status.

Progress (rich): on a terminal, a live bar per phase; in a log (CI), each bar once, when the demo is done.
It ends with the address of the operator console on the gateway."""
from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from collections import Counter
from decimal import Decimal

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from contracts.identifiers import USCC_ALPHABET, resident_id_check_character, uscc_check_character
from deploy.demo_ceb import CebTraffic
from shared.reference import hs_catalogue
from shared.settings import settings

ADMIN = {"Authorization": f"Bearer {settings().sw_admin_token}"}
rng = random.Random(int(os.environ.get("SW_DEMO_SEED", time.time_ns())))  # a fresh sample each run; set it to replay one
COUNTRIES = ["US", "GB", "DE", "FR", "JP", "AU", "SG", "MY", "TH", "BR"]
NAMES = ["Zhang San", "Li Si", "Wang Wu", "Zhao Liu", "Chen Qi", "Liu Yang", "Huang Mei", "Zhou Lan"]


def uscc() -> str:
    first = "91" + "".join(rng.choice(USCC_ALPHABET) for _ in range(15))
    return first + uscc_check_character(first)


def resident_id() -> str:
    first = f"110101{rng.randint(1960, 2004)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randrange(1000):03d}"
    return first + resident_id_check_character(first)


def money(x: Decimal) -> str:
    return f"{x.quantize(Decimal('0.01')):.2f}"


class Demo:
    def __init__(self, base_url: str, bar: Progress):
        self.http = httpx.AsyncClient(base_url=base_url, timeout=60)
        self.bar = bar
        self.task: TaskID | None = None
        self.keys: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.customs_codes: dict[str, str] = {}  # our code -> customs code, for those registered with one
        self.orders: list[dict] = []  # {"platform", "order_no", "story", "ecommerce"}
        self.sem = asyncio.Semaphore(16)
        self.numbers = iter(range(1, 10**9))
        self.latencies: list[float] = []  # seconds per request, measured inside the concurrency limit
        self.run_id = f"{int(time.time()) % 10**6:06d}"

    def phase(self, description: str, total: int | None = None) -> None:
        """Starts the next bar; `total` None when the count is known only at the end (`done`)."""
        self.task = self.bar.add_task(description, total=total)

    def tick(self) -> None:
        if self.task is not None:
            self.bar.advance(self.task)

    def done(self) -> None:
        if self.task is not None:
            self.bar.update(self.task, total=self.bar.tasks[self.task].completed)

    async def register(self, label: str, roles: list[str], credit: str = "general", customs_code: bool = False) -> str:
        """Registers an enterprise; `customs_code`: with a 10-character customs code too (spec §7.5), unique
        per run: "33" (a Zhejiang office), the run id and a counter."""
        code, name = uscc(), f"{label} Co., Ltd."
        body = {"code": code, "name": name, "roles": roles, "country": "CN", "customs_credit": credit}
        if customs_code:
            body["customs_code"] = f"33{self.run_id}{len(self.customs_codes):02d}"
        r = await self.http.post("/v1/enterprises", headers=ADMIN, json=body)
        r.raise_for_status()
        self.keys[code], self.names[code] = r.json()["api_key"], name
        if customs_code:
            self.customs_codes[code] = body["customs_code"]
        self.tick()
        return code

    def auth(self, code: str) -> dict:
        return {"Authorization": f"Bearer {self.keys[code]}"}

    async def post(self, path: str, code: str, body: dict) -> httpx.Response:
        async with self.sem:
            started = time.perf_counter()
            r = await self.http.post(path, json=body, headers=self.auth(code))
            self.latencies.append(time.perf_counter() - started)
        if r.status_code not in (200, 202):
            raise RuntimeError(f"{path} answered {r.status_code}: {r.text}")
        return r

    async def setup(self) -> None:
        self.phase("enterprises registered")
        # Some enterprises also have a customs code: the CEB messages name them by it.
        self.platform = await self.register("Tmall Global Demo", ["platform"], customs_code=True)
        self.platform2 = await self.register("JD Worldwide Demo", ["platform", "ecommerce"])
        self.sellers = [await self.register(f"Seller {i}", ["ecommerce"], customs_code=i == 1) for i in range(3)]
        self.aeo_seller = await self.register("AEO Seller", ["ecommerce"], "advanced")
        self.shady = await self.register("Shady Seller", ["ecommerce"])
        self.exporter = await self.register("Yiwu B2B Exporter", ["ecommerce"])
        self.payer = await self.register("Demo Pay", ["payment"], customs_code=True)
        self.carrier = await self.register("Demo Express", ["logistics"], customs_code=True)
        self.done()
        self.ceb = CebTraffic(self.http, self.keys, self.customs_codes, self.names, rng)

    def import_order(self, platform: str, seller: str, story: str, *, items: list[dict] | None = None,
                     buyer: tuple[str, str] | None = None) -> dict:
        catalogue = [e for e in hs_catalogue().values() if e.positive_list and not e.prohibited]
        if items is None:
            items = []
            for n in range(rng.choice([1, 1, 2, 3])):
                entry = rng.choice(catalogue)
                items.append({"item_no": f"SKU-{n + 1}", "name": entry.description[:60], "hs_code": entry.hs_code,
                              "quantity": rng.choice([1, 1, 2, 3]), "unit": "piece",
                              "unit_price": money(Decimal(rng.randint(2000, 60000)) / 100),
                              "origin_country": rng.choice(["FR", "JP", "KR", "US", "DE", "AU", "IT"])})
        goods = sum(Decimal(str(i["quantity"])) * Decimal(i["unit_price"]) for i in items)
        freight, discount = Decimal(rng.choice([0, 8, 12, 20])), Decimal(rng.choice([0, 0, 5, 10]))
        tax = (goods * Decimal("0.091")).quantize(Decimal("0.01"))
        name, id_number = buyer or (rng.choice(NAMES), resident_id())
        order_no = f"ORD-{self.run_id}-{next(self.numbers):05d}"
        return {
            "order_no": order_no, "platform_code": platform, "ecommerce_code": seller, "direction": "import",
            "trade_mode": rng.choice(["9610", "9610", "1210"]), "currency": "CNY", "items": items,
            "freight": money(freight), "insurance": "0.00", "discount": money(discount), "tax_total": money(tax),
            "actual_paid": money(goods + freight - discount + tax),
            "buyer": {"name": name, "id_type": "resident_id", "id_number": id_number, "phone": "13800000000"},
            "consignee": {"name": name, "phone": "13800000000", "address": "88 Demo Road, Hangzhou", "country": "CN"},
            "_story": story,
        }

    def export_order(self, platform: str, seller: str, story: str, *, trade_mode: str = "9610",
                     value_range: tuple[int, int] = (50, 900), hs_code: str | None = None) -> dict:
        entries = [e for e in hs_catalogue().values() if not e.prohibited]
        entry = hs_catalogue()[hs_code] if hs_code else rng.choice(entries)
        qty = rng.randint(1, 5) if trade_mode == "9610" else rng.randint(1500, 2500)
        price = Decimal(rng.randint(*value_range))
        freight = Decimal(rng.choice([15, 25, 40]))
        country = rng.choice(COUNTRIES)
        return {
            "order_no": f"EXP-{self.run_id}-{next(self.numbers):05d}", "platform_code": platform,
            "ecommerce_code": seller, "direction": "export", "trade_mode": trade_mode, "currency": "CNY",
            "items": [{"item_no": "SKU-1", "name": entry.description[:60], "hs_code": entry.hs_code, "quantity": qty,
                       "unit": "piece", "unit_price": money(price), "origin_country": "CN"}],
            "freight": money(freight), "insurance": "0.00", "discount": "0.00", "tax_total": "0.00",
            "actual_paid": money(qty * price + freight), "destination_country": country,
            "consignee": {"name": "Jane Doe", "phone": "+1 555 0100", "address": "1 Main St", "country": country},
            "_story": story,
        }

    def payment_body(self, order: dict, amount: str | None = None, payer_name: str | None = None) -> dict:
        buyer = order["buyer"]
        return {
            "payment_no": "PAY-" + order["order_no"], "payment_code": self.payer, "order_no": order["order_no"],
            "platform_code": order["platform_code"], "amount": amount or order["actual_paid"], "currency": "CNY",
            "payer": {"name": payer_name or buyer["name"], "id_type": "resident_id", "id_number": buyer["id_number"]},
            "paid_at": "2026-11-24T10:00:00+08:00"}

    def waybill_body(self, order: dict, freight: str | None = None) -> dict:
        return {
            "waybill_no": "SF" + order["order_no"], "logistics_code": self.carrier, "order_no": order["order_no"],
            "platform_code": order["platform_code"], "freight": freight or order["freight"], "insured_fee": "0.00",
            "gross_weight_kg": "1.2", "package_count": 1, "consignee": order["consignee"]}

    def track(self, order: dict, story: str) -> None:
        """The order joins those the demo waits for and reports on."""
        self.orders.append({"platform": order["platform_code"], "order_no": order["order_no"], "story": story,
                            "ecommerce": order["ecommerce_code"], "direction": order["direction"],
                            "waybill_no": "SF" + order["order_no"]})

    async def submit(self, order: dict, *, payment_amount: str | None = None, payer_name: str | None = None,
                     waybill_freight: str | None = None) -> None:
        story = order.pop("_story")
        await self.post("/v1/orders", order["platform_code"], order)
        if order["direction"] == "import":
            await self.post("/v1/payments", self.payer, self.payment_body(order, payment_amount, payer_name))
        await self.post("/v1/waybills", self.carrier, self.waybill_body(order, waybill_freight))
        self.track(order, story)
        self.tick()

    def submit_or_ceb(self, order: dict, jobs: list, *, payment_amount: str | None = None,
                      payer_name: str | None = None, waybill_freight: str | None = None) -> None:
        """Adds the parcel to the CEB share (a CEB_SHARE of the parcels the writer can express) or, as a REST
        submission, to `jobs`. A CEB parcel's import order names its payment firm and transaction (payCode,
        payTransactionId), as customs' CEB311 does."""
        if self.ceb.wants():
            story = order.pop("_story")
            ceb_order = dict(order)
            if order["direction"] == "import":
                ceb_order.update(payment_code=self.payer, payment_transaction_id="PAY-" + order["order_no"])
            payment = self.payment_body(ceb_order, payment_amount, payer_name) if order["direction"] == "import" else None
            if self.ceb.add(ceb_order, f"{story} (CEB)", payment, self.waybill_body(ceb_order, waybill_freight)):
                return
            order["_story"] = story
        jobs.append(self.submit(order, payment_amount=payment_amount, payer_name=payer_name,
                                waybill_freight=waybill_freight))

    async def play(self, imports: int, exports: int) -> None:
        jobs = []
        for _ in range(imports):
            platform = rng.choice([self.platform, self.platform2])
            # Seller 0 keeps a clean record: it carries the special cases below, so their reasons are visible.
            seller = rng.choice(self.sellers[1:] + [self.aeo_seller, self.platform2])
            roll = rng.random()
            order = self.import_order(platform, seller, "import")
            if roll < 0.02:
                order["_story"] = "payment amount differs"
                self.submit_or_ceb(order, jobs, payment_amount=money(Decimal(order["actual_paid"]) + 1))
            elif roll < 0.035:
                order["_story"] = "payer is not the buyer"
                self.submit_or_ceb(order, jobs, payer_name="Someone Else")
            elif roll < 0.045:
                order["_story"] = "waybill freight differs"
                self.submit_or_ceb(order, jobs, waybill_freight=money(Decimal(order["freight"]) + 5))
            else:
                self.submit_or_ceb(order, jobs)
        seller = self.sellers[0]
        jobs.append(self.submit(self.import_order(self.platform, seller, "cigarettes (not on positive list)", items=[
            {"item_no": "SKU-1", "name": "Cigarettes", "hs_code": "2402200000", "quantity": 2, "unit": "carton",
             "unit_price": "300.00", "origin_country": "JP"}])))
        jobs.append(self.submit(self.import_order(self.platform, seller, "3 handbags at 2,000 (over single limit)", items=[
            {"item_no": "SKU-1", "name": "Handbag", "hs_code": "4202210090", "quantity": 3, "unit": "piece",
             "unit_price": "2000.00", "origin_country": "IT"}])))
        jobs.append(self.submit(self.import_order(self.platform, seller, "one laptop at 8,000 (general trade)", items=[
            {"item_no": "SKU-1", "name": "Laptop", "hs_code": "8471300000", "quantity": 1, "unit": "piece",
             "unit_price": "8000.00", "origin_country": "US"}])))
        whale = ("Qian Duoduo", resident_id())
        for i in range(7):
            jobs.append(self.submit(self.import_order(self.platform, seller, f"buyer's order {i + 1} of 7 at ~4,800", buyer=whale, items=[
                {"item_no": "SKU-1", "name": "Wrist-watch", "hs_code": "9102110000", "quantity": 1, "unit": "piece",
                 "unit_price": "4700.00", "origin_country": "CH"}])))
        for _ in range(exports):
            self.submit_or_ceb(self.export_order(rng.choice([self.platform, self.platform2]),
                                                 rng.choice(self.sellers[1:]), "retail export"), jobs)
        for _ in range(4):  # at least 4 x 1,500 x 300 = CNY 1.8M: past the USD 200,000 directory threshold
            jobs.append(self.submit(self.export_order(self.platform, self.exporter, "B2B export (9710)",
                                                      trade_mode="9710", value_range=(300, 500), hs_code="8509400090")))
        jobs.append(self.submit(self.export_order(self.platform, self.sellers[1], "export of arms (prohibited)",
                                                  hs_code="9304000000")))
        # The whale's orders race for one buyer's annual quota; they must not all slip under 26,000.
        self.phase("orders submitted, with payments and waybills", total=len(jobs))
        ceb_messages = self.ceb.messages()
        ceb_bar = self.bar.add_task("CEB messages sent (the parcels' other share)",
                                    total=sum(len(s) for s in ceb_messages))
        await asyncio.gather(*jobs, self.ceb.send(ceb_messages, lambda: self.bar.advance(ceb_bar)))
        for parcel in self.ceb.delivered():
            self.track(parcel.order, parcel.story)

    async def drive_onto_negative_list(self) -> None:
        self.phase("orders of a seller driven onto the negative list", total=4)
        for i in range(3):
            await self.submit(self.import_order(self.platform, self.shady, f"live animals #{i + 1} (prohibited)", items=[
                {"item_no": "SKU-1", "name": "Live mammal", "hs_code": "0106190090", "quantity": 1, "unit": "piece",
                 "unit_price": "200.00", "origin_country": "TH"}]))
            await self.wait_decided(self.orders[-1:])
        await self.wait_for(lambda e: e["credit"]["negative_listed"], self.shady, "the shady seller to be negative-listed")
        await self.submit(self.import_order(self.platform, self.shady, "a face cream, after the negative listing", items=[
            {"item_no": "SKU-1", "name": "Face cream", "hs_code": "3304990099", "quantity": 1, "unit": "piece",
             "unit_price": "180.00", "origin_country": "FR"}]))

    async def status(self, o: dict) -> dict:
        """The order's one-stop status view. A poll is a read, so a connection lost under load (seen once on a
        busy machine: httpcore.ReadError in a burst of a few hundred polls) is tried again, up to three times."""
        for attempt in range(3):
            try:
                r = await self.http.get(f"/v1/orders/{o['platform']}/{o['order_no']}", headers=ADMIN)
                break
            except httpx.TransportError:
                if attempt == 2:
                    raise
                await asyncio.sleep(0.5)
        r.raise_for_status()
        return r.json()

    async def wait_decided(self, orders: list[dict], timeout: float = 240, shown: bool = False) -> list[dict]:
        """The status views of `orders` once each is settled (customs decided, and tax and FX too where customs
        released, rejected or cancelled), or as they stand after `timeout` seconds; `shown`: as a bar."""
        deadline = time.time() + timeout
        if shown:
            self.phase("orders decided (or held for inspection)", total=len(orders))
        while True:
            views = await asyncio.gather(*(self.status(o) for o in orders))
            settled = [v for v in views if v["customs"]["status"] != "pending" and
                       (v["customs"]["status"] not in ("released", "rejected", "cancelled") or
                        (v["tax"]["status"] != "pending" and v["fx"]["status"] != "pending"))]
            if shown:
                self.bar.update(self.task, completed=len(settled))
            if len(settled) == len(views) or time.time() > deadline:
                return views
            await asyncio.sleep(1)

    async def wait_for(self, predicate, code: str, what: str, timeout: float = 120) -> dict:  # noqa: ANN001
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = await self.http.get(f"/v1/enterprises/{code}", headers=ADMIN)
            if r.status_code == 200 and predicate(r.json()):
                return r.json()
            await asyncio.sleep(1)
        raise RuntimeError(f"timed out waiting for {what}")


def table(title: str, rows: list[tuple], headers: tuple) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)] if rows else [len(h) for h in headers]
    print(f"\n{title}")
    print("  " + "  ".join(str(h).ljust(w) for h, w in zip(headers, widths)))
    print("  " + "  ".join("-" * w for w in widths))
    for row in rows:
        print("  " + "  ".join(str(x).ljust(w) for x, w in zip(row, widths)))


async def main() -> int:
    bar = Progress(TextColumn("{task.description:<50}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    demo = Demo(settings().sw_gateway_url, bar)
    started = time.time()
    with bar:
        await demo.setup()
        await demo.play(imports=int(os.environ.get("SW_DEMO_IMPORTS", "220")),
                        exports=int(os.environ.get("SW_DEMO_EXPORTS", "80")))
        submitted = time.time()
        await demo.drive_onto_negative_list()
        views = await demo.wait_decided(demo.orders, shown=True)
    print(f"submitted {len(demo.orders)} orders with their payments and waybills in {submitted - started:.1f}s")
    by_no = {v["order_no"]: v for v in views}
    undecided = [v for v in views if v["customs"]["status"] == "pending"]

    outcome = Counter()
    for o in demo.orders:
        v = by_no[o["order_no"]]
        reasons = ",".join(r["code"] for r in v["customs"]["reasons"]) or "-"
        outcome[(o["story"] if o["story"] not in ("import", "retail export") else o["story"],
                 v["customs"]["status"], v["customs"]["channel"] or "-", reasons)] += 1
    table("What customs decided, and why", sorted(((s, st, ch, r, n) for (s, st, ch, r), n in outcome.items()),
                                                  key=lambda x: (x[0], x[1])),
          ("traffic", "customs", "channel", "reasons", "orders"))

    tax = Counter(v["tax"]["status"] for v in views)
    collected = sum(Decimal(v["tax"].get("total") or 0) for v in views if v["tax"]["status"] in ("assessed", "general_trade"))
    table("Tax", [(k, n) for k, n in sorted(tax.items())] + [("collected (CNY)", money(collected))], ("status", "orders"))
    fx = Counter(v["fx"]["status"] for v in views)
    settled = sum(Decimal(v["fx"].get("amount_usd") or 0) for v in views if v["fx"]["status"] == "settled")
    table("Foreign exchange", [(k, n) for k, n in sorted(fx.items())] + [("settled (USD)", money(settled))], ("status", "orders"))
    logistics = Counter(v["logistics"]["status"] for v in views)
    table("Logistics", sorted(logistics.items()), ("shipment status", "orders"))

    rows = []
    for label, code in [("Shady Seller", demo.shady), ("Yiwu B2B Exporter", demo.exporter), ("AEO Seller", demo.aeo_seller),
                        ("Seller 0", demo.sellers[0])]:
        e = (await demo.http.get(f"/v1/enterprises/{code}", headers=ADMIN)).json()
        rows.append((label, e["customs"]["credit_category"], e["credit"]["score"], e["credit"]["grade"],
                     "yes" if e["credit"]["negative_listed"] else "no", e["fx"]["directory_status"], e["fx"]["year_to_date_usd"]))
    table("Enterprises, as every agency sees them", rows,
          ("enterprise", "customs category", "credit score", "grade", "negative list", "FX directory", "FX YTD (USD)"))

    ceb_ok = await demo.ceb.report({p.order["order_no"]: by_no[p.order["order_no"]]["customs"]["status"]
                                     for p in demo.ceb.delivered()})

    stats = (await demo.http.get("/v1/stats", headers=ADMIN)).json()
    print(f"\ndecision time (complete documents -> customs): median {stats['decision_time_seconds']['median']}s, "
          f"p95 {stats['decision_time_seconds']['p95']}s over {stats['decision_time_seconds']['count']} orders")
    print(f"total {time.time() - started:.1f}s")
    print(f"\noperator console: {settings().sw_gateway_url}/console (sign in with the operator token, SW_ADMIN_TOKEN)")
    await demo.http.aclose()
    if undecided:
        print(f"\n{len(undecided)} orders still undecided", file=sys.stderr)
        return 1
    if not ceb_ok:
        print("\nthe CEB front door's receipts are not what they should be (see the CEB section)", file=sys.stderr)
        return 1
    print(f"\nThe mesh is still running (make down stops it). Operator console: {settings().sw_gateway_url}/console "
          "(sign in with the operator token, SW_ADMIN_TOKEN)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
