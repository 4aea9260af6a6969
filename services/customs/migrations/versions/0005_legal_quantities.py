"""released_export_lines.legal_quantity_1/legal_unit_1/legal_quantity_2/legal_unit_2: a released export
line's legal quantities (spec 1.1 §7.5, 法定数量: the HS code's first and second legal unit), which the
monthly consolidated export declaration sums per unit (domain §12). Nullable: lines released before, and
lines of orders that gave none, have no legal quantities.

Revision ID: 3c8e5a1f7b20
Revises: 9d4f2b6a1e38
Create Date: 2026-11-29 16:00:00
"""
import sqlalchemy as sa
from alembic import op

import shared.tables

revision = '3c8e5a1f7b20'
down_revision = '9d4f2b6a1e38'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('released_export_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('legal_quantity_1', shared.tables.ExactDecimal(18, 5), nullable=True))
        batch_op.add_column(sa.Column('legal_unit_1', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('legal_quantity_2', shared.tables.ExactDecimal(18, 5), nullable=True))
        batch_op.add_column(sa.Column('legal_unit_2', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('released_export_lines', schema=None) as batch_op:
        batch_op.drop_column('legal_unit_2')
        batch_op.drop_column('legal_quantity_2')
        batch_op.drop_column('legal_unit_1')
        batch_op.drop_column('legal_quantity_1')
