"""The tables as SQLAlchemy Core objects, for building queries.

They mirror ``migrations/versions``, which alone creates the schema (never ``create_all``);
a test compares the two. Constraint names are spelled out because the store translates
driver errors by them.
"""

import sqlalchemy as sa

from escrow_core.store.types import JSONDocument, UTCDateTime, UUIDText, Xid8

metadata = sa.MetaData()

# Integer keys are BIGINT on PostgreSQL; SQLite's rowid alias must be spelled INTEGER.
BigKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

STREAM_VERSION_KEY = "events_stream_id_version_key"
EVENT_ID_KEY = "events_event_id_key"
CLIENT_REFERENCE_KEY = "order_view_client_reference_key"

events = sa.Table(
    "events",
    metadata,
    sa.Column("position", BigKey, sa.Identity(always=True), primary_key=True),
    sa.Column("stream_id", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("event_id", UUIDText, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False, server_default=sa.text("1")),
    sa.Column("data", JSONDocument, nullable=False),
    sa.Column("metadata", JSONDocument, nullable=False),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    # PostgreSQL only: the writer's transaction, for commit-order-safe reading (queries.py).
    sa.Column(
        "transaction_id", Xid8, nullable=False, server_default=sa.text("pg_current_xact_id()")
    ),
    sa.CheckConstraint("version >= 1", name="events_version_check"),
    sa.UniqueConstraint("stream_id", "version", name=STREAM_VERSION_KEY),
    sa.UniqueConstraint("event_id", name=EVENT_ID_KEY),
    sa.Index("events_transaction_id_position_idx", "transaction_id", "position"),  # PostgreSQL
    # PostgreSQL (migration 0008): the feed's type filter, one ordered range per type.
    sa.Index("events_type_idx", "type", "transaction_id", "position"),
    sqlite_autoincrement=True,
)

order_view = sa.Table(
    "order_view",
    metadata,
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("buyer_id", sa.Text, nullable=False),
    sa.Column("supplier_id", sa.Text, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("total", sa.BigInteger, nullable=False),
    sa.Column("next_timer_at", UTCDateTime, nullable=True),
    sa.Column("dispute_status", sa.Text, nullable=True),
    sa.Column("dispute_opened_at", UTCDateTime, nullable=True),
    # The buyer's bookkeeping (migration 0009), for the list's filters.
    sa.Column("client_reference", sa.Text, nullable=True),
    sa.Column("metadata", JSONDocument, nullable=True),
    sa.Column("state", JSONDocument, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Each index and the query it serves: migration 0011.
    sa.Index("order_view_buyer_idx", "buyer_id", "created_at", "order_id"),
    sa.Index("order_view_supplier_idx", "supplier_id", "created_at", "order_id"),
    sa.Index("order_view_status_idx", "status", "created_at", "order_id"),
    sa.Index("order_view_created_idx", "created_at", "order_id"),
    sa.Index(
        "order_view_next_timer_idx",
        "next_timer_at",
        postgresql_where=sa.text("next_timer_at IS NOT NULL"),
        sqlite_where=sa.text("next_timer_at IS NOT NULL"),
    ),
    sa.Index(
        "order_view_dispute_idx",
        "dispute_opened_at",
        "order_id",
        postgresql_where=sa.text("dispute_status IS NOT NULL"),
        sqlite_where=sa.text("dispute_status IS NOT NULL"),
    ),
    # One order per (buyer, client_reference): two placements racing for one reference cannot
    # both commit, whichever backend (the loser's whole write fails on it).
    sa.Index(
        CLIENT_REFERENCE_KEY,
        "buyer_id",
        "client_reference",
        unique=True,
        postgresql_where=sa.text("client_reference IS NOT NULL"),
        sqlite_where=sa.text("client_reference IS NOT NULL"),
    ),
    # PostgreSQL: ``metadata @> {key: value}`` filters (SQLite reads json_each per row). Only
    # rows with metadata (migration 0011): ``@>`` is strict, so the planner knows a filtered
    # row has some, and an order without any costs its commands no GIN entry.
    sa.Index(
        "order_view_metadata_idx",
        "metadata",
        postgresql_using="gin",
        postgresql_ops={"metadata": "jsonb_path_ops"},
        postgresql_where=sa.text("metadata IS NOT NULL"),
    ),
)

party_balances = sa.Table(
    "party_balances",
    metadata,
    sa.Column("id", BigKey, sa.Identity(always=True), primary_key=True),
    sa.Column("party_id", sa.Text, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("order_id", sa.Text, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("held", sa.BigInteger, nullable=False),
    sa.Column("released", sa.BigInteger, nullable=False),
    sa.Column("refunded", sa.BigInteger, nullable=False),
    sa.Column("fees", sa.BigInteger, nullable=False),
    sa.Index("party_balances_party_idx", "party_id", "currency"),
    sqlite_autoincrement=True,
)

money_out = sa.Table(
    "money_out",
    metadata,
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
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("kind IN ('payout', 'refund')", name="money_out_kind_check"),
    sa.Index("money_out_kind_idx", "kind", "created_at", "id"),
    sa.Index("money_out_party_idx", "party_id", "kind", "created_at", "id"),
    sa.Index("money_out_order_idx", "order_id"),
)

ledger_postings = sa.Table(
    "ledger_postings",
    metadata,
    sa.Column("id", BigKey, sa.Identity(always=True), primary_key=True),
    sa.Column("transfer_id", sa.Text, nullable=False),
    sa.Column("order_id", sa.Text, nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("account", sa.Text, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("phase", sa.Text, nullable=False),
    sa.Column("pending_id", sa.Text, nullable=True),
    sa.Column("legacy", sa.Boolean, nullable=False),
    sa.CheckConstraint(
        "phase IN ('pending', 'posted', 'voided')", name="ledger_postings_phase_check"
    ),
    sa.Index("ledger_postings_account_idx", "account", "id"),
    sqlite_autoincrement=True,
)

service_clock = sa.Table(
    "service_clock",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("offset_seconds", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.CheckConstraint("id = 1", name="service_clock_single_row"),
)

parties = sa.Table(
    "parties",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("trade_assurance", sa.Boolean, nullable=False),
    sa.Column("managed_by", sa.Text, sa.ForeignKey("parties.id"), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # migration 0007
    sa.Column("metadata", JSONDocument, nullable=False, server_default=sa.text("'{}'")),
    sa.Column("deactivated_at", UTCDateTime, nullable=True),
    sa.CheckConstraint("kind IN ('buyer', 'supplier', 'agent')", name="parties_kind_check"),
    sa.Index("parties_managed_by_idx", "managed_by"),
    sa.Index("parties_created_idx", "created_at", "id"),
    sa.Index("parties_kind_idx", "kind", "created_at", "id"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("key_hash", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("party_id", sa.Text, sa.ForeignKey("parties.id"), nullable=True),
    sa.Column("created_by", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    # migration 0007
    sa.Column("scope", sa.Text, nullable=False, server_default=sa.text("'full'")),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("last_used_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("key_hash", name="api_keys_key_hash_key"),
    sa.CheckConstraint(
        "role IN ('admin', 'mediator', 'payments', 'agent', 'buyer', 'supplier')",
        name="api_keys_role_check",
    ),
    sa.CheckConstraint("scope IN ('full', 'read')", name="api_keys_scope_check"),
    sa.Index("api_keys_created_idx", "created_at", "id"),
    sa.Index("api_keys_party_idx", "party_id", "created_at", "id"),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("body_hash", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("holder", sa.Text, nullable=True),  # an in-flight claim's holder (migration 0005)
    sa.Column("response_status", sa.Integer, nullable=True),
    sa.Column("response_body", sa.Text, nullable=True),
    sa.Column("response_headers", JSONDocument, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("status IN ('in_flight', 'done')", name="idempotency_keys_status_check"),
    sa.CheckConstraint(
        "response_status BETWEEN 100 AND 599", name="idempotency_keys_response_status_check"
    ),
    sa.Index("idempotency_keys_expires_idx", "expires_at"),
)

# --- webhooks (migration 0003) --------------------------------------------------------------

WEBHOOK_DELIVERY_KEY = "webhook_deliveries_endpoint_event_key"
_PENDING = sa.text("status = 'pending'")

webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("owner_party_id", sa.Text, sa.ForeignKey("parties.id"), nullable=True),
    # "payments" for a payments key's endpoint (migration 0008); NULL: a party's or an admin's.
    sa.Column("owner_role", sa.Text, nullable=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("event_types", JSONDocument, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("disabled_reason", sa.Text, nullable=True),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("previous_secret", sa.Text, nullable=True),
    sa.Column("previous_secret_expires_at", UTCDateTime, nullable=True),
    sa.Column("failing_since", UTCDateTime, nullable=True),
    sa.Column("created_by", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("deleted_at", UTCDateTime, nullable=True),
    sa.Index("webhook_endpoints_owner_idx", "owner_party_id", "id"),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    # A plain serial key (no IDENTITY): delivery and attempt rows are never deleted.
    sa.Column("id", BigKey, primary_key=True),
    sa.Column("endpoint_id", sa.Text, sa.ForeignKey("webhook_endpoints.id"), nullable=False),
    sa.Column("event_id", UUIDText, nullable=False),
    sa.Column("event_position", sa.BigInteger, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("stream_id", sa.Text, nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("locked_until", UTCDateTime, nullable=True),
    sa.Column("lease_token", sa.Text, nullable=True),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    sa.CheckConstraint(
        "status IN ('pending', 'succeeded', 'failed')", name="webhook_deliveries_status_check"
    ),
    sa.UniqueConstraint("endpoint_id", "event_id", name=WEBHOOK_DELIVERY_KEY),
    sa.Index(
        "webhook_deliveries_due_idx",
        "next_attempt_at",
        postgresql_where=_PENDING,
        sqlite_where=_PENDING,
    ),
    sa.Index(
        "webhook_deliveries_order_idx",
        "endpoint_id",
        "stream_id",
        "sequence",
        postgresql_where=_PENDING,
        sqlite_where=_PENDING,
    ),
    sa.Index("webhook_deliveries_endpoint_idx", "endpoint_id", "id"),
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", BigKey, primary_key=True),
    sa.Column("delivery_id", sa.BigInteger, sa.ForeignKey("webhook_deliveries.id"), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("latency_ms", sa.Integer, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("response_body", sa.Text, nullable=True),
    sa.Column("worker", sa.Text, nullable=True),
    sa.Index("webhook_attempts_delivery_idx", "delivery_id", "id"),
)

webhook_dispatch_checkpoint = sa.Table(
    "webhook_dispatch_checkpoint",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("transaction_id", sa.BigInteger, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
)

# Supplier performance (migration 0010): an asynchronous projection the worker keeps from the
# log (checkpoint ``supplier_performance`` in webhook_dispatch_checkpoint).
supplier_performance = sa.Table(
    "supplier_performance",
    metadata,
    sa.Column("supplier_id", sa.Text, primary_key=True),
    sa.Column("currency", sa.Text, primary_key=True),
    sa.Column("orders_accepted", sa.BigInteger, nullable=False),
    sa.Column("shipped_on_time", sa.BigInteger, nullable=False),
    sa.Column("shipped_late", sa.BigInteger, nullable=False),
    sa.Column("completed", sa.BigInteger, nullable=False),
    sa.Column("disputed", sa.BigInteger, nullable=False),
    sa.Column("claims", sa.BigInteger, nullable=False),
    sa.Column("paid", sa.BigInteger, nullable=False),
    sa.Column("refunded", sa.BigInteger, nullable=False),
)

supplier_performance_orders = sa.Table(
    "supplier_performance_orders",
    metadata,
    sa.Column("order_id", sa.Text, primary_key=True),
    sa.Column("supplier_id", sa.Text, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("ship_deadline", UTCDateTime, nullable=False),
    sa.Column("accepted_at", UTCDateTime, nullable=True),
    sa.Column("shipped_at", UTCDateTime, nullable=True),
    sa.Column("shipped_on_time", sa.Boolean, nullable=True),
    sa.Column("completed", sa.Boolean, nullable=False),
    sa.Column("disputed", sa.Boolean, nullable=False),
    sa.Column("claimed", sa.Boolean, nullable=False),
    sa.Column("paid", sa.BigInteger, nullable=False),
    sa.Column("refunded", sa.BigInteger, nullable=False),
    sa.Column("state", JSONDocument, nullable=True),
    sa.Index("supplier_performance_orders_supplier_idx", "supplier_id"),
)
