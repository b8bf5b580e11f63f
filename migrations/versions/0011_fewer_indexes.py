"""Fewer index entries per command: the metadata index holds only orders with metadata; every
index says which query it serves.

Each command updates its order's ``order_view`` row with a new status, so the update is never
HOT and every index of the table takes an entry for the new row version, whether or not its
columns changed. EXPLAIN (ANALYZE) of every query the service runs on a log of 20,000 orders
(bench/README.md, "Fewer index entries per command") found each index used by some plan, so
none is dropped; one is narrowed:

- ``order_view_metadata_idx`` (PostgreSQL, GIN, jsonb_path_ops) took an entry (the null item)
  for every row version, metadata or none. It is now partial, ``WHERE metadata IS NOT NULL``:
  ``metadata @> {...}`` is strict, so the planner proves the predicate and the ``metadata``
  filters read it as before, while an order without metadata costs its commands no GIN entry.

Not dropped, because a plan needs it (the EXPLAIN lines are in bench/README.md):
``order_view_status_idx`` (without it, a rare status is a sequential scan and a sort of
``order_view``); ``money_out_order_idx`` (the ``order_id`` filter would walk a kind's whole
range); ``events_pkey`` (the webhook replay's bounds).

What stays, and the query each index serves (the plan's index line is in bench/README.md):

events
- ``events_pkey`` (position): the webhook replay's bounds (``min(position)`` from ``since``,
  ``max(position)``; webhooks/deliveries.py).
- ``events_stream_id_version_key`` (stream_id, version): an order's stream (the command's
  read, its expected-version check in the write, ``GET /v1/events?order_id=``); the
  concurrency guard.
- ``events_event_id_key`` (event_id): reading events by id; an event id recorded once
  (import, ConcurrencyError).
- ``events_transaction_id_position_idx`` (PostgreSQL): the commit-order-safe log read (the
  dispatcher, the projections, the feed, rebuild), the log head and the last writer.
- ``events_type_idx`` (PostgreSQL): the feed's ``type`` filter, one range per type.

order_view
- ``order_view_pkey`` (order_id): the order read and the command's snapshot.
- ``order_view_buyer_idx``, ``order_view_supplier_idx`` (party, created_at, order_id): a
  party's list (both sides, a bitmap of the two) and the ``buyer_id`` / ``supplier_id``
  filters in cursor order.
- ``order_view_status_idx`` (status, created_at, order_id): the admin list's ``status``
  filter for a rare status, in cursor order (a common one reads ``order_view_created_idx``).
- ``order_view_created_idx`` (created_at, order_id): the admin list and its
  ``created_gte``/``created_lt`` filters, in cursor order from the cursor.
- ``order_view_next_timer_idx`` (partial): timers due.
- ``order_view_dispute_idx`` (partial): the disputes queue in its cursor order.
- ``order_view_client_reference_key`` (partial, unique): one order per (buyer,
  client_reference); the ``client_reference`` filter and the placement's lookup.
- ``order_view_metadata_idx`` (PostgreSQL, GIN, rows with metadata): the ``metadata``
  filters.

party_balances
- ``party_balances_pkey`` (id): the row's key (no query reads by it; an identity key on both
  backends, see bench/README.md for why it is not folded into the party index yet).
- ``party_balances_party_idx`` (party_id, currency): one party's balances, grouped.

money_out
- ``money_out_pkey`` (id): a payout or refund by id; the upsert's conflict target.
- ``money_out_kind_idx`` (kind, created_at, id): the payouts and refunds lists (and their
  ``status`` filter) in cursor order.
- ``money_out_party_idx`` (party_id, kind, created_at, id): a party's payouts or refunds.
- ``money_out_order_idx`` (order_id): the lists' ``order_id`` filter.

ledger_postings
- ``ledger_postings_pkey`` (id): the ledger export (``postings_after``).
- ``ledger_postings_account_idx`` (account, id): an account's ledger page and balances.

Revision ID: 0011_fewer_indexes
Revises: 0010_supplier_performance
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_fewer_indexes"
down_revision: str | None = "0010_supplier_performance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        _metadata_index(partial=True)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        _metadata_index(partial=False)


def _metadata_index(*, partial: bool) -> None:
    op.drop_index("order_view_metadata_idx", table_name="order_view")
    op.create_index(
        "order_view_metadata_idx",
        "order_view",
        ["metadata"],
        postgresql_using="gin",
        postgresql_ops={"metadata": "jsonb_path_ops"},
        postgresql_where=sa.text("metadata IS NOT NULL") if partial else None,
    )
