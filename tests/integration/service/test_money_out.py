"""Money out through the service, on both backends: the payouts and refunds a command creates
are rows the same write keeps, the ledger's transfers sum to zero, each order's accounts
match its amounts, and a rebuild from the log writes the same again."""

from dataclasses import replace

from escrow_core.application.commands import CommandService
from escrow_core.domain import commands as c
from escrow_core.domain.order import OrderState
from escrow_core.projections import ledger
from escrow_core.projections.money_out import PAYOUT, REFUND
from escrow_core.projections.rebuild import rebuild
from escrow_core.store import MoneyOutQuery, MoneyOutRow, Posting, Store

from .story import BALANCE, DEPOSIT, FEE_BPS, PAYMENTS, Cast, Orders, open_dispute

REFUND_AMOUNT = 100_000  # more than the balance payment: it reaches into the deposit


async def _settled_with_a_refund(orders: Orders) -> tuple[str, OrderState]:
    """A two-tranche order, delivered, disputed, and settled by the supplier accepting a
    refund of 100_000 (the rest released)."""
    order_id = await orders.up_to("delivered")
    await orders.run(order_id, open_dispute(orders.cast, REFUND_AMOUNT))
    result = await orders.run(order_id, c.AcceptOffer(actor=orders.cast.supplier))
    return order_id, result.state


async def _ledger_of(store: Store, order_id: str) -> list[Posting]:
    return [
        p
        async for batch in store.all_postings(batch_size=500)
        for p in batch
        if p.order_id == order_id
    ]


async def _assert_ledger_matches(store: Store, order_id: str, order: OrderState) -> None:
    unbalanced, sums = await store.ledger_check()
    assert unbalanced == []
    found = {
        account: (posted, pending)
        for oid, account, _, posted, pending in sums
        if oid == order_id and (posted or pending)
    }
    assert found == ledger.expected_balances(order_id, order)


async def test_a_refund_goes_back_over_the_payments_newest_first(
    orders: Orders, store: Store
) -> None:
    order_id, order = await _settled_with_a_refund(orders)

    assert order.status.value == "settled"
    refunds = await store.list_money_out(MoneyOutQuery(REFUND, 10, order_id=order_id))
    by_payment = {row.payment_provider_ref: row for row in refunds}
    assert {ref: row.amount for ref, row in by_payment.items()} == {
        "pay_balance": BALANCE,
        "pay_deposit": REFUND_AMOUNT - BALANCE,
    }
    assert all(row.status == "pending" and row.party_id == orders.cast.buyer_id for row in refunds)
    released = DEPOSIT + BALANCE - REFUND_AMOUNT
    fee = (released * FEE_BPS + 5_000) // 10_000
    (payout,) = await store.list_money_out(MoneyOutQuery(PAYOUT, 10, order_id=order_id))
    assert (payout.party_id, payout.amount, payout.status) == (
        orders.cast.supplier_id,
        released - fee,
        "pending",
    )
    await _assert_ledger_matches(store, order_id, order)


async def test_a_failed_payout_is_retried_then_paid_and_the_ledger_follows(
    orders: Orders, store: Store
) -> None:
    order_id = await orders.up_to("delivered")
    confirmed = await orders.run(order_id, c.ConfirmReceipt(actor=orders.cast.buyer))
    (payout,) = confirmed.state.payouts
    supplier = ledger.supplier(orders.cast.supplier_id)

    failed = await orders.run(
        order_id, c.ReportPayoutFailed(actor=PAYMENTS, payout_id=payout.id, reason="closed")
    )
    await _assert_ledger_matches(store, order_id, failed.state)
    row = await store.find_money_out(payout.id, PAYOUT)
    assert row is not None
    assert (row.status, row.failure_reason) == ("failed", "closed")

    await orders.run(order_id, c.RetryPayout(actor=PAYMENTS, payout_id=payout.id))
    paid = await orders.run(
        order_id, c.ReportPayoutPaid(actor=PAYMENTS, payout_id=payout.id, provider_ref="tr_1")
    )

    await _assert_ledger_matches(store, order_id, paid.state)
    row = await store.find_money_out(payout.id, PAYOUT)
    assert row is not None
    assert (row.status, row.provider_ref) == ("paid", "tr_1")
    assert paid.state.amounts.paid_out == payout.amount
    postings = await _ledger_of(store, order_id)
    on_supplier = [p for p in postings if p.account == supplier]
    # released, fee, then: pending, voided, pending again, posted: nothing left owed or on its way
    assert [p.phase for p in on_supplier] == [
        "posted",
        "posted",
        "pending",
        "voided",
        "pending",
        "posted",
    ]
    assert ledger.balances(on_supplier)[(supplier, "USD")].posted == 0
    assert ledger.balances(on_supplier)[(supplier, "USD")].pending == 0


async def test_an_overpayment_is_refunded_at_once_and_the_order_is_otherwise_untouched(
    orders: Orders, store: Store
) -> None:
    order_id = await orders.up_to("partially_paid")
    paid = await orders.run(
        order_id,
        c.RecordPayment(
            actor=PAYMENTS, amount=BALANCE + 100, method="card", provider_ref="pay_over"
        ),
    )

    assert paid.state.status.value == "held"
    assert (paid.state.amounts.held, paid.state.amounts.refunded) == (DEPOSIT + BALANCE, 100)
    (refund,) = await store.list_money_out(MoneyOutQuery(REFUND, 10, order_id=order_id))
    assert (refund.amount, refund.payment_provider_ref) == (100, "pay_over")
    await _assert_ledger_matches(store, order_id, paid.state)


def _without_ids(rows: list[Posting]) -> list[Posting]:
    return sorted((replace(p, id=None) for p in rows), key=lambda p: (p.transfer_id, p.account))


async def test_a_rebuild_writes_the_same_money_out_and_ledger(fresh_store: Store) -> None:
    orders = Orders(CommandService(fresh_store), Cast.new())
    order_id, _ = await _settled_with_a_refund(orders)
    before_postings = _without_ids(await _ledger_of(fresh_store, order_id))
    before_rows: list[MoneyOutRow] = [
        *await fresh_store.list_money_out(MoneyOutQuery(PAYOUT, 10)),
        *await fresh_store.list_money_out(MoneyOutQuery(REFUND, 10)),
    ]

    await rebuild(fresh_store)

    assert _without_ids(await _ledger_of(fresh_store, order_id)) == before_postings
    assert [
        *await fresh_store.list_money_out(MoneyOutQuery(PAYOUT, 10)),
        *await fresh_store.list_money_out(MoneyOutQuery(REFUND, 10)),
    ] == before_rows
