"""Two commands on a fresh machine (issue 10): CI runs exactly the README's commands; every make target runs in
the project's .venv after the setup it needs, and that setup is skipped once its stamp is newer than its inputs."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP_INPUTS = ["deploy/setup.sh", "pyproject.toml", "constraints.txt", "deploy/kafka/pom.xml"]
# target -> the setup it needs: the demo's side needs no PostgreSQL, compose or npm; the tests' side does.
TARGETS = {"demo": "demo", "up": "demo", "down": "demo", "status": "demo", "dead-letters": "demo",
           "test": "test", "test-unit": "test", "bench": "test", "chaos": "test"}


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands on a fresh machine", 1)[1]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_the_readme_opens_with_the_two_commands():
    headings = re.findall(r"^## (.+)$", (ROOT / "README.md").read_text(), flags=re.MULTILINE)
    assert headings[0] == "Two commands on a fresh machine"
    assert readme_commands() == ["make demo", "make test"]


def test_ci_runs_the_readme_commands_in_order_and_installs_nothing_itself():
    script = "\n".join(line for line in (ROOT / ".ci/run").read_text().splitlines()
                       if not line.lstrip().startswith("#"))
    ran = [f"make {target}" for target in re.findall(r"\bmake (\S+)", script) if target != "down"]
    assert ran == readme_commands()
    for installer in ("apt-get", "pip", "npm", "mvn", "fetch.sh", "setup.sh", "python"):
        assert not re.search(rf"\b{re.escape(installer)}\b", script), f".ci/run runs {installer}: make must"


@pytest.fixture
def makefile_dir(tmp_path: Path) -> Path:
    """The Makefile alone, with empty stand-ins for its setup inputs, so `make -n` shows what make would run."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    for name in SETUP_INPUTS:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    return tmp_path


def dry_run(directory: Path, target: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}  # under `make test`
    out = subprocess.run(["make", "-n", "--no-print-directory", target], cwd=directory, env=env,
                         capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_every_target_sets_up_first_and_runs_in_the_venv(makefile_dir: Path):
    for target, purpose in TARGETS.items():
        lines = dry_run(makefile_dir, target)
        assert lines[0] == f"deploy/setup.sh {purpose}", (target, lines)
        commands = [line for line in lines[1:] if "python" in line]
        assert commands and all(line.startswith(".venv/bin/python ") for line in commands), (target, lines)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_the_setup_is_skipped_once_done_and_redone_when_an_input_changes(makefile_dir: Path):
    (makefile_dir / ".venv").mkdir()
    past = time.time() - 60
    for name in SETUP_INPUTS:
        os.utime(makefile_dir / name, (past, past))
    for stamp in (".venv/.setup-demo", ".venv/.setup-test"):  # what deploy/setup.sh leaves when it is done
        (makefile_dir / stamp).touch()
    for target in TARGETS:
        assert not any("setup.sh" in line for line in dry_run(makefile_dir, target)), target
    os.utime(makefile_dir / "constraints.txt")  # a new pin
    assert dry_run(makefile_dir, "demo")[0] == "deploy/setup.sh demo"
    assert dry_run(makefile_dir, "test")[0] == "deploy/setup.sh test"
