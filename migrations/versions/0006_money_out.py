"""Money out: payouts and refunds as rows (``money_out``), and the double-entry ledger
(``ledger_postings``), both inline projections written in the command's own write.

Revision ID: 0006_money_out
Revises: 0005_idempotency_claim_holder
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_money_out"
down_revision: str | None = "0005_idempotency_claim_holder"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key(name: str) -> sa.Column[int]:
    """An ever-growing surrogate key (as in 0001): the ledger's cursor order."""
    if op.get_context().dialect.name == "postgresql":
        return sa.Column(name, sa.BigInteger, sa.Identity(always=True), primary_key=True)
    return sa.Column(name, sa.Integer, primary_key=True)


def upgrade() -> None:
    timestamp = sa.DateTime(timezone=True)
    op.create_table(
        "money_out",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("order_id", sa.Text, nullable=False),
        sa.Column("party_id", sa.Text, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("provider_ref", sa.Text, nullable=True),
        sa.Column("failure_reason", sa.Text, nullable=True),
        sa.Column("payment_provider_ref", sa.Text, nullable=True),
        sa.Column("created_at", timestamp, nullable=False),
        sa.Column("updated_at", timestamp, nullable=False),
        sa.CheckConstraint("kind IN ('payout', 'refund')", name="money_out_kind_check"),
    )
    # GET /v1/payouts and /v1/refunds, newest first, with or without status / party filters.
    op.create_index("money_out_kind_idx", "money_out", ["kind", "created_at", "id"])
    op.create_index("money_out_party_idx", "money_out", ["party_id", "kind", "created_at", "id"])
    # ?order_id= and an order's payouts and refunds.
    op.create_index("money_out_order_idx", "money_out", ["order_id"])

    op.create_table(
        "ledger_postings",
        _key("id"),
        sa.Column("transfer_id", sa.Text, nullable=False),
        sa.Column("order_id", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("at", timestamp, nullable=False),
        sa.Column("account", sa.Text, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("phase", sa.Text, nullable=False),
        sa.Column("pending_id", sa.Text, nullable=True),
        sa.Column("legacy", sa.Boolean, nullable=False),
        sa.CheckConstraint(
            "phase IN ('pending', 'posted', 'voided')", name="ledger_postings_phase_check"
        ),
        sqlite_autoincrement=True,
    )
    # GET /v1/parties/{id}/ledger (a party's accounts, by id) and its balances.
    op.create_index("ledger_postings_account_idx", "ledger_postings", ["account", "id"])


def downgrade() -> None:
    op.drop_table("ledger_postings")
    op.drop_table("money_out")
