"""The contract suite's platform mode (`python -m tooling.contracts.suite platform`): a good document set passes;
every kind of violation is reported with its file and field; all of them at once, not only the first."""
from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from tooling.contracts.suite.__main__ import main
from tooling.contracts.suite.golden import Golden, example_documents
from tooling.contracts.suite.platform import check_platform_documents, kind_by_name, kind_by_shape
from tooling.contracts.suite.sandbox import answers_text, submit
from contracts.v1.documents import OrderIn
from shared.http import validation_errors


@pytest.fixture
def docs() -> dict[str, dict]:
    """The contract examples: a valid, consistent set of registrations, an import (order, payment,
    waybill), an export (order, waybill) and tracking events."""
    return example_documents()


def write(directory: Path, documents: dict[str, object]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, body in documents.items():
        (directory / name).write_text(json.dumps(body), encoding="utf-8")
    return directory


def problems(directory: Path, **kw) -> set[tuple[str, str, str]]:
    """(file name, field, code) of every violation."""
    report = check_platform_documents([directory], **kw)
    return {(Path(v.location.split("[")[0]).name + v.location[len(v.location.split("[")[0]):], v.field, v.code)
            for v in report.violations}


# --- a good set ----------------------------------------------------------------------------------


def test_the_example_set_is_clean(tmp_path, docs, capsys):
    write(tmp_path, docs)
    report = check_platform_documents([tmp_path])
    assert report.clean, report.violations
    assert {d.kind for d in report.documents} == {"enterprise", "order", "payment", "waybill", "tracking"}
    assert main(["platform", str(tmp_path)]) == 0
    assert "OK: 12 document(s), no violations" in capsys.readouterr().out


def test_the_examples_command_writes_a_set_that_passes(tmp_path, capsys):
    assert main(["examples", str(tmp_path / "ex")]) == 0
    assert len(list((tmp_path / "ex").glob("*.json"))) == 12
    assert main(["platform", str(tmp_path / "ex")]) == 0


def test_files_can_hold_lists_and_be_named_one_by_one(tmp_path, docs):
    write(tmp_path, {"batch.json": [docs["order-import_9610.json"], docs["payment-import_payment.json"],
                                    docs["waybill-import_waybill.json"]]})
    report = check_platform_documents([tmp_path / "batch.json"])
    assert report.clean, report.violations
    assert [d.location.rsplit("/", 1)[-1] for d in report.documents] == ["batch.json[0]", "batch.json[1]",
                                                                          "batch.json[2]"]


# --- telling the kind of a document ----------------------------------------------------------------


def test_the_kind_comes_from_the_shape_then_the_file_name_then_kind(tmp_path, docs):
    assert kind_by_shape(docs["order-import_9610.json"]) == "order"
    assert kind_by_shape(docs["payment-import_payment.json"]) == "payment"
    assert kind_by_shape(docs["waybill-import_waybill.json"]) == "waybill"
    assert kind_by_shape(docs["enterprise-platform.json"]) == "enterprise"
    assert kind_by_shape(docs["tracking-picked_up.json"]) == "tracking"
    assert kind_by_shape({"order_no": "X"}) is None
    assert kind_by_name(Path("2026-11/payment_0001.json")) == "payment"
    assert kind_by_name(Path("stuff.json")) is None

    write(tmp_path, {"payment-a.json": {"order_no": "X"}, "stuff.json": {"order_no": "X"}})
    found = problems(tmp_path, cross=False)
    assert ("payment-a.json", "payment_no", "missing") in found  # judged as the payment its name says
    assert ("stuff.json", "(body)", "unknown_kind") in found
    assert ("stuff.json", "payment_no", "missing") in problems(tmp_path, kind="payment", cross=False)


# --- each kind of violation, with its file and field -------------------------------------------------


def test_contract_violations_use_the_gateways_field_paths_and_codes(tmp_path, docs):
    order = docs["order-import_9610.json"]
    order["items"][0]["hs_code"] = "33049"
    order["freight"] = 12.0  # money as a JSON number
    order["buyer"]["id_number"] = "110101199003070012"  # wrong check character
    write(tmp_path, {"order-import_9610.json": order})
    report = check_platform_documents([tmp_path / "order-import_9610.json"], cross=False)
    # The very errors the gateway would answer with (shared.http.validation_errors, spec §2).
    with pytest.raises(ValidationError) as err:
        OrderIn.model_validate(order)
    gateway = validation_errors(list(err.value.errors()))
    assert [(v.field, v.code, v.message) for v in report.violations] == [
        (e["field"], e["code"], e["message"]) for e in gateway]
    assert {v.field for v in report.violations} == {"items[0].hs_code", "freight", "buyer.id_number"}
    assert all(v.location.endswith("order-import_9610.json") and v.refused_by == "gateway" for v in report.violations)


def test_a_cross_field_problem_names_its_field(tmp_path, docs):
    docs["order-import_9610.json"]["actual_paid"] = "400.00"
    write(tmp_path, docs)
    assert ("order-import_9610.json", "actual_paid", "sum_mismatch") in problems(tmp_path)


def test_malformed_files_and_bodies(tmp_path):
    (tmp_path / "order-1.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "order-2.json").write_text("[1]", encoding="utf-8")
    found = problems(tmp_path)
    assert ("order-1.json", "(file)", "json_invalid") in found
    assert ("order-2.json[0]", "(body)", "type") in found


def test_payment_amount_currency_and_payer_must_be_the_orders(tmp_path, docs):
    payment = docs["payment-import_payment.json"]
    payment.update(amount="447.00", currency="USD")
    payment["payer"].update(name="Li Si", id_number="11010519491231002X")
    write(tmp_path, docs)
    found = problems(tmp_path)
    assert {("payment-import_payment.json", "amount", "AMOUNT_MISMATCH"), ("payment-import_payment.json", "currency", "AMOUNT_MISMATCH"),
            ("payment-import_payment.json", "payer.name", "IDENTITY_MISMATCH"),
            ("payment-import_payment.json", "payer.id_number", "IDENTITY_MISMATCH")} <= found
    report = check_platform_documents([tmp_path])
    messages = " ".join(v.message for v in report.violations)
    assert "expected 447.50" in messages and "got 447.00" in messages
    # Identity numbers are shown masked, never in full.
    assert docs["order-import_9610.json"]["buyer"]["id_number"] not in messages and "11010519491231002X" not in messages
    assert "1101**********002X" in messages


def test_waybill_freight_must_be_the_orders(tmp_path, docs):
    docs["waybill-import_waybill.json"]["freight"] = "10.00"
    write(tmp_path, docs)
    assert ("waybill-import_waybill.json", "freight", "AMOUNT_MISMATCH") in problems(tmp_path)


def test_payment_and_waybill_must_name_an_order_of_the_set_and_its_platform(tmp_path, docs):
    docs["payment-import_payment.json"]["order_no"] = "NO-SUCH-ORDER"
    docs["waybill-import_waybill.json"]["platform_code"] = docs["enterprise-foreign_seller.json"]["code"]
    docs["enterprise-foreign_seller.json"]["roles"].append("platform")  # registered, so only the order is at fault
    write(tmp_path, docs)
    found = problems(tmp_path)
    assert ("payment-import_payment.json", "order_no", "ORDER_MISMATCH") in found
    assert ("waybill-import_waybill.json", "platform_code", "ORDER_MISMATCH") in found
    # ... and so the import order has neither a payment nor a waybill.
    assert {("order-import_9610.json", "order_no", "payment_missing"), ("order-import_9610.json", "order_no", "waybill_missing")} <= found


def test_imports_need_a_payment_and_a_waybill_exports_a_waybill(tmp_path, docs):
    for name in ("payment-import_payment.json", "waybill-export_waybill.json"):
        del docs[name]
    write(tmp_path, docs)
    found = problems(tmp_path)
    assert ("order-import_9610.json", "order_no", "payment_missing") in found
    assert ("order-export_9610.json", "order_no", "waybill_missing") in found
    assert ("order-export_9610.json", "order_no", "payment_missing") not in found


def test_a_payment_for_an_export_is_refused(tmp_path, docs):
    export = docs["order-export_9610.json"]
    docs["payment-export_9610.json"] = {**docs["payment-import_payment.json"], "payment_no": "PAY-EXPORT",
                                         "order_no": export["order_no"], "platform_code": export["platform_code"],
                                         "amount": export["actual_paid"], "currency": export["currency"]}
    write(tmp_path, docs)
    assert ("payment-export_9610.json", "order_no", "export_order") in problems(tmp_path)


def test_one_business_key_one_content_and_one_payment_per_order(tmp_path, docs):
    # Files are read in name order, and the first is taken as the one submitted first.
    docs["order-z-again.json"] = {**docs["order-import_9610.json"], "tax_total": "80.00", "actual_paid": "442.00"}
    docs["payment-z-again.json"] = {**docs["payment-import_payment.json"], "payment_no": "PAY-SECOND"}
    docs["waybill-z-again.json"] = {**docs["waybill-import_waybill.json"], "insured_fee": "1.00"}
    write(tmp_path, docs)
    found = problems(tmp_path)
    assert ("order-z-again.json", "order_no", "conflict") in found
    assert ("payment-z-again.json", "payment_no", "second_payment") in found
    assert ("waybill-z-again.json", "waybill_no", "conflict") in found
    assert not {f for f in found if f[0].startswith(("order-import", "payment-import", "waybill-import"))}


def test_goods_and_the_single_limit_that_customs_would_reject(tmp_path, docs):
    g = Golden(run_id="UNIT02")
    p = g.parties()
    shotgun = {"item_no": "SKU-1", "name": "Shotgun", "hs_code": "9303200000", "quantity": 1, "unit": "piece",
               "unit_price": "800.00", "origin_country": "US"}
    pills = {**shotgun, "name": "Pills", "hs_code": "3004909099"}
    creams = {**shotgun, "name": "Face cream", "hs_code": "3304990099", "quantity": 2, "unit_price": "3000.00"}
    bag = {**shotgun, "name": "Handbag", "hs_code": "4202210090", "unit_price": "6000.00"}
    orders = {
        "order-export-shotgun.json": g.order_body(p, [shotgun], direction="export"),
        "order-pills.json": g.order_body(p, [pills]),
        "order-creams.json": g.order_body(p, [creams]),
        "order-handbag.json": g.order_body(p, [bag]),  # one indivisible item: general trade, not rejected
    }
    write(tmp_path, orders)
    found = {f for f in problems(tmp_path) if not f[2].endswith("_missing")}
    assert found == {("order-export-shotgun.json", "items[0].hs_code", "PROHIBITED_GOODS"),
                     ("order-pills.json", "items[0].hs_code", "NOT_ON_POSITIVE_LIST"),
                     ("order-creams.json", "items", "OVER_SINGLE_LIMIT")}
    assert all(v.refused_by == "customs" for v in check_platform_documents([tmp_path]).violations)


def test_parties_are_checked_against_the_registrations_in_the_set(tmp_path, docs):
    del docs["enterprise-logistics_firm.json"]
    docs["enterprise-payment_firm.json"]["roles"] = ["logistics"]
    write(tmp_path, docs)
    found = problems(tmp_path)
    assert ("waybill-import_waybill.json", "logistics_code", "not_registered") in found
    assert ("payment-import_payment.json", "payment_code", "wrong_role") in found
    # Without registrations in the set, parties are not judged (the gateway knows them; the files do not).
    for name in [n for n in docs if n.startswith("enterprise-")]:
        (tmp_path / name).unlink()
    assert not {f for f in problems(tmp_path) if f[2] in ("not_registered", "wrong_role")}


# --- everything at once ------------------------------------------------------------------------------


def test_several_violations_are_reported_together(tmp_path, docs, capsys):
    docs["order-import_9610.json"]["items"][0]["hs_code"] = "12"
    docs["payment-import_payment.json"]["amount"] = "1.00"
    docs["payment-import_payment.json"]["payer"]["name"] = "Wang Wu"
    docs["waybill-import_waybill.json"]["freight"] = "99.00"
    docs["order-export_9610.json"]["destination_country"] = "usa"
    del docs["waybill-import_waybill.json"]["consignee"]  # an export waybill may omit it (spec 1.1 §7.5)
    del docs["waybill-export_waybill.json"]["consignee"]
    write(tmp_path, docs)
    assert main(["platform", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    for expected in ("order-import_9610.json\n  items[0].hs_code: expected a 10-digit HS code",
                     "order-export_9610.json\n  destination_country:", "waybill-import_waybill.json\n  consignee: required for an import order's waybill",
                     "payment-import_payment.json\n  amount: expected 447.50", "  payer.name: expected 'Zhang San'",
                     "  freight: expected 12.00"):
        assert expected in out, out
    # An order invalid in one field is still compared with its payment and waybill: every layer at once.
    assert problems(tmp_path) == {
        ("order-import_9610.json", "items[0].hs_code", "value_error"),
        ("order-export_9610.json", "destination_country", "value_error"),
        ("waybill-import_waybill.json", "consignee", "required"),
        ("payment-import_payment.json", "amount", "AMOUNT_MISMATCH"),
        ("payment-import_payment.json", "payer.name", "IDENTITY_MISMATCH"),
        ("waybill-import_waybill.json", "freight", "AMOUNT_MISMATCH"),
    }
    assert "FAILED: 6 violation(s) in 4 of 12 document(s)" in out

    assert main(["platform", "--json", str(tmp_path)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["clean"] is False
    assert {(Path(v["location"]).name, v["field"]) for v in report["violations"]} >= {
        ("order-import_9610.json", "items[0].hs_code"), ("order-export_9610.json", "destination_country"),
        ("waybill-import_waybill.json", "consignee")}


def test_an_order_too_broken_to_compare_is_not_reported_as_missing(tmp_path, docs):
    docs["order-import_9610.json"]["actual_paid"] = 447.5  # a JSON number: no amount to compare the payment with
    write(tmp_path, docs)
    found = problems(tmp_path)
    assert ("order-import_9610.json", "actual_paid", "value_error") in found
    assert not {f for f in found if f[0] in ("payment-import_payment.json", "waybill-import_waybill.json")}


def test_cross_checks_can_be_left_out(tmp_path, docs):
    docs["payment-import_payment.json"]["amount"] = "1.00"
    write(tmp_path, {"payment-import_payment.json": docs["payment-import_payment.json"]})
    assert ("payment-import_payment.json", "order_no", "ORDER_MISMATCH") in problems(tmp_path)
    assert problems(tmp_path, cross=False) == set()


# --- against a sandbox gateway ----------------------------------------------------------------------


def test_documents_are_submitted_to_a_gateway_and_its_answers_reported(tmp_path, docs):
    write(tmp_path, {n: docs[n] for n in ("order-import_9610.json", "payment-import_payment.json", "tracking-picked_up.json")})
    seen = []

    def gateway(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)["documents"]
        seen.append((request.url.path, request.headers["authorization"], len(sent)))
        if request.url.path == "/v1/payments:batch":
            return httpx.Response(200, json={"results": [{"index": 0, "status": 422, "body": {
                "type": "/problems/validation-failed", "title": "Validation failed", "status": 422,
                "detail": "the document is not valid: amount",
                "errors": [{"field": "amount", "code": "value_error", "message": "bad"}]}}]})
        return httpx.Response(200, json={"results": [{"index": 0, "status": 202, "body": {"order_no": "x"}}]})

    report = check_platform_documents([tmp_path])
    with httpx.Client(base_url="http://sandbox", transport=httpx.MockTransport(gateway)) as client:
        answers = submit(report.documents, "http://sandbox", "sw_key", client)
    # Orders, payments and waybills go through the batch twins (spec §7.1).
    assert seen == [("/v1/orders:batch", "Bearer sw_key", 1), ("/v1/payments:batch", "Bearer sw_key", 1)]
    assert [(Path(a.location).name, a.status) for a in answers] == [
        ("order-import_9610.json", 202), ("payment-import_payment.json", 422), ("tracking-picked_up.json", None)]
    text = answers_text(answers, "http://sandbox")
    assert "422 " in text and "amount: bad [value_error]" in text and "1 refused" in text


def test_a_batch_reports_each_documents_own_answer_and_a_refused_batch_for_each(tmp_path, docs):
    order = docs["order-import_9610.json"]
    (tmp_path / "orders.json").write_text(json.dumps([order, {**order, "freight": "1.00"}, {**order, "order_no": "O-2"}]))

    def gateway(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)["documents"]
        if request.url.path == "/v1/orders:batch":
            return httpx.Response(200, json={"results": [
                {"index": i, "status": 409 if i == 1 else 202,
                 "body": {"type": "/problems/conflict", "title": "Conflict", "status": 409, "detail": "other content"}
                 if i == 1 else {"order_no": d["order_no"]}} for i, d in enumerate(sent)]})
        return httpx.Response(401, json={"type": "/problems/unauthorized", "title": "Unauthorized", "status": 401,
                                         "detail": "unknown API key"})

    write(tmp_path, {"waybill-1.json": docs["waybill-import_waybill.json"], "waybill-2.json": docs["waybill-import_waybill.json"]})
    report = check_platform_documents([tmp_path], cross=False)
    with httpx.Client(base_url="http://sandbox", transport=httpx.MockTransport(gateway)) as client:
        answers = submit(report.documents, "http://sandbox", "sw_key", client)
    assert [(Path(a.location).name, a.status) for a in answers] == [
        ("orders.json[0]", 202), ("orders.json[1]", 409), ("orders.json[2]", 202),
        ("waybill-1.json", 401), ("waybill-2.json", 401)]
    assert answers[1].title == "Conflict: other content"
