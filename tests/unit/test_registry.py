"""The service registry (shared/registry.py): every service is declared once, in its own folder, and what
lists the services is derived from it or, where a file must be static, generated and compared here."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deploy import generate, mesh
from shared import kafka_acls
from shared.registry import SERVICES, SERVICES_DIR, ServiceInfo, discover

ROOT = Path(__file__).resolve().parents[2]


def test_every_service_folder_declares_itself_and_the_ports_are_the_known_ones():
    with_app = sorted(p.parent.name for p in SERVICES_DIR.glob("*/app.py"))
    assert sorted(s.name for s in SERVICES) == with_app
    assert {s.name: s.port for s in SERVICES}.items() >= {"gateway": 8000, "customs": 8001, "tax": 8002, "fx": 8003,
                                                            "logistics": 8004, "credit": 8005}.items()
    assert SERVICES[0].name == "gateway"
    assert mesh.SERVICE_PORTS == {s.name: s.port for s in SERVICES}
    assert set(kafka_acls.SERVICES) == {s.name for s in SERVICES}


def test_static_files_equal_what_the_registry_says():
    assert generate.main(["--check"]) == 0, "run: python -m deploy.generate"
    assert generate.INIT_SQL.read_text() == generate.init_sql()
    compose = yaml.safe_load(generate.COMPOSE.read_text())
    for s in SERVICES:
        block = compose["services"][s.name]
        assert block["command"][1] == s.app and block["command"][-1] == str(s.port)
        assert block["environment"][s.database_url_variable].endswith(f"@postgres:5432/{s.database}")
        assert f"{s.name}=${{SW_KAFKA_PASSWORD_{s.name.upper()}:" in compose["services"]["kafka"]["environment"][
            "KAFKA_SCRAM_USERS"]


def test_a_new_declaration_reaches_the_generated_files(tmp_path):
    (tmp_path / "plants").mkdir()
    (tmp_path / "plants" / "service.toml").write_text("port = 8099\n")
    services = SERVICES + discover(tmp_path)
    assert "CREATE DATABASE plants;" in generate.init_sql(services)
    text = generate.compose(generate.COMPOSE.read_text(), services)
    block = yaml.safe_load(text)["services"]["plants"]
    assert block["command"] == ["uvicorn", "services.plants.app:app", "--host", "0.0.0.0", "--port", "8099"]
    assert block["environment"]["KAFKA_SASL_USERNAME"] == "plants"
    assert generate.compose(text, SERVICES) == generate.COMPOSE.read_text()  # and leaves again


def test_a_bad_declaration_is_refused(tmp_path):
    for name, text in (("a", "port = 8001\n"), ("b", "port = 8001\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "service.toml").write_text(text)
    with pytest.raises(ValueError, match="both declare port 8001"):
        discover(tmp_path)
    (tmp_path / "b" / "service.toml").write_text('port = "8002"\n')
    with pytest.raises(ValueError, match="integer port"):
        discover(tmp_path)


def test_one_alembic_environment_and_each_service_keeps_only_its_revisions():
    assert (ROOT / "shared" / "alembic_env" / "env.py").exists()
    assert (ROOT / "shared" / "alembic_env" / "script.py.mako").exists()
    for s in SERVICES:
        folder = SERVICES_DIR / s.name / "migrations"
        assert sorted(p.name for p in folder.iterdir() if p.name != "__pycache__") == ["versions"], s.name


def test_consumed_topics_are_the_handlers_subscriptions():
    customs = next(s for s in SERVICES if s.name == "customs")
    assert "sw.order.submitted.v2" in customs.consumed_topics()
    assert ServiceInfo("nothing-here", 1).consumed_topics() == frozenset()
