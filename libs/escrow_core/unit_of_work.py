"""How one attempt at a command reads and writes, per backend.

PostgreSQL (the production path): a pooled asyncpg connection and no transaction held while
deciding. The snapshot is one query; everything the command writes - its events, the
``order_view`` row, the ``party_balances`` entries and the Idempotency-Key answer - goes in
ONE statement, atomic by itself and guarded by the stream version (it inserts nothing if the
stream has moved since the read). That is the same optimistic concurrency the event store has
always had (a read at READ COMMITTED inside a transaction guards nothing more), in two round
trips. A race lost at the unique key aborts the whole statement.

SQLite: single writer, so load, decide and write sit in one BEGIN IMMEDIATE transaction.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg
import orjson

from escrow_core.clock import Clock
from escrow_core.domain.order import OrderState
from escrow_core.idempotency import SAVE_RESPONSE_POSTGRESQL, StoredResponse, save_response
from escrow_core.projections import order_view, party_balances
from escrow_core.projections.party_balances import Balance
from escrow_core.store import ConcurrencyError, Database, EventStore, NewEvent, RecordedEvent
from escrow_core.store.schema import STREAM_VERSION_KEY


@dataclass(frozen=True, slots=True)
class Commit:
    """Everything one command writes."""

    order_id: str
    expected_version: int
    events: list[NewEvent]
    after: OrderState
    balances: list[tuple[int, Balance]]  # (the event's version, the change to each party)
    recorded_at: datetime
    answer: tuple[str, str, StoredResponse] | None  # (scope, key, response)


class CommandSession(Protocol):
    async def snapshot(self, order_id: str) -> OrderState | None: ...

    async def stream(self, order_id: str) -> list[RecordedEvent]: ...

    async def now(self) -> datetime: ...

    async def commit(self, commit: Commit) -> list[RecordedEvent]: ...

    async def save_answer(self, scope: str, key: str, response: StoredResponse) -> None: ...


@asynccontextmanager
async def command_session(
    database: Database, store: EventStore, clock: Clock
) -> AsyncIterator[CommandSession]:
    if database.dialect == "postgresql":
        async with database.raw() as connection:
            yield PostgresSession(connection, store, clock)
    else:
        async with database.transaction() as conn:
            yield SqlSession(conn, store, clock)


@asynccontextmanager
async def read_session(
    database: Database, store: EventStore, clock: Clock
) -> AsyncIterator[CommandSession]:
    if database.dialect == "postgresql":
        async with database.raw() as connection:
            yield PostgresSession(connection, store, clock)
    else:
        async with database.read() as conn:
            yield SqlSession(conn, store, clock)


class SqlSession:
    """Through SQLAlchemy, inside the caller's transaction (SQLite)."""

    def __init__(self, conn: Any, store: EventStore, clock: Clock) -> None:
        self.conn = conn
        self.store = store
        self.clock = clock

    async def snapshot(self, order_id: str) -> OrderState | None:
        return await order_view.load(self.conn, order_id)

    async def stream(self, order_id: str) -> list[RecordedEvent]:
        return await self.store.read_stream(self.conn, order_id)

    async def now(self) -> datetime:
        return await self.clock.now(self.conn)

    async def commit(self, commit: Commit) -> list[RecordedEvent]:
        recorded = await self.store.append(
            self.conn,
            commit.order_id,
            commit.expected_version,
            commit.events,
            recorded_at=commit.recorded_at,
        )
        await order_view.upsert(self.conn, commit.order_id, commit.after)
        positions = {r.version: r.position for r in recorded}
        rows = [
            row
            for version, delta in commit.balances
            for row in party_balances.rows_for(
                commit.order_id, commit.after, delta, positions[version]
            )
        ]
        await party_balances.insert(self.conn, rows)
        if commit.answer is not None:
            await save_response(self.conn, *commit.answer)
        return recorded

    async def save_answer(self, scope: str, key: str, response: StoredResponse) -> None:
        await save_response(self.conn, scope, key, response)


_SNAPSHOT = "SELECT state FROM order_view WHERE order_id = $1"
_STREAM = (
    "SELECT position, stream_id, version, event_id, type, schema_version, data, metadata, "
    "recorded_at, transaction_id::text FROM events WHERE stream_id = $1 ORDER BY version"
)
_COMMIT = """
WITH new_events AS (
    SELECT * FROM unnest($3::int[], $4::uuid[], $5::text[], $6::int[], $7::jsonb[])
        AS n(version, event_id, type, schema_version, data)
), inserted AS (
    INSERT INTO events (stream_id, version, event_id, type, schema_version, data, metadata,
                        recorded_at)
    SELECT $1, n.version, n.event_id, n.type, n.schema_version, n.data, $8::jsonb, $9
    FROM new_events n
    WHERE (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1) = $2
    ORDER BY n.version
    RETURNING position, version, transaction_id::text AS transaction_id
), view AS (
    INSERT INTO order_view (order_id, version, status, buyer_id, supplier_id, currency, total,
                            next_timer_at, state, created_at, updated_at)
    SELECT $1, $10, $11, $12, $13, $14, $15, $16, $17::jsonb, $18, $19
    WHERE EXISTS (SELECT 1 FROM inserted)
    ON CONFLICT (order_id) DO UPDATE SET version = EXCLUDED.version,
        status = EXCLUDED.status, next_timer_at = EXCLUDED.next_timer_at,
        state = EXCLUDED.state, updated_at = EXCLUDED.updated_at
), balances AS (
    INSERT INTO party_balances (party_id, currency, order_id, position, held, released,
                                refunded, fees)
    SELECT b.party_id, $14, $1, i.position, b.held, b.released, b.refunded, b.fees
    FROM unnest($20::int[], $21::text[], $22::bigint[], $23::bigint[], $24::bigint[],
                $25::bigint[]) AS b(version, party_id, held, released, refunded, fees)
    JOIN inserted i ON i.version = b.version
), answer AS (
    UPDATE idempotency_keys SET status = 'done', response_status = $28,
        response_body = $29, response_headers = $30::jsonb
    WHERE scope = $26 AND key = $27 AND EXISTS (SELECT 1 FROM inserted)
)
SELECT position, version, transaction_id FROM inserted
"""


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


class PostgresSession:
    """Raw asyncpg on a pooled connection, autocommit: one statement per round trip."""

    def __init__(self, connection: asyncpg.Connection, store: EventStore, clock: Clock) -> None:
        self.connection = connection
        self.store = store
        self.clock = clock

    async def snapshot(self, order_id: str) -> OrderState | None:
        document = await self.connection.fetchval(_SNAPSHOT, order_id)
        return None if document is None else order_view.from_document(document)

    async def stream(self, order_id: str) -> list[RecordedEvent]:
        rows = await self.connection.fetch(_STREAM, order_id)
        return [self.store.recorded(row) for row in rows]

    async def now(self) -> datetime:
        return await self.clock.now(self.connection)

    async def commit(self, commit: Commit) -> list[RecordedEvent]:
        after, events = commit.after, commit.events
        metadata = events[0].metadata  # one command: one metadata for all its events
        row = order_view.row_for(commit.order_id, after)
        parties = after.party_ids
        balances = [(v, p, d) for v, d in commit.balances for p in parties]
        scope, key, response = commit.answer or (None, None, None)
        try:
            rows = await self.connection.fetch(
                _COMMIT,
                commit.order_id,
                commit.expected_version,
                [commit.expected_version + 1 + i for i in range(len(events))],
                [e.event_id for e in events],
                [e.type for e in events],
                [e.schema_version for e in events],
                [_json(e.data) for e in events],
                _json(metadata),
                commit.recorded_at,
                row["version"],
                row["status"],
                row["buyer_id"],
                row["supplier_id"],
                row["currency"],
                row["total"],
                row["next_timer_at"],
                _json(row["state"]),
                row["created_at"],
                row["updated_at"],
                [v for v, _, _ in balances],
                [p for _, p, _ in balances],
                [d.held for _, _, d in balances],
                [d.released for _, _, d in balances],
                [d.refunded for _, _, d in balances],
                [d.fees for _, _, d in balances],
                scope,
                key,
                response.status if response else None,
                response.body.decode() if response else None,
                _json(response.headers) if response else None,
            )
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name == STREAM_VERSION_KEY:
                raise ConcurrencyError(commit.order_id, commit.expected_version) from error
            raise
        if not rows:
            raise ConcurrencyError(commit.order_id, commit.expected_version)
        by_version = {int(r["version"]): r for r in rows}
        return [
            RecordedEvent(
                position=int(by_version[commit.expected_version + 1 + i]["position"]),
                stream_id=commit.order_id,
                version=commit.expected_version + 1 + i,
                event_id=new.event_id,
                type=new.type,
                schema_version=new.schema_version,
                data=new.data,
                metadata=new.metadata,
                recorded_at=commit.recorded_at,
                transaction_id=int(by_version[commit.expected_version + 1 + i]["transaction_id"]),
            )
            for i, new in enumerate(events)
        ]

    async def save_answer(self, scope: str, key: str, response: StoredResponse) -> None:
        await self.connection.execute(
            SAVE_RESPONSE_POSTGRESQL,
            scope,
            key,
            response.status,
            response.body.decode(),
            _json(response.headers),
        )
