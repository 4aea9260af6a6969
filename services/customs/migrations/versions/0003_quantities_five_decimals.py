"""quantities with five decimals (spec 1.1 §2): released export lines keep a quantity's five decimals and
its value's seven (five times a price's two), so PostgreSQL never rounds them before the consolidation

Revision ID: 5b1c0e7a9d42
Revises: e70ab16ee29e
Create Date: 2026-11-29 09:40:00
"""
from alembic import op

import shared.tables

revision = '5b1c0e7a9d42'
down_revision = 'e70ab16ee29e'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # On SQLite an ExactDecimal is text: nothing to change there.
    if op.get_bind().dialect.name == "sqlite":
        return
    with op.batch_alter_table('released_export_lines', schema=None) as batch_op:
        batch_op.alter_column('quantity', type_=shared.tables.ExactDecimal(18, 5),
                              existing_type=shared.tables.ExactDecimal(18, 4), existing_nullable=False)
        batch_op.alter_column('value', type_=shared.tables.ExactDecimal(24, 7),
                              existing_type=shared.tables.ExactDecimal(24, 6), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    with op.batch_alter_table('released_export_lines', schema=None) as batch_op:
        batch_op.alter_column('quantity', type_=shared.tables.ExactDecimal(18, 4),
                              existing_type=shared.tables.ExactDecimal(18, 5), existing_nullable=False)
        batch_op.alter_column('value', type_=shared.tables.ExactDecimal(24, 6),
                              existing_type=shared.tables.ExactDecimal(24, 7), existing_nullable=False)
