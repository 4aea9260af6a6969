"""outbox rows set aside (a record the broker refuses for good) and indexes for pruning the outbox and
inbox in bounded chunks: the same step in every service (shared/runtime_migrations.py)

Revision ID: a85427d00e1f
Revises: 37890e40f341
Create Date: 2026-11-29 09:40:00
"""
from shared.runtime_migrations import (
    outbox_set_aside_and_pruning_indexes_downgrade,
    outbox_set_aside_and_pruning_indexes_upgrade,
)

revision = 'a85427d00e1f'
down_revision = '37890e40f341'
branch_labels = None
depends_on = None


def upgrade() -> None:
    outbox_set_aside_and_pruning_indexes_upgrade()


def downgrade() -> None:
    outbox_set_aside_and_pruning_indexes_downgrade()
