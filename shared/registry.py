"""The services of the single window, discovered from their folders: every `services/<name>/service.toml`
declares one service, so adding an agency edits nothing outside its folder.

    # services/quarantine/service.toml
    port = 8006            # its HTTP port in a local mesh (make up) and in docker-compose.yml

A service's name is its folder's name, and the rest follows from it: its ASGI app `services.<name>.app:app`,
its database `<name>` (one per service), the variable naming its database URL `<NAME>_DATABASE_URL`, its Kafka
principal and consumer group `<name>`, its migrations `services/<name>/migrations/versions/`. Optional keys:
`[compose]` `ports` and `environment` (what docker-compose.yml gives that service beyond every service's own;
`python -m deploy.generate` writes the file's service blocks from here).

Everything that lists the services reads `SERVICES` (deploy/mesh.py, deploy/postgres/start.sh, shared/kafka_acls.py,
the test harness, bench, chaos); the static files that cannot (docker-compose.yml, deploy/postgres/init.sql)
are generated from it, and tests/unit/test_registry.py fails when they drift. Reads files only: shared/ imports
no service (a service's handlers, where needed, are looked up by name: `consumed_topics`)."""
from __future__ import annotations

import importlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"
DECLARATION = "service.toml"


@dataclass(frozen=True)
class ServiceInfo:
    """One service as its folder declares it."""

    name: str
    port: int
    compose: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def app(self) -> str:
        return f"services.{self.name}.app:app"

    @property
    def database(self) -> str:
        return self.name

    @property
    def database_url_variable(self) -> str:
        return f"{self.name.upper()}_DATABASE_URL"

    def consumed_topics(self) -> frozenset[str]:
        """The topics its handlers subscribe to (`services/<name>/handlers.py`, looked up by name); none if it
        has no handlers module."""
        if not (SERVICES_DIR / self.name / "handlers.py").exists():
            return frozenset()
        return frozenset(importlib.import_module(f"services.{self.name}.handlers").handlers.topics)


def discover(services_dir: Path = SERVICES_DIR) -> tuple[ServiceInfo, ...]:
    """Every service declared under `services_dir`, by port (the gateway, 8000, first). Raises ValueError on a
    declaration without an integer port, or on two services with one port."""
    found = []
    for declaration in sorted(services_dir.glob(f"*/{DECLARATION}")):
        data = tomllib.loads(declaration.read_text())
        port = data.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise ValueError(f"{declaration}: `port` must be an integer port number")
        found.append(ServiceInfo(declaration.parent.name, port, data.get("compose", {})))
    ports: dict[int, str] = {}
    for s in found:
        if s.port in ports:
            raise ValueError(f"services {ports[s.port]} and {s.name} both declare port {s.port}")
        ports[s.port] = s.name
    return tuple(sorted(found, key=lambda s: s.port))


SERVICES: tuple[ServiceInfo, ...] = discover()
SERVICE_NAMES: tuple[str, ...] = tuple(s.name for s in SERVICES)
SERVICE_PORTS: dict[str, int] = {s.name: s.port for s in SERVICES}
AGENCIES: tuple[str, ...] = tuple(n for n in SERVICE_NAMES if n != "gateway")


if __name__ == "__main__":
    # python -m shared.registry   one line a service: name, port, app
    for s in SERVICES:
        print(f"{s.name:12} {s.port:5}  {s.app}")
