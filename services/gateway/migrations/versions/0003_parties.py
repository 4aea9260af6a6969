"""who may file for whom (spec §7.2): API keys in their own table (several per enterprise, revocable),
the platforms an ecommerce enterprise lets declare for it, the firms an order names, and the payment and
waybill each order is bound to

Revision ID: 7d3e2a91c4b8
Revises: 5b1f0c7a9d2e
Create Date: 2026-11-29 09:45:00

Existing data: every enterprise's registration key becomes its first key (`key_id` "k" + the first 15
characters of its hash, so the id says nothing about the key itself); every order with payments
(waybills) is bound to its first one by arrival (then business key), as customs already kept it.
"""
import sqlalchemy as sa
from alembic import op

import shared.tables

revision = '7d3e2a91c4b8'
down_revision = '5b1f0c7a9d2e'
branch_labels = None
depends_on = None

CHUNK = 1000


def _bind_first(source: str, party: str, number: str, kind: str, bindings: sa.Table) -> None:
    bind = op.get_bind()
    table = sa.table(source, sa.column("platform_code"), sa.column("order_no"), sa.column(party),
                     sa.column(number), sa.column("received_at", shared.tables.UtcDateTime()))
    result = bind.execute(sa.select(table.c.platform_code, table.c.order_no, table.c[party], table.c[number],
                                    table.c.received_at).order_by(
        table.c.platform_code, table.c.order_no, table.c.received_at, table.c[party], table.c[number]))
    last = None
    while chunk := result.fetchmany(CHUNK):
        rows = []
        for r in chunk:
            if (r[0], r[1]) == last:
                continue  # a later document for an order already bound: it stays stored, unbound
            last = (r[0], r[1])
            rows.append({"platform_code": r[0], "order_no": r[1], "kind": kind, "party_code": r[2],
                         "document_no": r[3], "bound_at": r[4]})
        if rows:
            bind.execute(bindings.insert(), rows)


def upgrade() -> None:
    api_keys = op.create_table(
        'api_keys',
        sa.Column('key_id', sa.String(length=32), nullable=False),
        sa.Column('enterprise_code', sa.String(length=32), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', shared.tables.UtcDateTime(), nullable=False),
        sa.Column('revoked_at', shared.tables.UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('key_id'),
        sa.UniqueConstraint('key_hash'),
    )
    op.create_index('ix_api_keys_enterprise', 'api_keys', ['enterprise_code'])
    op.create_table(
        'enterprise_platforms',
        sa.Column('ecommerce_code', sa.String(length=32), nullable=False),
        sa.Column('platform_code', sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint('ecommerce_code', 'platform_code'),
    )
    bindings = op.create_table(
        'order_bindings',
        sa.Column('platform_code', sa.String(length=32), nullable=False),
        sa.Column('order_no', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('party_code', sa.String(length=32), nullable=False),
        sa.Column('document_no', sa.String(length=64), nullable=False),
        sa.Column('bound_at', shared.tables.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('platform_code', 'order_no', 'kind'),
    )
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('payment_code', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('payment_transaction_id', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('logistics_code', sa.String(length=32), nullable=True))

    bind = op.get_bind()
    enterprises = sa.table('enterprises', sa.column('code'), sa.column('api_key_hash'),
                           sa.column('registered_at', shared.tables.UtcDateTime()))
    result = bind.execute(sa.select(enterprises.c.code, enterprises.c.api_key_hash, enterprises.c.registered_at))
    while chunk := result.fetchmany(CHUNK):
        bind.execute(api_keys.insert(), [{"key_id": "k" + r.api_key_hash[:15], "enterprise_code": r.code,
                                          "key_hash": r.api_key_hash, "created_at": r.registered_at} for r in chunk])
    _bind_first('payments', 'payment_code', 'payment_no', 'payment', bindings)
    _bind_first('waybills', 'logistics_code', 'waybill_no', 'waybill', bindings)


def downgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.drop_column('logistics_code')
        batch.drop_column('payment_transaction_id')
        batch.drop_column('payment_code')
    op.drop_table('order_bindings')
    op.drop_table('enterprise_platforms')
    op.drop_index('ix_api_keys_enterprise', table_name='api_keys')
    op.drop_table('api_keys')
