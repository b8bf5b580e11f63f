"""Money moves once: twenty buyers' clicks on "confirm receipt" release the funds once.

Twenty ConfirmReceipt commands for one delivered order, each on its own connection. On
PostgreSQL all twenty load the order before any appends (RendezvousClock), so nineteen lose
the race, re-read the completed order and are refused by the domain. On SQLite the writers
queue on the write lock and the same nineteen refusals follow.
"""

import asyncio

from escrow_core.domain import commands as c
from escrow_core.domain.errors import DomainError
from escrow_core.service import CommandResult, EscrowService
from escrow_core.store import Database, EventStore

from .story import FEE_BPS, TOTAL, Orders, event_types, racing_clock

CLICKS = 20


async def test_twenty_concurrent_confirmations_release_the_funds_once(
    orders: Orders, database: Database
) -> None:
    # Given a delivered order holding the whole total
    order_id = await orders.up_to("delivered")
    pool = Database.from_url(database.url, pool_size=CLICKS + 5)
    clock = racing_clock(pool, parties=CLICKS)
    service = EscrowService(pool, EventStore(), clock)
    confirm = c.ConfirmReceipt(actor=orders.cast.buyer)

    # When the buyer confirms receipt twenty times at once, on twenty connections
    try:
        outcomes = await asyncio.gather(
            *(service.execute(order_id, confirm) for _ in range(CLICKS)), return_exceptions=True
        )
    finally:
        await pool.dispose()

    # Then exactly one call went through and every other got the domain's invalid_state
    results = [o for o in outcomes if isinstance(o, CommandResult)]
    refusals = [o for o in outcomes if isinstance(o, DomainError)]
    assert (len(results), len(refusals)) == (1, CLICKS - 1), outcomes
    assert {r.code for r in refusals} == {"invalid_state"}
    # and the log holds one receipt.confirmed and one funds.released, of the whole total
    types = await event_types(orders.service, order_id)
    assert types.count("receipt.confirmed") == 1
    assert types.count("funds.released") == 1
    released = results[0].events[-1]
    fee = TOTAL * FEE_BPS // 10_000  # 3_125, exact
    assert released.type == "funds.released"
    assert [released.data[k] for k in ("gross", "fee", "net")] == [TOTAL, fee, TOTAL - fee]
    order = await orders.service.get_order(order_id)
    assert order is not None
    assert (order.status.value, order.amounts.held, order.amounts.released) == (
        "completed",
        0,
        TOTAL,
    )
    if pool.dialect == "postgresql":
        # all twenty decided on the delivered order: the race was real, and lost by nineteen
        assert clock.reads == 2 * CLICKS - 1
