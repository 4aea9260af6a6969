"""The FX service's own database: its rate table, what it has heard about each order (latest version,
payment, customs decision; they arrive on different topics in any order), one settlement per order, and
each ecommerce enterprise's settled USD per calendar year (§11)."""
from __future__ import annotations

from sqlalchemy import JSON, Column, Date, Index, Integer, MetaData, String, Table

from shared.tables import ExactDecimal, UtcDateTime, add_runtime_tables

metadata = MetaData()
OUTBOX, INBOX = add_runtime_tables(metadata)

# CNY per unit of each currency, by day (the rate of a day is the latest row on or before it).
rates = Table(
    "rates", metadata,
    Column("date", Date, primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("cny_per_unit", ExactDecimal(18, 8), nullable=False),
    # When the row was last loaded: a running service notices a reload by it.
    Column("loaded_at", UtcDateTime(), nullable=False),
)

orders = Table(
    "orders", metadata,
    Column("platform_code", String(32), primary_key=True),
    Column("order_no", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("action", String(16), nullable=False),
    Column("ecommerce_code", String(32), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("actual_paid", ExactDecimal(18, 2), nullable=False),
    Column("submitted_at", UtcDateTime(), nullable=False),
)

# The latest payment for each order (imports are settled from it).
payments = Table(
    "payments", metadata,
    Column("platform_code", String(32), primary_key=True),
    Column("order_no", String(64), primary_key=True),
    Column("payment_code", String(32), nullable=False),
    Column("payment_no", String(64), nullable=False),
    Column("amount", ExactDecimal(18, 2), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("paid_at", UtcDateTime(), nullable=False),
    Column("submitted_at", UtcDateTime(), nullable=False),
)

decisions = Table(
    "decisions", metadata,
    Column("platform_code", String(32), primary_key=True),
    Column("order_no", String(64), primary_key=True),
    Column("order_version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("decided_at", UtcDateTime(), nullable=False),
)

# One row per order: "settled" is final; "not_applicable" gives way to a later version's settlement.
settlements = Table(
    "settlements", metadata,
    Column("platform_code", String(32), primary_key=True),
    Column("order_no", String(64), primary_key=True),
    Column("order_version", Integer, nullable=False),
    Column("ecommerce_code", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("amount", ExactDecimal(18, 2)),
    Column("currency", String(3)),
    Column("amount_cny", ExactDecimal(18, 2)),
    Column("rate", ExactDecimal(18, 8)),
    Column("rate_date", Date),
    Column("amount_usd", ExactDecimal(18, 2)),
    Column("year", Integer),
    Column("year_to_date_usd", ExactDecimal(18, 2)),
    Column("directory_status", String(32)),
    Column("settled_at", UtcDateTime(), nullable=False),
    Column("document", JSON, nullable=False),  # the FxSettled as published
    Index("ix_settlements_ecommerce", "ecommerce_code", "year"),
)

# §11: settled USD per ecommerce enterprise per calendar year, and the directory status last published.
enterprise_years = Table(
    "enterprise_years", metadata,
    Column("code", String(32), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("year_to_date_usd", ExactDecimal(18, 2), nullable=False),
    Column("settlements", Integer, nullable=False),
    Column("directory_status", String(32), nullable=False),
    # Counts every change of the row (a settlement, a registration): the events carry it so readers keep
    # the latest state whatever order they consume them in (rules.enterprise_revision).
    Column("revision", Integer, nullable=False, server_default="0"),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# Trade FX directory registrations (名录登记) the operator recorded; a registration does not lapse.
directory_registrations = Table(
    "directory_registrations", metadata,
    Column("code", String(32), primary_key=True),
    Column("registered_at", UtcDateTime(), nullable=False),
)

