"""Concurrent commands on one order: a lost race is re-read and re-decided, so the domain and
not the race decides every outcome.

Each racing command runs on its own connection of a separate pool. On PostgreSQL a
``RendezvousClock`` holds them after loading the order until all have loaded, so they really
collide on the append; on SQLite writers queue on BEGIN IMMEDIATE instead.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import pytest

from escrow_core import service as service_module
from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import DomainError
from escrow_core.domain.events import event_to_data
from escrow_core.domain.roles import Role
from escrow_core.domain.terms import ExtendableDeadline
from escrow_core.service import MAX_ATTEMPTS, CommandResult, EscrowService, TooMuchContention
from escrow_core.store import Database, EventStore, NewEvent

from .story import (
    BALANCE,
    DEPOSIT,
    TOTAL,
    CountingClock,
    Orders,
    event_types,
    folded,
    open_dispute,
    pay,
    racing_clock,
)


class InterferingClock(CountingClock):
    """Between every read of the order and its write, another writer appends to the order
    (a real concurrent writer on its own connection), so every attempt loses the race."""

    def __init__(self, other: Database, order_id: str) -> None:
        super().__init__()
        self.other = other
        self.order_id = order_id

    async def now(self, conn: Any) -> datetime:
        at = await super().now(conn)
        store = EventStore()
        async with self.other.transaction() as other_conn:
            version = await store.stream_version(other_conn, self.order_id)
            message = e.MessagePosted(at=at, by=Role.MEDIATOR, body="in between")
            data = event_to_data(message)
            await store.append(
                other_conn,
                self.order_id,
                version,
                [NewEvent(uuid.uuid4(), message.type, data, {"test": "interference"})],
                recorded_at=at,
            )
        return at


@pytest.fixture
async def own_pool(database: Database) -> AsyncIterator[Database]:
    """The session database through a pool of its own, one connection per racing command."""
    pool = Database.from_url(database.url, pool_size=25)
    try:
        yield pool
    finally:
        await pool.dispose()


async def race(service: EscrowService, order_id: str, commands: Sequence[c.Command]) -> list[Any]:
    """Fire ``commands`` at once; each outcome is a CommandResult or the exception raised."""
    return await asyncio.gather(
        *(service.execute(order_id, command) for command in commands), return_exceptions=True
    )


async def test_two_payments_with_different_refs_both_land(
    orders: Orders, own_pool: Database
) -> None:
    # Given an accepted order
    order_id = await orders.up_to("accepted")
    clock = racing_clock(own_pool, parties=2)
    service = EscrowService(own_pool, EventStore(), clock)

    # When the deposit and the balance arrive at the same moment
    outcomes = await race(service, order_id, [pay(DEPOSIT, "pay_a"), pay(BALANCE, "pay_b")])

    # Then both land, one after the other, on contiguous versions
    assert all(isinstance(o, CommandResult) for o in outcomes), outcomes
    events = await service.order_events(order_id)
    assert [e.version for e in events] == [1, 2, 3, 4, 5, 6]
    assert [e.type for e in events[2:]] == ["payment.received", "funds.held"] * 2
    # the second was decided on the first's outcome: it holds the whole total
    assert [e.data["held_total"] for e in events if e.type == "funds.held"][-1] == TOTAL
    order = await folded(service, order_id)
    assert (order.status.value, order.amounts.paid, order.amounts.held) == ("held", TOTAL, TOTAL)
    assert await service.get_order(order_id) == order
    # on PostgreSQL the loser of the race re-read and re-decided once; SQLite queued them
    assert clock.reads == (3 if own_pool.dialect == "postgresql" else 2)


async def test_commands_racing_on_one_order_each_get_a_domain_outcome(
    orders: Orders, own_pool: Database
) -> None:
    # Given a delivered order
    order_id = await orders.up_to("delivered")
    buyer, supplier = orders.cast.buyer, orders.cast.supplier
    commands = [
        c.ConfirmReceipt(actor=buyer),
        open_dispute(orders.cast, refund=10_000),
        c.ExtendDeadline(actor=buyer, deadline=ExtendableDeadline.INSPECTION, days=5),
        c.ExtendDeadline(actor=supplier, deadline=ExtendableDeadline.INSPECTION, days=3),
        c.PostMessage(actor=buyer, body="checking the valves"),
        c.PostMessage(actor=supplier, body="any news?"),
    ]
    service = EscrowService(own_pool, EventStore(), racing_clock(own_pool, len(commands)))

    # When the buyer and the supplier act at the same moment
    outcomes = await race(service, order_id, commands)

    # Then every command was accepted or refused by a domain rule, never lost to the race
    unexpected = [o for o in outcomes if not isinstance(o, CommandResult | DomainError)]
    assert unexpected == []
    # the messages are valid in every state, so both landed
    assert isinstance(outcomes[4], CommandResult)
    assert isinstance(outcomes[5], CommandResult)
    # receipt and dispute exclude each other: exactly one of them happened
    confirmed, disputed = (isinstance(o, CommandResult) for o in outcomes[:2])
    assert confirmed != disputed
    # and the log holds exactly the accepted commands' events, on contiguous versions
    events = await service.order_events(order_id)
    assert [e.version for e in events] == list(range(1, len(events) + 1))
    accepted = [e.event_id for o in outcomes if isinstance(o, CommandResult) for e in o.events]
    assert sorted(e.event_id for e in events[8:]) == sorted(accepted)
    assert await service.get_order(order_id) == await folded(service, order_id)


@pytest.mark.postgres_only  # SQLite holds the write lock from BEGIN: nobody gets in between
async def test_retries_are_bounded(
    orders: Orders, own_pool: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "RETRY_BACKOFF_CAP_SECONDS", 0)
    order_id = await orders.up_to("accepted")
    clock = InterferingClock(own_pool, order_id)
    service = EscrowService(orders.service.database, EventStore(), clock)

    with pytest.raises(TooMuchContention):
        await service.execute(order_id, pay(DEPOSIT, "pay_1"))

    # each attempt re-read the order and decided again, lost again, and then it gave up;
    # the payment was never written, only the other writer's messages
    assert clock.reads == MAX_ATTEMPTS
    types = await event_types(orders.service, order_id)
    assert types == ["order.placed", "order.accepted"] + ["message.posted"] * MAX_ATTEMPTS
