"""Parties, API keys (hashed) and idempotency records.

Revision ID: 0002_accounts_and_idempotency
Revises: 0001_event_store
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_accounts_and_idempotency"
down_revision: str | None = "0001_event_store"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    postgresql_ = op.get_context().dialect.name == "postgresql"
    json = postgresql.JSONB() if postgresql_ else sa.JSON()
    timestamp = sa.DateTime(timezone=True)

    op.create_table(
        "parties",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("trade_assurance", sa.Boolean, nullable=False),
        sa.Column("managed_by", sa.Text, sa.ForeignKey("parties.id"), nullable=True),
        sa.Column("created_at", timestamp, nullable=False),
        sa.CheckConstraint("kind IN ('buyer', 'supplier', 'agent')", name="parties_kind_check"),
    )
    op.create_index("parties_managed_by_idx", "parties", ["managed_by"])

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("key_hash", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("party_id", sa.Text, sa.ForeignKey("parties.id"), nullable=True),
        sa.Column("created_by", sa.Text, nullable=True),
        sa.Column("created_at", timestamp, nullable=False),
        sa.Column("revoked_at", timestamp, nullable=True),
        sa.UniqueConstraint("key_hash", name="api_keys_key_hash_key"),
        sa.CheckConstraint(
            "role IN ('admin', 'mediator', 'payments', 'agent', 'buyer', 'supplier')",
            name="api_keys_role_check",
        ),
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("body_hash", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("response_status", sa.Integer, nullable=True),
        sa.Column("response_body", sa.Text, nullable=True),
        sa.Column("response_headers", json, nullable=True),
        sa.Column("created_at", timestamp, nullable=False),
        sa.Column("expires_at", timestamp, nullable=False),
        sa.CheckConstraint("status IN ('in_flight', 'done')", name="idempotency_keys_status_check"),
        sa.CheckConstraint(
            "response_status BETWEEN 100 AND 599", name="idempotency_keys_response_status_check"
        ),
    )
    op.create_index("idempotency_keys_expires_idx", "idempotency_keys", ["expires_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("api_keys")
    op.drop_table("parties")
