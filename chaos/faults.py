"""The faults, each injected into a running mesh while a fault run's load is in flight.

Every fault is an async function `(run) -> None` over a `chaos.__main__.FaultRun`: it waits for its moment
(`run.at_random_moment()`: uniformly inside the middle of the load's expected duration, from the suite's
seeded random generator), breaks something, puts it back as an operator would (`make up` starts a killed
service again; the broker and PostgreSQL are started on their own data and ports), and marks `run.healed()`
once every service answers /healthz again. The time to recover is measured from that mark.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from bench.__main__ import start_durable_postgres
from deploy.mesh import ROOT, alive, free_port


def _pg_ctl(pg_dir: Path, *args: str) -> None:
    """pg_ctl on the suite's cluster, as the `postgres` user when we are root (as deploy/postgres does)."""
    bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(as_pg + [str(bindir / "pg_ctl"), "-D", str(pg_dir / "data"), *args],
                   check=True, capture_output=True)


async def _wait_dead(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        await asyncio.sleep(0.05)


def kill9(service: str):
    """kill -9 of `service` at `run.c.kills` random moments, each time started again as `make up` would."""

    async def fault(run) -> None:  # noqa: ANN001
        for _ in range(run.c.kills):
            await run.at_random_moment()
            pid = int(run.mesh.pid_file(service).read_text())
            os.kill(pid, signal.SIGKILL)
            run.note(f"kill -9 {service} (pid {pid})")
            await _wait_dead(pid)
            await asyncio.to_thread(run.mesh.stop_service, service)  # reaps it and removes the pid file
            await asyncio.to_thread(run.mesh.start_service, service)
            await run.wait_healthy([service])
        run.healed()

    fault.__name__ = f"kill -9 {service}"
    return fault


async def broker_restart(run) -> None:  # noqa: ANN001
    """kill -9 of the broker, down for SW_CHAOS_BROKER_DOWN_SECONDS, then started on its own data and port."""
    await run.at_random_moment()
    kafka_dir = run.mesh.run_dir / "kafka"
    pid = int((kafka_dir / "kafka.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    run.note(f"kill -9 broker (pid {pid}), down {run.c.broker_down:g}s")
    await _wait_dead(pid)
    await asyncio.sleep(run.c.broker_down)
    await asyncio.to_thread(subprocess.run, [str(ROOT / "deploy/kafka/start.sh"), str(kafka_dir)],
                            check=True, capture_output=True)
    await run.wait_healthy(list(run.mesh.ports))
    run.healed()


async def postgres_restart(run) -> None:  # noqa: ANN001
    """`pg_ctl stop -m immediate` (no checkpoint: the restart replays the WAL, as after a crash), down for
    SW_CHAOS_PG_DOWN_SECONDS, then started again on the same data directory and port."""
    await run.at_random_moment()
    await asyncio.to_thread(_pg_ctl, run.pg_dir, "-m", "immediate", "-w", "stop")
    run.note(f"PostgreSQL stopped -m immediate, down {run.c.pg_down:g}s")
    await asyncio.sleep(run.c.pg_down)
    await asyncio.to_thread(start_durable_postgres, run.pg_dir, run.pg_port)
    await run.wait_healthy(list(run.mesh.ports))
    run.healed()


def slowed_consumer(service: str):
    """A second instance of `service` joins its consumer group; then the first is frozen (SIGSTOP) for
    SW_CHAOS_STOP_SECONDS, longer than the session timeout (10 s), at a random moment with batches in
    flight: the group rebalances and the second takes its partitions and their uncommitted records; then
    the first is thawed (SIGCONT) and finishes the batch it was in (its transaction, its offset commit that
    the group now refuses), and rejoins."""

    second = f"{service}-2"

    async def prepare(run) -> None:  # noqa: ANN001
        port = free_port()
        run.details["second_instance_port"] = port
        run.mesh.start_service(service, instance="2", port=port)
        run.cleanup.append(lambda: run.mesh.stop_service(second))
        await run.wait_healthy([service], ports={service: port})
        await asyncio.sleep(5)  # the group rebalanced: both instances own partitions

    async def fault(run) -> None:  # noqa: ANN001
        port = run.details["second_instance_port"]
        await run.at_random_moment()
        pid = int(run.mesh.pid_file(service).read_text())
        log = run.mesh.run_dir / "logs" / f"{service}.log"
        log_size = log.stat().st_size
        consumed = await asyncio.to_thread(consumed_events, port)
        os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(run.c.stop_seconds)
        finally:
            os.kill(pid, signal.SIGCONT)
        taken_over = await asyncio.to_thread(consumed_events, port) - consumed
        await run.wait_healthy([service])
        await asyncio.sleep(2)
        with open(log, errors="replace") as f:
            f.seek(log_size)
            refused = sum(1 for line in f if "offset commit failed" in line)
        run.note(f"SIGSTOP {service} for {run.c.stop_seconds:g}s beside a second instance in its group: the second "
                 f"consumed {taken_over:.0f} events meanwhile; the first's offset commits refused after SIGCONT: "
                 f"{refused} (a batch was in flight)" if refused else
                 f"SIGSTOP {service} for {run.c.stop_seconds:g}s beside a second instance in its group: the second "
                 f"consumed {taken_over:.0f} events meanwhile; no batch of the first was caught in flight")
        run.details["in_flight_commits_refused"] = refused
        run.healed()

    fault.__name__ = f"slowed consumer {service}"
    fault.prepare = prepare
    return fault


def consumed_events(port: int) -> float:
    """sw_events_consumed_total of the service instance on `port`, summed over its topics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("sw_events_consumed_total{"))


def agency_down(service: str):
    """`service` stopped for SW_CHAOS_DOWN_SECONDS while the load goes on; intake and the other agencies
    must carry on (what they did meanwhile is noted), and the agency catches up when it is back."""

    async def fault(run) -> None:  # noqa: ANN001
        await asyncio.sleep(min(5.0, run.duration * 0.1))
        await asyncio.to_thread(run.mesh.stop_service, service)
        down_at = time.monotonic()
        before = await run.answered()
        await asyncio.sleep(run.c.down_seconds)
        during = await run.answered()
        took = len(run.load.accepted_by(time.monotonic())) - len(run.load.accepted_by(down_at))
        run.note(f"{service} down {run.c.down_seconds:g}s: meanwhile the gateway took {took} declarations; "
                 + ", ".join(f"{a} answered {during.get(a, 0) - before.get(a, 0)}" for a in sorted(during)))
        run.details["while_down"] = {"service": service, "seconds": run.c.down_seconds, "declarations_taken": took,
                                     "answered": {a: during.get(a, 0) - before.get(a, 0) for a in during}}
        await asyncio.to_thread(run.mesh.start_service, service)
        await run.wait_healthy([service])
        run.healed()

    fault.__name__ = f"{service} down"
    return fault


async def concurrent_duplicates(run) -> None:  # noqa: ANN001
    """Nothing breaks: the load itself is the fault (chaos.load.submit_concurrently)."""
    run.healed()


def by_name(name: str):
    """`kill:<service>`, `broker`, `postgres`, `slow:<service>`, `duplicates[:batch]`, `down:<service>`."""
    kind, _, service = name.partition(":")
    if kind == "kill":
        return kill9(service)
    if kind == "slow":
        return slowed_consumer(service)
    if kind == "down":
        return agency_down(service)
    if kind == "duplicates":
        return concurrent_duplicates
    return {"broker": broker_restart, "postgres": postgres_restart}[kind]
