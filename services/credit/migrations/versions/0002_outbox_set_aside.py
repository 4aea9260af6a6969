"""outbox rows set aside (a record the broker refuses for good) and indexes for pruning the outbox and
inbox in bounded chunks: the same step in every service (shared/runtime_migrations.py)

Revision ID: 4ed50664effb
Revises: 9fb8bbd15fae
Create Date: 2026-11-29 09:40:00
"""
from shared.runtime_migrations import (
    outbox_set_aside_and_pruning_indexes_downgrade,
    outbox_set_aside_and_pruning_indexes_upgrade,
)

revision = '4ed50664effb'
down_revision = '9fb8bbd15fae'
branch_labels = None
depends_on = None


def upgrade() -> None:
    outbox_set_aside_and_pruning_indexes_upgrade()


def downgrade() -> None:
    outbox_set_aside_and_pruning_indexes_downgrade()
