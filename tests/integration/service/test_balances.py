"""party_balances: held / released / refunded (and fees) per party and currency, summed from
the ledger rows each money-moving command writes for both the buyer and the supplier."""

from escrow_core.domain import commands as c
from escrow_core.domain.policy import TimerPolicy
from escrow_core.domain.roles import Actor, Role
from escrow_core.projections import party_balances
from escrow_core.projections.party_balances import Balance
from escrow_core.service import EscrowService
from escrow_core.store import Database

from .story import (
    BALANCE,
    DEPOSIT,
    MEDIATOR,
    TOTAL,
    Cast,
    Orders,
    balance_rows,
    open_dispute,
    pay,
)

FEE_ON_TOTAL = 3_125  # 2.5% of 125_000
ADMIN = Actor(role=Role.ADMIN)


async def balances(database: Database, party_id: str) -> list[Balance]:
    async with database.read() as conn:
        return await party_balances.for_party(conn, party_id)


async def both_parties(database: Database, cast: Cast) -> tuple[list[Balance], list[Balance]]:
    return await balances(database, cast.buyer_id), await balances(database, cast.supplier_id)


async def test_a_payment_is_held_for_both_parties(orders: Orders, database: Database) -> None:
    order_id = await orders.up_to("partially_paid")

    held = [Balance("USD", held=DEPOSIT)]
    assert await both_parties(database, orders.cast) == (held, held)
    assert [(r["party_id"], r["held"]) for r in await balance_rows(database, order_id)] == [
        (orders.cast.buyer_id, DEPOSIT),
        (orders.cast.supplier_id, DEPOSIT),
    ]


async def test_a_release_moves_the_held_total_to_released_with_the_fee(
    orders: Orders, database: Database
) -> None:
    order_id = await orders.up_to("delivered")

    await orders.run(order_id, c.ConfirmReceipt(actor=orders.cast.buyer))

    released = [Balance("USD", released=TOTAL, fees=FEE_ON_TOTAL)]
    assert await both_parties(database, orders.cast) == (released, released)


async def test_a_cancellation_refunds_what_was_held(orders: Orders, database: Database) -> None:
    order_id = await orders.up_to("partially_paid")

    await orders.run(order_id, c.CancelOrder(actor=orders.cast.supplier, reason="out of stock"))

    refunded = [Balance("USD", refunded=DEPOSIT)]
    assert await both_parties(database, orders.cast) == (refunded, refunded)


async def test_a_settlement_refunds_part_and_releases_the_rest(
    orders: Orders, database: Database
) -> None:
    order_id = await orders.up_to("delivered")

    # the buyer asks 40_000 back and the supplier accepts: settled
    result = await orders.run(
        order_id,
        open_dispute(orders.cast, refund=40_000),
        c.AcceptOffer(actor=orders.cast.supplier),
    )

    assert result.state.status.value == "settled"
    settled = [Balance("USD", released=85_000, refunded=40_000, fees=2_125)]
    assert await both_parties(database, orders.cast) == (settled, settled)


async def test_sums_are_per_party_and_currency_across_orders(
    service: EscrowService, database: Database
) -> None:
    # Given one buyer trading with two suppliers, in USD and in EUR
    first = Cast.new()
    second = Cast(buyer=first.buyer, supplier=Cast.new().supplier)
    usd, eur = Orders(service, first), Orders(service, second)
    # USD: one order completed, one cancelled by an admin after the deposit
    completed = await usd.up_to("delivered")
    await usd.run(completed, c.ConfirmReceipt(actor=first.buyer))
    cancelled = await usd.up_to("partially_paid")
    await usd.run(cancelled, c.CancelOrder(actor=ADMIN, reason="fraud check"))
    # EUR: one refunded in full by a mediator, one with the balance tranche held
    refunded = await eur.up_to("delivered", currency="EUR", policy=TimerPolicy(negotiation_days=0))
    await eur.run(
        refunded,
        open_dispute(second, refund=TOTAL),
        c.EscalateDispute(actor=second.supplier),
        c.ResolveDispute(actor=MEDIATOR, refund_amount=TOTAL, note="goods never arrived"),
    )
    held = await eur.up_to("accepted", currency="EUR")
    await eur.run(held, pay(BALANCE, "pay_eur"))

    # Then each party's balance is the sum of its own orders, per currency
    assert await balances(database, first.buyer_id) == [
        Balance("EUR", held=BALANCE, refunded=TOTAL),
        Balance("USD", released=TOTAL, refunded=DEPOSIT, fees=FEE_ON_TOTAL),
    ]
    assert await balances(database, first.supplier_id) == [
        Balance("USD", released=TOTAL, refunded=DEPOSIT, fees=FEE_ON_TOTAL)
    ]
    assert await balances(database, second.supplier_id) == [
        Balance("EUR", held=BALANCE, refunded=TOTAL)
    ]
