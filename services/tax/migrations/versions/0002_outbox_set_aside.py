"""outbox rows set aside (a record the broker refuses for good) and indexes for pruning the outbox and
inbox in bounded chunks: the same step in every service (shared/runtime_migrations.py)

Revision ID: 6e961e9f5217
Revises: 4cf0523d3c4a
Create Date: 2026-11-29 09:40:00
"""
from shared.runtime_migrations import (
    outbox_set_aside_and_pruning_indexes_downgrade,
    outbox_set_aside_and_pruning_indexes_upgrade,
)

revision = '6e961e9f5217'
down_revision = '4cf0523d3c4a'
branch_labels = None
depends_on = None


def upgrade() -> None:
    outbox_set_aside_and_pruning_indexes_upgrade()


def downgrade() -> None:
    outbox_set_aside_and_pruning_indexes_downgrade()
