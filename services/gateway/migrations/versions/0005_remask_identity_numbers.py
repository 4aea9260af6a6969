"""remask identity numbers: documents stored under 1.0 keep a passport or other number as E123*5678 (first
4, last 4); spec 1.1 §7.2 shows at most first 4 and last 4 with at least half masked, and only the last 2 of
a number under 12 characters (*******78). The stored orders' buyers and payments' payers are masked again.
The read model's customs views lose what 1.0 reasons said of people: an IDENTITY_MISMATCH's names
("payer name 'A' differs from buyer name 'B'" → "payer name differs from buyer name"), the identity numbers
in it masked again, and the order's buyer and payer names wherever else they stand (an inspector's note).

Data only; nothing to undo (a masked number cannot be unmasked). The events already on the topics cannot be
rewritten: every reader masks `id_number_masked` again on receipt (contracts.types.MaskedIdNumber).

Revision ID: 7e3c91a4b2d8
Revises: 61a2a9a2c8b8
Create Date: 2026-11-29 09:50:00
"""
import re

import sqlalchemy as sa
from alembic import op

revision = '7e3c91a4b2d8'
down_revision = '61a2a9a2c8b8'
branch_labels = None
depends_on = None

CHUNK = 1000


def mask(number: str) -> str:
    # The rule of spec §7.2, frozen here as it was when this migration was written (a migration must not
    # change meaning when contracts.identifiers.mask_id_number changes later).
    if len(number) < 12:
        head, tail = 0, min(2, len(number) // 2)
    else:
        head = tail = min(4, len(number) // 4)
    return number[:head] + "*" * (len(number) - head - tail) + (number[len(number) - tail:] if tail else "")


def _remask(table: str, keys: tuple[str, str], person: str) -> None:
    """Keyset pages of `table`, ordered by its key; rows whose `document[person]` shows too much are
    rewritten, one executemany per page."""
    t = sa.table(table, *(sa.column(k, sa.String) for k in keys), sa.column("document", sa.JSON))
    bind = op.get_bind()
    last: tuple | None = None
    while True:
        query = sa.select(t).order_by(*(t.c[k] for k in keys)).limit(CHUNK)
        if last is not None:
            query = query.where(sa.tuple_(*(t.c[k] for k in keys)) > sa.tuple_(*last))
        rows = bind.execute(query).fetchall()
        if not rows:
            return
        last = tuple(getattr(rows[-1], k) for k in keys)
        changed = []
        for row in rows:
            doc = dict(row.document or {})
            who = doc.get(person)
            if isinstance(who, dict) and isinstance(who.get("id_number_masked"), str):
                masked = mask(who["id_number_masked"])
                if masked != who["id_number_masked"]:
                    doc[person] = {**who, "id_number_masked": masked}
                    changed.append({**{f"k_{k}": getattr(row, k) for k in keys}, "document": doc})
        if changed:
            bind.execute(t.update().where(*(t.c[k] == sa.bindparam(f"k_{k}") for k in keys))
                         .values(document=sa.bindparam("document")), changed)


_NAMES_DIFFER = re.compile(r"payer name (['\"]).*?\1 differs from buyer name (['\"]).*?\2")
_ID_NUMBER = re.compile(r"(id number )([0-9A-Za-z*]+)")


def _clean_message(message: str, names: set[str]) -> str:
    message = _NAMES_DIFFER.sub("payer name differs from buyer name", message)
    message = _ID_NUMBER.sub(lambda m: m.group(1) + mask(m.group(2)), message)
    for name in sorted(names, key=len, reverse=True):
        message = re.sub(re.escape(name), "[name withheld]", message, flags=re.IGNORECASE)
    return message


def _clean_customs_views() -> None:
    """Keyset pages of the customs views; per page one query per document table for the people's names."""
    views = sa.table("agency_views", sa.column("platform_code", sa.String), sa.column("order_no", sa.String),
                     sa.column("agency", sa.String), sa.column("view", sa.JSON))
    orders = sa.table("orders", sa.column("platform_code", sa.String), sa.column("order_no", sa.String),
                      sa.column("document", sa.JSON))
    payments = sa.table("payments", sa.column("platform_code", sa.String), sa.column("order_no", sa.String),
                        sa.column("document", sa.JSON))
    bind = op.get_bind()
    last: tuple | None = None
    while True:
        query = (sa.select(views).where(views.c.agency == "customs")
                 .order_by(views.c.platform_code, views.c.order_no).limit(CHUNK))
        if last is not None:
            query = query.where(sa.tuple_(views.c.platform_code, views.c.order_no) > sa.tuple_(*last))
        rows = bind.execute(query).fetchall()
        if not rows:
            return
        last = (rows[-1].platform_code, rows[-1].order_no)
        keys = [(r.platform_code, r.order_no) for r in rows]
        names: dict[tuple, set[str]] = {}
        for table, person in ((orders, "buyer"), (payments, "payer")):
            for r in bind.execute(sa.select(table).where(
                    sa.tuple_(table.c.platform_code, table.c.order_no).in_(keys))):
                who = (r.document or {}).get(person)
                if isinstance(who, dict) and who.get("name"):
                    names.setdefault((r.platform_code, r.order_no), set()).add(who["name"])
        changed = []
        for row in rows:
            view = dict(row.view or {})
            reasons = view.get("reasons") or []
            cleaned = [{**r, "message": _clean_message(r.get("message", ""), names.get((row.platform_code, row.order_no), set()))}
                       if isinstance(r, dict) else r for r in reasons]
            if cleaned != reasons:
                changed.append({"k_p": row.platform_code, "k_o": row.order_no, "view": {**view, "reasons": cleaned}})
        if changed:
            bind.execute(views.update().where(views.c.platform_code == sa.bindparam("k_p"),
                                              views.c.order_no == sa.bindparam("k_o"), views.c.agency == "customs")
                         .values(view=sa.bindparam("view")), changed)


def upgrade() -> None:
    _remask("orders", ("platform_code", "order_no"), "buyer")
    _remask("payments", ("payment_code", "payment_no"), "payer")
    _clean_customs_views()


def downgrade() -> None:
    pass  # a masked number cannot be unmasked, and the 1.1 form is valid under 1.0 readers too
