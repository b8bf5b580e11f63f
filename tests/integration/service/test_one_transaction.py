"""One command = one transaction: load, decide, append, update the inline projections, commit.

Nothing of a command survives a failure anywhere inside its transaction, and the ``within``
hook (where the API stores the idempotency record) commits or rolls back with it.
"""

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.domain import commands as c
from escrow_core.service import CommandResult, EscrowService, Within
from escrow_core.store import Database, schema
from support.events import new_stream_id

from .story import DEPOSIT, Orders, balance_rows, event_types, pay, place_order, view_row


class Boom(Exception):
    """Raised by the ``within`` hook once the events and projections are written."""


def idempotency_record(scope: str, result: CommandResult) -> sa.Insert:
    """What the API's ``within`` hook writes: the answer to replay for an Idempotency-Key."""
    return schema.idempotency_keys.insert().values(
        scope=scope,
        key="key-1",
        body_hash="hash",
        status="done",
        response_status=200,
        created_at=result.at,
        expires_at=result.at + timedelta(days=1),
    )


def record_then_explode(scope: str) -> Within:
    async def within(conn: AsyncConnection, result: CommandResult) -> None:
        await conn.execute(idempotency_record(scope, result))
        # The command's writes are there, in this transaction, when it fails.
        stored = sa.text("SELECT count(*) FROM events WHERE stream_id = :s")
        assert (await conn.execute(stored, {"s": result.order_id})).scalar_one() == (
            result.state.version
        )
        raise Boom

    return within


async def idempotency_records(database: Database, scope: str) -> int:
    t = schema.idempotency_keys
    async with database.read() as conn:
        query = sa.select(sa.func.count()).select_from(t).where(t.c.scope == scope)
        return int((await conn.execute(query)).scalar_one())


async def count_events(database: Database) -> int:
    async with database.read() as conn:
        return int((await conn.execute(sa.text("SELECT count(*) FROM events"))).scalar_one())


async def test_a_failure_after_the_append_leaves_no_trace_of_the_command(
    orders: Orders, service: EscrowService, database: Database
) -> None:
    # Given an accepted order
    order_id = await orders.up_to("accepted")
    view_before = await view_row(database, order_id)

    # When a payment fails inside its transaction after the append
    scope = new_stream_id("scope")
    with pytest.raises(Boom):
        await service.execute(order_id, pay(DEPOSIT, "pay_1"), within=record_then_explode(scope))

    # Then no events, no order_view change and no balance rows
    assert await event_types(service, order_id) == ["order.placed", "order.accepted"]
    assert await view_row(database, order_id) == view_before
    assert await balance_rows(database, order_id) == []
    assert await idempotency_records(database, scope) == 0
    # and the order still takes the same payment
    result = await service.execute(order_id, pay(DEPOSIT, "pay_1"))
    assert (result.state.version, result.state.amounts.held) == (4, DEPOSIT)


async def test_a_failed_placement_leaves_no_order_behind(
    orders: Orders, service: EscrowService, database: Database
) -> None:
    events_before = await count_events(database)
    scope = new_stream_id("scope")

    with pytest.raises(Boom):
        await service.place_order(place_order(orders.cast), within=record_then_explode(scope))

    assert await count_events(database) == events_before
    async with database.read() as conn:
        views = sa.select(sa.func.count()).where(
            schema.order_view.c.buyer_id == orders.cast.buyer_id
        )
        assert (await conn.execute(views)).scalar_one() == 0
    assert await idempotency_records(database, scope) == 0


async def test_what_the_within_hook_writes_commits_with_the_command(
    orders: Orders, service: EscrowService, database: Database
) -> None:
    order_id = await orders.up_to("placed")
    scope = new_stream_id("scope")

    async def record(conn: AsyncConnection, result: CommandResult) -> None:
        await conn.execute(idempotency_record(scope, result))

    result = await service.execute(
        order_id, c.AcceptOrder(actor=orders.cast.supplier), within=record
    )

    assert [e.type for e in result.events] == ["order.accepted"]
    assert (await view_row(database, order_id) or {})["status"] == "accepted"
    assert await idempotency_records(database, scope) == 1
