"""Supplier performance (DESIGN 7.2, 7.7) on both backends: 50 orders of known outcomes made
through the command service on the sandbox clock, the projection caught up from the log as the
worker does, every figure compared with the one worked out by hand below; then a rebuild gives
the same and ``escrow verify``'s check names a tampered row.

The 50 orders (story.py's: total 125_000 cents, deposit 50_000, ship_by 60 days ahead; R's are
placed with a retention of 10% (12_500) for 30 days, R4's for 1 day):

    group  n   what happens                                          shipped at (days)
    A      5   placed, never accepted                                 -
    B      5   accepted, cancelled by the supplier before payment     -
    C      4   accepted, deposit paid only                            -
    E      6   shipped, delivered, dispute settled: 25_000 refunded   0
    F      4   shipped, delivered, dispute settled for nothing        0 (completed)
    D      5   shipped, delivered, confirmed                          3 (completed)
    R      5   shipped, delivered, confirmed: retained; then          3
                 R1 a claim settled: 10_000 refunded (settled)
                 R2 a claim withdrawn (retained again)
                 R3 a claim settled for nothing (completed)
                 R4 the retention's timer on day 4 (completed)
                 R5 nothing more (retained)
    G      8   shipped                                                3
    H      4   ship_by extended 30 days, shipped                      65 (on time)
    I      4   shipped late; 2 of them delivered and confirmed        65 (2 completed)
"""

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from escrow_core.application.commands import CommandService
from escrow_core.application.runtime import Runtime, open_runtime
from escrow_core.application.timers import fire_due_timers
from escrow_core.domain import commands as c
from escrow_core.domain.terms import DisputeReason, ExtendableDeadline, Retention
from escrow_core.projections import supplier_performance as perf
from escrow_core.projections import supplier_performance_log as performance_log
from escrow_core.projections.verify import verify
from escrow_core.settings import Settings
from escrow_core.store import Store, schema
from support.performance import caught_up

from .story import BALANCE, DEPOSIT, TOTAL, Cast, Orders, open_dispute, pay

DAY = 24 * 3600
DISPUTE_REFUND = 25_000
RETAINED = TOTAL // 10  # 12_500: R's 10%, exact
CLAIM_REFUND = 10_000


@pytest.fixture
async def sandbox(fresh_store: Store) -> AsyncIterator[Runtime]:
    settings = Settings(database_url=fresh_store.url, sandbox=True)
    async with open_runtime(settings) as runtime:
        yield runtime


async def _all(orders: Orders, n: int, status: str) -> list[str]:
    return [await orders.up_to(status) for _ in range(n)]


async def _ship(orders: Orders, order_ids: list[str]) -> None:
    for order_id in order_ids:
        await orders.run(
            order_id, c.ShipOrder(actor=orders.cast.supplier, carrier="COSCO", tracking_number="1")
        )


async def _deliver_and_confirm(orders: Orders, order_ids: list[str]) -> list[str]:
    """The orders' statuses after confirmation."""
    cast = orders.cast
    statuses = []
    for order_id in order_ids:
        result = await orders.run(
            order_id, c.ReportDelivery(actor=cast.supplier), c.ConfirmReceipt(actor=cast.buyer)
        )
        statuses.append(result.state.status.value)
    return statuses


async def _settle(orders: Orders, order_ids: list[str], refund: int) -> None:
    cast = orders.cast
    for order_id in order_ids:
        result = await orders.run(
            order_id,
            c.ReportDelivery(actor=cast.supplier),
            open_dispute(cast, DISPUTE_REFUND),
            c.MakeOffer(actor=cast.supplier, refund_amount=refund),
            c.AcceptOffer(actor=cast.buyer),
        )
        assert result.state.status.value == ("settled" if refund else "completed")


def _claim(orders: Orders) -> c.MakeClaim:
    return c.MakeClaim(
        actor=orders.cast.buyer,
        reason=DisputeReason.QUALITY,
        description="two valves crack after a month",
        requested_refund=RETAINED,
    )


async def _claims(orders: Orders, settled: str, withdrawn: str, for_nothing: str) -> None:
    """R1's claim settled with a refund, R2's withdrawn, R3's settled for nothing."""
    cast = orders.cast
    for order_id, refund in ((settled, CLAIM_REFUND), (for_nothing, 0)):
        result = await orders.run(
            order_id,
            _claim(orders),
            c.MakeOffer(actor=cast.supplier, refund_amount=refund),
            c.AcceptOffer(actor=cast.buyer),
        )
        assert result.state.status.value == ("settled" if refund else "completed")
    result = await orders.run(withdrawn, _claim(orders), c.WithdrawDispute(actor=cast.buyer))
    assert result.state.status.value == "retained"


async def fifty_orders(commands: CommandService, store: Store, cast: Cast) -> None:
    orders = Orders(commands, cast)
    for _ in range(5):  # A
        await orders.place()
    for order_id in await _all(orders, 5, "accepted"):  # B
        await orders.run(order_id, c.CancelOrder(actor=cast.supplier, reason="no capacity"))
    await _all(orders, 4, "partially_paid")  # C
    held = await _all(orders, 6 + 4 + 5 + 8 + 4 + 4, "held")
    e, f, d, g, h, i = (
        held[a:b] for a, b in ((0, 6), (6, 10), (10, 15), (15, 23), (23, 27), (27, 31))
    )
    month, one_day = Retention(percent=10, days=30), Retention(percent=10, days=1)
    r = [
        await orders.up_to("held", retention=retention)
        for retention in (month, month, month, one_day, month)
    ]
    for order_id in h:
        extend = c.ExtendDeadline(actor=cast.buyer, deadline=ExtendableDeadline.SHIP_BY, days=30)
        await orders.run(order_id, extend)
    await _ship(orders, e + f)  # day 0
    await _settle(orders, e, DISPUTE_REFUND)
    await _settle(orders, f, 0)
    await store.advance_clock(3 * DAY)
    await _ship(orders, d + r + g)  # day 3
    assert await _deliver_and_confirm(orders, d + r) == ["completed"] * 5 + ["retained"] * 5
    await _claims(orders, settled=r[0], withdrawn=r[1], for_nothing=r[2])
    await store.advance_clock(1 * DAY)  # R4's retention ends; nothing else is due
    fired = await fire_due_timers(commands)
    assert [(t.order_id, t.state.status.value) for t in fired] == [(r[3], "completed")]
    await store.advance_clock(61 * DAY)  # past ship_by (60 days ahead), inside H's 90
    await _ship(orders, h + i)  # day 65
    await _deliver_and_confirm(orders, i[:2])


async def test_fifty_orders_give_the_figures_worked_out_by_hand_and_a_rebuild_the_same(
    sandbox: Runtime,
) -> None:
    # Given 50 orders of known outcomes, and another supplier's order beside them
    store, cast, other = sandbox.store, Cast.new(), Cast.new()
    await Orders(sandbox.commands, other).up_to("held")
    await fifty_orders(sandbox.commands, store, cast)

    # When the projection catches up with the log
    last = await caught_up(store)
    at, counts, shipping = await store.performance_of(cast.supplier_id)
    found = perf.figures(counts, shipping)

    # Then every figure is the one worked out by hand
    # C's deposits, and the 36 orders paid in full (a retention keeps money held: no less paid)
    paid = 4 * DEPOSIT + 36 * TOTAL
    assert paid == 4 * DEPOSIT + 36 * (DEPOSIT + BALANCE) == 4_700_000
    # E's and R1's (a claim's refund has reason dispute); B's and the others' are no dispute's
    refunded = 6 * DISPUTE_REFUND + CLAIM_REFUND
    assert refunded == 160_000
    assert found == perf.Figures(
        orders_accepted=45,  # all but A
        shipped_on_time=6 + 4 + 5 + 5 + 8 + 4,  # E, F, D, R, G, and H thanks to its extension
        shipped_late=4,  # I
        # F (a dispute settled for nothing), D, R3 (a claim settled for nothing), R4 (its
        # retention ended by the timer), half of I; never R1 (settled), R2 or R5 (retained)
        completed=4 + 5 + 1 + 1 + 2,
        disputed=6 + 4,  # E, F: a claim is no dispute
        claims=3,  # R1, R2 (withdrawn, still a claim), R3
        refunded_share=Decimal("0.0340"),  # 160_000 / 4_700_000 = 0.03404...
        # 36 shipped: 10 on day 0, 18 on day 3, 8 on day 65: the 18th and 19th are on day 3
        median_days_to_ship=Decimal("3.00"),
        by_currency=(perf.CurrencyFigures("USD", paid, refunded, Decimal("0.0340")),),
    )
    assert at.position == last
    other_figures = perf.figures(*(await store.performance_of(other.supplier_id))[1:])
    assert (other_figures.orders_accepted, other_figures.by_currency[0].paid) == (1, TOTAL)

    # And a rebuild from the log gives the same rows, counters and checkpoint
    before = await store.performance_snapshot()
    await performance_log.rebuild(store, batch_size=37)
    assert await store.performance_snapshot() == before
    report = await verify(store)
    assert report.problems == []

    # And verify names a tampered counter and a tampered order row
    t, o = schema.supplier_performance.c, schema.supplier_performance_orders.c
    async with store.transaction() as conn:
        await conn.execute(
            schema.supplier_performance.update()
            .where(t.supplier_id == cast.supplier_id)
            .values(completed=t.completed + 1)
        )
        await conn.execute(
            schema.supplier_performance_orders.update()
            .where(o.supplier_id == other.supplier_id)
            .values(paid=1)
        )
    problems = (await verify(store)).problems
    assert len(problems) == 2, problems
    assert problems[0].startswith("supplier_performance_orders ord_")
    assert ".paid: live 1, log says 125000" in problems[0]
    assert problems[1].startswith(f"supplier_performance {cast.supplier_id}/USD: live")
    assert "'completed': 14" in problems[1]
    assert "'completed': 13" in problems[1]


async def step_until_it_reads(store: Store) -> None:
    """One worker step after another until one reads a batch: on PostgreSQL another test's
    open transaction can hold the commit-safe head back for a moment, and until the batch is
    readable a step reads nothing and writes nothing."""
    deadline = time.monotonic() + 15
    while await performance_log.project_once(store) == 0:
        assert time.monotonic() < deadline, "the batch never became commit-safe"
        await asyncio.sleep(0.05)


async def test_a_batch_cut_short_writes_nothing_and_each_event_counts_once(
    sandbox: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a projection that has applied part of the log
    store, cast = sandbox.store, Cast.new()
    orders = Orders(sandbox.commands, cast)
    first = await orders.up_to("held")
    await caught_up(store)
    before = await store.performance_snapshot()
    await orders.run(first, pay(1, "pay_extra"))  # an overpayment: refunded, never held
    await _ship(orders, [first, await orders.up_to("held")])

    # When the worker dies after writing a batch's rows, before moving its checkpoint
    async def crash(*args: object) -> None:
        raise RuntimeError("the worker died mid-batch")

    monkeypatch.setattr(store, "move_checkpoint", crash)
    with pytest.raises(RuntimeError, match="died mid-batch"):
        await step_until_it_reads(store)
    monkeypatch.undo()

    # Then nothing of that batch was kept; a restarted worker applies it, once
    assert await store.performance_snapshot() == before
    await caught_up(store)
    assert await performance_log.catch_up(store) == 0  # nothing new: nothing applied again
    assert await store.project_performance_batch(performance_log.fold, []) == 0
    found = perf.figures(*(await store.performance_of(cast.supplier_id))[1:])
    assert (found.orders_accepted, found.shipped_on_time, found.by_currency[0].paid) == (
        2,
        2,
        2 * TOTAL,
    )
    assert (await verify(store)).problems == []
