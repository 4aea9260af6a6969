"""The CEB front door (spec §7.5) attacked as a hostile user and misused as a newcomer would: authorization,
input, personal data, replays and corrections on SQLite and PostgreSQL, and the races on PostgreSQL with real
concurrency (two requests in one gateway, each its own connection; a rendezvous after the records are read
forces the interleaving that must not happen, and the lock races run once without the lock to prove the
test can fail; see tests/integration/test_races.py for the pattern)."""
from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, text

from services.gateway.app import app, service
from services.gateway.ceb import feed, store as ceb_store, submission
from services.gateway.ceb.receipts import parse_receipt, validate_receipt
from services.gateway.tables import ceb_records, orders, payments, trace, waybills
from shared.clock import utcnow
from shared.settings import settings as service_settings
from tests.conftest import create_database
from tests.integration.test_ceb_front_door import Gateway
from tests.integration.test_races import Rendezvous, after, no_lock
from tests.support import close_in_process_gateway, new_resident_id, new_uscc, order_body, payment_body, unique, waybill_body
from tooling.ceb import writer

pytestmark = pytest.mark.integration

OPERATOR = service_settings().sw_admin_token
# Two of each role: the second of each is the stranger trying its luck with the first's documents.
ROLES = ("platform", "ecommerce", "payment", "logistics", "platform2", "ecommerce2", "payment2", "logistics2")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gw(request, tmp_path_factory) -> Iterator[Gateway]:
    runner = asyncio.Runner()
    codes, customs, keys = {}, {}, {}
    if request.param == "postgresql":
        url = create_database(request.getfixturevalue("postgres_port"), f"ceb_hostile_{uuid.uuid4().hex[:12]}")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('ceb') / 'gateway.db'}"

    async def open_() -> httpx.AsyncClient:
        await service.open_database(url)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app, raise_app_exceptions=False),
                                   base_url="http://gateway")
        for n, role in enumerate(ROLES):
            code = new_uscc()
            customs_code = f"{uuid.uuid4().int % 10 ** 9:09d}{n}"
            r = await client.post("/v1/enterprises", headers={"Authorization": f"Bearer {OPERATOR}"}, json={
                "code": code, "name": f"Enterprise {code}", "roles": [role.rstrip("2")], "customs_code": customs_code})
            assert r.status_code == 201, r.text
            codes[role], customs[role], keys[role] = code, customs_code, r.json()["api_key"]
        return client

    http = runner.run(open_())
    try:
        yield Gateway(runner, http, codes, customs, keys, backend=request.param)
    finally:
        runner.run(close_in_process_gateway(http))
        runner.close()


# A race needs PostgreSQL's concurrency (SQLite has one writer at a time): such tests run on PostgreSQL only
# (they are not generated for SQLite, rather than skipped there).
ON_POSTGRESQL = pytest.mark.parametrize("gw", ["postgresql"], indirect=True)
ON_SQLITE = pytest.mark.parametrize("gw", ["sqlite"], indirect=True)


@pytest.fixture
def pg(gw):  # noqa: ANN001, ANN201
    assert gw.backend == "postgresql", "mark the test ON_POSTGRESQL"
    return gw


def answer(r: httpx.Response) -> list[dict]:
    """The receipt's Returns, after checking it is a schema-valid receipt message."""
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/xml")
    assert validate_receipt(r.content) == [], r.text
    return parse_receipt(r.content)[1]


def statuses(r: httpx.Response) -> list[str]:
    return [x["returnStatus"] for x in answer(r)]


def documents(gw: Gateway, direction: str = "import", platform: str = "platform", seller: str = "ecommerce",
              items: list[dict] | None = None) -> tuple[dict, dict, dict]:
    c = gw.codes
    order = order_body(c[platform], c[seller], unique("HOS"), direction=direction, insurance="0.00", items=items,
                       buyer_name=f"Buyer {uuid.uuid4().hex[:10]}")
    if direction == "export":
        order.update(discount="0.00", tax_total="0.00")
        for item in order["items"]:
            item["origin_country"] = "CN"
        goods = sum(float(i["unit_price"]) * int(i["quantity"]) for i in order["items"])
        order["actual_paid"] = f"{goods + 12:.2f}"
    pay = payment_body(c["payment"], order)
    waybill = waybill_body(c["logistics"], order)
    return order, pay, waybill


def sent(gw: Gateway, order: dict, pay: dict | None, waybill: dict, seller: str = "ecommerce", **options) -> dict:
    c = gw.codes
    if order["direction"] == "import":
        return {"order": writer.import_order(order, cop_code=c["platform"], **options),
                "payment": writer.payment(pay, cop_code=c["payment"], **options) if pay else b"",
                "waybill": writer.import_waybill(waybill, cop_code=c["logistics"], **options),
                "list": writer.import_list(order, waybill, cop_code=c[seller], **options)}
    return {"order": writer.export_order(order, cop_code=c["platform"], **options),
            "waybill": writer.export_waybill(waybill, cop_code=c["logistics"], **options),
            "list": writer.export_list(order, waybill, cop_code=c[seller], **options)}


SENDER = {"order": "platform", "payment": "payment", "waybill": "logistics", "list": "ecommerce"}


def held_state(gw: Gateway, kind: str, number: str) -> list[str]:
    return [r.state for r in gw.rows(select(ceb_records.c.state).where(ceb_records.c.kind == kind,
                                                                      ceb_records.c.number == number))]


def n_orders(gw: Gateway, order: dict) -> int:
    return gw.count(orders, platform_code=order["platform_code"], order_no=order["order_no"])


def many_items(n: int) -> list[dict]:
    return [{"item_no": f"SKU-{i}", "name": f"Item {i}", "hs_code": "3304990099", "quantity": 1, "unit": "piece",
             "unit_price": "1.00", "origin_country": "FR"} for i in range(n)]


# --- authorization ----------------------------------------------------------------------------------------


def test_a_list_from_another_seller_does_not_complete_the_order(gw):
    """A seller who is not the order's `ebcCode` sends a list for it (its number guessed): refused, and the
    order still waits for its own seller's list, which then completes it."""
    order, _, waybill = documents(gw)
    msgs = sent(gw, order, None, waybill)
    assert statuses(gw.send(msgs["order"], "platform")) == ["2"]
    stranger = dict(order, ecommerce_code=gw.codes["ecommerce2"])
    forged = writer.import_list(stranger, waybill, cop_code=gw.codes["ecommerce2"])
    (ret,) = answer(gw.send(forged, "ecommerce2"))
    assert ret["returnStatus"] == "-621001" and "ebcCode" in ret["returnInfo"], ret
    assert n_orders(gw, order) == 0
    assert statuses(gw.send(msgs["list"], "ecommerce")) == ["120"]
    assert n_orders(gw, order) == 1


def test_a_list_from_another_seller_sent_first_does_not_block_the_real_one(gw):
    order, _, waybill = documents(gw)
    msgs = sent(gw, order, None, waybill)
    stranger = dict(order, ecommerce_code=gw.codes["ecommerce2"])
    gw.send(writer.import_list(stranger, waybill, cop_code=gw.codes["ecommerce2"]), "ecommerce2")
    gw.send(msgs["order"], "platform")
    assert n_orders(gw, order) == 0
    assert statuses(gw.send(msgs["list"], "ecommerce")) == ["120"]
    assert n_orders(gw, order) == 1


def test_another_sellers_list_naming_a_held_waybill_does_not_refuse_it(gw):
    """A seller's list for its own order names another parcel's waybill (a typo, or on purpose): the held
    waybill belongs to its logistics firm and its own order; a stranger's list does not get it refused."""
    order, _, waybill = documents(gw)
    msgs = sent(gw, order, None, waybill)
    assert statuses(gw.send(msgs["waybill"], "logistics")) == ["2"]
    own, _, _ = documents(gw, platform="platform2", seller="ecommerce2")
    gw.send(writer.import_order(own, cop_code=gw.codes["platform2"]), "platform2")
    gw.send(writer.import_list(own, dict(waybill, order_no=own["order_no"], platform_code=own["platform_code"]),
                               cop_code=gw.codes["ecommerce2"]), "ecommerce2")
    assert held_state(gw, "waybill", waybill["waybill_no"]) == ["held"]


def test_a_waybill_arriving_after_another_sellers_list_naming_it_is_not_refused(gw):
    order, _, waybill = documents(gw)
    msgs = sent(gw, order, None, waybill)
    own, _, _ = documents(gw, platform="platform2", seller="ecommerce2")
    gw.send(writer.import_list(own, dict(waybill, order_no=own["order_no"], platform_code=own["platform_code"]),
                               cop_code=gw.codes["ecommerce2"]), "ecommerce2")
    assert statuses(gw.send(msgs["waybill"], "logistics")) == ["2"]
    assert held_state(gw, "waybill", waybill["waybill_no"]) == ["held"]
    gw.send(msgs["order"], "platform")
    assert statuses(gw.send(msgs["list"], "ecommerce")) == ["120"]
    assert gw.count(waybills, waybill_no=waybill["waybill_no"]) == 1


def test_a_list_from_a_key_without_the_role_is_refused(gw):
    """A payment firm names itself as the list's logistics firm to get past the party check."""
    order, _, waybill = documents(gw)
    gw.send(sent(gw, order, None, waybill)["order"], "platform")
    odd = dict(waybill, logistics_code=gw.codes["payment"])
    (ret,) = answer(gw.send(writer.import_list(order, odd, cop_code=gw.codes["payment"]), "payment"))
    assert ret["returnStatus"] == "-621001" and "InventoryHead/ebcCode" in ret["returnInfo"], ret
    assert n_orders(gw, order) == 0


def test_a_logistics_key_sending_an_order_is_refused_by_role(gw):
    order, _, _ = documents(gw, platform="platform")
    mine = dict(order, platform_code=gw.codes["logistics"])
    (ret,) = answer(gw.send(writer.import_order(mine, cop_code=gw.codes["logistics"]), "logistics"))
    assert ret["returnStatus"] == "-301008" and "403" in ret["returnInfo"], ret
    assert gw.count(ceb_records, number=order["order_no"]) == 0


def test_cancelling_another_platforms_order_is_refused(gw):
    order, _, waybill = documents(gw)
    msgs = sent(gw, order, None, waybill)
    gw.send(msgs["list"], "ecommerce")
    assert statuses(gw.send(msgs["order"], "platform")) == ["120"]
    cancel = writer.import_order(order, cop_code=gw.codes["platform2"], app_type="3")
    # The record names the first platform: -10102, nothing cancelled.
    assert statuses(gw.send(cancel, "platform2")) == ["-10102"]
    (row,) = gw.rows(select(orders.c.version).where(orders.c.order_no == order["order_no"]))
    assert row.version == 1


def test_a_cop_code_that_is_another_enterprises_customs_code_is_403(gw):
    order, pay, _ = documents(gw)
    xml = writer.payment(pay, cop_code=gw.codes["payment"], party_codes={gw.codes["payment"]: gw.customs["payment2"]})
    assert gw.send(xml, "payment").status_code == 403
    xml = writer.payment(pay, cop_code=gw.codes["payment"], party_codes={gw.codes["payment"]: gw.customs["payment"]})
    assert statuses(gw.send(xml, "payment")) == ["120"]  # its own customs code is fine


def test_the_operator_and_strangers_are_kept_out(gw):
    order, pay, _ = documents(gw)
    xml = writer.payment(pay, cop_code=gw.codes["payment"])
    assert gw.send(xml, OPERATOR).status_code == 403
    assert gw.send(xml, "not-a-key").status_code == 401
    r = gw.run(gw.http.get("/ceb/v1/receipts", headers={"Authorization": f"Bearer {OPERATOR}"}))
    assert r.status_code == 403
    # Receipts are the caller's own: the held order's 120 reaches the platform, never another platform.
    order, _, waybill = documents(gw)
    msgs = sent(gw, order, None, waybill)
    before = gw.receipts("platform2")["next"]
    gw.send(msgs["order"], "platform")
    gw.send(msgs["list"], "ecommerce")
    assert gw.receipts("platform2", before)["receipts"] == []
    for since in (-1, "x", 2 ** 63, 10 ** 30):
        r = gw.run(gw.http.get("/ceb/v1/receipts", params={"since": since},
                               headers={"Authorization": f"Bearer {gw.keys['platform']}"}))
        assert r.status_code == 422, (since, r.status_code, r.text)


# --- input ------------------------------------------------------------------------------------------------


def _records(gw: Gateway, n: int, kind: str, direction: str = "import") -> bytes:
    recs = []
    for _ in range(n):
        order, pay, waybill = documents(gw, direction)
        imp = direction == "import"
        recs.append({"order": lambda: (writer.import_order_record if imp else writer.export_order_record)(order),
                     "payment": lambda: writer.payment_record(pay),
                     "waybill": lambda: (writer.import_waybill_record if imp else writer.export_waybill_record)(waybill),
                     "list": lambda: (writer.import_list_record if imp else writer.export_list_record)(order, waybill)}[kind]())
    return writer.message(recs, cop_code=gw.codes[SENDER[kind]])


@pytest.mark.parametrize("kind,direction", [("order", "import"), ("payment", "import"), ("waybill", "import"),
                                            ("list", "import"), ("order", "export"), ("waybill", "export"),
                                            ("list", "export")])
def test_a_hundred_records_are_answered_and_a_hundred_and_one_refused_whole(gw, kind, direction):
    xml = _records(gw, 100, kind, direction)
    rets = answer(gw.send(xml, SENDER[kind]))
    assert len(rets) == 100 and set(r["returnStatus"] for r in rets) == {"120" if kind == "payment" else "2"}
    before = gw.count(ceb_records)
    more = xml.replace(b"<ceb:BaseTransfer>", _records(gw, 1, kind, direction).split(b"<ceb:BaseTransfer>")[0].split(
        b'version="1.0">', 1)[1] + b"<ceb:BaseTransfer>", 1)
    r = gw.send(more, SENDER[kind])
    assert r.status_code == 422 and parse_receipt(r.content)[0] == "CEB900Message"
    assert validate_receipt(r.content) == []
    assert gw.count(ceb_records) == before


def test_an_order_of_a_hundred_lines_is_held(gw):
    """Held with every line's HS code missing: what it waits for is long; it must still be kept."""
    order, _, waybill = documents(gw, items=many_items(99))  # CEB311 holds at most 99 lines
    msgs = sent(gw, order, None, waybill)
    assert statuses(gw.send(msgs["order"], "platform")) == ["2"]
    assert statuses(gw.send(msgs["list"], "ecommerce")) == ["120"]
    assert n_orders(gw, order) == 1


def _replace(xml: bytes, element: str, value: str, count: int = 1) -> bytes:
    out, n = re.subn(rf"<ceb:{element}>[^<]*</ceb:{element}>".encode(), f"<ceb:{element}>{value}</ceb:{element}>".encode(),
                     xml, count=count)
    assert n, element
    return out


@pytest.mark.parametrize("element,value,named", [
    ("appType", "9", "PaymentHead/appType"), ("appType", "", "PaymentHead/appType"),
    ("appType", "3", "PaymentHead/appType"), ("appStatus", "7", "PaymentHead/appStatus"),
    ("appStatus", "", "PaymentHead/appStatus"), ("amountPaid", "447.501", "PaymentHead/amountPaid"),
    ("amountPaid", "-1", "PaymentHead/amountPaid"), ("amountPaid", "1E+3", "PaymentHead/amountPaid"),
    ("currency", "999", "PaymentHead/currency"), ("payTime", "2026-11-24T10:00:00", "PaymentHead/payTime"),
    ("payTime", "20261331250000", "PaymentHead/payTime"), ("payerIdType", "9", "PaymentHead/payerIdType"),
    ("payTransactionId", "x" * 61, "PaymentHead/payTransactionId"),
])
def test_a_bad_payment_element_is_refused_naming_it(gw, element, value, named):
    order, pay, _ = documents(gw)
    xml = _replace(writer.payment(pay, cop_code=gw.codes["payment"]), element, value)
    (ret,) = answer(gw.send(xml, "payment"))
    assert ret["returnStatus"] == "-401009", ret
    assert named in ret["returnInfo"], ret
    assert gw.count(payments, order_no=order["order_no"]) == 0


def test_fields_at_their_length_limits(gw):
    """orderNo of 60 characters, names of 60/100: kept and submitted, or refused naming the field; never 500."""
    order, pay, waybill = documents(gw)
    order["order_no"] = ("L" * 60)[:-12] + uuid.uuid4().hex[:12]
    pay["order_no"] = waybill["order_no"] = order["order_no"]
    pay["payment_no"] = "P" * 48 + uuid.uuid4().hex[:12]
    msgs = sent(gw, order, pay, waybill)
    for kind in ("order", "payment", "waybill", "list"):
        rets = answer(gw.send(msgs[kind], SENDER[kind]))
        assert rets[0]["returnStatus"] in ("120", "2") or rets[0]["returnInfo"].count("(") >= 1, rets


def test_two_records_with_the_same_key_in_one_message(gw):
    """The second of two different records under one key is refused (naming the key's element); the first
    stands, in the gateway's records as in the documents."""
    order, pay, _ = documents(gw)
    other = dict(pay, amount="1.00")
    xml = writer.message([writer.payment_record(pay), writer.payment_record(other)], cop_code=gw.codes["payment"])
    rets = answer(gw.send(xml, "payment"))
    assert rets[0]["returnStatus"] == "120" and rets[1]["returnStatus"] == "-401009", rets
    assert "PaymentHead/payTransactionId" in rets[1]["returnInfo"]
    assert held_state(gw, "payment", pay["payment_no"]) == ["submitted"]
    # The first is then replayed identically: the same answer.
    assert statuses(gw.send(writer.payment(pay, cop_code=gw.codes["payment"]), "payment")) == ["120"]
    order, _, _ = documents(gw)
    changed = dict(order, freight="13.00", actual_paid=f"{float(order['actual_paid']) + 1:.2f}")
    xml = writer.message([writer.import_order_record(order), writer.import_order_record(changed)],
                         cop_code=gw.codes["platform"])
    assert statuses(gw.send(xml, "platform")) == ["2", "-301008"]
    twins, _, _ = documents(gw)
    xml = writer.message([writer.import_order_record(twins), writer.import_order_record(twins)],
                         cop_code=gw.codes["platform"])
    assert statuses(gw.send(xml, "platform")) == ["2", "2"]  # the same record twice: one record, one answer
    assert gw.count(ceb_records, number=twins["order_no"]) == 1


HOSTILE_VALUES = ("", " ", "0", "-1", "1e5", "9" * 40, "x" * 1001, "\u4e2d\u6587\U0001f600", "1.123456",
                  "20261301000000", "<![CDATA[<a/>]]>", "&amp;&lt;")


@pytest.mark.parametrize("direction", ["import", "export"])
@ON_SQLITE
def test_every_element_given_hostile_values_never_gives_a_500(gw, direction):
    """Every element of every message type, one at a time, given each of HOSTILE_VALUES: a receipt (200)
    or a whole-message refusal, never a 500; each refused record's returnInfo names an element."""
    # One backend is enough for the parser and the mapping; the lengths are checked on both elsewhere.
    order, pay, waybill = documents(gw, direction)
    msgs = {k: v for k, v in sent(gw, order, pay, waybill).items() if v}
    for kind, xml in msgs.items():
        elements = sorted(set(re.findall(rb"<ceb:(\w+)>[^<]+</ceb:\1>", xml.split(b"<ceb:BaseTransfer>")[0])))
        for element in elements:
            for value in HOSTILE_VALUES:
                raw = value if value.startswith("<!") or value.startswith("&") else (
                    value.replace("&", "&amp;").replace("<", "&lt;"))
                body = re.sub(rb"<ceb:%s>[^<]*</ceb:%s>" % (element, element),
                              b"<ceb:%s>%s</ceb:%s>" % (element, raw.encode(), element), xml, count=1)
                r = gw.send(body, SENDER[kind])
                assert r.status_code in (200, 422), (kind, element, value, r.status_code, r.text[:300])
                if r.status_code == 200:
                    for ret in answer(r):
                        if ret["returnStatus"].startswith("-"):
                            assert "(" in ret["returnInfo"] or "caller is not" in ret["returnInfo"], (element, value, ret)


def test_a_list_whose_lines_do_not_match_its_order(gw):
    two = many_items(2)
    order, _, waybill = documents(gw, items=two)
    msgs = sent(gw, order, None, waybill)
    gw.send(msgs["order"], "platform")
    short = writer.import_list(dict(order, items=two[:1], actual_paid=f"{float(order['actual_paid']) - 1:.2f}"),
                               waybill, cop_code=gw.codes["ecommerce"])
    (ret,) = answer(gw.send(short, "ecommerce"))
    assert ret["returnStatus"] == "-621001" and "gnum=2" in ret["returnInfo"], ret
    more = [dict(two[0], quantity=3), two[1]]
    differs = writer.import_list(dict(order, items=more), waybill, cop_code=gw.codes["ecommerce"])
    (ret,) = answer(gw.send(differs, "ecommerce"))
    assert ret["returnStatus"] == "-621001" and "qty" in ret["returnInfo"], ret
    # A line the order does not have (its HS code and legal quantities would be dropped silently).
    extra = writer.import_list(dict(order, items=[*two, dict(two[0], item_no="SKU-X")]), waybill,
                               cop_code=gw.codes["ecommerce"])
    (ret,) = answer(gw.send(extra, "ecommerce"))
    assert ret["returnStatus"] == "-621001" and "gnum=3" in ret["returnInfo"], ret
    assert n_orders(gw, order) == 0
    assert statuses(gw.send(msgs["list"], "ecommerce")) == ["120"]
    assert n_orders(gw, order) == 1


@pytest.mark.parametrize("body,status", [
    (b"", 400), (b"{\"order\": 1}", 400), (b"<a>" * 300 + b"</a>" * 300, 400),
    (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><l>&b;</l>', 400),
    (b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://127.0.0.1:1/x.dtd"><x/>', 400),
    ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
     .encode("utf-16"), 400),
    (b'<ceb:CEB411Message xmlns:ceb="http://www.chinaport.gov.cn/ceb"/>', 422),
    (b'<CEB411Message xmlns="urn:not-customs"><Payment/></CEB411Message>', 422),
])
def test_hostile_bodies_are_refused_whole(gw, body, status):
    before = gw.count(ceb_records)
    r = gw.send(body, "payment")
    assert r.status_code == status, r.text
    assert gw.count(ceb_records) == before


def test_what_real_senders_send_is_read(gw):
    """A BOM, a default namespace instead of the `ceb:` prefix, UTF-16, text/xml: all read."""
    order, pay, _ = documents(gw)
    xml = writer.payment(pay, cop_code=gw.codes["payment"])
    assert statuses(gw.send(b"\xef\xbb\xbf" + xml, "payment")) == ["120"]
    unprefixed = xml.replace(b"ceb:", b"").replace(b"xmlns:ceb=", b"xmlns=")
    assert statuses(gw.send(unprefixed, "payment")) == ["120"]
    utf16 = xml.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert statuses(gw.send(utf16, "payment")) == ["120"]
    assert statuses(gw.send(xml, "payment", "text/xml; charset=utf-8")) == ["120"]
    assert gw.count(payments, payment_no=pay["payment_no"]) == 1


def test_a_body_that_is_not_xml_by_its_content_type_is_415(gw):
    order, pay, _ = documents(gw)
    xml = writer.payment(pay, cop_code=gw.codes["payment"])
    for content_type in ("application/json", "application/x-www-form-urlencoded", "text/plain"):
        r = gw.send(xml, "payment", content_type)
        assert r.status_code == 415, (content_type, r.text)
        assert "Content-Type" in r.json()["detail"]
    assert gw.count(payments, payment_no=pay["payment_no"]) == 0


def test_a_body_of_8_mib_and_one_byte_is_413(gw):
    r = gw.send(b" " * (8 * 1024 * 1024 + 1), "payment")
    assert r.status_code == 413


def test_huge_text_in_an_element_is_refused_naming_it(gw):
    order, pay, _ = documents(gw)
    xml = _replace(writer.payment(pay, cop_code=gw.codes["payment"]), "payerName", "N" * (4 * 1024 * 1024))
    (ret,) = answer(gw.send(xml, "payment"))
    assert ret["returnStatus"] == "-401009" and "PaymentHead/payerName" in ret["returnInfo"]


# --- personal data ----------------------------------------------------------------------------------------


def test_no_identity_number_in_plain_text_anywhere_in_the_gateway(gw):
    """After held, completed, refused and replayed records: every table's every text holds no buyer's full
    identity number, and no name outside the documents themselves (orders, payments, the outbox)."""
    numbers, names = [], []
    order, pay, waybill = documents(gw)
    numbers.append(order["buyer"]["id_number"])
    names.append(order["buyer"]["name"])
    msgs = sent(gw, order, pay, waybill)
    for kind in ("order", "payment", "list", "waybill", "order"):
        gw.send(msgs[kind], SENDER[kind])
    held, _, _ = documents(gw)
    numbers.append(held["buyer"]["id_number"])
    names.append(held["buyer"]["name"])
    gw.send(writer.import_order(held, cop_code=gw.codes["platform"]), "platform")
    # A refused payment whose payer's number has a wrong check digit: its refusal must not echo it.
    bad, badpay, _ = documents(gw)
    wrong = new_resident_id()
    wrong = wrong[:-1] + ("0" if wrong[-1] != "0" else "1")
    badpay["payer"] = {"name": f"Payer {uuid.uuid4().hex[:8]}", "id_type": "resident_id", "id_number": wrong}
    numbers.append(wrong)
    names.append(badpay["payer"]["name"])
    (ret,) = answer(gw.send(writer.payment(badpay, cop_code=gw.codes["payment"]), "payment"))
    assert ret["returnStatus"] == "-401009"
    assert wrong not in ret["returnInfo"] and badpay["payer"]["name"] not in ret["returnInfo"]
    # A payer's number too long for our field (CEB allows 60): refused, not echoed.
    long_pay = dict(payment_body(gw.codes["payment"], bad), payer={"name": "X", "id_type": "other",
                                                                    "id_number": "Z" + uuid.uuid4().hex * 1})
    numbers.append(long_pay["payer"]["id_number"])
    (ret,) = answer(gw.send(writer.payment(long_pay, cop_code=gw.codes["payment"]), "payment"))
    assert long_pay["payer"]["id_number"] not in ret["returnInfo"]

    leaks = []

    async def scan() -> None:
        async with service.sessions() as session:
            if gw.backend == "postgresql":
                tables = (await session.execute(text(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"))).scalars().all()
            else:
                tables = (await session.execute(text(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"))).scalars().all()
            for table in tables:
                for row in (await session.execute(text(f'SELECT * FROM "{table}"'))).all():
                    blob = json.dumps([str(v) for v in row], ensure_ascii=False)
                    leaks.extend((table, n) for n in numbers if n in blob)
                    # The documents themselves hold names (spec §4; the consignee is the buyer here).
                    if table not in ("orders", "payments", "waybills", "outbox", "order_versions"):
                        leaks.extend((table, n) for n in names if n in blob)

    gw.run(scan())
    assert leaks == []
    for role in ROLES:
        for r in gw.receipts(role)["receipts"]:
            assert not any(n in r["xml"] for n in numbers + names)


def test_personal_data_in_elements_we_do_not_know_stays_out_of_the_trace(gw):
    """A sender's own elements beside the schema's are kept and shown in the trace (never dropped), but not
    a person's name, phone or number under a name we do not know."""
    order, _, waybill = documents(gw)
    msgs = sent(gw, order, None, waybill)
    number = new_resident_id()
    extra = (f"<ceb:buyerIdNo>{number}</ceb:buyerIdNo><ceb:receiverMobile>13912345678</ceb:receiverMobile>"
             f"<ceb:vipNote>card {number}</ceb:vipNote><ceb:shopCode>S-42</ceb:shopCode>").encode()
    gw.send(msgs["order"].replace(b"</ceb:OrderHead>", extra + b"</ceb:OrderHead>"), "platform")
    assert statuses(gw.send(msgs["list"], "ecommerce")) == ["120"]
    rows = gw.rows(select(trace.c.summary).where(trace.c.correlation_id == f"{order['platform_code']}:{order['order_no']}"))
    shown = " ".join(r.summary for r in rows)
    assert "shopCode=S-42" in shown  # kept and shown
    assert number not in shown and "13912345678" not in shown, shown


# --- replays and corrections -------------------------------------------------------------------------------


def test_a_correction_of_a_held_order_replaces_it(gw):
    order, _, waybill = documents(gw)
    msgs = sent(gw, order, None, waybill)
    assert statuses(gw.send(msgs["order"], "platform")) == ["2"]
    changed = dict(order, freight="13.00", actual_paid=f"{float(order['actual_paid']) + 1:.2f}")
    fix = writer.import_order(changed, cop_code=gw.codes["platform"], app_type="2")
    assert statuses(gw.send(fix, "platform")) == ["2"]
    assert statuses(gw.send(msgs["list"], "ecommerce")) == ["120"]
    (row,) = gw.rows(select(orders.c.document, orders.c.version).where(orders.c.order_no == order["order_no"]))
    assert row.version == 1 and row.document["freight"] == "13.00"
    # The original, sent again now, is not a replay of anything current: the order was corrected.
    assert statuses(gw.send(msgs["order"], "platform")) == ["-301008"]


def test_a_list_corrected_after_its_order_was_submitted_corrects_the_order(gw):
    order, _, waybill = documents(gw)
    msgs = sent(gw, order, None, waybill)
    gw.send(msgs["order"], "platform")
    assert statuses(gw.send(msgs["list"], "ecommerce")) == ["120"]
    other = [dict(i, hs_code="3304100000") for i in order["items"]]
    fixed = writer.import_list(dict(order, items=other), waybill, cop_code=gw.codes["ecommerce"], app_type="2")
    assert statuses(gw.send(fixed, "ecommerce")) == ["120"]
    (row,) = gw.rows(select(orders.c.document, orders.c.version).where(orders.c.order_no == order["order_no"]))
    assert row.version == 2 and row.document["items"][0]["hs_code"] == "3304100000"
    assert statuses(gw.send(fixed, "ecommerce")) == ["120"]  # replayed: nothing twice
    (row,) = gw.rows(select(orders.c.version).where(orders.c.order_no == order["order_no"]))
    assert row.version == 2


def test_a_payment_corrected(gw):
    order, pay, _ = documents(gw)
    assert statuses(gw.send(writer.payment(pay, cop_code=gw.codes["payment"]), "payment")) == ["120"]
    fixed = dict(pay, paid_at="2026-11-24T11:00:00+08:00")
    assert statuses(gw.send(writer.payment(fixed, cop_code=gw.codes["payment"], app_type="2"), "payment")) == ["120"]
    (row,) = gw.rows(select(payments.c.document).where(payments.c.payment_no == pay["payment_no"]))
    assert row.document["paid_at"].startswith("2026-11-24T11:00:00")
    # The first version again: as in REST (§7.2), the same firm's same key with other content corrects it.
    assert statuses(gw.send(writer.payment(pay, cop_code=gw.codes["payment"]), "payment")) == ["120"]
    (row,) = gw.rows(select(payments.c.document).where(payments.c.payment_no == pay["payment_no"]))
    assert row.document["paid_at"].startswith("2026-11-24T10:00:00")
    assert gw.count(payments, payment_no=pay["payment_no"]) == 1


# --- races (PostgreSQL) -----------------------------------------------------------------------------------


def race(gw: Gateway, monkeypatch, first: tuple[bytes, str], second: tuple[bytes, str], locked: bool) -> Rendezvous:
    rendezvous = Rendezvous()
    monkeypatch.setattr(submission, "load_records", after(rendezvous, ceb_store.load_records))
    if not locked:
        monkeypatch.setattr(submission, "lock_keys", no_lock)

    async def both() -> list[httpx.Response]:
        return list(await asyncio.gather(gw.post(*first), gw.post(*second)))

    for r in gw.run(both()):
        answer(r)
    monkeypatch.undo()
    return rendezvous


@pytest.mark.parametrize("locked", [True, False], ids=["locked", "unlocked-shows-the-bug"])
@ON_POSTGRESQL
def test_an_order_and_its_list_at_once_complete(pg, monkeypatch, locked):
    order, _, waybill = documents(pg)
    msgs = sent(pg, order, None, waybill)
    met = race(pg, monkeypatch, (msgs["order"], "platform"), (msgs["list"], "ecommerce"), locked).met
    if locked:
        assert not met and n_orders(pg, order) == 1
    else:
        assert met and n_orders(pg, order) == 0  # both held, each waiting for the other: the bug


@pytest.mark.parametrize("locked", [True, False], ids=["locked", "unlocked-shows-the-bug"])
@ON_POSTGRESQL
def test_a_waybill_and_its_list_at_once_complete(pg, monkeypatch, locked):
    order, _, waybill = documents(pg)
    msgs = sent(pg, order, None, waybill)
    met = race(pg, monkeypatch, (msgs["waybill"], "logistics"), (msgs["list"], "ecommerce"), locked).met
    got = pg.count(waybills, waybill_no=waybill["waybill_no"])
    if locked:
        assert not met and got == 1
    else:
        assert met and got == 0


@pytest.mark.parametrize("direction", ["import", "export"])
@ON_POSTGRESQL
def test_an_order_and_its_waybill_at_once_after_their_list_complete(pg, monkeypatch, direction):
    """The list came first; the order and the waybill then arrive at the same moment. They share no key:
    only the list ties them (an export waybill waits until its order is filed)."""
    order, _, waybill = documents(pg, direction)
    msgs = sent(pg, order, None, waybill)
    assert statuses(pg.send(msgs["list"], "ecommerce")) == ["2"]
    race(pg, monkeypatch, (msgs["order"], "platform"), (msgs["waybill"], "logistics"), True)
    assert n_orders(pg, order) == 1
    assert pg.count(waybills, waybill_no=waybill["waybill_no"]) == 1


def test_a_message_ended_as_a_deadlock_is_taken_again(gw, monkeypatch):
    """PostgreSQL ends one of two messages that lock each other's keys (submission.take, a list committed
    between their reads): nothing of it was stored, and the route takes it again instead of answering 503."""
    from sqlalchemy.exc import DBAPIError  # noqa: PLC0415

    from services.gateway.ceb import api  # noqa: PLC0415

    class Deadlock(Exception):
        sqlstate = "40P01"

    calls = []
    real = api.take

    async def once_deadlocked(uow, *args):  # noqa: ANN001, ANN002, ANN202
        calls.append(1)
        if len(calls) == 1:
            await real(uow, *args)  # staged, then lost with the transaction
            raise DBAPIError("SELECT pg_advisory_xact_lock", {}, Deadlock())
        return await real(uow, *args)

    monkeypatch.setattr(api, "take", once_deadlocked)
    order, pay, _ = documents(gw)
    assert statuses(gw.send(writer.payment(pay, cop_code=gw.codes["payment"]), "payment")) == ["120"]
    assert len(calls) == 2
    assert gw.count(payments, payment_no=pay["payment_no"]) == 1
    assert gw.count(ceb_records, number=pay["payment_no"]) == 1


@ON_POSTGRESQL
def test_the_same_message_twice_at_once_is_one_record(pg, monkeypatch):
    order, pay, waybill = documents(pg)
    msgs = sent(pg, order, pay, waybill)
    race(pg, monkeypatch, (msgs["payment"], "payment"), (msgs["payment"], "payment"), True)
    race(pg, monkeypatch, (msgs["order"], "platform"), (msgs["order"], "platform"), True)
    assert pg.count(payments, payment_no=pay["payment_no"]) == 1
    assert pg.count(ceb_records, number=pay["payment_no"]) == 1
    assert pg.count(ceb_records, number=order["order_no"]) == 1


@ON_POSTGRESQL
def test_two_timeout_passes_at_once_return_each_record_once(pg):
    held = []
    for _ in range(5):
        order, _, _ = documents(pg)
        pg.send(writer.import_order(order, cop_code=pg.codes["platform"]), "platform")
        held.append(order["order_no"])
    before = pg.receipts("platform")["next"]
    later = utcnow() + timedelta(hours=73)

    async def one_pass() -> int:
        async with service.unit_of_work() as uow:
            n = await feed.return_timed_out(uow.session, later, 72, 3)
            await asyncio.sleep(0.3)  # hold the rows while the other pass looks
            return n

    async def both() -> list[int]:
        return list(await asyncio.gather(one_pass(), one_pass()))

    while sum(pg.run(both())):
        pass
    mine = [parse_receipt(r["xml"].encode())[1][0]["orderNo"] for r in all_receipts(pg, "platform", before)]
    assert sorted(n for n in mine if n in held) == sorted(held)


def all_receipts(gw: Gateway, role: str, since: int) -> list[dict]:
    out = []
    while True:
        page = gw.receipts(role, since)
        if not page["receipts"]:
            return out
        out += page["receipts"]
        since = page["next"]


@ON_POSTGRESQL
def test_a_timeout_pass_and_the_completing_list_at_once(pg, monkeypatch):
    """A held order's time is up just as its list arrives: it is either returned (and the list waits) or
    submitted (and not returned); never submitted after its sender was told it timed out."""
    order, _, waybill = documents(pg)
    msgs = sent(pg, order, None, waybill)
    pg.send(msgs["order"], "platform")
    before = 0
    while pg.receipts("platform", before)["receipts"]:
        before = pg.receipts("platform", before)["next"]
    rendezvous = Rendezvous()
    monkeypatch.setattr(submission, "load_records", after(rendezvous, ceb_store.load_records))
    monkeypatch.setattr(ceb_store, "due_records", after(rendezvous, ceb_store.due_records))
    later = utcnow() + timedelta(hours=73)

    async def timeout_pass() -> int:
        async with service.unit_of_work() as uow:
            return await feed.return_timed_out(uow.session, later, 72, 10_000)

    async def both() -> tuple:
        return await asyncio.gather(timeout_pass(), pg.post(msgs["list"], "ecommerce"))

    _, r = pg.run(both())
    monkeypatch.undo()
    answer(r)
    timed_out = [x for x in all_receipts(pg, "platform", before)
                 if parse_receipt(x["xml"].encode())[1][0].get("orderNo") == order["order_no"]
                 and "DOCUMENT_TIMEOUT" in x["xml"]]
    submitted = n_orders(pg, order)
    assert (submitted, len(timed_out)) in ((1, 0), (0, 1)), (submitted, timed_out)
    state = held_state(pg, "order", order["order_no"])
    assert state == (["submitted"] if submitted else ["timed_out"])


@ON_POSTGRESQL
def test_a_receipt_committed_late_is_never_skipped_by_the_cursor(pg):
    """Two transactions add receipts; the one that got its `seq` first commits last. A poller reading in
    between must not move its cursor past the uncommitted one."""
    me = pg.codes["platform"]

    def receipt(guid: str) -> dict:
        return {"recipient": me, "guid": guid, "message_type": "CEB312Message", "xml": "<x/>", "created_at": utcnow()}

    before = 0
    while pg.receipts("platform", before)["receipts"]:
        before = pg.receipts("platform", before)["next"]  # the end of the feed as it is now
    seen: list[str] = []

    async def scenario() -> None:
        slow_started = asyncio.Event()
        release = asyncio.Event()

        async def slow() -> None:
            async with service.unit_of_work() as uow:
                await ceb_store.add_receipts(uow.session, [receipt(str(uuid.uuid4()).upper())])
                slow_started.set()
                await release.wait()

        async def fast() -> None:
            await slow_started.wait()
            async with service.unit_of_work() as uow:
                await ceb_store.add_receipts(uow.session, [receipt(str(uuid.uuid4()).upper())])

        s, f = asyncio.create_task(slow()), asyncio.create_task(fast())
        await asyncio.sleep(0.5)
        r = await gw_get(pg, before)
        seen.extend(x["guid"] for x in r["receipts"])
        cursor = r["next"]
        release.set()
        await asyncio.gather(s, f)
        r = await gw_get(pg, cursor)
        seen.extend(x["guid"] for x in r["receipts"])

    pg.run(scenario())
    assert len(seen) == 2


async def gw_get(gw: Gateway, since: int) -> dict:
    r = await gw.http.get("/ceb/v1/receipts", params={"since": since},
                          headers={"Authorization": f"Bearer {gw.keys['platform']}"})
    return r.json()
