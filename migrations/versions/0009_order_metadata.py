"""Orders' metadata and client_reference (DESIGN 7.3) as columns of ``order_view``.

- ``client_reference`` with the unique index ``order_view_client_reference_key`` on
  (buyer_id, client_reference): the store's guarantee that a buyer's reference names one
  order, even when two placements race (the loser's whole write fails on it).
- ``metadata`` for ``GET /v1/orders?metadata=key:value``; on PostgreSQL a GIN index
  (jsonb_path_ops) serves the containment test ``metadata @> {key: value}``. SQLite, the
  embedded single-host default, reads each row's metadata with json_each.

Orders placed before have neither: every existing row gets an empty metadata.

Revision ID: 0009_order_metadata
Revises: 0008_feed_filters_payments
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "0009_order_metadata"
down_revision: str | None = "0008_feed_filters_payments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONDocument = sa.JSON().with_variant(pg.JSONB(), "postgresql")


def upgrade() -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    op.add_column("order_view", sa.Column("client_reference", sa.Text, nullable=True))
    op.add_column("order_view", sa.Column("metadata", JSONDocument, nullable=True))
    op.execute("UPDATE order_view SET metadata = '{}'")
    op.create_index(
        "order_view_client_reference_key",
        "order_view",
        ["buyer_id", "client_reference"],
        unique=True,
        postgresql_where=sa.text("client_reference IS NOT NULL"),
        sqlite_where=sa.text("client_reference IS NOT NULL"),
    )
    if postgresql:
        op.create_index(
            "order_view_metadata_idx",
            "order_view",
            ["metadata"],
            postgresql_using="gin",
            postgresql_ops={"metadata": "jsonb_path_ops"},
        )


def downgrade() -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    if postgresql:
        op.drop_index("order_view_metadata_idx", table_name="order_view")
    op.drop_index("order_view_client_reference_key", table_name="order_view")
    with op.batch_alter_table("order_view") as table:
        table.drop_column("metadata")
        table.drop_column("client_reference")
