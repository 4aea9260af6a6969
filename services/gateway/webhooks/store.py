"""Set-based reads and writes of the webhook tables: one query or statement per table for a whole run of
events or a whole pass of the sender; no lock is held across an HTTP call (a claim is a lease)."""
from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, case, delete, exists, func, literal, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.tables import orders, webhook_attempts, webhook_deliveries, webhooks
from services.gateway.views import OrderKey
from services.gateway.webhooks import rules
from shared.db import insert_if_absent

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


# --- who is told --------------------------------------------------------------------------------


def _watched():  # noqa: ANN202
    """True for an order (a row of `orders` in the enclosing query) a reader of which (rules.readers: the
    platform, the seller) holds a webhook."""
    return exists().where(webhooks.c.enterprise_code.in_((orders.c.platform_code, orders.c.ecommerce_code))
                          ).correlate(orders)


async def held_versions_and_watched(session: AsyncSession, keys: Collection[OrderKey]
                                    ) -> tuple[dict[OrderKey, int], set[OrderKey]]:
    """The version the gateway holds of each order of `keys` (absent: not held), and which of them a party
    watches with a webhook: ONE query, the read model's handlers' only read of `orders` (so a mesh where
    nobody subscribed writes no extra event, and one that did costs no extra query). No lock: a correction
    racing with the run writes its views with the newer version, which the save keeps."""
    if not keys:
        return {}, set()
    rows = await session.execute(select(orders.c.platform_code, orders.c.order_no, orders.c.version,
                                        _watched().label("watched")).where(
        tuple_(orders.c.platform_code, orders.c.order_no).in_(sorted(keys))))
    held, watched = {}, set()
    for r in rows:
        held[(r.platform_code, r.order_no)] = r.version
        if r.watched:
            watched.add((r.platform_code, r.order_no))
    return held, watched


async def watched_orders(session: AsyncSession, keys: Collection[OrderKey]) -> set[OrderKey]:
    """The orders of `keys` a party of which holds a webhook; one query (the dispatcher checks the events
    each webhook subscribed to)."""
    return (await held_versions_and_watched(session, keys))[1]


async def subscribers(session: AsyncSession, order_rows: Sequence[Row], event_type: str
                      ) -> dict[OrderKey, list[Row]]:
    """The webhooks subscribed to `event_type` of every reader of each order (rules.readers, from its
    lines of `gateway_store.status_query`): one query. Orders no reader of which subscribed are absent."""
    if not order_rows:
        return {}
    parties = {(r.platform_code, r.order_no): rules.readers(r.platform_code, r.ecommerce_code)
               for r in order_rows}
    codes = sorted(set().union(*parties.values()))
    by_owner: dict[str, list[Row]] = {}
    for w in await session.execute(select(webhooks.c.id, webhooks.c.enterprise_code, webhooks.c.events)
                                   .where(webhooks.c.enterprise_code.in_(codes)).order_by(webhooks.c.id)):
        if event_type in (w.events or []):
            by_owner.setdefault(w.enterprise_code, []).append(w)
    return {key: [w for code in sorted(codes_of) for w in by_owner.get(code, [])]
            for key, codes_of in parties.items() if any(code in by_owner for code in codes_of)}


async def add_deliveries(session: AsyncSession, rows: Sequence[dict]) -> int:
    """Inserts the deliveries that are not there yet (by `delivery_id`), in the order given (which is their
    `seq` order); one statement. Returns how many were new."""
    return await insert_if_absent(session, webhook_deliveries, list(rows), keys=["delivery_id"])


# --- the sender's claims and records ---------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A delivery claimed for one attempt, with what sending it needs."""

    seq: int
    delivery_id: str
    webhook_id: str
    url: str
    secret: str  # as stored: sealed (rules.seal_secret)
    body: str
    attempts: int  # attempts made before this one
    created_at: datetime
    token: str  # the claim's lease token: only it may record the outcome
    owner: str = ""  # the webhook's enterprise (the sender's share per enterprise)


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: an HTTP status (None: no answer) or an error, and how long it took."""

    delivery: Claimed
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


async def claim_due(session: AsyncSession, now: datetime, lease: timedelta, token: str, limit: int,
                    per_webhook: int | None = None, in_flight: Mapping[str, int] | None = None,
                    per_owner: int | None = None, owners_in_flight: Mapping[str, int] | None = None
                    ) -> list[Claimed]:
    """Claims up to `limit` due deliveries (one UPDATE, one read of their webhooks): pending, due, not leased
    by a live claim, and with no earlier pending delivery of the same order to the same webhook (deliveries
    of one order leave in order). `per_webhook`: at most that many of one webhook, less what the caller has
    `in_flight` to it already ({webhook id: attempts}), so a receiver that hangs holds a bounded share.
    `per_owner` (with `per_webhook`): likewise at most that many of one enterprise's webhooks, less its
    `owners_in_flight` ({enterprise code: attempts}): an enterprise's many webhooks that hang together hold
    a bounded share too, not every slot.

    On PostgreSQL the rows are picked `FOR UPDATE SKIP LOCKED`, so two gateways claiming at once take
    different rows; the lease (`lease_until`, `lease_token`) then keeps them taken after this transaction
    commits, while the HTTP calls run."""
    d = webhook_deliveries
    earlier = webhook_deliveries.alias("earlier")
    waits = select(earlier.c.seq).where(earlier.c.webhook_id == d.c.webhook_id, earlier.c.order_key == d.c.order_key,
                                        earlier.c.seq < d.c.seq, earlier.c.status == PENDING).exists()
    conditions = (d.c.status == PENDING, d.c.next_attempt_at <= now,
                  or_(d.c.lease_until.is_(None), d.c.lease_until < now), ~waits)
    due = select(d.c.seq).where(*conditions)
    if per_webhook is not None:
        # The first `allowance` due rows of each webhook (in due order), its allowance being what is left of
        # its share: a window over the due rows, the pick below locks from those.
        rank = func.row_number().over(partition_by=d.c.webhook_id, order_by=(d.c.next_attempt_at, d.c.seq))
        ranked = (select(d.c.seq, d.c.webhook_id, d.c.next_attempt_at, webhooks.c.enterprise_code.label("owner"),
                         rank.label("rank"))
                  .join(webhooks, webhooks.c.id == d.c.webhook_id).where(*conditions).subquery())
        busy = {w: max(per_webhook - n, 0) for w, n in (in_flight or {}).items() if n > 0}
        allowance = case(busy, value=ranked.c.webhook_id, else_=per_webhook) if busy else literal(per_webhook)
        picked = select(ranked.c.seq).where(ranked.c.rank <= allowance)
        if per_owner is not None:
            # Of the rows each webhook's share leaves, the first of each enterprise within its own share.
            owner_rank = func.row_number().over(partition_by=ranked.c.owner,
                                                order_by=(ranked.c.next_attempt_at, ranked.c.seq))
            within = select(ranked.c.seq, ranked.c.owner, owner_rank.label("owner_rank")).where(
                ranked.c.rank <= allowance).subquery()
            owners_busy = {o: max(per_owner - n, 0) for o, n in (owners_in_flight or {}).items() if n > 0}
            owner_allowance = (case(owners_busy, value=within.c.owner, else_=per_owner) if owners_busy
                               else literal(per_owner))
            picked = select(within.c.seq).where(within.c.owner_rank <= owner_allowance)
        due = select(d.c.seq).where(d.c.seq.in_(picked))
    due = due.order_by(d.c.next_attempt_at, d.c.seq).limit(limit).with_for_update(skip_locked=True, of=d)
    claimed = (await session.execute(update(d).where(d.c.seq.in_(due.scalar_subquery())).values(
        lease_until=now + lease, lease_token=token).returning(
        d.c.seq, d.c.delivery_id, d.c.webhook_id, d.c.body, d.c.attempts, d.c.created_at))).all()
    if not claimed:
        return []
    hooks = {w.id: w for w in await session.execute(
        select(webhooks.c.id, webhooks.c.url, webhooks.c.secret, webhooks.c.enterprise_code).where(
            webhooks.c.id.in_(sorted({c.webhook_id for c in claimed}))))}
    return sorted((Claimed(c.seq, c.delivery_id, c.webhook_id, hooks[c.webhook_id].url, hooks[c.webhook_id].secret,
                           c.body, c.attempts, c.created_at, token, hooks[c.webhook_id].enterprise_code)
                   for c in claimed if c.webhook_id in hooks), key=lambda c: c.seq)


async def record_outcomes(session: AsyncSession, outcomes: Sequence[Outcome], schedule: rules.RetrySchedule,
                          jitters: Mapping[int, float]) -> None:
    """Records attempts: one UPDATE (executemany) of the deliveries, each only where its claim still holds
    the lease (its token), and one INSERT of the attempts. A 2xx is `delivered`; anything else is tried
    again by `schedule` (jitter per `seq` from `jitters`), or `failed` once it gives up."""
    if not outcomes:
        return
    updates, attempts = [], []
    for o in outcomes:
        c, attempt = o.delivery, o.delivery.attempts + 1
        ok = rules.succeeded(o.status_code)
        retry_at = None if ok else schedule.next_attempt(c.created_at, o.at, attempt, jitters.get(c.seq, 0.5))
        status = DELIVERED if ok else PENDING if retry_at is not None else FAILED
        error = (o.error or (None if ok else f"HTTP {o.status_code}"))
        updates.append({"b_seq": c.seq, "b_token": c.token, "b_status": status, "b_attempts": attempt,
                        "b_next": retry_at or o.at, "b_at": o.at, "b_code": o.status_code,
                        "b_error": error[:500] if error else None, "b_finished": None if status == PENDING else o.at})
        attempts.append({"delivery_id": c.delivery_id, "webhook_id": c.webhook_id, "attempt": attempt, "at": o.at,
                         "status_code": o.status_code, "error": error[:500] if error else None,
                         "duration_ms": o.duration_ms})
    d = webhook_deliveries
    await session.execute(update(d).where(d.c.seq == bindparam("b_seq"), d.c.lease_token == bindparam("b_token"))
                          .values(status=bindparam("b_status"), attempts=bindparam("b_attempts"),
                                  next_attempt_at=bindparam("b_next"), last_attempt_at=bindparam("b_at"),
                                  last_status_code=bindparam("b_code"), last_error=bindparam("b_error"),
                                  finished_at=bindparam("b_finished"), lease_until=None, lease_token=None)
                          .execution_options(synchronize_session=False), updates)
    await session.execute(webhook_attempts.insert(), attempts)


async def prune(session: AsyncSession, before: datetime, chunk: int) -> int:
    """Deletes up to `chunk` finished deliveries finished before `before`, and up to `chunk` attempts made
    before it (the deliveries log keeps SW_WEBHOOK_KEEP_DAYS); returns how many rows went."""
    d, a = webhook_deliveries, webhook_attempts
    old = select(d.c.seq).where(d.c.finished_at.is_not(None), d.c.finished_at < before).limit(chunk)
    gone = (await session.execute(delete(d).where(d.c.seq.in_(old.scalar_subquery())))).rowcount or 0
    old_attempts = select(a.c.id).where(a.c.at < before).limit(chunk)
    gone += (await session.execute(delete(a).where(a.c.id.in_(old_attempts.scalar_subquery())))).rowcount or 0
    return gone


# --- the routes' reads and writes ----------------------------------------------------------------


async def urls_of(session: AsyncSession, enterprise_code: str) -> dict[str, str]:
    """{webhook id: url} of the enterprise's webhooks (at most SW_WEBHOOK_MAX_PER_ENTERPRISE: one small query)."""
    rows = await session.execute(select(webhooks.c.id, webhooks.c.url).where(
        webhooks.c.enterprise_code == enterprise_code))
    return {r.id: r.url for r in rows}


async def webhook_of(session: AsyncSession, webhook_id: str, owner: str | None) -> Row | None:
    """The webhook `webhook_id` if `owner` holds it (owner None: the operator, any webhook)."""
    query = select(webhooks).where(webhooks.c.id == webhook_id)
    if owner is not None:
        query = query.where(webhooks.c.enterprise_code == owner)
    return (await session.execute(query)).first()


async def remove(session: AsyncSession, webhook_id: str) -> None:
    """Deletes a webhook with its deliveries (pending ones are not sent any more) and their attempts."""
    await session.execute(delete(webhook_attempts).where(webhook_attempts.c.webhook_id == webhook_id))
    await session.execute(delete(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id))
    await session.execute(delete(webhooks).where(webhooks.c.id == webhook_id))


async def recent_deliveries(session: AsyncSession, webhook_id: str, limit: int) -> list[dict[str, Any]]:
    """The webhook's `limit` latest deliveries, newest first, each with its attempts (oldest first): two
    queries."""
    d, a = webhook_deliveries, webhook_attempts
    rows = (await session.execute(select(d.c.delivery_id, d.c.order_key, d.c.event_type, d.c.status, d.c.attempts,
                                         d.c.created_at, d.c.next_attempt_at, d.c.last_attempt_at,
                                         d.c.last_status_code, d.c.last_error, d.c.finished_at)
                                  .where(d.c.webhook_id == webhook_id).order_by(d.c.seq.desc()).limit(limit))).all()
    tried: dict[str, list[dict[str, Any]]] = {}
    if rows:
        for t in await session.execute(select(a).where(a.c.delivery_id.in_([r.delivery_id for r in rows]))
                                       .order_by(a.c.delivery_id, a.c.id)):
            tried.setdefault(t.delivery_id, []).append({
                "attempt": t.attempt, "at": t.at.isoformat(), "response_code": t.status_code, "error": t.error,
                "duration_ms": t.duration_ms})
    return [{"delivery_id": r.delivery_id, "type": r.event_type, "order": r.order_key, "status": r.status,
             "attempts": r.attempts, "response_code": r.last_status_code, "last_error": r.last_error,
             "created_at": r.created_at.isoformat(),
             "last_attempt_at": r.last_attempt_at.isoformat() if r.last_attempt_at else None,
             "next_attempt_at": r.next_attempt_at.isoformat() if r.status == PENDING else None,
             "finished_at": r.finished_at.isoformat() if r.finished_at else None,
             "attempt_log": tried.get(r.delivery_id, [])} for r in rows]


