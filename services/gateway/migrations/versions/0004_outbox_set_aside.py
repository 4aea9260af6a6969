"""outbox rows set aside (a record the broker refuses for good) and indexes for pruning the outbox and
inbox in bounded chunks: the same step in every service (shared/runtime_migrations.py)

Revision ID: 61a2a9a2c8b8
Revises: 7d3e2a91c4b8
Create Date: 2026-11-29 09:40:00
"""
from shared.runtime_migrations import (
    outbox_set_aside_and_pruning_indexes_downgrade,
    outbox_set_aside_and_pruning_indexes_upgrade,
)

revision = '61a2a9a2c8b8'
down_revision = '7d3e2a91c4b8'
branch_labels = None
depends_on = None


def upgrade() -> None:
    outbox_set_aside_and_pruning_indexes_upgrade()


def downgrade() -> None:
    outbox_set_aside_and_pruning_indexes_downgrade()
