"""The gateway's own database: the documents it accepted, who may submit them, and the one-stop read
model it builds from the agencies' decision topics (agency_views, enterprise_views, trace): one row per
agency and order (or enterprise), so a new agency needs no migration here."""
from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, MetaData, String, Table, Text

from shared.tables import ExactDecimal, UtcDateTime, add_runtime_tables

metadata = MetaData()
OUTBOX, INBOX = add_runtime_tables(metadata)

enterprises = Table(
    "enterprises", metadata,
    Column("code", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("roles", JSON, nullable=False),
    Column("country", String(2), nullable=False),
    Column("customs_credit", String(16), nullable=False),
    # The registration's key, as issued; who may call is decided by `api_keys` alone (migration 0003 copied
    # it there), so revoking it there is enough.
    Column("api_key_hash", String(64), nullable=False, unique=True),
    Column("registered_at", UtcDateTime(), nullable=False),
    # The customs registration code (spec 1.1 §3, §7.5), when the registration gave one: what CEB messages name
    # the enterprise by. A unique index, not a column constraint, so migration 0009 can add it on SQLite too;
    # NULLs are distinct in both databases, so any number of enterprises may have none.
    Column("customs_code", String(10)),
    Index("uq_enterprises_customs_code", "customs_code", unique=True),
)

# An enterprise's API keys (spec §3, §7.2): the registration's key and every key issued since, stored
# hashed; a revoked key keeps its row (revoked_at set) so the list shows the history.
api_keys = Table(
    "api_keys", metadata,
    Column("key_id", String(32), primary_key=True),
    Column("enterprise_code", String(32), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime()),
    Index("ix_api_keys_enterprise", "enterprise_code"),
)

# The platforms an ecommerce enterprise lets declare for it (spec §7.2); no row: any platform may.
enterprise_platforms = Table(
    "enterprise_platforms", metadata,
    Column("ecommerce_code", String(32), primary_key=True),
    Column("platform_code", String(32), primary_key=True),
)

orders = Table(
    "orders", metadata,
    Column("platform_code", String(32), primary_key=True),
    Column("order_no", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("document", JSON, nullable=False),  # the order as published: identity numbers masked and sealed
    Column("ecommerce_code", String(32), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("trade_mode", String(4), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("actual_paid", ExactDecimal(18, 2), nullable=False),
    Column("country", String(2)),
    Column("submitted_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("documents_complete_at", UtcDateTime()),
    # The firms the order names as having paid and shipped it (spec §7.2; null: not named).
    Column("payment_code", String(32)),
    Column("payment_transaction_id", String(64)),
    Column("logistics_code", String(32)),
    Index("ix_orders_submitted_at", "submitted_at"),
    Index("ix_orders_ecommerce", "ecommerce_code"),
)

# The one-stop read model (services/gateway/views.py): what each agency last said about an order, about
# which order version (`version`), and when it said it (`updated_at`: for customs, the decision time).
agency_views = Table(
    "agency_views", metadata,
    Column("platform_code", String(32), primary_key=True),
    Column("order_no", String(64), primary_key=True),
    Column("agency", String(32), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("view", JSON, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# What each agency last said about an enterprise (FX directory and year-to-date, credit grade...).
enterprise_views = Table(
    "enterprise_views", metadata,
    Column("enterprise_code", String(32), primary_key=True),
    Column("agency", String(32), primary_key=True),
    Column("view", JSON, nullable=False),
    # The agency's revision of its view (event enterprise_revision; 0 when the event carries none): a held
    # view with a greater one is kept, so events consumed out of the agency's order never roll it back.
    Column("revision", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", UtcDateTime(), nullable=False),
)

payments = Table(
    "payments", metadata,
    Column("payment_code", String(32), primary_key=True),
    Column("payment_no", String(64), primary_key=True),
    Column("platform_code", String(32), nullable=False),
    Column("order_no", String(64), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("document", JSON, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Index("ix_payments_order", "platform_code", "order_no"),
)

waybills = Table(
    "waybills", metadata,
    Column("logistics_code", String(32), primary_key=True),
    Column("waybill_no", String(64), primary_key=True),
    Column("platform_code", String(32), nullable=False),
    Column("order_no", String(64), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("document", JSON, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Index("ix_waybills_order", "platform_code", "order_no"),
)

# The payment and the waybill an order is bound to (spec §7.2): the first one accepted for the order; only
# its firm may correct it (same business key), every other one is refused. One row per order and kind.
order_bindings = Table(
    "order_bindings", metadata,
    Column("platform_code", String(32), primary_key=True),
    Column("order_no", String(64), primary_key=True),
    Column("kind", String(8), primary_key=True),  # payment | waybill
    Column("party_code", String(32), nullable=False),  # payment_code or logistics_code
    Column("document_no", String(64), nullable=False),  # payment_no or waybill_no
    Column("bound_at", UtcDateTime(), nullable=False),
)

tracking_events = Table(
    "tracking_events", metadata,
    Column("logistics_code", String(32), primary_key=True),
    Column("waybill_no", String(64), primary_key=True),
    Column("content_hash", String(64), primary_key=True),
    Column("event", String(16), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
)

trace = Table(
    "trace", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("correlation_id", String(100), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("source", String(16), nullable=False),
    Column("type", String(64), nullable=False),
    Column("summary", Text, nullable=False),
    Index("ix_trace_correlation", "correlation_id", "id"),
)

# --- webhooks (spec §7.3; services/gateway/webhooks/) ------------------------------------------------

# An enterprise's webhooks. The secret signs every delivery (HMAC-SHA256), so it is kept, encrypted under a
# key derived from the gateway's own (webhooks/rules.py secret_box); shown to the enterprise once, never again.
webhooks = Table(
    "webhooks", metadata,
    Column("id", String(32), primary_key=True),
    Column("enterprise_code", String(32), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("events", JSON, nullable=False),
    Column("secret", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_webhooks_enterprise", "enterprise_code"),
)

# One delivery of one event to one webhook: its exact body (the same bytes on every attempt, so the same
# `delivery_id`), where it stands (pending | delivered | failed), and when it may be tried next. `seq` orders
# the deliveries of one order to one webhook: a later one waits until the earlier one left or was given up.
# A sender claims a due row by setting `lease_until`/`lease_token` and records the outcome only with its
# token, so no database lock is held across the HTTP call and two gateways never send a row at once.
webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("delivery_id", String(36), nullable=False, unique=True),
    Column("webhook_id", String(32), nullable=False),
    Column("order_key", String(100), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("lease_until", UtcDateTime()),
    Column("lease_token", String(36)),
    Column("last_attempt_at", UtcDateTime()),
    Column("last_status_code", Integer),
    Column("last_error", String(500)),
    Column("finished_at", UtcDateTime()),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_order", "webhook_id", "order_key", "seq"),
    Index("ix_webhook_deliveries_webhook", "webhook_id", "seq"),
    Index("ix_webhook_deliveries_finished", "finished_at"),
)

# Every attempt of every delivery, for the deliveries log (`GET /v1/webhooks/{id}/deliveries`); pruned
# after SW_WEBHOOK_KEEP_DAYS with the finished deliveries.
webhook_attempts = Table(
    "webhook_attempts", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("delivery_id", String(36), nullable=False),
    Column("webhook_id", String(32), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("status_code", Integer),
    Column("error", String(500)),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_webhook_attempts_delivery", "delivery_id", "id"),
    Index("ix_webhook_attempts_at", "at"),
)


# --- customs' own messages (spec §7.5; services/gateway/ceb/) -------------------------------------------

# Every record taken from a CEB message, by its business key: (kind, party, number) is (order, platform,
# order_no), (payment, payment firm, payment_no), (waybill, logistics firm, waybill_no) or (list, platform,
# order_no). `state`: held (waiting for `waiting_for`, until `expires_at`), submitted (its §4 document was
# accepted), refused, cancelled, timed_out, or draft (appStatus 1: acknowledged, never submitted). `record` is
# the record as read (messages.record_to_json), encrypted at rest: it holds buyers' and payers' identity
# numbers. A list names its waybill (`waybill_code`, `waybill_no`) so an arriving waybill finds its list.
# `outcome`/`outcome_info` is the answer last given, so an identical replay is answered the same.
ceb_records = Table(
    "ceb_records", metadata,
    Column("kind", String(8), primary_key=True),
    Column("party_code", String(32), primary_key=True),
    Column("number", String(60), primary_key=True),
    Column("direction", String(6), nullable=False),
    Column("message_type", String(16), nullable=False),
    Column("sender", String(32), nullable=False),
    Column("state", String(10), nullable=False),
    Column("waiting_for", String(500)),
    Column("fingerprint", String(64), nullable=False),
    Column("record", Text, nullable=False),
    Column("keys", JSON, nullable=False),
    Column("signature", Text),
    Column("waybill_code", String(32)),
    Column("waybill_no", String(60)),
    Column("outcome", String(10), nullable=False),
    Column("outcome_info", String(1000), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime()),
    Index("ix_ceb_records_due", "state", "expires_at"),
    Index("ix_ceb_records_list_waybill", "waybill_code", "waybill_no"),
)

# The polling feed (`GET /ceb/v1/receipts?since=`): receipts for an enterprise, in `seq` order. Writers take
# the table's lock before inserting (PostgreSQL; SQLite has one writer), so `seq` is committed in order and a
# poller reading up to `next` never skips a receipt a slower transaction commits later.
ceb_receipts = Table(
    "ceb_receipts", metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("recipient", String(32), nullable=False),
    Column("guid", String(36), nullable=False),
    Column("message_type", String(16), nullable=False),
    Column("xml", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ux_ceb_receipts_recipient_guid", "recipient", "guid", unique=True),
    Index("ix_ceb_receipts_recipient_seq", "recipient", "seq"),
)
