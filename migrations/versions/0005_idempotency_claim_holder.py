"""idempotency_keys: the holder of an in-flight claim, so only it may complete the claim.

Order commands keep their answer in the command's own write and take no claim; the other
POSTs still claim first, and a claim taken over after its lease must not be completed by the
request that lost it.

Revision ID: 0005_idempotency_claim_holder
Revises: 0004_dispute_queue_columns
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_idempotency_claim_holder"
down_revision: str | None = "0004_dispute_queue_columns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as table:
        table.add_column(sa.Column("holder", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as table:
        table.drop_column("holder")
