"""The SQLite adapter (aiosqlite through SQLAlchemy Core): the embedded default.

One writer at a time: writers begin with ``BEGIN IMMEDIATE`` under a busy timeout, so
concurrent commands queue instead of failing, and a command's load, decide and write sit in one
transaction. Positions are handed out under that lock, so commit order is position order and
the log is read by position alone.
"""

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from escrow_core.store import event_sql as ev
from escrow_core.store import statements as q
from escrow_core.store.engines import engine_options
from escrow_core.store.errors import ConcurrencyError, DuplicateClientReference
from escrow_core.store.records import (
    LOG_START,
    BalanceChange,
    Checkpoint,
    Commit,
    KeyRecord,
    LogFilter,
    MoneyOutRow,
    OrderRow,
    Posting,
    RecordedEvent,
    StoredAnswer,
)
from escrow_core.store.schema import events, order_view
from escrow_core.store.shared import CoreStore

# Long enough that queued writers wait for their turn rather than fail.
BUSY_TIMEOUT_SECONDS = 30
# Columns an order's row keeps from its first write.
# SQLite names the columns of the unique index broken, not the index.
_CLIENT_REFERENCE_TAKEN = (
    "UNIQUE constraint failed: order_view.buyer_id, order_view.client_reference"
)
_KEPT = ("order_id", "created_at", "buyer_id", "supplier_id", "currency", "total")


class SqliteStore(CoreStore):
    dialect: Literal["postgresql", "sqlite"] = "sqlite"

    def engines(self) -> tuple[AsyncEngine, AsyncEngine]:
        # This process's writers take turns in arrival order before asking SQLite for its
        # write lock: SQLite's busy handler polls with growing sleeps, and a writer sleeping
        # in it loses the lock again and again to a steady stream of short transactions (a
        # webhook replay's batches kept a command waiting ~1 s). Other processes still
        # queue on the busy timeout.
        self._write_turn = asyncio.Lock()
        parsed = sa.make_url(self.url)
        if parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory":
            raise ValueError("SQLite needs a database file: reader and writer share it")
        return (
            _engine(self.url, self.pool_size, begin="BEGIN IMMEDIATE", query_only=False),
            _engine(self.url, self.pool_size, begin="BEGIN", query_only=True),
        )

    def event_statements(self) -> ev.EventStatements:
        no_transaction_id: sa.ColumnElement[Any] = sa.literal_column("0")
        log = (
            sa.select(*ev.event_columns(no_transaction_id))
            .where(events.c.position > sa.bindparam("position", type_=sa.BigInteger))
            .order_by(events.c.position)
            .limit(sa.bindparam("limit", type_=sa.Integer))
        )
        return ev.EventStatements(no_transaction_id, log)

    def upsert(self, table: sa.Table) -> Any:
        return sqlite.insert(table)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self._write_turn, super().transaction() as conn:
            yield conn

    @asynccontextmanager
    async def command(self) -> AsyncIterator["SqliteSession"]:
        async with self.transaction() as conn:
            yield SqliteSession(self, conn)

    # --- the log --------------------------------------------------------------------------
    async def read_log(self, after: Checkpoint, *, limit: int = 1000) -> list[RecordedEvent]:
        async with self.read() as conn:
            return await self.read_log_in(conn, after, limit)

    async def read_log_matching(
        self, after: Checkpoint, only: LogFilter, *, limit: int
    ) -> list[RecordedEvent]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        c = events.c
        query = (
            sa.select(*self.events.columns)
            .where(c.position > after.position)
            .order_by(c.position)
            .limit(limit)
        )
        if only.types:
            query = query.where(c.type.in_(only.types))
        if only.stream_id is not None:
            query = query.where(c.stream_id == only.stream_id)
        async with self.read() as conn:
            return [self.recorded(row) for row in await conn.execute(query)]

    async def log_head(self) -> Checkpoint:
        async with self.read() as conn:
            position = (await conn.execute(sa.select(sa.func.max(events.c.position)))).scalar()
        return Checkpoint(0, int(position or 0))

    async def whole_log(self, *, batch_size: int) -> AsyncIterator[list[RecordedEvent]]:
        checkpoint = LOG_START
        while batch := await self.read_log(checkpoint, limit=batch_size):
            checkpoint = batch[-1].checkpoint
            yield batch

    def metadata_has(self, key: str, value: str) -> sa.ColumnElement[bool]:
        # json_each, not json_extract: a key is any text, a JSON path would need escaping.
        pair = sa.func.json_each(order_view.c.metadata).table_valued("key", "value")
        return sa.exists().where(pair.c.key == key, pair.c.value == value)

    # --- projections ----------------------------------------------------------------------
    async def write_projections(
        self,
        rows: Sequence[OrderRow],
        balances: Sequence[BalanceChange],
        postings: Sequence[Posting] = (),
        money_out: Sequence[MoneyOutRow] = (),
    ) -> None:
        async with self.transaction() as conn:
            await self.upsert_rows(conn, rows)
            await self.insert_balances(conn, balances)
            await self.write_money_out(conn, postings, money_out)

    async def upsert_rows(self, conn: AsyncConnection, rows: Sequence[OrderRow]) -> None:
        if not rows:
            return
        insert = self.upsert(order_view)
        columns = [column.name for column in order_view.columns if column.name not in _KEPT]
        upsert = insert.on_conflict_do_update(
            index_elements=["order_id"], set_={name: insert.excluded[name] for name in columns}
        )
        await conn.execute(upsert, [q.order_row(row) for row in rows])

    # --- escrow import --------------------------------------------------------------------
    async def restore_rows(
        self, conn: AsyncConnection, table: sa.Table, rows: Sequence[dict[str, Any]]
    ) -> None:
        # A rowid given is kept, and AUTOINCREMENT's counter moves past it by itself.
        if rows:
            await conn.execute(table.insert(), list(rows))

    async def writer_transaction_id(self, conn: AsyncConnection) -> int:
        return 0


class SqliteSession:
    """One attempt at a command, in one BEGIN IMMEDIATE transaction."""

    def __init__(self, store: SqliteStore, conn: AsyncConnection) -> None:
        self.store = store
        self.conn = conn

    async def snapshot(self, order_id: str) -> dict[str, Any] | None:
        return await q.snapshot(self.conn, order_id)

    async def stream(self, order_id: str) -> list[RecordedEvent]:
        return await self.store.stream_in(self.conn, order_id)

    async def now(self) -> datetime:
        return await self.store.now_in(self.conn)

    async def hold_key(
        self,
        scope: str,
        key: str,
        now: datetime,
        *,
        wait_seconds: float,
        snapshot_of: str | None = None,
    ) -> KeyRecord | None:
        # The session's BEGIN IMMEDIATE transaction is the turn: a duplicate waits for the
        # write lock (the busy timeout), and then reads the answer this one kept.
        return await self.store.live_answer_in(self.conn, scope, key, now)

    async def commit(self, commit: Commit) -> list[RecordedEvent]:
        ev.check_commit(commit)
        if commit.answer is not None and not await self.store.keep_answer(self.conn, commit.answer):
            raise ConcurrencyError(commit.stream_id, commit.expected_version)
        recorded = await ev.append_in(
            self.conn,
            self.store.events,
            self.store.upcasters,
            commit.stream_id,
            commit.expected_version,
            commit.events,
            commit.recorded_at,
            retried_is_no_op=False,  # a command's write goes in whole once, or not at all
        )
        positions = {r.version: r.position for r in recorded}
        try:
            await self.store.upsert_rows(self.conn, [commit.view])
        except sa.exc.IntegrityError as error:
            # The session's transaction rolls back as the error leaves it: nothing is kept.
            if _CLIENT_REFERENCE_TAKEN in str(error.orig):
                view = commit.view
                raise DuplicateClientReference(view.buyer_id, view.client_reference) from error
            raise
        await self.store.insert_balances(
            self.conn,
            [
                replace(change, position=positions[change.event_version])
                for change in commit.balances
            ],
        )
        await self.store.write_money_out(self.conn, commit.postings, commit.money_out)
        return recorded

    async def save_answer(self, answer: StoredAnswer) -> None:
        await self.store.keep_answer(self.conn, answer)


def _engine(url: str, pool_size: int, *, begin: str, query_only: bool) -> AsyncEngine:
    engine = create_async_engine(
        url, **engine_options(pool_size), connect_args={"timeout": BUSY_TIMEOUT_SECONDS}
    )
    pragmas = [
        f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}",
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
    ]
    if query_only:
        pragmas.append("PRAGMA query_only = ON")

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module, which would otherwise BEGIN
        # (deferred) lazily before the first write.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        # Writers take the write lock up front (BEGIN IMMEDIATE), so they queue on the busy
        # timeout; a deferred transaction that upgrades to writing fails with "database is
        # locked" instead of waiting. Readers keep deferred BEGIN: WAL lets them run alongside.
        connection.exec_driver_sql(begin)

    return engine
