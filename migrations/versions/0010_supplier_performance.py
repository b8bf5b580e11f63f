"""Supplier performance: an asynchronous projection of the log (DESIGN 7.2, 7.7).

- ``supplier_performance``: each supplier's counters per currency (orders accepted, shipped on
  time and late, completed, disputed, claims, money paid in and refunded for disputes).
- ``supplier_performance_orders``: what the projection keeps of each order (the facts its
  counters come from, and the order's state document until the order is terminal), so that
  applying the log event by event equals a rebuild.
- The projection reads the log like the webhook dispatcher, from its own checkpoint
  ``supplier_performance`` in ``webhook_dispatch_checkpoint``.

Revision ID: 0010_supplier_performance
Revises: 0008_feed_filters_payments
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010_supplier_performance"
down_revision: str | None = "0009_order_metadata"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    timestamp = sa.DateTime(timezone=True)
    document = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    counter = sa.BigInteger
    op.create_table(
        "supplier_performance",
        sa.Column("supplier_id", sa.Text, primary_key=True),
        sa.Column("currency", sa.Text, primary_key=True),
        *(
            sa.Column(name, counter, nullable=False)
            for name in (
                "orders_accepted",
                "shipped_on_time",
                "shipped_late",
                "completed",
                "disputed",
                "claims",
                "paid",
                "refunded",
            )
        ),
    )
    op.create_table(
        "supplier_performance_orders",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("supplier_id", sa.Text, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("ship_deadline", timestamp, nullable=False),
        sa.Column("accepted_at", timestamp, nullable=True),
        sa.Column("shipped_at", timestamp, nullable=True),
        sa.Column("shipped_on_time", sa.Boolean, nullable=True),
        sa.Column("completed", sa.Boolean, nullable=False),
        sa.Column("disputed", sa.Boolean, nullable=False),
        sa.Column("claimed", sa.Boolean, nullable=False),
        sa.Column("paid", counter, nullable=False),
        sa.Column("refunded", counter, nullable=False),
        sa.Column("state", document, nullable=True),
    )
    op.create_index(
        "supplier_performance_orders_supplier_idx", "supplier_performance_orders", ["supplier_id"]
    )
    op.execute(
        "INSERT INTO webhook_dispatch_checkpoint (name, transaction_id, position) "
        "VALUES ('supplier_performance', 0, 0)"
    )


def downgrade() -> None:
    op.execute("DELETE FROM webhook_dispatch_checkpoint WHERE name = 'supplier_performance'")
    op.drop_index(
        "supplier_performance_orders_supplier_idx", table_name="supplier_performance_orders"
    )
    op.drop_table("supplier_performance_orders")
    op.drop_table("supplier_performance")
