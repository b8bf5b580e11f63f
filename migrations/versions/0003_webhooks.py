"""Webhooks: endpoints, deliveries (the outbox rows), attempts, and the dispatcher's checkpoint.

Revision ID: 0003_webhooks
Revises: 0002_accounts_and_idempotency
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_webhooks"
down_revision: str | None = "0002_accounts_and_idempotency"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key(name: str) -> sa.Column[int]:
    """A serial key (bigserial; SQLite's rowid): these rows are never deleted."""
    return sa.Column(name, sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)


def upgrade() -> None:
    postgresql_ = op.get_context().dialect.name == "postgresql"
    json = postgresql.JSONB() if postgresql_ else sa.JSON()
    uuid = postgresql.UUID() if postgresql_ else sa.Text
    timestamp = sa.DateTime(timezone=True)

    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Text, primary_key=True),
        # NULL: an admin's endpoint (may receive every event).
        sa.Column("owner_party_id", sa.Text, sa.ForeignKey("parties.id"), nullable=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("event_types", json, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("disabled_reason", sa.Text, nullable=True),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("previous_secret", sa.Text, nullable=True),
        sa.Column("previous_secret_expires_at", timestamp, nullable=True),
        # The first failure since the last success (wall clock): 5 days of it disables.
        sa.Column("failing_since", timestamp, nullable=True),
        sa.Column("created_by", sa.Text, nullable=True),
        sa.Column("created_at", timestamp, nullable=False),
        sa.Column("updated_at", timestamp, nullable=False),
        sa.Column("deleted_at", timestamp, nullable=True),
    )
    op.create_index("webhook_endpoints_owner_idx", "webhook_endpoints", ["owner_party_id", "id"])

    op.create_table(
        "webhook_deliveries",
        _key("id"),
        sa.Column("endpoint_id", sa.Text, sa.ForeignKey("webhook_endpoints.id"), nullable=False),
        sa.Column("event_id", uuid, nullable=False),
        sa.Column("event_position", sa.BigInteger, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("stream_id", sa.Text, nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt_at", timestamp, nullable=False),
        sa.Column("locked_until", timestamp, nullable=True),
        sa.Column("lease_token", sa.Text, nullable=True),
        sa.Column("last_status_code", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", timestamp, nullable=False),
        sa.Column("completed_at", timestamp, nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed')", name="webhook_deliveries_status_check"
        ),
        sa.UniqueConstraint(
            "endpoint_id", "event_id", name="webhook_deliveries_endpoint_event_key"
        ),
    )
    pending = sa.text("status = 'pending'")
    op.create_index(
        "webhook_deliveries_due_idx",
        "webhook_deliveries",
        ["next_attempt_at"],
        postgresql_where=pending,
        sqlite_where=pending,
    )
    op.create_index(
        "webhook_deliveries_order_idx",
        "webhook_deliveries",
        ["endpoint_id", "stream_id", "sequence"],
        postgresql_where=pending,
        sqlite_where=pending,
    )
    op.create_index("webhook_deliveries_endpoint_idx", "webhook_deliveries", ["endpoint_id", "id"])

    op.create_table(
        "webhook_attempts",
        _key("id"),
        sa.Column(
            "delivery_id", sa.BigInteger, sa.ForeignKey("webhook_deliveries.id"), nullable=False
        ),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("started_at", timestamp, nullable=False),
        sa.Column("latency_ms", sa.Integer, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("response_body", sa.Text, nullable=True),
        sa.Column("worker", sa.Text, nullable=True),
    )
    op.create_index("webhook_attempts_delivery_idx", "webhook_attempts", ["delivery_id", "id"])

    op.create_table(
        "webhook_dispatch_checkpoint",
        sa.Column("name", sa.Text, primary_key=True),
        # Where the dispatcher stands in the log: (xid8 as a number, position); 0 on SQLite.
        sa.Column("transaction_id", sa.BigInteger, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.execute(
        "INSERT INTO webhook_dispatch_checkpoint (name, transaction_id, position) "
        "VALUES ('webhooks', 0, 0)"
    )


def downgrade() -> None:
    op.drop_table("webhook_dispatch_checkpoint")
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
