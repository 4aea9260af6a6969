"""The end-to-end harness: a real Kafka broker (KRaft), a throwaway PostgreSQL cluster with one database
per service, and every service as its own uvicorn process, started once per test session."""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from deploy.mesh import SERVICE_PORTS, Mesh, free_port
from tests.conftest import database_urls
from services.customs.rules import selected_for_inspection
from tests.support import new_uscc, order_body, payment_body, unique, wait_for, waybill_body

ADMIN = "dev-admin-token"
SALT = "e2e-salt"
BASE_RATE = "0.03"
TIMEOUT_HOURS = "0.006"  # about 22 seconds: long enough for every other test, short enough to watch expire


@pytest.fixture(scope="session")
def mesh(postgres_port, kafka_bootstrap):
    run_dir = Path(tempfile.mkdtemp(prefix="sw-e2e-"))
    env = {
        **database_urls(postgres_port),
        "CUSTOMS_SELECTION_SALT": SALT, "CUSTOMS_BASE_INSPECTION_RATE": BASE_RATE,
        "DOCUMENT_TIMEOUT_HOURS": TIMEOUT_HOURS, "CUSTOMS_SWEEP_SECONDS": "1",
        "LOGISTICS_ORDER_GRACE_HOURS": TIMEOUT_HOURS, "SW_ADMIN_TOKEN": ADMIN, "LOG_LEVEL": "INFO",
        # webhooks (tests/e2e/test_webhooks.py): retries in fractions of a second, a hang detected in one
        "SW_WEBHOOK_POLL_SECONDS": "0.2", "SW_WEBHOOK_BACKOFF_BASE_SECONDS": "0.3",
        "SW_WEBHOOK_BACKOFF_CAP_SECONDS": "1", "SW_WEBHOOK_READ_TIMEOUT_SECONDS": "1",
    }
    # SW_E2E_SERVICES=gateway,customs runs a subset while developing; CI runs them all.
    names = [n for n in os.environ.get("SW_E2E_SERVICES", ",".join(SERVICE_PORTS)).split(",") if n]
    m = Mesh(run_dir, ports={name: free_port() for name in names}, env=env,
             bootstrap=kafka_bootstrap)
    for name in m.ports:
        m.start_service(name)
    try:
        m.wait_healthy(list(m.ports))
        yield m
    finally:
        m.down()
        if not os.environ.get("SW_KEEP_TEST_RUN"):
            shutil.rmtree(run_dir, ignore_errors=True)


@dataclass
class Enterprise:
    code: str
    key: str
    roles: list[str]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


class Api:
    """The gateway as a platform, a payment firm or a logistics firm sees it."""

    def __init__(self, mesh: Mesh):
        self.mesh = mesh
        self.http = httpx.Client(base_url=mesh.url("gateway"), timeout=30)
        self.admin = {"Authorization": f"Bearer {ADMIN}"}

    def agency(self, name: str) -> httpx.Client:
        return httpx.Client(base_url=self.mesh.url(name), timeout=30, headers=self.admin)

    def register(self, roles: list[str], customs_credit: str = "general") -> Enterprise:
        code = new_uscc()
        r = self.http.post("/v1/enterprises", headers=self.admin, json={
            "code": code, "name": f"Enterprise {code}", "roles": roles, "country": "CN", "customs_credit": customs_credit})
        assert r.status_code == 201, r.text
        return Enterprise(code, r.json()["api_key"], roles)

    def order(self, platform: Enterprise, body: dict) -> httpx.Response:
        return self.http.post("/v1/orders", json=body, headers=platform.auth)

    def payment(self, payer: Enterprise, body: dict) -> httpx.Response:
        return self.http.post("/v1/payments", json=body, headers=payer.auth)

    def waybill(self, carrier: Enterprise, body: dict) -> httpx.Response:
        return self.http.post("/v1/waybills", json=body, headers=carrier.auth)

    def status(self, platform: Enterprise, order_no: str) -> dict:
        r = self.http.get(f"/v1/orders/{platform.code}/{order_no}", headers=platform.auth)
        assert r.status_code == 200, r.text
        return r.json()

    def wait_customs(self, platform: Enterprise, order_no: str, timeout: float = 60) -> dict:
        return wait_for(lambda: (s := self.status(platform, order_no))["customs"]["status"] != "pending" and s,
                        timeout, what=f"a customs decision on {order_no}")

    def wait_view(self, platform: Enterprise, order_no: str, section: str, timeout: float = 60) -> dict:
        return wait_for(lambda: (s := self.status(platform, order_no))[section]["status"] != "pending" and s,
                        timeout, what=f"{section} on {order_no}")

    def produced(self, service: str = "gateway") -> float:
        """Events the service has published so far, read once its outbox is drained."""

        def drained() -> float | None:
            text = httpx.get(self.mesh.url(service) + "/metrics", timeout=10).text
            values = {line.split("{")[0]: line for line in text.splitlines() if line.startswith("sw_outbox_lag{")}
            if values and float(values["sw_outbox_lag"].rsplit(" ", 1)[1]) == 0:
                return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                           if line.startswith("sw_events_produced_total{")) + 0.0001
            return None

        import time  # noqa: PLC0415

        time.sleep(0.6)  # one relay cycle, so an event committed just now is counted as lag or as sent
        return wait_for(drained, 30, what=f"{service}'s outbox to drain") - 0.0001

    def submit_import(self, parties: "Parties", order_no: str | None = None, *, body: dict | None = None,
                      payment: dict | None = None, waybill: dict | None = None, **order_kw) -> dict:
        body = body or order_body(parties.platform.code, parties.ecommerce.code,
                                  order_no or released_order_no(parties.platform.code), **order_kw)
        assert self.order(parties.platform, body).status_code == 202
        r = self.payment(parties.payment, payment or payment_body(parties.payment.code, body))
        assert r.status_code == 202, r.text
        r = self.waybill(parties.logistics, waybill or waybill_body(parties.logistics.code, body))
        assert r.status_code == 202, r.text
        return body


@dataclass
class Parties:
    platform: Enterprise
    ecommerce: Enterprise
    payment: Enterprise
    logistics: Enterprise


def released_order_no(platform_code: str, prefix: str = "ORD") -> str:
    """An order number the deterministic selection does not pick for inspection at the base rate."""
    while True:
        candidate = unique(prefix)
        if not selected_for_inspection(platform_code, candidate, SALT, __import__("decimal").Decimal(BASE_RATE)):
            return candidate


def inspected_order_no(platform_code: str, prefix: str = "ORD") -> str:
    while True:
        candidate = unique(prefix)
        if selected_for_inspection(platform_code, candidate, SALT, __import__("decimal").Decimal(BASE_RATE)):
            return candidate


@pytest.fixture(scope="session")
def api(mesh) -> Api:
    return Api(mesh)


@pytest.fixture
def parties(api) -> Parties:
    """Fresh enterprises for each test, so no test sees another's credit, quotas or totals."""
    return Parties(api.register(["platform"]), api.register(["ecommerce"]), api.register(["payment"]),
                   api.register(["logistics"]))
