"""The event store: append to a stream, read it back, and tail the global log.

The store never begins or commits: every method runs inside the connection and transaction
its caller owns (one command = one transaction, committed at the boundary).
"""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.store import queries
from escrow_core.store.database import driver_connection
from escrow_core.store.errors import ConcurrencyError, EventIdConflict
from escrow_core.store.records import LOG_START, Checkpoint, NewEvent, RecordedEvent
from escrow_core.store.schema import EVENT_ID_KEY, STREAM_VERSION_KEY
from escrow_core.store.upcasting import Upcasters


class EventStore:
    """Streams of events with optimistic concurrency, over PostgreSQL or SQLite."""

    def __init__(self, upcasters: Upcasters | None = None) -> None:
        self.upcasters = upcasters if upcasters is not None else Upcasters()

    async def append(
        self,
        conn: AsyncConnection,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        recorded_at: datetime,
    ) -> list[RecordedEvent]:
        """Append ``events`` as versions ``expected_version + 1 ...`` of ``stream_id``.

        One statement in the normal case: the insert itself checks the stream's version and
        that none of the ids is stored, so it inserts all the events or none. When it inserts
        none, a lookup tells why:

        - every id is already stored on this stream: an append being retried, so this returns
          the stored events and changes nothing (even though the version has moved on);
        - some ids, or ids on another stream: ``EventIdConflict``;
        - otherwise the stream is not at ``expected_version`` (above or below it: a gap is
          never left): ``ConcurrencyError``. The transaction is still usable.

        A concurrent writer that commits the same version (or event id) first makes the insert
        fail on the unique key; that also raises ``ConcurrencyError``, but on PostgreSQL the
        failed statement has aborted the transaction. No savepoint is taken to save it (that
        would cost two round trips on every append): the caller rolls back and retries the
        command in a new transaction, where it re-reads and re-decides. (On SQLite writers
        hold the write lock from BEGIN IMMEDIATE, so this race cannot arise there.)

        An empty ``events`` appends nothing and checks nothing.
        """
        if expected_version < 0:
            raise ValueError("expected_version is 0 for a new stream, never negative")
        if not events:
            return []
        if recorded_at.tzinfo is None:
            raise ValueError("recorded_at must be timezone-aware")
        event_ids = [new.event_id for new in events]
        if len(set(event_ids)) != len(event_ids):
            raise ValueError("an append cannot carry the same event id twice")
        postgresql = conn.dialect.name == "postgresql"
        params: dict[str, Any] = {
            "stream_id": stream_id,
            "expected_version": expected_version,
            "recorded_at": recorded_at,
        }
        for index, new in enumerate(events):
            params[f"version_{index}"] = expected_version + 1 + index
            params[f"event_id_{index}"] = new.event_id
            params[f"type_{index}"] = new.type
            params[f"schema_version_{index}"] = new.schema_version
            params[f"data_{index}"] = new.data
            params[f"metadata_{index}"] = new.metadata
        try:
            result = await conn.execute(queries.append(len(events), postgresql), params)
        except sa.exc.IntegrityError as error:
            if _violated_key(error) in (STREAM_VERSION_KEY, EVENT_ID_KEY):
                raise ConcurrencyError(stream_id, expected_version) from error
            raise
        inserted = sorted(result.all(), key=lambda row: int(row.version))
        if not inserted:
            return await self._refused(conn, stream_id, expected_version, event_ids)
        recorded = []
        for new, row in zip(events, inserted, strict=True):
            schema_version, data = self.upcasters.upcast(new.type, new.schema_version, new.data)
            recorded.append(
                RecordedEvent(
                    position=int(row.position),
                    stream_id=stream_id,
                    version=int(row.version),
                    event_id=new.event_id,
                    type=new.type,
                    schema_version=schema_version,
                    data=data,
                    metadata=new.metadata,
                    recorded_at=recorded_at,
                    transaction_id=int(row.transaction_id),
                )
            )
        return recorded

    async def _refused(
        self,
        conn: AsyncConnection,
        stream_id: str,
        expected_version: int,
        event_ids: list[uuid.UUID],
    ) -> list[RecordedEvent]:
        """Why an append inserted nothing: a retried append, reused ids, or a moved stream."""
        postgresql = conn.dialect.name == "postgresql"
        rows = await conn.execute(queries.events_by_id(postgresql), {"event_ids": event_ids})
        stored = [self.recorded(row) for row in rows]
        if len(stored) == len(event_ids) and all(e.stream_id == stream_id for e in stored):
            return stored
        if stored:
            raise EventIdConflict(stream_id, [e.event_id for e in stored])
        actual = await self.stream_version(conn, stream_id)
        raise ConcurrencyError(stream_id, expected_version, actual)

    async def read_stream(
        self,
        conn: AsyncConnection,
        stream_id: str,
        *,
        after_version: int = 0,
        up_to_version: int | None = None,
    ) -> list[RecordedEvent]:
        """The stream's events with ``after_version < version <= up_to_version``, in order."""
        postgresql = conn.dialect.name == "postgresql"
        params: dict[str, Any] = {"stream_id": stream_id, "after_version": after_version}
        if up_to_version is not None:
            params["up_to_version"] = up_to_version
        statement = queries.read_stream(postgresql, bounded=up_to_version is not None)
        return [self.recorded(row) for row in await conn.execute(statement, params)]

    async def stream_version(self, conn: AsyncConnection, stream_id: str) -> int:
        """The stream's last version; 0 when it has no events."""
        result = await conn.execute(queries.STREAM_VERSION, {"stream_id": stream_id})
        return int(result.scalar_one())

    async def read_log(
        self, conn: AsyncConnection, after: Checkpoint = LOG_START, *, limit: int = 1000
    ) -> list[RecordedEvent]:
        """Up to ``limit`` events of every stream after ``after``, in commit-safe order.

        Keep the last event's ``checkpoint`` (the pair, not the position) and pass it back.
        On PostgreSQL an event whose transaction might still be running is held back, so
        an empty answer means "nothing safe to read yet", not the end of the log for good.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if conn.dialect.name == "postgresql":
            # The hottest read there is (feeds, rebuilds, the webhook dispatcher): straight
            # through asyncpg, in whatever transaction ``conn`` has open.
            driver = await driver_connection(conn)
            rows = await driver.fetch(
                queries.READ_LOG_POSTGRESQL_SQL, str(after.transaction_id), after.position, limit
            )
        else:
            params = {"position": after.position, "limit": limit}
            rows = await conn.execute(queries.READ_LOG_SQLITE, params)
        return [self.recorded(row) for row in rows]

    async def log_head(self, conn: AsyncConnection) -> Checkpoint:
        """The checkpoint of the last event readable now: where "from now" subscribers start."""
        if conn.dialect.name == "postgresql":
            row = (await conn.execute(queries.LOG_HEAD_POSTGRESQL)).one_or_none()
            return LOG_START if row is None else Checkpoint(int(row[0]), int(row[1]))
        position = (await conn.execute(queries.LOG_HEAD_SQLITE)).scalar_one()
        return Checkpoint(0, int(position))

    def recorded(self, row: Sequence[Any]) -> RecordedEvent:
        """A stored row (SQLAlchemy or asyncpg) as a RecordedEvent, upcast."""
        (position, stream_id, version, event_id, type_, stored_version, data, metadata,
         recorded_at, transaction_id) = row  # fmt: skip
        schema_version, data = self.upcasters.upcast(type_, stored_version, data)
        return RecordedEvent(
            position=int(position),
            stream_id=stream_id,
            version=int(version),
            event_id=event_id,
            type=type_,
            schema_version=schema_version,
            data=data,
            metadata=metadata,
            recorded_at=recorded_at,
            transaction_id=int(transaction_id),
        )


def _violated_key(error: sa.exc.IntegrityError) -> str | None:
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
