"""credit_files.revision: every rating or listing credit publishes about an enterprise counts one, and the
event carries it (enterprise_revision) so the gateway keeps the latest state whatever order it consumes
credit.rating and credit.negative_list in.

Revision ID: 7b2e4d91c6a3
Revises: 4ed50664effb
Create Date: 2026-11-29 12:50:00
"""
import sqlalchemy as sa
from alembic import op

revision = '7b2e4d91c6a3'
down_revision = '4ed50664effb'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('credit_files', sa.Column('revision', sa.BigInteger(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('credit_files') as batch:
        batch.drop_column('revision')
