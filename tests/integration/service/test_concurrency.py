"""Concurrent commands on one order: a lost race is re-read and re-decided, so the domain and
not the race decides every outcome.

The racing commands run through a store of their own (one connection each). On PostgreSQL the
first attempts meet after loading the order and before deciding (``racing_store``), so they
really collide on the commit; on SQLite writers queue on BEGIN IMMEDIATE instead.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from escrow_core.application import commands as commands_module
from escrow_core.application.commands import (
    MAX_ATTEMPTS,
    CommandResult,
    CommandService,
    TooMuchContention,
)
from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import DomainError
from escrow_core.domain.events import event_to_data
from escrow_core.domain.roles import Role
from escrow_core.domain.terms import ExtendableDeadline
from escrow_core.store import NewEvent, Store, open_store
from support.tables import view_row

from .story import (
    BALANCE,
    DEPOSIT,
    TOTAL,
    Orders,
    WatchedStore,
    event_types,
    folded,
    open_dispute,
    pay,
    racing_store,
    service_on,
)


@pytest.fixture
async def own_pool(store: Store) -> AsyncIterator[Store]:
    """The session database through a store of its own, one connection per racing command."""
    pool = open_store(store.url, pool_size=25)
    try:
        yield pool
    finally:
        await pool.dispose()


async def race(service: CommandService, order_id: str, commands: Sequence[c.Command]) -> list[Any]:
    """Fire ``commands`` at once; each outcome is a CommandResult or the exception raised."""
    return await asyncio.gather(
        *(service.execute(order_id, command) for command in commands), return_exceptions=True
    )


async def test_two_payments_with_different_refs_both_land(
    orders: Orders, own_pool: Store, store: Store
) -> None:
    # Given an accepted order
    order_id = await orders.up_to("accepted")
    racing = racing_store(own_pool, parties=2)
    service = service_on(racing)

    # When the deposit and the balance arrive at the same moment
    outcomes = await race(service, order_id, [pay(DEPOSIT, "pay_a"), pay(BALANCE, "pay_b")])

    # Then both land, one after the other, on contiguous versions
    assert all(isinstance(o, CommandResult) for o in outcomes), outcomes
    events = await store.stream(order_id)
    assert [e.version for e in events] == [1, 2, 3, 4, 5, 6]
    assert [e.type for e in events[2:]] == ["payment.received", "funds.held"] * 2
    # the second was decided on the first's outcome: it holds the whole total
    assert [e.data["held_total"] for e in events if e.type == "funds.held"][-1] == TOTAL
    order = await folded(store, order_id)
    assert (order.status.value, order.amounts.paid, order.amounts.held) == ("held", TOTAL, TOTAL)
    assert await service.get_order(order_id) == order
    # on PostgreSQL the loser of the race re-read and re-decided once; SQLite queued them
    assert racing.reads == (3 if own_pool.dialect == "postgresql" else 2)


async def test_commands_racing_on_one_order_each_get_a_domain_outcome(
    orders: Orders, own_pool: Store, store: Store
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
    racing = racing_store(own_pool, len(commands))
    service = service_on(racing)

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
    events = await store.stream(order_id)
    assert [e.version for e in events] == list(range(1, len(events) + 1))
    accepted = [e.event_id for o in outcomes if isinstance(o, CommandResult) for e in o.events]
    assert sorted(e.event_id for e in events[8:]) == sorted(accepted)
    assert await service.get_order(order_id) == await folded(store, order_id)
    if own_pool.dialect == "postgresql":
        # all six decided on the delivered order; at most one of them could win that round
        assert racing.reads >= 2 * len(commands) - 1


class Interfering(WatchedStore):
    """Between every read of the order and its decision, another writer appends to the order
    (a real concurrent writer on its own connection), so every attempt loses the race."""

    def __init__(self, store: Store, order_id: str) -> None:
        super().__init__(store, self.interfere)
        self.order_id = order_id

    async def interfere(self, read: int) -> None:
        at = await self.store.now()
        version = len(await self.store.stream(self.order_id))
        message = e.MessagePosted(at=at, by=Role.MEDIATOR, body="in between")
        data = event_to_data(message)
        new = NewEvent(uuid.uuid4(), message.type, data, {"test": "interference"})
        await self.store.append(self.order_id, version, [new], recorded_at=at)


@pytest.mark.postgres_only  # SQLite holds the write lock from BEGIN: nobody gets in between
async def test_retries_are_bounded(
    orders: Orders, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commands_module, "RETRY_BACKOFF_CAP_SECONDS", 0)
    order_id = await orders.up_to("accepted")
    interfering = Interfering(store, order_id)
    service = service_on(interfering)

    with pytest.raises(TooMuchContention):
        await service.execute(order_id, pay(DEPOSIT, "pay_1"))

    # each attempt re-read the order and decided again, lost again, and then it gave up;
    # the payment was never written, only the other writer's messages
    assert interfering.reads == MAX_ATTEMPTS
    types = await event_types(store, order_id)
    assert types == ["order.placed", "order.accepted"] + ["message.posted"] * MAX_ATTEMPTS
    # and no attempt wrote the order's row either: it is as the acceptance left it
    assert (await view_row(store, order_id) or {})["version"] == 2
