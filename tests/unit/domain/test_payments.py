"""Payments into escrow: partial, over, repeated, refused, and late ones that move ship-by."""

from datetime import UTC, date, datetime, timedelta

import pytest

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import (
    DeadlineNotReached,
    InvalidValue,
    NotPermitted,
    ProviderRefConflict,
)
from escrow_core.domain.order import Amounts, Status, deadlines
from escrow_core.domain.roles import SYSTEM, Actor, Role
from escrow_core.domain.terms import DeadlineKind, ExtendableDeadline, PaymentMethod, RefundReason

from .scenario import (
    ACCEPTED,
    ACCEPTED_AT,
    ADMIN,
    BUYER,
    CANCELLED,
    HELD,
    PARTIALLY_PAID,
    PLACED,
    SHIP_BY_AT,
    SHIPPED,
    SUPPLIER,
    TOTAL,
    History,
    day,
    order_accepted,
    order_placed,
    paid,
    pay,
    refund_issued,
    refused,
    state_of,
    then_state,
    when,
)


def received(amount: int, held_total: int, at: datetime, ref: str = "pay_1") -> list[e.AnyEvent]:
    return [
        e.PaymentReceived(
            at=at, amount=amount, method=PaymentMethod.BANK_TRANSFER, provider_ref=ref
        ),
        e.FundsHeld(at=at, amount=amount, held_total=held_total),
    ]


def test_a_partial_payment_is_held_and_the_order_is_partially_paid() -> None:
    events = when(ACCEPTED, pay(50_000), day(2))

    assert events == received(50_000, held_total=50_000, at=day(2))
    state = state_of([*ACCEPTED, *events])
    assert state.status is Status.PARTIALLY_PAID
    assert state.amounts == Amounts(paid=50_000, held=50_000)


def test_the_payment_that_completes_the_total_makes_the_order_held() -> None:
    events = when(PARTIALLY_PAID, pay(75_000, ref="pay_2"), day(3))

    assert events == received(75_000, held_total=TOTAL, at=day(3), ref="pay_2")
    state = state_of([*PARTIALLY_PAID, *events])
    assert state.status is Status.HELD
    assert state.amounts == Amounts(paid=TOTAL, held=TOTAL)


@pytest.mark.parametrize(
    ("given", "amount", "owed"),
    [(ACCEPTED, TOTAL + 1, TOTAL), (PARTIALLY_PAID, 75_001, 75_000)],
    ids=["whole_total", "rest"],
)
def test_an_overpayment_holds_what_is_owed_and_refunds_the_rest(
    given: History, amount: int, owed: int
) -> None:
    events = when(given, pay(amount, ref="pay_2"), day(3))

    excess = amount - owed
    assert events == [
        e.PaymentReceived(
            at=day(3), amount=amount, method=PaymentMethod.BANK_TRANSFER, provider_ref="pay_2"
        ),
        refund_issued(excess, RefundReason.OVERPAYMENT, day(3), [("pay_2", excess)]),
        e.FundsHeld(at=day(3), amount=owed, held_total=TOTAL),
    ]
    state = state_of([*given, *events])
    assert state.status is Status.HELD
    assert state.amounts.paid == TOTAL + excess
    assert (state.amounts.held, state.amounts.refunded) == (TOTAL, excess)
    assert [(r.id, r.amount, r.payment_provider_ref) for r in state.refunds] == [
        ("rf_t1", excess, "pay_2")
    ]


@pytest.mark.parametrize("amount", [0, -100])
def test_a_payment_must_be_positive(amount: int) -> None:
    error = refused(ACCEPTED, pay(amount), day(2), InvalidValue)
    assert (error.code, error.field) == ("invalid_value", "amount")


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        (PLACED, RefundReason.ORDER_NOT_PAYABLE),
        (CANCELLED, RefundReason.ORDER_NOT_PAYABLE),
        (HELD, RefundReason.OVERPAYMENT),
        (SHIPPED, RefundReason.OVERPAYMENT),
    ],
    ids=["before_acceptance", "after_cancellation", "fully_held", "shipped"],
)
def test_a_payment_the_order_cannot_take_is_refunded_whole(
    given: History, reason: RefundReason
) -> None:
    before = state_of(given)
    events = when(given, pay(700, ref="pay_new"), day(4))

    assert events[1:] == [refund_issued(700, reason, day(4), [("pay_new", 700)])]
    after = state_of([*given, *events])
    assert after.status is before.status
    assert after.amounts.held == before.amounts.held
    assert after.amounts.refunded == before.amounts.refunded + 700
    assert after.funded == before.funded
    # The same report again is a no-op, not a second refund.
    assert when([*given, *events], pay(700, ref="pay_new"), day(5)) == []


@pytest.mark.parametrize(
    ("given", "amount"),
    [(PARTIALLY_PAID, 50_000), (HELD, TOTAL)],
    ids=["partially_paid", "fully_held"],
)
def test_a_repeated_provider_ref_with_the_same_amount_is_a_no_op(
    given: History, amount: int
) -> None:
    assert when(given, pay(amount, ref="pay_1"), day(4)) == []


def test_a_repeated_provider_ref_with_another_amount_is_a_conflict() -> None:
    error = refused(PARTIALLY_PAID, pay(40_000, ref="pay_1"), day(3), ProviderRefConflict)
    assert error.code == "provider_ref_conflict"


@pytest.mark.parametrize("actor", [BUYER, SUPPLIER, ADMIN, SYSTEM])
def test_only_the_payment_provider_records_payments(actor: Actor) -> None:
    error = refused(ACCEPTED, pay(TOTAL, actor=actor), day(2), NotPermitted)
    assert error.code == "action_not_permitted"


# --- late money moves ship-by -----------------------------------------------------------------
# Accepted 4 March 09:00, ship by the end of 2 April: the supplier had 29 days 15 hours.
LEAD_TIME = SHIP_BY_AT - ACCEPTED_AT
LATE = datetime(2025, 4, 10, 12, 0, tzinfo=UTC)


def ship_by_moved(at: datetime, new_at: datetime) -> e.DeadlineExtended:
    return e.DeadlineExtended(
        at=at, deadline=ExtendableDeadline.SHIP_BY, by=Role.SYSTEM, days=None, new_at=new_at
    )


def test_when_the_total_becomes_held_after_ship_by_ship_by_moves_by_the_lead_time() -> None:
    assert timedelta(days=29, hours=15) == LEAD_TIME

    events = when(PARTIALLY_PAID, pay(75_000, ref="pay_2"), LATE)

    moved_to = datetime(2025, 5, 10, 3, 0, tzinfo=UTC)  # 10 April 12:00 + 29 d 15 h
    assert events == [
        *received(75_000, held_total=TOTAL, at=LATE, ref="pay_2"),
        ship_by_moved(LATE, moved_to),
    ]
    state = state_of([*PARTIALLY_PAID, *events])
    assert state.status is Status.HELD
    assert (state.ship_by_at, state.shipment_overdue) == (moved_to, False)
    assert [(d.kind, d.at) for d in deadlines(state)] == [(DeadlineKind.SHIP_BY, moved_to)]
    assert state.ship_by_extended_days == 0  # the system's move is not the buyer's extension


def test_the_moved_ship_by_is_not_overdue_until_it_passes() -> None:
    given = [*PARTIALLY_PAID, *when(PARTIALLY_PAID, pay(75_000, ref="pay_2"), LATE)]
    before = datetime(2025, 5, 10, 2, 59, tzinfo=UTC)
    refused(given, c.MarkShipmentOverdue(), before, DeadlineNotReached)
    assert when(given, c.MarkShipmentOverdue(), before + timedelta(minutes=1)) != []


def test_the_total_held_exactly_at_ship_by_is_late_too() -> None:
    # At SHIP_BY_AT the shipment is already overdue (that timer fires at the same instant), so
    # money arriving then came too late for the supplier to ship on time.
    events = when(ACCEPTED, pay(TOTAL), SHIP_BY_AT)
    assert events[-1] == ship_by_moved(SHIP_BY_AT, SHIP_BY_AT + LEAD_TIME)


def test_the_total_held_before_ship_by_leaves_it_alone() -> None:
    just_in_time = SHIP_BY_AT - timedelta(seconds=1)
    assert when(ACCEPTED, pay(TOTAL), just_in_time) == received(TOTAL, TOTAL, just_in_time)


def test_a_partial_payment_after_ship_by_does_not_move_it() -> None:
    assert when(ACCEPTED, pay(50_000), LATE) == received(50_000, 50_000, LATE)


def test_the_move_uses_the_original_lead_time_not_a_buyer_extension() -> None:
    # The buyer extended ship-by by 10 days while still unpaid; the money came later still.
    extended = e.DeadlineExtended(
        at=day(20),
        deadline=ExtendableDeadline.SHIP_BY,
        by=Role.BUYER,
        days=10,
        new_at=SHIP_BY_AT + timedelta(days=10),
    )
    given = [*ACCEPTED, extended]
    paid_at = datetime(2025, 4, 20, tzinfo=UTC)

    events = when(given, pay(TOTAL), paid_at)

    assert events[-1] == ship_by_moved(paid_at, paid_at + LEAD_TIME)


def test_an_order_accepted_after_ship_by_gets_no_negative_lead_time() -> None:
    # Ship by the end of 5 March, accepted on 8 March: no lead time left, none taken away.
    given: History = [order_placed(ship_by=date(2025, 3, 5)), order_accepted(day(5))]

    events = when(given, pay(TOTAL), day(6))

    assert events[-1] == ship_by_moved(day(6), day(6))


def test_money_in_time_needs_no_move_even_if_shipment_is_later_overdue() -> None:
    state = then_state(ACCEPTED, pay(TOTAL), day(2))
    assert state.ship_by_at == SHIP_BY_AT


def test_paid_total_never_counts_a_no_op_twice() -> None:
    given = [*ACCEPTED, *paid(50_000, held_total=50_000)]
    assert when(given, pay(50_000, ref="pay_1"), day(3)) == []
    assert state_of(given).amounts.paid == 50_000
