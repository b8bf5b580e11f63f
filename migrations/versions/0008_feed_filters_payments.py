"""The feed's type filter gets an index; a payments key may own webhook endpoints.

- ``events_type_idx`` (PostgreSQL) serves ``GET /v1/events?type=...``: the store reads each
  wanted type's events after the consumer's checkpoint, in commit order, as one ordered range
  of this index per type (``store/postgres/sql.py``, ``read_log_of_types``). Without it a
  filter on a rare type walks the whole log. SQLite, the embedded single-host default, keeps
  its log small and filters while reading by position.
- ``webhook_endpoints.owner_role``: ``payments`` for an endpoint a payments key registered (it
  receives every order's money events); NULL for a party's endpoint or an admin's.

Revision ID: 0008_feed_filters_payments
Revises: 0007_party_and_key_management
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_feed_filters_payments"
down_revision: str | None = "0007_party_and_key_management"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    op.add_column("webhook_endpoints", sa.Column("owner_role", sa.Text, nullable=True))
    if postgresql:
        op.create_check_constraint(
            "webhook_endpoints_owner_role_check",
            "webhook_endpoints",
            "owner_role IS NULL OR (owner_role = 'payments' AND owner_party_id IS NULL)",
        )
        op.create_index("events_type_idx", "events", ["type", "transaction_id", "position"])


def downgrade() -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    if postgresql:
        op.drop_index("events_type_idx", table_name="events")
        op.drop_constraint("webhook_endpoints_owner_role_check", "webhook_endpoints")
    with op.batch_alter_table("webhook_endpoints") as table:
        table.drop_column("owner_role")
