"""The PostgreSQL adapter's own SQL, written with named parameters.

asyncpg takes positional ``$n`` parameters; ``NamedSQL`` numbers the ``:names`` once, and a
statement's arguments are then built from a mapping by name, never by position.
"""

import re
from collections.abc import Mapping
from typing import Any

_NAME = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


class NamedSQL:
    """SQL with ``:name`` parameters, rewritten to asyncpg's ``$n``."""

    def __init__(self, sql: str) -> None:
        self.names: list[str] = []

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.names:
                self.names.append(name)
            return f"${self.names.index(name) + 1}"

        self.named = sql
        self.sql = _NAME.sub(number, sql)

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        return [values[name] for name in self.names]


SNAPSHOT = NamedSQL("SELECT state FROM order_view WHERE order_id = :order_id")
STREAM = NamedSQL("""
SELECT position, stream_id, version, event_id, type, schema_version, data, metadata,
       recorded_at, transaction_id::text
FROM events WHERE stream_id = :stream_id ORDER BY version
""")
PARTY = NamedSQL("""
SELECT id, kind, name, trade_assurance, managed_by, created_at, metadata, deactivated_at
FROM parties WHERE id = :id
""")
PARTIES = NamedSQL("""
SELECT id, kind, name, trade_assurance, managed_by, created_at, metadata, deactivated_at
FROM parties WHERE id = ANY(:ids::text[])
""")
CLOCK_OFFSET = NamedSQL("SELECT offset_seconds FROM service_clock WHERE id = 1")

# Commit-order-safe tailing.
#
# ``position`` comes from a sequence, taken when a row is inserted, not when its transaction
# commits. Transaction A can take position 10, transaction B position 11, and B commit first:
# a reader ordering by position alone reads 11, stores it as its checkpoint, and never sees
# 10 when A commits. So every row also records its transaction's id (xid8, assigned on the
# transaction's first write), and the reader
#   - orders by (transaction_id, position) and resumes after the pair it kept, and
#   - reads only rows of transactions older than its snapshot's xmin, the oldest transaction
#     still running: each of those has committed or rolled back, so no row can still appear
#     before a pair it has read.
# A long transaction therefore holds the reader back (it waits, it never skips). Writers take
# no lock for this. ORDER BY names the table's columns: bare ``transaction_id`` would be the
# text alias selected (a sort of every page by string, which puts xid 10 before xid 9).
READ_LOG = NamedSQL("""
SELECT position, stream_id, version, event_id, type, schema_version, data, metadata,
       recorded_at, transaction_id::text
FROM events
WHERE (transaction_id, position) > (CAST(CAST(:transaction_id AS text) AS xid8),
                                    CAST(:position AS bigint))
  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY events.transaction_id, events.position
LIMIT :limit
""")
# The feed's filters (``GET /v1/events?type=...&order_id=...``), under the same two rules.
# By type: one ordered range of ``events_type_idx`` (type, transaction_id, position) per wanted
# type, each cut at ``limit``, merged; a rare type costs what it finds, not the log's length.
READ_LOG_OF_TYPES = NamedSQL("""
SELECT found.* FROM unnest(CAST(:types AS text[])) AS wanted(type)
CROSS JOIN LATERAL (
    SELECT position, stream_id, version, event_id, type, schema_version, data, metadata,
           recorded_at, transaction_id::text AS transaction_id, transaction_id AS xid
    FROM events
    WHERE events.type = wanted.type
      AND (transaction_id, position) > (CAST(CAST(:transaction_id AS text) AS xid8),
                                        CAST(:position AS bigint))
      AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY events.transaction_id, events.position  -- the xid8, not the text column
    LIMIT :limit
) found
ORDER BY found.xid, found.position
LIMIT :limit
""")
# One order (of some types, if any are named): its stream through the (stream_id, version)
# key, a few dozen rows sorted.
READ_LOG_OF_STREAM = NamedSQL("""
SELECT position, stream_id, version, event_id, type, schema_version, data, metadata,
       recorded_at, transaction_id::text
FROM events
WHERE stream_id = :stream_id
  AND (cardinality(CAST(:types AS text[])) = 0 OR type = ANY(CAST(:types AS text[])))
  AND (transaction_id, position) > (CAST(CAST(:transaction_id AS text) AS xid8),
                                    CAST(:position AS bigint))
  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY events.transaction_id, events.position
LIMIT :limit
""")
LOG_HEAD = NamedSQL("""
SELECT transaction_id::text, position FROM events
WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY events.transaction_id DESC, events.position DESC LIMIT 1
""")
LAST_WRITER = NamedSQL("SELECT coalesce(max(transaction_id), '0')::text FROM events")
SNAPSHOT_XMIN = NamedSQL("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")

CLAIM_KEY = NamedSQL("""
INSERT INTO idempotency_keys (scope, key, body_hash, status, holder, created_at, expires_at)
VALUES (:scope, :key, :body_hash, 'in_flight', :holder, :now, :expires_at)
ON CONFLICT (scope, key) DO NOTHING RETURNING 1
""")

# An order command's turn on its Idempotency-Key: a session advisory lock (released when the
# attempt ends, or with the connection if the process dies) and, once held, the live answer
# kept under the key. The answer is read in the statement's snapshot, taken before the lock:
# an answer committed in between is missed here but not lost, because the commit keeps its
# own answer only where none is kept (``COMMIT``'s ``kept``), and the retry then finds it.
HOLD_KEY = NamedSQL("""
SELECT held.ok AS held, k.body_hash, k.status, k.response_status, k.response_body,
       k.response_headers
FROM (SELECT pg_try_advisory_lock(:lock_id) AS ok) held
LEFT JOIN idempotency_keys k ON held.ok AND k.scope = :scope AND k.key = :key
    AND k.status = 'done' AND k.expires_at >= :now
""")
# The same turn and the order's snapshot in one round trip, for a command on an order this
# process does not remember (``hold_key``'s ``snapshot_of``): read only once the lock is held
# and no answer is kept. The row is read in the statement's snapshot, taken before the lock,
# so it may be a moment old; the write's version check catches that as for any snapshot (a
# duplicate's write that committed in between also left its answer, which ``COMMIT``'s
# ``kept`` then finds, and the retry replays).
HOLD_KEY_AND_SNAPSHOT = NamedSQL("""
SELECT held.ok AS held, k.body_hash, k.status, k.response_status, k.response_body,
       k.response_headers,
       CASE WHEN held.ok AND k.status IS NULL
            THEN (SELECT v.state FROM order_view v WHERE v.order_id = :order_id) END AS state
FROM (SELECT pg_try_advisory_lock(:lock_id) AS ok) held
LEFT JOIN idempotency_keys k ON held.ok AND k.scope = :scope AND k.key = :key
    AND k.status = 'done' AND k.expires_at >= :now
""")
UNLOCK_KEY = NamedSQL("SELECT pg_advisory_unlock(:lock_id)")

# An order command's answer as the key's record, over an existing one only if that expired.
# (``COMMIT`` keeps its answer the same way.)
KEEP_ANSWER = NamedSQL("""
INSERT INTO idempotency_keys (scope, key, body_hash, status, response_status, response_body,
                              response_headers, created_at, expires_at)
VALUES (:a_scope, :a_key, :a_body_hash, 'done', :a_status, :a_body, :a_headers::jsonb,
        :a_created_at, :a_expires_at)
ON CONFLICT (scope, key) DO UPDATE SET body_hash = EXCLUDED.body_hash, status = 'done',
    holder = NULL, response_status = EXCLUDED.response_status,
    response_body = EXCLUDED.response_body, response_headers = EXCLUDED.response_headers,
    created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
WHERE idempotency_keys.status <> 'done' OR idempotency_keys.expires_at < EXCLUDED.created_at
""")

# Everything a command writes, in ONE statement, atomic by itself: the events (only if the
# stream is still at the version the command was decided on and, with an Idempotency-Key, no
# live answer is kept under the key yet), the order's row, the balance changes (each with its
# event's position), the ledger postings, the payouts and refunds it creates or changes, and
# the Idempotency-Key answer. When the stream has moved or the key has its answer,
# ``inserted`` is empty and so is every other part.
#
# A written command also releases the key's advisory lock (``:lock_id``, NULL without a key)
# here, saving the unlock's round trip. The lock goes before the statement commits: a
# duplicate taking it then finds no answer yet, but its own write waits on this one's row in
# idempotency_keys, finds the answer there, writes nothing, and its retry replays the answer.
# ``unlocked`` is read only when ``inserted`` has rows, so a refused write keeps the lock for
# the session's own unlock.
COMMIT = NamedSQL("""
WITH kept AS (
    INSERT INTO idempotency_keys (scope, key, body_hash, status, response_status,
                                  response_body, response_headers, created_at, expires_at)
    SELECT :a_scope::text, :a_key::text, :a_body_hash::text, 'done', :a_status::int,
           :a_body::text, :a_headers::jsonb, :a_created_at::timestamptz,
           :a_expires_at::timestamptz
    WHERE :a_key::text IS NOT NULL
      AND (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = :order_id)
          = :expected_version
    ON CONFLICT (scope, key) DO UPDATE SET body_hash = EXCLUDED.body_hash, status = 'done',
        holder = NULL, response_status = EXCLUDED.response_status,
        response_body = EXCLUDED.response_body, response_headers = EXCLUDED.response_headers,
        created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
    WHERE idempotency_keys.status <> 'done'
       OR idempotency_keys.expires_at < EXCLUDED.created_at
    RETURNING 1
), new_events AS (
    SELECT * FROM unnest(:versions::int[], :event_ids::uuid[], :types::text[],
                         :schema_versions::int[], :datas::jsonb[], :metadatas::jsonb[])
        AS n(version, event_id, type, schema_version, data, metadata)
), inserted AS (
    INSERT INTO events (stream_id, version, event_id, type, schema_version, data, metadata,
                        recorded_at)
    SELECT :order_id, n.version, n.event_id, n.type, n.schema_version, n.data, n.metadata,
           :recorded_at
    FROM new_events n
    WHERE (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = :order_id)
          = :expected_version
      AND (:a_key::text IS NULL OR EXISTS (SELECT FROM kept))
    ORDER BY n.version
    RETURNING position, version, transaction_id::text AS transaction_id
), view AS (
    INSERT INTO order_view (order_id, version, status, buyer_id, supplier_id, currency, total,
                            next_timer_at, dispute_status, dispute_opened_at, state, created_at,
                            updated_at, client_reference, metadata)
    SELECT :order_id, :version::int, :status::text, :buyer_id::text, :supplier_id::text,
           :currency::text, :total::bigint, :next_timer_at::timestamptz, :dispute_status::text,
           :dispute_opened_at::timestamptz, :state::jsonb, :created_at::timestamptz,
           :updated_at::timestamptz, :client_reference::text, :metadata::jsonb
    WHERE EXISTS (SELECT FROM inserted)
    ON CONFLICT (order_id) DO UPDATE SET version = EXCLUDED.version,
        status = EXCLUDED.status, next_timer_at = EXCLUDED.next_timer_at,
        dispute_status = EXCLUDED.dispute_status,
        dispute_opened_at = EXCLUDED.dispute_opened_at,
        state = EXCLUDED.state, updated_at = EXCLUDED.updated_at,
        client_reference = EXCLUDED.client_reference, metadata = EXCLUDED.metadata
), balances AS (
    INSERT INTO party_balances (party_id, currency, order_id, position, held, released,
                                refunded, fees)
    SELECT b.party_id, b.currency, :order_id, i.position, b.held, b.released, b.refunded,
           b.fees
    FROM unnest(:b_versions::int[], :b_parties::text[], :b_currencies::text[],
                :b_held::bigint[], :b_released::bigint[], :b_refunded::bigint[],
                :b_fees::bigint[])
        AS b(version, party_id, currency, held, released, refunded, fees)
    JOIN inserted i ON i.version = b.version
), postings AS (
    INSERT INTO ledger_postings (transfer_id, order_id, event_id, at, account, currency, amount,
                                 phase, pending_id, legacy)
    SELECT p.transfer_id, :order_id, p.event_id, p.at, p.account, p.currency, p.amount,
           p.phase, p.pending_id, p.legacy
    FROM unnest(:p_transfer_ids::text[], :p_event_ids::text[], :p_ats::timestamptz[],
                :p_accounts::text[], :p_currencies::text[], :p_amounts::bigint[],
                :p_phases::text[], :p_pending_ids::text[], :p_legacy::boolean[])
        WITH ORDINALITY AS p(transfer_id, event_id, at, account, currency, amount, phase,
                             pending_id, legacy, n)
    WHERE EXISTS (SELECT FROM inserted)
    ORDER BY p.n
), money AS (
    INSERT INTO money_out (id, kind, order_id, party_id, currency, amount, status,
                           provider_ref, failure_reason, payment_provider_ref, created_at,
                           updated_at)
    SELECT m.id, m.kind, :order_id, m.party_id, m.currency, m.amount, m.status,
           m.provider_ref, m.failure_reason, m.payment_provider_ref, m.created_at,
           m.updated_at
    FROM unnest(:m_ids::text[], :m_kinds::text[], :m_parties::text[], :m_currencies::text[],
                :m_amounts::bigint[], :m_statuses::text[], :m_provider_refs::text[],
                :m_failure_reasons::text[], :m_payment_refs::text[],
                :m_created_ats::timestamptz[], :m_updated_ats::timestamptz[])
        AS m(id, kind, party_id, currency, amount, status, provider_ref, failure_reason,
             payment_provider_ref, created_at, updated_at)
    WHERE EXISTS (SELECT FROM inserted)
    ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status,
        provider_ref = EXCLUDED.provider_ref, failure_reason = EXCLUDED.failure_reason,
        updated_at = EXCLUDED.updated_at
), unlocked AS MATERIALIZED (
    SELECT pg_advisory_unlock(:lock_id::bigint) AS ok WHERE EXISTS (SELECT FROM inserted)
)
SELECT i.position, i.version, i.transaction_id, u.ok AS unlocked
FROM inserted i LEFT JOIN unlocked u ON true
""")

# The commit signal (store/postgres/listening.py), sent after a command's COMMIT statement, not
# inside it: PostgreSQL serialises the commits of transactions that NOTIFY (a database-wide lock
# from pre-commit to the end of the WAL flush), so a NOTIFY in every command's write halved the
# writes a second at 8-16 concurrent writers (bench/README.md, issue 13). Alone in its
# transaction, committed without waiting for the flush (a lost signal costs one poll), it
# holds that lock for microseconds, and only against other signals.
SIGNAL = NamedSQL("""
SELECT set_config('synchronous_commit', 'off', true), pg_notify(:channel, '')
""")

# A rebuild's payouts and refunds as they stand at the end of a batch.
UPSERT_MONEY_OUT = NamedSQL("""
INSERT INTO money_out (id, kind, order_id, party_id, currency, amount, status, provider_ref,
                       failure_reason, payment_provider_ref, created_at, updated_at)
SELECT * FROM unnest(:m_ids::text[], :m_kinds::text[], :m_orders::text[], :m_parties::text[],
                     :m_currencies::text[], :m_amounts::bigint[], :m_statuses::text[],
                     :m_provider_refs::text[], :m_failure_reasons::text[],
                     :m_payment_refs::text[], :m_created_ats::timestamptz[],
                     :m_updated_ats::timestamptz[])
ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, provider_ref = EXCLUDED.provider_ref,
    failure_reason = EXCLUDED.failure_reason, updated_at = EXCLUDED.updated_at
""")

# A rebuild's batch of rows in one statement (its balance changes go by COPY).
UPSERT_ROWS = NamedSQL("""
INSERT INTO order_view (order_id, version, status, buyer_id, supplier_id, currency, total,
                        next_timer_at, dispute_status, dispute_opened_at, state, created_at,
                        updated_at, client_reference, metadata)
SELECT * FROM unnest(:order_id::text[], :version::int[], :status::text[], :buyer_id::text[],
                     :supplier_id::text[], :currency::text[], :total::bigint[],
                     :next_timer_at::timestamptz[], :dispute_status::text[],
                     :dispute_opened_at::timestamptz[], :state::jsonb[],
                     :created_at::timestamptz[], :updated_at::timestamptz[],
                     :client_reference::text[], :metadata::jsonb[])
ON CONFLICT (order_id) DO UPDATE SET version = EXCLUDED.version, status = EXCLUDED.status,
    next_timer_at = EXCLUDED.next_timer_at, dispute_status = EXCLUDED.dispute_status,
    dispute_opened_at = EXCLUDED.dispute_opened_at, state = EXCLUDED.state,
    updated_at = EXCLUDED.updated_at, client_reference = EXCLUDED.client_reference,
    metadata = EXCLUDED.metadata
""")

# The supplier performance projection's batch (a rebuild's, or the worker's) in two statements
# on the transaction's own connection, one array a column named as its record's field; the
# state documents arrive as JSON text.
UPSERT_PERFORMANCE_ORDERS = NamedSQL("""
INSERT INTO supplier_performance_orders (order_id, supplier_id, currency, ship_deadline,
    accepted_at, shipped_at, shipped_on_time, completed, disputed, claimed, paid, refunded, state)
SELECT order_id, supplier_id, currency, ship_deadline, accepted_at, shipped_at, shipped_on_time,
       completed, disputed, claimed, paid, refunded, state::jsonb
FROM unnest(:order_id::text[], :supplier_id::text[], :currency::text[],
            :ship_deadline::timestamptz[], :accepted_at::timestamptz[],
            :shipped_at::timestamptz[], :shipped_on_time::boolean[], :completed::boolean[],
            :disputed::boolean[], :claimed::boolean[], :paid::bigint[], :refunded::bigint[],
            :state::text[])
     AS t(order_id, supplier_id, currency, ship_deadline, accepted_at, shipped_at,
          shipped_on_time, completed, disputed, claimed, paid, refunded, state)
ON CONFLICT (order_id) DO UPDATE SET supplier_id = EXCLUDED.supplier_id,
    currency = EXCLUDED.currency, ship_deadline = EXCLUDED.ship_deadline,
    accepted_at = EXCLUDED.accepted_at, shipped_at = EXCLUDED.shipped_at,
    shipped_on_time = EXCLUDED.shipped_on_time, completed = EXCLUDED.completed,
    disputed = EXCLUDED.disputed, claimed = EXCLUDED.claimed, paid = EXCLUDED.paid,
    refunded = EXCLUDED.refunded, state = EXCLUDED.state
""")
ADD_PERFORMANCE_COUNTS = NamedSQL("""
INSERT INTO supplier_performance AS t (supplier_id, currency, orders_accepted, shipped_on_time,
    shipped_late, completed, disputed, claims, paid, refunded)
SELECT * FROM unnest(:supplier_id::text[], :currency::text[], :orders_accepted::bigint[],
                     :shipped_on_time::bigint[], :shipped_late::bigint[], :completed::bigint[],
                     :disputed::bigint[], :claims::bigint[], :paid::bigint[],
                     :refunded::bigint[])
ON CONFLICT (supplier_id, currency) DO UPDATE SET
    orders_accepted = t.orders_accepted + EXCLUDED.orders_accepted,
    shipped_on_time = t.shipped_on_time + EXCLUDED.shipped_on_time,
    shipped_late = t.shipped_late + EXCLUDED.shipped_late,
    completed = t.completed + EXCLUDED.completed, disputed = t.disputed + EXCLUDED.disputed,
    claims = t.claims + EXCLUDED.claims, paid = t.paid + EXCLUDED.paid,
    refunded = t.refunded + EXCLUDED.refunded
""")
