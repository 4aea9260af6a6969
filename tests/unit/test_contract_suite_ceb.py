"""The contract suite's CEB mode (`python -m tooling.contracts.suite platform DIR` with `*.xml` messages; spec
1.1 §7.5): the writer's messages of the contract examples pass clean; customs' own samples are reported with
exactly the defects the mapping tests describe (they are self-contradictory specimens); one broken record
beside good ones is reported alone, with its element; every CEB-only check gives its code; the existing
checks run on the mapped documents and name the XML element; a sandbox gateway gets the messages as they are
and its receipts (and later ones from the feed) are reported."""
from __future__ import annotations

import copy
import json
import shutil
from datetime import datetime
from pathlib import Path

import httpx

from contracts import examples as ex
from services.gateway.ceb.messages import CHINA_TIME
from tooling.ceb import writer
from tooling.contracts.suite.__main__ import main
from tooling.contracts.suite.ceb import example_messages
from tooling.contracts.suite.platform import check_platform_documents
from tooling.contracts.suite.sandbox import ceb_text, submit_ceb

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ceb"
AT = datetime(2026, 11, 24, 10, 0, 0, tzinfo=CHINA_TIME)


def write_examples(directory: Path, only: tuple[str, ...] = ()) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in example_messages(AT).items():
        if only and not name.startswith(only):
            continue
        (directory / name).write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    return directory


def found(directory: Path | list, **kw) -> set[tuple[str, str, str, str | None]]:
    """(location without the directory, field, code, element) of every violation."""
    report = check_platform_documents(directory if isinstance(directory, list) else [directory], **kw)
    return {(Path(v.location).name, v.field, v.code, v.element) for v in report.violations}


def notes(directory: Path) -> set[tuple[str, str]]:
    return {(Path(n.location).name, n.code) for n in check_platform_documents([directory]).notes}


# --- good messages -------------------------------------------------------------------------------------


def test_the_writers_messages_of_the_examples_pass_clean(tmp_path, capsys):
    assert main(["examples", "--ceb", str(tmp_path / "ex")]) == 0
    names = sorted(p.name for p in (tmp_path / "ex").iterdir())
    assert [n for n in names if n.endswith(".xml")] == [
        "export-1-CEB303-order.xml", "export-2-CEB505-waybill.xml", "export-3-CEB603-list.xml",
        "import-1-CEB311-order.xml", "import-2-CEB411-payment.xml", "import-3-CEB511-waybill.xml",
        "import-4-CEB621-list.xml"]
    capsys.readouterr()
    assert main(["platform", str(tmp_path / "ex")]) == 0
    out = capsys.readouterr().out
    assert "OK: 10 document(s), 5 of them from 7 CEB message(s), no violations" in out
    report = check_platform_documents([tmp_path / "ex"])
    assert report.clean and not report.notes
    # the five documents are the contract examples' order, payment and waybills, mapped back
    by_location = {Path(d.location).name: d for d in report.documents}
    order = by_location["import-1-CEB311-order.xml#Order[1]"]
    assert order.kind == "order" and order.body["items"][0]["hs_code"] == "3304990099"  # from the list
    assert by_location["import-2-CEB411-payment.xml#Payment[1]"].body["amount"] == "447.50"
    assert by_location["export-2-CEB505-waybill.xml#Logistics[1]"].body["order_no"] == ex.EXPORT_ORDER_NO


def test_messages_naming_parties_by_customs_code_are_resolved_through_the_registrations(tmp_path):
    """CEB names parties by the 10-character customs code; registrations carrying `customs_code` resolve
    them, as the gateway's registry does (spec §7.5)."""
    customs = {ex.PLATFORM: "3502960ABC", ex.PAYMENT_FIRM: "3120960DEF", ex.LOGISTICS_FIRM: "4403960GHI"}
    write_examples(tmp_path, ("enterprise-",))
    for name, code in (("platform", ex.PLATFORM), ("payment_firm", ex.PAYMENT_FIRM),
                       ("logistics_firm", ex.LOGISTICS_FIRM)):
        path = tmp_path / f"enterprise-{name}.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | {"customs_code": customs[code]}))
    order, pay, waybill = ex.IMPORT_ORDER_IN, ex.PAYMENT_IN, ex.IMPORT_WAYBILL_IN
    kw = {"party_codes": customs, "app_time": AT}
    (tmp_path / "o.xml").write_bytes(writer.import_order(order, cop_code=ex.PLATFORM, **kw))
    (tmp_path / "p.xml").write_bytes(writer.payment(pay, cop_code=ex.PAYMENT_FIRM, **kw))
    (tmp_path / "w.xml").write_bytes(writer.import_waybill(waybill, cop_code=ex.LOGISTICS_FIRM, **kw))
    (tmp_path / "l.xml").write_bytes(writer.import_list(order, waybill, cop_code=ex.LOGISTICS_FIRM,
                                                        agent_code=ex.LOGISTICS_FIRM, **kw))
    report = check_platform_documents([tmp_path])
    assert report.clean, report.violations
    assert {d.body["platform_code"] for d in report.documents if d.kind == "order"} == {ex.PLATFORM}
    # without the registrations the codes stay customs codes, and the parties are then not checked
    for p in tmp_path.glob("enterprise-*.json"):
        p.unlink()
    assert {d.body["platform_code"] for d in check_platform_documents([tmp_path]).documents
            if d.kind == "order"} == {"3502960ABC"}


# --- customs' samples: self-contradictory specimens -------------------------------------------------------


def test_customs_import_samples_show_the_defects_the_mapping_tests_describe(tmp_path):
    for name in ("CEB311", "CEB411", "CEB511", "CEB621"):
        shutil.copy(FIXTURES / "import" / f"{name}Message.xml", tmp_path)
    got = found(tmp_path)
    # CEB311: sent by the logistics firm (copCode 1101180326) for platform 1105910159
    assert ("CEB311Message.xml#Order[1]", "platform_code", "-10102", "OrderHead/ebpCode") in got
    # 200 × 10 is not 12000 (test_ceb_mapping: test_import_sample_defects_are_reported_with_field_and_element)
    assert ("CEB311Message.xml#Order[1]", "items[1].unit_price", "-301008", "OrderList[2]/totalPrice") in got
    # the list names another order than every order and waybill of the samples
    assert ("CEB621Message.xml#Inventory[1]", "order_no", "DOCUMENT_TIMEOUT", "InventoryHead/orderNo") in got
    assert ("CEB621Message.xml#Inventory[1]", "order_no", "-621001", "InventoryHead/orderNo") in got
    # the payments name orders that are not in the set
    assert ("CEB411Message.xml#Payment[1]", "order_no", "ORDER_MISMATCH", "PaymentHead/orderNo") in got
    # six waybills under one waybill number with different orders: one business key, one content
    assert ("CEB511Message.xml#Logistics[2]", "waybill_no", "conflict", "LogisticsHead/logisticsNo") in got
    # drafts are acknowledged, not submitted; records sent twice identically are one record
    n = notes(tmp_path)
    assert ("CEB621Message.xml#Inventory[2]", "draft") in n
    assert ("CEB311Message.xml#Order[2]", "duplicate") in n
    # the import samples are schema-valid
    assert not {g for g in got if g[2] == "schema_invalid"}


def test_customs_export_samples_show_the_defects_the_mapping_tests_describe():
    got = found(FIXTURES / "export")
    order = "CEB303Message.xml#Order[1]"
    assert {g for g in got if g[0] == order} == {
        (order, "items[0].unit", "-301008", "OrderList[1]/unit"),  # "aaa"
        (order, "currency", "-301008", "OrderList[1]/currency"),  # "aaa"
        (order, "items", "-301008", "OrderHead/goodsValue"),  # not 100 × 20
        (order, "actual_paid", "-301008", "OrderHead/goodsValue"),  # non-zero decimals beyond the second
    }
    # "0101" is general trade: the gateway refuses the list by its own content, so it completes nothing
    assert ("CEB603Message.xml#Inventory[1]", "trade_mode", "-621001", "InventoryHead/tradeMode") in got
    assert ("CEB505Message.xml#Logistics[1]", "platform_code", "DOCUMENT_TIMEOUT", "Logistics") in got
    # customs' export samples put BaseTransfer where the schema does not expect it: customs refuses, the
    # gateway tolerates (a note)
    assert {g[0] for g in got if g[2] == "schema_invalid"} == {
        "CEB303Message.xml", "CEB505Message.xml", "CEB603Message.xml"}
    assert ("CEB303Message.xml", "tolerated") in notes(FIXTURES / "export")
    # the receipts in the directory are not messages anyone sends to the gateway
    assert {g[0] for g in got if g[2] == "CEB900"} == {
        "CEB304Message.xml", "CEB506Message.xml", "CEB604Message.xml", "CEB605Message.xml", "CEB606Message.xml"}


# --- one broken record beside good ones --------------------------------------------------------------------


def three_imports() -> list[tuple[dict, dict, dict]]:
    out = []
    for n in (1, 2, 3):
        order = copy.deepcopy(ex.IMPORT_ORDER_IN) | {"order_no": f"ORD-CEB-{n}", "payment_transaction_id": f"PAY-CEB-{n}",
                                                     "payment_code": ex.PAYMENT_FIRM}
        pay = ex.PAYMENT_IN | {"payment_no": f"PAY-CEB-{n}", "order_no": f"ORD-CEB-{n}"}
        waybill = ex.IMPORT_WAYBILL_IN | {"waybill_no": f"SF-CEB-{n}", "order_no": f"ORD-CEB-{n}"}
        out.append((order, pay, waybill))
    return out


def write_three(directory: Path, broken_price: bool = False) -> Path:
    write_examples(directory, ("enterprise-",))
    sets = three_imports()
    kw = {"app_time": AT}
    orders = writer.message([writer.import_order_record(o, **kw) for o, _, _ in sets], cop_code=ex.PLATFORM)
    if broken_price:
        # the second order's line total no longer is quantity × price (2 × 180.00 = 360.00)
        first = orders.index(b"<ceb:totalPrice>360.00</ceb:totalPrice>")
        second = orders.index(b"<ceb:totalPrice>360.00</ceb:totalPrice>", first + 1)
        orders = orders[:second] + b"<ceb:totalPrice>361.00</ceb:totalPrice>" + orders[second + 39:]
    (directory / "orders.xml").write_bytes(orders)
    (directory / "payments.xml").write_bytes(
        writer.message([writer.payment_record(p, **kw) for _, p, _ in sets], cop_code=ex.PAYMENT_FIRM))
    (directory / "waybills.xml").write_bytes(
        writer.message([writer.import_waybill_record(w, **kw) for _, _, w in sets], cop_code=ex.LOGISTICS_FIRM))
    (directory / "lists.xml").write_bytes(writer.message(
        [writer.import_list_record(o, w, agent_code=ex.LOGISTICS_FIRM, **kw) for o, _, w in sets],
        cop_code=ex.LOGISTICS_FIRM))
    return directory


def test_one_broken_record_beside_good_ones_is_reported_alone_with_its_element(tmp_path, capsys):
    assert check_platform_documents([write_three(tmp_path / "good")]).clean
    got = found(write_three(tmp_path / "bad", broken_price=True))
    assert got == {("orders.xml#Order[2]", "items[0].unit_price", "-301008", "OrderList[1]/totalPrice"),
                   ("orders.xml#Order[2]", "items", "-301008", "OrderHead/goodsValue")}  # 360.00 is not 361.00
    assert main(["platform", str(tmp_path / "bad")]) == 1
    out = capsys.readouterr().out
    assert "orders.xml#Order[2]\n  items[0].unit_price (OrderList[1]/totalPrice): mismatch: totalPrice 361" in out
    assert main(["platform", str(tmp_path / "bad"), "--json"]) == 1
    violations = json.loads(capsys.readouterr().out)["violations"]
    assert {(v["element"], v["code"]) for v in violations} == {("OrderList[1]/totalPrice", "-301008"),
                                                                ("OrderHead/goodsValue", "-301008")}


# --- the CEB-only checks -----------------------------------------------------------------------------------


def test_malformed_doctype_unknown_type_and_record_counts(tmp_path):
    order = writer.import_order(ex.IMPORT_ORDER_IN, cop_code=ex.PLATFORM, app_time=AT)
    (tmp_path / "a-not-xml.xml").write_bytes(b"<ceb:CEB311Message")
    (tmp_path / "b-doctype.xml").write_bytes(order.replace(
        b"?>\n", b'?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n', 1))
    (tmp_path / "c-other.xml").write_bytes(b'<CEB999Message xmlns="http://www.chinaport.gov.cn/ceb"/>')
    root_end = order.index(b"<ceb:Order>")
    (tmp_path / "d-empty.xml").write_bytes(order[:root_end] + order[order.index(b"<ceb:BaseTransfer>"):])
    no_transfer = order[:order.index(b"<ceb:BaseTransfer>")] + b"</ceb:CEB311Message>\n"
    (tmp_path / "e-no-sender.xml").write_bytes(no_transfer)
    record = order[order.index(b"<ceb:Order>"):order.index(b"<ceb:BaseTransfer>")]
    (tmp_path / "g-101.xml").write_bytes(order[:root_end] + record * 101 + order[order.index(b"<ceb:BaseTransfer>"):])
    got = {(g[0], g[2]) for g in found(tmp_path)}
    assert ("g-101.xml", "CEB900") in got
    assert got >= {("a-not-xml.xml", "malformed"), ("b-doctype.xml", "malformed"), ("c-other.xml", "CEB900"),
                   ("d-empty.xml", "CEB900"), ("e-no-sender.xml", "CEB900")}
    # and the --ceb switch reads a message whatever its file name
    (tmp_path / "f.txt").write_bytes(b"<oops")
    report = check_platform_documents([tmp_path / "f.txt"], ceb=True)
    assert [(v.code, v.field) for v in report.violations] == [("malformed", "(message)")]


def test_strict_schema_errors_are_customs_refusals_the_gateway_may_not_make(tmp_path):
    order = writer.import_order(ex.IMPORT_ORDER_IN, cop_code=ex.PLATFORM, app_time=AT)
    # an element the schema does not know inside the record: the gateway keeps it, customs' schema refuses
    (tmp_path / "o.xml").write_bytes(order.replace(b"<ceb:note>", b"<ceb:mood>fine</ceb:mood><ceb:note>", 1)
                                     if b"<ceb:note>" in order else
                                     order.replace(b"</ceb:OrderHead>", b"<ceb:mood>fine</ceb:mood></ceb:OrderHead>", 1))
    report = check_platform_documents([tmp_path], cross=False)
    # (the order alone also waits for its list: DOCUMENT_TIMEOUT)
    assert [(v.code, v.refused_by) for v in report.violations] == [("schema_invalid", "customs"),
                                                                   ("DOCUMENT_TIMEOUT", "customs")]
    assert "mood" in report.violations[0].message and "leniently" in report.violations[0].message


def test_the_sender_must_be_the_records_party(tmp_path):
    write_examples(tmp_path, ("enterprise-", "import-2", "import-3", "import-4"))
    (tmp_path / "import-1-CEB311-order.xml").write_bytes(
        writer.import_order(ex.IMPORT_ORDER_IN, cop_code=ex.LOGISTICS_FIRM, app_time=AT))
    assert found(tmp_path) == {("import-1-CEB311-order.xml#Order[1]", "platform_code", "-10102", "OrderHead/ebpCode")}


def test_an_unreadable_record_is_refused_with_its_element(tmp_path):
    order = writer.import_order(ex.IMPORT_ORDER_IN, cop_code=ex.PLATFORM, app_time=AT)
    start, end = order.index(b"<ceb:buyerName>"), order.index(b"</ceb:buyerName>") + len(b"</ceb:buyerName>")
    (tmp_path / "o.xml").write_bytes(order[:start] + order[end:])
    got = found(tmp_path, cross=False)
    assert ("o.xml#Order[1]", "(record)", "-301008", "OrderHead/buyerName") in got
    assert {g[2] for g in got} == {"-301008", "schema_invalid"}


def test_app_types_drafts_corrections_and_cancellations(tmp_path):
    write_examples(tmp_path, ("enterprise-", "import-2", "import-3", "import-4"))
    order = ex.IMPORT_ORDER_IN
    (tmp_path / "import-1-CEB311-order.xml").write_bytes(
        writer.import_order(order, cop_code=ex.PLATFORM, app_time=AT, app_status="1"))
    got = found(tmp_path)
    # a draft is acknowledged and never submitted: its list waits for it, its payment and waybill name an
    # order that never comes
    assert ("import-1-CEB311-order.xml#Order[1]", "draft") in notes(tmp_path)
    assert ("import-4-CEB621-list.xml#Inventory[1]", "order_no", "DOCUMENT_TIMEOUT", "InventoryHead/orderNo") in got
    assert ("import-2-CEB411-payment.xml#Payment[1]", "order_no", "ORDER_MISMATCH", "PaymentHead/orderNo") in got
    # a correction (appType 2) of the order replaces it; a cancellation withdraws it
    (tmp_path / "import-1-CEB311-order.xml").write_bytes(writer.import_order(order, cop_code=ex.PLATFORM, app_time=AT))
    (tmp_path / "import-5-correction.xml").write_bytes(writer.import_order(
        order | {"freight": "13.00", "actual_paid": "448.50"}, cop_code=ex.PLATFORM, app_time=AT, app_type="2"))
    got = found(tmp_path)
    assert ("import-5-correction.xml#Order[1]", "correction") in notes(tmp_path)
    assert ("import-2-CEB411-payment.xml#Payment[1]", "amount", "AMOUNT_MISMATCH", "PaymentHead/amountPaid") in got
    assert ("import-3-CEB511-waybill.xml#Logistics[1]", "freight", "AMOUNT_MISMATCH", "LogisticsHead/freight") in got
    (tmp_path / "import-5-correction.xml").write_bytes(
        writer.import_order(order, cop_code=ex.PLATFORM, app_time=AT, app_type="3"))
    assert ("import-5-correction.xml#Order[1]", "cancellation") in notes(tmp_path)
    assert ("import-4-CEB621-list.xml#Inventory[1]", "order_no", "DOCUMENT_TIMEOUT", "InventoryHead/orderNo") in found(tmp_path)


def test_records_the_set_never_completes_time_out(tmp_path):
    # an export order and waybill without their list; an import list without its order
    write_examples(tmp_path, ("enterprise-", "export-1", "export-2", "import-4"))
    got = found(tmp_path)
    assert got == {
        ("export-1-CEB303-order.xml#Order[1]", "items[0].hs_code", "DOCUMENT_TIMEOUT", "OrderHead"),
        ("export-2-CEB505-waybill.xml#Logistics[1]", "platform_code", "DOCUMENT_TIMEOUT", "Logistics"),
        ("import-4-CEB621-list.xml#Inventory[1]", "order_no", "DOCUMENT_TIMEOUT", "InventoryHead/orderNo"),
    }
    message = next(v.message for v in check_platform_documents([tmp_path]).violations
                   if "CEB303" in v.location)
    assert "no CEB603 list names order" in message and "trade_mode" in message


def test_a_held_record_is_still_checked_for_what_it_carries(tmp_path):
    """As the gateway does before holding it: an order without its list whose buyer identity is invalid is
    refused for that now, beside its timeout."""
    bad = copy.deepcopy(ex.IMPORT_ORDER_IN)
    bad["buyer"]["id_number"] = "110101199003070012"  # wrong check character
    (tmp_path / "o.xml").write_bytes(writer.import_order(bad, cop_code=ex.PLATFORM, app_time=AT))
    got = {(g[1], g[2], g[3]) for g in found(tmp_path, cross=False)}
    assert ("buyer.id_number", "invalid_resident_id", "OrderHead/buyerIdNumber") in got
    assert any(g[1] == "DOCUMENT_TIMEOUT" for g in got)


# --- the existing checks on mapped documents name the XML element -------------------------------------------


def test_goods_checks_name_the_lists_element(tmp_path):
    write_examples(tmp_path, ("enterprise-", "import-2", "import-3"))
    pills = copy.deepcopy(ex.IMPORT_ORDER_IN)
    pills["items"][0]["hs_code"] = "3004909099"  # not on the retail-import positive list
    (tmp_path / "import-1-CEB311-order.xml").write_bytes(writer.import_order(pills, cop_code=ex.PLATFORM, app_time=AT))
    (tmp_path / "import-4-CEB621-list.xml").write_bytes(writer.import_list(
        pills, ex.IMPORT_WAYBILL_IN, cop_code=ex.LOGISTICS_FIRM, agent_code=ex.LOGISTICS_FIRM, app_time=AT))
    v, = check_platform_documents([tmp_path]).violations
    assert (Path(v.location).name, v.field, v.code) == (
        "import-1-CEB311-order.xml#Order[1]", "items[0].hs_code", "NOT_ON_POSITIVE_LIST")
    assert v.element == f"InventoryList[1]/gcode of {tmp_path / 'import-4-CEB621-list.xml'}#Inventory[1]"


# --- against a sandbox gateway -----------------------------------------------------------------------------


def receipt(receipt_type: str, element: str, returns: list[dict]) -> str:
    body = "".join(f"<ceb:{element}>" + "".join(f"<ceb:{k}>{v}</ceb:{k}>" for k, v in r.items()) + f"</ceb:{element}>"
                   for r in returns)
    return f'<ceb:{receipt_type} xmlns:ceb="http://www.chinaport.gov.cn/ceb">{body}</ceb:{receipt_type}>'


def test_messages_are_posted_as_they_are_and_every_return_reported(tmp_path):
    write_examples(tmp_path, ("import-1", "import-4"))
    report = check_platform_documents([tmp_path])
    posted, polled = [], []
    feed = [{"guid": "G1", "message_type": "CEB312Message", "xml": receipt("CEB312Message", "OrderReturn", [
        {"orderNo": ex.IMPORT_ORDER_NO, "returnStatus": "120", "returnInfo": "order submitted (HTTP 202)"}])}]

    def gateway(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ceb/v1/receipts":
            since = int(request.url.params["since"])
            polled.append((request.headers["authorization"], since))
            if since == 0:  # what the feed held before the run: not the run's news
                return httpx.Response(200, json={"receipts": [{**feed[0], "guid": "OLD"}], "next": 7})
            # the platform's feed, once the run has posted (the list's sender has nothing new)
            mine = request.headers["authorization"] == "Bearer sw_platform"
            page = feed if since == 7 and mine and len(posted) == 2 else []
            return httpx.Response(200, json={"receipts": page, "next": 8 if page else since})
        posted.append((request.headers["authorization"], request.content))
        if b"CEB311Message" in request.content:
            xml = receipt("CEB312Message", "OrderReturn", [
                {"orderNo": ex.IMPORT_ORDER_NO, "returnStatus": "2", "returnInfo": "held: waiting for CEB621 list"}])
        else:
            xml = receipt("CEB622Message", "InventoryReturn", [
                {"copNo": "X", "returnStatus": "-621001", "returnInfo": "trade_mode (InventoryHead/tradeMode): no"}])
        return httpx.Response(200, content=xml.encode(), headers={"content-type": "application/xml"})

    with httpx.Client(base_url="http://sandbox", transport=httpx.MockTransport(gateway)) as client:
        run = submit_ceb(report.ceb.messages, "http://sandbox", "sw_default", {ex.PLATFORM: "sw_platform"},
                         poll_seconds=5, client=client, sleep=lambda s: None)
    # each message with its sender's key, bytes as they are in the file
    assert [(auth, body == (tmp_path / name).read_bytes()) for (auth, body), name in zip(posted, (
        "import-1-CEB311-order.xml", "import-4-CEB621-list.xml"))] == [("Bearer sw_platform", True),
                                                                       ("Bearer sw_default", True)]
    first, second = run.answers
    assert [(Path(r.location).name, r.status) for r in first.returns] == [("import-1-CEB311-order.xml#Order[1]", "2")]
    assert second.refused and not first.refused
    # the held order's later 120 came from the feed, read from where it stood before the run
    assert [(Path(r.location).name, r.status) for r in run.later] == [("import-1-CEB311-order.xml#Order[1]", "120")]
    assert run.still_held == [] and run.refused  # the list was refused
    text = ceb_text(run, "http://sandbox")
    assert "-621001 trade_mode (InventoryHead/tradeMode): no" in text and "1 with one" in text


def test_a_refused_message_is_reported_with_its_status(tmp_path):
    write_examples(tmp_path, ("import-1",))
    report = check_platform_documents([tmp_path])

    def gateway(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"type": "/problems/forbidden", "title": "Forbidden", "status": 403,
                                         "detail": "BaseTransfer/copCode is not your enterprise"})

    with httpx.Client(base_url="http://sandbox", transport=httpx.MockTransport(gateway)) as client:
        run = submit_ceb(report.ceb.messages, "http://sandbox", "sw_key", client=client)
    answer, = run.answers
    assert answer.status == 403 and answer.refused and "copCode is not your enterprise" in answer.title


def test_a_record_still_held_after_polling_fails_the_run(tmp_path):
    write_examples(tmp_path, ("import-1",))
    report = check_platform_documents([tmp_path])

    def gateway(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ceb/v1/receipts":
            return httpx.Response(200, json={"receipts": [], "next": 0})
        return httpx.Response(200, content=receipt("CEB312Message", "OrderReturn", [
            {"orderNo": ex.IMPORT_ORDER_NO, "returnStatus": "2", "returnInfo": "held"}]).encode(),
            headers={"content-type": "application/xml"})

    with httpx.Client(base_url="http://sandbox", transport=httpx.MockTransport(gateway)) as client:
        run = submit_ceb(report.ceb.messages, "http://sandbox", "sw_key", poll_seconds=0.01, client=client,
                         sleep=lambda s: None)
    assert len(run.still_held) == 1 and run.refused
    assert "still held, no later receipt" in ceb_text(run, "http://sandbox")
