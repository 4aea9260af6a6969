"""Migration steps of the runtime tables (shared/tables.py: outbox, inbox) that every service takes.

Every service keeps the outbox and inbox in its own database, so each change to them is one revision per
service; the revision files are two lines that call the step here, so the services cannot drift apart."""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shared.tables


def outbox_set_aside_and_pruning_indexes_upgrade() -> None:
    """Outbox: `set_aside_at` and `set_aside_reason` (a row the broker refuses for good is set aside, not
    retried for ever) with an index to count them for /healthz; inbox: an index on `handled_at` so the
    pruner deletes the oldest rows in bounded chunks."""
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("set_aside_at", shared.tables.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("set_aside_reason", sa.Text(), nullable=True))
        batch_op.create_index("ix_outbox_set_aside", ["set_aside_at"], unique=False)
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.create_index("ix_inbox_handled_at", ["handled_at"], unique=False)


def outbox_set_aside_and_pruning_indexes_downgrade() -> None:
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_handled_at")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_set_aside")
        batch_op.drop_column("set_aside_reason")
        batch_op.drop_column("set_aside_at")
