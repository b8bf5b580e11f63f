"""Waiting for the asynchronous supplier performance projection to reach the log's end."""

import asyncio

import sqlalchemy as sa

from escrow_core.projections import supplier_performance_log
from escrow_core.store import Store, schema


async def last_position(store: Store) -> int:
    async with store.read() as conn:
        found = await conn.execute(sa.select(sa.func.max(schema.events.c.position)))
        return int(found.scalar_one() or 0)


async def caught_up(store: Store, *, within: float = 30) -> int:
    """Catch the projection up as the worker does, until it has applied the last event (on
    PostgreSQL the commit-safe horizon may lag behind a transaction elsewhere on the server);
    returns that position."""
    last = await last_position(store)
    for _ in range(int(within * 10)):
        await supplier_performance_log.catch_up(store)
        at, _, _ = await store.performance_snapshot()
        if at.position == last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"the projection is at {at}, the log at {last}")
