"""Each command service (process) remembers the orders it last wrote; another process writing
in between makes that memory stale, and a stale memory never decides an outcome."""

from datetime import datetime

from escrow_core.application.commands import CommandService
from escrow_core.application.idempotency import Remember, StoredResponse, remember
from escrow_core.domain import commands as c
from escrow_core.domain.order import OrderState, Status
from escrow_core.store import Store

from .story import (
    BALANCE,
    DEPOSIT,
    TOTAL,
    Orders,
    counting_store,
    event_types,
    pay,
    place_order,
    service_on,
)


def another_process(store: Store) -> CommandService:
    return CommandService(store)


async def test_a_remembered_order_is_decided_on_without_reading_it(
    orders: Orders, store: Store
) -> None:
    # Given a process that wrote the order last, and so remembers it
    counting = counting_store(store)
    service = service_on(counting)
    order_id = (await service.place_order(place_order(orders.cast))).order_id
    assert service.memory.get(order_id) is not None

    # When it runs the next command
    result = await service.execute(order_id, c.AcceptOrder(actor=orders.cast.supplier))

    # Then it was decided on what it remembered, in one attempt, without reading the order
    assert [(e.version, e.type) for e in result.events] == [(2, "order.accepted")]
    assert (counting.reads, counting.loads) == (2, [])
    assert service.memory.get(order_id) == result.state
    # while a process that does not remember it reads the row
    other = counting_store(store)
    await service_on(other).execute(order_id, c.PostMessage(actor=orders.cast.buyer, body="hi"))
    assert (other.reads, other.loads) == (1, ["snapshot"])


async def test_a_write_on_a_stale_memory_is_decided_again_on_the_stored_order(
    orders: Orders, service: CommandService, store: Store
) -> None:
    # Given an order this process took to partially paid (and so remembers)
    order_id = await orders.up_to("accepted")
    await service.execute(order_id, pay(DEPOSIT, "pay_1"))
    assert service.memory.get(order_id) is not None
    # and another process that recorded a message since
    other = another_process(store)
    await other.execute(order_id, c.PostMessage(actor=orders.cast.buyer, body="wire sent"))

    # When this process records the balance
    result = await service.execute(order_id, pay(BALANCE, "pay_2"))

    # Then it lands after the message, on the stored order, and holds the whole total
    assert [e.version for e in result.events] == [6, 7]
    assert (result.state.status, result.state.amounts.held) == (Status.HELD, TOTAL)
    assert (await event_types(store, order_id))[-3:] == [
        "message.posted", "payment.received", "funds.held",
    ]  # fmt: skip


async def test_a_refusal_on_a_stale_memory_is_decided_again_on_the_stored_order(
    orders: Orders, service: CommandService, store: Store
) -> None:
    # Given an order this process remembers as accepted and unpaid
    order_id = await orders.up_to("accepted")
    assert service.memory.get(order_id).status is Status.ACCEPTED  # type: ignore[union-attr]
    # and another process that recorded the whole payment since
    await another_process(store).execute(order_id, pay(TOTAL, "pay_all"))

    # When the supplier ships through this process (its memory says: not paid, refuse)
    ship = c.ShipOrder(actor=orders.cast.supplier, carrier="DHL", tracking_number="JD1")
    result = await service.execute(order_id, ship)

    # Then the stored order, fully held, decides: it ships
    assert result.state.status is Status.SHIPPED
    assert [e.type for e in result.events] == ["order.shipped"]


async def test_a_read_takes_the_remembered_order_only_at_the_stored_version(
    orders: Orders, service: CommandService, store: Store
) -> None:
    # Given an order this process remembers
    order_id = await orders.up_to("accepted")
    remembered = service.memory.get(order_id)
    assert remembered is not None

    # When it reads the order, the row's version matches: what it remembers is the answer
    assert await service.get_order(order_id) is remembered

    # and once another process has written, the stored row is the answer, and remembered
    await another_process(store).execute(
        order_id, c.PostMessage(actor=orders.cast.buyer, body="wire sent")
    )
    read = await service.get_order(order_id)
    assert read is not None
    assert read is not remembered
    assert read.version == remembered.version + 1
    assert service.memory.get(order_id) is read
    assert await service.get_order(order_id) is read


def _keyed(key: str) -> Remember:
    def answer(order_id: str, state: OrderState, at: datetime) -> StoredResponse:
        return StoredResponse(200, order_id.encode(), {})

    return remember("scope-" + key, key, key.encode(), answer, lambda refused: None)


async def test_a_keyed_command_reads_the_snapshot_with_its_key_only_when_not_remembered(
    orders: Orders, store: Store
) -> None:
    """The snapshot of an order the process does not remember is read with the key's turn
    (one round trip on PostgreSQL); a remembered order, or a new one, reads nothing."""
    counting = counting_store(store)
    service = service_on(counting)
    placed = await service.place_order(place_order(orders.cast), remember=_keyed("p"))
    order_id = placed.order_id
    await service.execute(order_id, c.AcceptOrder(actor=orders.cast.supplier), remember=_keyed("a"))
    assert (counting.held, counting.loads) == ([None, None], [])

    other = counting_store(store)
    message = c.PostMessage(actor=orders.cast.buyer, body="hi")
    result = await service_on(other).execute(order_id, message, remember=_keyed("m"))
    assert [e.type for e in result.events] == ["message.posted"]
    assert (other.held, other.loads) == ([order_id], ["snapshot"])
