"""The event store and the inline projections: events, order_view, party_balances, service_clock.

Revision ID: 0001_event_store
Revises:
Create Date: 2025-11-26
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_event_store"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


class _Xid8(sa.types.UserDefinedType[str]):
    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"


def _is_postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def _key(name: str) -> sa.Column[int]:
    """An ever-growing surrogate key: an identity on PostgreSQL, AUTOINCREMENT on SQLite
    (so a rolled-back or deleted row's number is never handed out again)."""
    if _is_postgresql():
        return sa.Column(name, sa.BigInteger, sa.Identity(always=True), primary_key=True)
    return sa.Column(name, sa.Integer, primary_key=True)


def upgrade() -> None:
    postgresql_ = _is_postgresql()
    json = postgresql.JSONB() if postgresql_ else sa.JSON()
    timestamp = sa.DateTime(timezone=True)

    op.create_table(
        "events",
        _key("position"),
        sa.Column("stream_id", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("event_id", postgresql.UUID() if postgresql_ else sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("data", json, nullable=False),
        sa.Column("metadata", json, nullable=False),
        sa.Column("recorded_at", timestamp, nullable=False),
        # The writer's transaction, for commit-order-safe log reading (see the store's
        # queries.py). SQLite needs none: its writers are serialised.
        *(
            [
                sa.Column(
                    "transaction_id",
                    _Xid8(),
                    nullable=False,
                    server_default=sa.text("pg_current_xact_id()"),
                )
            ]
            if postgresql_
            else []
        ),
        sa.CheckConstraint("version >= 1", name="events_version_check"),
        sa.UniqueConstraint("stream_id", "version", name="events_stream_id_version_key"),
        sa.UniqueConstraint("event_id", name="events_event_id_key"),
        sqlite_autoincrement=True,
    )
    if postgresql_:
        op.create_index(
            "events_transaction_id_position_idx", "events", ["transaction_id", "position"]
        )
        op.execute(
            """
            CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'events is append-only';
            END
            $$
            """
        )
        op.execute(
            "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
            "FOR EACH ROW EXECUTE FUNCTION events_refuse_change()"
        )
        op.execute(
            "CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events "
            "FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change()"
        )
    else:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER events_no_{operation.lower()} BEFORE {operation} ON events "
                "BEGIN SELECT RAISE(ABORT, 'events is append-only'); END"
            )

    op.create_table(
        "order_view",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("buyer_id", sa.Text, nullable=False),
        sa.Column("supplier_id", sa.Text, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("next_timer_at", timestamp, nullable=True),
        sa.Column("state", json, nullable=False),
        sa.Column("created_at", timestamp, nullable=False),
        sa.Column("updated_at", timestamp, nullable=False),
    )
    for name, columns in (
        ("order_view_buyer_idx", ["buyer_id", "created_at", "order_id"]),
        ("order_view_supplier_idx", ["supplier_id", "created_at", "order_id"]),
        ("order_view_status_idx", ["status", "created_at", "order_id"]),
        ("order_view_created_idx", ["created_at", "order_id"]),
    ):
        op.create_index(name, "order_view", columns)
    op.create_index(
        "order_view_next_timer_idx",
        "order_view",
        ["next_timer_at"],
        postgresql_where=sa.text("next_timer_at IS NOT NULL"),
        sqlite_where=sa.text("next_timer_at IS NOT NULL"),
    )

    op.create_table(
        "party_balances",
        _key("id"),
        sa.Column("party_id", sa.Text, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("order_id", sa.Text, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("held", sa.BigInteger, nullable=False),
        sa.Column("released", sa.BigInteger, nullable=False),
        sa.Column("refunded", sa.BigInteger, nullable=False),
        sa.Column("fees", sa.BigInteger, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("party_balances_party_idx", "party_balances", ["party_id", "currency"])

    op.create_table(
        "service_clock",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("offset_seconds", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.CheckConstraint("id = 1", name="service_clock_single_row"),
    )
    op.execute("INSERT INTO service_clock (id, offset_seconds) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("service_clock")
    op.drop_table("party_balances")
    op.drop_table("order_view")
    op.drop_table("events")
    if _is_postgresql():
        op.execute("DROP FUNCTION events_refuse_change()")
