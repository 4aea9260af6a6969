"""parties.credit_revision: credit's revision of the enterprise (events' enterprise_revision), so a rating
or listing consumed out of credit's order (two topics) never rolls a party's grade back. Held parties start
at 0: credit's next event about them carries a greater revision.

Revision ID: 9d4f2b6a1e38
Revises: 5b1c0e7a9d42
Create Date: 2026-11-29 13:05:00
"""
import sqlalchemy as sa
from alembic import op

revision = '9d4f2b6a1e38'
down_revision = '5b1c0e7a9d42'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('parties', sa.Column('credit_revision', sa.BigInteger(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('parties') as batch:
        batch.drop_column('credit_revision')
