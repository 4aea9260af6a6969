"""The API description a client generator sees is the true one: schemathesis, with every check, against the
description the running gateway serves (`GET /openapi.json`, contracts/schemas/openapi.json byte for byte), as
each kind of caller: a platform, a payment firm, a logistics firm, the operator, and no one.

Every check of schemathesis runs (status codes, content types, response headers and schemas, the Allow header
of a 405, negative data refused, positive data accepted, authentication not ignored, ...) on a real gateway with
its real broker and PostgreSQL (the e2e mesh); a test fails on any failure schemathesis reports.

The judgement is the repository's schemathesis.toml, the one `schemathesis run` finds: two expected answers set
per operation by what the published description marks, never by disabling a check:

- an operation with `x-rules-beyond-schema.refused-with: 422` (sums, check digits, registered parties,
  reference rates: rules a JSON Schema cannot state, listed in its description) may refuse a schema-valid body
  with 422;
- a batch twin (`x-batch-results`, spec §7.1) answers 200 with a 422 *result* for a document that breaks its
  schema: the batch is not refused for one bad document;
- customs' own messages (`x-ceb-message`, spec §7.5) have an XML body no JSON Schema describes: text valid
  against "a string" may be refused with 400, 413, 415 or 422 (a CEB900 receipt).

Bounded in time: each role's own operations (OWN) in depth, with the explicit examples, the coverage phase and
SW_SCHEMATHESIS_EXAMPLES (default 12) fuzzed requests; every other operation with LIGHT_EXAMPLES fuzzed
requests. A fixed seed, so a failure reproduces. (No stateful sequences: see the note at the end.) About a minute on two cores (two with
the machine busy), besides starting the mesh.
"""
from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import httpx
import pytest
import schemathesis

from tests.e2e.conftest import ADMIN

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("SW_SCHEMATHESIS_EXAMPLES", "12"))
SEED = 20261129
ROOT = Path(__file__).resolve().parents[2]
OPENAPI_FILE = ROOT / "contracts" / "schemas" / "openapi.json"  # what `python -m tooling.contracts.publish` writes
CONFIG_FILE = ROOT / "schemathesis.toml"


# What each role is for: its own operations are tested in depth (schemathesis' coverage phase, with its
# boundary values, wrong types and methods, and fuzzing); every other operation lightly (a few fuzzed requests,
# which it refuses as documented: 401 without a key, 403 with the wrong role). The depth goes where a role's
# requests reach past authorization; the light pass keeps the run to minutes.
OWN = {
    "operator": ["POST /v1/enterprises", "GET /v1/enterprises/{code}", "POST /v1/enterprises/{code}/keys",
                 "GET /v1/enterprises/{code}/keys", "DELETE /v1/enterprises/{code}/keys/{key_id}",
                 "GET /v1/enterprises/{code}/platforms", "PUT /v1/enterprises/{code}/platforms", "GET /v1/stats",
                 "GET /v1/orders/{platform_code}/{order_no}", "GET /v1/orders/{platform_code}/{order_no}/trace"],
    "platform": ["POST /v1/orders", "POST /v1/orders:batch", "PUT /v1/orders/{platform_code}/{order_no}",
                 "DELETE /v1/orders/{platform_code}/{order_no}", "GET /v1/orders/{platform_code}/{order_no}",
                 "GET /v1/orders/{platform_code}/{order_no}/trace", "GET /v1/enterprises/{code}",
                 # any enterprise's: the platform stands for them
                 "POST /v1/webhooks", "GET /v1/webhooks", "DELETE /v1/webhooks/{webhook_id}",
                 "GET /v1/webhooks/{webhook_id}/deliveries"],
    "payment": ["POST /v1/payments", "POST /v1/payments:batch", "GET /v1/enterprises/{code}/keys"],
    "logistics": ["POST /v1/waybills", "POST /v1/waybills:batch",
                  "POST /v1/waybills/{logistics_code}/{waybill_no}/events"],
    "anonymous": ["GET /healthz", "GET /metrics"],
}
LIGHT_EXAMPLES = 3


def schemathesis_config(*, deep: bool) -> schemathesis.Config:
    """The repository's schemathesis.toml (every check; what 422 and a batch's 200 mean, per operation, from
    the published extensions), bounded: in depth, the examples, coverage and fuzzing phases with EXAMPLES fuzzed
    requests per operation; else LIGHT_EXAMPLES fuzzed requests."""
    config = tomllib.loads(CONFIG_FILE.read_text())
    config.update({
        "seed": SEED,
        "generation": {"max-examples": EXAMPLES if deep else LIGHT_EXAMPLES, "database": "none"},
        "phases": {"examples": {"enabled": deep}, "coverage": {"enabled": deep}, "fuzzing": {"enabled": True},
                   "stateful": {"enabled": False}},
    })
    return schemathesis.Config.from_dict(config, base_dir=str(ROOT))


PUBLISHED = json.loads(OPENAPI_FILE.read_text())
EVERY = {f"{m.upper()} {p}" for p, item in PUBLISHED["paths"].items() for m in item}
UNKNOWN = {name for names in OWN.values() for name in names} - EVERY
assert not UNKNOWN, f"OWN names operations the gateway does not have: {sorted(UNKNOWN)}"
# An operation added later and not yet given to its role is tested in depth as the operator.
OWN["operator"] += sorted(EVERY - {name for names in OWN.values() for name in names})
DEEP = schemathesis.openapi.from_dict(PUBLISHED, config=schemathesis_config(deep=True))
LIGHT = schemathesis.openapi.from_dict(PUBLISHED, config=schemathesis_config(deep=False))


def test_the_configuration_selects_the_operations_the_description_marks():
    """schemathesis.toml's expressions select exactly the operations with the extensions (a renamed
    extension would otherwise leave them silently unselected)."""
    def marked(test) -> set[str]:  # noqa: ANN001
        return {f"{m.upper()} {p}" for p, item in PUBLISHED["paths"].items() for m, op in item.items() if test(op)}

    def configured(check: str, status: str) -> set[str]:
        return {op.label for op in (r.ok() for r in DEEP.get_all_operations())
                if status in getattr(DEEP.config.checks_config_for(operation=op), check).expected_statuses}

    refused = marked(lambda op: op.get("x-rules-beyond-schema", {}).get("refused-with") == 422)
    batches = marked(lambda op: op.get("x-batch-results") is True)
    ceb = marked(lambda op: op.get("x-ceb-message") is True)  # customs' XML (spec §7.5): any text fits its schema
    assert refused and batches and ceb
    assert configured("positive_data_acceptance", "422") == refused | ceb
    assert configured("positive_data_acceptance", "400") == ceb
    assert configured("negative_data_rejection", "200") == batches


def test_the_gateway_serves_the_published_description(api):
    served = httpx.get(api.mesh.url("gateway") + "/openapi.json", timeout=30)
    assert served.status_code == 200 and served.headers["content-type"] == "application/json"
    assert served.content == OPENAPI_FILE.read_bytes()
    docs = httpx.get(api.mesh.url("gateway") + "/docs", timeout=30)
    assert docs.status_code == 200 and "/openapi.json" in docs.text


@pytest.fixture(scope="module")
def callers(api) -> dict[str, dict]:
    """Each role's headers, and the path parameters that name its own enterprise (so its requests reach past
    "not yours" to the route's own checks)."""
    found: dict[str, dict] = {"anonymous": {"headers": {}, "own": {}},
                              "operator": {"headers": {"Authorization": f"Bearer {ADMIN}"}, "own": {}}}
    for role in ("platform", "payment", "logistics"):
        me = api.register([role])
        found[role] = {"headers": me.auth,
                       "own": {"code": me.code, **({f"{role}_code": me.code} if role != "payment" else {})}}
    return found


def call_as(case, caller: dict, api) -> None:  # noqa: ANN001 - a schemathesis Case
    for name, value in caller["own"].items():
        if case.path_parameters and name in case.path_parameters:
            case.path_parameters[name] = value
    case.call_and_validate(base_url=api.mesh.url("gateway"), headers=caller["headers"])


def _tests_for(role: str):  # noqa: ANN202
    """The two tests of a role (named for pytest before schemathesis wraps them)."""

    def deep(case, callers, api):  # noqa: ANN001
        call_as(case, callers[role], api)

    def light(case, callers, api):  # noqa: ANN001
        call_as(case, callers[role], api)

    deep.__name__ = deep.__qualname__ = f"test_as_{role}_its_own_operations_conform"
    light.__name__ = light.__qualname__ = f"test_as_{role}_every_other_operation_conforms"
    own = set(OWN[role])
    # (`exclude` of the rest, not `include`: the per-operation check settings add an include of their own.)
    return (DEEP.exclude(lambda ctx: ctx.operation.label not in own).parametrize()(deep),
            LIGHT.exclude(lambda ctx: ctx.operation.label in own).parametrize()(light))


for _role in OWN:
    for _test in _tests_for(_role):
        globals()[_test.__name__] = _test


# No stateful run (sequences along the description's links) in `make test`: against a live gateway, the
# state one example leaves (the enterprise it registered now exists) changes which links the next example can
# take, and hypothesis then stops with "inconsistent data generation" (FlakyStrategyDefinition), in CI on two
# busy cores though not alone. `schemathesis run` from the repository with the stateful phase is the way to
# explore the links by hand (docs/contracts.md).
