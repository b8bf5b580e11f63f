"""A claim racing the retention deadline has exactly one outcome (DESIGN 7.2).

The timer is an ordinary command carrying the version it saw. Here both the buyer's claim
(decided just before the deadline) and the timer (decided just after it) are valid on the same
version; on PostgreSQL both load the order and meet before deciding, so they really collide on
the commit. Whichever commits first stands; the other gets a clean refusal (the timer a
VersionMismatch, the claim ``claim_window_closed``) and nothing of it is written.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest

from escrow_core.application.commands import CommandResult, VersionMismatch
from escrow_core.domain import commands as c
from escrow_core.domain.errors import ClaimWindowClosed
from escrow_core.domain.order import Status
from escrow_core.domain.terms import DisputeReason, Retention
from escrow_core.store import CommandSession, Store, open_store

from .story import Orders, WatchedSession, WatchedStore, event_types, folded, service_on

RETENTION = Retention(percent=10, days=1)
RETAINED = 12_500  # 10% of the story's 125_000


class ShiftedSession(WatchedSession):
    """A session whose clock reads ``shift`` ahead of the database's."""

    def __init__(self, session: CommandSession, watched: "ShiftedStore") -> None:
        super().__init__(session, watched)
        self.shift = watched.shift

    async def now(self) -> datetime:
        return await super().now() + self.shift


class ShiftedStore(WatchedStore):
    """A racer's store: its first attempt waits for the other racer before deciding, and it
    decides at the database's time plus ``shift``."""

    def __init__(
        self, store: Store, shift: timedelta, before_deciding: Callable[[int], Awaitable[None]]
    ) -> None:
        super().__init__(store, before_deciding)
        self.shift = shift

    @asynccontextmanager
    async def _command(self) -> AsyncIterator[CommandSession]:
        async with self.store.command() as session:
            yield ShiftedSession(session, self)


@pytest.fixture
async def own_pool(store: Store) -> AsyncIterator[Store]:
    pool = open_store(store.url, pool_size=10)
    try:
        yield pool
    finally:
        await pool.dispose()


@pytest.mark.parametrize("first", ["claim", "timer"])
async def test_a_claim_racing_the_deadline_has_exactly_one_outcome(
    orders: Orders, own_pool: Store, store: Store, first: str
) -> None:
    # Given an order confirmed with a one-day retention
    order_id = await orders.up_to("delivered", retention=RETENTION)
    confirmed = await orders.run(order_id, c.ConfirmReceipt(actor=orders.cast.buyer))
    state = confirmed.state
    assert state.status is Status.RETAINED
    assert state.retention_ends_at is not None
    version = state.version
    to_deadline = state.retention_ends_at - confirmed.at

    # When the claim (a minute before the deadline) and the timer (a minute after it) are
    # decided on the same version at once. On PostgreSQL both first attempts meet after loading
    # the order; the one not meant to win then waits a little before deciding, so the race
    # has the winner this case names. On SQLite a writer holds the lock from BEGIN: the two
    # queue, and either may win.
    postgres = store.dialect == "postgresql"
    barrier = asyncio.Barrier(2)

    def rendezvous(role: str) -> Callable[[int], Awaitable[None]]:
        async def wait(read: int) -> None:
            if postgres and read == 1:
                await asyncio.wait_for(barrier.wait(), timeout=30)
                if role != first:
                    await asyncio.sleep(0.3)

        return wait

    minute = timedelta(minutes=1)
    stores = {
        "claim": ShiftedStore(own_pool, to_deadline - minute, rendezvous("claim")),
        "timer": ShiftedStore(own_pool, to_deadline + minute, rendezvous("timer")),
    }
    claimant, timer = service_on(stores["claim"]), service_on(stores["timer"])
    claim = c.MakeClaim(
        actor=orders.cast.buyer, reason=DisputeReason.QUALITY, requested_refund=RETAINED
    )
    outcomes: list[Any] = await asyncio.gather(
        claimant.execute(order_id, claim),
        timer.execute(order_id, c.EndRetention(), expected_version=version),
        return_exceptions=True,
    )

    # Then exactly one of them happened, and the other was cleanly refused
    claimed, timed_out = outcomes
    won = {
        "claim": isinstance(claimed, CommandResult),
        "timer": isinstance(timed_out, CommandResult),
    }
    assert list(won.values()).count(True) == 1, outcomes
    if postgres:
        assert won[first], outcomes
        # it was a real collision: both decided on the same version, and the loser had to
        # read the order again (from the log) to learn it had lost
        loser = "timer" if first == "claim" else "claim"
        assert stores[first].loads == ["snapshot"]
        assert stores[loser].loads == ["snapshot", "stream"]
    types = await event_types(store, order_id)
    before = types[:version]
    after = types[version:]
    assert len(before) == version
    final = await folded(store, order_id)
    if won["claim"]:
        assert isinstance(timed_out, VersionMismatch), timed_out
        assert after == ["dispute.opened"]
        assert final.status is Status.DISPUTED
        assert (final.amounts.held, final.amounts.retained) == (RETAINED, RETAINED)
    else:
        assert isinstance(claimed, ClaimWindowClosed), claimed
        assert after == ["retention.ended", "funds.released"]
        assert final.status is Status.COMPLETED
        assert (final.amounts.held, final.amounts.retained) == (0, 0)
    # nothing half-written: the stored order is the log folded, on contiguous versions
    assert [r.version for r in await store.stream(order_id)] == list(range(1, len(types) + 1))
    assert await orders.service.get_order(order_id) == final
