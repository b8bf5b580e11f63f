"""The supplier performance projection's SQL, the same on both backends (SQLAlchemy Core, the
backend's own ``ON CONFLICT`` from ``upsert``): its order rows, its counters per supplier and
currency, and its checkpoint ``supplier_performance``, moved with them in one transaction by
the log readers' ``follow_log`` (the webhook dispatcher's step)."""

from collections.abc import Sequence
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.store import statements as q
from escrow_core.store.bookkeeping import BatchHandler, BookkeepingStore
from escrow_core.store.interface import PerformanceFold
from escrow_core.store.records import (
    LOG_START,
    Checkpoint,
    PerformanceCounts,
    PerformanceOrder,
    RecordedEvent,
)
from escrow_core.store.schema import supplier_performance, supplier_performance_orders

CHECKPOINT_NAME = "supplier_performance"
_ORDER_COLUMNS = [f.name for f in fields(PerformanceOrder)]
_COUNTERS = [f.name for f in fields(PerformanceCounts) if f.name not in ("supplier_id", "currency")]


def _order(row: sa.Row[Any]) -> PerformanceOrder:
    return PerformanceOrder(**{name: row._mapping[name] for name in _ORDER_COLUMNS})


def _counts(row: sa.Row[Any]) -> PerformanceCounts:
    values = {name: int(row._mapping[name]) for name in _COUNTERS}
    return PerformanceCounts(row.supplier_id, row.currency, **values)


class PerformanceStore(BookkeepingStore):
    """The supplier performance half of ``CoreStore``."""

    async def project_performance(self, fold: PerformanceFold, *, batch_size: int) -> int:
        read, _ = await self.follow_log(
            CHECKPOINT_NAME, self._performance_handler(fold), batch_size=batch_size
        )
        return read

    async def project_performance_batch(
        self, fold: PerformanceFold, batch: list[RecordedEvent]
    ) -> int:
        read, _ = await self.follow_with(CHECKPOINT_NAME, self._performance_handler(fold), batch)
        return read

    def _performance_handler(self, fold: PerformanceFold) -> BatchHandler:
        async def handle(conn: AsyncConnection, batch: list[RecordedEvent]) -> int:
            known = await self._performance_orders(conn, {event.stream_id for event in batch})
            rows, deltas = fold(known, batch)
            await self._write_performance(conn, rows, deltas)
            return len(rows)

        return handle

    async def _performance_orders(
        self, conn: AsyncConnection, order_ids: set[str]
    ) -> dict[str, PerformanceOrder]:
        if not order_ids:
            return {}
        t = supplier_performance_orders
        found = await conn.execute(sa.select(t).where(t.c.order_id.in_(sorted(order_ids))))
        return {row.order_id: _order(row) for row in found}

    async def _write_performance(
        self,
        conn: AsyncConnection,
        rows: Sequence[PerformanceOrder],
        deltas: Sequence[PerformanceCounts],
    ) -> None:
        if rows:
            orders = self.upsert(supplier_performance_orders)
            await conn.execute(
                orders.on_conflict_do_update(
                    index_elements=["order_id"],
                    set_={name: orders.excluded[name] for name in _ORDER_COLUMNS[1:]},
                ),
                [asdict(row) for row in rows],
            )
        if deltas:
            counts = self.upsert(supplier_performance)
            table = supplier_performance.c
            await conn.execute(
                counts.on_conflict_do_update(
                    index_elements=["supplier_id", "currency"],
                    set_={name: table[name] + counts.excluded[name] for name in _COUNTERS},
                ),
                [asdict(delta) for delta in deltas],
            )

    async def reset_performance(self) -> None:
        async with self.transaction() as conn:
            # The lock first: a worker applying a batch finishes it before the rows go.
            await conn.execute(q.checkpoint(CHECKPOINT_NAME, lock=True, wait=True))
            await conn.execute(supplier_performance_orders.delete())
            await conn.execute(supplier_performance.delete())
            await self.move_checkpoint(conn, CHECKPOINT_NAME, LOG_START)

    async def performance_of(
        self, supplier_id: str
    ) -> tuple[Checkpoint, list[PerformanceCounts], list[tuple[datetime | None, datetime | None]]]:
        t, o = supplier_performance, supplier_performance_orders
        # One transaction (one snapshot on SQLite; on PostgreSQL the checkpoint is read first,
        # so the figures are at least as fresh as the position the answer names).
        async with self.read() as conn:
            row = (await conn.execute(q.checkpoint(CHECKPOINT_NAME, lock=False))).one()
            counts = await conn.execute(sa.select(t).where(t.c.supplier_id == supplier_id))
            shipped = await conn.execute(
                sa.select(o.c.accepted_at, o.c.shipped_at).where(
                    o.c.supplier_id == supplier_id, o.c.shipped_at.is_not(None)
                )
            )
            return (
                Checkpoint(int(row[0]), int(row[1])),
                [_counts(found) for found in counts],
                [(found.accepted_at, found.shipped_at) for found in shipped],
            )

    async def performance_snapshot(
        self,
    ) -> tuple[Checkpoint, list[PerformanceOrder], list[PerformanceCounts]]:
        async with self.transaction() as conn:
            # Holding the checkpoint's lock, no worker moves the rows while they are read.
            row = (await conn.execute(q.checkpoint(CHECKPOINT_NAME, lock=True, wait=True))).one()
            o, t = supplier_performance_orders, supplier_performance
            orders = await conn.execute(sa.select(o).order_by(o.c.order_id))
            counts = await conn.execute(sa.select(t).order_by(t.c.supplier_id, t.c.currency))
            return (
                Checkpoint(int(row[0]), int(row[1])),
                [_order(found) for found in orders],
                [_counts(found) for found in counts],
            )
