"""The inline snapshot: order_view's row is the folded stream, and the log stays the truth.

order_view is a projection, so deleting its rows is allowed: commands and reads then fold the
stream, and the next command writes the row again.
"""

from datetime import timedelta

from escrow_core.application.commands import CommandService
from escrow_core.domain import commands as c
from escrow_core.domain.order import Status
from escrow_core.store import Store, schema
from support.tables import view_row

from .story import DEPOSIT, TOTAL, Orders, counting_store, folded, open_dispute, service_on


async def delete_view_row(store: Store, order_id: str) -> None:
    async with store.transaction() as conn:
        await conn.execute(
            schema.order_view.delete().where(schema.order_view.c.order_id == order_id)
        )


async def test_a_command_reads_the_stream_when_the_snapshot_row_is_missing(
    orders: Orders, store: Store
) -> None:
    # Given a fully paid order whose order_view row has been deleted
    order_id = await orders.up_to("held")
    await delete_view_row(store, order_id)

    # When the supplier ships it, through a process that does not remember the order
    ship = c.ShipOrder(actor=orders.cast.supplier, carrier="DHL", tracking_number="JD1")
    counting = counting_store(store)
    result = await service_on(counting).execute(order_id, ship)

    # Then the command was decided, in one attempt, on the folded stream (version 6, held)
    assert [(e.version, e.type) for e in result.events] == [(7, "order.shipped")]
    assert result.state.status is Status.SHIPPED
    assert counting.reads == 1
    # and the row is written again, as the log says
    row = await view_row(store, order_id)
    assert row is not None
    assert (row["version"], row["status"]) == (7, "shipped")
    assert row["state"] == (await folded(store, order_id)).model_dump(mode="json")


async def test_reads_fold_the_stream_while_the_snapshot_row_is_missing(
    orders: Orders, service: CommandService, store: Store
) -> None:
    order_id = await orders.up_to("partially_paid")
    await delete_view_row(store, order_id)

    order = await service.get_order(order_id)

    assert order is not None
    assert (order.version, order.status, order.amounts.held) == (
        3 + 1,
        Status.PARTIALLY_PAID,
        DEPOSIT,
    )
    assert await service.get_order("ord_no_such_order") is None


async def test_the_row_columns_and_snapshot_match_folding_the_stream(
    orders: Orders, store: Store
) -> None:
    # Given a delivered order the buyer disputes
    order_id = await orders.up_to("delivered")
    await orders.run(order_id, open_dispute(orders.cast, refund=20_000))

    # When the row is compared with the stream folded from scratch
    row = await view_row(store, order_id)
    order = await folded(store, order_id)

    # Then every column says what the log says
    assert order.dispute is not None
    assert row == {
        "order_id": order_id,
        "version": 9,
        "status": "disputed",
        "buyer_id": orders.cast.buyer_id,
        "supplier_id": orders.cast.supplier_id,
        "currency": "USD",
        "total": TOTAL,
        # the inspection timer stopped; auto-escalation runs 7 days from opening
        "next_timer_at": order.dispute.opened_at + timedelta(days=7),
        "dispute_status": "open",
        "dispute_opened_at": order.dispute.opened_at,
        "state": order.model_dump(mode="json"),
        "created_at": order.placed_at,
        "updated_at": order.dispute.opened_at,
        "client_reference": None,
        "metadata": {},
    }


async def test_get_order_at_a_version_is_the_order_as_it_stood_then(
    orders: Orders, service: CommandService
) -> None:
    order_id = await orders.up_to("held")  # versions: placed 1, accepted 2, paid 3-4 and 5-6

    async def at(version: int) -> tuple[int, str, int, int] | None:
        order = await service.get_order(order_id, version=version)
        if order is None:
            return None
        return order.version, order.status.value, order.amounts.paid, order.amounts.held

    assert await at(1) == (1, "placed", 0, 0)
    assert await at(2) == (2, "accepted", 0, 0)
    assert await at(3) == (3, "accepted", DEPOSIT, 0)  # inside the payment: received, not held
    assert await at(4) == (4, "partially_paid", DEPOSIT, DEPOSIT)
    assert await at(6) == (6, "held", TOTAL, TOTAL)
    assert await at(7) is None  # no such version yet
    assert await service.get_order(order_id, version=6) == await service.get_order(order_id)


async def test_a_snapshot_row_behind_the_log_costs_one_retry_and_is_rewritten(
    orders: Orders, store: Store
) -> None:
    # Given an accepted order whose row was put back to how it was when placed
    order_id = await orders.up_to("placed")
    stale = await view_row(store, order_id)
    assert stale is not None
    await orders.run(order_id, c.AcceptOrder(actor=orders.cast.supplier))
    async with store.transaction() as conn:
        rewind = schema.order_view.update().where(schema.order_view.c.order_id == order_id)
        await conn.execute(rewind.values({k: v for k, v in stale.items() if k != "order_id"}))

    # When the supplier posts a message through a process that does not remember the order
    # (decided on the stale row, the commit conflicts)
    counting = counting_store(store)
    result = await service_on(counting).execute(
        order_id, c.PostMessage(actor=orders.cast.supplier, body="shipping next week")
    )

    # Then one retry folded the stream: the message is version 3, and the row is right again
    assert counting.reads == 2
    assert [(e.version, e.type) for e in result.events] == [(3, "message.posted")]
    row = await view_row(store, order_id)
    assert row is not None
    assert (row["version"], row["status"]) == (3, "accepted")
    assert row["state"] == (await folded(store, order_id)).model_dump(mode="json")
