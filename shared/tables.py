"""Tables the runtime keeps in every service's database: the outbox and the inbox."""
from __future__ import annotations

from datetime import timezone
from decimal import Decimal

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, LargeBinary, MetaData, Numeric, String, Table, Text
from sqlalchemy.types import TypeDecorator

class ExactDecimal(TypeDecorator):
    """Money and other exact decimals: NUMERIC on PostgreSQL; text on SQLite, whose NUMERIC is a float."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int = 18, scale: int = 2):
        super().__init__()
        self.precision, self.scale = precision, scale

    def __repr__(self) -> str:  # so Alembic's autogenerate keeps precision and scale
        return f"ExactDecimal({self.precision}, {self.scale})"

    def load_dialect_impl(self, dialect):  # noqa: ANN001
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(48))
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value, dialect):  # noqa: ANN001
        if value is None:
            return None
        value = Decimal(value)
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):  # noqa: ANN001
        return None if value is None else Decimal(value)


class UtcDateTime(TypeDecorator):
    """Timestamps stored in UTC and read back timezone-aware, on SQLite too (which forgets the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):  # noqa: ANN001
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware value")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value, dialect):  # noqa: ANN001
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def outbox_table(metadata: MetaData) -> Table:
    # Written in the same transaction as the state change that produced it; the relay publishes and marks it.
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("topic", String(200), nullable=False),
        Column("key", String(200), nullable=False),
        Column("value", LargeBinary, nullable=False),
        Column("headers", Text, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("published_at", UtcDateTime(), nullable=True),
        # A row the broker refuses for good (too large, invalid topic, ...) is set aside with the reason
        # instead of published, so the rows behind it go on (shared/outbox.py). It is never pruned.
        Column("set_aside_at", UtcDateTime(), nullable=True),
        Column("set_aside_reason", Text, nullable=True),
        Index("ix_outbox_unpublished", "published_at", "id"),
        Index("ix_outbox_set_aside", "set_aside_at"),
    )


def inbox_table(metadata: MetaData) -> Table:
    # One row per event handled, written with its effects: a redelivered event finds its id here.
    return Table(
        "inbox",
        metadata,
        Column("event_id", String(36), primary_key=True),
        Column("topic", String(200), nullable=False),
        Column("outcome", String(16), nullable=False),
        Column("handled_at", UtcDateTime(), nullable=False),
        # Pruning takes the oldest rows first, in bounded chunks (shared/outbox.py, Pruner).
        Index("ix_inbox_handled_at", "handled_at"),
    )


def add_runtime_tables(metadata: MetaData) -> tuple[Table, Table]:
    return outbox_table(metadata), inbox_table(metadata)


_runtime = MetaData()
OUTBOX, INBOX = add_runtime_tables(_runtime)
