"""Credit's own database: one credit file per enterprise and the ledger of every score event counted."""
from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, MetaData, String, Table, Text

from shared.tables import ExactDecimal, UtcDateTime, add_runtime_tables

metadata = MetaData()
OUTBOX, INBOX = add_runtime_tables(metadata)

credit_files = Table(
    "credit_files", metadata,
    Column("code", String(32), primary_key=True),
    Column("customs_credit", String(16), nullable=False),
    Column("score", ExactDecimal(12, 2), nullable=False),
    Column("negative_listed", Boolean, nullable=False, default=False),
    Column("listed_at", UtcDateTime()),
    # Null while the file is provisional: opened as `general` by an event that came before the registration.
    Column("registered_at", UtcDateTime()),
    Column("opened_at", UtcDateTime(), nullable=False),
    # Counts every notice credit published about the enterprise (rules.number_notices).
    Column("revision", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_credit_files_listed", "negative_listed"),
)

# One row per event that changed (or tried to change) a score. `event_key` makes counting idempotent: a
# customs decision is keyed by (order, order version, status), a waybill exception by (waybill, time).
# The ledger is also what a late registration recounts the score from, in `id` order.
score_events = Table(
    "score_events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_key", String(300), nullable=False, unique=True),
    Column("enterprise_code", String(32), nullable=False),
    Column("delta", ExactDecimal(12, 2), nullable=False),
    Column("reason", Text, nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("counted_at", UtcDateTime(), nullable=False),
    Index("ix_score_events_enterprise", "enterprise_code", "id"),
)
