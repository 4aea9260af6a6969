"""remask identity numbers: documents stored under 1.0 keep a passport or other number as E123*5678 (first
4, last 4); spec 1.1 §7.2 shows at most first 4 and last 4 with at least half masked, and only the last 2 of
a number under 12 characters (*******78). The stored orders' buyers and payments' payers are masked again.

Data only; nothing to undo (a masked number cannot be unmasked). The events already on the topics cannot be
rewritten: every reader masks `id_number_masked` again on receipt (contracts.types.MaskedIdNumber).

Revision ID: 7e3c91a4b2d8
Revises: 5b1f0c7a9d2e
Create Date: 2026-11-29 09:50:00
"""
import sqlalchemy as sa
from alembic import op

revision = '7e3c91a4b2d8'
down_revision = '5b1f0c7a9d2e'
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


def upgrade() -> None:
    _remask("orders", ("platform_code", "order_no"), "buyer")
    _remask("payments", ("payment_code", "payment_no"), "payer")


def downgrade() -> None:
    pass  # a masked number cannot be unmasked, and the 1.1 form is valid under 1.0 readers too
