"""Customs' own database: its copy of the registered enterprises, one file per parcel with the documents
it holds and what it decided, the buyers' annual totals with what each order took from them, and the
released 9610 export lines the monthly consolidated declarations are made of.

Buyers' identity numbers are never stored readable here: documents keep them sealed (as published by
the gateway), and the annual totals are keyed by a keyed digest of the number (`shared.sealing.pseudonym`)."""
from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Column, Index, Integer, MetaData, String, Table, Text

from shared.tables import ExactDecimal, UtcDateTime, add_runtime_tables

metadata = MetaData()
OUTBOX, INBOX = add_runtime_tables(metadata)

parties = Table(
    "parties", metadata,
    Column("code", String(32), primary_key=True),
    # Null until the registration arrives: a credit event may come first (it travels on another topic),
    # and an enterprise customs has only heard of from the credit service is not registered with it.
    Column("roles", JSON),
    Column("customs_credit", String(16)),
    Column("registered_at", UtcDateTime()),
    Column("grade", String(1)),
    Column("negative_listed", Boolean(create_constraint=False), nullable=False, default=False),
    # When the credit service made the last change applied (for officers).
    Column("credit_changed_at", UtcDateTime()),
    # Credit's revision of the enterprise (event enterprise_revision; 0 when absent): a change with a
    # smaller one is older than what is held and is not applied (ratings and listings travel on two topics).
    Column("credit_revision", BigInteger, nullable=False, server_default="0"),
)

order_files = Table(
    "order_files", metadata,
    Column("platform_code", String(32), primary_key=True),
    Column("order_no", String(64), primary_key=True),
    # The order as last published (0: not arrived yet); identity numbers stay masked and sealed in it.
    Column("order_version", Integer, nullable=False, default=0),
    Column("order_action", String(16)),
    Column("order_document", JSON),
    Column("order_submitted_at", UtcDateTime()),
    Column("ecommerce_code", String(32)),
    Column("direction", String(8)),
    Column("trade_mode", String(4)),
    Column("payment_code", String(32)),
    Column("payment_no", String(64)),
    Column("payment_document", JSON),
    Column("logistics_code", String(32)),
    Column("waybill_no", String(64)),
    Column("waybill_document", JSON),
    Column("first_document_at", UtcDateTime(), nullable=False),
    Column("documents_complete_at", UtcDateTime()),
    Column("status", String(16), nullable=False, default="pending"),
    Column("channel", String(8)),
    Column("reasons", JSON, nullable=False, default=list),
    Column("tax_mode", String(16)),
    Column("dutiable_value_cny", ExactDecimal(18, 2)),
    # The order version the current status is about; the file is undecided while it differs from order_version.
    Column("decided_version", Integer),
    Column("decided_at", UtcDateTime()),
    # Set while the documents are complete but name an enterprise whose registration has not arrived.
    Column("awaiting_party_since", UtcDateTime()),
    Column("timed_out_at", UtcDateTime()),
    # Why a complete file could not be decided (no FX rate for its currency); retried after a restart.
    Column("blocked_reason", Text),
    Column("blocked_at", UtcDateTime()),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_order_files_status_first", "status", "first_document_at"),
    Index("ix_order_files_awaiting", "awaiting_party_since"),
    Index("ix_order_files_blocked", "blocked_at"),
)

# Which files wait for which enterprise's registration: a registration retries exactly those.
party_waits = Table(
    "party_waits", metadata,
    Column("code", String(32), primary_key=True),
    Column("platform_code", String(32), primary_key=True),
    Column("order_no", String(64), primary_key=True),
)

buyer_year_totals = Table(
    "buyer_year_totals", metadata,
    Column("buyer", String(64), primary_key=True),  # shared.sealing.pseudonym of the identity number
    Column("year", Integer, primary_key=True),
    Column("total_cny", ExactDecimal(18, 2), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# What each order holds of its buyer's year: exactly that is given back, and deciding an order again
# replaces its holding instead of adding a second one.
quota_holdings = Table(
    "quota_holdings", metadata,
    Column("platform_code", String(32), primary_key=True),
    Column("order_no", String(64), primary_key=True),
    Column("buyer", String(64), nullable=False),
    Column("year", Integer, nullable=False),
    Column("amount_cny", ExactDecimal(18, 2), nullable=False),
    Column("order_version", Integer, nullable=False),
    Column("reserved_at", UtcDateTime(), nullable=False),
)

released_export_lines = Table(
    "released_export_lines", metadata,
    Column("platform_code", String(32), primary_key=True),
    Column("order_no", String(64), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("release_month", String(7), nullable=False),  # YYYY-MM of the release, China time
    Column("ecommerce_code", String(32), nullable=False),
    Column("hs_code", String(10), nullable=False),
    Column("destination_country", String(2), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("quantity", ExactDecimal(18, 5), nullable=False),  # spec §2: five decimals
    # quantity x unit price, unrounded: the consolidation rounds once, at the end.
    Column("value", ExactDecimal(24, 7), nullable=False),
    # The line's legal quantities (spec 1.1 §7.5: first and second legal unit, 法定数量), null when the
    # order did not give them; the consolidation sums them per unit (rules.legal_quantity_totals).
    Column("legal_quantity_1", ExactDecimal(18, 5)),
    Column("legal_unit_1", String(16)),
    Column("legal_quantity_2", ExactDecimal(18, 5)),
    Column("legal_unit_2", String(16)),
    Column("released_at", UtcDateTime(), nullable=False),
    Index("ix_released_export_lines_month", "release_month"),
)

# One row per month whose consolidated declarations were published: a second request republishes nothing.
declaration_runs = Table(
    "declaration_runs", metadata,
    Column("month", String(7), primary_key=True),
    Column("published_at", UtcDateTime(), nullable=False),
    Column("declarations", JSON, nullable=False),
)
