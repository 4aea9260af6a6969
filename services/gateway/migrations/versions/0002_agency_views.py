"""agency views: one row per agency and order (and per agency and enterprise) instead of a column family
per agency on orders and enterprises, so a new agency needs no migration

Revision ID: 5b1f0c7a9d2e
Revises: 24727eec9012
Create Date: 2026-11-29 07:30:00
"""
from datetime import datetime, timezone
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

import shared.tables

revision = '5b1f0c7a9d2e'
down_revision = '24727eec9012'
branch_labels = None
depends_on = None

CHUNK = 1000
PENDING_CUSTOMS = {"status": "pending", "channel": None, "reasons": []}


def _money(value) -> str:  # noqa: ANN001
    return str(Decimal(value or 0).quantize(Decimal("0.01")))


def _copy(source: sa.sql.Select, target: sa.Table, rows_of) -> None:  # noqa: ANN001
    """Reads `source` in chunks and writes what `rows_of(row)` makes of each row to `target`."""
    bind = op.get_bind()
    result = bind.execute(source)
    while chunk := result.fetchmany(CHUNK):
        rows = [r for row in chunk for r in rows_of(row)]
        if rows:
            bind.execute(target.insert(), rows)


def _aware(value):  # noqa: ANN001, ANN202
    if value is None or isinstance(value, datetime) and value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def upgrade() -> None:
    agency_views = op.create_table(
        'agency_views',
        sa.Column('platform_code', sa.String(length=32), nullable=False),
        sa.Column('order_no', sa.String(length=64), nullable=False),
        sa.Column('agency', sa.String(length=32), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('view', sa.JSON(), nullable=False),
        sa.Column('updated_at', shared.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('platform_code', 'order_no', 'agency'),
    )
    enterprise_views = op.create_table(
        'enterprise_views',
        sa.Column('enterprise_code', sa.String(length=32), nullable=False),
        sa.Column('agency', sa.String(length=32), nullable=False),
        sa.Column('view', sa.JSON(), nullable=False),
        sa.Column('updated_at', shared.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('enterprise_code', 'agency'),
    )

    # The old columns as they were, to read them once.
    meta = sa.MetaData()
    orders = sa.Table(
        'orders', meta,
        sa.Column('platform_code', sa.String(32)), sa.Column('order_no', sa.String(64)), sa.Column('version', sa.Integer),
        sa.Column('updated_at', shared.tables.UtcDateTime()), sa.Column('customs_status', sa.String(16)),
        sa.Column('customs_channel', sa.String(8)), sa.Column('customs_reasons', sa.JSON),
        sa.Column('customs_version', sa.Integer), sa.Column('decided_at', shared.tables.UtcDateTime()),
        sa.Column('tax', sa.JSON), sa.Column('tax_version', sa.Integer), sa.Column('fx', sa.JSON),
        sa.Column('logistics', sa.JSON))
    enterprises = sa.Table(
        'enterprises', meta,
        sa.Column('code', sa.String(32)), sa.Column('registered_at', shared.tables.UtcDateTime()),
        sa.Column('fx_directory_status', sa.String(32)), sa.Column('fx_year', sa.Integer),
        sa.Column('fx_year_to_date_usd', shared.tables.ExactDecimal(18, 2)),
        sa.Column('credit_score', shared.tables.ExactDecimal(10, 2)), sa.Column('credit_grade', sa.String(1)),
        sa.Column('negative_listed', sa.Integer))

    def order_rows(o) -> list[dict]:  # noqa: ANN001
        key = {"platform_code": o.platform_code, "order_no": o.order_no}
        rows = []
        customs = {"status": o.customs_status, "channel": o.customs_channel, "reasons": o.customs_reasons or []}
        if customs != PENDING_CUSTOMS or o.customs_version:
            # Decisions were kept against the order's version; their time is the statistics' decision time.
            rows.append({**key, "agency": "customs", "version": o.version, "view": customs,
                         "updated_at": o.decided_at or o.updated_at})
        if o.tax:
            rows.append({**key, "agency": "tax", "version": o.tax_version, "view": o.tax,
                         "updated_at": o.updated_at})
        if o.fx:
            rows.append({**key, "agency": "fx", "version": o.version, "view": o.fx, "updated_at": o.updated_at})
        if o.logistics:
            at = o.logistics.get("at")
            rows.append({**key, "agency": "logistics", "version": o.version, "view": o.logistics,
                         "updated_at": _aware(datetime.fromisoformat(at)) if at else o.updated_at})
        return rows

    def enterprise_rows(e) -> list[dict]:  # noqa: ANN001
        rows = []
        if e.fx_directory_status is not None or e.fx_year is not None or e.fx_year_to_date_usd is not None:
            rows.append({"enterprise_code": e.code, "agency": "fx", "updated_at": e.registered_at, "view": {
                "directory_status": e.fx_directory_status or "exempt", "year": e.fx_year,
                "year_to_date_usd": _money(e.fx_year_to_date_usd)}})
        if e.credit_score is not None or e.credit_grade is not None or e.negative_listed:
            listed = bool(e.negative_listed)
            rows.append({"enterprise_code": e.code, "agency": "credit", "updated_at": e.registered_at, "view": {
                "score": str(e.credit_score) if e.credit_score is not None else None, "grade": e.credit_grade,
                "negative_listed": listed, "on_negative_list": listed}})
        return rows

    _copy(sa.select(orders), agency_views, order_rows)
    _copy(sa.select(enterprises), enterprise_views, enterprise_rows)

    with op.batch_alter_table('orders', schema=None) as batch_op:
        for column in ('customs_status', 'customs_channel', 'customs_reasons', 'customs_version', 'decided_at',
                       'tax', 'tax_version', 'fx', 'logistics'):
            batch_op.drop_column(column)
    with op.batch_alter_table('enterprises', schema=None) as batch_op:
        for column in ('fx_directory_status', 'fx_year', 'fx_year_to_date_usd', 'credit_score', 'credit_grade',
                       'negative_listed'):
            batch_op.drop_column(column)


def downgrade() -> None:
    with op.batch_alter_table('enterprises', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fx_directory_status', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('fx_year', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('fx_year_to_date_usd', shared.tables.ExactDecimal(18, 2), nullable=True))
        batch_op.add_column(sa.Column('credit_score', shared.tables.ExactDecimal(10, 2), nullable=True))
        batch_op.add_column(sa.Column('credit_grade', sa.String(length=1), nullable=True))
        batch_op.add_column(sa.Column('negative_listed', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customs_status', sa.String(length=16), nullable=False, server_default='pending'))
        batch_op.add_column(sa.Column('customs_channel', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('customs_reasons', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('customs_version', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('decided_at', shared.tables.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('tax', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('tax_version', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('fx', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('logistics', sa.JSON(), nullable=False, server_default='{}'))

    meta = sa.MetaData()
    views = sa.Table('agency_views', meta, autoload_with=op.get_bind())
    enterprise_views = sa.Table('enterprise_views', meta, autoload_with=op.get_bind())
    orders = sa.Table('orders', meta, autoload_with=op.get_bind())
    enterprises = sa.Table('enterprises', meta, autoload_with=op.get_bind())
    bind = op.get_bind()
    for v in bind.execute(sa.select(views)).all():
        same = sa.and_(orders.c.platform_code == v.platform_code, orders.c.order_no == v.order_no)
        if v.agency == "customs":
            values = {"customs_status": v.view["status"], "customs_channel": v.view.get("channel"),
                      "customs_reasons": v.view.get("reasons") or [], "customs_version": v.version,
                      "decided_at": v.updated_at if v.view["status"] != "pending" else None}
        elif v.agency == "tax":
            values = {"tax": v.view, "tax_version": v.version}
        elif v.agency in ("fx", "logistics"):
            values = {v.agency: v.view}
        else:
            continue  # an agency the old columns have no place for
        bind.execute(orders.update().where(same).values(**values))
    for v in bind.execute(sa.select(enterprise_views)).all():
        same = enterprises.c.code == v.enterprise_code
        if v.agency == "fx":
            values = {"fx_directory_status": v.view.get("directory_status"), "fx_year": v.view.get("year"),
                      "fx_year_to_date_usd": v.view.get("year_to_date_usd")}
        elif v.agency == "credit":
            values = {"credit_score": v.view.get("score"), "credit_grade": v.view.get("grade"),
                      "negative_listed": int(bool(v.view.get("negative_listed")))}
        else:
            continue
        bind.execute(enterprises.update().where(same).values(**values))
    op.drop_table('enterprise_views')
    op.drop_table('agency_views')
