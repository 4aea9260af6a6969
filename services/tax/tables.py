"""The tax service's own database: the latest version of each order and of its customs decision (they
arrive on different topics in any order), the one assessment per order, and export revenue for §8."""
from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, MetaData, String, Table

from shared.tables import ExactDecimal, UtcDateTime, add_runtime_tables

metadata = MetaData()
OUTBOX, INBOX = add_runtime_tables(metadata)

# The latest version of each order; the document is kept without buyer or consignee (tax needs neither).
orders = Table(
    "orders", metadata,
    Column("platform_code", String(32), primary_key=True),
    Column("order_no", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("action", String(16), nullable=False),
    Column("ecommerce_code", String(32), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("tax_total", ExactDecimal(18, 2), nullable=False),
    Column("actual_paid", ExactDecimal(18, 2), nullable=False),
    Column("submitted_at", UtcDateTime(), nullable=False),
    Column("document", JSON, nullable=False),
)

# The latest customs decision about each order; it is acted on only when it is about the order's version.
decisions = Table(
    "decisions", metadata,
    Column("platform_code", String(32), primary_key=True),
    Column("order_no", String(64), primary_key=True),
    Column("order_version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("tax_mode", String(16)),
    Column("decided_at", UtcDateTime(), nullable=False),
)

# One assessment per order: a newer version replaces it, so an order is never taxed twice.
assessments = Table(
    "assessments", metadata,
    Column("platform_code", String(32), primary_key=True),
    Column("order_no", String(64), primary_key=True),
    Column("order_version", Integer, nullable=False),
    Column("ecommerce_code", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("total", ExactDecimal(18, 2)),
    Column("assessed_at", UtcDateTime(), nullable=False),
    Column("document", JSON, nullable=False),  # the TaxAssessment as published
    Index("ix_assessments_ecommerce", "ecommerce_code"),
)

# §8: released exports' revenue in CNY, one row per order so a repeated decision counts once.
export_revenue = Table(
    "export_revenue", metadata,
    Column("platform_code", String(32), primary_key=True),
    Column("order_no", String(64), primary_key=True),
    Column("ecommerce_code", String(32), nullable=False),
    Column("quarter", String(6), nullable=False),
    Column("revenue_cny", ExactDecimal(18, 2), nullable=False),
    Column("order_version", Integer, nullable=False),
    Column("decided_at", UtcDateTime(), nullable=False),
    Index("ix_export_revenue_quarter", "ecommerce_code", "quarter"),
)

