"""The demo's CEB share (deploy/demo_ceb.py) without a mesh: the messages it would send are valid against
customs' schemas, one sender and one kind each, within the record limits, in mixed order, and name the
enterprises that have a customs code by it. `make demo` itself plays them through the mesh."""
from __future__ import annotations

import random
from collections import Counter

import pytest
from lxml import etree
from rich.progress import Progress

from deploy import demo as demo_module
from deploy import demo_ceb
from deploy.demo import Demo, uscc
from services.gateway.ceb.messages import NS
from tooling.ceb import writer

LIMITS = {"order": demo_ceb.ORDERS_PER_MESSAGE, "payment": demo_ceb.DOCUMENTS_PER_MESSAGE,
          "waybill": demo_ceb.DOCUMENTS_PER_MESSAGE, "list": demo_ceb.LISTS_PER_MESSAGE}


@pytest.fixture
def demo(monkeypatch) -> Demo:
    monkeypatch.setattr(demo_module, "rng", random.Random(11))
    monkeypatch.setattr(demo_ceb, "CEB_SHARE", 1.0)  # every parcel the writer can express goes as CEB
    d = Demo("http://gateway.invalid", Progress(disable=True))
    d.platform, d.platform2, d.payer, d.carrier = uscc(), uscc(), uscc(), uscc()
    d.sellers = [uscc() for _ in range(3)]
    for n, code in enumerate([d.platform, d.payer, d.carrier, d.sellers[1]]):
        d.customs_codes[code] = f"3301{n:06d}"
    for code in [d.platform, d.platform2, d.payer, d.carrier, *d.sellers]:
        d.names[code], d.keys[code] = f"Enterprise {code}", "unused"
    d.ceb = demo_ceb.CebTraffic(d.http, d.keys, d.customs_codes, d.names, random.Random(7))
    return d


def test_the_ceb_share_is_valid_messages_one_sender_each_in_mixed_order(demo):
    jobs: list = []
    for i in range(150):
        demo.submit_or_ceb(demo.import_order([demo.platform, demo.platform2][i % 3 // 2], demo.sellers[1 + i % 2],
                                             "import"), jobs)
    for i in range(40):
        demo.submit_or_ceb(demo.export_order(demo.platform, demo.sellers[1 + i % 2], "retail export"), jobs)
    for job in jobs:  # the parcels the writer cannot express (a destination without a customs code) stay REST
        job.close()
    assert len(demo.ceb.parcels) + len(jobs) == 190 and len(demo.ceb.parcels) > 150

    streams = demo.ceb.messages()
    sent: Counter = Counter()
    sequence: dict[tuple, list[str]] = {}  # (sender, kind, direction) -> order numbers in sending order
    for stream in streams:
        assert len({(m.sender, m.kind) for m in stream}) == 1
        sequence[(stream[0].sender, stream[0].kind, stream[0].parcels[0].order["direction"])] = [p.order["order_no"] for m in stream for p in m.parcels]
        for m in stream:
            assert 1 <= len(m.parcels) <= LIMITS[m.kind]
            assert writer.validate(m.xml) == [], m.kind
            root = etree.fromstring(m.xml)
            cop = root.find(f"{{{NS}}}BaseTransfer/{{{NS}}}copCode").text
            assert cop == demo.customs_codes.get(m.sender, m.sender)  # named by its customs code when it has one
            for p in m.parcels:
                sent[(p.order["order_no"], m.kind)] += 1
    # Every record of every parcel is sent exactly once, by its own party.
    expected = {(p.order["order_no"], kind) for p in demo.ceb.parcels for kind in p.senders}
    assert set(sent) == expected and set(sent.values()) == {1}
    # Several records a message, and each sender in its own order: the parcels a platform and a seller share
    # reach the gateway in a different order from each, so some lists come before their orders.
    assert sum(len(s) for s in streams) < len(expected) / 3
    orders, lists = sequence[(demo.platform, "order", "import")], sequence[(demo.sellers[1], "list", "import")]
    shared = set(orders) & set(lists)
    assert len(shared) > 20
    assert [o for o in orders if o in shared] != [o for o in lists if o in shared]
