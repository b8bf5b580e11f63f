"""One command = one atomic write: its events, the order_view row, the party_balances entries
and the Idempotency-Key answer are written together or not at all.

An answer the database refuses (a status outside 100-599 breaks a CHECK constraint) fails the
whole write. A key with a kept answer is replayed, never decided again.
"""

from datetime import datetime

import asyncpg
import pytest
import sqlalchemy as sa

from escrow_core.application import idempotency
from escrow_core.application.commands import CommandService
from escrow_core.application.errors import Invalid
from escrow_core.application.idempotency import Remember, Replayed, StoredResponse
from escrow_core.domain import commands as c
from escrow_core.domain.errors import DomainError
from escrow_core.domain.order import OrderState
from escrow_core.store import Store, schema
from support.events import new_stream_id
from support.tables import balance_rows, view_row

from .story import DEPOSIT, Orders, event_types, pay, place_order

REFUSED_BY_THE_DATABASE = (sa.exc.IntegrityError, asyncpg.CheckViolationError)


def remember(scope: str, status: int, body: bytes = b"{}") -> Remember:
    def answer(order_id: str, order: OrderState, now: datetime) -> StoredResponse:
        body = b'{"id": "%s", "version": %d}' % (order_id.encode(), order.version)
        return StoredResponse(status, body, {"etag": f'"{order.version}"'})

    def refusal(error: DomainError) -> StoredResponse:
        return StoredResponse(409, error.code.encode(), {})

    return idempotency.remember(scope, "key-1", body, answer, refusal)


async def answer_row(store: Store, scope: str) -> tuple[str, int | None, str | None] | None:
    t = schema.idempotency_keys
    async with store.read() as conn:
        query = sa.select(t.c.status, t.c.response_status, t.c.response_body).where(
            t.c.scope == scope
        )
        row = (await conn.execute(query)).first()
    return None if row is None else (row.status, row.response_status, row.response_body)


async def test_a_write_that_fails_at_its_end_leaves_no_trace_of_the_command(
    orders: Orders, service: CommandService, store: Store
) -> None:
    # Given an accepted order and an Idempotency-Key for a payment
    order_id = await orders.up_to("accepted")
    view_before = await view_row(store, order_id)
    scope = new_stream_id("scope")

    # When the payment's write fails on its last part, the answer
    with pytest.raises(REFUSED_BY_THE_DATABASE):
        await service.execute(order_id, pay(DEPOSIT, "pay_1"), remember=remember(scope, 999))

    # Then no events, no order_view change, no balance rows, no answer kept
    assert await event_types(store, order_id) == ["order.placed", "order.accepted"]
    assert await view_row(store, order_id) == view_before
    assert await balance_rows(store, order_id) == []
    assert await answer_row(store, scope) is None
    # and the order still takes the same payment
    result = await service.execute(order_id, pay(DEPOSIT, "pay_1"))
    assert (result.state.version, result.state.amounts.held) == (4, DEPOSIT)


async def test_a_failed_placement_leaves_no_order_behind(
    orders: Orders, service: CommandService, store: Store
) -> None:
    scope = new_stream_id("scope")

    with pytest.raises(REFUSED_BY_THE_DATABASE):
        await service.place_order(place_order(orders.cast), remember=remember(scope, 999))

    assert await buyers_orders(store, orders.cast.buyer_id) == (0, 0)
    assert await answer_row(store, scope) is None
    # and placing it with a proper answer leaves exactly one
    await service.place_order(place_order(orders.cast), remember=remember(scope, 201))
    assert await buyers_orders(store, orders.cast.buyer_id) == (1, 1)


async def buyers_orders(store: Store, buyer_id: str) -> tuple[int, int]:
    """(order.placed events, order_view rows) of the buyer's orders."""
    async with store.read() as conn:
        placed = sa.select(sa.func.count()).where(
            schema.events.c.type == "order.placed",
            schema.events.c.data["buyer_id"].as_string() == buyer_id,
        )
        views = sa.select(sa.func.count()).where(schema.order_view.c.buyer_id == buyer_id)
        return (await conn.execute(placed)).scalar_one(), (await conn.execute(views)).scalar_one()


async def test_the_answer_commits_with_the_command(
    orders: Orders, service: CommandService, store: Store
) -> None:
    order_id = await orders.up_to("placed")
    scope = new_stream_id("scope")

    result = await service.execute(
        order_id, c.AcceptOrder(actor=orders.cast.supplier), remember=remember(scope, 200)
    )

    assert [e.type for e in result.events] == ["order.accepted"]
    assert (await view_row(store, order_id) or {})["status"] == "accepted"
    # the answer was rendered from the order as the command left it
    assert await answer_row(store, scope) == (
        "done",
        200,
        f'{{"id": "{order_id}", "version": 2}}',
    )


async def test_a_command_that_changes_nothing_still_keeps_its_answer(
    orders: Orders, service: CommandService, store: Store
) -> None:
    # Given a recorded payment, retried by the provider under a new Idempotency-Key
    order_id = await orders.up_to("accepted")
    await service.execute(order_id, pay(DEPOSIT, "pay_1"))
    scope = new_stream_id("scope")

    result = await service.execute(order_id, pay(DEPOSIT, "pay_1"), remember=remember(scope, 200))

    assert result.events == []
    stored_body = f'{{"id": "{order_id}", "version": 4}}'
    assert await answer_row(store, scope) == ("done", 200, stored_body)
    assert await event_types(store, order_id) == [
        "order.placed", "order.accepted", "payment.received", "funds.held",
    ]  # fmt: skip


async def test_a_key_with_a_kept_answer_is_replayed_never_decided_again(
    orders: Orders, service: CommandService, store: Store
) -> None:
    order_id = await orders.up_to("placed")
    scope = new_stream_id("scope")
    accept = c.AcceptOrder(actor=orders.cast.supplier)
    first = await service.execute(order_id, accept, remember=remember(scope, 200))
    await service.execute(order_id, pay(DEPOSIT, "pay_1"))  # the order moves on

    with pytest.raises(Replayed) as replayed:
        await service.execute(order_id, accept, remember=remember(scope, 200))

    assert replayed.value.answer.body == f'{{"id": "{order_id}", "version": 2}}'.encode()
    assert first.state.version == 2
    assert (await event_types(store, order_id)).count("order.accepted") == 1
    # another body under the same key is refused, and runs nothing either
    with pytest.raises(Invalid) as reused:
        await service.execute(order_id, accept, remember=remember(scope, 200, b'{"x": 1}'))
    assert reused.value.code == "idempotency_key_reused"


async def test_a_refusal_by_the_orders_rules_is_kept_and_replayed(
    orders: Orders, service: CommandService, store: Store
) -> None:
    order_id = await orders.up_to("placed")
    scope = new_stream_id("scope")
    ship_too_soon = c.ShipOrder(actor=orders.cast.supplier, carrier="DHL", tracking_number="1")

    with pytest.raises(DomainError) as refused:
        await service.execute(order_id, ship_too_soon, remember=remember(scope, 200))

    assert await answer_row(store, scope) == ("done", 409, refused.value.code)
    with pytest.raises(Replayed):
        await service.execute(order_id, ship_too_soon, remember=remember(scope, 200))
