"""Property-based requests generated from the published OpenAPI document (schemathesis): whatever a
client sends, the gateway answers with a clear 4xx, never a 5xx."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

OPENAPI = Path(__file__).resolve().parents[2] / "contracts/schemas/openapi.json"


@pytest.mark.parametrize("who", ["operator", "enterprise with every role"])
def test_generated_requests_never_get_a_server_error(api, who):
    if who == "operator":
        token = "dev-admin-token"
    else:
        token = api.register(["platform", "ecommerce", "payment", "logistics"]).key
    result = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", str(OPENAPI), "--url", api.mesh.url("gateway"),
         "-H", f"Authorization: Bearer {token}", "--checks", "not_a_server_error", "--max-examples", "60",
         "--phases", "examples,coverage,fuzzing", "--seed", "20261126", "--no-color"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
