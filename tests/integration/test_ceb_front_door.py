"""Customs' own messages at the gateway (spec §7.5), through the real app on its own SQLite database (no
broker: what is staged for publication is read from the outbox). Messages are written by tooling/ceb/writer.py
from REST bodies, as an integrator's system would send them; every receipt is validated strictly against the
official schema."""
from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from services.gateway.app import app, service
from services.gateway.ceb import feed
from services.gateway.ceb.receipts import parse_receipt, validate_receipt
from services.gateway.tables import ceb_records, orders, payments, trace, waybills
from shared.clock import utcnow
from shared.settings import settings as service_settings
from shared.tables import OUTBOX
from tests.support import close_in_process_gateway, new_uscc, order_body, payment_body, unique, waybill_body
from tooling.ceb import writer

pytestmark = pytest.mark.integration

OPERATOR = service_settings().sw_admin_token
ROLES = ("platform", "ecommerce", "payment", "logistics")


@dataclass
class Gateway:
    runner: asyncio.Runner
    http: httpx.AsyncClient
    codes: dict[str, str]  # role -> enterprise code (USCC)
    customs: dict[str, str]  # role -> its 10-character customs code
    keys: dict[str, str]  # role -> its API key
    backend: str = "sqlite"  # or "postgresql" (tests/integration/test_ceb_hostile.py)

    def run(self, coroutine):  # noqa: ANN001, ANN201
        return self.runner.run(coroutine)

    async def post(self, xml: bytes, role: str, content_type: str = "application/xml") -> httpx.Response:
        """POSTs a message as `role` (or with `role` taken as an API key itself, for keys of no role here)."""
        return await self.http.post("/ceb/v1/messages", content=xml, headers={
            "Authorization": f"Bearer {self.keys.get(role, role)}", "Content-Type": content_type})

    def send(self, xml: bytes, role: str, content_type: str = "application/xml") -> httpx.Response:
        return self.run(self.post(xml, role, content_type))

    def receipts(self, role: str, since: int = 0) -> dict:
        r = self.run(self.http.get("/ceb/v1/receipts", params={"since": since},
                                   headers={"Authorization": f"Bearer {self.keys[role]}"}))
        assert r.status_code == 200, r.text
        return r.json()

    def count(self, table, **where) -> int:  # noqa: ANN001
        async def go() -> int:
            async with service.sessions() as session:
                q = select(func.count()).select_from(table)
                for k, v in where.items():
                    q = q.where(table.c[k] == v)
                return await session.scalar(q)

        return self.run(go())

    def rows(self, query):  # noqa: ANN001, ANN201
        async def go():  # noqa: ANN202
            async with service.sessions() as session:
                return (await session.execute(query)).all()

        return self.run(go())


@pytest.fixture(scope="module")
def gw(tmp_path_factory) -> Iterator[Gateway]:
    runner = asyncio.Runner()
    codes, customs, keys = {}, {}, {}

    async def open_() -> httpx.AsyncClient:
        await service.open_database(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('ceb') / 'gateway.db'}")
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app, raise_app_exceptions=False),
                                   base_url="http://gateway")
        for n, role in enumerate(ROLES):
            code, customs_code = new_uscc(), f"{unique('')[-8:].replace('-', '0')}{n}A"[-10:].upper()
            r = await client.post("/v1/enterprises", headers={"Authorization": f"Bearer {OPERATOR}"}, json={
                "code": code, "name": f"Enterprise {code}", "roles": [role], "customs_code": customs_code})
            assert r.status_code == 201, r.text
            codes[role], customs[role], keys[role] = code, customs_code, r.json()["api_key"]
        return client

    http = runner.run(open_())
    try:
        yield Gateway(runner, http, codes, customs, keys)
    finally:
        runner.run(close_in_process_gateway(http))
        runner.close()


def answer(r: httpx.Response) -> list[dict]:
    """The receipt's Returns, after checking it is a schema-valid receipt message."""
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/xml")
    assert validate_receipt(r.content) == [], r.text
    return parse_receipt(r.content)[1]


def documents(gw: Gateway, direction: str = "import") -> tuple[dict, dict, dict]:
    c = gw.codes
    order = order_body(c["platform"], c["ecommerce"], unique("CEB"), direction=direction, insurance="0.00")
    if direction == "export":
        order.update(discount="0.00", tax_total="0.00")
        for item in order["items"]:
            item["origin_country"] = "CN"  # CEB303 names no origin: an export line leaves China
        order["actual_paid"] = f"{sum(2 * 180 for _ in order['items']) + 12:.2f}"
    pay = payment_body(c["payment"], order)
    waybill = waybill_body(c["logistics"], order)
    return order, pay, waybill


def messages(gw: Gateway, order: dict, pay: dict | None, waybill: dict, *, by_customs_code: bool = False) -> dict:
    """The messages an integrator sends for one parcel, each from its own sender."""
    c = gw.codes
    codes = {c[r]: gw.customs[r] for r in ROLES} if by_customs_code else None
    if order["direction"] == "import":
        out = {"order": (writer.import_order(order, cop_code=c["platform"], party_codes=codes), "platform"),
               "payment": (writer.payment(pay, cop_code=c["payment"], party_codes=codes), "payment"),
               "waybill": (writer.import_waybill(waybill, cop_code=c["logistics"], party_codes=codes), "logistics"),
               "list": (writer.import_list(order, waybill, cop_code=c["ecommerce"], party_codes=codes), "ecommerce")}
    else:
        out = {"order": (writer.export_order(order, cop_code=c["platform"], party_codes=codes), "platform"),
               "waybill": (writer.export_waybill(waybill, cop_code=c["logistics"], party_codes=codes), "logistics"),
               "list": (writer.export_list(order, waybill, cop_code=c["ecommerce"], party_codes=codes), "ecommerce")}
    return out


def stored(gw: Gateway, order: dict, waybill: dict, pay: dict | None) -> tuple[int, int, int]:
    return (gw.count(orders, platform_code=order["platform_code"], order_no=order["order_no"]),
            gw.count(payments, order_no=order["order_no"]) if pay else 0,
            gw.count(waybills, logistics_code=waybill["logistics_code"], waybill_no=waybill["waybill_no"]))


@pytest.mark.parametrize("arrival", list(itertools.permutations(["order", "payment", "waybill", "list"])),
                         ids="-".join)
def test_an_import_clears_the_intake_in_any_arrival_order(gw, arrival):
    order, pay, waybill = documents(gw)
    sent = messages(gw, order, pay, waybill, by_customs_code=arrival[0] == "list")
    cursors = {role: gw.receipts(role)["next"] for role in ROLES}
    seen: dict[str, str] = {}
    for kind in arrival:
        xml, role = sent[kind]
        (ret,) = answer(gw.send(xml, role))
        seen[kind] = ret["returnStatus"]
        # A record is held (2) exactly while its partner has not come; the list is the partner of both.
        came = arrival[:arrival.index(kind)]
        expected = "120" if kind == "payment" or "list" in came or (kind == "list" and "order" in came) else "2"
        assert ret["returnStatus"] == expected, (kind, ret)
    assert stored(gw, order, waybill, pay) == (1, 1, 1)
    # Every record held on arrival got its 120 in its sender's feed when it completed.
    for kind, status in seen.items():
        if status == "2":
            role = sent[kind][1]
            mine = [parse_receipt(r["xml"].encode())[1][0] for r in gw.receipts(role, cursors[role])["receipts"]]
            assert [m["returnStatus"] for m in mine] == ["120"], (kind, mine)


@pytest.mark.parametrize("arrival", list(itertools.permutations(["order", "waybill", "list"])), ids="-".join)
def test_an_export_clears_the_intake_in_any_arrival_order(gw, arrival):
    order, _, waybill = documents(gw, "export")
    sent = messages(gw, order, None, waybill)
    for kind in arrival:
        xml, role = sent[kind]
        (ret,) = answer(gw.send(xml, role))
        assert ret["returnStatus"] in ("120", "2"), ret
    assert stored(gw, order, waybill, None) == (1, 0, 1)
    (row,) = gw.rows(select(waybills.c.document).where(waybills.c.waybill_no == waybill["waybill_no"]))
    assert row.document.get("consignee") is None  # no export message names one


def test_an_identical_replay_gets_the_same_answer_and_stores_nothing_twice(gw):
    order, pay, waybill = documents(gw)
    sent = messages(gw, order, pay, waybill)
    first = gw.send(*sent["payment"])
    again = gw.send(*sent["payment"])
    # The same answer, but for the time it was given.
    assert ([{**r, "returnTime": ""} for r in answer(first)] == [{**r, "returnTime": ""} for r in answer(again)])
    assert answer(first)[0]["returnStatus"] == "120"
    held = gw.send(*sent["order"])
    assert answer(held)[0]["returnStatus"] == "2"
    assert answer(gw.send(*sent["order"]))[0]["returnStatus"] == "2"
    assert gw.count(payments, order_no=order["order_no"]) == 1
    assert gw.count(ceb_records, number=order["order_no"]) == 1


def test_a_malformed_record_is_refused_beside_good_ones(gw):
    c = gw.codes
    good, _, _ = documents(gw)
    bad, _, _ = documents(gw)
    records = [writer.import_order_record(good), writer.import_order_record(bad)]
    xml = writer.message(records, cop_code=c["platform"])
    # The second record's first line loses its quantity: that element is required.
    head, _, tail = xml.partition(bad["order_no"].encode())
    tail = tail.replace(b"<ceb:qty>2</ceb:qty>", b"", 1)
    rets = answer(gw.send(head + bad["order_no"].encode() + tail, "platform"))
    assert [r["returnStatus"] for r in rets] == ["2", "-301008"]
    assert "OrderList[1]/qty" in rets[1]["returnInfo"]


def test_a_record_of_another_party_is_refused_alone(gw):
    order, pay, _ = documents(gw)
    other = dict(pay, payment_code=gw.codes["logistics"], payment_no=unique("PAY"))
    xml = writer.message([writer.payment_record(pay), writer.payment_record(other)], cop_code=gw.codes["payment"])
    assert [r["returnStatus"] for r in answer(gw.send(xml, "payment"))] == ["120", "-10102"]


def test_whole_message_refusals(gw):
    order, pay, _ = documents(gw)
    xml = writer.payment(pay, cop_code=gw.codes["payment"])
    assert gw.send(xml, "platform").status_code == 403  # copCode is not the caller
    assert gw.send(b"<not-closed>", "payment").status_code == 400
    doctype = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    assert gw.send(doctype, "payment").status_code == 400
    r = gw.send(xml.replace(b"CEB411Message", b"CEB623Message"), "payment")
    assert r.status_code == 422 and parse_receipt(r.content)[0] == "CEB900Message"
    assert validate_receipt(r.content) == []


def test_a_draft_is_acknowledged_and_not_submitted(gw):
    order, pay, _ = documents(gw)
    (ret,) = answer(gw.send(writer.payment(pay, cop_code=gw.codes["payment"], app_status="1"), "payment"))
    assert ret["returnStatus"] == "120" and "draft" in ret["returnInfo"]
    assert gw.count(payments, payment_no=pay["payment_no"]) == 0


def test_the_rest_validation_refuses_with_our_field_and_the_element(gw):
    order, pay, _ = documents(gw)
    pay["payer"]["id_number"] = "110101199003070012"  # a wrong check digit (GB 11643-1999)
    (ret,) = answer(gw.send(writer.payment(pay, cop_code=gw.codes["payment"]), "payment"))
    assert ret["returnStatus"] == "-401009"
    assert "payer.id_number (PaymentHead/payerIdNumber)" in ret["returnInfo"]
    assert gw.count(payments, payment_no=pay["payment_no"]) == 0


def test_corrections_and_cancellations(gw):
    order, pay, waybill = documents(gw)
    sent = messages(gw, order, pay, waybill)
    answer(gw.send(*sent["list"]))
    assert answer(gw.send(*sent["order"]))[0]["returnStatus"] == "120"
    corrected = dict(order, freight="13.00", actual_paid=f"{float(order['actual_paid']) + 1:.2f}")
    new_anyway = writer.import_order(corrected, cop_code=gw.codes["platform"])
    assert answer(gw.send(new_anyway, "platform"))[0]["returnStatus"] == "-301008"  # appType 1: not a correction
    fix = writer.import_order(corrected, cop_code=gw.codes["platform"], app_type="2")
    assert answer(gw.send(fix, "platform"))[0]["returnStatus"] == "120"
    (row,) = gw.rows(select(orders.c.version).where(orders.c.order_no == order["order_no"]))
    assert row.version == 2
    cancel = writer.import_order(corrected, cop_code=gw.codes["platform"], app_type="3")
    assert answer(gw.send(cancel, "platform"))[0]["returnStatus"] == "120"
    (row,) = gw.rows(select(orders.c.version).where(orders.c.order_no == order["order_no"]))
    assert row.version == 3
    # A held order cancelled is never submitted.
    held, _, _ = documents(gw)
    answer(gw.send(writer.import_order(held, cop_code=gw.codes["platform"]), "platform"))
    (ret,) = answer(gw.send(writer.import_order(held, cop_code=gw.codes["platform"], app_type="3"), "platform"))
    assert ret["returnStatus"] == "120" and "never submitted" in ret["returnInfo"]
    assert gw.count(orders, order_no=held["order_no"]) == 0


def test_held_records_time_out_into_the_feed(gw):
    order, _, _ = documents(gw)
    answer(gw.send(writer.import_order(order, cop_code=gw.codes["platform"]), "platform"))
    before = gw.receipts("platform")["next"]

    async def expire() -> int:
        async with service.unit_of_work() as uow:
            return await feed.return_timed_out(uow.session, utcnow() + timedelta(hours=73), 72, 1000)

    assert gw.run(expire()) >= 1
    later = gw.receipts("platform", since=before)
    rets = [parse_receipt(r["xml"].encode())[1][0] for r in later["receipts"]]
    mine = [r for r in rets if r["orderNo"] == order["order_no"]]
    assert len(mine) == 1 and mine[0]["returnStatus"] == "100" and "DOCUMENT_TIMEOUT" in mine[0]["returnInfo"]
    assert all(validate_receipt(r["xml"].encode()) == [] for r in later["receipts"])
    # The same cursor gives the same receipts.
    assert gw.receipts("platform", since=before) == later


def test_what_section_4_has_no_field_for_is_in_the_trace_without_personal_data(gw):
    order, pay, waybill = documents(gw)
    sent = messages(gw, order, pay, waybill)
    answer(gw.send(*sent["order"]))
    answer(gw.send(*sent["list"]))
    rows = gw.rows(select(trace.c.summary).where(trace.c.type == "ceb.kept",
                                                 trace.c.correlation_id == f"{order['platform_code']}:{order['order_no']}"))
    text = " ".join(r.summary for r in rows)
    assert "qty1=" in text and "gmodel=" in text
    assert order["buyer"]["id_number"] not in text and order["buyer"]["name"] not in text


def test_the_outbox_carries_the_documents_once(gw):
    order, pay, waybill = documents(gw)
    sent = messages(gw, order, pay, waybill)
    before = gw.count(OUTBOX)
    for kind in ("list", "order", "payment", "waybill", "order"):
        answer(gw.send(*sent[kind]))
    topics = [r.topic for r in gw.rows(select(OUTBOX.c.topic).order_by(OUTBOX.c.id).offset(before))]
    assert sorted(t for t in topics if t.startswith("sw.order.submitted")) == ["sw.order.submitted.v1",
                                                                             "sw.order.submitted.v2"]


SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "ceb"
# The enterprises customs' own samples name, by their customs codes (spec §7.5: a registration may carry it).
SAMPLE_PARTIES = {"1105910159": ["platform", "ecommerce", "payment", "logistics"],
                  "1101110325": ["platform", "ecommerce"], "1101110323": ["payment"], "1101180326": ["logistics"]}


def test_customs_own_samples_unchanged_with_their_parties_registered(gw):
    keys = {}
    for customs_code, roles in SAMPLE_PARTIES.items():
        code = new_uscc()
        r = gw.run(gw.http.post("/v1/enterprises", headers={"Authorization": f"Bearer {OPERATOR}"}, json={
            "code": code, "name": f"Sample {customs_code}", "roles": roles, "customs_code": customs_code}))
        assert r.status_code == 201, r.text
        keys[customs_code] = r.json()["api_key"]

    def send(path: str, sender: str) -> list[dict]:
        r = gw.run(gw.http.post("/ceb/v1/messages", content=(SAMPLES / path).read_bytes(), headers={
            "Authorization": f"Bearer {keys[sender]}", "Content-Type": "application/xml"}))
        return answer(r)

    # Imports: every sample is sent by 1101180326 (a logistics firm transmitting for the others).
    assert {r["returnStatus"] for r in send("import/CEB311Message.xml", "1101180326")} == {"-10102"}
    assert {r["returnStatus"] for r in send("import/CEB411Message.xml", "1101180326")} == {"-10102"}
    assert {r["returnStatus"] for r in send("import/CEB511Message.xml", "1101180326")} <= {"2", "-504011"}
    # The list is sent by the logistics firm it names, acting for the seller: taken, waiting for its order.
    assert {r["returnStatus"] for r in send("import/CEB621Message.xml", "1101180326")} <= {"2", "120", "-621001"}
    # Exports: one enterprise is platform, seller and logistics firm; the samples' defects are named.
    orders = send("export/CEB303Message.xml", "1105910159")
    assert orders and all(r["returnStatus"] == "-301008" and "OrderList[1]/unit" in r["returnInfo"] for r in orders)
    assert {r["returnStatus"] for r in send("export/CEB505Message.xml", "1105910159")} == {"2"}
    lists = send("export/CEB603Message.xml", "1105910159")
    # The sample's first list is declared (refused: 0101 is general trade); the nine after it are drafts.
    assert lists[0]["returnStatus"] == "-621001" and "InventoryHead/tradeMode" in lists[0]["returnInfo"]
    assert {(r["returnStatus"], r["returnInfo"].split(" ")[0]) for r in lists[1:]} == {("120", "draft")}
