"""The CEB front door is set-based (spec §7.5, the project's standard): a message costs the same statements
whether it carries 2 records or 30 — one query per table per message, one bulk write per table — for each
kind of message and for the list that completes held orders and waybills. Statements are counted on the
real app's engine (SQLite here; the PostgreSQL-only advisory lock and table lock are one statement each)."""
from __future__ import annotations

import pytest
from sqlalchemy import event

from services.gateway.app import service
from tests.integration.test_ceb_front_door import Gateway, answer, documents, gw  # noqa: F401 - the fixture
from tooling.ceb import writer

pytestmark = pytest.mark.integration


def _send_counted(gw: Gateway, xml: bytes, role: str) -> tuple[list[str], list[str]]:  # noqa: F811
    """(the statements the request ran, the records' return statuses)."""
    statements: list[str] = []
    listen = lambda *a: statements.append(a[2])  # noqa: E731 - (conn, cursor, statement, …)
    event.listen(service.engine.sync_engine, "before_cursor_execute", listen)
    try:
        r = gw.send(xml, role)
    finally:
        event.remove(service.engine.sync_engine, "before_cursor_execute", listen)
    return statements, [ret["returnStatus"] for ret in answer(r)]


def _play(gw: Gateway, n: int) -> dict[str, list[str]]:  # noqa: F811
    """N imports as four messages, the lists last: orders and waybills are held, then the lists complete
    them (and the orders' and waybills' senders get their 120 in the feed). Statements per message kind."""
    c = gw.codes
    parcels = [documents(gw) for _ in range(n)]
    messages = [
        ("order", "platform", [writer.import_order_record(o) for o, _, _ in parcels], "2"),
        ("payment", "payment", [writer.payment_record(p) for _, p, _ in parcels], "120"),
        ("waybill", "logistics", [writer.import_waybill_record(w) for _, _, w in parcels], "2"),
        ("list", "logistics", [writer.import_list_record(o, w) for o, _, w in parcels], "120"),
    ]
    out = {}
    for kind, role, records, expected in messages:
        statements, statuses = _send_counted(gw, writer.message(records, cop_code=c[role]), role)
        assert statuses == [expected] * n, (kind, statuses)
        out[kind] = statements
    return out


def _shape(statements: list[str]) -> list[str]:
    """A statement without its parameters' count (an IN list or a VALUES list grows with the records)."""
    return [" ".join(s.split()[:4]) for s in statements if not s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE"))]


def test_a_message_costs_the_same_statements_for_2_records_as_for_30(gw):  # noqa: F811
    small, large = _play(gw, 2), _play(gw, 30)
    for kind in ("order", "payment", "waybill", "list"):
        assert len(large[kind]) == len(small[kind]), (kind, _shape(small[kind]), _shape(large[kind]))
        assert sorted(_shape(large[kind])) == sorted(_shape(small[kind])), kind
    # The list that completes 30 orders and 30 waybills reads the held records in a bounded number of
    # queries and writes them back in one statement.
    reads = [s for s in large["list"] if "FROM ceb_records" in s and s.lstrip().upper().startswith("SELECT")]
    assert len(reads) <= 3, reads
    assert sum(s.lstrip().upper().startswith("INSERT INTO CEB_RECORDS") for s in large["list"]) == 1
