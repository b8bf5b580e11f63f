"""parties: metadata and deactivated_at; api_keys: scope, expires_at and last_used_at.

Indexes serve the new cursor lists (GET /v1/parties newest first, filtered by kind or by the
managing agent; GET /v1/api-keys newest first, all or one party's).

Revision ID: 0007_party_and_key_management
Revises: 0006_money_out
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_party_and_key_management"
# "0005" alone does not resolve (alembic needs the full id); the lead relinks at merge.
down_revision: str | None = "0006_money_out"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("parties") as table:
        table.add_column(
            sa.Column("metadata", JSON, nullable=False, server_default=sa.text("'{}'"))
        )
        table.add_column(sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("api_keys") as table:
        table.add_column(
            sa.Column("scope", sa.Text, nullable=False, server_default=sa.text("'full'"))
        )
        table.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
        table.create_check_constraint("api_keys_scope_check", "scope IN ('full', 'read')")
    op.create_index("parties_created_idx", "parties", ["created_at", "id"])
    op.create_index("parties_kind_idx", "parties", ["kind", "created_at", "id"])
    op.create_index("api_keys_created_idx", "api_keys", ["created_at", "id"])
    op.create_index("api_keys_party_idx", "api_keys", ["party_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("api_keys_party_idx", table_name="api_keys")
    op.drop_index("api_keys_created_idx", table_name="api_keys")
    op.drop_index("parties_kind_idx", table_name="parties")
    op.drop_index("parties_created_idx", table_name="parties")
    with op.batch_alter_table("api_keys") as table:
        table.drop_constraint("api_keys_scope_check", type_="check")
        table.drop_column("last_used_at")
        table.drop_column("expires_at")
        table.drop_column("scope")
    with op.batch_alter_table("parties") as table:
        table.drop_column("deactivated_at")
        table.drop_column("metadata")
