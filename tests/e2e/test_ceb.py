"""Customs' own messages through the whole mesh (spec 1.1 §7.5; issue 11): an integrator's unchanged CEB
messages, each sent by its own party with its own API key, clear to customs' decision on the real broker, with
schema-valid receipts and the polling feed, in any arrival order; a malformed record beside good ones reaches no
agency; what §4 has no field for is in the order's trace; the export lists' legal quantities reach customs'
monthly consolidated declaration (domain §12).

Messages are written by tooling/ceb/writer.py from the REST bodies of tests/support.py, as an integrator's
system would send them. Order numbers come from `released_order_no` (the deterministic inspection selection of
the e2e settings does not pick them), so a parcel whose documents agree is released green."""
from __future__ import annotations

import itertools
import random
import string
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from lxml import etree

from services.gateway.ceb.messages import NS
from services.gateway.ceb.receipts import parse_receipt, validate_receipt
from tests.e2e.conftest import Api, Enterprise, inspected_order_no, released_order_no
from tests.support import new_uscc, order_body, payment_body, wait_for, waybill_body
from tooling.ceb import writer

pytestmark = pytest.mark.e2e

ROLES = ("platform", "ecommerce", "payment", "logistics")
EXPORT_ROLES = ("platform", "ecommerce", "logistics")  # an export names no payment firm (CEB303)
BUYER = "Wang Xiaoming"  # a name no other text of the trace could carry by chance
# Customs' decision as a list receipt's returnStatus (spec §7.5).
RELEASED, INSPECTION, RETURNED = "800", "500", "100"


def _customs_code() -> str:
    return "".join(random.choice(string.ascii_uppercase + string.digits) for _ in range(10))


@dataclass
class CebParties:
    """One enterprise per role, registered with a 10-character customs code (spec §3, 1.1)."""

    api: Api
    by_role: dict[str, Enterprise]
    customs: dict[str, str]  # role -> customs code

    def code(self, role: str) -> str:
        return self.by_role[role].code

    def customs_codes(self) -> dict[str, str]:
        """For the writer's `party_codes`: every party named by its customs code."""
        return {self.code(r): self.customs[r] for r in self.by_role}

    def send(self, xml: bytes, role: str) -> list[dict]:
        """POSTs one message as `role`; checks the answer is a schema-valid receipt; returns its Returns."""
        r = self.api.http.post("/ceb/v1/messages", content=xml, headers={
            **self.by_role[role].auth, "Content-Type": "application/xml"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/xml")
        assert validate_receipt(r.content) == [], r.text
        return parse_receipt(r.content)[1]

    def feed(self, role: str, since: int = 0) -> tuple[list[dict], int]:
        """Every receipt in `role`'s polling feed after `since` (all pages), and the last cursor."""
        out = []
        while True:
            r = self.api.http.get("/ceb/v1/receipts", params={"since": since}, headers=self.by_role[role].auth)
            assert r.status_code == 200, r.text
            page = r.json()
            out += page["receipts"]
            if not page["receipts"]:
                return out, since
            assert page["next"] > since
            since = page["next"]


def register(api: Api, roles: Iterable[str] = ROLES) -> CebParties:
    by_role, customs = {}, {}
    for role in roles:
        code, customs_code = new_uscc(), _customs_code()
        r = api.http.post("/v1/enterprises", headers=api.admin, json={
            "code": code, "name": f"Enterprise {code}", "roles": [role], "country": "CN",
            "customs_code": customs_code})
        assert r.status_code == 201, r.text
        by_role[role], customs[role] = Enterprise(code, r.json()["api_key"], [role]), customs_code
    return CebParties(api, by_role, customs)


def import_parcel(p: CebParties, order_no: str | None = None, *, amount: str | None = None,
                  items: list[dict] | None = None) -> tuple[dict, dict, dict]:
    order = order_body(p.code("platform"), p.code("ecommerce"), order_no or released_order_no(p.code("platform")),
                       buyer_name=BUYER, items=items)
    return order, payment_body(p.code("payment"), order, amount=amount), waybill_body(p.code("logistics"), order)


EXPORT_ITEMS = [
    {"item_no": "TS-1", "name": "T-shirt", "hs_code": "6109100022", "quantity": 3, "unit": "piece",
     "unit_price": "40.00", "origin_country": "CN",
     "legal_quantities": [{"quantity": "3", "unit": "piece"}, {"quantity": "0.45", "unit": "kg"}]},
]


def export_parcel(p: CebParties) -> tuple[dict, dict]:
    order = order_body(p.code("platform"), p.code("ecommerce"), released_order_no(p.code("platform"), "EXP"),
                       direction="export", destination_country="DE", discount="0.00", tax_total="0.00",
                       items=[dict(i) for i in EXPORT_ITEMS])
    return order, waybill_body(p.code("logistics"), order)


def _naming(p: CebParties, by_customs_code: bool | Iterable[str]) -> dict[str, dict[str, str] | None]:
    """Per sending role, the writer's `party_codes`: True = every sender names every party (itself too) by
    its customs code; a set of roles = only those senders do (each integrator chooses on its own)."""
    chosen = set(ROLES) if by_customs_code is True else set(by_customs_code or ())
    return {role: p.customs_codes() if role in chosen else None for role in ROLES}


def import_messages(p: CebParties, order: dict, pay: dict, waybill: dict, *,
                    by_customs_code: bool | Iterable[str]) -> dict:
    """The four messages of one import parcel, each with the role that sends it."""
    c = _naming(p, by_customs_code)
    return {"order": (writer.import_order(order, cop_code=p.code("platform"), party_codes=c["platform"]), "platform"),
            "payment": (writer.payment(pay, cop_code=p.code("payment"), party_codes=c["payment"]), "payment"),
            "waybill": (writer.import_waybill(waybill, cop_code=p.code("logistics"), party_codes=c["logistics"]),
                        "logistics"),
            "list": (writer.import_list(order, waybill, cop_code=p.code("ecommerce"), party_codes=c["ecommerce"]),
                     "ecommerce")}


def export_messages(p: CebParties, order: dict, waybill: dict, *, by_customs_code: bool | Iterable[str]) -> dict:
    c = _naming(p, by_customs_code)
    return {"order": (writer.export_order(order, cop_code=p.code("platform"), party_codes=c["platform"]), "platform"),
            "waybill": (writer.export_waybill(waybill, cop_code=p.code("logistics"), party_codes=c["logistics"]),
                        "logistics"),
            "list": (writer.export_list(order, waybill, cop_code=p.code("ecommerce"), party_codes=c["ecommerce"]),
                     "ecommerce")}


def some_senders(n: int, roles: tuple[str, ...] = ROLES) -> set[str]:
    """The senders of parcel `n` that name parties by customs code (bit k of `n`: `roles[k]` does), so that
    consecutive parcels cover the combinations of the senders' choices."""
    return {role for bit, role in enumerate(roles) if n >> bit & 1}


def list_guids(xml: bytes) -> list[str]:
    """The guids of a list message's records: customs' list receipts (CEB622/CEB604) name a list by it."""
    return [g.text for g in etree.fromstring(xml).iterfind(f"{{{NS}}}Inventory/{{{NS}}}InventoryHead/{{{NS}}}guid")]


def list_guid(xml: bytes) -> str:
    (guid,) = list_guids(xml)
    return guid


DECIDED = {"300", "500", "800", "100"}  # customs' decisions; 120 is a held list's completion (or a pending one)


def decisions_in(receipts: list[dict], message_type: str) -> dict[str, dict]:
    """The list receipts of customs' decisions in a feed (CEB622/CEB604 whose status is a decision), by list
    guid, the last one per list. A held list's own 120 on completion is the same message type."""
    out = {}
    for r in receipts:
        if r["message_type"] == message_type:
            kind, rets = parse_receipt(r["xml"].encode())
            assert kind == message_type
            for ret in rets:
                if ret["returnStatus"] in DECIDED:
                    out[ret["guid"]] = ret
    return out


def send_parcels(p: CebParties, plans: list[tuple[dict, tuple[str, ...]]]) -> list[list[str]]:
    """Sends each parcel's messages in its arrival order, parcels concurrently (four at a time: the machine's
    two cores serve the whole mesh); returns each parcel's synchronous returnStatus per message."""

    def one(plan: tuple[dict, tuple[str, ...]]) -> list[str]:
        sent, arrival = plan
        statuses = []
        for kind in arrival:
            xml, role = sent[kind]
            (ret,) = p.send(xml, role)
            statuses.append(ret["returnStatus"])
        return statuses

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, plans))


def wait_released(api: Api, p: CebParties, order_nos: list[str], timeout: float = 120) -> None:
    platform = p.by_role["platform"]
    for order_no in order_nos:
        view = api.wait_customs(platform, order_no, timeout)
        assert view["customs"]["status"] == "released", (order_no, view)


def held_records_of(p: CebParties, role: str, since: int) -> list[dict]:
    """The record receipts (held records completed: 120) in `role`'s feed after `since`, customs' decisions
    left out."""
    receipts, _ = p.feed(role, since)
    return [ret for r in receipts for ret in parse_receipt(r["xml"].encode())[1] if ret["returnStatus"] not in DECIDED]


def assert_feed_valid_and_replayable(p: CebParties, role: str, since: int) -> list[dict]:
    receipts, _ = p.feed(role, since)
    for r in receipts:
        assert validate_receipt(r["xml"].encode()) == [], r["xml"]
    assert p.feed(role, since)[0] == receipts  # the same cursor: the same guids, the same XML
    assert len({r["guid"] for r in receipts}) == len(receipts)
    return receipts


def test_an_import_clears_the_mesh_in_every_arrival_order(api):
    p = register(api)
    cursors = {role: p.feed(role)[1] for role in ROLES}
    plans, parcels = [], []
    for n, arrival in enumerate(itertools.permutations(["order", "payment", "waybill", "list"])):
        order, pay, waybill = import_parcel(p)
        # Each sender of a parcel names the parties (itself too) by USCC or by 10-character customs code, on its
        # own: the 24 parcels cover every combination of the four senders' choices.
        sent = import_messages(p, order, pay, waybill, by_customs_code=some_senders(n + 1))
        plans.append((sent, arrival))
        parcels.append((order, list_guid(sent["list"][0])))
    answers = send_parcels(p, plans)
    for (sent, arrival), statuses in zip(plans, answers):
        # A record is held (2) exactly while its partner has not come: the list is the order's and the
        # waybill's partner (CEB311 has no HS code, CEB511 no platform), the order the list's; a payment is
        # complete on its own. The last record always completes the parcel.
        expected = ["120" if kind == "payment" or "list" in arrival[:k] or (kind == "list" and "order" in arrival[:k])
                    else "2" for k, kind in enumerate(arrival)]
        assert statuses == expected and statuses[-1] == "120", (arrival, statuses)

    wait_released(api, p, [order["order_no"] for order, _ in parcels])
    # The seller (the lists' sender) finds customs' release of each list in its feed: CEB622, 800.
    receipts = wait_for(lambda: (r := p.feed("ecommerce", cursors["ecommerce"])[0])
                        and len(decisions_in(r, "CEB622Message")) >= len(parcels) and r,
                        60, what="the 24 CEB622 releases in the seller's feed")
    decided = decisions_in(receipts, "CEB622Message")
    for order, guid in parcels:
        assert guid in decided, order["order_no"]
        assert decided[guid]["returnStatus"] == RELEASED, decided[guid]
    # An integrator's retry after the release: every record answered 120 again, nothing submitted twice.
    resent, _ = plans[0]
    for kind in ("list", "order", "waybill", "payment"):
        assert p.send(*resent[kind])[0]["returnStatus"] == "120"
    assert api.status(p.by_role["platform"], parcels[0][0]["order_no"])["version"] == 1
    for role in ROLES:
        assert_feed_valid_and_replayable(p, role, cursors[role])
    # Every record held on arrival got exactly one 120 in its sender's feed when it completed.
    for role in ("platform", "logistics", "ecommerce"):
        held = sum(1 for (sent, arrival), statuses in zip(plans, answers)
                   for kind, s in zip(arrival, statuses) if sent[kind][1] == role and s == "2")
        completed = held_records_of(p, role, cursors[role])
        assert [r["returnStatus"] for r in completed] == ["120"] * held, (role, completed)


def test_an_export_clears_the_mesh_in_every_arrival_order_into_the_monthly_declaration(api):
    p = register(api, EXPORT_ROLES)
    since = p.feed("ecommerce")[1]
    plans, parcels = [], []
    for n, arrival in enumerate(itertools.permutations(["order", "waybill", "list"])):
        order, waybill = export_parcel(p)
        sent = export_messages(p, order, waybill, by_customs_code=some_senders(n + 1, EXPORT_ROLES))
        plans.append((sent, arrival))
        parcels.append((order, list_guid(sent["list"][0])))
    for (_, arrival), statuses in zip(plans, send_parcels(p, plans)):
        # The order and the list wait for each other; the waybill (CEB505 names no order) for the list that
        # names it and the order it then belongs to.
        expected = ["120" if (kind == "order" and "list" in arrival[:k]) or (kind == "list" and "order" in arrival[:k])
                    or (kind == "waybill" and {"order", "list"} <= set(arrival[:k])) else "2"
                    for k, kind in enumerate(arrival)]
        assert statuses == expected, (arrival, statuses)
    wait_released(api, p, [order["order_no"] for order, _ in parcels])
    receipts = wait_for(lambda: (r := p.feed("ecommerce", since)[0])
                        and len(decisions_in(r, "CEB604Message")) >= len(parcels) and r,
                        60, what="the 6 CEB604 releases in the seller's feed")
    decided = decisions_in(receipts, "CEB604Message")
    assert {guid: decided[guid]["returnStatus"] for _, guid in parcels} == {guid: RELEASED for _, guid in parcels}
    assert {decided[guid]["orderNo"] for _, guid in parcels} == {order["order_no"] for order, _ in parcels}
    for role in EXPORT_ROLES:
        assert_feed_valid_and_replayable(p, role, 0)

    # Customs' consolidated export declaration of the month (domain §12): the lists' legal quantities,
    # summed per unit over the six parcels.
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    r = api.agency("customs").get("/v1/declarations", params={"month": month})
    assert r.status_code == 200, r.text
    mine = [d for d in r.json()["declarations"] if d["ecommerce_code"] == p.code("ecommerce")]
    assert len(mine) == 1, mine
    (line,) = mine
    assert (line["hs_code"], line["destination_country"], line["parcel_count"]) == ("6109100022", "DE", 6)
    assert Decimal(line["value"]) == 6 * Decimal("120.00")
    assert line["legal_quantities_status"] == "complete"
    assert [(q["position"], q["unit"], Decimal(q["quantity"]), q["parcel_count"]) for q in line["legal_quantities"]] \
        == [(1, "piece", Decimal("18"), 6), (2, "kg", Decimal("2.70"), 6)]


def test_the_parties_of_a_parcel_sending_at_the_same_moment(api):
    """Four integrators do not take turns: each parcel's four messages are sent at once, every parcel at once,
    each message twice (the records that complete each other must still find each other, whichever
    transaction commits first; a retry racing its original is one record)."""
    p = register(api)
    plans = []
    for n in range(6):
        order, pay, waybill = import_parcel(p)
        plans.append((order, import_messages(p, order, pay, waybill, by_customs_code=some_senders(3 * n))))

    def post(item: tuple[bytes, str]) -> str:
        (ret,) = p.send(*item)
        return ret["returnStatus"]

    # Every message twice: a sender's retry (its connection dropped) racing the original.
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(post, [m for _, sent in plans for m in sent.values() for _ in range(2)]))
    assert set(statuses) <= {"120", "2"}, statuses
    wait_released(api, p, [order["order_no"] for order, _ in plans], timeout=60)
    for order, sent in plans:
        assert api.status(p.by_role["platform"], order["order_no"])["version"] == 1
        # Each record, sent again now, is an identical replay of a record whose partners all came.
        assert [p.send(*sent[kind])[0]["returnStatus"] for kind in sent] == ["120"] * 4


def test_whole_batches_and_a_list_sent_by_the_carrier_for_the_seller(api):
    """Integrators send their day's records in batches (1-100 records a message); a carrier may declare the
    list for the seller (spec §7.5), and then both find customs' decision in their feeds."""
    p = register(api)
    cursors = {role: p.feed(role)[1] for role in ROLES}
    parcels = [import_parcel(p) for _ in range(5)]
    codes = p.customs_codes()
    batches = {
        "list": writer.message([writer.import_list_record(o, w, party_codes=codes) for o, _, w in parcels],
                               cop_code=p.code("logistics"), party_codes=codes),
        "waybill": writer.message([writer.import_waybill_record(w) for _, _, w in parcels],
                                  cop_code=p.code("logistics")),
        "payment": writer.message([writer.payment_record(pay) for _, pay, _ in parcels], cop_code=p.code("payment")),
        "order": writer.message([writer.import_order_record(o, party_codes=codes) for o, _, _ in parcels],
                                cop_code=p.code("platform"), party_codes=codes),
    }
    senders = {"list": "logistics", "waybill": "logistics", "payment": "payment", "order": "platform"}
    expected = {"list": "2", "waybill": "120", "payment": "120", "order": "120"}
    for kind in ("list", "waybill", "payment", "order"):
        rets = p.send(batches[kind], senders[kind])
        assert [r["returnStatus"] for r in rets] == [expected[kind]] * len(parcels), (kind, rets)
    wait_released(api, p, [o["order_no"] for o, _, _ in parcels])
    guids = list_guids(batches["list"])
    assert len(set(guids)) == len(parcels)
    for role in ("logistics", "ecommerce"):  # the list's sender, and the seller it declared for
        got = wait_for(lambda: (d := decisions_in(p.feed(role, cursors[role])[0], "CEB622Message"))
                       and len(d) >= len(parcels) and d, 60, what=f"the releases in the {role}'s feed")
        assert {g: got[g]["returnStatus"] for g in guids} == {g: RELEASED for g in guids}, role
        assert_feed_valid_and_replayable(p, role, cursors[role])


def test_a_malformed_record_beside_good_ones_reaches_no_agency(api):
    p = register(api)
    good = [import_parcel(p) for _ in range(2)]
    bad, _, _ = import_parcel(p)
    records = [writer.import_order_record(good[0][0]), writer.import_order_record(bad),
               writer.import_order_record(good[1][0])]
    xml = writer.message(records, cop_code=p.code("platform"))
    # The middle record's first line loses its quantity, an element the schema requires.
    head, _, tail = xml.partition(bad["order_no"].encode())
    assert b"<ceb:qty>2</ceb:qty>" in tail
    xml = head + bad["order_no"].encode() + tail.replace(b"<ceb:qty>2</ceb:qty>", b"", 1)
    rets = p.send(xml, "platform")
    assert [r["returnStatus"] for r in rets] == ["2", "-301008", "2"]
    assert [r["orderNo"] for r in rets] == [good[0][0]["order_no"], bad["order_no"], good[1][0]["order_no"]]
    assert "OrderList[1]/qty" in rets[1]["returnInfo"]

    for order, pay, waybill in good:
        sent = import_messages(p, order, pay, waybill, by_customs_code=False)
        # The waybill waits for the list (CEB511 names no platform); the list completes both.
        assert [p.send(*sent[kind])[0]["returnStatus"] for kind in ("payment", "waybill", "list")] == ["120", "2", "120"]
    wait_released(api, p, [order["order_no"] for order, _, _ in good])
    # The bad record was never submitted: no agency and not the gateway's read model know its order.
    platform = p.code("platform")
    gateway = api.http.get(f"/v1/orders/{platform}/{bad['order_no']}", headers=p.by_role["platform"].auth)
    assert gateway.status_code == 404, gateway.text
    assert api.agency("customs").get(f"/v1/orders/{platform}/{bad['order_no']}").status_code == 404
    assert api.agency("tax").get(f"/v1/assessments/{platform}/{bad['order_no']}").status_code == 404
    assert api.agency("fx").get(f"/v1/settlements/{platform}/{bad['order_no']}").status_code == 404


def test_returned_and_inspected_parcels_in_the_list_receipts(api):
    p = register(api)
    since = p.feed("ecommerce")[1]
    platform = p.code("platform")
    mismatch = import_parcel(p, amount="400.00")  # the payment does not match the order's actual_paid
    inspected = import_parcel(p, inspected_order_no(platform))
    guids = {}
    for name, (order, pay, waybill) in (("mismatch", mismatch), ("inspected", inspected)):
        sent = import_messages(p, order, pay, waybill, by_customs_code=True)
        for kind in ("list", "waybill", "payment", "order"):
            p.send(*sent[kind])
        guids[name] = list_guid(sent["list"][0])
    view = api.wait_customs(p.by_role["platform"], mismatch[0]["order_no"])
    assert view["customs"]["status"] == "rejected"
    view = api.wait_customs(p.by_role["platform"], inspected[0]["order_no"])
    assert view["customs"]["status"] == "inspection" and view["customs"]["channel"] == "red"

    def decided() -> dict:
        return decisions_in(p.feed("ecommerce", since)[0], "CEB622Message")

    got = wait_for(lambda: (d := decided()) and guids.keys() and all(g in d for g in guids.values()) and d, 60,
                   what="the list receipts of the returned and the inspected parcel")
    returned = got[guids["mismatch"]]
    assert returned["returnStatus"] == RETURNED
    assert "[Code:AMOUNT_MISMATCH;" in returned["returnInfo"]
    assert got[guids["inspected"]]["returnStatus"] == INSPECTION
    assert "[Code:SELECTED_FOR_INSPECTION;" in got[guids["inspected"]]["returnInfo"]

    # The inspector passes it: the seller's feed then has the release of the same list.
    r = api.agency("customs").post(f"/v1/inspections/{platform}/{inspected[0]['order_no']}",
                                   json={"result": "pass", "note": "checked"})
    assert r.status_code in (200, 202), r.text
    wait_for(lambda: decided().get(guids["inspected"], {}).get("returnStatus") == RELEASED, 60,
             what="the release after inspection in the seller's feed")

    # The platform corrects the returned order (CEB311 appType 2: the discount it forgot, so that the order's
    # paid amount is the payment's); the list kept from before completes it, and customs releases the parcel.
    order = mismatch[0]
    corrected = {**order, "discount": "57.50", "actual_paid": "400.00"}
    fix = writer.import_order(corrected, cop_code=platform, party_codes=p.customs_codes(), app_type="2")
    assert p.send(fix, "platform")[0]["returnStatus"] == "120"
    view = wait_for(lambda: (v := api.status(p.by_role["platform"], order["order_no"]))["customs"]["status"]
                    == "released" and v, 60, what="the corrected order's release")
    assert view["version"] == 2
    wait_for(lambda: decided().get(guids["mismatch"], {}).get("returnStatus") == RELEASED, 60,
             what="the release of the corrected order in the seller's feed")

    def statuses(guid: str) -> list[str]:
        return [ret["returnStatus"] for r in p.feed("ecommerce", since)[0] if r["message_type"] == "CEB622Message"
                for ret in parse_receipt(r["xml"].encode())[1] if ret["guid"] == guid]

    # Each list: its completion (it was sent first, so held), then every decision of customs, in order.
    assert statuses(guids["inspected"]) == ["120", INSPECTION, RELEASED]
    assert statuses(guids["mismatch"]) == ["120", RETURNED, RELEASED]
    assert_feed_valid_and_replayable(p, "ecommerce", since)


def test_the_trace_shows_what_section_4_has_no_field_for_without_personal_data(api):
    p = register(api)
    items = [{"item_no": "SKU-1", "name": "Face cream 50ml", "hs_code": "3304990099", "quantity": 2,
              "unit": "piece", "unit_price": "180.00", "origin_country": "FR", "brand": "Lumiere"}]
    order, pay, waybill = import_parcel(p, items=items)
    sent = import_messages(p, order, pay, waybill, by_customs_code=True)
    for kind in ("order", "list", "payment", "waybill"):
        p.send(*sent[kind])
    wait_released(api, p, [order["order_no"]])
    r = api.http.get(f"/v1/orders/{p.code('platform')}/{order['order_no']}/trace",
                     headers=p.by_role["platform"].auth)
    assert r.status_code == 200, r.text
    events = r.json()["events"]
    kept = " ".join(e["summary"] for e in events if e["type"] == "ceb.kept")
    assert "qty1=" in kept and "gmodel=" in kept, events
    assert "Lumiere" in kept  # the brand travels in gmodel's text, which §4 has no field for
    whole = r.text
    assert order["buyer"]["id_number"] not in whole and BUYER not in whole
    assert order["buyer"]["id_number"][-6:] not in whole
    # nor how to reach the buyer (CEB311 buyerTelephone, buyerRegNo; the consignee's phone and address)
    assert order["buyer"]["phone"] not in whole and order["consignee"]["address"] not in whole

