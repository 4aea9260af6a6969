"""The CEB polling feed's pure parts (spec §7.5): customs' decisions as list receipts, timed-out records,
and what a record keeps beyond §4 shown in the order's trace without personal data."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from types import SimpleNamespace

from contracts.envelope import Envelope
from contracts.v1.events import CustomsDecision, Reason
from services.gateway.ceb import feed, submission
from services.gateway.ceb.receipts import parse_receipt, validate_receipt
from shared.batch import Received

AT = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)
LIST_KEYS = {"guid": "4CDE1CFD-EDED-46B1-946C-B8022E42FC94", "customsCode": "3700", "ebpCode": "P", "ebcCode": "E",
             "agentCode": "A", "copNo": "COP-1", "orderNo": "O-1"}


def decision(status: str, channel: str | None = None, reasons: list[Reason] | None = None, order_no: str = "O-1",
             event_id: uuid.UUID | None = None) -> Received:
    d = CustomsDecision(platform_code="P", order_no=order_no, order_version=1, ecommerce_code="E", direction="import",
                        trade_mode="9610", status=status, channel=channel, reasons=reasons or [], decided_at=AT)
    env = Envelope(event_id=event_id or uuid.uuid4(), type="customs.decision", version=1, source="customs",
                   correlation_id=f"P:{order_no}", payload=d.model_dump(mode="json"))
    return Received(env, d)


def kept_list(sender: str = "AGENT") -> SimpleNamespace:
    return SimpleNamespace(direction="import", keys=LIST_KEYS, sender=sender)


def test_a_release_is_800_for_the_lists_sender_and_its_seller():
    rows = feed.decision_receipts([decision("released", "green")], {("P", "O-1"): kept_list()})
    assert [r["recipient"] for r in rows] == ["AGENT", "E"]
    (ret,) = parse_receipt(rows[0]["xml"].encode())[1]
    assert ret["returnStatus"] == "800" and ret["copNo"] == "COP-1"
    assert validate_receipt(rows[0]["xml"].encode()) == []
    assert rows[0]["guid"] == rows[1]["guid"]


def test_a_rejection_is_100_with_one_code_per_reason():
    reasons = [Reason(code="AMOUNT_MISMATCH", message="paid 10.00, order says 12.00"),
               Reason(code="IDENTITY_MISMATCH", message="payer is not the buyer")]
    (row,) = feed.decision_receipts([decision("rejected", reasons=reasons)], {("P", "O-1"): kept_list("E")})
    (ret,) = parse_receipt(row["xml"].encode())[1]
    assert ret["returnStatus"] == "100"
    assert ret["returnInfo"] == ("[Code:AMOUNT_MISMATCH;Desc:paid 10.00, order says 12.00]"
                                 "[Code:IDENTITY_MISMATCH;Desc:payer is not the buyer]")


def test_channels_and_what_has_no_list_receipt():
    lists = {("P", "O-1"): kept_list("E")}
    statuses = [parse_receipt(feed.decision_receipts([d], lists)[0]["xml"].encode())[1][0]["returnStatus"]
                for d in (decision("inspection", "yellow"), decision("inspection", "red"), decision("pending"))]
    assert statuses == ["300", "500", "120"]
    assert feed.decision_receipts([decision("cancelled")], lists) == []
    assert feed.decision_receipts([decision("released", "green", order_no="REST-ONLY")], lists) == []


def test_the_same_decision_gives_the_same_receipt():
    event_id = uuid.uuid4()
    lists = {("P", "O-1"): kept_list("E")}
    first = feed.decision_receipts([decision("released", "green", event_id=event_id)], lists)
    again = feed.decision_receipts([decision("released", "green", event_id=event_id)], lists)
    assert first == again


def test_a_timed_out_record_says_what_it_waited_for():
    row = SimpleNamespace(waiting_for="items[0].hs_code, trade_mode")
    outcome = feed.timeout_outcome(row, 72)
    assert outcome.status == "100"
    assert outcome.info.startswith("[Code:DOCUMENT_TIMEOUT;Desc:held 72 hours waiting for items[0].hs_code")


def test_the_trace_shows_what_section_4_has_no_field_for_but_never_a_person():
    extras = {"head": {"billNo": "B-1", "buyerName": "Zhang San", "buyerIdNumber": "110101199003070011",
                       "telephone": "13800000000", "guid": "X"},
              "items": [{"gmodel": "50ml", "list.qty1": "2", "list.unit1": "007", "list.buyerName": "x"}],
              "list": {"consigneeAddress": "1 Road", "voyageNo": "V1"}}
    (entry,) = submission._trace_entries("P:O-1", AT, "CEB311Message", extras)
    assert entry.type == "ceb.kept" and entry.source == "gateway"
    assert "billNo=B-1" in entry.summary and "items[1].gmodel=50ml" in entry.summary
    assert "items[1].list.qty1=2" in entry.summary and "list.voyageNo=V1" in entry.summary
    for personal in ("Zhang San", "110101199003070011", "13800000000", "1 Road", "guid"):
        assert personal not in entry.summary


def test_a_long_trace_is_split_not_cut():
    extras = {"items": [{"gmodel": "x" * 100} for _ in range(20)]}
    entries = submission._trace_entries("P:O-1", AT, "CEB311Message", extras)
    assert len(entries) > 1 and all(len(e.summary) <= 500 for e in entries)
    assert sum(e.summary.count("gmodel=") for e in entries) == 20
