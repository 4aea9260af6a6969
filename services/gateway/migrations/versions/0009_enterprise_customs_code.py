"""enterprises.customs_code: the enterprise's 10-character customs registration code (spec 1.1 §3, §7.5),
optional and unique, so CEB messages that name parties by it can be read (store.enterprise_codes).

Revision ID: 9a3d5e7c2b14
Revises: 4c9e2b7d1a60
Create Date: 2026-11-29 15:50:00

A nullable column and a unique index: registered enterprises keep NULL (NULLs never collide in a unique
index, on PostgreSQL or SQLite), so the upgrade needs no data and no table rewrite.
"""
import sqlalchemy as sa
from alembic import op

revision = '9a3d5e7c2b14'
down_revision = '4c9e2b7d1a60'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('enterprises', sa.Column('customs_code', sa.String(10), nullable=True))
    op.create_index('uq_enterprises_customs_code', 'enterprises', ['customs_code'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_enterprises_customs_code', table_name='enterprises')
    with op.batch_alter_table('enterprises') as batch:
        batch.drop_column('customs_code')
