"""Deadlines fire as ordinary system commands carrying the version they saw, on the sandbox
clock moved forward through the database (each test has a database, and so a clock, of its own).
"""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from escrow_core.application.commands import CommandResult, CommandService
from escrow_core.application.runtime import Runtime, open_runtime
from escrow_core.application.timers import fire_due_timers
from escrow_core.domain import commands as c
from escrow_core.domain.errors import InvalidState
from escrow_core.domain.order import OrderState
from escrow_core.settings import Settings
from escrow_core.store import Store

from .story import INSPECTION_DAYS, Cast, Orders, event_types

DAY = 24 * 3600


@pytest.fixture
async def sandbox(fresh_store: Store) -> AsyncIterator[Runtime]:
    settings = Settings(database_url=fresh_store.url, sandbox=True)
    async with open_runtime(settings) as runtime:
        yield runtime


async def advance(runtime: Runtime, seconds: int) -> None:
    await runtime.store.advance_clock(seconds)


async def test_the_inspection_window_running_out_confirms_and_releases(
    sandbox: Runtime,
) -> None:
    # Given a delivered order with a 10-day inspection window
    cast = Cast.new()
    order_id = await Orders(sandbox.commands, cast).up_to("delivered")
    assert await fire_due_timers(sandbox.commands) == []  # nothing due yet

    # When the clock moves past the window's end
    wall = await sandbox.store.now()
    await advance(sandbox, INSPECTION_DAYS * DAY + 60)
    assert await sandbox.store.now() - wall >= timedelta(days=INSPECTION_DAYS, seconds=60)
    fired = await fire_due_timers(sandbox.commands)

    # Then the timer confirmed receipt (auto) and released the funds, as the system
    assert [r.order_id for r in fired] == [order_id]
    (result,) = fired
    assert [(e.type, e.data.get("auto")) for e in result.events] == [
        ("receipt.confirmed", True),
        ("funds.released", None),
    ]
    assert {e.metadata["actor"]["role"] for e in result.events} == {"system"}
    assert result.state.status.value == "completed"
    # the events carry the sandbox clock, ten days on
    assert result.events[0].recorded_at - result.state.placed_at > timedelta(days=INSPECTION_DAYS)
    # and a second tick finds nothing left to do
    assert await fire_due_timers(sandbox.commands) == []


class BuyerActsRightAfterTheTimerLooks(CommandService):
    """The buyer confirms receipt between the timer reading the order and its command."""

    buyer: Cast | None = None

    async def get_order(self, order_id: str, *, version: int | None = None) -> OrderState | None:
        seen = await super().get_order(order_id, version=version)
        if self.buyer is not None:
            buyer, self.buyer = self.buyer, None
            await self.execute(order_id, c.ConfirmReceipt(actor=buyer.buyer))
        return seen


async def test_a_person_acting_first_wins_over_the_timer(sandbox: Runtime) -> None:
    # Given a delivered order whose inspection window has run out
    cast = Cast.new()
    order_id = await Orders(sandbox.commands, cast).up_to("delivered")
    await advance(sandbox, INSPECTION_DAYS * DAY + 60)
    service = BuyerActsRightAfterTheTimerLooks(sandbox.store)
    service.buyer = cast

    # When the buyer confirms just after the timer saw the order
    fired = await fire_due_timers(service)

    # Then the timer's command, carrying the version it saw, was dropped: the buyer's stands
    assert fired == []
    assert service.buyer is None  # the buyer did act
    events = await sandbox.store.stream(order_id)
    assert [(e.type, e.data.get("auto")) for e in events[-2:]] == [
        ("receipt.confirmed", False),
        ("funds.released", None),
    ]
    assert [e.type for e in events].count("funds.released") == 1


async def test_a_person_racing_the_timer_gets_exactly_one_outcome(sandbox: Runtime) -> None:
    # Given a delivered order whose inspection window has run out
    cast = Cast.new()
    order_id = await Orders(sandbox.commands, cast).up_to("delivered")
    await advance(sandbox, INSPECTION_DAYS * DAY + 60)

    # When the buyer confirms while the timer fires
    fired, confirmed = await asyncio.gather(
        fire_due_timers(sandbox.commands),
        sandbox.commands.execute(order_id, c.ConfirmReceipt(actor=cast.buyer)),
        return_exceptions=True,
    )

    # Then the money moved once, by whichever came first, and the other had no effect
    types = await event_types(sandbox.store, order_id)
    assert (types.count("receipt.confirmed"), types.count("funds.released")) == (1, 1)
    assert isinstance(fired, list)
    if fired:
        assert isinstance(confirmed, InvalidState)  # the timer won; the buyer is told why
    else:
        assert isinstance(confirmed, CommandResult)
