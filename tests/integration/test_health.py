"""/healthz answers 503 when the service's database or the broker is gone, and 200 again when they are
back (spec §5a). Real failures: a PostgreSQL database that stops accepting connections, a broker that stops."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import httpx
import pytest

from deploy.mesh import ROOT
from shared.settings import settings
from shared.topics_admin import create_topics
from tests.conftest import create_database

pytestmark = pytest.mark.integration


def psql(pg_port: int, sql: str) -> None:
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    subprocess.run(as_pg + [str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres",
                            "-d", "postgres", "-tAc", sql], check=True, capture_output=True)


@pytest.fixture
async def own_broker():
    kafka_dir = Path(tempfile.mkdtemp(prefix="sw-kafka-health-"))
    subprocess.run([str(ROOT / "deploy/kafka/start.sh"), str(kafka_dir)], check=True, capture_output=True)
    bootstrap = f"127.0.0.1:{(kafka_dir / 'kafka.port').read_text().strip()}"
    await create_topics(bootstrap)
    yield kafka_dir, bootstrap
    subprocess.run([str(ROOT / "deploy/kafka/stop.sh"), str(kafka_dir)], check=False)
    shutil.rmtree(kafka_dir, ignore_errors=True)


async def health(service) -> tuple[int, dict]:
    app = service.http()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
        r = await client.get("/healthz")
    return r.status_code, r.json()


async def test_healthz_follows_the_database_and_the_broker(postgres_port, own_broker, monkeypatch):
    kafka_dir, bootstrap = own_broker
    name = f"health_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", create_database(postgres_port, name))
    settings.cache_clear()
    from shared.runtime import Service
    from services.gateway.handlers import handlers

    service = Service("gateway", handlers=handlers, group_id=f"health-{name}")
    await service.start()
    try:
        assert await health(service) == (200, {"status": "ok", "service": "gateway", "database": "ok", "broker": "ok",
                                              "outbox": {"set_aside": 0, "relay": "publishing", "degraded": False}})

        psql(postgres_port, f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        psql(postgres_port, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        status, body = await health(service)
        assert status == 503 and body["database"].startswith("down") and body["broker"] == "ok"
        psql(postgres_port, f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        assert (await health(service))[0] == 200

        subprocess.run([str(ROOT / "deploy/kafka/stop.sh"), str(kafka_dir)], check=True)
        status, body = await health(service)
        assert status == 503 and body["broker"].startswith("down") and body["database"] == "ok"
    finally:
        await service.stop()
        settings.cache_clear()
