"""Rebuild the inline projections from the log.

The log is streamed in batches and each batch commits on its own, so a rebuild never holds
back the log readers' snapshot horizon. Run it with the writers stopped: commands load their
snapshot from ``order_view`` (they fall back to the stream while a row is missing).
"""

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from escrow_core.domain.events import EVENT_TYPES, event_from_data
from escrow_core.domain.order import OrderState, evolve
from escrow_core.projections import order_view, party_balances
from escrow_core.store import LOG_START, Database, EventStore, RecordedEvent, schema

BATCH_SIZE = 2000
ORDER_STREAM_PREFIX = "ord_"
_ORDER_EVENT_TYPES = frozenset(EVENT_TYPES)


def is_order_event(recorded: RecordedEvent) -> bool:
    return (
        recorded.stream_id.startswith(ORDER_STREAM_PREFIX) and recorded.type in _ORDER_EVENT_TYPES
    )


async def count_events(database: Database) -> int:
    """How many events the log holds (for progress bars)."""
    async with database.read() as conn:
        return int((await conn.execute(sa.text("SELECT count(*) FROM events"))).scalar_one())


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
    written: set[str] = set()
    read = 0
    checkpoint = LOG_START
    while True:
        async with database.read() as conn:
            batch = await store.read_log(conn, checkpoint, limit=batch_size)
        if not batch:
            return read
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
            await order_view.save_many(
                conn,
                inserts={i: states[i] for i in touched - written},
                updates={i: states[i] for i in touched & written},
            )
            await party_balances.insert(conn, balance_rows)
        written |= touched
        read += len(batch)
        checkpoint = batch[-1].checkpoint
        progress(len(batch))
