"""What both adapters run alike: SQLAlchemy Core statements that read the same on PostgreSQL
and SQLite. Each adapter subclasses ``CoreStore``, adds its engines and overrides the statements
its backend spells differently or runs faster another way.
"""

from abc import abstractmethod
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from escrow_core.store import event_sql as ev
from escrow_core.store import statements as q
from escrow_core.store.interface import DeliveryPlanner, Store
from escrow_core.store.migrations import schema_is_current
from escrow_core.store.records import (
    BalanceChange,
    BalanceTotals,
    Checkpoint,
    DisputeQuery,
    KeyClaim,
    KeyRecord,
    NewEvent,
    OrderQuery,
    OrderRow,
    RecordedEvent,
    StoredAnswer,
)
from escrow_core.store.schema import (
    idempotency_keys,
    order_view,
    party_balances,
    webhook_deliveries,
    webhook_dispatch_checkpoint,
)
from escrow_core.store.upcasting import Upcasters


class CoreStore(Store):
    """The backend-neutral half of a Store; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        sandbox: bool = False,
        upcasters: Upcasters | None = None,
        pool_size: int = 10,
    ) -> None:
        self.url = url
        self.pool_size = pool_size
        self.writer, self.reader = self.engines()
        self.sandbox = sandbox
        self.upcasters = upcasters if upcasters is not None else Upcasters()
        self.events = self.event_statements()

    @abstractmethod
    def engines(self) -> tuple[AsyncEngine, AsyncEngine]:
        """The (writer, reader) SQLAlchemy engines on ``url``, configured for the backend."""

    @abstractmethod
    def event_statements(self) -> ev.EventStatements:
        """The statements on ``events`` whose spelling depends on the backend."""

    @abstractmethod
    def upsert(self, table: sa.Table) -> Any:
        """An INSERT that knows this backend's ``ON CONFLICT``."""

    async def insert_ignoring(
        self,
        conn: AsyncConnection,
        table: sa.Table,
        rows: Sequence[dict[str, Any]],
        keys: list[str],
    ) -> int:
        if not rows:
            return 0
        insert = self.upsert(table).on_conflict_do_nothing(index_elements=keys)
        # Counted from RETURNING: asyncpg's executemany reports no rowcount (-1).
        returning = insert.returning(*(table.c[key] for key in keys))
        return len((await conn.execute(returning, list(rows))).all())

    # --- connections ----------------------------------------------------------------------
    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self.writer.begin()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.reader.connect() as conn:
            transaction = await conn.begin()
            try:
                yield conn
            finally:
                if transaction.is_active:
                    await transaction.rollback()

    async def dispose(self) -> None:
        await self.writer.dispose()
        if self.reader.sync_engine.pool is not self.writer.sync_engine.pool:
            await self.reader.dispose()

    def recorded(self, row: Sequence[Any]) -> RecordedEvent:
        """A stored row (SQLAlchemy or asyncpg, in ``EventStatements.columns`` order), upcast."""
        return ev.recorded(row, self.upcasters)

    # --- appending ------------------------------------------------------------------------
    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        recorded_at: datetime,
    ) -> list[RecordedEvent]:
        async with self.transaction() as conn:
            return await self.append_in(conn, stream_id, expected_version, events, recorded_at)

    async def append_in(
        self,
        conn: AsyncConnection,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        recorded_at: datetime,
    ) -> list[RecordedEvent]:
        """Append in ``conn``'s transaction: every event or none (``event_sql.append_in``)."""
        return await ev.append_in(
            conn, self.events, self.upcasters, stream_id, expected_version, events, recorded_at
        )

    # --- reading orders and streams -------------------------------------------------------
    async def snapshot(self, order_id: str) -> dict[str, Any] | None:
        async with self.read() as conn:
            return await q.snapshot(conn, order_id)

    async def stream(
        self, stream_id: str, *, after_version: int = 0, up_to_version: int | None = None
    ) -> list[RecordedEvent]:
        async with self.read() as conn:
            return await self.stream_in(conn, stream_id, after_version, up_to_version)

    async def stream_in(
        self,
        conn: AsyncConnection,
        stream_id: str,
        after_version: int = 0,
        up_to_version: int | None = None,
    ) -> list[RecordedEvent]:
        params = {"stream_id": stream_id, "after_version": after_version, "up_to": up_to_version}
        statement = self.events.stream if up_to_version is None else self.events.stream_up_to
        return [self.recorded(row) for row in await conn.execute(statement, params)]

    async def list_orders(self, query: OrderQuery) -> list[dict[str, Any]]:
        async with self.read() as conn:
            rows = await conn.execute(q.order_page(query))
            return [{**row.state, "order_id": row.order_id} for row in rows]

    async def list_disputes(self, query: DisputeQuery) -> list[dict[str, Any]]:
        async with self.read() as conn:
            rows = await conn.execute(q.dispute_page(query))
            return [{**row.state, "order_id": row.order_id} for row in rows]

    async def parties_of(self, order_ids: set[str]) -> dict[str, tuple[str, str]]:
        if not order_ids:
            return {}
        async with self.read() as conn:
            rows = await conn.execute(q.parties_of(order_ids))
        return {row.order_id: (row.buyer_id, row.supplier_id) for row in rows}

    async def due_for_timers(self, now: datetime, limit: int) -> list[tuple[str, int]]:
        async with self.read() as conn:
            rows = await conn.execute(q.due_for_timers(now, limit))
        return [(row.order_id, row.version) for row in rows]

    async def balances_of(self, party_id: str) -> list[BalanceTotals]:
        async with self.read() as conn:
            return q.balance_totals(await conn.execute(q.balances(party_id)))

    async def all_balances(self) -> list[BalanceTotals]:
        async with self.read() as conn:
            return q.balance_totals(await conn.execute(q.balances(None)))

    async def all_order_rows(self) -> dict[str, OrderRow]:
        async with self.read() as conn:
            rows = await conn.execute(sa.select(order_view))
        return {row.order_id: OrderRow(**row._mapping) for row in rows}

    async def find_party(self, party_id: str) -> dict[str, Any] | None:
        async with self.read() as conn:
            row = (await conn.execute(q.PARTY, {"party_id": party_id})).first()
        return None if row is None else dict(row._mapping)

    async def count_events(self) -> int:
        async with self.read() as conn:
            return int((await conn.execute(ev.COUNT_EVENTS)).scalar_one())

    async def schema_is_current(self) -> bool:
        async with self.read() as conn:
            return await schema_is_current(conn)

    # --- the clock ------------------------------------------------------------------------
    async def now(self) -> datetime:
        if not self.sandbox:
            return q.wall_clock()
        async with self.read() as conn:
            return await self.now_in(conn)

    async def now_in(self, conn: AsyncConnection) -> datetime:
        wall = q.wall_clock()
        if not self.sandbox:
            return wall
        offset = (await conn.execute(q.CLOCK_OFFSET)).scalar_one_or_none()
        return wall + timedelta(seconds=offset or 0)

    async def advance_clock(self, seconds: int, conn: AsyncConnection | None = None) -> int:
        if not self.sandbox:
            raise RuntimeError("the clock moves only in sandbox mode")
        if conn is None:
            async with self.transaction() as own:
                return await self.advance_clock(seconds, own)
        return int((await conn.execute(q.ADVANCE_CLOCK, {"seconds": seconds})).scalar_one())

    # --- Idempotency-Key answers ----------------------------------------------------------
    async def claim_key(self, claim: KeyClaim) -> KeyRecord | None:
        fresh = q.fresh_claim(claim)
        async with self.transaction() as conn:
            if await self.insert_ignoring(conn, idempotency_keys, [fresh], ["scope", "key"]):
                return None
            if (await conn.execute(q.take_over(claim), fresh)).rowcount == 1:
                return None
            row = (await conn.execute(q.key_record(claim.scope, claim.key))).one()
        return KeyRecord(
            row.body_hash,
            row.status,
            row.response_status,
            row.response_body,
            dict(row.response_headers or {}),
        )

    async def save_answer(self, answer: StoredAnswer, conn: AsyncConnection | None = None) -> None:
        if conn is None:
            async with self.transaction() as own:
                await own.execute(q.SAVE_ANSWER, q.answer_params(answer))
            return
        await conn.execute(q.SAVE_ANSWER, q.answer_params(answer))

    async def release_key(self, scope: str, key: str) -> None:
        async with self.transaction() as conn:
            await conn.execute(q.RELEASE_KEY, {"scope": scope, "key": key})

    async def purge_answers(self, now: datetime, *, limit: int) -> int:
        async with self.transaction() as conn:
            result = await conn.execute(q.purge_answers(now, limit))
        return int(result.rowcount)

    # --- checkpoints and projections ------------------------------------------------------
    async def dispatch(
        self, name: str, plan: DeliveryPlanner, *, batch_size: int
    ) -> tuple[int, int]:
        # Look before taking the lock: an idle poll then costs one read, not a write
        # transaction (a transaction id on PostgreSQL, the write lock on SQLite).
        async with self.read() as conn:
            row = (await conn.execute(q.checkpoint(name, lock=False))).one()
            if not await self.read_log_in(conn, Checkpoint(int(row[0]), int(row[1])), 1):
                return 0, 0
        async with self.transaction() as conn:
            # Held to the commit: one dispatcher at a time (SKIP LOCKED: another skips its turn).
            row = (await conn.execute(q.checkpoint(name, lock=True))).first()
            if row is None:
                return 0, 0
            batch = await self.read_log_in(conn, Checkpoint(int(row[0]), int(row[1])), batch_size)
            if not batch:
                return 0, 0
            rows = await plan(batch)
            written = await self.insert_ignoring(
                conn, webhook_deliveries, rows, ["endpoint_id", "event_id"]
            )
            reached = batch[-1].checkpoint
            await conn.execute(
                webhook_dispatch_checkpoint.update()
                .where(webhook_dispatch_checkpoint.c.name == name)
                .values(transaction_id=reached.transaction_id, position=reached.position)
            )
        return len(batch), written

    async def reset_projections(self) -> None:
        async with self.transaction() as conn:
            await conn.execute(order_view.delete())
            await conn.execute(party_balances.delete())

    async def insert_balances(
        self, conn: AsyncConnection, changes: Sequence[BalanceChange]
    ) -> None:
        if changes:
            await conn.execute(party_balances.insert(), [q.balance_row(c) for c in changes])

    async def read_log_in(
        self, conn: AsyncConnection, after: Checkpoint, limit: int
    ) -> list[RecordedEvent]:
        """``read_log`` in ``conn``'s transaction."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        params = {"transaction_id": str(after.transaction_id), "position": after.position}
        rows = await conn.execute(self.events.log, {**params, "limit": limit})
        return [self.recorded(row) for row in rows]
