"""`make chaos`: the fault suite. Nothing lost, nothing doubled, under every fault.

    python -m chaos                                    # every fault, the sizes below; results in chaos/results/
    SW_CHAOS_FAULTS=kill:customs,postgres SW_CHAOS_DECLARATIONS=300 python -m chaos

It starts its own broker (deploy/kafka/start.sh), its own durable PostgreSQL (`make bench`'s
start_durable_postgres: fsync, synchronous_commit and full_page_writes on) and its own mesh (deploy.mesh.Mesh
on free ports, a temporary run directory, customs' base inspection rate 0 so that every valid declaration
must be released). Then, for each fault of SW_CHAOS_FAULTS, one *fault run*:

1. a load of SW_CHAOS_DECLARATIONS declarations (chaos.load: bench's realistic imports and exports, fresh
   enterprises per run, a client that resends until the gateway takes each document), paced at
   SW_CHAOS_RATE declarations/s so the fault meets them in flight;
2. the fault (chaos.faults), injected at a random moment of the load (seeded by SW_CHAOS_SEED) and healed;
3. the mesh settles: every declaration taken is answered by customs, tax, FX and logistics in the one-stop
   view and every outbox is drained, or nothing moved for SW_CHAOS_STALL_SECONDS;
4. every service's database and every topic are compared with what the inputs demand (chaos.checks).

Faults (SW_CHAOS_FAULTS, comma-separated, default all): `kill:<service>` for each service (kill -9 at
SW_CHAOS_KILLS random moments, then started again), `broker` (kill -9, down SW_CHAOS_BROKER_DOWN_SECONDS),
`postgres` (pg_ctl stop -m immediate, down SW_CHAOS_PG_DOWN_SECONDS), `slow:<service>` (a second instance
joins the group, the first is frozen SW_CHAOS_STOP_SECONDS), `duplicates` (every document sent by
SW_CHAOS_DUPLICATE_CLIENTS clients at once; `duplicates:batch`: every batch request), `down:<service>`
(the agency stopped SW_CHAOS_DOWN_SECONDS while intake goes on).

The table: fault, documents, lost, duplicated, wrong, time to recover (from the heal to every declaration
taken before it being answered everywhere); a fault run passes with zero lost, duplicated and wrong and
every declaration taken. Results: chaos/results/<timestamp>.json, latest.json and latest.md (the table
docs/reliability.md includes). The exit status is 1 when any fault run fails.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path


from bench.__main__ import machine, start_durable_postgres
from chaos import checks, faults, report
from chaos.load import ChaosLoad, Duplicates, declaration_facts, submit_concurrently
from deploy.mesh import ROOT, SERVICE_PORTS, Mesh, free_port

RESULTS = ROOT / "chaos" / "results"
ALL_FAULTS = ",".join([f"kill:{s}" for s in SERVICE_PORTS] +
                      ["broker", "postgres", "slow:customs", "slow:fx", "duplicates", "duplicates:batch", "down:fx"])


def _env(name: str, default: str) -> str:
    return os.environ.get(f"SW_CHAOS_{name}", default)


@dataclass
class Config:
    """The suite's settings, each from SW_CHAOS_<NAME> (the sizes are for the 2-core reference machine)."""

    faults: list[str] = field(default_factory=lambda: [f for f in _env("FAULTS", ALL_FAULTS).split(",") if f])
    declarations: int = int(_env("DECLARATIONS", "2000"))  # per fault run
    rate: float = float(_env("RATE", "40"))  # declarations/s offered; 0: closed loop
    mode: str = _env("MODE", "batch")  # batch (the §7.1 endpoints) or single
    batch_size: int = int(_env("BATCH_SIZE", "20"))
    concurrency: int = int(_env("CONCURRENCY", "16"))
    kills: int = int(_env("KILLS", "2"))  # kill -9 moments per `kill:` fault run
    broker_down: float = float(_env("BROKER_DOWN_SECONDS", "10"))
    pg_down: float = float(_env("PG_DOWN_SECONDS", "10"))
    stop_seconds: float = float(_env("STOP_SECONDS", "15"))  # > the consumers' 10 s session timeout
    down_seconds: float = float(_env("DOWN_SECONDS", "120"))
    duplicate_clients: int = int(_env("DUPLICATE_CLIENTS", "4"))
    duplicate_declarations: int = int(_env("DUPLICATE_DECLARATIONS", "300"))
    stall: float = float(_env("STALL_SECONDS", "120"))  # give up settling after this long without progress
    give_up: float = float(_env("GIVE_UP_SECONDS", "300"))  # a client stops resending a document after this
    seed: int = int(_env("SEED", "1"))
    out: Path = Path(_env("OUT", str(RESULTS)))
    keep: bool = _env("KEEP", "0") == "1"  # keep the run directory (logs, data) even when everything passed


class FaultRun:
    """One fault under one load: what the fault functions (chaos.faults) see and mark."""

    def __init__(self, suite: "Chaos", name: str, load: ChaosLoad, duration: float):
        self.suite, self.name, self.load, self.duration = suite, name, load, duration
        self.c, self.mesh, self.pg_dir, self.pg_port = suite.c, suite.mesh, suite.pg_dir, suite.pg_port
        self.started = time.monotonic()
        self.heal_at: float | None = None
        self.notes: list[str] = []
        self.details: dict = {}
        self.cleanup: list[Callable[[], None]] = []

    async def at_random_moment(self) -> None:
        """Sleeps until a moment drawn uniformly from 15–85 % of the load's expected duration."""
        moment = self.started + self.suite.rng.uniform(0.15, 0.85) * max(self.duration, 1.0)
        await asyncio.sleep(max(0.0, moment - time.monotonic()))

    def note(self, text: str) -> None:
        self.notes.append(f"t+{time.monotonic() - self.started:.1f}s {text}")
        self.suite.say(f"  {self.notes[-1]}")

    def healed(self) -> None:
        self.heal_at = time.monotonic()

    async def wait_healthy(self, names: list[str], ports: dict[str, int] | None = None) -> None:
        await asyncio.to_thread(self.mesh.wait_healthy, names, 240, ports)

    async def answered(self) -> dict[str, int]:
        """How many of this run's orders each agency has answered in the one-stop view so far."""
        rows = await checks.fetch(self.pg_port, "gateway", """
            SELECT agency, count(*) AS n FROM agency_views WHERE platform_code = $1
              AND (view::jsonb ->> 'status') <> 'pending' GROUP BY agency""", self.load.parties.platform)
        return {r["agency"]: r["n"] for r in rows}


class Chaos:
    def __init__(self, config: Config, say: Callable[[str], None] = print):
        self.c = config
        self._say = say
        self.rng = random.Random(config.seed)
        self.work = Path(tempfile.mkdtemp(prefix="sw-chaos-"))
        os.chmod(self.work, 0o755)  # the postgres user must reach its data directory
        self.pg_dir = self.work / "pg"
        self.pg_port = 0
        self.mesh = Mesh(self.work / "mesh", ports={name: free_port() for name in SERVICE_PORTS},
                         env={"CUSTOMS_BASE_INSPECTION_RATE": "0", "SW_ADMIN_TOKEN": "dev-admin-token",
                              "LOG_LEVEL": "WARNING"})
        self.ledger: checks.TopicLedger | None = None
        self.last_accepted: list[dict] = []  # chaos.load.declaration_facts of the last fault run's inputs
        self.t0 = time.monotonic()

    def say(self, text: str) -> None:
        self._say(f"{time.strftime('%H:%M:%S')} {text}")

    # --- the mesh ----------------------------------------------------------------------------------

    def start(self) -> None:
        self.say(f"starting broker, durable PostgreSQL and mesh in {self.work}")
        self.mesh.start_broker()
        self.mesh.create_topics()
        self.pg_port = start_durable_postgres(self.pg_dir)
        self.mesh.env.update({f"{n.upper()}_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{self.pg_port}/{n}"
                              for n in SERVICE_PORTS})
        for name in self.mesh.ports:
            self.mesh.start_service(name)
        self.mesh.wait_healthy(list(self.mesh.ports), timeout=300)
        self.ledger = checks.TopicLedger(self.mesh.bootstrap)

    def stop(self) -> None:
        self.mesh.down()
        faults.subprocess.run([str(ROOT / "deploy/postgres/stop.sh"), str(self.pg_dir)], check=False)

    # --- one fault run -------------------------------------------------------------------------------

    async def fault_run(self, index: int, name: str) -> dict:
        c = self.c
        fault = faults.by_name(name)
        duplicates = name.startswith("duplicates")
        n = min(c.declarations, c.duplicate_declarations) if duplicates else c.declarations
        mode = ("batch" if name == "duplicates:batch" else "single") if duplicates else c.mode
        rate = c.rate
        if name.startswith("down:") and rate > 0:  # the load spans the agency's absence
            rate = min(rate, n / (c.down_seconds + min(5.0, c.down_seconds * 0.1) + 5))
        load = ChaosLoad(self.mesh.url("gateway"), declarations=n, mode=mode,
                         batch_size=c.batch_size, concurrency=c.concurrency, rate=0 if duplicates else rate,
                         seed=c.seed + index, run_tag=f"C{index:02d}{int(time.time()) % 10**5:05d}", give_up=c.give_up)
        duration = n / rate if rate > 0 else n / 20
        self.say(f"[{index}] {name}: {n} declarations" + (f" at {rate:.1f}/s" if rate and not duplicates else ""))
        run = FaultRun(self, name, load, duration)
        seen: Duplicates | None = None
        try:
            if duplicates:
                seen = await submit_concurrently(load, c.duplicate_clients, c.concurrency)
                await fault(run)
            else:
                # the parties first, so the fault meets documents, not registrations
                await load.setup()
                if hasattr(fault, "prepare"):
                    await fault.prepare(run)
                load.setup = _done  # type: ignore[method-assign]
                run.started = time.monotonic()
                await asyncio.gather(load.play(), fault(run))
            accepted = [declaration_facts(d) for d in load.accepted()]
            self.last_accepted = accepted
            settle = await self.settle(run, accepted)
            verdict = await checks.compare(self.pg_port, self.ledger, accepted)
        finally:
            await load.close()
            for undo in run.cleanup:
                await asyncio.to_thread(undo)
        if seen is not None:
            self.judge_duplicates(verdict, seen)
            run.details["answers"] = seen.answers()
        refused = load.refused()
        if load.statuses.get(500) or load.document_5xx:
            # Not a loss (the client sends again), but an outage is 503 + Retry-After, never 500.
            run.note(f"the gateway answered {load.statuses.get(500, 0)} requests 500 (and {load.document_5xx} documents "
                     f"inside batches 5xx) instead of 503; sent again: "
                     + "; ".join(k for k in load.server_errors if " 503" not in k))
        passed = not (verdict.lost or verdict.duplicated or verdict.wrong or refused)
        row = {"fault": name, "declarations": n, "documents": sum(d["documents"] for d in accepted),
               "taken": len(accepted), "refused": len(refused), "refused_examples": refused[:5],
               "lost": verdict.lost, "duplicated": verdict.duplicated, "wrong": verdict.wrong,
               "recover_seconds": settle["recover_seconds"], "settle_seconds": settle["settle_seconds"],
               "settled": settle["settled"], "passed": passed, "notes": run.notes, **run.details,
               "http_statuses": {str(k): v for k, v in sorted(load.statuses.items())}, "resends": load.resends,
               "batch_documents_5xx": load.document_5xx, "server_errors_sample": load.server_errors,
               "client_errors": load.errors[:5], "checks": verdict.summary()["checks"]}
        self.say(f"[{index}] {name}: {'PASS' if passed else 'FAIL'} — {row['documents']} documents, lost "
                 f"{verdict.lost}, duplicated {verdict.duplicated}, wrong {verdict.wrong}, refused {len(refused)}, "
                 f"recovered in {report.seconds(row['recover_seconds'])}")
        for chk in row["checks"]:
            if chk["lost"] or chk["duplicated"] or chk["wrong"]:
                self.say(f"    {chk['name']}: lost {chk['lost']}, duplicated {chk['duplicated']}, wrong {chk['wrong']} "
                         f"{json.dumps(chk['examples'])[:400]}")
        return row

    @staticmethod
    def judge_duplicates(verdict: checks.Verdict, seen: Duplicates) -> None:
        """Spec §3: of identical submissions exactly one creates (202); the others answer 200."""
        c = verdict.check("one 202 per document, 200 for its copies")
        c.expected += len(seen.per_document)
        c.duplicated += [f"{k}: {dict(v)}" for k, v in seen.per_document.items() if v[202] > 1]
        c.wrong += [f"{k}: {dict(v)}" for k, v in seen.per_document.items()
                    if v[202] == 0 or set(v) - {200, 202}]

    async def settle(self, run: FaultRun, accepted: list[dict]) -> dict:
        """Waits until every declaration taken is answered by customs, tax, FX and logistics in the
        one-stop view and counted by credit, and every outbox is drained (then a few quiet seconds for the
        trailing events), or until nothing moved for SW_CHAOS_STALL_SECONDS. The time to recover is from
        the heal until every declaration taken before it was so answered everywhere."""
        platform = run.load.parties.platform
        wanted = {d["order_no"] for d in accepted}
        before_heal = run.load.accepted_by(run.heal_at) & wanted if run.heal_at else set()
        recovered_at: float | None = None
        last, last_change, quiet_since = None, time.monotonic(), None
        while True:
            try:
                answered = await checks.decided(self.pg_port, platform)
                counted = await checks.credited(self.pg_port, platform)
                backlog = await checks.unpublished(self.pg_port)
            except (OSError, checks.asyncpg.PostgresError) as err:
                self.say(f"  settling: {err!r}")
                await asyncio.sleep(1)
                continue
            now = time.monotonic()
            done = {no for no, k in answered.items() if k == 4} & counted
            if recovered_at is None and before_heal <= done:
                recovered_at = now
            state = (len(done), sum(backlog.values()))
            if state != last:
                last, last_change = state, now
            if wanted <= done and not any(backlog.values()):
                quiet_since = quiet_since or now
                if now - quiet_since >= 3:
                    break
            else:
                quiet_since = None
            if now - last_change > self.c.stall:
                self.say(f"  not settled: {len(wanted - done)} declarations unanswered, outboxes {backlog}")
                break
            await asyncio.sleep(1)
        heal = run.heal_at or run.started
        return {"settled": quiet_since is not None, "settle_seconds": round(time.monotonic() - run.started, 1),
                "recover_seconds": round(recovered_at - heal, 1) if recovered_at and not run.name.startswith("duplicates") else None}

    async def run_all(self) -> list[dict]:
        rows = []
        try:
            for index, name in enumerate(self.c.faults, 1):
                rows.append(await self.fault_run(index, name))
        finally:
            if self.ledger:
                await self.ledger.close()
        return rows

    def run(self) -> dict:
        result = {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
                  "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self.c).items()}}
        ok = False
        try:
            self.start()
            result["faults"] = asyncio.run(self.run_all())
            ok = all(r["passed"] for r in result["faults"])
        finally:
            self.stop()
            if ok and not self.c.keep:
                shutil.rmtree(self.work, ignore_errors=True)
            else:
                self.say(f"run directory kept: {self.work} (service logs in mesh/logs)")
        result["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        result["passed"] = ok
        return result


async def _done() -> None:
    return None


def main() -> int:
    # The suite's own topic reader would print every failed reconnection while the broker is down.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    config = Config()
    suite = Chaos(config)
    suite.say(f"make chaos: faults {config.faults}; {config.declarations} declarations per fault run, "
              f"{config.mode} mode at {config.rate:g}/s")
    result = suite.run()
    path = report.write(result, config.out)
    print()
    print(report.table(result))
    print(f"\nresults: {path} (and {config.out / 'latest.json'}, {config.out / 'latest.md'})")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
