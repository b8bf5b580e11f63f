"""order_view: the open dispute's status and opening time, so the mediation queue pages in SQL.

Revision ID: 0004_dispute_queue_columns
Revises: 0003_webhooks
Create Date: 2026-11-27
"""

import json
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0004_dispute_queue_columns"
down_revision: str | None = "0003_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = ("open", "escalated")


def upgrade() -> None:
    with op.batch_alter_table("order_view") as table:
        table.add_column(sa.Column("dispute_status", sa.Text, nullable=True))
        table.add_column(sa.Column("dispute_opened_at", sa.DateTime(timezone=True), nullable=True))
    # Serves GET /v1/disputes: the queue, oldest dispute first, keyset-paged.
    op.create_index(
        "order_view_dispute_idx",
        "order_view",
        ["dispute_opened_at", "order_id"],
        postgresql_where=sa.text("dispute_status IS NOT NULL"),
        sqlite_where=sa.text("dispute_status IS NOT NULL"),
    )
    _backfill()


def _backfill() -> None:
    """Rows of orders in dispute before this revision get their columns from the snapshot."""
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    rows = bind.execute(sa.text("SELECT order_id, state FROM order_view WHERE status = 'disputed'"))
    for order_id, state in rows.all():
        document = json.loads(state) if isinstance(state, str) else state
        dispute = document.get("dispute") or {}
        if dispute.get("status") not in ACTIVE:
            continue
        opened_at = datetime.fromisoformat(dispute["opened_at"].replace("Z", "+00:00"))
        update = sa.text(
            "UPDATE order_view SET dispute_status = :status, dispute_opened_at = :opened_at "
            "WHERE order_id = :order_id"
        ).bindparams(sa.bindparam("opened_at", type_=sa.DateTime(timezone=True)))
        bind.execute(
            update,
            {
                "status": dispute["status"],
                # SQLite keeps naive UTC, as the store's UTCDateTime column type writes it.
                "opened_at": opened_at.replace(tzinfo=None) if sqlite else opened_at,
                "order_id": order_id,
            },
        )


def downgrade() -> None:
    op.drop_index("order_view_dispute_idx", table_name="order_view")
    with op.batch_alter_table("order_view") as table:
        table.drop_column("dispute_opened_at")
        table.drop_column("dispute_status")
