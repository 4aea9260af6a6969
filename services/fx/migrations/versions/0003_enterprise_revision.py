"""enterprise_years.revision: every change of an enterprise-year counts one, and FX's events about the
enterprise carry it (enterprise_revision) so the gateway keeps the latest state whatever order it consumes
them in. A held year starts from its settlement count (registrations before this revision are not counted:
any start works, it only has to grow from here).

Revision ID: 3f1c9a7e52d0
Revises: a5244dc7464a
Create Date: 2026-11-29 12:50:00
"""
import sqlalchemy as sa
from alembic import op

revision = '3f1c9a7e52d0'
down_revision = 'a5244dc7464a'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('enterprise_years', sa.Column('revision', sa.Integer(), nullable=False, server_default='0'))
    op.execute("UPDATE enterprise_years SET revision = settlements")


def downgrade() -> None:
    with op.batch_alter_table('enterprise_years') as batch:
        batch.drop_column('revision')
