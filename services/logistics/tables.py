"""Logistics' own database: one shipment per waybill, the tracking reports behind it, and what it has
heard from the other topics (orders seen, customs releases) that may arrive before the waybill does."""
from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, MetaData, String, Table, Text

from shared.tables import UtcDateTime, add_runtime_tables

metadata = MetaData()
OUTBOX, INBOX = add_runtime_tables(metadata)

shipments = Table(
    "shipments", metadata,
    Column("logistics_code", String(32), primary_key=True),
    Column("waybill_no", String(64), primary_key=True),
    Column("platform_code", String(32), nullable=False),
    Column("order_no", String(64), nullable=False),
    # The state of services.logistics.rules.Shipment, column for column.
    Column("status", String(16), nullable=False),
    Column("furthest", String(16), nullable=False),
    Column("last_event_at", UtcDateTime()),
    Column("released", Boolean, nullable=False, default=False),
    Column("exception_at", UtcDateTime()),
    Column("location", String(200), nullable=False, default=""),
    Column("waybill_received_at", UtcDateTime(), nullable=False),  # the gateway's submitted_at
    Column("released_at", UtcDateTime()),  # customs' decided_at of the release
    Column("order_seen_at", UtcDateTime()),
    # Set while the watchdog still has to look at this waybill (order not seen, no anomaly raised yet),
    # so the sweep reads a small index instead of every shipment ever made.
    Column("awaiting_order_since", UtcDateTime()),
    Column("order_never_came_at", UtcDateTime()),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_shipments_order", "platform_code", "order_no"),
    Index("ix_shipments_awaiting_order", "awaiting_order_since"),
)

# Every report the firm sent, as received. `applied` is False for a report about a waybill logistics did
# not know yet; those are applied when the waybill arrives.
tracking_events = Table(
    "tracking_events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("logistics_code", String(32), nullable=False),
    Column("waybill_no", String(64), nullable=False),
    Column("event", String(16), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("location", String(200), nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("applied", Boolean, nullable=False),
    Index("ix_tracking_events_waybill", "logistics_code", "waybill_no", "id"),
)

# Orders the gateway published, whatever their fate: a waybill whose order is here is not orphaned.
orders_seen = Table(
    "orders_seen", metadata,
    Column("platform_code", String(32), primary_key=True),
    Column("order_no", String(64), primary_key=True),
    Column("seen_at", UtcDateTime(), nullable=False),
)

# Releases remembered per order: a release is final (a released order can be neither corrected nor
# cancelled), and a waybill that arrives after it must start out cleared.
customs_releases = Table(
    "customs_releases", metadata,
    Column("platform_code", String(32), primary_key=True),
    Column("order_no", String(64), primary_key=True),
    Column("order_version", Integer, nullable=False),
    Column("released_at", UtcDateTime(), nullable=False),
)
