"""customs' own messages (spec §7.5): the CEB records taken and held, and the receipts feed

Revision ID: 7d3f1a9c2e84
Revises: 9a3d5e7c2b14
Create Date: 2026-11-29 16:20:00

New tables only; nothing existing changes.
"""
import sqlalchemy as sa
from alembic import op

import shared.tables

revision = '7d3f1a9c2e84'
down_revision = '9a3d5e7c2b14'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ceb_records",
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("party_code", sa.String(32), primary_key=True),
        sa.Column("number", sa.String(60), primary_key=True),
        sa.Column("direction", sa.String(6), nullable=False),
        sa.Column("message_type", sa.String(16), nullable=False),
        sa.Column("sender", sa.String(32), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("waiting_for", sa.String(500)),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("keys", sa.JSON(), nullable=False),
        sa.Column("signature", sa.Text()),
        sa.Column("waybill_code", sa.String(32)),
        sa.Column("waybill_no", sa.String(60)),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("outcome_info", sa.String(1000), nullable=False),
        sa.Column("received_at", shared.tables.UtcDateTime(), nullable=False),
        sa.Column("updated_at", shared.tables.UtcDateTime(), nullable=False),
        sa.Column("expires_at", shared.tables.UtcDateTime()),
    )
    op.create_index("ix_ceb_records_due", "ceb_records", ["state", "expires_at"])
    op.create_index("ix_ceb_records_list_waybill", "ceb_records", ["waybill_code", "waybill_no"])
    op.create_table(
        "ceb_receipts",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("recipient", sa.String(32), nullable=False),
        sa.Column("guid", sa.String(36), nullable=False),
        sa.Column("message_type", sa.String(16), nullable=False),
        sa.Column("xml", sa.Text(), nullable=False),
        sa.Column("created_at", shared.tables.UtcDateTime(), nullable=False),
    )
    op.create_index("ux_ceb_receipts_recipient_guid", "ceb_receipts", ["recipient", "guid"], unique=True)
    op.create_index("ix_ceb_receipts_recipient_seq", "ceb_receipts", ["recipient", "seq"])


def downgrade() -> None:
    op.drop_table("ceb_receipts")
    op.drop_table("ceb_records")
