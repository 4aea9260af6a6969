"""The fault suite's clients: `make bench`'s load generator (bench.load: the same realistic declarations
from the reference data, the same enterprises registered through the operator API), driven in-process and
with a client that behaves as a careful platform must when the single window fails under it.

A document is idempotent by its business key (spec §3: an identical resubmission answers 200), so a client
that gets no answer (connection refused or reset: the gateway was killed) or a 5xx / 429 (503 + Retry-After:
the commit failed, nothing stored) sends the same document again, with backoff, until the gateway takes it
(200/202) or refuses it for good (another 4xx), or until `give_up` seconds have passed. What the inputs demand
is then known exactly: every declaration whose documents were all taken.
"""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from bench.load import Load, Track, parse


def declaration_facts(decl: dict) -> dict:
    """The parts of one generated declaration (bench.load.Documents.declaration) the checks need."""
    docs = {kind: body for kind, _, body in decl["docs"]}
    order = docs["orders"]
    return {
        "order_no": order["order_no"], "platform": order["platform_code"], "seller": order["ecommerce_code"],
        "direction": order["direction"], "items": len(order["items"]), "documents": len(decl["docs"]),
        "payment": (docs["payments"]["payment_code"], docs["payments"]["payment_no"]) if "payments" in docs else None,
        "waybill": (docs["waybills"]["logistics_code"], docs["waybills"]["waybill_no"]),
    }


class ChaosLoad(Load):
    """bench.load.Load with a client that resends until the gateway takes the document (module docstring).

    `run_tag` makes order numbers unique per fault; `rate` (declarations/s) paces the load in an open loop
    so that it spans the fault's window; 0 runs a closed loop of `concurrency` clients."""

    def __init__(self, gateway: str, *, declarations: int, mode: str, batch_size: int, concurrency: int,
                 rate: float, seed: int, run_tag: str, give_up: float = 300.0):
        args = parse(["--gateway", gateway, "--out", "-", "--mode", mode, "--declarations", str(declarations),
                      "--batch-size", str(batch_size), "--concurrency", str(concurrency), "--seed", str(seed),
                      "--run-tag", run_tag, "--timeout", "30", "--no-poll",
                      "--loop", "open" if rate > 0 else "closed", "--rate", str(rate or 1)])
        super().__init__(args)
        self.give_up = give_up
        self.declarations: list[dict] = []
        self.resends = 0
        self.document_5xx = 0  # documents answered 5xx inside a batch's 200, and sent again
        self.server_errors: dict[str, list[str]] = {}  # a few bodies of each 5xx answer, by request

    async def post(self, path: str, code: str, body: dict) -> httpx.Response | None:
        started = time.monotonic()
        delay = 0.2
        r: httpx.Response | None = None
        while True:
            try:
                r = await self.http.post(path, json=body, headers=self.auth(code))
                self.statuses[r.status_code] += 1
                if r.status_code >= 500:
                    sample = self.server_errors.setdefault(f"POST {path} {r.status_code}", [])
                    if len(sample) < 3:
                        sample.append(r.text[:300])
                if r.status_code < 500 and r.status_code != 429:
                    break
            except httpx.TransportError:
                r = None
                self.statuses[0] += 1
            if time.monotonic() - started > self.give_up:
                self.errors.append(f"{path}: gave up after {self.give_up:.0f}s "
                                   f"({r.status_code if r is not None else 'no answer'})")
                return None
            self.resends += 1
            retry_after = r.headers.get("retry-after") if r is not None else None
            await asyncio.sleep(min(float(retry_after), 5.0) if retry_after and retry_after.isdigit() else delay)
            delay = min(delay * 2, 5.0)
        self.request_latency.append(time.monotonic() - started)
        if r.status_code not in (200, 202):
            self.errors.append(f"{path} {r.status_code}: {r.text[:300]}")
        return r

    async def batch(self, decls: list[dict], tracks: list[Track]) -> None:
        """bench.load.Load.batch, except that a document answered 5xx inside the batch's 200 (spec §7.1:
        nothing of it stored) is sent again in the next request, as any 5xx is."""
        started = time.monotonic()
        for t in tracks:
            t.started = t.started or started
        failed: set[int] = set()
        for kind, code in (("orders", self.parties.platform), ("payments", self.parties.payer),
                           ("waybills", self.parties.carrier)):
            pending = [(n, body) for n, d in enumerate(decls) for k, _, body in d["docs"] if k == kind and n not in failed]
            while pending:
                r = await self.post(f"/v1/{kind}:batch", code, {"documents": [b for _, b in pending]})
                if r is None or r.status_code != 200:
                    failed.update(n for n, _ in pending)
                    break
                again = []
                for (n, body), result in zip(pending, r.json()["results"]):
                    if result["status"] in (200, 202):
                        self.accepted_docs += 1
                    elif result["status"] >= 500 and time.monotonic() - started < self.give_up:
                        again.append((n, body))
                        self.document_5xx += 1
                        sample = self.server_errors.setdefault(f"a document in POST /v1/{kind}:batch {result['status']}", [])
                        if len(sample) < 3:
                            sample.append(str(result.get("body"))[:300])
                    else:
                        failed.add(n)
                        self.errors.append(f"{kind}:batch[{result['index']}] {result['status']}: "
                                           f"{str(result.get('body'))[:200]}")
                pending = again
                if pending:
                    self.resends += 1
                    await asyncio.sleep(0.5)
        for n, t in enumerate(tracks):
            if n in failed:
                t.failed = True
            else:
                self.accept(t)

    def units(self) -> list[tuple[list[dict], list[Track]]]:
        units = super().units()
        self.declarations = [d for decls, _ in units for d in decls]
        return units

    async def play(self) -> None:
        """Registers the enterprises, then submits every declaration (closed or open loop)."""
        await self.setup()
        units = self.units()
        self.submitting = True
        if self.args.loop == "closed":
            await self.closed_loop(units)
        else:
            await self.open_loop(units)
        self.submitting = False

    def accepted(self) -> list[dict]:
        """The declarations whose documents the gateway all took: what the inputs demand of the mesh."""
        return [d for d, t in zip(self.declarations, self.tracks) if t.accepted is not None]

    def refused(self) -> list[str]:
        return [t.order_no for t in self.tracks if t.accepted is None]

    def accepted_by(self, moment: float) -> set[str]:
        """Order numbers whose last document was taken by time.monotonic() `moment`."""
        return {t.order_no for t in self.tracks if t.accepted is not None and t.accepted <= moment}

    async def close(self) -> None:
        await self.http.aclose()
        await self.poll_http.aclose()


@dataclass
class Duplicates:
    """What the same documents, each sent at the same moment by several clients, were answered."""

    per_document: dict[str, Counter] = field(default_factory=dict)

    def record(self, key: str, status: int) -> None:
        self.per_document.setdefault(key, Counter())[status] += 1

    def created_more_than_once(self) -> list[str]:
        """Documents answered 202 (created) more than once: the gateway believes it stored them twice."""
        return [k for k, c in self.per_document.items() if c[202] > 1]

    def never_created(self) -> list[str]:
        return [k for k, c in self.per_document.items() if c[202] == 0]

    def answers(self) -> dict[str, int]:
        total: Counter = Counter()
        for c in self.per_document.values():
            total.update(c)
        return {str(k): v for k, v in sorted(total.items())}


async def submit_concurrently(load: ChaosLoad, clients: int, concurrency: int) -> Duplicates:
    """Every document of every declaration sent by `clients` clients at once (the order first, then its
    payment and waybill, as a platform and its partners would), `concurrency` declarations at a time.
    Spec §3: one of the identical submissions creates (202), the others answer 200, one is stored.
    In batch mode the same batch request is sent by every client at once, and each document's status
    inside the batch answers counts the same way (spec §7.1)."""
    await load.setup()
    units = load.units()
    seen = Duplicates()
    gate = asyncio.Semaphore(concurrency)

    async def batch(decls: list[dict], tracks: list[Track]) -> None:
        async with gate:
            for t in tracks:
                t.started = time.monotonic()
            failed: set[int] = set()
            for kind in ("orders", "payments", "waybills"):
                members = [(n, code, body) for n, d in enumerate(decls) for k, code, body in d["docs"]
                           if k == kind and n not in failed]
                if not members:
                    continue
                answers = await asyncio.gather(*(load.post(f"/v1/{kind}:batch", members[0][1],
                                                           {"documents": [b for _, _, b in members]})
                                                 for _ in range(clients)))
                taken: set[int] = set()
                for r in answers:
                    if r is None or r.status_code != 200:
                        for n, _, _ in members:
                            seen.record(f"{kind}:{decls[n]['order_no']}", r.status_code if r is not None else 0)
                        continue
                    for (n, _, _), result in zip(members, r.json()["results"]):
                        seen.record(f"{kind}:{decls[n]['order_no']}", result["status"])
                        if result["status"] in (200, 202):
                            taken.add(n)
                load.accepted_docs += len(taken)
                failed.update(n for n, _, _ in members if n not in taken)
            for n, t in enumerate(tracks):
                if n in failed:
                    t.failed = True
                else:
                    load.accept(t)

    if load.args.mode == "batch":
        await asyncio.gather(*(batch(decls, tracks) for decls, tracks in units))
        return seen

    async def one(decl: dict, track: Track) -> None:
        async with gate:
            track.started = time.monotonic()
            for kind, code, body in decl["docs"]:
                answers = await asyncio.gather(*(load.post(f"/v1/{kind}", code, body) for _ in range(clients)))
                for r in answers:
                    seen.record(f"{kind}:{decl['order_no']}", r.status_code if r is not None else 0)
                if not any(r is not None and r.status_code in (200, 202) for r in answers):
                    track.failed = True
                    return
                load.accepted_docs += 1
            load.accept(track)

    await asyncio.gather(*(one(decls[0], tracks[0]) for decls, tracks in units))
    return seen
