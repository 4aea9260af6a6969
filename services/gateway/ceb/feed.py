"""The writers of the CEB polling feed (`GET /ceb/v1/receipts`) besides the intake (spec §7.5): customs'
decisions about orders that came with a CEB list, as list receipts (CEB622 imports, CEB604 exports), and
held records returned after `DOCUMENT_TIMEOUT_HOURS`. Set-based: one query per run of decisions or per pass."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, update

from contracts.v1.events import CustomsDecision
from services.gateway.ceb import receipts, store
from services.gateway.tables import ceb_records
from shared.batch import Received


def decision_receipts(decisions: list[Received[CustomsDecision]], lists: dict[tuple[str, str], Any]) -> list[dict]:
    """The feed rows for a run of customs' decisions (pure): for each decision about an order completed by a
    CEB list (`lists`, from `store.lists_of_orders`), the list receipt with customs' status (§4.4 → 120 / 300 /
    500 / 800 / 100 with one `[Code:<REASON>;Desc:…]` per reason), for the list's sender and its seller
    (`ebcCode`) when the seller is another enterprise (an agent sent it). A cancellation has no list receipt
    (customs' own CEB623/624 cover it). Guids are stable over the decision's event id."""
    rows = []
    for e in decisions:
        d = e.payload
        kept = lists.get((d.platform_code, d.order_no))
        if kept is None or d.status == "cancelled":
            continue
        decision = receipts.decision_of(d.status, d.channel)
        at = d.decided_at
        guid_source = str(e.envelope.event_id)
        receipt = receipts.decision_receipt(kept.direction, dict(kept.keys), decision,
                                            [(r.code, r.message) for r in d.reasons], at, guid_source)
        rows += [store.feed_row(recipient, receipt, at) for recipient in dict.fromkeys([kept.sender, d.ecommerce_code])]
    return rows


async def customs_decisions(session, decisions: list[Received[CustomsDecision]]) -> None:  # noqa: ANN001
    """Adds the list receipts of a run of customs' decisions to the feed (two statements)."""
    lists = await store.lists_of_orders(session, {(e.payload.platform_code, e.payload.order_no) for e in decisions})
    await store.add_receipts(session, decision_receipts(decisions, lists))


def timeout_outcome(row: Any, hours: Any) -> receipts.Outcome:
    """A held record returned (spec §7.5: status 100, DOCUMENT_TIMEOUT), saying what it waited for."""
    return receipts.Outcome("100", f"[Code:DOCUMENT_TIMEOUT;Desc:held {hours} hours waiting for "
                                   f"{row.waiting_for or 'its partner record'}; nothing was submitted]")


async def return_timed_out(session, now: datetime, hours: Any, limit: int) -> int:  # noqa: ANN001
    """Returns the held records whose time is up (at most `limit`): each is marked timed_out and its sender
    gets the record's receipt with status 100 in the feed. Returns how many."""
    # A record whose key a message holds is being completed right now (submission.take): it is not timed out
    # under it; the message decides, and a later pass finds it again if it is still held. The keys are taken
    # without waiting, and the message that comes after this pass reads the record timed out.
    due = await store.try_lock_records(session, await store.due_records(session, now, limit))
    if not due:
        return 0
    feed = []
    for row in due:
        outcome = timeout_outcome(row, hours)
        feed.append(store.feed_row(row.sender, receipts.record_receipt(
            row.message_type, row.direction, dict(row.keys), outcome, now, row.kind, row.party_code, row.number,
            row.fingerprint, "timed_out"), now))
    # One executemany for the pass (the rows are locked: `due_records`).
    await session.execute(update(ceb_records).where(
        ceb_records.c.kind == bindparam("k"), ceb_records.c.party_code == bindparam("p"),
        ceb_records.c.number == bindparam("n"), ceb_records.c.state == "held").values(
        state="timed_out", outcome="100", outcome_info=bindparam("info"), updated_at=now, expires_at=None),
        [{"k": r.kind, "p": r.party_code, "n": r.number, "info": timeout_outcome(r, hours).info[:1000]} for r in due])
    await store.add_receipts(session, feed)
    return len(due)


__all__ = ["decision_receipts", "customs_decisions", "return_timed_out", "timeout_outcome"]
