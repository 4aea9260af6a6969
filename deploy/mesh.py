"""Starts and stops a whole local mesh: the Kafka broker, the topics, and every service as its own
uvicorn process. Used by `make up` / `make down` and by the end-to-end test harness.

    python -m deploy.mesh up      # broker (unless KAFKA_BOOTSTRAP_SERVERS is set), topics, services
    python -m deploy.mesh down    # stops what `up` started; data stays under .run/
    python -m deploy.mesh status
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from deploy import kafka_secure
from shared.registry import SERVICE_PORTS  # every service/port, from services/*/service.toml

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def uvicorn_command(app: str, port: int) -> list[str]:
    """How every service is served (one uvicorn process each); `make bench` serves its bare-endpoint
    ceiling with the same command so the two compare like for like."""
    return [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            "--no-access-log", "--timeout-graceful-shutdown", "5"]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie child of ours is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@dataclass
class Mesh:
    run_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: dict(SERVICE_PORTS))
    env: dict[str, str] = field(default_factory=dict)
    bootstrap: str | None = None
    # SW_KAFKA_SECURE=1: the broker this mesh starts runs SASL/SCRAM with ACLs, each service its own
    # principal (deploy/kafka_secure.py); off by default. Not used when KAFKA_BOOTSTRAP_SERVERS is given.
    secure: bool = field(default_factory=lambda: os.environ.get("SW_KAFKA_SECURE") == "1")

    def __post_init__(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "logs").mkdir(exist_ok=True)

    # --- broker -------------------------------------------------------------------------

    def start_broker(self, port: int | None = None) -> str:
        if self.bootstrap:
            return self.bootstrap
        kafka_dir = self.run_dir / "kafka"
        args = [str(ROOT / "deploy/kafka/start.sh"), str(kafka_dir)] + ([str(port)] if port else [])
        env = {**os.environ, **kafka_secure.broker_env(self.kafka_credentials())} if self.secure else None
        subprocess.run(args, check=True, stdout=sys.stderr, env=env)
        self.bootstrap = f"127.0.0.1:{(kafka_dir / 'kafka.port').read_text().strip()}"
        return self.bootstrap

    def stop_broker(self) -> None:
        subprocess.run([str(ROOT / "deploy/kafka/stop.sh"), str(self.run_dir / "kafka")], check=False)

    def kafka_credentials(self) -> dict[str, str]:
        return kafka_secure.credentials(self.run_dir / "kafka")

    def create_topics(self) -> None:
        from shared.topics_admin import create_topics  # noqa: PLC0415

        options = kafka_secure.client_options(self.kafka_credentials(), "admin") if self.secure else None
        asyncio.run(create_topics(self.bootstrap, int(self.env.get("SW_TOPIC_PARTITIONS", "4")), options))

    # --- services -----------------------------------------------------------------------

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def service_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {**os.environ, **self.env, **(extra or {})}
        env["KAFKA_BOOTSTRAP_SERVERS"] = self.bootstrap or env.get("KAFKA_BOOTSTRAP_SERVERS", "")
        env.setdefault("SW_RUN_DIR", str(self.run_dir))
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def start_service(self, name: str, instance: str | None = None, port: int | None = None,
                      extra_env: dict[str, str] | None = None, app: str | None = None) -> int:
        label = f"{name}-{instance}" if instance else name
        pid_file = self.pid_file(label)
        if pid_file.exists() and alive(int(pid_file.read_text())):
            return int(pid_file.read_text())
        port = port or self.ports[name]
        log = open(self.run_dir / "logs" / f"{label}.log", "ab")
        if self.secure:  # the service's own principal, and only its own
            extra_env = {**kafka_secure.client_env(self.kafka_credentials(), name), **(extra_env or {})}
        proc = subprocess.Popen(
            uvicorn_command(app or f"services.{name}.app:app", port), cwd=ROOT, env=self.service_env(extra_env),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        pid_file.write_text(str(proc.pid))
        return proc.pid

    def stop_service(self, label: str, hard: bool = False) -> None:
        pid_file = self.pid_file(label)
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, signal.SIGKILL if hard else signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.time() + 15
        while alive(pid) and time.time() < deadline:
            time.sleep(0.1)
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
        pid_file.unlink(missing_ok=True)

    def wait_healthy(self, names: list[str], timeout: float = 120, ports: dict[str, int] | None = None) -> None:
        ports = ports or self.ports
        deadline = time.time() + timeout
        pending = list(names)
        while pending and time.time() < deadline:
            for name in list(pending):
                try:
                    if httpx.get(f"http://127.0.0.1:{ports[name]}/healthz", timeout=2).status_code == 200:
                        pending.remove(name)
                except httpx.HTTPError:
                    pass
            if pending:
                time.sleep(0.3)
        if pending:
            tails = "\n".join(f"--- {n}\n" + self.log_tail(n) for n in pending)
            raise RuntimeError(f"services not healthy after {timeout}s: {pending}\n{tails}")

    def log_tail(self, label: str, lines: int = 30) -> str:
        path = self.run_dir / "logs" / f"{label}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"

    def up(self) -> None:
        if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            kafka_port = 9092 if _port_free(9092) or (self.run_dir / "kafka/kafka.port").exists() else None
            self.start_broker(kafka_port)
        else:
            self.bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
            self.secure = False  # a cluster of one's own: principals from KAFKA_SASL_* (docs/security.md)
        self.create_topics()
        for name in self.ports:
            self.start_service(name)
        self.wait_healthy(list(self.ports))

    def down(self) -> None:
        for name in reversed(list(self.ports)):
            self.stop_service(name)
        for pid_file in self.run_dir.glob("*-*.pid"):
            self.stop_service(pid_file.stem)
        self.stop_broker()


def _port_free(port: int) -> bool:
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def main(argv: list[str]) -> int:
    from shared.settings import settings  # noqa: PLC0415

    from urllib.parse import urlparse  # noqa: PLC0415

    mesh = Mesh(Path(os.environ.get("SW_RUN_DIR", ROOT / ".run")))
    mesh.ports["gateway"] = urlparse(settings().sw_gateway_url).port or SERVICE_PORTS["gateway"]
    command = argv[1] if len(argv) > 1 else "status"
    if command == "up":
        mesh.up()
        print(f"single window up: gateway {settings().sw_gateway_url} (broker {mesh.bootstrap}; logs in {mesh.run_dir}/logs)")
    elif command == "down":
        mesh.down()
        print("single window stopped; data kept in", mesh.run_dir)
    else:
        for name in mesh.ports:
            pid_file = mesh.pid_file(name)
            running = pid_file.exists() and alive(int(pid_file.read_text()))
            print(f"{name:10} {'running' if running else 'stopped'}  {mesh.url(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
