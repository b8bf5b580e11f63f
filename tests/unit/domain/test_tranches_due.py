"""Every tranche is due (DESIGN 7.2, 7.7): a tranche after the first is overdue when the money
paid is short of the running total through it at the end of its due_by (default ship_by);
then either side may cancel, and pay_days later the order is cancelled; paying up clears it."""

from datetime import UTC, date, datetime, timedelta

import pytest

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import (
    CancellationNotAllowed,
    DeadlineNotReached,
    InvalidState,
    NotPermitted,
)
from escrow_core.domain.order import Status, allowed_actions, deadlines, due_timer_commands
from escrow_core.domain.roles import SYSTEM, Actor, Role
from escrow_core.domain.terms import DeadlineKind, RefundReason, Tranche

from .scenario import (
    ADMIN,
    BUYER,
    POLICY,
    SHIP_BY_AT,
    SUPPLIER,
    History,
    day,
    order_accepted,
    order_placed,
    paid,
    pay,
    refund_issued,
    refused,
    state_of,
    when,
)

K = DeadlineKind
# 25_000 deposit; 50_000 due by 20 March; the last 50_000 due by ship_by (2 April).
SCHEDULE = (
    Tranche(name="deposit", amount=25_000),
    Tranche(name="second", amount=50_000, due_by=date(2025, 3, 20)),
    Tranche(name="balance", amount=50_000),
)
SECOND_DUE_AT = datetime(2025, 3, 21, tzinfo=UTC)  # the end of 20 March
DEPOSIT_PAID: History = [
    order_placed(payment_schedule=SCHEDULE),
    order_accepted(),
    *paid(25_000, held_total=25_000),
]
LATE = SECOND_DUE_AT + timedelta(hours=1)
SECOND_OVERDUE: History = [
    *DEPOSIT_PAID,
    e.PaymentOverdue(at=LATE, tranche=2, due_at=SECOND_DUE_AT),
]
CANCEL_AT = SECOND_DUE_AT + timedelta(days=POLICY.pay_days)


def kinds(given: History) -> list[tuple[DeadlineKind, datetime]]:
    return [(d.kind, d.at) for d in deadlines(state_of(given))]


def test_the_next_unpaid_tranche_is_due_at_the_end_of_its_due_by() -> None:
    assert kinds(DEPOSIT_PAID) == [(K.TRANCHE_DUE, SECOND_DUE_AT)]
    # no tranche is due before acceptance
    assert K.TRANCHE_DUE not in {k for k, _ in kinds(DEPOSIT_PAID[:1])}


def test_the_timer_records_the_overdue_tranche_only_once_it_is_due() -> None:
    refused(
        DEPOSIT_PAID,
        c.MarkPaymentOverdue(),
        SECOND_DUE_AT - timedelta(seconds=1),
        DeadlineNotReached,
    )

    assert due_timer_commands(state_of(DEPOSIT_PAID), LATE) == [c.MarkPaymentOverdue()]
    assert when(DEPOSIT_PAID, c.MarkPaymentOverdue(), LATE) == SECOND_OVERDUE[-1:]


def test_once_overdue_the_auto_cancel_runs_pay_days_after_the_due_time() -> None:
    state = state_of(SECOND_OVERDUE)
    assert state.payment_overdue
    assert kinds(SECOND_OVERDUE) == [(K.UNPAID_CANCEL_AT, CANCEL_AT)]
    # a second overdue mark is refused: no tranche_due runs now
    refused(SECOND_OVERDUE, c.MarkPaymentOverdue(), LATE, InvalidState)


@pytest.mark.parametrize("actor", [BUYER, SUPPLIER])
def test_once_overdue_either_side_may_cancel_and_held_money_goes_back(actor: Actor) -> None:
    events = when(SECOND_OVERDUE, c.CancelOrder(actor=actor, reason="unpaid"), LATE)

    assert events == [
        e.OrderCancelled(at=LATE, reason="unpaid", by=actor.role),
        refund_issued(25_000, RefundReason.CANCELLATION, LATE),
    ]


def test_before_it_is_overdue_the_buyer_may_not_cancel_a_partly_paid_order() -> None:
    refused(DEPOSIT_PAID, c.CancelOrder(actor=BUYER), day(10), CancellationNotAllowed)
    assert "cancel" not in allowed_actions(state_of(DEPOSIT_PAID), BUYER, day(10))
    assert "cancel" in allowed_actions(state_of(SECOND_OVERDUE), BUYER, LATE)


def test_after_a_release_the_supplier_may_cancel_only_once_a_tranche_is_overdue() -> None:
    release = c.ReleaseMilestone(actor=BUYER, amount=10_000)
    given = [*DEPOSIT_PAID, *when(DEPOSIT_PAID, release, day(5))]
    refused(given, c.CancelOrder(actor=SUPPLIER), day(6), CancellationNotAllowed)

    overdue = [*given, *when(given, c.MarkPaymentOverdue(), LATE)]
    events = when(overdue, c.CancelOrder(actor=SUPPLIER), LATE)
    state = state_of([*overdue, *events])
    # what was released stays released; what was held goes back
    assert state.status is Status.CANCELLED
    assert (state.amounts.released, state.amounts.refunded, state.amounts.held) == (
        10_000,
        15_000,
        0,
    )


def test_the_order_is_cancelled_pay_days_after_the_due_time_if_still_unpaid() -> None:
    refused(
        SECOND_OVERDUE, c.AutoCancelOverdue(), CANCEL_AT - timedelta(seconds=1), DeadlineNotReached
    )

    events = when(SECOND_OVERDUE, c.AutoCancelOverdue(), CANCEL_AT)

    assert events == [
        e.OrderCancelled(at=CANCEL_AT, reason="tranche 2 not paid in time", by=Role.SYSTEM),
        refund_issued(25_000, RefundReason.CANCELLATION, CANCEL_AT),
    ]


def test_paying_up_clears_the_overdue_state_and_the_next_tranche_is_judged_on_its_own() -> None:
    paid_up = [*SECOND_OVERDUE, *when(SECOND_OVERDUE, pay(50_000, ref="pay_2"), LATE)]
    state = state_of(paid_up)

    assert not state.payment_overdue
    assert state.status is Status.PARTIALLY_PAID
    assert kinds(paid_up) == [(K.TRANCHE_DUE, SHIP_BY_AT)]  # the balance, due by ship_by
    refused(paid_up, c.CancelOrder(actor=BUYER), LATE, CancellationNotAllowed)
    refused(paid_up, c.AutoCancelOverdue(), CANCEL_AT, InvalidState)
    # and the balance, unpaid at the end of ship_by, is tranche 3 overdue
    assert when(paid_up, c.MarkPaymentOverdue(), SHIP_BY_AT) == [
        e.PaymentOverdue(at=SHIP_BY_AT, tranche=3, due_at=SHIP_BY_AT)
    ]


def test_paying_part_of_the_overdue_tranche_leaves_it_overdue() -> None:
    short = [*SECOND_OVERDUE, *when(SECOND_OVERDUE, pay(49_999, ref="pay_2"), LATE)]
    assert state_of(short).payment_overdue
    assert kinds(short) == [(K.UNPAID_CANCEL_AT, CANCEL_AT)]


def test_a_due_by_already_past_at_acceptance_is_overdue_at_once() -> None:
    placed = [order_placed(payment_schedule=SCHEDULE)]
    accepted_late = [*placed, order_accepted(at=LATE)]

    assert kinds(accepted_late)[0] == (K.TRANCHE_DUE, SECOND_DUE_AT)
    assert due_timer_commands(state_of(accepted_late), LATE) == [c.MarkPaymentOverdue()]


def test_a_schedule_paid_in_full_has_nothing_due() -> None:
    held = [*DEPOSIT_PAID, *paid(100_000, held_total=125_000, ref="pay_2")]
    assert kinds(held) == [(K.SHIP_BY, SHIP_BY_AT)]


@pytest.mark.parametrize("command", [c.MarkPaymentOverdue, c.AutoCancelOverdue])
def test_only_the_system_fires_the_tranche_timers(command: type[c.TimerCommand]) -> None:
    refused(SECOND_OVERDUE, command(actor=ADMIN), CANCEL_AT, NotPermitted)
    assert command().actor == SYSTEM
