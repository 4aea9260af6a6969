"""The mesh as deployed: SW_ENV=production (no default secret accepted), the broker secured (SASL/SCRAM, ACLs,
each service its own principal: what `make up` runs with SW_KAFKA_SECURE=1), the sealing keypair split
(the gateway holds the public key, customs alone the private one). An import goes through it end to end,
so every service can reach exactly what it needs; and a service given what it must not hold does not start."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from deploy.mesh import ROOT, SERVICE_PORTS, Mesh, free_port
from shared.sealing import keygen
from tests.e2e.conftest import SALT, Api, Parties, released_order_no

pytestmark = pytest.mark.e2e

ADMIN = "e2e-production-admin-token"
PUBLIC, PRIVATE = keygen()


def service_secrets(name: str) -> dict[str, str]:
    """What docker-compose.yml gives each service: the sealing keys to the gateway and customs alone."""
    if name == "gateway":
        return {"SW_CUSTOMS_SEALING_PUBLIC_KEY": PUBLIC}
    if name == "customs":
        return {"SW_CUSTOMS_SEALING_PRIVATE_KEY": PRIVATE, "SW_CUSTOMS_PSEUDONYM_KEY": "e2e-pseudonym-key"}
    return {}


@pytest.fixture(scope="module")
def secure_mesh():
    run_dir = Path(tempfile.mkdtemp(prefix="sw-e2e-secure-"))
    env = {"SW_ENV": "production", "SW_ADMIN_TOKEN": ADMIN, "CUSTOMS_SELECTION_SALT": SALT,
           "CUSTOMS_BASE_INSPECTION_RATE": "0.03", "SW_TOPIC_PARTITIONS": "2"}
    m = Mesh(run_dir, ports={name: free_port() for name in SERVICE_PORTS}, env=env, secure=True)
    saved = {k: os.environ.pop(k, None) for k in ("SW_CUSTOMS_SEALING_PRIVATE_KEY", "SW_CUSTOMS_SEALING_PUBLIC_KEY")}
    try:
        m.start_broker()
        m.create_topics()
        for name in m.ports:
            m.start_service(name, extra_env=service_secrets(name))
        m.wait_healthy(list(m.ports), timeout=180)
        yield m
    finally:
        m.down()
        os.environ.update({k: v for k, v in saved.items() if v is not None})
        if not os.environ.get("SW_KEEP_TEST_RUN"):
            shutil.rmtree(run_dir, ignore_errors=True)


def test_an_import_is_released_on_the_secured_production_mesh(secure_mesh):
    api = Api(secure_mesh)
    api.admin = {"Authorization": f"Bearer {ADMIN}"}
    parties = Parties(api.register(["platform"]), api.register(["ecommerce"]), api.register(["payment"]),
                      api.register(["logistics"]))
    body = api.submit_import(parties, released_order_no(parties.platform.code), buyer_id="110101199003070011")
    view = api.wait_customs(parties.platform, body["order_no"], timeout=120)
    # customs could open the identity numbers the gateway sealed (an IDENTITY_MISMATCH otherwise)
    assert view["customs"] == {"status": "released", "channel": "green", "reasons": []}
    for section in ("tax", "fx"):
        assert api.wait_view(parties.platform, body["order_no"], section, timeout=120)[section]["status"] != "pending"


@pytest.mark.parametrize("service, extra, refusal", [
    ("gateway", {"SW_CUSTOMS_SEALING_PUBLIC_KEY": PUBLIC, "SW_CUSTOMS_SEALING_PRIVATE_KEY": PRIVATE},
     "only customs may hold it"),
    ("gateway", {}, "SW_CUSTOMS_SEALING_PUBLIC_KEY"),
    ("customs", {"SW_CUSTOMS_PSEUDONYM_KEY": "k"}, "SW_CUSTOMS_SEALING_PRIVATE_KEY"),
    ("tax", {"SW_ADMIN_TOKEN": "dev-admin-token"}, "SW_ADMIN_TOKEN"),
])
def test_a_service_refuses_to_start_with_what_it_must_not_run_with(tmp_path, service, extra, refusal):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SW_CUSTOMS_SEALING", "SW_ADMIN"))}
    env.update({"SW_ENV": "staging", "SW_ADMIN_TOKEN": ADMIN, "SW_RUN_DIR": str(tmp_path),
                "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "PYTHONPATH": str(ROOT), **extra})
    proc = subprocess.run([sys.executable, "-m", "uvicorn", f"services.{service}.app:app", "--port", str(free_port())],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert refusal in proc.stdout + proc.stderr
