"""party_balances: held / released / refunded (and fees) per party and currency, summed from
the ledger rows each money-moving command writes for both the buyer and the supplier."""

from escrow_core.application.commands import CommandService
from escrow_core.domain import commands as c
from escrow_core.domain.policy import TimerPolicy
from escrow_core.domain.roles import Actor, Role
from escrow_core.store import BalanceTotals, Store
from support.tables import balance_rows

from .story import BALANCE, DEPOSIT, MEDIATOR, TOTAL, Cast, Orders, open_dispute, pay

FEE_ON_TOTAL = 3_125  # 2.5% of 125_000
ADMIN = Actor(role=Role.ADMIN)


def balance(
    party_id: str,
    currency: str,
    *,
    held: int = 0,
    released: int = 0,
    refunded: int = 0,
    fees: int = 0,
) -> BalanceTotals:
    return BalanceTotals(party_id, currency, held, released, refunded, fees)


async def both_parties(store: Store, cast: Cast) -> tuple[list[BalanceTotals], ...]:
    return await store.balances_of(cast.buyer_id), await store.balances_of(cast.supplier_id)


def for_both(cast: Cast, currency: str, **amounts: int) -> tuple[list[BalanceTotals], ...]:
    return (
        [balance(cast.buyer_id, currency, **amounts)],
        [balance(cast.supplier_id, currency, **amounts)],
    )


async def test_a_payment_is_held_for_both_parties(orders: Orders, store: Store) -> None:
    order_id = await orders.up_to("partially_paid")

    assert await both_parties(store, orders.cast) == for_both(orders.cast, "USD", held=DEPOSIT)
    stored = await store.stream(order_id)
    held_at = next(e.position for e in stored if e.type == "funds.held")
    assert [
        (r["party_id"], r["position"], r["held"]) for r in await balance_rows(store, order_id)
    ] == [
        (orders.cast.buyer_id, held_at, DEPOSIT),
        (orders.cast.supplier_id, held_at, DEPOSIT),
    ]


async def test_a_release_moves_the_held_total_to_released_with_the_fee(
    orders: Orders, store: Store
) -> None:
    order_id = await orders.up_to("delivered")

    await orders.run(order_id, c.ConfirmReceipt(actor=orders.cast.buyer))

    assert await both_parties(store, orders.cast) == for_both(
        orders.cast, "USD", released=TOTAL, fees=FEE_ON_TOTAL
    )


async def test_a_cancellation_refunds_what_was_held(orders: Orders, store: Store) -> None:
    order_id = await orders.up_to("partially_paid")

    await orders.run(order_id, c.CancelOrder(actor=orders.cast.supplier, reason="out of stock"))

    assert await both_parties(store, orders.cast) == for_both(orders.cast, "USD", refunded=DEPOSIT)


async def test_a_settlement_refunds_part_and_releases_the_rest(
    orders: Orders, store: Store
) -> None:
    order_id = await orders.up_to("delivered")

    # the buyer asks 40_000 back and the supplier accepts: settled
    result = await orders.run(
        order_id,
        open_dispute(orders.cast, refund=40_000),
        c.AcceptOffer(actor=orders.cast.supplier),
    )

    assert result.state.status.value == "settled"
    assert await both_parties(store, orders.cast) == for_both(
        orders.cast, "USD", released=85_000, refunded=40_000, fees=2_125
    )


async def test_sums_are_per_party_and_currency_across_orders(
    service: CommandService, store: Store
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
    assert await store.balances_of(first.buyer_id) == [
        balance(first.buyer_id, "EUR", held=BALANCE, refunded=TOTAL),
        balance(first.buyer_id, "USD", released=TOTAL, refunded=DEPOSIT, fees=FEE_ON_TOTAL),
    ]
    assert await store.balances_of(first.supplier_id) == [
        balance(first.supplier_id, "USD", released=TOTAL, refunded=DEPOSIT, fees=FEE_ON_TOTAL)
    ]
    assert await store.balances_of(second.supplier_id) == [
        balance(second.supplier_id, "EUR", held=BALANCE, refunded=TOTAL)
    ]
