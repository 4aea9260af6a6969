"""docker-compose.yml stays valid and consistent with `make up` (same services, same ports)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from contracts.topics import all_topic_names
from deploy.mesh import SERVICE_PORTS

ROOT = Path(__file__).resolve().parents[2]


def compose_command() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    assert shutil.which("docker-compose"), "install a compose client (.ci/run installs Debian's docker-compose)"
    return ["docker-compose"]


def test_compose_file_is_accepted_by_docker_compose():
    result = subprocess.run(compose_command() + ["-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_compose_runs_every_service_on_the_port_make_up_uses():
    result = subprocess.run(compose_command() + ["-f", str(ROOT / "docker-compose.yml"), "config"],
                            capture_output=True, text=True, cwd=ROOT, check=True)
    text = result.stdout
    for name, port in SERVICE_PORTS.items():
        assert f"services.{name}.app:app" in text
        assert f"{port}" in text


def test_every_topic_has_a_dead_letter_topic():
    names = all_topic_names()
    for name in all_topic_names(with_dead_letters=False):
        assert f"{name}.dlq" in names
    assert json.dumps(names)
