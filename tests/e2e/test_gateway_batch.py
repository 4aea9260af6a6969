"""Batch submission (spec §7.1) and the group commit of single submissions, on the real mesh: every document
gets exactly the answer its single endpoint gives, independently of its neighbours, and is stored and
published once."""
from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.e2e.conftest import released_order_no
from tests.support import new_uscc, order_body, payment_body, unique, waybill_body

pytestmark = pytest.mark.e2e


def batch(api, who, kind: str, documents, **kw) -> httpx.Response:
    return api.http.post(f"/v1/{kind}:batch", json={"documents": documents}, headers=who.auth, **kw)


def results(r: httpx.Response) -> list[tuple[int, dict]]:
    assert r.status_code == 200, r.text
    found = r.json()["results"]
    assert [x["index"] for x in found] == list(range(len(found)))
    return [(x["status"], x["body"]) for x in found]


def test_a_batch_answers_every_order_as_the_single_endpoint_would(api, parties):
    p = parties
    other = api.register(["platform"])
    good = order_body(p.platform.code, p.ecommerce.code, released_order_no(p.platform.code))
    second = order_body(p.platform.code, p.ecommerce.code, released_order_no(p.platform.code))
    bad = order_body(p.platform.code, p.ecommerce.code, unique("BAD"))
    bad["items"][0]["hs_code"] = "33049900"
    unregistered = order_body(p.platform.code, new_uscc(), unique("UNREG"))
    forbidden = order_body(other.code, p.ecommerce.code, unique("THEIRS"))
    documents = [
        good,
        bad,
        dict(reversed(list(good.items()))),  # the same order again, other key order: 200
        second,
        {**second, "discount": "11.00", "actual_paid": "446.50"},  # same key, other content: 409
        forbidden,  # another platform's order: 403
        unregistered,  # a party that is not registered: 422
        [1, 2],  # not an object: 422
    ]
    answers = results(batch(api, p.platform, "orders", documents))
    assert [s for s, _ in answers] == [202, 422, 200, 202, 409, 403, 422, 422]
    assert answers[1][1]["errors"][0]["field"] == "items[0].hs_code"
    assert answers[6][1]["errors"][0]["field"] == "ecommerce_code"

    # Submitted alone afterwards, each gets the very same body; what the batch accepted (202) is now 200.
    for (status, body), document in zip(answers, documents):
        alone = api.http.post("/v1/orders", json=document, headers=p.platform.auth)
        assert alone.json() == body, (document, body)
        assert alone.status_code == (200 if status == 202 else status)

    # Refused documents were not stored; their neighbours were.
    for document in (bad, unregistered, forbidden):
        r = api.http.get(f"/v1/orders/{document['platform_code']}/{document['order_no']}", headers=api.admin)
        assert r.status_code == 404
    assert api.status(p.platform, second["order_no"])["order_no"] == second["order_no"]

    # Their payments and waybills in batches too; the orders are then decided by customs.
    pays = results(batch(api, p.payment, "payments", [payment_body(p.payment.code, o) for o in (good, second)]))
    bills = results(batch(api, p.logistics, "waybills", [waybill_body(p.logistics.code, o) for o in (good, second)]))
    assert [s for s, _ in pays + bills] == [202] * 4
    for o in (good, second):
        assert api.wait_customs(p.platform, o["order_no"])["customs"]["status"] == "released"


def test_payment_and_waybill_batches_judge_each_document(api, parties):
    p = parties
    imp = order_body(p.platform.code, p.ecommerce.code, unique("ORD"))
    exp = order_body(p.platform.code, p.ecommerce.code, unique("EXP"), direction="export", buyer_id=None)
    assert [s for s, _ in results(batch(api, p.platform, "orders", [imp, exp]))] == [202, 202]
    other_firm = api.register(["payment"])
    payment = payment_body(p.payment.code, imp)
    documents = [
        payment,
        payment_body(p.payment.code, exp),  # a payment for an export: 422 export_order
        payment_body(other_firm.code, imp),  # another firm's payment: 403
        {**payment, "payment_no": unique("PAY")},  # a second payment for the order: 409 (spec §7.2)
        payment,  # identical: 200
        {**payment_body(p.payment.code, imp), "platform_code": new_uscc()},  # unregistered platform: 422
    ]
    answers = results(batch(api, p.payment, "payments", documents))
    assert [s for s, _ in answers] == [202, 422, 403, 409, 200, 422]
    assert answers[1][1]["errors"][0]["code"] == "export_order"
    assert answers[0][1] == {"payment_no": payment["payment_no"], "order_no": imp["order_no"],
                             "status_url": f"/v1/orders/{p.platform.code}/{imp['order_no']}"}
    for (status, body), document in zip(answers, documents):
        alone = api.payment(p.payment, document)
        assert alone.json() == body and alone.status_code == (200 if status == 202 else status)

    waybill = waybill_body(p.logistics.code, exp)
    bad = {**waybill_body(p.logistics.code, imp), "package_count": 0}
    answers = results(batch(api, p.logistics, "waybills", [waybill, bad, waybill]))
    assert [s for s, _ in answers] == [202, 422, 200]
    assert answers[1][1]["errors"][0]["field"] == "package_count"
    # A firm without the role gets each document's 403, as from the single endpoint.
    answers = results(batch(api, p.platform, "waybills", [waybill]))
    assert answers == [(403, api.waybill(p.platform, waybill).json())]


def test_batch_envelope_size_and_count_limits(api, parties):
    p = parties
    many = [order_body(p.platform.code, p.ecommerce.code, unique("MANY"), direction="export") for _ in range(501)]
    r = batch(api, p.platform, "orders", many)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "documents"
    answers = results(batch(api, p.platform, "orders", many[:500]))
    assert [s for s, _ in answers] == [202] * 500
    assert api.status(p.platform, many[499]["order_no"])["documents"]["order"] == "received"
    assert api.http.get(f"/v1/orders/{p.platform.code}/{many[500]['order_no']}", headers=api.admin).status_code == 404

    # Over 1 MiB is fine for a batch (8 MiB), not for the single endpoint; over 8 MiB is 413.
    roomy = order_body(p.platform.code, p.ecommerce.code, unique("ROOMY"), direction="export")
    filler = {"documents": [roomy], "padding": "x"}  # an unknown field: 422 once the body is read
    filler["padding"] = "x" * (2 * 1024 * 1024)
    r = api.http.post("/v1/orders:batch", json=filler, headers=p.platform.auth)
    assert r.status_code == 422
    huge = {"documents": [roomy], "padding": "x" * (8 * 1024 * 1024 + 1)}
    assert api.http.post("/v1/orders:batch", json=huge, headers=p.platform.auth).status_code == 413
    assert api.http.post("/v1/orders", json={**roomy, "padding": "x" * (1024 * 1024)},
                         headers=p.platform.auth).status_code == 413
    # Streamed without Content-Length, the limit holds too.
    chunks = iter([json.dumps(huge).encode()[i:i + 65536] for i in range(0, 8 * 1024 * 1024 + 200, 65536)])
    r = api.http.post("/v1/orders:batch", content=chunks, headers={**p.platform.auth, "content-type": "application/json"})
    assert r.status_code == 413

    for body in ({"documents": []}, {"docs": [roomy]}, [roomy], {"documents": roomy}, "documents"):
        r = api.http.post("/v1/orders:batch", json=body, headers=p.platform.auth)
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), body
    r = api.http.post("/v1/orders:batch", content=b'{"documents": [', headers={
        **p.platform.auth, "content-type": "application/json"})
    assert r.status_code == 400
    assert api.http.post("/v1/orders:batch", json={"documents": [roomy]}).status_code == 401
    # Nothing of any refused envelope was stored.
    assert api.http.get(f"/v1/orders/{p.platform.code}/{roomy['order_no']}", headers=api.admin).status_code == 404


def test_concurrent_single_submissions_each_get_their_answer_and_are_published_once(api, parties):
    p = parties
    first = order_body(p.platform.code, p.ecommerce.code, unique("ONE"), direction="export")
    before = api.produced()
    assert api.order(p.platform, first).status_code == 202
    per_order = api.produced() - before  # v2, and v1 during its deprecation period
    mid = before + per_order

    orders = [order_body(p.platform.code, p.ecommerce.code, unique("CONC"), direction="export") for _ in range(50)]
    shared = order_body(p.platform.code, p.ecommerce.code, unique("SHARED"), direction="export")
    bad = [{**o, "actual_paid": "1.00", "order_no": unique("BADSUM")} for o in orders[:5]]
    conflicting = {**orders[0], "destination_country": "DE"}

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=api.mesh.url("gateway"), timeout=60, headers=p.platform.auth,
                                     limits=httpx.Limits(max_connections=100)) as client:
            return await asyncio.gather(
                *(client.post("/v1/orders", json=o) for o in orders),
                *(client.post("/v1/orders", json=shared) for _ in range(8)),
                *(client.post("/v1/orders", json=b) for b in bad))

    answers = asyncio.run(fire())
    single, dupes, refused = answers[:50], answers[50:58], answers[58:]
    assert [r.status_code for r in single] == [202] * 50
    assert [r.json()["order_no"] for r in single] == [o["order_no"] for o in orders]
    assert sorted(r.status_code for r in dupes) == [200] * 7 + [202]
    assert all(r.json() == dupes[0].json() for r in dupes)
    assert all(r.status_code == 422 and r.json()["errors"][0]["field"] == "actual_paid" for r in refused)
    assert api.order(p.platform, conflicting).status_code == 409

    for o in orders + [shared]:
        assert api.status(p.platform, o["order_no"])["documents"]["order"] == "received"
    for b in bad:
        assert api.http.get(f"/v1/orders/{p.platform.code}/{b['order_no']}", headers=api.admin).status_code == 404
    assert api.produced() == mid + per_order * 51  # each accepted order exactly once, nothing for the rest


def test_the_contract_suites_platform_mode_submits_through_the_batch_endpoints(api, tmp_path, capsys):
    from tooling.contracts.suite.__main__ import main

    me = api.register(["platform", "ecommerce", "payment", "logistics"])
    good = order_body(me.code, me.code, released_order_no(me.code))
    bad = {**order_body(me.code, me.code, unique("BAD")), "actual_paid": "1.00"}
    (tmp_path / "orders.json").write_text(json.dumps([good, bad]))
    (tmp_path / "payment.json").write_text(json.dumps(payment_body(me.code, good)))
    (tmp_path / "waybill.json").write_text(json.dumps(waybill_body(me.code, good)))
    code = main(["platform", str(tmp_path), "--no-cross-checks", "--gateway", api.mesh.url("gateway"),
                 "--api-key", me.key, "--json"])
    report = json.loads(capsys.readouterr().out)
    answers = [(a["location"].rsplit("/", 1)[-1], a["status"]) for a in report["gateway"]["answers"]]
    # The bad order is refused beside its good neighbour, which goes on with its payment and waybill.
    assert answers == [("orders.json[0]", 202), ("orders.json[1]", 422), ("payment.json", 202), ("waybill.json", 202)]
    assert report["gateway"]["answers"][1]["errors"][0]["field"] == "actual_paid"
    assert code == 1  # a refused document fails the run
    assert api.wait_customs(me, good["order_no"])["customs"]["status"] == "released"


def test_the_same_document_in_concurrent_batches_is_accepted_once(api, parties):
    # Batches are transactions of their own, side by side (on PostgreSQL, truly concurrent): the document
    # they share is stored by one (202), the others find it (200), whoever commits first.
    p = parties
    shared = order_body(p.platform.code, p.ecommerce.code, unique("RACE"), direction="export")
    own = [order_body(p.platform.code, p.ecommerce.code, unique("OWN"), direction="export") for _ in range(6)]
    before = api.produced()
    assert api.order(p.platform, order_body(p.platform.code, p.ecommerce.code, unique("ONE"),
                                            direction="export")).status_code == 202
    mid = api.produced()
    per_order = mid - before  # v2, and v1 during its deprecation period

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=api.mesh.url("gateway"), timeout=60, headers=p.platform.auth) as client:
            return await asyncio.gather(*(client.post("/v1/orders:batch", json={"documents": [o, shared]}) for o in own))

    answers = [results(r) for r in asyncio.run(fire())]
    assert [a[0][0] for a in answers] == [202] * 6
    assert sorted(a[1][0] for a in answers) == [200] * 5 + [202]
    assert all(a[1][1] == answers[0][1][1] for a in answers)
    assert api.produced() == mid + 7 * per_order  # each of the 7 orders published once
