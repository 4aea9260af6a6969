"""enterprise_views.revision: the agency's revision of its view of the enterprise (events'
enterprise_revision), so a view consumed out of the agency's order (FX's settlements of one seller travel on
different partitions; credit's ratings and listings on two topics) never replaces a later one. Held views
start at 0: the next event of each agency carries a greater revision and replaces them.

Revision ID: 5c0e8a3f91b7
Revises: 2f8b6d0c4e15
Create Date: 2026-11-29 12:55:00
"""
import sqlalchemy as sa
from alembic import op

revision = '5c0e8a3f91b7'
down_revision = '2f8b6d0c4e15'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('enterprise_views', sa.Column('revision', sa.BigInteger(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('enterprise_views') as batch:
        batch.drop_column('revision')
