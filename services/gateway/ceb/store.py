"""The CEB front door's set-based database work (tables `ceb_records`, `ceb_receipts`): one query per table
for a whole message, a whole run of customs' decisions, or a whole pass of the timeout."""
from __future__ import annotations

import base64
import json
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from nacl.secret import SecretBox
from sqlalchemy import and_, select, text

from services.gateway.tables import ceb_receipts, ceb_records
from shared.db import insert_if_absent, upsert
from shared.sealing import keyed_box

RecordKey = tuple[str, str, str]  # (kind, party_code, number)


def records_box(gateway_key: str) -> SecretBox:
    """The box held records are kept in (they hold buyers' and payers' identity numbers)."""
    return keyed_box(gateway_key, b"single-window held CEB records v1")


def seal_record(box: SecretBox, record: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(box.encrypt(json.dumps(record, sort_keys=True).encode())).decode()


def open_record(box: SecretBox, sealed: str) -> dict[str, Any]:
    """The record `seal_record` sealed; raises nacl.exceptions.CryptoError under another key."""
    return json.loads(box.decrypt(base64.urlsafe_b64decode(sealed.encode())))


async def load_records(session, keys: Collection[RecordKey],  # noqa: ANN001
                       waybills: Collection[tuple[str, str]]) -> tuple[dict[RecordKey, Any], dict[tuple[str, str], Any]]:
    """The rows held for `keys`, and the lists naming `waybills` ((logistics code, waybill no) → the list's
    row): two queries. The IN lists hit the primary key and the list-waybill index; the few extra rows they
    admit are filtered here."""
    by_key: dict[RecordKey, Any] = {}
    if keys:
        rows = await session.execute(select(ceb_records).where(
            ceb_records.c.kind.in_({k for k, _, _ in keys}), ceb_records.c.party_code.in_({p for _, p, _ in keys}),
            ceb_records.c.number.in_({n for _, _, n in keys})))
        wanted = set(keys)
        by_key = {(r.kind, r.party_code, r.number): r for r in rows if (r.kind, r.party_code, r.number) in wanted}
    lists: dict[tuple[str, str], Any] = {}
    if waybills:
        rows = await session.execute(select(ceb_records).where(
            ceb_records.c.waybill_code.in_({c for c, _ in waybills}), ceb_records.c.waybill_no.in_({n for _, n in waybills}),
            ceb_records.c.kind == "list"))
        wanted_w = set(waybills)
        for r in rows:
            if (r.waybill_code, r.waybill_no) in wanted_w and r.state != "refused":
                lists[(r.waybill_code, r.waybill_no)] = r
    return by_key, lists


async def save_records(session, rows: list[dict[str, Any]]) -> None:  # noqa: ANN001
    """Writes rows of `ceb_records` (whole rows, one upsert)."""
    await upsert(session, ceb_records, rows)


def feed_row(recipient: str, receipt: tuple[str, str, bytes], at: datetime) -> dict[str, Any]:
    """A row of the feed for `recipient`: `receipt` is (guid, receipt message type, XML) as
    `receipts.record_receipt` and `receipts.decision_receipt` give it."""
    guid, message_type, xml = receipt
    return {"recipient": recipient, "guid": guid, "message_type": message_type, "xml": xml.decode(),
            "created_at": at}


async def add_receipts(session, receipts: Iterable[dict[str, Any]]) -> None:  # noqa: ANN001
    """Adds receipts to the feed (`recipient`, `guid`, `message_type`, `xml`, `created_at`); one already
    there for its recipient (same guid) is not added again. On PostgreSQL the table is locked first (EXCLUSIVE:
    readers go on, writers queue until this transaction ends), so receipts are committed in `seq` order and a
    poller that read up to some `seq` never misses a smaller one committed later."""
    receipts = list(receipts)
    if not receipts:
        return
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("LOCK TABLE ceb_receipts IN EXCLUSIVE MODE"))
    await insert_if_absent(session, ceb_receipts, receipts, keys=["recipient", "guid"])


async def receipts_since(session, recipient: str, since: int, limit: int) -> list[Any]:  # noqa: ANN001
    """The recipient's receipts after `since`, oldest first, at most `limit` (one index range scan)."""
    return (await session.execute(select(ceb_receipts).where(and_(
        ceb_receipts.c.recipient == recipient, ceb_receipts.c.seq > since)).order_by(ceb_receipts.c.seq).limit(limit))).all()


async def lists_of_orders(session, orders: Collection[tuple[str, str]]) -> dict[tuple[str, str], Any]:  # noqa: ANN001
    """(platform code, order no) → the CEB list that completed the order (state submitted), for customs'
    decisions about orders that came by CEB (one query)."""
    if not orders:
        return {}
    rows = await session.execute(select(ceb_records).where(
        ceb_records.c.kind == "list", ceb_records.c.state == "submitted",
        ceb_records.c.party_code.in_({p for p, _ in orders}), ceb_records.c.number.in_({o for _, o in orders})))
    wanted = set(orders)
    return {(r.party_code, r.number): r for r in rows if (r.party_code, r.number) in wanted}


def lock_key(kind: str, party_code: str, number: str) -> str:
    """The advisory lock key of a record (shared.db.lock_keys): an order and its list share one (the order's
    key); a waybill has its own. Whoever changes a held record holds its key."""
    return f"ceb-waybill:{party_code}:{number}" if kind == "waybill" else f"ceb:{party_code}:{number}"


async def try_lock_records(session, rows: Iterable[Any]) -> list[Any]:  # noqa: ANN001
    """The rows whose advisory lock (`lock_key`) this transaction could take now, without waiting (one
    statement; PostgreSQL: on SQLite, with one writer at a time, every row). A row whose key another
    transaction holds is being completed by a message right now: it is left to that message."""
    rows = list(rows)
    if not rows or session.get_bind().dialect.name != "postgresql":
        return rows
    keys = sorted({lock_key(r.kind, r.party_code, r.number) for r in rows})
    got = set((await session.execute(text(
        "SELECT k FROM (SELECT k, hashtext(k) AS h FROM unnest(CAST(:keys AS text[])) AS k ORDER BY h) AS ordered "
        "WHERE pg_try_advisory_xact_lock(h)"), {"keys": keys})).scalars())
    return [r for r in rows if lock_key(r.kind, r.party_code, r.number) in got]


async def due_records(session, now: datetime, limit: int) -> list[Any]:  # noqa: ANN001
    """Held records whose time is up, at most `limit`, locked for this transaction; rows another
    transaction holds are skipped (PostgreSQL), so two gateways never return one record twice."""
    query = select(ceb_records).where(and_(ceb_records.c.state == "held", ceb_records.c.expires_at <= now)).order_by(
        ceb_records.c.expires_at).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return (await session.execute(query)).all()


__all__ = ["RecordKey", "records_box", "seal_record", "open_record", "load_records", "save_records", "feed_row",
           "add_receipts", "receipts_since", "lists_of_orders", "due_records", "lock_key", "try_lock_records"]
