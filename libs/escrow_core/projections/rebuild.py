"""Rebuild the inline projections from the log.

The log is streamed in batches and each batch commits on its own, so a rebuild never holds
back the log readers' snapshot horizon. Run it with the writers stopped: commands load their
snapshot from ``order_view`` (they fall back to the stream while a row is missing).
"""

import asyncio
import gc
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.domain.events import EVENT_TYPES, event_from_data
from escrow_core.domain.order import OrderState, evolve
from escrow_core.projections import order_view, party_balances
from escrow_core.store import LOG_START, Database, EventStore, RecordedEvent, schema

BATCH_SIZE = 2000
ORDER_STREAM_PREFIX = "ord_"
_ORDER_EVENT_TYPES = frozenset(EVENT_TYPES)
# How often a one-shot reader asks again while the log holds events back (PostgreSQL).
POLL_SECONDS = 0.1

_LAST_WRITER_XID = sa.text("SELECT coalesce(max(transaction_id), '0')::text FROM events")
_SNAPSHOT_XMIN = sa.text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")


def is_order_event(recorded: RecordedEvent) -> bool:
    return (
        recorded.stream_id.startswith(ORDER_STREAM_PREFIX) and recorded.type in _ORDER_EVENT_TYPES
    )


async def whole_log(
    database: Database, store: EventStore, *, batch_size: int = BATCH_SIZE
) -> AsyncIterator[list[RecordedEvent]]:
    """The log in commit-safe batches, to the end: at least every event committed before the call.

    On PostgreSQL an empty ``read_log`` answer means "nothing safe to read yet", not the end:
    while any transaction on the server (xids are server-wide, so one in another database
    too) is older than the newest events, those are held back. A one-shot reader that took
    the first empty answer for the end would silently rebuild or verify part of the log. So
    it notes the newest writer's xid first and reads on until the snapshot horizon passes it.
    """
    async with database.read() as conn:
        last_writer = await _last_writer_xid(conn)
    checkpoint = LOG_START
    while True:
        async with database.read() as conn:
            # Horizon first: each statement takes a new snapshot, and the horizon only moves
            # on, so an empty read after it has passed really is the end.
            caught_up = await _horizon_passed(conn, last_writer)
            batch = await store.read_log(conn, checkpoint, limit=batch_size)
        if batch:
            checkpoint = batch[-1].checkpoint
            yield batch
        elif caught_up:
            return
        else:
            await asyncio.sleep(POLL_SECONDS)


async def _last_writer_xid(conn: AsyncConnection) -> int:
    if conn.dialect.name != "postgresql":
        return 0  # one writer at a time: commit order is position order, nothing is held back
    return int((await conn.execute(_LAST_WRITER_XID)).scalar_one())


async def _horizon_passed(conn: AsyncConnection, xid: int) -> bool:
    if conn.dialect.name != "postgresql":
        return True
    return int((await conn.execute(_SNAPSHOT_XMIN)).scalar_one()) > xid


async def count_events(database: Database) -> int:
    """How many events the log holds (for progress bars)."""
    async with database.read() as conn:
        return int((await conn.execute(sa.text("SELECT count(*) FROM events"))).scalar_one())


@contextmanager
def states_kept_out_of_gc() -> Iterator[Callable[[], None]]:
    """Replaying the log keeps every order's state alive to the end; the cyclic garbage
    collector would walk all of them again and again (a quarter of a rebuild's time). The
    yielded function freezes what is alive so far, out of its reach; all is handed back after.
    """
    try:
        yield gc.freeze
    finally:
        gc.unfreeze()


async def rebuild(
    database: Database,
    store: EventStore,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] = lambda n: None,
) -> int:
    """Empty and refill ``order_view`` and ``party_balances``; returns the events read."""
    async with database.transaction() as conn:
        await conn.execute(schema.order_view.delete())
        await conn.execute(schema.party_balances.delete())
    states: dict[str, OrderState] = {}
    read = 0
    with states_kept_out_of_gc() as freeze:
        async for batch in whole_log(database, store, batch_size=batch_size):
            await _rebuild_batch(database, batch, states)
            freeze()
            read += len(batch)
            progress(len(batch))
    return read


async def _rebuild_batch(
    database: Database, batch: list[RecordedEvent], states: dict[str, OrderState]
) -> None:
    """Apply one batch of the log and write what it changed, in one transaction."""
    touched: set[str] = set()
    balance_rows: list[dict[str, Any]] = []
    for recorded in filter(is_order_event, batch):
        event = event_from_data(recorded.type, recorded.data)
        order = evolve(states.get(recorded.stream_id), event)
        states[recorded.stream_id] = order
        touched.add(recorded.stream_id)
        if (delta := party_balances.apply(order, event)) is not None:
            balance_rows += party_balances.rows_for(
                recorded.stream_id, order, delta, recorded.position
            )
    async with database.transaction() as conn:
        await conn.execute(sa.text("SELECT 1"))  # begin now: raw writes below must join it
        await order_view.upsert_many(conn, {i: states[i] for i in touched})
        await party_balances.insert(conn, balance_rows)
