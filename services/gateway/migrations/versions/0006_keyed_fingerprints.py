"""keyed fingerprints: the stored fingerprints (content_hash) of orders, payments, waybills and tracking events become
HMAC-SHA256 under SW_GATEWAY_FINGERPRINT_KEY of the plain SHA-256 stored before.

Why: an order's or payment's fingerprint covers the full identity number while the stored document keeps
only its masked form; a plain digest could be reversed by trying the few million resident ids the mask leaves
open. Keying the stored digest keeps every identical resubmission identical (the gateway now computes
HMAC(key, SHA-256(canonical form)), services/gateway/rules.fingerprint) with no raw document needed here.

Not reversible without the plain digests, which is the point: downgrade leaves the keyed values (a
downgraded gateway would answer 409 to an identical resubmission of a document stored before).

Revision ID: 2f8b6d0c4e15
Revises: 7e3c91a4b2d8
Create Date: 2026-11-29 10:10:00
"""
import hashlib
import hmac

import sqlalchemy as sa
from alembic import op

from shared.settings import settings

revision = '2f8b6d0c4e15'
down_revision = '7e3c91a4b2d8'
branch_labels = None
depends_on = None

CHUNK = 1000
TABLES = {
    "orders": ("platform_code", "order_no"),
    "payments": ("payment_code", "payment_no"),
    "waybills": ("logistics_code", "waybill_no"),
    "tracking_events": ("logistics_code", "waybill_no", "content_hash"),
}


def keyed(digest: str, key: bytes) -> str:
    # Frozen here (not imported from the gateway's rules) so this migration keeps its meaning.
    return hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()


def upgrade() -> None:
    key = settings().sw_gateway_fingerprint_key.encode()
    bind = op.get_bind()
    for name, keys in TABLES.items():
        t = sa.table(name, *(sa.column(c, sa.String) for c in dict.fromkeys((*keys, "content_hash"))))
        # Pages of the owner and number (tracking_events' key also holds the hash being rewritten, so a page
        # boundary on it could meet a rewritten row again): every row of a page's documents is rewritten
        # in that page, and the next page starts after it.
        page_key = [t.c[k] for k in keys if k != "content_hash"]
        last: tuple | None = None
        while True:
            query = sa.select(*page_key).distinct().order_by(*page_key).limit(CHUNK)
            if last is not None:
                query = query.where(sa.tuple_(*page_key) > sa.tuple_(*last))
            page = [tuple(r) for r in bind.execute(query).fetchall()]
            if not page:
                break
            last = page[-1]
            rows = bind.execute(sa.select(t).where(sa.tuple_(*page_key).in_(page))).fetchall()
            bind.execute(
                t.update().where(*(t.c[k] == sa.bindparam(f"k_{k}") for k in keys))
                .values(content_hash=sa.bindparam("new_hash")),
                [{**{f"k_{k}": getattr(r, k) for k in keys}, "new_hash": keyed(r.content_hash, key)} for r in rows])


def downgrade() -> None:
    pass
