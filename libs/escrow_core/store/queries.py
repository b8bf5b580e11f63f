"""The event store's SQL, built once as SQLAlchemy Core statements (compiled forms are cached)."""

from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from escrow_core.store.schema import events
from escrow_core.store.types import JSONDocument, UTCDateTime, UUIDText

c = events.c

# asyncpg has no xid8 codec: transaction ids travel as text and are cast on either side.
_TRANSACTION_ID = sa.cast(c.transaction_id, sa.Text).label("transaction_id")
_NO_TRANSACTION_ID: sa.Label[Any] = sa.literal_column("0").label("transaction_id")  # SQLite


def _columns(postgresql: bool) -> list[sa.ColumnElement[Any]]:
    return [
        c.position,
        c.stream_id,
        c.version,
        c.event_id,
        c.type,
        c.schema_version,
        c.data,
        c.metadata,
        c.recorded_at,
        _TRANSACTION_ID if postgresql else _NO_TRANSACTION_ID,
    ]


_CURRENT_VERSION = (
    sa.select(sa.func.coalesce(sa.func.max(c.version), 0))
    .where(c.stream_id == sa.bindparam("stream_id", type_=sa.Text))
    .scalar_subquery()
)

STREAM_VERSION = sa.select(_CURRENT_VERSION)


@lru_cache(maxsize=128)
def append(count: int, postgresql: bool) -> sa.Insert:
    """Insert ``count`` events only if the stream is at the expected version and no id is taken.

        WITH new_events(version, event_id, ...) AS (VALUES (...), (...))
        INSERT INTO events (...) SELECT :stream_id, new_events.*, :recorded_at FROM new_events
        WHERE (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = :stream_id)
              = :expected_version
          AND NOT EXISTS (SELECT 1 FROM events JOIN new_events USING (event_id))
        ORDER BY version RETURNING position, version, transaction_id::text

    The conditions do not depend on the row, so it inserts every event or none: a partial
    append (a gap in the stream) cannot happen, and ORDER BY makes positions follow versions.
    ``ON CONFLICT DO NOTHING`` is deliberately not used: it would insert the rows that do not
    conflict. A concurrent writer's uncommitted row makes the insert wait on the unique key
    and then fail, which ``EventStore.append`` turns into ``ConcurrencyError``.
    """
    rows = [
        (
            sa.bindparam(f"version_{i}", type_=sa.Integer),
            sa.bindparam(f"event_id_{i}", type_=UUIDText),
            sa.bindparam(f"type_{i}", type_=sa.Text),
            sa.bindparam(f"schema_version_{i}", type_=sa.Integer),
            sa.bindparam(f"data_{i}", type_=JSONDocument),
            sa.bindparam(f"metadata_{i}", type_=JSONDocument),
        )
        for i in range(count)
    ]
    new_events = (
        sa.values(
            sa.column("version", sa.Integer),
            sa.column("event_id", UUIDText),
            sa.column("type", sa.Text),
            sa.column("schema_version", sa.Integer),
            sa.column("data", JSONDocument),
            sa.column("metadata", JSONDocument),
            name="new_events",
        )
        .data(rows)
        .cte("new_events")
    )
    n = new_events.c
    taken = (
        sa.select(sa.literal(1))
        .select_from(events.join(new_events, c.event_id == n.event_id))
        .exists()
    )
    selected = (
        sa.select(
            sa.bindparam("stream_id", type_=sa.Text),
            n.version,
            n.event_id,
            n.type,
            n.schema_version,
            n.data,
            n.metadata,
            sa.bindparam("recorded_at", type_=UTCDateTime),
        )
        .where(sa.bindparam("expected_version", type_=sa.Integer) == _CURRENT_VERSION, ~taken)
        .order_by(n.version)
    )
    columns = [
        "stream_id", "version", "event_id", "type", "schema_version", "data", "metadata",
        "recorded_at",
    ]  # fmt: skip
    transaction_id = _TRANSACTION_ID if postgresql else _NO_TRANSACTION_ID
    return (
        sa.insert(events)
        .from_select(columns, selected)
        .returning(c.position, c.version, transaction_id)
    )


@lru_cache(maxsize=4)
def events_by_id(postgresql: bool) -> sa.Select[*tuple[Any, ...]]:
    return (
        sa.select(*_columns(postgresql))
        .where(c.event_id.in_(sa.bindparam("event_ids", type_=UUIDText, expanding=True)))
        .order_by(c.position)
    )


@lru_cache(maxsize=4)
def read_stream(postgresql: bool, *, bounded: bool) -> sa.Select[*tuple[Any, ...]]:
    query = (
        sa.select(*_columns(postgresql))
        .where(c.stream_id == sa.bindparam("stream_id", type_=sa.Text))
        .where(c.version > sa.bindparam("after_version", type_=sa.Integer))
        .order_by(c.version)
    )
    if bounded:
        query = query.where(c.version <= sa.bindparam("up_to_version", type_=sa.Integer))
    return query


# Commit-order-safe tailing on PostgreSQL.
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
# no lock for this. On SQLite there is one writer at a time (BEGIN IMMEDIATE) and positions
# are handed out under that lock, so commit order is position order.
_XMIN = sa.func.pg_snapshot_xmin(sa.func.pg_current_snapshot())

# Sent straight through asyncpg (EventStore.read_log): the hottest read there is. ORDER BY
# names the table's columns: bare ``transaction_id`` would be the text alias selected (a sort
# of every page by string, which puts transaction 10 before transaction 9).
READ_LOG_POSTGRESQL_SQL = """
SELECT position, stream_id, version, event_id, type, schema_version, data, metadata,
       recorded_at, transaction_id::text
FROM events
WHERE (transaction_id, position) > ($1::text::xid8, $2::bigint)
  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY events.transaction_id, events.position
LIMIT $3
"""

READ_LOG_SQLITE = (
    sa.select(*_columns(postgresql=False))
    .where(c.position > sa.bindparam("position", type_=sa.BigInteger))
    .order_by(c.position)
    .limit(sa.bindparam("limit", type_=sa.Integer))
)

LOG_HEAD_POSTGRESQL = (
    sa.select(_TRANSACTION_ID, c.position)
    .where(c.transaction_id < _XMIN)
    .order_by(c.transaction_id.desc(), c.position.desc())
    .limit(1)
)

LOG_HEAD_SQLITE = sa.select(sa.func.coalesce(sa.func.max(c.position), 0))
