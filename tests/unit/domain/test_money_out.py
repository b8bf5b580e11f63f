"""Money leaving escrow, tracked to the bank (DESIGN 7.1): the payouts a release creates, the
refunds a refund splits over the payments (newest first), what the payment provider reports
of each, unexpected money sent straight back, and old events that predate all of it.
"""

from collections.abc import Sequence
from datetime import datetime

import pytest

from escrow_core.application.upcasting import event_upcasters
from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import (
    DomainError,
    NotPermitted,
    PayoutAlreadySettled,
    PayoutNotFound,
    PayoutNotPaid,
    RefundAlreadySettled,
    RefundNotFound,
)
from escrow_core.domain.order import Amounts, NewIds, PayoutStatus, RefundStatus, Status, decide
from escrow_core.domain.roles import SYSTEM, Actor, Role
from escrow_core.domain.terms import LineItem, PaymentMethod, RefundReason, Tranche

from .scenario import (
    ACCEPTED_AT,
    ADMIN,
    BUYER,
    DELIVERED,
    FEE_BPS,
    FEE_ON_TOTAL,
    MEDIATOR,
    OTHER_BUYER,
    OTHER_SUPPLIER,
    PARTIALLY_PAID,
    PAYMENTS,
    SUPPLIER,
    SUPPLIER_ID,
    TOTAL,
    History,
    day,
    dispute_opened,
    escalated,
    funds_released,
    order_delivered,
    order_placed,
    order_shipped,
    paid,
    pay,
    refund_issued,
    refused,
    state_of,
    when,
)

NET = TOTAL - FEE_ON_TOTAL  # 121_875: what the supplier is paid out of the reference order
# The reference order completed by the buyer: one payout of the net, po_t1, pending.
COMPLETED: History = [
    *DELIVERED,
    e.ReceiptConfirmed(at=day(10)),
    funds_released(TOTAL, FEE_ON_TOTAL, day(10)),
]
# The reference order cancelled by the supplier after a partial payment: rf_t1, pending.
CANCELLED_AFTER_PAYMENT: History = [
    *PARTIALLY_PAID,
    e.OrderCancelled(at=day(3), reason="out of stock", by=Role.SUPPLIER),
    refund_issued(50_000, RefundReason.CANCELLATION, day(3)),
]


def run(given: History, *steps: tuple[c.Command, datetime]) -> History:
    """``given`` and the events of each command in turn (each must do something)."""
    history = list(given)
    for command, at in steps:
        events = when(history, command, at)
        assert events, f"{command!r} did nothing"
        history += events
    return history


# --- commands -------------------------------------------------------------------------------
def payout_paid(ref: str = "tr_1", payout_id: str = "po_t1", actor: Actor = PAYMENTS) -> c.Command:
    return c.ReportPayoutPaid(actor=actor, payout_id=payout_id, provider_ref=ref)


def payout_failed(payout_id: str = "po_t1", actor: Actor = PAYMENTS) -> c.Command:
    return c.ReportPayoutFailed(actor=actor, payout_id=payout_id, reason="account closed")


def payout_returned(payout_id: str = "po_t1", actor: Actor = PAYMENTS) -> c.Command:
    return c.ReportPayoutReturned(actor=actor, payout_id=payout_id, reason="name mismatch")


def retry_payout(payout_id: str = "po_t1", actor: Actor = PAYMENTS) -> c.Command:
    return c.RetryPayout(actor=actor, payout_id=payout_id)


def refund_succeeded(
    ref: str = "re_1", refund_id: str = "rf_t1", actor: Actor = PAYMENTS
) -> c.Command:
    return c.ReportRefundSucceeded(actor=actor, refund_id=refund_id, provider_ref=ref)


def refund_failed(refund_id: str = "rf_t1", actor: Actor = PAYMENTS) -> c.Command:
    return c.ReportRefundFailed(actor=actor, refund_id=refund_id, reason="card expired")


def retry_refund(refund_id: str = "rf_t1", actor: Actor = PAYMENTS) -> c.Command:
    return c.RetryRefund(actor=actor, refund_id=refund_id)


# --- a release creates payouts, a refund is split over the payments newest first ------------
DEPOSIT, BALANCE = 37_500, 87_500  # 30 % and 70 % of the reference total
TWO_TRANCHES: History = [
    order_placed(
        payment_schedule=(
            Tranche(name="deposit", amount=DEPOSIT),
            Tranche(name="balance", amount=BALANCE),
        )
    ),
    e.OrderAccepted(at=ACCEPTED_AT),
    *paid(DEPOSIT, held_total=DEPOSIT, ref="pay_deposit", at=day(2)),
    *paid(BALANCE, held_total=TOTAL, ref="pay_balance", at=day(3)),
    order_shipped(),
    order_delivered(),
    dispute_opened(),
    escalated(),
]


def test_a_settlement_refunds_the_balance_payment_whole_and_the_rest_from_the_deposit() -> None:
    # The mediator refunds 100_000, more than the balance payment brought (87_500).
    command = c.ResolveDispute(actor=MEDIATOR, refund_amount=100_000, note="half the lot leaks")

    events = when(TWO_TRANCHES, command, day(16))

    assert events == [
        e.DisputeResolved(
            at=day(16),
            refund_amount=100_000,
            release_amount=25_000,
            note="half the lot leaks",
            by=Role.MEDIATOR,
        ),
        refund_issued(
            100_000,
            RefundReason.DISPUTE,
            day(16),
            [("pay_balance", BALANCE), ("pay_deposit", 100_000 - BALANCE)],
        ),
        e.FundsReleased(
            at=day(16),
            gross=25_000,
            fee=625,
            net=24_375,
            payouts=(e.NewPayout(id="po_t3", party_id=SUPPLIER_ID, amount=24_375),),
        ),
    ]
    state = state_of([*TWO_TRANCHES, *events])
    assert state.status is Status.SETTLED
    assert [(r.id, r.payment_provider_ref, r.amount, r.status) for r in state.refunds] == [
        ("rf_t1", "pay_balance", BALANCE, RefundStatus.PENDING),
        ("rf_t2", "pay_deposit", 12_500, RefundStatus.PENDING),
    ]
    assert [(p.id, p.party_id, p.amount, p.status) for p in state.payouts] == [
        ("po_t3", SUPPLIER_ID, 24_375, PayoutStatus.PENDING)
    ]
    assert state.amounts == Amounts(
        paid=TOTAL, held=0, released=25_000, refunded=100_000, fees=625
    )  # nothing paid out nor refunded yet: the bank has not said so


def test_a_refund_within_the_newest_payment_goes_back_through_it_alone() -> None:
    command = c.ResolveDispute(actor=MEDIATOR, refund_amount=BALANCE)

    events = when(TWO_TRANCHES, command, day(16))

    assert events[1] == refund_issued(
        BALANCE, RefundReason.DISPUTE, day(16), [("pay_balance", BALANCE)]
    )


def test_a_later_refund_skips_a_payment_already_refunded_whole() -> None:
    # Pay 1_000 too much in the balance payment: it is refunded at once through that payment,
    # so a full refund later takes the rest of the balance payment and then the deposit.
    given = run(TWO_TRANCHES[:4], (pay(BALANCE + 1_000, ref="pay_balance"), day(3)))
    assert state_of(given).refunds[0].amount == 1_000
    given = [*given, order_shipped(), order_delivered(), dispute_opened(), escalated()]

    events = when(given, c.ResolveDispute(actor=MEDIATOR, refund_amount=TOTAL), day(16))

    refund = events[1]
    assert isinstance(refund, e.RefundIssued)
    assert [(r.payment_provider_ref, r.amount) for r in refund.refunds or ()] == [
        ("pay_balance", BALANCE),
        ("pay_deposit", DEPOSIT),
    ]
    assert state_of([*given, *events]).status is Status.REFUNDED


def test_a_release_of_nothing_net_creates_no_payout() -> None:
    # A fee of 100 % keeps the whole release: there is nothing to pay out.
    given: History = [order_placed(fee_bps=10_000), *DELIVERED[1:]]

    events = when(given, c.ConfirmReceipt(actor=BUYER), day(10))

    assert events[1] == e.FundsReleased(at=day(10), gross=TOTAL, fee=TOTAL, net=0, payouts=())
    assert state_of([*given, *events]).payouts == ()


# --- what the payment provider reports ------------------------------------------------------
def test_a_payout_reported_paid_counts_as_paid_out() -> None:
    events = when(COMPLETED, payout_paid("tr_1"), day(11))

    assert events == [e.PayoutPaid(at=day(11), payout_id="po_t1", provider_ref="tr_1")]
    state = state_of([*COMPLETED, *events])
    (payout,) = state.payouts
    assert (payout.status, payout.provider_ref, payout.attempt) == (PayoutStatus.PAID, "tr_1", 1)
    assert (payout.created_at, payout.updated_at) == (day(10), day(11))
    assert state.amounts.paid_out == NET
    assert state.status is Status.COMPLETED  # money going out never moves the order


def test_a_failed_payout_is_retried_then_paid() -> None:
    failed = run(COMPLETED, (payout_failed(), day(11)))
    (payout,) = state_of(failed).payouts
    assert (payout.status, payout.failure_reason) == (PayoutStatus.FAILED, "account closed")
    assert state_of(failed).amounts.paid_out == 0

    assert when(failed, retry_payout(actor=ADMIN), day(12)) == [
        e.PayoutRetried(at=day(12), payout_id="po_t1")
    ]
    retried = run(failed, (retry_payout(actor=ADMIN), day(12)))
    (payout,) = state_of(retried).payouts
    assert (payout.status, payout.failure_reason, payout.attempt) == (PayoutStatus.PENDING, None, 2)

    settled = run(retried, (payout_paid("tr_2"), day(13)))
    (payout,) = state_of(settled).payouts
    assert (payout.status, payout.provider_ref, payout.attempt) == (PayoutStatus.PAID, "tr_2", 2)
    assert state_of(settled).amounts.paid_out == NET


def test_a_paid_payout_returned_by_the_bank_is_retried_until_it_stays_paid() -> None:
    attempts, paid_out = [], []
    history = list(COMPLETED)
    for command, at in [
        (payout_paid("tr_1"), day(11)),
        (payout_returned(), day(12)),
        (retry_payout(), day(13)),
        (payout_paid("tr_2"), day(14)),
        (payout_returned(), day(15)),
        (retry_payout(), day(16)),
        (payout_paid("tr_3"), day(17)),
    ]:
        history = run(history, (command, at))
        (payout,) = state_of(history).payouts
        attempts.append((payout.status.value, payout.attempt))
        paid_out.append(state_of(history).amounts.paid_out)

    assert attempts == [
        ("paid", 1),
        ("returned", 1),
        ("pending", 2),
        ("paid", 2),
        ("returned", 2),
        ("pending", 3),
        ("paid", 3),
    ]
    assert paid_out == [NET, 0, 0, NET, 0, 0, NET]  # a returned payout leaves paid_out
    assert state_of(history).payouts[0].provider_ref == "tr_3"


def test_a_refund_reported_succeeded_counts_as_completed() -> None:
    events = when(CANCELLED_AFTER_PAYMENT, refund_succeeded("re_1"), day(4))

    assert events == [e.RefundSucceeded(at=day(4), refund_id="rf_t1", provider_ref="re_1")]
    state = state_of([*CANCELLED_AFTER_PAYMENT, *events])
    assert state.refunds[0].status is RefundStatus.SUCCEEDED
    assert state.amounts.refunds_completed == 50_000
    assert state.status is Status.CANCELLED


def test_a_failed_refund_is_retried_then_succeeds() -> None:
    history = run(
        CANCELLED_AFTER_PAYMENT,
        (refund_failed(), day(4)),
        (retry_refund(actor=ADMIN), day(5)),
        (refund_succeeded("re_2"), day(6)),
    )

    assert [type(ev) for ev in history[-3:]] == [
        e.RefundFailed,
        e.RefundRetried,
        e.RefundSucceeded,
    ]
    (refund,) = state_of(history).refunds
    assert (refund.status, refund.provider_ref, refund.attempt) == (
        RefundStatus.SUCCEEDED,
        "re_2",
        2,
    )
    assert refund.failure_reason is None
    assert state_of(history).amounts.refunds_completed == 50_000


# The same report again does nothing: the provider retried its webhook.
PAYOUT_PAID = run(COMPLETED, (payout_paid("tr_1"), day(11)))
PAYOUT_FAILED = run(COMPLETED, (payout_failed(), day(11)))
PAYOUT_RETURNED = run(PAYOUT_PAID, (payout_returned(), day(12)))
REFUND_SUCCEEDED = run(CANCELLED_AFTER_PAYMENT, (refund_succeeded("re_1"), day(4)))
REFUND_FAILED = run(CANCELLED_AFTER_PAYMENT, (refund_failed(), day(4)))


@pytest.mark.parametrize(
    ("given", "command"),
    [
        (PAYOUT_PAID, payout_paid("tr_1")),
        (PAYOUT_FAILED, payout_failed()),
        (PAYOUT_RETURNED, payout_returned()),
        (COMPLETED, retry_payout()),  # already pending
        (REFUND_SUCCEEDED, refund_succeeded("re_1")),
        (REFUND_FAILED, refund_failed()),
        (CANCELLED_AFTER_PAYMENT, retry_refund()),  # already pending
    ],
    ids=[
        "paid_twice",
        "failed_twice",
        "returned_twice",
        "retry_of_pending_payout",
        "succeeded_twice",
        "refund_failed_twice",
        "retry_of_pending_refund",
    ],
)
def test_the_same_report_again_is_a_no_op(given: History, command: c.Command) -> None:
    assert when(given, command, day(20)) == []


@pytest.mark.parametrize(
    ("given", "command", "error", "code"),
    [
        (COMPLETED, payout_paid(payout_id="po_nope"), PayoutNotFound, "payout_not_found"),
        (COMPLETED, retry_payout("po_nope"), PayoutNotFound, "payout_not_found"),
        # A payout of another order is not this order's, whatever its id.
        (CANCELLED_AFTER_PAYMENT, payout_paid(), PayoutNotFound, "payout_not_found"),
        (PAYOUT_PAID, payout_paid("tr_other"), PayoutAlreadySettled, "payout_already_settled"),
        (PAYOUT_PAID, payout_failed(), PayoutAlreadySettled, "payout_already_settled"),
        (PAYOUT_PAID, retry_payout(), PayoutAlreadySettled, "payout_already_settled"),
        (PAYOUT_FAILED, payout_paid(), PayoutAlreadySettled, "payout_already_settled"),
        (PAYOUT_RETURNED, payout_paid(), PayoutAlreadySettled, "payout_already_settled"),
        (PAYOUT_RETURNED, payout_failed(), PayoutAlreadySettled, "payout_already_settled"),
        (COMPLETED, payout_returned(), PayoutNotPaid, "payout_not_paid"),
        (PAYOUT_FAILED, payout_returned(), PayoutNotPaid, "payout_not_paid"),
        (
            CANCELLED_AFTER_PAYMENT,
            refund_succeeded(refund_id="rf_nope"),
            RefundNotFound,
            "refund_not_found",
        ),
        (CANCELLED_AFTER_PAYMENT, retry_refund("rf_nope"), RefundNotFound, "refund_not_found"),
        (
            REFUND_SUCCEEDED,
            refund_succeeded("re_other"),
            RefundAlreadySettled,
            "refund_already_settled",
        ),
        (REFUND_SUCCEEDED, refund_failed(), RefundAlreadySettled, "refund_already_settled"),
        (REFUND_SUCCEEDED, retry_refund(), RefundAlreadySettled, "refund_already_settled"),
        (REFUND_FAILED, refund_succeeded(), RefundAlreadySettled, "refund_already_settled"),
    ],
    ids=[
        "paid_unknown_payout",
        "retry_unknown_payout",
        "payout_of_another_order",
        "paid_again_by_another_transfer",
        "failed_after_paid",
        "retry_of_paid",
        "paid_after_failed",
        "paid_after_returned",
        "failed_after_returned",
        "returned_while_pending",
        "returned_after_failed",
        "succeeded_unknown_refund",
        "retry_unknown_refund",
        "succeeded_again_by_another_transfer",
        "refund_failed_after_succeeded",
        "retry_of_succeeded",
        "succeeded_after_failed",
    ],
)
def test_a_report_that_contradicts_the_outcome_is_refused(
    given: History, command: c.Command, error: type[DomainError], code: str
) -> None:
    assert refused(given, command, day(20), error).code == code


# --- who may report ---------------------------------------------------------------------------
REPORTS: Sequence[tuple[History, type[c.Command], dict[str, str]]] = [
    (COMPLETED, c.ReportPayoutPaid, {"payout_id": "po_t1", "provider_ref": "tr_1"}),
    (COMPLETED, c.ReportPayoutFailed, {"payout_id": "po_t1", "reason": "closed"}),
    (PAYOUT_PAID, c.ReportPayoutReturned, {"payout_id": "po_t1", "reason": "returned"}),
    (PAYOUT_FAILED, c.RetryPayout, {"payout_id": "po_t1"}),
    (CANCELLED_AFTER_PAYMENT, c.ReportRefundSucceeded, {"refund_id": "rf_t1", "provider_ref": "r"}),
    (CANCELLED_AFTER_PAYMENT, c.ReportRefundFailed, {"refund_id": "rf_t1", "reason": "expired"}),
    (REFUND_FAILED, c.RetryRefund, {"refund_id": "rf_t1"}),
]
RETRIES = (c.RetryPayout, c.RetryRefund)
ACTORS = (BUYER, SUPPLIER, MEDIATOR, ADMIN, SYSTEM, OTHER_BUYER, OTHER_SUPPLIER, PAYMENTS)


@pytest.mark.parametrize(
    ("given", "command", "fields"), REPORTS, ids=[r[1].__name__ for r in REPORTS]
)
@pytest.mark.parametrize("actor", ACTORS, ids=[f"{a.role.value}:{a.party_id}" for a in ACTORS])
def test_only_the_payment_provider_reports_and_an_admin_may_also_retry(
    given: History, command: type[c.Command], fields: dict[str, str], actor: Actor
) -> None:
    cmd = command(actor=actor, **fields)
    may = actor == PAYMENTS or (actor == ADMIN and command in RETRIES)
    if may:
        assert len(when(given, cmd, day(20))) == 1
    else:
        assert refused(given, cmd, day(20), NotPermitted).code == "action_not_permitted"


# --- unexpected money ---------------------------------------------------------------------------
ORDER_6600: History = [
    order_placed(
        items=(LineItem(sku="PUMP-1", description="pump", quantity=1, unit_price=660_000),),
        shipping_fee=0,
        total=660_000,
        fee_bps=FEE_BPS,
    ),
    e.OrderAccepted(at=ACCEPTED_AT),
]


def test_an_overpayment_of_1_00_is_refunded_and_the_order_otherwise_untouched() -> None:
    events = when(ORDER_6600, pay(660_100, ref="pay_1"), day(2))

    assert events == [
        e.PaymentReceived(
            at=day(2), amount=660_100, method=PaymentMethod.BANK_TRANSFER, provider_ref="pay_1"
        ),
        refund_issued(100, RefundReason.OVERPAYMENT, day(2), [("pay_1", 100)]),
        e.FundsHeld(at=day(2), amount=660_000, held_total=660_000),
    ]
    over = state_of([*ORDER_6600, *events])
    exact = state_of(run(ORDER_6600, (pay(660_000, ref="pay_1"), day(2))))
    assert (over.amounts.paid, over.amounts.refunded, over.unexpected) == (660_100, 100, 100)
    assert (over.funded, over.unpaid, over.amounts.held) == (660_000, 0, 660_000)
    assert over.status is Status.HELD
    # Nothing else differs from the order paid exactly (bar the version: one more event).
    unexpected_only = {"amounts", "payments", "refunds", "unexpected", "version"}
    assert over.model_dump(exclude=unexpected_only) == exact.model_dump(exclude=unexpected_only)
    assert over.amounts.model_dump(exclude={"paid", "refunded"}) == exact.amounts.model_dump(
        exclude={"paid", "refunded"}
    )


def test_a_payment_after_cancellation_is_refunded_whole_through_itself() -> None:
    before = state_of(CANCELLED_AFTER_PAYMENT)

    events = decide(before, pay(20_000, ref="pay_late"), day(5), NewIds("u"))

    assert events == [
        e.PaymentReceived(
            at=day(5), amount=20_000, method=PaymentMethod.BANK_TRANSFER, provider_ref="pay_late"
        ),
        e.RefundIssued(
            at=day(5),
            amount=20_000,
            reason=RefundReason.ORDER_NOT_PAYABLE,
            refunds=(e.NewRefund(id="rf_u1", payment_provider_ref="pay_late", amount=20_000),),
        ),
    ]
    after = state_of([*CANCELLED_AFTER_PAYMENT, *events])
    assert after.status is Status.CANCELLED
    assert after.amounts.held == before.amounts.held == 0
    assert after.amounts.refunded == 50_000 + 20_000
    assert after.funded == before.funded == 50_000


def test_a_payment_after_completion_is_refunded_whole() -> None:
    events = when(COMPLETED, pay(5_000, ref="pay_late"), day(30))

    assert events[1:] == [
        refund_issued(5_000, RefundReason.ORDER_NOT_PAYABLE, day(30), [("pay_late", 5_000)])
    ]
    after = state_of([*COMPLETED, *events])
    assert after.status is Status.COMPLETED
    assert (after.amounts.released, after.amounts.held) == (TOTAL, 0)


# --- events recorded before 1.1 ---------------------------------------------------------------
def test_a_v1_release_folds_in_as_already_paid_out() -> None:
    stored_v1 = {"at": "2025-03-13T09:00:00Z", "gross": TOTAL, "fee": FEE_ON_TOTAL, "net": NET}

    version, data = event_upcasters().upcast("funds.released", 1, stored_v1)

    assert version == 2
    event = e.event_from_data("funds.released", data)
    assert isinstance(event, e.FundsReleased)
    assert (event.payouts, event.agency_fee) == (None, 0)
    state = state_of([*DELIVERED, e.ReceiptConfirmed(at=day(10)), event])
    assert state.payouts == ()  # none to report on
    assert (state.amounts.released, state.amounts.paid_out) == (TOTAL, NET)
    assert state.status is Status.COMPLETED


def test_a_v1_refund_folds_in_as_already_completed_out_of_the_money_held() -> None:
    stored_v1 = {"at": "2025-03-06T09:00:00Z", "amount": 50_000}

    version, data = event_upcasters().upcast("refund.issued", 1, stored_v1)

    assert version == 2
    event = e.event_from_data("refund.issued", data)
    assert isinstance(event, e.RefundIssued)
    assert (event.reason, event.refunds) == (None, None)
    cancelled = e.OrderCancelled(at=day(3), reason="out of stock", by=Role.SUPPLIER)
    state = state_of([*PARTIALLY_PAID, cancelled, event])
    assert state.refunds == ()
    assert (state.amounts.held, state.amounts.refunded) == (0, 50_000)
    assert state.amounts.refunds_completed == 50_000
    assert state.unexpected == 0  # a v1 refund always came out of the money held
