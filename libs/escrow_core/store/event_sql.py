"""The statements on ``events`` both adapters run through SQLAlchemy Core, and their
parameters built by name."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.store.errors import ConcurrencyError, EventIdConflict
from escrow_core.store.records import Commit, NewEvent, RecordedEvent
from escrow_core.store.schema import EVENT_ID_KEY, STREAM_VERSION_KEY, events
from escrow_core.store.types import JSONDocument, UTCDateTime, UUIDText
from escrow_core.store.upcasting import Upcasters

c = events.c
EVENT_KEYS = (STREAM_VERSION_KEY, EVENT_ID_KEY)


class EventStatements:
    """The statements on ``events``, with the backend's spelling of the transaction id (text
    of the xid8 on PostgreSQL, 0 on SQLite) and of the commit-safe log read."""

    def __init__(self, transaction_id: sa.ColumnElement[Any], log: sa.Executable) -> None:
        self.transaction_id = transaction_id
        self.columns = event_columns(transaction_id)
        self.stream = (
            sa.select(*self.columns)
            .where(c.stream_id == sa.bindparam("stream_id", type_=sa.Text))
            .where(c.version > sa.bindparam("after_version", type_=sa.Integer))
            .order_by(c.version)
        )
        self.stream_up_to = self.stream.where(c.version <= sa.bindparam("up_to", type_=sa.Integer))
        self.by_id = (
            sa.select(*self.columns)
            .where(c.event_id.in_(sa.bindparam("event_ids", type_=UUIDText, expanding=True)))
            .order_by(c.position)
        )
        self.log = log
        self._appends: dict[int, sa.Insert] = {}

    def append(self, count: int) -> sa.Insert:
        """Insert ``count`` events only if the stream is at the expected version and no id is
        taken (see ``_append``); built once per count."""
        if count not in self._appends:
            self._appends[count] = _append(count, self.transaction_id)
        return self._appends[count]


def event_columns(transaction_id: sa.ColumnElement[Any]) -> list[sa.ColumnElement[Any]]:
    """A stored event's columns, in the order ``CoreStore.recorded`` reads them."""
    return [
        c.position, c.stream_id, c.version, c.event_id, c.type, c.schema_version, c.data,
        c.metadata, c.recorded_at, transaction_id,
    ]  # fmt: skip


def _append(count: int, transaction_id: sa.ColumnElement[Any]) -> sa.Insert:
    """
        WITH new_events(version, event_id, ...) AS (VALUES (...), (...))
        INSERT INTO events (...) SELECT :stream_id, new_events.*, :recorded_at FROM new_events
        WHERE (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = :stream_id)
              = :expected_version
          AND NOT EXISTS (SELECT 1 FROM events JOIN new_events USING (event_id))
        ORDER BY version RETURNING position, version, transaction_id

    The conditions do not depend on the row, so it inserts every event or none: a partial
    append (a gap in the stream) cannot happen, and ORDER BY makes positions follow versions.
    ``ON CONFLICT DO NOTHING`` is deliberately not used: it would insert the rows that do not
    conflict. A concurrent writer's uncommitted row makes the insert wait on the unique key
    and then fail, which the store turns into ``ConcurrencyError``.
    """
    typed: dict[str, sa.types.TypeEngine[Any]] = {
        "version": sa.Integer(),
        "event_id": UUIDText(),
        "type": sa.Text(),
        "schema_version": sa.Integer(),
        "data": JSONDocument,
        "metadata": JSONDocument,
    }
    names = tuple(typed)
    rows: list[tuple[Any, ...]] = [
        tuple(sa.bindparam(f"{name}_{i}", type_=t) for name, t in typed.items())
        for i in range(count)
    ]
    new_events = (
        sa.values(*(sa.column(name, t) for name, t in typed.items()), name="new_events")
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
            *(n[name] for name in names),
            sa.bindparam("recorded_at", type_=UTCDateTime),
        )
        .where(sa.bindparam("expected_version", type_=sa.Integer) == _CURRENT_VERSION, ~taken)
        .order_by(n.version)
    )
    return (
        sa.insert(events)
        .from_select(["stream_id", *names, "recorded_at"], selected)
        .returning(c.position, c.version, transaction_id.label("transaction_id"))
    )


_CURRENT_VERSION = (
    sa.select(sa.func.coalesce(sa.func.max(c.version), 0))
    .where(c.stream_id == sa.bindparam("stream_id", type_=sa.Text))
    .scalar_subquery()
)
STREAM_VERSION = sa.select(_CURRENT_VERSION)
COUNT_EVENTS = sa.select(sa.func.count()).select_from(events)


def check_append(expected_version: int, new: Sequence[NewEvent], recorded_at: datetime) -> None:
    if expected_version < 0:
        raise ValueError("expected_version is 0 for a new stream, never negative")
    if recorded_at.tzinfo is None:
        raise ValueError("recorded_at must be timezone-aware")
    ids = [event.event_id for event in new]
    if len(set(ids)) != len(ids):
        raise ValueError("an append cannot carry the same event id twice")


def check_commit(commit: Commit) -> None:
    """A command's write, checked alike on both backends before it reaches the database."""
    if not commit.events:
        raise ValueError("a commit writes at least one event (a no-op keeps only its answer)")
    check_append(commit.expected_version, commit.events, commit.recorded_at)


def append_params(
    stream_id: str, expected_version: int, new: Sequence[NewEvent], recorded_at: datetime
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "stream_id": stream_id,
        "expected_version": expected_version,
        "recorded_at": recorded_at,
    }
    for index, event in enumerate(new):
        params[f"version_{index}"] = expected_version + 1 + index
        params[f"event_id_{index}"] = event.event_id
        params[f"type_{index}"] = event.type
        params[f"schema_version_{index}"] = event.schema_version
        params[f"data_{index}"] = event.data
        params[f"metadata_{index}"] = event.metadata
    return params


def violated_key(error: sa.exc.IntegrityError) -> str | None:
    """The unique key an insert broke, from asyncpg's error or SQLite's message."""
    driver_error = getattr(error.orig, "orig", None) or error.orig
    name = getattr(driver_error, "constraint_name", None)
    if name is not None:
        return str(name)
    # SQLite names the columns, not the constraint.
    message = str(driver_error)
    if "UNIQUE constraint failed: events.stream_id, events.version" in message:
        return STREAM_VERSION_KEY
    if "UNIQUE constraint failed: events.event_id" in message:
        return EVENT_ID_KEY
    return None


def recorded(row: Sequence[Any], upcasters: Upcasters) -> RecordedEvent:
    """A stored row (SQLAlchemy or asyncpg, in ``event_columns`` order), upcast."""
    (position, stream_id, version, event_id, type_, stored_version, data, metadata,
     recorded_at, transaction_id) = row  # fmt: skip
    schema_version, data = upcasters.upcast(type_, stored_version, data)
    # Positional: keywords cost a fifth more, on every event a rebuild or the feed reads.
    return RecordedEvent(
        int(position), stream_id, int(version), event_id, type_, schema_version, data,
        metadata, recorded_at, int(transaction_id),
    )  # fmt: skip


def written(
    new: NewEvent,
    stream_id: str,
    version: int,
    position: int,
    transaction_id: int | str,
    recorded_at: datetime,
    upcasters: Upcasters,
) -> RecordedEvent:
    """An event as just written, with what the database gave it (position, transaction)."""
    row = (position, stream_id, version, new.event_id, new.type, new.schema_version, new.data,
           new.metadata, recorded_at, transaction_id)  # fmt: skip
    return recorded(row, upcasters)


async def append_in(
    conn: AsyncConnection,
    statements: EventStatements,
    upcasters: Upcasters,
    stream_id: str,
    expected_version: int,
    new: Sequence[NewEvent],
    recorded_at: datetime,
    *,
    retried_is_no_op: bool = True,
) -> list[RecordedEvent]:
    """Append ``new`` as versions ``expected_version + 1 ...`` of ``stream_id``, in ``conn``'s
    transaction: every event or none (see ``_append``).

    When it inserts none, a lookup tells why: every id already stored on this stream is an
    append being retried, which returns the stored events and changes nothing; some ids, or
    ids on another stream, are an ``EventIdConflict``; otherwise the stream is not at
    ``expected_version``: ``ConcurrencyError`` (also for a retry, unless
    ``retried_is_no_op``). A concurrent writer committing the same version
    first makes the insert fail on the unique key: ``ConcurrencyError`` too, and on PostgreSQL
    the transaction is aborted (no savepoint: the caller retries in a new one).
    """
    check_append(expected_version, new, recorded_at)
    if not new:
        return []
    params = append_params(stream_id, expected_version, new, recorded_at)
    try:
        result = await conn.execute(statements.append(len(new)), params)
    except sa.exc.IntegrityError as error:
        if violated_key(error) in EVENT_KEYS:
            raise ConcurrencyError(stream_id, expected_version) from error
        raise
    inserted = sorted(result.all(), key=lambda row: int(row.version))
    if inserted:
        return [
            written(
                event,
                stream_id,
                row.version,
                row.position,
                row.transaction_id,
                recorded_at,
                upcasters,
            )
            for event, row in zip(new, inserted, strict=True)
        ]
    stored = [
        recorded(row, upcasters)
        for row in await conn.execute(statements.by_id, {"event_ids": [e.event_id for e in new]})
    ]
    retried = len(stored) == len(new) and all(e.stream_id == stream_id for e in stored)
    if retried and retried_is_no_op:
        return stored
    if stored and not retried:
        raise EventIdConflict(stream_id, [e.event_id for e in stored])
    actual = (await conn.execute(STREAM_VERSION, {"stream_id": stream_id})).scalar_one()
    raise ConcurrencyError(stream_id, expected_version, int(actual))
