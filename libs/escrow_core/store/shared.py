"""What both adapters run alike: SQLAlchemy Core statements that read the same on PostgreSQL
and SQLite. Each adapter subclasses ``CoreStore``, adds its engines and overrides the statements
its backend spells differently or runs faster another way.
"""

from abc import abstractmethod
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from escrow_core.store import event_sql as ev
from escrow_core.store import money_statements as mq
from escrow_core.store import statements as q
from escrow_core.store.errors import translating_unavailable
from escrow_core.store.migrations import schema_is_current
from escrow_core.store.performance import PerformanceStore
from escrow_core.store.records import (
    AccountBalance,
    BalanceChange,
    BalanceTotals,
    Checkpoint,
    DisputeQuery,
    MoneyOutQuery,
    MoneyOutRow,
    NewEvent,
    OrderQuery,
    OrderRow,
    Posting,
    RecordedEvent,
)
from escrow_core.store.schema import (
    ledger_postings,
    money_out,
    order_view,
    party_balances,
)
from escrow_core.store.upcasting import Upcasters


class CoreStore(PerformanceStore):
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

    # --- connections ----------------------------------------------------------------------
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        async with translating_unavailable(), self.writer.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with translating_unavailable(), self.reader.connect() as conn:
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

    async def list_orders(self, query: OrderQuery) -> list[tuple[str, dict[str, Any]]]:
        page = q.order_page(query, self.metadata_has)
        async with self.read() as conn:
            return [(row.order_id, row.state) for row in await conn.execute(page)]

    async def order_with_client_reference(self, buyer_id: str, reference: str) -> str | None:
        query = q.order_with_client_reference(buyer_id, reference)
        async with self.read() as conn:
            found: str | None = (await conn.execute(query)).scalar_one_or_none()
        return found

    def metadata_has(self, key: str, value: str) -> sa.ColumnElement[bool]:
        """Whether an ``order_view`` row's metadata holds ``key: value`` (each backend's SQL)."""
        raise NotImplementedError

    async def list_disputes(self, query: DisputeQuery) -> list[tuple[str, dict[str, Any]]]:
        async with self.read() as conn:
            rows = await conn.execute(q.dispute_page(query))
            return [(row.order_id, row.state) for row in rows]

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

    # --- money out and the ledger ---------------------------------------------------------
    async def find_money_out(self, object_id: str, kind: str) -> MoneyOutRow | None:
        async with self.read() as conn:
            row = (await conn.execute(mq.find_money_out(object_id, kind))).first()
        return None if row is None else mq.money_out_row(row)

    async def list_money_out(self, query: MoneyOutQuery) -> list[MoneyOutRow]:
        async with self.read() as conn:
            return [mq.money_out_row(row) for row in await conn.execute(mq.money_out_page(query))]

    async def ledger_of(
        self, accounts: Sequence[str], *, after: int | None, limit: int
    ) -> list[Posting]:
        async with self.read() as conn:
            rows = await conn.execute(mq.ledger_page(accounts, after, limit))
            return [mq.posting(row) for row in rows]

    async def account_balances(
        self, accounts: Sequence[str] | None, *, before: datetime | None = None
    ) -> list[AccountBalance]:
        async with self.read() as conn:
            return mq.balances(await conn.execute(mq.account_balances(accounts, before)))

    async def all_postings(
        self, *, batch_size: int, since: datetime | None = None
    ) -> AsyncIterator[list[Posting]]:
        after = 0
        while True:
            async with self.read() as conn:
                rows = await conn.execute(mq.postings_after(after, batch_size, since))
                batch = [mq.posting(row) for row in rows]
            if not batch:
                return
            yield batch
            after = batch[-1].id or after

    async def ledger_check(
        self,
    ) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, str, int, int]]]:
        async with self.read() as conn:
            unbalanced = [
                (row[0], row[1], int(row[2]))
                for row in await conn.execute(mq.unbalanced_transfers())
            ]
            sums = [
                (row[0], row[1], row[2], int(row[3]), int(row[4]))
                for row in await conn.execute(mq.order_account_sums())
            ]
        return unbalanced, sums

    async def write_money_out(
        self, conn: AsyncConnection, postings: Sequence[Posting], rows: Sequence[MoneyOutRow]
    ) -> None:
        """Insert ledger postings and upsert payouts/refunds in ``conn``'s transaction."""
        if postings:
            await conn.execute(
                ledger_postings.insert(), [mq.posting_values(posting) for posting in postings]
            )
        if rows:
            statement, values = mq.upsert_money_out(self.upsert(money_out), rows)
            await conn.execute(statement, values)

    async def find_party(self, party_id: str) -> dict[str, Any] | None:
        async with self.read() as conn:
            row = (await conn.execute(q.PARTY, {"party_id": party_id})).first()
        return None if row is None else dict(row._mapping)

    async def find_parties(self, party_ids: Sequence[str]) -> list[dict[str, Any]]:
        async with self.read() as conn:
            rows = await conn.execute(q.PARTIES, {"party_ids": list(party_ids)})
        return [dict(row._mapping) for row in rows]

    async def count_events(self) -> int:
        async with self.read() as conn:
            return int((await conn.execute(ev.COUNT_EVENTS)).scalar_one())

    async def schema_is_current(self) -> bool:
        async with self.read() as conn:
            return await schema_is_current(conn)

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
