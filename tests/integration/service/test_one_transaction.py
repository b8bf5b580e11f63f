"""One command = one atomic write: its events, the order_view row, the party_balances entries
and the Idempotency-Key answer are written together or not at all.

The answer is the last thing the write stores, so an answer the database refuses (a status
outside 100-599 breaks a CHECK constraint) fails the write after everything else is in it.
"""

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import sqlalchemy as sa

from escrow_core.domain import commands as c
from escrow_core.domain.order import OrderState
from escrow_core.idempotency import Remember, StoredResponse
from escrow_core.service import EscrowService
from escrow_core.store import Database, schema
from support.events import new_stream_id

from .story import DEPOSIT, Orders, balance_rows, event_types, pay, place_order, view_row

REFUSED_BY_THE_DATABASE = (sa.exc.IntegrityError, asyncpg.CheckViolationError)


async def claim(database: Database, scope: str) -> None:
    """An in-flight Idempotency-Key claim, as the API makes before running a command."""
    now = datetime.now(UTC)
    async with database.transaction() as conn:
        await conn.execute(
            schema.idempotency_keys.insert().values(
                scope=scope,
                key="key-1",
                body_hash="hash",
                status="in_flight",
                created_at=now,
                expires_at=now + timedelta(days=1),
            )
        )


def remember(scope: str, status: int) -> Remember:
    def answer(order_id: str, order: OrderState, now: datetime) -> StoredResponse:
        return StoredResponse(status, b'{"id": "%s"}' % order_id.encode(), {"etag": '"1"'})

    return Remember(scope, "key-1", answer)


async def answer_row(database: Database, scope: str) -> tuple[str, int | None]:
    t = schema.idempotency_keys
    async with database.read() as conn:
        query = sa.select(t.c.status, t.c.response_status).where(t.c.scope == scope)
        row = (await conn.execute(query)).one()
    return row.status, row.response_status


async def count_events(database: Database) -> int:
    async with database.read() as conn:
        return int((await conn.execute(sa.text("SELECT count(*) FROM events"))).scalar_one())


async def test_a_write_that_fails_at_its_end_leaves_no_trace_of_the_command(
    orders: Orders, service: EscrowService, database: Database
) -> None:
    # Given an accepted order and an Idempotency-Key claimed for a payment
    order_id = await orders.up_to("accepted")
    view_before = await view_row(database, order_id)
    scope = new_stream_id("scope")
    await claim(database, scope)

    # When the payment's write fails on its last part, the answer
    with pytest.raises(REFUSED_BY_THE_DATABASE):
        await service.execute(order_id, pay(DEPOSIT, "pay_1"), remember=remember(scope, 999))

    # Then no events, no order_view change, no balance rows, the claim still in flight
    assert await event_types(service, order_id) == ["order.placed", "order.accepted"]
    assert await view_row(database, order_id) == view_before
    assert await balance_rows(database, order_id) == []
    assert await answer_row(database, scope) == ("in_flight", None)
    # and the order still takes the same payment
    result = await service.execute(order_id, pay(DEPOSIT, "pay_1"))
    assert (result.state.version, result.state.amounts.held) == (4, DEPOSIT)


async def test_a_failed_placement_leaves_no_order_behind(
    orders: Orders, service: EscrowService, database: Database
) -> None:
    events_before = await count_events(database)
    scope = new_stream_id("scope")
    await claim(database, scope)

    with pytest.raises(REFUSED_BY_THE_DATABASE):
        await service.place_order(place_order(orders.cast), remember=remember(scope, 999))

    assert await count_events(database) == events_before
    async with database.read() as conn:
        views = sa.select(sa.func.count()).where(
            schema.order_view.c.buyer_id == orders.cast.buyer_id
        )
        assert (await conn.execute(views)).scalar_one() == 0
    assert await answer_row(database, scope) == ("in_flight", None)


async def test_the_answer_commits_with_the_command(
    orders: Orders, service: EscrowService, database: Database
) -> None:
    order_id = await orders.up_to("placed")
    scope = new_stream_id("scope")
    await claim(database, scope)

    result = await service.execute(
        order_id, c.AcceptOrder(actor=orders.cast.supplier), remember=remember(scope, 200)
    )

    assert [e.type for e in result.events] == ["order.accepted"]
    assert (await view_row(database, order_id) or {})["status"] == "accepted"
    assert await answer_row(database, scope) == ("done", 200)


async def test_a_command_that_changes_nothing_still_keeps_its_answer(
    orders: Orders, service: EscrowService, database: Database
) -> None:
    # Given a recorded payment, retried by the provider under a new Idempotency-Key
    order_id = await orders.up_to("accepted")
    await service.execute(order_id, pay(DEPOSIT, "pay_1"))
    scope = new_stream_id("scope")
    await claim(database, scope)

    result = await service.execute(order_id, pay(DEPOSIT, "pay_1"), remember=remember(scope, 200))

    assert result.events == []
    assert await answer_row(database, scope) == ("done", 200)
