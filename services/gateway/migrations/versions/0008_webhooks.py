"""webhooks (spec §7.3): an enterprise's webhooks, their deliveries and every attempt of them

Revision ID: 4c9e2b7d1a60
Revises: 5c0e8a3f91b7
Create Date: 2026-11-29 12:45:00

New tables only; nothing existing changes.
"""
import sqlalchemy as sa
from alembic import op

import shared.tables

revision = '4c9e2b7d1a60'
down_revision = '5c0e8a3f91b7'
branch_labels = None
depends_on = None


def _serial() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("enterprise_code", sa.String(32), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("created_at", shared.tables.UtcDateTime(), nullable=False),
    )
    op.create_index("ix_webhooks_enterprise", "webhooks", ["enterprise_code"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("seq", _serial(), primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(36), nullable=False, unique=True),
        sa.Column("webhook_id", sa.String(32), nullable=False),
        sa.Column("order_key", sa.String(100), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", shared.tables.UtcDateTime(), nullable=False),
        sa.Column("next_attempt_at", shared.tables.UtcDateTime(), nullable=False),
        sa.Column("lease_until", shared.tables.UtcDateTime()),
        sa.Column("lease_token", sa.String(36)),
        sa.Column("last_attempt_at", shared.tables.UtcDateTime()),
        sa.Column("last_status_code", sa.Integer()),
        sa.Column("last_error", sa.String(500)),
        sa.Column("finished_at", shared.tables.UtcDateTime()),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_webhook_deliveries_order", "webhook_deliveries", ["webhook_id", "order_key", "seq"])
    op.create_index("ix_webhook_deliveries_webhook", "webhook_deliveries", ["webhook_id", "seq"])
    op.create_index("ix_webhook_deliveries_finished", "webhook_deliveries", ["finished_at"])
    op.create_table(
        "webhook_attempts",
        sa.Column("id", _serial(), primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(36), nullable=False),
        sa.Column("webhook_id", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", shared.tables.UtcDateTime(), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("error", sa.String(500)),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
    )
    op.create_index("ix_webhook_attempts_delivery", "webhook_attempts", ["delivery_id", "id"])
    op.create_index("ix_webhook_attempts_at", "webhook_attempts", ["at"])


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
