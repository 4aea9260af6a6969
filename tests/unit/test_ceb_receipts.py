"""Receipts (spec §7.5): every receipt the gateway builds validates strictly against the official XSD."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from lxml import etree

from services.gateway.ceb.mapping import complete_order
from services.gateway.ceb.messages import NS, RecordProblem, parse_message
from services.gateway.ceb.receipts import (
    DECISION_STATUS,
    accepted,
    decision_of,
    decision_receipt,
    format_error_receipt,
    held,
    list_keys,
    message_receipt,
    not_the_party,
    parse_receipt,
    refused,
    return_time,
    validate_receipt,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ceb"
INBOUND = ["CEB311", "CEB411", "CEB511", "CEB621", "CEB303", "CEB505", "CEB603"]
RECEIPT_OF = {"CEB311": "CEB312", "CEB411": "CEB412", "CEB511": "CEB512", "CEB621": "CEB622",
              "CEB303": "CEB304", "CEB505": "CEB506", "CEB603": "CEB604"}
AT = datetime(2026, 11, 24, 2, 0, 0, 123456, tzinfo=timezone.utc)  # 10:00:00.123 China time


def sample(name: str) -> bytes:
    return next(FIXTURES.glob(f"*/{name}Message.xml")).read_bytes()


@dataclass
class _Problem:
    field: str
    element: str
    message: str


def _outcomes(message):
    kinds = [
        accepted(),
        held(["items[0].hs_code", "trade_mode"], "CEB621 list"),
        refused(message.kind, [_Problem("actual_paid", "OrderHead/acturalPaid", "expected 447.50 = goods + …"),
                               RecordProblem("OrderList[2]/qty", "missing", "qty is required")]),
        not_the_party("ebpCode", "1105910159"),
    ]
    return [kinds[i % len(kinds)] for i in range(len(message.records))]


@pytest.mark.parametrize("name", INBOUND)
def test_every_receipt_for_the_samples_validates(name: str):
    message = parse_message(sample(name))
    xml = message_receipt(message, _outcomes(message), AT)
    assert validate_receipt(xml) == []
    receipt_type, returns = parse_receipt(xml)
    assert receipt_type == f"{RECEIPT_OF[name]}Message"
    assert len(returns) == len(message.records)  # one Return per record, in order
    assert [r["returnStatus"] for r in returns[:4]] == ["120", "2", returns[2]["returnStatus"], "-10102"]
    assert returns[2]["returnStatus"] == {"order": "-301008", "payment": "-401009", "waybill": "-504011",
                                          "list": "-621001"}[message.kind]
    assert "actual_paid (OrderHead/acturalPaid)" in returns[2]["returnInfo"]
    assert "held: waiting for CEB621 list for items[0].hs_code, trade_mode" == returns[1]["returnInfo"]
    assert all(r["returnTime"] == "20261124100000123" for r in returns)


@pytest.mark.parametrize("name", INBOUND)
def test_a_record_that_could_not_be_read_still_gets_a_valid_return(name: str):
    """Break every record's identifying elements but keep the message well-formed: the receipt stays valid."""
    text = sample(name).decode("utf-8-sig")
    for key in ("orderNo", "ebpCode", "payTransactionId", "logisticsNo", "copNo", "guid"):
        text = text.replace(f"<ceb:{key}>", f"<ceb:{key}>{'X' * 70}")
    message = parse_message(text.encode())
    assert not any(r.ok for r in message.records)
    outcomes = [refused(message.kind, r.problems) for r in message.records]
    xml = message_receipt(message, outcomes, AT)
    assert validate_receipt(xml) == []


def test_receipts_are_stable():
    message = parse_message(sample("CEB311"))
    first = message_receipt(message, _outcomes(message), AT)
    assert message_receipt(parse_message(sample("CEB311")), _outcomes(message), AT) == first
    other = message_receipt(message, [accepted()] * len(message.records), AT)
    assert etree.fromstring(other).get("guid") != etree.fromstring(first).get("guid")


def test_return_time_is_17_digits_china_time():
    assert return_time(AT) == "20261124100000123"
    with pytest.raises(ValueError):
        return_time(datetime(2026, 1, 1))


@pytest.mark.parametrize("direction", ["import", "export"])
@pytest.mark.parametrize("decision", sorted(DECISION_STATUS))
def test_decision_receipts_validate(direction: str, decision: str):
    listed = parse_message(sample("CEB621" if direction == "import" else "CEB603")).records[0].record
    reasons = [("AMOUNT_MISMATCH", "the payment is not the order's total"),
               ("PARTY_NOT_REGISTERED", "1105910159")] if decision == "returned" else []
    _, _, xml = decision_receipt(direction, list_keys(listed), decision, reasons, AT, event_id="customs-evt-42")
    assert validate_receipt(xml) == []
    receipt_type, [ret] = parse_receipt(xml)
    assert receipt_type == ("CEB622Message" if direction == "import" else "CEB604Message")
    assert ret["returnStatus"] == DECISION_STATUS[decision]
    if decision == "returned":
        assert ret["returnInfo"] == ("[Code:AMOUNT_MISMATCH;Desc:the payment is not the order's total]"
                                     "[Code:PARTY_NOT_REGISTERED;Desc:1105910159]")
    _, _, again = decision_receipt(direction, list_keys(listed), decision, reasons, AT, event_id="customs-evt-42")
    assert again == xml  # a replayed feed gives the same receipt


def test_decision_of_customs_status():
    assert [decision_of("released", "green"), decision_of("inspection", "yellow"), decision_of("inspection", "red"),
            decision_of("rejected", None), decision_of("pending", None)] == [
        "released", "document_review", "inspection", "returned", "accepted"]
    assert [DECISION_STATUS[d] for d in ("accepted", "document_review", "inspection", "released", "returned")] == [
        "120", "300", "500", "800", "100"]
    with pytest.raises(ValueError):
        decision_of("cancelled", None)


def test_format_error_receipt_validates():
    xml = format_error_receipt("CEB623Message", "CEB623Message is not a message this gateway accepts", AT, b"<x/>")
    assert validate_receipt(xml) == []
    assert parse_receipt(xml)[1][0]["returnStatus"] == "-1"


def test_the_sample_receipts_validate_so_the_check_is_the_real_schema():
    for name in RECEIPT_OF.values():
        assert validate_receipt(sample(name)) == [], name


def _broken(xml: bytes, how: str) -> bytes:
    doc = etree.fromstring(xml)
    ret = doc[0]
    if how == "missing returnTime":
        ret.remove(ret.find(f"{{{NS}}}returnTime"))
    elif how == "14-digit returnTime":
        ret.find(f"{{{NS}}}returnTime").text = "20261124100000"
    elif how == "elements out of order":
        status = ret.find(f"{{{NS}}}returnStatus")
        ret.remove(status)
        ret.insert(0, status)
    elif how == "short guid":
        doc.set("guid", "abc")
    return etree.tostring(doc)


@pytest.mark.parametrize("how", ["missing returnTime", "14-digit returnTime", "elements out of order", "short guid"])
def test_a_broken_receipt_fails_validation(how: str):
    message = parse_message(sample("CEB411"))
    xml = message_receipt(message, [accepted()] * len(message.records), AT)
    assert validate_receipt(xml) == []
    assert validate_receipt(_broken(xml, how)) != []


def test_a_held_order_names_what_it_waits_for_from_the_mapping():
    order = parse_message(sample("CEB311"))
    mapped = complete_order(order.records[0].record, None)
    outcome = held(mapped.missing, "CEB621 list")
    assert outcome.status == "2" and "items[0].hs_code" in outcome.info and "trade_mode" in outcome.info
