"""`make bench`: what the single window does on this machine, and how far that is from what its parts could do.

    python -m bench                      # defaults below; figures under bench/results/
    SW_BENCH_SIZES=2000,8000,32000 python -m bench     # the growth sizes of the performance issue

For each database (SW_BENCH_DATABASES, default `postgres,sqlite`) the controller starts its own broker
(deploy/kafka/start.sh), for PostgreSQL its own durable cluster (deploy/postgres/start.sh with
SW_PG_DURABLE=1: fsync, synchronous_commit and full_page_writes on), and its own mesh (deploy.mesh.Mesh on
free ports, a temporary run directory), then runs the load generator (`bench.load`, its own process):

1. growth: closed loop, single documents, at each size of SW_BENCH_SIZES (ascending, on the same mesh, so
   each size also meets the data of the sizes before it); the largest size is the headline;
2. closed loop, batch (`:batch`, 100 declarations a request), SW_BENCH_BATCH_DECLARATIONS;
3. on the databases of SW_BENCH_CEB (default `postgres`): the CEB front door (spec §7.5), closed loop,
   imports as 100-record messages (CEB311, CEB411, CEB511, then CEB621: every order and waybill is held,
   then completed by its list), beside the REST batch path with the same imports, measured just before it
   on the same mesh (SW_BENCH_CEB_DECLARATIONS each, default SW_BENCH_BATCH_DECLARATIONS);
4. open loop, single and batch, at offered rates SW_BENCH_RATES (declarations/s), by default the fractions
   SW_BENCH_RATE_FRACTIONS of the closed loop's decided rate, each for about SW_BENCH_OPEN_SECONDS.

Around every run it reads the CPU time (/proc/<pid>/stat utime+stime) of each service, the broker, the
PostgreSQL cluster and the load generator, and the events the services produced and consumed (/metrics).
After the first database it measures two ceilings on the same machine (bench.ceilings): a raw aiokafka
pipe moving as many messages of the same size as the headline run moved, and a bare FastAPI endpoint
taking the same bodies with the same client concurrency. Results: bench/results/<timestamp>.json and
latest.json, a table on the terminal, bench/results/latest.png. See docs/benchmarks.md.
"""
from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx

from deploy.mesh import ROOT, SERVICE_PORTS, Mesh, free_port, uvicorn_command

RESULTS = ROOT / "bench" / "results"
TICK = os.sysconf("SC_CLK_TCK")


def env_list(name: str, default: str, cast=float) -> list:  # noqa: ANN001
    return [cast(x) for x in os.environ.get(name, default).split(",") if x.strip()]


@dataclass
class Config:
    databases: list[str] = field(default_factory=lambda: env_list("SW_BENCH_DATABASES", "postgres,sqlite", str))
    sizes: list[int] = field(default_factory=lambda: sorted(env_list("SW_BENCH_SIZES", "200,800", int)))
    concurrency: int = int(os.environ.get("SW_BENCH_CONCURRENCY", "32"))
    batch_declarations: int = int(os.environ.get("SW_BENCH_BATCH_DECLARATIONS", "0"))  # 0: the largest size
    ceb_databases: list[str] = field(default_factory=lambda: env_list("SW_BENCH_CEB", "postgres", str))
    ceb_declarations: int = int(os.environ.get("SW_BENCH_CEB_DECLARATIONS", "0"))  # 0: batch_declarations
    rates: list[float] = field(default_factory=lambda: env_list("SW_BENCH_RATES", ""))
    rate_fractions: list[float] = field(default_factory=lambda: env_list("SW_BENCH_RATE_FRACTIONS", "0.25,0.5,1.0,1.5"))
    open_seconds: float = float(os.environ.get("SW_BENCH_OPEN_SECONDS", "15"))
    modes: list[str] = field(default_factory=lambda: env_list("SW_BENCH_MODES", "single,batch", str))
    ceilings: bool = os.environ.get("SW_BENCH_CEILINGS", "1") != "0"
    stall: float = float(os.environ.get("SW_BENCH_STALL_SECONDS", "90"))
    seed: int = int(os.environ.get("SW_BENCH_SEED", "1"))
    out: Path = Path(os.environ.get("SW_BENCH_OUT", str(RESULTS)))
    progress: bool = os.environ.get("SW_BENCH_PROGRESS", "1") != "0"

    def __post_init__(self) -> None:
        self.batch_declarations = self.batch_declarations or self.sizes[-1]
        self.ceb_declarations = self.ceb_declarations or self.batch_declarations


# --- process accounting -------------------------------------------------------------------------


def proc_stat(pid: int) -> tuple[float, float] | None:
    """(own CPU seconds, CPU seconds of waited-for children) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK, (int(fields[13]) + int(fields[14])) / TICK


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except OSError:
                pass
    return out


def cpu_seconds(pid: int, with_children: bool = False) -> float:
    stat = proc_stat(pid)
    if stat is None:
        return 0.0
    if not with_children:
        return stat[0]
    # PostgreSQL: the postmaster, its live backends, and the backends that already exited (cutime/cstime)
    return stat[0] + stat[1] + sum((proc_stat(c) or (0, 0))[0] for c in children(pid))


def peak_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def machine() -> dict:
    info = {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}
    try:
        info["cpu_model"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        info["memory_gib"] = round(int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal"))) / 2**20, 1)
    except (OSError, StopIteration):
        pass
    return info


def start_durable_postgres(pg_dir: Path, port: int | None = None) -> int:
    """Starts (or restarts, on the same `port`) the durable PostgreSQL cluster of deploy/postgres/start.sh
    with SW_PG_DURABLE=1 (fsync, synchronous_commit, full_page_writes on) in `pg_dir`; returns its port.
    Shared with `make chaos`, which stops and restarts it."""
    env = {**os.environ, "SW_PG_DURABLE": "1"}
    args = [str(ROOT / "deploy/postgres/start.sh"), str(pg_dir)] + ([str(port)] if port else [])
    out = subprocess.run(args, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"PostgreSQL did not start: {out.stdout}{out.stderr}")
    return int(out.stdout.strip().splitlines()[-1])


# --- one database's mesh -----------------------------------------------------------------------


class Bench:
    def __init__(self, config: Config, console):  # noqa: ANN001
        self.c = config
        self.console = console
        self.work = Path(tempfile.mkdtemp(prefix="sw-bench-"))
        os.chmod(self.work, 0o755)  # the postgres user must reach its data directory
        self.result: dict = {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                             "machine": machine(), "config": {k: (str(v) if isinstance(v, Path) else v)
                                                              for k, v in vars(config).items()},
                             "databases": {}, "ceilings": {}}

    def say(self, text: str) -> None:
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {text}")

    # --- infrastructure ------------------------------------------------------------------------

    def start_postgres(self, pg_dir: Path) -> int:
        return start_durable_postgres(pg_dir)

    @staticmethod
    async def pg_settings(port: int) -> dict:
        import asyncpg  # noqa: PLC0415

        conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database="gateway")
        try:
            return {name: await conn.fetchval(f"SHOW {name}")
                    for name in ("server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_sync_method")}
        finally:
            await conn.close()

    def scrape(self, mesh: Mesh) -> dict[str, float]:
        totals = {"produced": 0.0, "consumed": 0.0}
        for name in mesh.ports:
            try:
                text = httpx.get(mesh.url(name) + "/metrics", timeout=10).text
            except httpx.HTTPError:
                continue
            for line in text.splitlines():
                for key, metric in (("produced", "sw_events_produced_total{"), ("consumed", "sw_events_consumed_total{")):
                    if line.startswith(metric):
                        totals[key] += float(line.rsplit(" ", 1)[1])
        return totals

    @staticmethod
    def topic_bytes(kafka_dir: Path) -> int:
        total = 0
        for part in (kafka_dir / "data").glob("*"):
            if part.is_dir() and not part.name.startswith(("__", "bench.pipe")):
                total += sum(f.stat().st_size for f in part.glob("*.log"))
        return total

    def pids(self, mesh: Mesh, pg_dir: Path | None) -> dict[str, tuple[int, bool]]:
        pids = {name: (int(mesh.pid_file(name).read_text()), False) for name in mesh.ports}
        pids["broker"] = (int((mesh.run_dir / "kafka" / "kafka.pid").read_text()), False)
        if pg_dir is not None:
            pids["postgres"] = (int((pg_dir / "data" / "postmaster.pid").read_text().splitlines()[0]), True)
        return pids

    def idle(self, mesh: Mesh, pg_dir: Path | None, seconds: float = 10.0) -> dict[str, float]:
        """What the mesh burns doing nothing (consumer polls, relays, sweeps, the broker), CPU ms per second:
        a run's CPU per declaration includes this for its whole duration, which weighs on slow runs."""
        time.sleep(2)
        pids = self.pids(mesh, pg_dir)
        before = {k: cpu_seconds(pid, tree) for k, (pid, tree) in pids.items()}
        time.sleep(seconds)
        return {k: round(1000 * (cpu_seconds(pid, tree) - before[k]) / seconds, 1) for k, (pid, tree) in pids.items()}

    # --- the load generator --------------------------------------------------------------------

    def load(self, label: str, gateway: str, *, mode: str = "single", loop: str = "closed", declarations: int,
             rate: float | None = None, no_poll: bool = False, imports_only: bool = False,
             log: Path) -> tuple[dict, float]:
        """Runs bench.load as its own process; returns its result and its CPU seconds."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

        out = self.work / f"load-{time.time_ns()}.json"
        args = [sys.executable, "-m", "bench.load", "--gateway", gateway, "--out", str(out), "--mode", mode,
                "--loop", loop, "--declarations", str(declarations), "--concurrency", str(self.c.concurrency),
                "--seed", str(self.c.seed), "--stall", str(self.c.stall), "--run-tag", f"{time.time_ns() % 10**9:09d}"]
        if rate:
            args += ["--rate", f"{rate:.3f}"]
        if no_poll:
            args.append("--no-poll")
        if imports_only:
            args.append("--imports-only")
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        with open(log, "ab") as err, Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(),
                                              TextColumn("{task.fields[decided]}"), TimeElapsedColumn(),
                                              console=self.console, transient=True,
                                              disable=not (self.c.progress and self.console.is_terminal)) as bar:
            accepted = bar.add_task(label, total=declarations, decided="")
            proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
            for line in proc.stdout:
                parts = line.split()
                if parts[:1] == ["progress"]:
                    bar.update(accepted, completed=int(parts[1]),
                               decided="" if no_poll else f"decided {parts[2]}")
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"the load generator failed ({proc.returncode}); see {log}:\n" +
                               "\n".join(log.read_text(errors="replace").splitlines()[-20:]))
        return json.loads(out.read_text()), usage.ru_utime + usage.ru_stime

    def measured(self, label: str, kind: str, mesh: Mesh, pg_dir: Path | None, **load_kw) -> dict:
        pids = self.pids(mesh, pg_dir)
        before_cpu = {k: cpu_seconds(pid, tree) for k, (pid, tree) in pids.items()}
        before_events = self.scrape(mesh)
        before_bytes = self.topic_bytes(mesh.run_dir / "kafka")
        result, load_cpu = self.load(label, mesh.url("gateway"), log=mesh.run_dir / "logs" / "load.log", **load_kw)
        if not result.get("available", True):
            self.say(f"{label}: [yellow]not available[/] ({result.get('note')})")
            return {"name": label, "kind": kind, **result}
        time.sleep(1.5)  # one outbox relay cycle, so the events of the last decisions are counted
        after_events = self.scrape(mesh)
        cpu = {k: round(cpu_seconds(pid, tree) - before_cpu[k], 3) for k, (pid, tree) in pids.items()}
        cpu["load_generator"] = round(load_cpu, 3)
        produced = after_events["produced"] - before_events["produced"]
        decided = result.get("declarations_decided") or 0
        mesh_cpu = sum(v for k, v in cpu.items() if k != "load_generator")
        run = {"name": label, "kind": kind, **result, "cpu_seconds": cpu,
               "events_produced": produced, "events_consumed": after_events["consumed"] - before_events["consumed"],
               "topic_bytes_per_event": round((self.topic_bytes(mesh.run_dir / "kafka") - before_bytes) / produced)
               if produced else None}
        if decided:
            run["cpu_ms_per_declaration"] = {k: round(1000 * v / decided, 2) for k, v in cpu.items()}
            run["cpu_ms_per_declaration"]["mesh_total"] = round(1000 * mesh_cpu / decided, 2)
            run["events_per_s"] = round(produced / result["decided_seconds"], 1) if result.get("decided_seconds") else None
        self.say(f"{label}: {result.get('accepted_docs_per_s')} docs/s accepted, {result.get('decided_per_s')} "
                 f"declarations/s decided ({decided}/{result['declarations']}), "
                 f"{run.get('cpu_ms_per_declaration', {}).get('mesh_total')} CPU ms/declaration")
        return run

    # --- one database ----------------------------------------------------------------------------

    def database(self, db: str, ceilings: bool) -> dict:
        run_dir = self.work / db
        pg_dir = self.work / f"{db}-pg" if db == "postgres" else None
        out: dict = {"runs": []}
        mesh = Mesh(run_dir, ports={name: free_port() for name in SERVICE_PORTS},
                    env={"CUSTOMS_BASE_INSPECTION_RATE": "0", "SW_ADMIN_TOKEN": "dev-admin-token", "LOG_LEVEL": "WARNING"})
        # A spinner on a terminal while nothing else moves (rich prints nothing of it into a log).
        status = self.console.status(f"{db}: starting the broker")
        try:
            self.say(f"[bold]{db}[/]: starting broker" + (", durable PostgreSQL" if pg_dir else "") + " and mesh")
            status.start()
            mesh.start_broker()
            mesh.create_topics()
            if pg_dir is not None:
                status.update(f"{db}: starting durable PostgreSQL")
                port = self.start_postgres(pg_dir)
                out["postgres_settings"] = asyncio.run(self.pg_settings(port))
                mesh.env.update({f"{n.upper()}_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{n}"
                                 for n in SERVICE_PORTS})
                self.say(f"PostgreSQL {out['postgres_settings']}")
            else:
                mesh.env.update({f"{n.upper()}_DATABASE_URL": f"sqlite+aiosqlite:///{run_dir}/{n}.db" for n in SERVICE_PORTS})
            status.update(f"{db}: starting {len(mesh.ports)} services, waiting for each to answer /healthz")
            for name in mesh.ports:
                mesh.start_service(name)
            mesh.wait_healthy(list(mesh.ports), timeout=240)
            status.update(f"{db}: measuring what the idle mesh burns (12 s)")
            out["idle_cpu_ms_per_s"] = self.idle(mesh, pg_dir)
            status.stop()
            runs = out["runs"]
            for size in self.c.sizes:
                runs.append(self.measured(f"{db} closed single n={size}", "growth", mesh, pg_dir, declarations=size))
            headline = runs[-1]
            closed = {"single": headline}
            if "batch" in self.c.modes:
                closed["batch"] = self.measured(f"{db} closed batch", "closed", mesh, pg_dir, mode="batch",
                                                declarations=self.c.batch_declarations)
                runs.append(closed["batch"])
            if db in self.c.ceb_databases:
                # The same imports through both front doors, one after the other on the same mesh: the REST
                # batch path first (100 a request), then customs' messages (100 records a message).
                runs.append(self.measured(f"{db} closed batch imports", "ceb-reference", mesh, pg_dir, mode="batch",
                                          imports_only=True, declarations=self.c.ceb_declarations))
                runs.append(self.measured(f"{db} closed ceb", "ceb", mesh, pg_dir, mode="ceb",
                                          declarations=self.c.ceb_declarations))
            for mode in [m for m in ("single", "batch") if m in self.c.modes]:
                base = closed.get(mode, {})
                if not base.get("available", True):
                    runs.append({"name": f"{db} open {mode}", "kind": "open", "mode": mode, "available": False})
                    continue
                rates = self.c.rates or [round(f * (base.get("decided_per_s") or 1), 2) for f in self.c.rate_fractions]
                for rate in rates:
                    n = max(20 if mode == "single" else 200, int(rate * self.c.open_seconds))
                    if mode == "batch":
                        n = max(200, -(-n // 100) * 100)
                    runs.append(self.measured(f"{db} open {mode} {rate:g}/s", "open", mesh, pg_dir, mode=mode,
                                              loop="open", rate=rate, declarations=n))
            pids = self.pids(mesh, pg_dir)
            out["peak_rss_mb"] = {k: peak_rss_mb(pid) for k, (pid, _) in pids.items()}
            out["headline"] = headline["name"]
            out["growth"] = [{"declarations": r["declarations"], "decided": r.get("declarations_decided"),
                              "decided_per_s": r.get("decided_per_s"),
                              "cpu_ms_per_declaration": (r.get("cpu_ms_per_declaration") or {}).get("mesh_total")}
                             for r in runs if r["kind"] == "growth"]
            for name in reversed(list(mesh.ports)):
                mesh.stop_service(name)
            if ceilings:
                self.ceilings(mesh, headline)
        except Exception:
            status.stop()
            self.console.print(f"[red]{db} failed[/]; service logs in {run_dir}/logs")
            for name in mesh.ports:
                self.console.print(f"--- {name}\n{mesh.log_tail(name, 10)}")
            raise
        finally:
            mesh.down()
            if pg_dir is not None:
                subprocess.run([str(ROOT / "deploy/postgres/stop.sh"), str(pg_dir)], check=False)
        return out

    def ceilings(self, mesh: Mesh, headline: dict) -> None:
        port = free_port()
        self.say("ceiling (b): bare FastAPI endpoint, same bodies and concurrency")
        log = open(mesh.run_dir / "logs" / "bare.log", "ab")
        proc = subprocess.Popen(uvicorn_command("bench.bare_app:app", port), cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                start_new_session=True)
        try:
            mesh.wait_healthy(["bare"], timeout=60, ports={"bare": port})
            before = cpu_seconds(proc.pid)
            bare, _ = self.load("bare FastAPI", f"http://127.0.0.1:{port}", declarations=headline["declarations"],
                                no_poll=True, log=mesh.run_dir / "logs" / "load.log")
            bare["server_cpu_seconds"] = round(cpu_seconds(proc.pid) - before, 3)
            self.result["ceilings"]["bare_fastapi"] = bare
        finally:
            proc.terminate()
            proc.wait(15)
        messages = int(headline.get("events_produced") or 0)
        if messages:
            size = max(200, (headline.get("topic_bytes_per_event") or 1000) - 70)  # less Kafka's record overhead
            fanout = max(1, round(headline["events_consumed"] / messages))
            self.say(f"ceiling (a): raw aiokafka pipe, {messages} messages of {size} bytes, fan-out {fanout}")
            out = self.work / "pipe.json"
            subprocess.run([sys.executable, "-m", "bench.ceilings", "kafka", "--bootstrap", mesh.bootstrap,
                            "--messages", str(messages), "--size", str(size), "--fanout", str(fanout),
                            "--out", str(out)], cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            self.result["ceilings"]["kafka_pipe"] = json.loads(out.read_text())

    def run(self) -> dict:
        try:
            for n, db in enumerate(self.c.databases):
                self.result["databases"][db] = self.database(db, ceilings=self.c.ceilings and n == 0)
        except BaseException:
            self.console.print(f"[red]bench failed[/]: logs kept in {self.work}")
            raise
        shutil.rmtree(self.work, ignore_errors=True)
        from bench.report import ratios  # noqa: PLC0415

        ratios(self.result)
        self.result["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return self.result


def main() -> int:
    from rich.console import Console  # noqa: PLC0415

    from bench import report  # noqa: PLC0415

    console = Console(width=None if sys.stdout.isatty() else 150)
    config = Config()
    console.print(f"[bold]make bench[/]: databases {config.databases}, growth sizes {config.sizes}, "
                  f"{config.concurrency} clients; modes {config.modes}")
    result = Bench(config, console).run()
    path = report.write(result, config.out)
    report.table(result, console)
    png = report.plot(result, config.out / "latest.png")
    console.print(f"\nresults: {path} (and {config.out / 'latest.json'}); plot: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
