"""Each service (process) remembers the orders it last wrote; another process writing in
between makes that memory stale, and a stale memory never decides an outcome."""

from escrow_core.clock import Clock
from escrow_core.domain import commands as c
from escrow_core.domain.order import Status
from escrow_core.service import EscrowService
from escrow_core.store import Database, EventStore

from .story import BALANCE, DEPOSIT, TOTAL, Orders, event_types, pay


def another_process(database: Database) -> EscrowService:
    return EscrowService(database, EventStore(), Clock(sandbox=False))


async def test_a_write_on_a_stale_memory_is_decided_again_on_the_stored_order(
    orders: Orders, service: EscrowService, database: Database
) -> None:
    # Given an order this process took to partially paid (and so remembers)
    order_id = await orders.up_to("accepted")
    await service.execute(order_id, pay(DEPOSIT, "pay_1"))
    assert service.snapshots.get(order_id) is not None
    # and another process that recorded a message since
    other = another_process(database)
    await other.execute(order_id, c.PostMessage(actor=orders.cast.buyer, body="wire sent"))

    # When this process records the balance
    result = await service.execute(order_id, pay(BALANCE, "pay_2"))

    # Then it lands after the message, on the stored order, and holds the whole total
    assert [e.version for e in result.events] == [6, 7]
    assert (result.state.status, result.state.amounts.held) == (Status.HELD, TOTAL)
    assert (await event_types(service, order_id))[-3:] == [
        "message.posted", "payment.received", "funds.held",
    ]  # fmt: skip


async def test_a_refusal_on_a_stale_memory_is_decided_again_on_the_stored_order(
    orders: Orders, service: EscrowService, database: Database
) -> None:
    # Given an order this process remembers as accepted and unpaid
    order_id = await orders.up_to("accepted")
    assert service.snapshots.get(order_id).status is Status.ACCEPTED  # type: ignore[union-attr]
    # and another process that recorded the whole payment since
    await another_process(database).execute(order_id, pay(TOTAL, "pay_all"))

    # When the supplier ships through this process (its memory says: not paid, refuse)
    ship = c.ShipOrder(actor=orders.cast.supplier, carrier="DHL", tracking_number="JD1")
    result = await service.execute(order_id, ship)

    # Then the stored order, fully held, decides: it ships
    assert result.state.status is Status.SHIPPED
    assert [e.type for e in result.events] == ["order.shipped"]
