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
    """A second instance of `service` joins its consumer group before the load; at a random moment the
    first is frozen (SIGSTOP) *inside a batch* for SW_CHAOS_STOP_SECONDS, longer than the 10 s session
    timeout: the group rebalances, the second takes the first's partitions and reads their uncommitted
    records again, while the first still holds its batch's transaction open; then the first is thawed
    (SIGCONT), finishes its transaction and meets a refused offset commit, and rejoins.

    To catch the first instance with a batch in flight, the suite briefly locks the service's `inbox`
    table (EXCLUSIVE: reads go on, inserts wait). Every batch writes its inbox rows last, after its effects
    and outbox rows, so a batch that reaches that point waits there with its transaction open; as soon as
    one of the first instance's connections waits, the instance is frozen and the lock released: its
    backend finishes the insert, and the transaction stays open, its client frozen. If no batch of the first
    instance comes within 20 s, it is frozen wherever it is (noted)."""

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
        consumed = await asyncio.to_thread(consumed_events, port)
        in_flight = await _freeze_inside_a_batch(run.pg_port, service, pid)
        try:
            await asyncio.sleep(run.c.stop_seconds)
        finally:
            os.kill(pid, signal.SIGCONT)
        taken_over = await asyncio.to_thread(consumed_events, port) - consumed
        await run.wait_healthy([service])
        run.note(f"SIGSTOP {service} for {run.c.stop_seconds:g}s "
                 + ("inside a batch (its transaction open)" if in_flight else "(no batch of it came within 20 s)")
                 + f" beside a second instance in its group, which consumed {taken_over:.0f} events meanwhile")
        run.details["frozen_inside_a_batch"] = in_flight
        run.healed()

    fault.__name__ = f"slowed consumer {service}"
    fault.prepare = prepare
    return fault


async def _freeze_inside_a_batch(pg_port: int, database: str, pid: int, wait: float = 20.0) -> bool:
    """SIGSTOPs `pid` while one of its database connections waits on the inbox lock (slowed_consumer);
    True if it was caught so, False if it was frozen anyway after `wait` seconds."""
    import asyncpg  # noqa: PLC0415

    locker = await asyncpg.connect(host="127.0.0.1", port=pg_port, user="postgres", database=database)
    try:
        tx = locker.transaction()
        await tx.start()
        await locker.execute("LOCK TABLE inbox IN EXCLUSIVE MODE")
        deadline = time.monotonic() + wait
        caught = False
        while time.monotonic() < deadline and not caught:
            ports = {r["client_port"] for r in await locker.fetch(
                "SELECT client_port FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock' "
                "AND pid <> pg_backend_pid()", database)}
            caught = bool(ports & _local_ports(pid))
            if not caught:
                await asyncio.sleep(0.02)
        os.kill(pid, signal.SIGSTOP)
        await tx.rollback()
        return caught
    finally:
        await locker.close()


def _local_ports(pid: int) -> set[int]:
    """Local TCP ports of the sockets process `pid` holds (its database connections among them)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return set()
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[9] in inodes:
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


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
