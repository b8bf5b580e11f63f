"""The worker wakes on commit signals (PostgreSQL LISTEN/NOTIFY), not on its next poll.

The poll interval is slowed to 5 s, so a delivery that arrives within 2 s of its command was
woken by the signal; killing the listening connection must not stop the worker.
"""

import asyncio
import time

import pytest
import sqlalchemy as sa

from escrow_core.store import Store
from support.receiver import Receiver

from .conftest import Cast, Hooks, hooks_on

pytestmark = pytest.mark.postgres_only

SLOW_POLL = 5.0
WITHIN = 2.0
LISTENER = sa.text(
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() AND query LIKE 'LISTEN %'"
)


async def listener_pid(store: Store, *, other_than: int | None = None) -> int:
    """The worker's listening connection (waits for it to be there)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        async with store.read() as conn:
            pids = [int(pid) for pid in (await conn.execute(LISTENER)).scalars()]
        pids = [pid for pid in pids if pid != other_than]
        if pids:
            assert len(pids) == 1, pids
            return pids[0]
        await asyncio.sleep(0.05)
    raise AssertionError("the worker is not listening")


async def delivered_within(hooks: Hooks, cast: Cast, seconds: float) -> float:
    """Place an order and return how long its order.placed took from its commit to the
    receiver."""
    before = len(hooks.receiver.unique())
    await cast.place()
    started = time.monotonic()  # committed: from here on it is the worker's time
    await hooks.receiver.until(
        lambda r: len(r.unique()) > before, within=SLOW_POLL * 3, what="order.placed"
    )
    took = time.monotonic() - started
    assert took < seconds, f"delivered after {took:.2f} s: woken by the poll, not the commit"
    return took


async def test_a_commit_wakes_the_worker_well_before_its_poll(
    fresh_store: Store, receiver: Receiver
) -> None:
    async with hooks_on(fresh_store, receiver, worker_poll_seconds=SLOW_POLL) as hooks:
        await hooks.endpoint()
        cast = await Cast.new(hooks.api)
        async with hooks.worker():
            await listener_pid(hooks.store)
            await asyncio.sleep(0.3)  # past the first polls made on starting
            for _ in range(3):
                await delivered_within(hooks, cast, WITHIN)


async def test_the_worker_listens_again_after_its_connection_is_killed(
    fresh_store: Store, receiver: Receiver
) -> None:
    async with hooks_on(fresh_store, receiver, worker_poll_seconds=SLOW_POLL) as hooks:
        await hooks.endpoint()
        cast = await Cast.new(hooks.api)
        async with hooks.worker():
            killed = await listener_pid(hooks.store)
            await delivered_within(hooks, cast, WITHIN)
            async with hooks.store.transaction() as conn:
                terminated = await conn.execute(
                    sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": killed}
                )
                assert terminated.scalar_one() is True
            # Meanwhile polling carries on: this one is delivered, by the poll at the latest.
            await delivered_within(hooks, cast, SLOW_POLL * 2)
            await listener_pid(hooks.store, other_than=killed)
            await asyncio.sleep(0.3)
            for _ in range(2):
                await delivered_within(hooks, cast, WITHIN)
