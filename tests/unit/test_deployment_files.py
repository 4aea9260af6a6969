"""docker-compose.yml stays valid and consistent with `make up` (same services, same ports), takes every
secret from the environment with no working default, publishes the gateway alone, gives the sealing keys to
the gateway (public) and customs (private) alone, and runs every service as its own Kafka principal."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import yaml

from contracts.topics import all_topic_names
from deploy.mesh import SERVICE_PORTS
from shared.sealing import keygen

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PUBLIC, PRIVATE = keygen()
# A deployment's secrets: what `docker compose up` needs in its environment (or an .env file).
SECRETS = {
    "SW_ADMIN_TOKEN": "operator-secret", "SW_POSTGRES_PASSWORD": "pg-secret",
    "SW_CUSTOMS_SEALING_PUBLIC_KEY": PUBLIC, "SW_CUSTOMS_SEALING_PRIVATE_KEY": PRIVATE,
    "SW_CUSTOMS_PSEUDONYM_KEY": "pseudonym-secret", "SW_KAFKA_ADMIN_PASSWORD": "kafka-admin-secret",
    "SW_GATEWAY_FINGERPRINT_KEY": "fingerprint-secret",
    **{f"SW_KAFKA_PASSWORD_{name.upper()}": f"kafka-{name}-secret" for name in SERVICE_PORTS},
}


def compose_env(**changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SW_")}
    env.update(SECRETS)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def config(**changes: str | None) -> subprocess.CompletedProcess:
    return subprocess.run(compose_command() + ["-f", str(COMPOSE), "config"], capture_output=True, text=True,
                          cwd=ROOT, env=compose_env(**changes))


@lru_cache(maxsize=1)
def resolved() -> dict:
    result = config()
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def compose_command() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    assert shutil.which("docker-compose"), "install a compose client (.ci/run installs Debian's docker-compose)"
    return ["docker-compose"]


def test_compose_file_is_accepted_by_docker_compose():
    result = config()
    assert result.returncode == 0, result.stderr


def test_compose_runs_every_service_on_the_port_make_up_uses():
    services = resolved()["services"]
    for name, port in SERVICE_PORTS.items():
        assert services[name]["command"][1] == f"services.{name}.app:app"
        assert services[name]["command"][-1] == str(port)


def test_every_secret_is_required_from_the_environment():
    text = COMPOSE.read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert required == set(SECRETS)
    # `${NAME:?message}` has no default: without it compose refuses and names it (a sample; each call is slow)
    for name in ("SW_ADMIN_TOKEN", "SW_CUSTOMS_SEALING_PRIVATE_KEY", "SW_KAFKA_PASSWORD_TAX"):
        result = config(**{name: None})
        assert result.returncode != 0 and name in result.stderr, (name, result.stderr)
    assert not re.search(r"\$\{\w*(TOKEN|PASSWORD|KEY)\w*:-", text), "a secret with a default"
    assert "dev-admin-token" not in text and "dev-customs" not in text


def test_compose_runs_in_production_unless_told_otherwise():
    services = resolved()["services"]
    for name in SERVICE_PORTS:
        assert services[name]["environment"]["SW_ENV"] == "production"


OBSERVABILITY = {"prometheus", "grafana", "jaeger"}  # the optional profile (docs/observability.md)


def published_address(port) -> str:  # noqa: ANN001 - compose gives "host:published:target" or a mapping
    if isinstance(port, dict):
        return f"{port.get('host_ip', '0.0.0.0')}:{port.get('published')}"
    return str(port).rsplit(":", 1)[0]


def test_only_the_gateway_is_published():
    services = resolved()["services"]
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published - OBSERVABILITY == {"gateway"}
    for name in published & OBSERVABILITY:  # the observability UIs: on loopback unless told otherwise
        assert all(published_address(p).startswith("127.0.0.1:") for p in services[name]["ports"]), services[name]
    [port] = services["gateway"]["ports"]
    assert str(port.get("target") if isinstance(port, dict) else port).split("/")[0].endswith(":8000")


def test_the_sealing_keys_reach_the_gateway_and_customs_alone():
    services = resolved()["services"]
    holders = {key: {name for name, svc in services.items() if key in (svc.get("environment") or {})}
               for key in ("SW_CUSTOMS_SEALING_PUBLIC_KEY", "SW_CUSTOMS_SEALING_PRIVATE_KEY", "SW_CUSTOMS_PSEUDONYM_KEY")}
    assert holders == {"SW_CUSTOMS_SEALING_PUBLIC_KEY": {"gateway"}, "SW_CUSTOMS_SEALING_PRIVATE_KEY": {"customs"},
                       "SW_CUSTOMS_PSEUDONYM_KEY": {"customs"}}
    assert PRIVATE not in json.dumps(services["gateway"]) and PRIVATE in json.dumps(services["customs"])


def test_each_service_is_its_own_kafka_principal_and_its_own_database():
    services = resolved()["services"]
    for name in SERVICE_PORTS:
        env = services[name]["environment"]
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
        assert (env["KAFKA_SASL_USERNAME"], env["KAFKA_SASL_PASSWORD"]) == (name, f"kafka-{name}-secret")
        assert f"{name}=kafka-{name}-secret" in services["kafka"]["environment"]["KAFKA_SCRAM_USERS"].split()
        urls = {k for k in env if k.endswith("_DATABASE_URL")}
        assert urls == {f"{name.upper()}_DATABASE_URL"}, "a service is given another service's database"
    topics = services["topics"]["environment"]
    assert topics["KAFKA_SASL_USERNAME"] == "admin"
    assert {name for name, svc in services.items()
            if "SW_KAFKA_ADMIN_PASSWORD" in json.dumps(svc) or "kafka-admin-secret" in json.dumps(svc)} == {"kafka", "topics"}


def test_every_topic_has_a_dead_letter_topic():
    names = all_topic_names()
    for name in all_topic_names(with_dead_letters=False):
        assert f"{name}.dlq" in names
    assert json.dumps(names)


def test_the_observability_services_are_an_optional_profile():
    services = resolved()["services"]
    assert OBSERVABILITY <= set(services)
    for name in OBSERVABILITY:
        assert services[name].get("profiles") == ["observability"], name
    for name in SERVICE_PORTS:  # a plain `docker compose up` is unchanged; traces off unless an endpoint is set
        assert not services[name].get("profiles")
        assert services[name]["environment"].get("OTEL_EXPORTER_OTLP_ENDPOINT", "") == ""


def test_prometheus_scrapes_every_service_by_its_compose_name_and_port():
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]] for job in scrape["scrape_configs"]}
    assert targets == {name: [f"{name}:{port}"] for name, port in SERVICE_PORTS.items()}
    compose = resolved()["services"]
    for name, port in SERVICE_PORTS.items():
        assert compose[name]["command"][-1] == str(port)
