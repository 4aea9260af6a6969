"""The contract suite's agency mode (`python -m tooling.contracts.suite agency`): our five agencies, running on the
real broker, pass it; a deliberately broken tax agency (tests/doubles/broken_tax.py) fails it with a report
naming the scenario, the field, what was expected and what came.

The broken double listens and answers on its own prefixed copies of the topics (`--topic-prefix`), so it
never races our tax agency for the same golden orders, and its wrong answers never reach the read models.

The first tests judge hand-made answers without any broker: they pin down how the suite compares."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from tooling.contracts.suite.golden import ROLES
from tooling.contracts.suite.scenario import Expect, Received, Scenario, ScenarioState, Step, codes, judge, scenario_for
from contracts.v1.events import CustomsDecision, TaxAssessment
from deploy.mesh import ROOT
from shared.outbox import outbox_row

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)
KEY = "91350100M000100Y43:ORD-1"


def answer(payload, key: str = KEY, **header_changes) -> Received:
    """What an agency would publish, as our outbox publishes it."""
    row = outbox_row(payload, "tax", KEY, key)
    headers = {**json.loads(row["headers"]), **header_changes}
    return Received("tax.assessment.v1", row["key"], {k: v for k, v in headers.items() if v is not None}, row["value"])


def assessment(**changes) -> TaxAssessment:
    return TaxAssessment(**{"platform_code": "91350100M000100Y43", "order_no": "ORD-1", "order_version": 1,
                            "ecommerce_code": "E", "status": "assessed", "vat": Decimal("38.76"),
                            "total": Decimal("83.48"), "assessed_at": NOW, **changes})


EXPECT = Expect(TaxAssessment, KEY, {"status": "assessed", "vat": Decimal("38.76"), "total": Decimal("83.48")})


def findings(received: Received, expect: Expect = EXPECT) -> dict[str, tuple[str, str]]:
    return {f.field: (f.expected, f.got) for f in judge(expect, received)}


# --- how an answer is judged (no broker) ---------------------------------------------------------


def test_a_right_answer_has_no_findings():
    assert judge(EXPECT, answer(assessment())) == []


def test_a_wrong_value_is_named_with_what_was_expected_and_what_came():
    assert findings(answer(assessment(vat=Decimal("55.36"), total=Decimal("100.08")))) == {
        "vat": ("38.76", "55.36"), "total": ("83.48", "100.08")}


def test_key_headers_type_and_contract_are_checked_too():
    assert findings(answer(assessment(), key="ORD-1"))["(Kafka key)"] == (KEY, "ORD-1")
    assert findings(answer(assessment(), version=None))["(header version)"] == ("1", "(absent)")
    assert findings(answer(assessment(), traceparent=None))["(header traceparent)"] == ("the W3C trace context", "(absent)")
    # Money as a JSON number breaks the contract: reported with the field's path, as the gateway would name it.
    broken = answer(assessment())
    envelope = json.loads(broken.value)
    envelope["payload"]["vat"] = 38.76
    got = findings(Received(broken.topic, broken.key, broken.headers, json.dumps(envelope).encode()))
    assert got["vat"][0] == "valid per the tax.assessment v1 contract"
    assert "decimal string" in got["vat"][1]
    other = Received(broken.topic, broken.key, broken.headers, b"not json")
    assert "(record)" in findings(other)


def test_alternatives_and_reason_codes():
    base = {"platform_code": "P", "order_no": "1", "order_version": 1, "ecommerce_code": "E", "direction": "import",
            "trade_mode": "9610", "decided_at": NOW}
    expect = Expect(CustomsDecision, "P:1", {"status": "released", "reasons[].code": codes()},
                    ({"status": "inspection", "reasons[].code": codes("SELECTED_FOR_INSPECTION")},))

    def decision(status, *reason_codes):
        return CustomsDecision(**base, status=status, reasons=[{"code": c, "message": "m"} for c in reason_codes])

    def judged(d):
        row = outbox_row(d, "customs", "P:1")
        return judge(expect, Received("customs.decision.v1", "P:1", json.loads(row["headers"]), row["value"]))

    assert judged(decision("released")) == []
    assert judged(decision("inspection", "SELECTED_FOR_INSPECTION")) == []
    wrong = judged(decision("rejected", "IDENTITY_MISMATCH"))
    assert {f.field: f.got for f in wrong} == {"status": "rejected", "reasons[].code": '["IDENTITY_MISMATCH"]'}
    tolerant = codes("PROHIBITED_GOODS", tolerated=["NOT_ON_POSITIVE_LIST"])
    assert tolerant.matches(["PROHIBITED_GOODS", "NOT_ON_POSITIVE_LIST"]) and tolerant.matches(["PROHIBITED_GOODS"])
    assert not tolerant.matches(["NOT_ON_POSITIVE_LIST"]) and not tolerant.matches(["PROHIBITED_GOODS", "OVER_SINGLE_LIMIT"])


def test_answers_are_matched_in_order_per_key_and_type_and_later_ones_are_not_judged():
    first = Expect(TaxAssessment, KEY, {"status": "assessed"})
    second = Expect(TaxAssessment, KEY, {"status": "not_applicable"})
    state = ScenarioState(Scenario("s", "t", (Step(expect=(first,)), Step(expect=(second,)))))
    assert not state.step_done(0) and not state.failed
    state.add(answer(assessment()))
    assert state.step_done(0) and not state.step_done(1)
    state.add(answer(assessment(status="exempt")))  # the second answer is compared with the second expectation
    assert state.failed and [f.field for f in state.verdicts()[1][0].findings] == ["status"]

    state = ScenarioState(Scenario("s", "t", (Step(expect=(first,)),)))
    state.add(answer(assessment()))
    state.add(answer(assessment(status="not_applicable")))  # beyond what is expected: a later decision, not judged
    assert state.passed
    assert scenario_for([state], Received("tax.assessment.v1", "someone-else", {}, b"{}")) is None
    assert scenario_for([state], answer(assessment())) is state


# --- our agencies pass, the broken double fails ---------------------------------------------------------


def run_suite(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "tooling.contracts.suite", "agency", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.e2e
@pytest.mark.parametrize("role", ROLES)
def test_our_agencies_pass_the_agency_suite(mesh, role):
    done = run_suite("--role", role, "--bootstrap", mesh.bootstrap, "--timeout", "60")
    assert done.returncode == 0, done.stdout + done.stderr + mesh.log_tail(role)
    assert "PASSED" in done.stdout and "FAIL" not in done.stdout.replace("FAILED", "")


@pytest.mark.e2e
def test_the_broken_tax_double_fails_the_suite_with_a_readable_report(mesh):
    prefix = f"double-{uuid.uuid4().hex[:8]}."
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    double = subprocess.Popen([sys.executable, "-m", "tests.doubles.broken_tax", "--bootstrap", mesh.bootstrap,
                               "--topic-prefix", prefix], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            line = double.stdout.readline()
            if line.strip() == "ready" or not line:
                break
        assert line.strip() == "ready", f"the double did not start: {line}"
        done = run_suite("--role", "tax", "--bootstrap", mesh.bootstrap, "--timeout", "60",
                         "--topic-prefix", prefix, "--create-topics")
    finally:
        double.terminate()
        double.wait(15)
    report = done.stdout
    assert done.returncode == 1, report + done.stderr
    # The scenario, the field, what the domain says and what the double answered (VAT at 100%, not 70%).
    assert "FAIL     tax-retail-import" in report
    assert "vat: expected 38.76, got 55.36" in report
    assert "total: expected 83.48, got 100.08" in report
    assert "FAIL     tax-two-lines" in report and "vat: expected 79.56, got 113.65" in report
    # What the double gets right passes: the suite judges field by field, not the agency as a whole.
    for name in ("tax-general-trade", "tax-export-exempt", "tax-rejected-import"):
        assert f"PASS     {name}" in report, report
    assert "FAILED: 3 passed, 2 failed (of 5 scenarios)" in report
    assert f"answers read from: {prefix}tax.assessment.v1" in report


# --- the platform mode's CEB mode against the live gateway (spec 1.1 §7.5) --------------------------------


@pytest.mark.e2e
def test_the_ceb_mode_posts_messages_and_reads_their_later_receipts(mesh, parties, tmp_path):
    """An import as customs' messages, the list first: offline, the suite finds one broken order record
    beside the good one; the live gateway answers the same record with the same refusal and element, holds
    the list (2), and its feed later gives the list's 120 once the order completed it."""
    from tests.e2e.conftest import released_order_no
    from tests.support import order_body, payment_body, waybill_body
    from tooling.ceb import writer

    p = parties
    order = order_body(p.platform.code, p.ecommerce.code, released_order_no(p.platform.code, "CEB"))
    pay = payment_body(p.payment.code, order)
    order |= {"payment_code": p.payment.code, "payment_transaction_id": pay["payment_no"]}
    waybill = waybill_body(p.logistics.code, order)
    broken = order_body(p.platform.code, p.ecommerce.code, released_order_no(p.platform.code, "CEB"))
    orders = writer.message([writer.import_order_record(order), writer.import_order_record(broken)],
                            cop_code=p.platform.code)
    second = orders.rindex(b"<ceb:totalPrice>360.00</ceb:totalPrice>")
    orders = orders[:second] + b"<ceb:totalPrice>361.00</ceb:totalPrice>" + orders[second + 39:]
    (tmp_path / "1-list.xml").write_bytes(writer.import_list(order, waybill, cop_code=p.logistics.code,
                                                             agent_code=p.logistics.code))
    (tmp_path / "2-orders.xml").write_bytes(orders)
    (tmp_path / "3-payment.xml").write_bytes(writer.payment(pay, cop_code=p.payment.code))
    (tmp_path / "4-waybill.xml").write_bytes(writer.import_waybill(waybill, cop_code=p.logistics.code))

    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    keys = [f"--ceb-key={e.code}={e.key}" for e in (p.platform, p.payment, p.logistics)]
    done = subprocess.run([sys.executable, "-m", "tooling.contracts.suite", "platform", str(tmp_path), "--json",
                           "--gateway", mesh.url("gateway"), "--api-key", p.platform.key, *keys, "--poll", "30"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 1, done.stdout + done.stderr
    out = json.loads(done.stdout)
    # offline: the broken record alone, with its element
    assert {(v["location"].rsplit("/", 1)[-1], v["code"], v.get("element")) for v in out["violations"]} == {
        ("2-orders.xml#Order[2]", "-301008", "OrderList[1]/totalPrice"),
        ("2-orders.xml#Order[2]", "-301008", "OrderHead/goodsValue")}
    ceb = out["gateway"]["ceb"]
    returns = {r["location"].rsplit("/", 1)[-1]: (r["status"], r["info"]) for a in ceb["answers"] for r in a["returns"]}
    assert [a["status"] for a in ceb["answers"]] == [200, 200, 200, 200], ceb
    assert returns["1-list.xml#Inventory[1]"][0] == "2"  # held: waiting for the order
    assert returns["2-orders.xml#Order[1]"][0] == "120", returns  # the list was there: submitted
    status, info = returns["2-orders.xml#Order[2]"]
    assert status == "-301008" and "OrderList[1]/totalPrice" in info  # the gateway names the same element
    assert returns["3-payment.xml#Payment[1]"][0] == "120"
    assert returns["4-waybill.xml#Logistics[1]"][0] == "120"
    # the held list's later 120, from the feed
    assert any(r["location"] and r["location"].endswith("1-list.xml#Inventory[1]") and r["status"] == "120"
               for r in ceb["later"]), ceb["later"]
    assert ceb["still_held"] == []

