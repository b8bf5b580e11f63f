"""``PostgresStore``: the hot paths in raw asyncpg, one statement per round trip."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg
import orjson
import sqlalchemy as sa
import structlog
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from escrow_core.store import event_sql as ev
from escrow_core.store import statements as q
from escrow_core.store.engines import engine_options, replace_closed_connections
from escrow_core.store.errors import translating_unavailable
from escrow_core.store.interface import EVENTS_CHANNEL
from escrow_core.store.money_statements import POSTING_COLUMNS
from escrow_core.store.postgres import listening, restore, sql
from escrow_core.store.postgres.session import PostgresSession, json_text, money_out_values
from escrow_core.store.records import (
    LOG_START,
    BalanceChange,
    Checkpoint,
    KeyClaim,
    KeyRecord,
    LogFilter,
    MoneyOutRow,
    NewEvent,
    OrderRow,
    PerformanceCounts,
    PerformanceOrder,
    Posting,
    RecordedEvent,
)
from escrow_core.store.schema import events, order_view
from escrow_core.store.shared import CoreStore
from escrow_core.store.types import JSONDocument, UTCDateTime, UUIDText

log = structlog.get_logger("escrow.store")
# How often a one-shot reader of the whole log asks again while events are held back.
POLL_SECONDS = 0.1
# A checkout waits this long for a connection (all busy, or the server slow to accept) before
# the request is answered "database unavailable", well within a client's own timeout.
ACQUIRE_TIMEOUT_SECONDS = 10.0
# After a commit signal, the next waits this long: the commits meanwhile share it. The first
# commit after a quiet spell is signalled at once; under load a listener hears at most ~100
# signals a second, not one per command (at one writer, a signal per command was a second
# transaction per command, and as much of the writer's Python as its write: bench/README.md).
SIGNAL_SPACING_SECONDS = 0.01
_BALANCE_COLUMNS = (
    "party_id", "currency", "order_id", "position", "held", "released", "refunded", "fees",
)  # fmt: skip


class PostgresStore(CoreStore):
    dialect: Literal["postgresql", "sqlite"] = "postgresql"

    def engines(self) -> tuple[AsyncEngine, AsyncEngine]:
        # The hot paths' own asyncpg pool, opened on first use.
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()
        # Commit signals due, sent by one task at a time (signal_soon).
        self._signals_due: set[str] = set()
        self._signaller: asyncio.Task[None] | None = None
        # Statements here are prepared once per connection (asyncpg's statement cache) and
        # PostgreSQL may then settle on a generic plan, made with the statistics of the
        # moment: the sender's claim (a join and an anti-join over webhook_deliveries),
        # planned while the table was nearly empty, kept its plan as the table grew and took
        # seconds a claim, and a soak's webhooks fell minutes behind. Custom plans cost a
        # planning per execution and follow the table. (The hot paths' raw pool runs
        # primary-key statements, whose generic plans stay right.)
        custom_plans = {"plan_cache_mode": "force_custom_plan"}
        writer = create_async_engine(
            self.url,
            **engine_options(self.pool_size),
            connect_args={"server_settings": custom_plans},
        )
        # Reads in autocommit on read-only sessions: a read costs one round trip, not three
        # (BEGIN, query, ROLLBACK), and a stray write still fails loudly.
        reader = create_async_engine(
            self.url,
            **engine_options(self.pool_size),
            isolation_level="AUTOCOMMIT",
            connect_args={
                "server_settings": {**custom_plans, "default_transaction_read_only": "on"}
            },
        )
        return replace_closed_connections(writer), replace_closed_connections(reader)

    def event_statements(self) -> ev.EventStatements:
        log = sa.text(sql.READ_LOG.named).columns(
            sa.column("position", sa.BigInteger),
            sa.column("stream_id", sa.Text),
            sa.column("version", sa.Integer),
            sa.column("event_id", UUIDText),
            sa.column("type", sa.Text),
            sa.column("schema_version", sa.Integer),
            sa.column("data", JSONDocument),
            sa.column("metadata", JSONDocument),
            sa.column("recorded_at", UTCDateTime),
            sa.column("transaction_id", sa.Text),
        )
        return ev.EventStatements(sa.cast(events.c.transaction_id, sa.Text), log)

    # --- connections ----------------------------------------------------------------------
    @asynccontextmanager
    async def raw(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled asyncpg connection outside any transaction: the hot paths' own pool (a
        checkout through SQLAlchemy's costs more than the statement's Python side)."""
        async with translating_unavailable():
            pool = self._pool or await self._open_pool()
            async with pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
                yield connection

    async def _open_pool(self) -> asyncpg.Pool:
        async with self._pool_lock:
            if self._pool is None:
                dsn = sa.make_url(self.url).set(drivername="postgresql")
                self._pool = await asyncpg.create_pool(
                    dsn.render_as_string(hide_password=False),
                    min_size=1,
                    max_size=self.pool_size,
                    init=_json_codecs,
                    reset=_nothing_to_reset,
                )
            return self._pool

    async def dispose(self) -> None:
        if self._signaller is not None and not self._signaller.done():
            await asyncio.gather(self._signaller, return_exceptions=True)
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        await super().dispose()

    def upsert(self, table: sa.Table) -> Any:
        return postgresql.insert(table)

    @asynccontextmanager
    async def command(self) -> AsyncIterator[PostgresSession]:
        async with self.raw() as connection:
            session = PostgresSession(self, connection)
            try:
                yield session
            finally:
                try:
                    await session.release_key()
                except BaseException as error:
                    # A connection that may still hold the key's lock must not go back to the
                    # pool: closed, it releases the lock.
                    _close(connection)
                    if not isinstance(error, Exception):
                        raise

    # --- commit signals -------------------------------------------------------------------
    async def listen(self, channels: Sequence[str], wake: Callable[[str], None]) -> None:
        await listening.listen(self.url, channels, wake)

    def signal_soon(self, channel: str) -> None:
        """Signal ``channel`` now that the caller's write has committed, in a statement of its
        own (``sql.SIGNAL`` says why not inside the write). Coalesced: while one signal is on
        its way, and for ``SIGNAL_SPACING_SECONDS`` after it, the commits meanwhile are
        covered by the one sent after it."""
        self._signals_due.add(channel)
        if self._signaller is None or self._signaller.done():
            self._signaller = asyncio.create_task(self._send_signals())

    async def _send_signals(self) -> None:
        while self._signals_due:
            channels, self._signals_due = self._signals_due, set()
            try:
                async with self.raw() as connection:
                    for channel in sorted(channels):
                        await connection.fetchval(sql.SIGNAL.sql, channel)
            except Exception as error:
                # A signal lost costs the listener one poll interval, never an event.
                log.warning("commit signal not sent", error=str(error))
                return
            await asyncio.sleep(SIGNAL_SPACING_SECONDS)

    async def signal_in(self, conn: AsyncConnection, channel: str) -> None:
        await conn.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": channel})

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        recorded_at: datetime,
    ) -> list[RecordedEvent]:
        # An endpoint's own events (its test event among them) wake the dispatcher too.
        async with self.transaction() as conn:
            written = await self.append_in(conn, stream_id, expected_version, events, recorded_at)
            await self.signal_in(conn, EVENTS_CHANNEL)
        return written

    # --- hot reads ------------------------------------------------------------------------
    async def snapshot(self, order_id: str) -> dict[str, Any] | None:
        async with self.raw() as connection:
            document: dict[str, Any] | None = await connection.fetchval(sql.SNAPSHOT.sql, order_id)
        return document

    async def find_party(self, party_id: str) -> dict[str, Any] | None:
        async with self.raw() as connection:
            row = await connection.fetchrow(sql.PARTY.sql, party_id)
        return None if row is None else dict(row)

    async def find_parties(self, party_ids: Sequence[str]) -> list[dict[str, Any]]:
        async with self.raw() as connection:
            rows = await connection.fetch(sql.PARTIES.sql, list(party_ids))
        return [dict(row) for row in rows]

    async def now_raw(self, connection: asyncpg.Connection) -> Any:
        wall = q.wall_clock()
        if not self.sandbox:
            return wall
        offset = await connection.fetchval(sql.CLOCK_OFFSET.sql)
        return wall + timedelta(seconds=offset or 0)

    async def now(self) -> Any:
        if not self.sandbox:
            return q.wall_clock()
        async with self.raw() as connection:
            return await self.now_raw(connection)

    async def claim_key(self, claim: KeyClaim) -> KeyRecord | None:
        # The common case, a fresh key, in one round trip; the rest (a stored answer, a claim
        # to take over) as both backends do it.
        values = {**q.fresh_claim(claim), "now": claim.now}
        async with self.raw() as connection:
            if await connection.fetchval(sql.CLAIM_KEY.sql, *sql.CLAIM_KEY.args(values)):
                return None
        return await super().claim_key(claim)

    # --- the log --------------------------------------------------------------------------
    async def read_log(self, after: Checkpoint, *, limit: int = 1000) -> list[RecordedEvent]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        values = {"transaction_id": str(after.transaction_id), "position": after.position}
        async with self.raw() as connection:
            rows = await connection.fetch(
                sql.READ_LOG.sql, *sql.READ_LOG.args({**values, "limit": limit})
            )
        return [self.recorded(row) for row in rows]

    async def read_log_matching(
        self, after: Checkpoint, only: LogFilter, *, limit: int
    ) -> list[RecordedEvent]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        values: dict[str, Any] = {
            "transaction_id": str(after.transaction_id),
            "position": after.position,
            "stream_id": only.stream_id,
            "types": list(only.types),
            "limit": limit,
        }
        if only.stream_id is not None:
            statement = sql.READ_LOG_OF_STREAM
        elif only.types:
            statement = sql.READ_LOG_OF_TYPES
        else:
            return await self.read_log(after, limit=limit)
        async with self.raw() as connection:
            rows = await connection.fetch(statement.sql, *statement.args(values))
        return [self.recorded(tuple(row)[:10]) for row in rows]

    async def log_head(self) -> Checkpoint:
        async with self.raw() as connection:
            row = await connection.fetchrow(sql.LOG_HEAD.sql)
        return LOG_START if row is None else Checkpoint(int(row[0]), int(row[1]))

    async def whole_log(self, *, batch_size: int) -> AsyncIterator[list[RecordedEvent]]:
        # An empty read_log answer means "nothing safe to read yet", not the end: while any
        # transaction on the server (xids are server-wide, so one in another database too) is
        # older than the newest events, those are held back. A one-shot reader that took the
        # first empty answer for the end would silently rebuild or verify part of the log. So
        # it notes the newest writer's xid first and reads on until the horizon passes it.
        async with self.raw() as connection:
            last_writer = int(await connection.fetchval(sql.LAST_WRITER.sql))
        checkpoint = LOG_START
        while True:
            # Horizon first: each statement takes a new snapshot, and the horizon only moves
            # on, so an empty read after it has passed really is the end.
            async with self.raw() as connection:
                caught_up = int(await connection.fetchval(sql.SNAPSHOT_XMIN.sql)) > last_writer
            batch = await self.read_log(checkpoint, limit=batch_size)
            if batch:
                checkpoint = batch[-1].checkpoint
                yield batch
            elif caught_up:
                return
            else:
                await asyncio.sleep(POLL_SECONDS)

    def metadata_has(self, key: str, value: str) -> sa.ColumnElement[bool]:
        # Containment, which order_view_metadata_idx (GIN, jsonb_path_ops) serves.
        wanted = sa.cast(sa.literal(json_text({key: value})), postgresql.JSONB)
        return order_view.c.metadata.op("@>")(wanted)

    # --- projections ----------------------------------------------------------------------
    async def write_projections(
        self,
        rows: Sequence[OrderRow],
        balances: Sequence[BalanceChange],
        postings: Sequence[Posting] = (),
        money_out: Sequence[MoneyOutRow] = (),
    ) -> None:
        async with self.raw() as connection, connection.transaction():
            if rows:
                columns = {
                    name: [getattr(row, name) for row in rows] for name in sql.UPSERT_ROWS.names
                }
                columns["state"] = [json_text(row.state) for row in rows]
                columns["metadata"] = [json_text(row.metadata) for row in rows]
                await connection.execute(sql.UPSERT_ROWS.sql, *sql.UPSERT_ROWS.args(columns))
            if balances:
                # In _BALANCE_COLUMNS order, without a dict per row (a rebuild writes ~100k).
                records = [
                    (c.party_id, c.currency, c.order_id, q.position_of(c), c.held, c.released,
                     c.refunded, c.fees)
                    for c in balances
                ]  # fmt: skip
                await connection.copy_records_to_table(
                    "party_balances", records=records, columns=list(_BALANCE_COLUMNS)
                )
            if postings:
                await connection.copy_records_to_table(
                    "ledger_postings",
                    records=[tuple(getattr(p, name) for name in POSTING_COLUMNS) for p in postings],
                    columns=list(POSTING_COLUMNS),
                )
            if money_out:
                values = money_out_values(money_out)
                await connection.execute(
                    sql.UPSERT_MONEY_OUT.sql, *sql.UPSERT_MONEY_OUT.args(values)
                )

    async def _write_performance(
        self,
        conn: AsyncConnection,
        rows: Sequence[PerformanceOrder],
        deltas: Sequence[PerformanceCounts],
    ) -> None:
        """The SQLAlchemy statements' rows and counters as two array statements on the
        transaction's own asyncpg connection: through SQLAlchemy (a dict per row, its
        executemany) they were a quarter of a rebuild's time."""
        if not rows and not deltas:
            return
        connection = (await conn.get_raw_connection()).driver_connection
        assert connection is not None
        if rows:
            statement = sql.UPSERT_PERFORMANCE_ORDERS
            columns = {name: [getattr(r, name) for r in rows] for name in statement.names}
            columns["state"] = [None if r.state is None else json_text(r.state) for r in rows]
            await connection.execute(statement.sql, *statement.args(columns))
        if deltas:
            statement = sql.ADD_PERFORMANCE_COUNTS
            columns = {name: [getattr(d, name) for d in deltas] for name in statement.names}
            await connection.execute(statement.sql, *statement.args(columns))

    # --- escrow import --------------------------------------------------------------------
    async def restore_rows(
        self, conn: AsyncConnection, table: sa.Table, rows: Sequence[dict[str, Any]]
    ) -> None:
        if not rows:
            return
        await conn.execute(restore.restoring_insert(table, list(rows[0])), list(rows))
        if (continue_keys := restore.continue_keys(table)) is not None:
            await conn.execute(continue_keys)

    async def writer_transaction_id(self, conn: AsyncConnection) -> int:
        return int((await conn.execute(sa.text("SELECT pg_current_xact_id()::text"))).scalar_one())


def _close(connection: asyncpg.Connection) -> None:
    # InterfaceError: the pool has already let go of it (the connection was lost, the lock too).
    with contextlib.suppress(asyncpg.InterfaceError):
        connection.terminate()


async def _nothing_to_reset(connection: asyncpg.Connection) -> None:
    """Release without asyncpg's default reset query (advisory locks, cursors, LISTEN, SET):
    this pool uses none of them, and that query was a second round trip on every command.
    asyncpg still rolls back a transaction left open before calling this."""


async def _json_codecs(connection: asyncpg.Connection) -> None:
    """JSON in as text, out as Python values, as SQLAlchemy's connections have it (binary
    format, so COPY can carry it too; jsonb's binary form is a version byte, then text)."""
    await connection.set_type_codec(
        "json", schema="pg_catalog", format="binary", encoder=str.encode, decoder=orjson.loads
    )
    await connection.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        format="binary",
        encoder=lambda text: b"\x01" + text.encode(),
        decoder=lambda data: orjson.loads(data[1:]),
    )
