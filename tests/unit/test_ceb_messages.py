"""Reading CEB messages (spec §7.5): customs' samples, hardening, prefixes, per-record problems."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.gateway.ceb.messages import (
    CebError,
    MalformedMessage,
    OrderRecord,
    RecordCountError,
    UnknownMessageType,
    parse_message,
)
from services.gateway.ceb.receipts import accepted, message_receipt, parse_receipt, refused, validate_receipt

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ceb"
INBOUND = {"CEB311", "CEB411", "CEB511", "CEB621", "CEB303", "CEB505", "CEB603"}
SAMPLES = sorted(FIXTURES.glob("*/*.xml"))


def sample(name: str) -> bytes:
    return next(FIXTURES.glob(f"*/{name}Message.xml")).read_bytes()


def test_the_samples_are_there():
    assert len(SAMPLES) == 18


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_every_sample_parses(path: Path):
    """The seven accepted messages parse with every record readable; receipts read as receipts; the two
    list cancellations (CEB605, CEB623) are well-formed but not accepted (spec §7.5 does not list them)."""
    data = path.read_bytes()
    kind = path.stem[:6]
    if kind in INBOUND:
        message = parse_message(data)
        assert message.message_type == f"{kind}Message"
        assert message.records and all(r.ok for r in message.records), [r.problems for r in message.records]
        assert message.base_transfer is not None and message.base_transfer.copCode
        assert message.signature is not None and b"SignatureValue" in message.signature
    elif kind in {"CEB605", "CEB623"}:
        with pytest.raises(UnknownMessageType) as e:
            parse_message(data)
        assert e.value.message_type == f"{kind}Message"
    else:
        receipt_type, returns = parse_receipt(data)
        assert receipt_type == f"{kind}Message" and returns
        assert all("returnStatus" in r for r in returns)


def test_export_samples_with_basetransfer_out_of_place_are_read():
    """Customs' CEB303 sample repeats BaseTransfer after the records, where the schema expects
    BaseSubscribe/Signature: the first one is read and the deviation noted."""
    message = parse_message(sample("CEB303"))
    assert message.base_transfer.copCode == "1105910159"
    assert message.notes == ["2 BaseTransfer elements; the first was read"]
    assert len(message.records) == 10


def test_typed_values():
    message = parse_message(sample("CEB311"))
    order = message.records[0].record
    assert isinstance(order, OrderRecord)
    assert order.head.acturalPaid == Decimal("19050")
    assert order.head.appTime.isoformat() == "2016-03-08T11:27:01+08:00"
    assert [line.gnum for line in order.lines] == [1, 2]
    assert order.lines[0].note is None  # <ceb:note></ceb:note> is an absent optional element
    export = parse_message(sample("CEB303")).records[0].record
    assert export.head.goodsValue == Decimal("12345678912345.12345")  # five decimals are CEB's own shape


def _with_prefix(data: bytes, prefix: str | None) -> bytes:
    text = data.decode("utf-8-sig")
    if prefix is None:  # the default namespace, no prefix at all
        text = text.replace('xmlns:ceb="http://www.chinaport.gov.cn/ceb"', 'xmlns="http://www.chinaport.gov.cn/ceb"')
        text = re.sub(r"<(/?)ceb:", r"<\1", text)
    else:
        text = text.replace("xmlns:ceb=", f"xmlns:{prefix}=")
        text = re.sub(r"<(/?)ceb:", rf"<\1{prefix}:", text)
    return text.encode()


@pytest.mark.parametrize("prefix", [None, "x", "cebns"])
@pytest.mark.parametrize("name", ["CEB311", "CEB621", "CEB505"])
def test_any_prefix_reads_the_same(name: str, prefix: str | None):
    original = parse_message(sample(name))
    rewritten = _with_prefix(sample(name), prefix)
    assert b"ceb:" not in rewritten.split(b"<ds:Signature")[0].split(b"?>", 1)[1]
    again = parse_message(rewritten)
    assert [r.record for r in again.records] == [r.record for r in original.records]
    assert again.base_transfer == original.base_transfer


def test_a_wrong_namespace_is_not_a_ceb_message():
    data = sample("CEB311").replace(b"http://www.chinaport.gov.cn/ceb", b"http://example.com/ceb")
    with pytest.raises(UnknownMessageType):
        parse_message(data)


def test_not_well_formed_is_malformed():
    with pytest.raises(MalformedMessage):
        parse_message(sample("CEB311")[:500])
    with pytest.raises(MalformedMessage):
        parse_message(b"not xml at all")


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE ceb:CEB311Message [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ceb:CEB311Message xmlns:ceb="http://www.chinaport.gov.cn/ceb" guid="G" version="1.0"><ceb:Order><ceb:OrderHead>
<ceb:orderNo>&xxe;</ceb:orderNo></ceb:OrderHead></ceb:Order></ceb:CEB311Message>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<ceb:CEB311Message xmlns:ceb="http://www.chinaport.gov.cn/ceb" guid="G" version="1.0">&lol3;</ceb:CEB311Message>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE ceb:CEB311Message SYSTEM "http://127.0.0.1:1/evil.dtd">
<ceb:CEB311Message xmlns:ceb="http://www.chinaport.gov.cn/ceb" guid="G" version="1.0"/>"""


@pytest.mark.parametrize("data", [XXE, LAUGHS, EXTERNAL_DTD, XXE.replace(b"DOCTYPE", b"doctype")],
                         ids=["xxe", "billion-laughs", "external-dtd", "lowercase"])
def test_doctype_and_entities_are_refused(data: bytes):
    with pytest.raises(MalformedMessage, match="DOCTYPE"):
        parse_message(data)


def test_a_doctype_in_utf16_is_refused_after_parsing_without_resolving():
    """The byte scan cannot see a UTF-16 DOCTYPE; the parser reads it without resolving anything and the
    docinfo check refuses it."""
    data = EXTERNAL_DTD.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="UTF-16"?>')
    with pytest.raises(MalformedMessage):
        parse_message(data.decode().encode("utf-16"))


def _records(name: str, n: int) -> bytes:
    """`name`'s sample with its records repeated or cut to `n`."""
    text = sample(name).decode("utf-8-sig")
    tag = {"CEB311": "Order", "CEB411": "Payment"}[name]
    spans = [m.span() for m in re.finditer(rf"<ceb:{tag}>.*?</ceb:{tag}>", text, flags=re.S)]
    records = [text[a:b] for a, b in spans]
    start, end = spans[0][0], spans[-1][1]
    return (text[:start] + "".join((records * (n // len(records) + 1))[:n]) + text[end:]).encode()


@pytest.mark.parametrize("n", [0, 101])
def test_record_count_is_1_to_100(n: int):
    with pytest.raises(RecordCountError) as e:
        parse_message(_records("CEB411", n))
    assert e.value.count == n


def test_100_records_are_accepted():
    assert len(parse_message(_records("CEB411", 100)).records) == 100


def test_a_bad_record_beside_good_ones_yields_one_problem():
    text = sample("CEB411").decode("utf-8-sig")
    # the third payment: amountPaid with six decimals, and its payTime missing
    spans = [m.span() for m in re.finditer(r"<ceb:Payment>.*?</ceb:Payment>", text, flags=re.S)]
    a, b = spans[2]
    bad = re.sub(r"<ceb:amountPaid>.*?</ceb:amountPaid>", "<ceb:amountPaid>1.123456</ceb:amountPaid>", text[a:b])
    bad = re.sub(r"<ceb:payTime>.*?</ceb:payTime>", "", bad)
    text = text[:a] + bad + text[b:]
    message = parse_message(text.encode())
    assert [r.ok for r in message.records] == [True, True, False] + [True] * 7
    problems = message.records[2].problems
    assert {p.element for p in problems} == {"PaymentHead/amountPaid", "PaymentHead/payTime"}
    assert {p.code for p in problems} == {"invalid", "missing"}
    assert message.records[2].keys["payTransactionId"]  # the receipt can still name the record


def test_a_missing_line_element_names_the_line():
    text = sample("CEB311").decode("utf-8-sig")
    text = text.replace("<ceb:gmodel>33mm</ceb:gmodel>", "", 1)  # first order, first line
    message = parse_message(text.encode())
    assert [p.element for p in message.records[0].problems] == ["OrderList[1]/gmodel"]
    assert all(r.ok for r in message.records[1:])


def test_unknown_elements_in_a_record_are_kept():
    text = sample("CEB511").decode("utf-8-sig")
    text = text.replace("<ceb:goodsInfo>", "<ceb:extraThing>42</ceb:extraThing><ceb:goodsInfo>", 1)
    record = parse_message(text.encode()).records[0].record
    assert record.unknown == {"LogisticsHead/extraThing": "42"}


@pytest.mark.parametrize("name", sorted(INBOUND))
def test_the_signature_is_kept_byte_for_byte(name: str):
    data = sample(name)
    signature = parse_message(data).signature
    assert signature.startswith(b"<ds:Signature") and signature.endswith(b"</ds:Signature>")
    assert signature in data and b"<ds:SignatureValue>" in signature


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=0, max_value=20000), junk=st.binary(max_size=40))
def test_damaged_messages_raise_only_ceb_errors(cut: int, junk: bytes):
    """Whatever a sender garbles, the parser answers with a CebError (a 400 or 422), never anything else;
    and whatever it reads, the receipt answering it validates against the official schema."""
    data = sample("CEB311")
    data = data[:cut] + junk + data[cut + len(junk):]
    try:
        message = parse_message(data)
    except CebError:
        return
    outcomes = [accepted() if r.ok else refused(message.kind, r.problems) for r in message.records]
    assert validate_receipt(message_receipt(message, outcomes, datetime.now(timezone.utc))) == []


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_ceb_errors(data: bytes):
    try:
        parse_message(data)
    except CebError:
        pass


def test_the_raw_message_is_kept():
    data = sample("CEB621")
    assert parse_message(data).raw == data


_KEY_ELEMENTS = ["guid", "orderNo", "ebpCode", "ebcCode", "payCode", "payTransactionId", "logisticsCode",
                 "logisticsNo", "copNo", "preNo", "invtNo", "agentCode", "customsCode", "statisticsFlag"]


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(INBOUND)), element=st.sampled_from(_KEY_ELEMENTS),
       value=st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]), max_size=80))
def test_any_identifying_value_gives_a_valid_receipt(name: str, element: str, value: str):
    """Whatever a record's identifying elements hold (empty, too long, any letters), its receipt validates."""
    from xml.sax.saxutils import escape
    replacement = f"<ceb:{element}>{escape(value)}</ceb:{element}>"  # a function: no backslash escapes
    text = re.sub(rf"<ceb:{element}>[^<]*</ceb:{element}>", lambda _: replacement, sample(name).decode("utf-8-sig"))
    message = parse_message(text.encode())
    outcomes = [accepted() if r.ok else refused(message.kind, r.problems) for r in message.records]
    assert validate_receipt(message_receipt(message, outcomes, datetime.now(timezone.utc))) == []
