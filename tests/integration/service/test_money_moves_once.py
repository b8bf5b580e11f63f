"""Money moves once: twenty buyers' clicks on "confirm receipt" release the funds once.

Twenty ConfirmReceipt commands for one delivered order, each on its own connection. On
PostgreSQL all twenty load the order before any commits (``racing_store``), so nineteen lose
the race, re-read the completed order and are refused by the domain. On SQLite the writers
queue on the write lock and the same nineteen refusals follow.
"""

import asyncio

from escrow_core.application.commands import CommandResult
from escrow_core.domain import commands as c
from escrow_core.domain.errors import DomainError
from escrow_core.store import Store, open_store
from support.tables import balance_rows

from .story import FEE_BPS, TOTAL, Orders, event_types, racing_store, service_on

CLICKS = 20


async def test_twenty_concurrent_confirmations_release_the_funds_once(
    orders: Orders, store: Store
) -> None:
    # Given a delivered order holding the whole total
    order_id = await orders.up_to("delivered")
    pool = open_store(store.url, pool_size=CLICKS + 5)
    racing = racing_store(pool, parties=CLICKS)
    service = service_on(racing)
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
    types = await event_types(store, order_id)
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
    # the ledger released the total once, for each party
    released_rows = [r for r in await balance_rows(store, order_id) if r["released"]]
    assert [(r["released"], r["fees"]) for r in released_rows] == [(TOTAL, fee)] * 2
    if store.dialect == "postgresql":
        # all twenty decided on the delivered order: the race was real, and lost by nineteen,
        # who decided again on the completed order
        assert racing.reads == 2 * CLICKS - 1
    else:
        # they queued: each decided once on the stored order, except the one right after the
        # winner, which was refused on the order the winner remembered and so decided again
        # on the stored one (a refusal is only answered on the stored order)
        assert racing.reads == CLICKS + 1
