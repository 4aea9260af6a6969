"""Quarantine's own database: one case per order, the latest version decided."""
from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table

from shared.tables import UtcDateTime, add_runtime_tables

metadata = MetaData()
OUTBOX, INBOX = add_runtime_tables(metadata)

cases = Table(
    "cases", metadata,
    Column("platform_code", String(32), primary_key=True),
    Column("order_no", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("chapters", String(64), nullable=False),  # comma-separated two-digit HS chapters
    Column("decided_at", UtcDateTime(), nullable=False),
)
