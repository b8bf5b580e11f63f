"""Every tranche due, on the sandbox clock (DESIGN 7.2): the timer the worker calls marks an
unpaid balance overdue at the end of its due_by, and ESCROW_PAY_DAYS later cancels the order,
refunding what is held and leaving what a milestone released."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from escrow_core.application.runtime import Runtime, open_runtime
from escrow_core.application.timers import fire_due_timers
from escrow_core.domain import commands as c
from escrow_core.domain.order import deadlines
from escrow_core.domain.terms import DeadlineKind, Tranche
from escrow_core.settings import Settings
from escrow_core.store import Store

from .story import BALANCE, DEPOSIT, Cast, Orders, event_types, pay

DAY = 24 * 3600
PAY_DAYS = 5


@pytest.fixture
async def sandbox(fresh_store: Store) -> AsyncIterator[Runtime]:
    settings = Settings(database_url=fresh_store.url, sandbox=True, pay_days=PAY_DAYS)
    async with open_runtime(settings) as runtime:
        yield runtime


async def test_an_unpaid_balance_is_marked_overdue_then_the_order_is_cancelled(
    sandbox: Runtime,
) -> None:
    # Given a deposit paid, 20,000 of it released, and the balance due in three days
    cast = Cast.new()
    orders = Orders(sandbox.commands, cast)
    due_by = datetime.now(UTC).date() + timedelta(days=3)
    schedule = (
        Tranche(name="deposit", amount=DEPOSIT),
        Tranche(name="balance", amount=BALANCE, due_by=due_by),
    )
    order_id = await orders.place(payment_schedule=schedule, policy=sandbox.settings.timer_policy)
    result = await orders.run(
        order_id,
        c.AcceptOrder(actor=cast.supplier),
        pay(DEPOSIT, "pay_deposit"),
        c.ReleaseMilestone(actor=cast.buyer, amount=20_000),
    )
    assert [d.kind for d in deadlines(result.state)] == [DeadlineKind.TRANCHE_DUE]
    assert await fire_due_timers(sandbox.commands) == []

    # When the clock passes the end of due_by, the timer records the payment overdue
    await sandbox.store.advance_clock(4 * DAY + 60)
    (fired,) = await fire_due_timers(sandbox.commands)
    assert [e.type for e in fired.events] == ["payment.overdue"]
    assert fired.events[0].data["tranche"] == 2
    assert fired.state.payment_overdue
    assert await fire_due_timers(sandbox.commands) == []

    # and ESCROW_PAY_DAYS after the due time the order is cancelled, held money refunded
    await sandbox.store.advance_clock(PAY_DAYS * DAY)
    (fired,) = await fire_due_timers(sandbox.commands)
    assert [e.type for e in fired.events] == ["order.cancelled", "refund.issued"]
    assert {e.metadata["actor"]["role"] for e in fired.events} == {"system"}
    amounts = fired.state.amounts
    assert (amounts.released, amounts.refunded, amounts.held) == (20_000, DEPOSIT - 20_000, 0)
    assert fired.state.status.value == "cancelled"
    types = await event_types(sandbox.store, order_id)
    assert types.count("payment.overdue") == 1
    assert await fire_due_timers(sandbox.commands) == []
