"""Real parts for integration and end-to-end tests: a Kafka broker (KRaft) started from Maven Central's
jars, and a throwaway PostgreSQL cluster. Each starts once per session, only if a test asks for it."""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from deploy.mesh import ROOT, SERVICE_PORTS


@pytest.fixture(scope="session")
def postgres_port():
    pg_dir = Path(tempfile.mkdtemp(prefix="sw-pg-"))
    os.chmod(pg_dir, 0o755)  # the postgres user must reach it
    out = subprocess.run([str(ROOT / "deploy/postgres/start.sh"), str(pg_dir)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    yield int(out.stdout.strip().splitlines()[-1])
    subprocess.run([str(ROOT / "deploy/postgres/stop.sh"), str(pg_dir)], check=False)
    shutil.rmtree(pg_dir, ignore_errors=True)


def create_database(pg_port: int, name: str) -> str:
    """A fresh database on the test cluster; returns its async URL."""
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    subprocess.run(as_pg + [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres", name],
                   check=True, capture_output=True)
    return f"postgresql+asyncpg://postgres@127.0.0.1:{pg_port}/{name}"


def database_urls(pg_port: int) -> dict[str, str]:
    return {f"{name.upper()}_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{pg_port}/{name}"
            for name in SERVICE_PORTS}


@pytest.fixture(scope="session")
def kafka_bootstrap():
    """SW_TEST_KAFKA=host:port reuses a running broker while developing; otherwise one is started."""
    from shared.topics_admin import create_topics

    if os.environ.get("SW_TEST_KAFKA"):
        bootstrap = os.environ["SW_TEST_KAFKA"]
        asyncio.run(create_topics(bootstrap))
        yield bootstrap
        return
    kafka_dir = Path(tempfile.mkdtemp(prefix="sw-kafka-"))
    out = subprocess.run([str(ROOT / "deploy/kafka/start.sh"), str(kafka_dir)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    bootstrap = f"127.0.0.1:{(kafka_dir / 'kafka.port').read_text().strip()}"
    asyncio.run(create_topics(bootstrap))
    yield bootstrap
    subprocess.run([str(ROOT / "deploy/kafka/stop.sh"), str(kafka_dir)], check=False)
    shutil.rmtree(kafka_dir, ignore_errors=True)
