"""Timers as data: the deadlines of each status, and each timer command (DESIGN 3, Timers)."""

from datetime import datetime, timedelta

import pytest

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import DeadlineNotReached, InvalidState, NotPermitted
from escrow_core.domain.order import (
    Status,
    deadlines,
    decide,
    due_timer_commands,
    next_deadline_at,
    next_timer_at,
)
from escrow_core.domain.roles import Role
from escrow_core.domain.terms import DeadlineKind, ExtendableDeadline, RefundReason, Tranche

from .scenario import (
    ACCEPTED,
    ADMIN,
    AUTO_ESCALATE_AT,
    CANCELLED,
    COMPLETED,
    DELIVERED,
    DISPUTED,
    ESCALATED,
    ESCALATION_ALLOWED_AT,
    FEE_ON_TOTAL,
    HELD,
    IDS,
    INSPECTION_ENDS_AT,
    OVERDUE,
    PARTIALLY_PAID,
    PLACED,
    SHIP_BY_AT,
    SHIPPED,
    TOTAL,
    History,
    day,
    funds_released,
    order_accepted,
    order_placed,
    paid,
    refund_issued,
    refused,
    state_of,
    when,
)

K = DeadlineKind
ACCEPT_BY = day(30)  # placed + 30 days
PAY_BY = day(61)  # accepted on day 1 + 60 days
AUTO_COMPLETE_AT = day(65)  # shipped on day 5 + 60 days

# A deposit of 37_500 then a balance of 87_500; the deposit is paid, the balance is not.
DEPOSIT_PAID: History = [
    order_placed(
        payment_schedule=(
            Tranche(name="deposit", amount=37_500),
            Tranche(name="balance", amount=87_500),
        )
    ),
    order_accepted(),
    *paid(37_500, held_total=37_500),
]

EXPECTED_DEADLINES: dict[str, tuple[History, list[tuple[DeadlineKind, datetime]]]] = {
    "placed": (PLACED, [(K.ACCEPT_BY, ACCEPT_BY)]),
    "accepted": (ACCEPTED, [(K.PAY_BY, PAY_BY)]),
    "first_tranche_short": (PARTIALLY_PAID, [(K.PAY_BY, PAY_BY)]),
    # the balance is due by the end of ship_by (its default due_by)
    "first_tranche_paid": (DEPOSIT_PAID, [(K.TRANCHE_DUE, SHIP_BY_AT)]),
    "held": (HELD, [(K.SHIP_BY, SHIP_BY_AT)]),
    "overdue": (OVERDUE, []),
    "shipped": (SHIPPED, [(K.AUTO_COMPLETE_AT, AUTO_COMPLETE_AT)]),
    "delivered": (DELIVERED, [(K.INSPECTION_ENDS, INSPECTION_ENDS_AT)]),
    "disputed": (
        DISPUTED,
        [(K.ESCALATION_ALLOWED_AT, ESCALATION_ALLOWED_AT), (K.AUTO_ESCALATE_AT, AUTO_ESCALATE_AT)],
    ),
    "escalated": (ESCALATED, []),
    "completed": (COMPLETED, []),
    "cancelled": (CANCELLED, []),
}


@pytest.mark.parametrize(
    ("given", "expected"), EXPECTED_DEADLINES.values(), ids=EXPECTED_DEADLINES.keys()
)
def test_each_status_exposes_its_running_deadlines_soonest_first(
    given: History, expected: list[tuple[DeadlineKind, datetime]]
) -> None:
    state = state_of(given)

    assert [(d.kind, d.at) for d in deadlines(state)] == expected
    assert next_deadline_at(state) == (expected[0][1] if expected else None)


def test_escalation_allowed_at_informs_but_fires_nothing() -> None:
    state = state_of(DISPUTED)
    assert next_deadline_at(state) == ESCALATION_ALLOWED_AT
    assert next_timer_at(state) == AUTO_ESCALATE_AT
    assert due_timer_commands(state, ESCALATION_ALLOWED_AT) == []
    assert due_timer_commands(state, AUTO_ESCALATE_AT) == [c.AutoEscalateDispute()]


def test_an_order_with_no_deadline_needs_no_timer() -> None:
    for given in (OVERDUE, ESCALATED, COMPLETED, CANCELLED):
        state = state_of(given)
        assert next_timer_at(state) is None
        assert due_timer_commands(state, day(1000)) == []


# (given, the timer command, when it is due, what it does, the status after)
TIMERS: dict[str, tuple[History, c.TimerCommand, datetime, list[type[e.Event]], Status]] = {
    "auto_cancel_unaccepted": (
        PLACED,
        c.AutoCancelUnaccepted(),
        ACCEPT_BY,
        [e.OrderCancelled],
        Status.CANCELLED,
    ),
    "auto_cancel_unpaid": (
        PARTIALLY_PAID,
        c.AutoCancelUnpaid(),
        PAY_BY,
        [e.OrderCancelled, e.RefundIssued],
        Status.CANCELLED,
    ),
    "mark_shipment_overdue": (
        HELD,
        c.MarkShipmentOverdue(),
        SHIP_BY_AT,
        [e.ShipmentOverdue],
        Status.HELD,
    ),
    "auto_confirm": (
        DELIVERED,
        c.AutoConfirmReceipt(),
        INSPECTION_ENDS_AT,
        [e.ReceiptConfirmed, e.FundsReleased],
        Status.COMPLETED,
    ),
    "auto_complete": (
        SHIPPED,
        c.AutoCompleteUndelivered(),
        AUTO_COMPLETE_AT,
        [e.ReceiptConfirmed, e.FundsReleased],
        Status.COMPLETED,
    ),
    "auto_escalate": (
        DISPUTED,
        c.AutoEscalateDispute(),
        AUTO_ESCALATE_AT,
        [e.DisputeEscalated],
        Status.DISPUTED,
    ),
}
TIMER_CASES = pytest.mark.parametrize(
    ("given", "command", "due", "event_types", "status"), TIMERS.values(), ids=TIMERS.keys()
)


@TIMER_CASES
def test_a_timer_command_is_refused_before_its_deadline(
    given: History,
    command: c.TimerCommand,
    due: datetime,
    event_types: list[type[e.Event]],
    status: Status,
) -> None:
    error = refused(given, command, due - timedelta(seconds=1), DeadlineNotReached)
    assert error.code == "deadline_not_reached"
    assert due_timer_commands(state_of(given), due - timedelta(seconds=1)) == []


@TIMER_CASES
def test_a_timer_command_fires_at_its_deadline_and_is_the_one_the_worker_is_told_to_fire(
    given: History,
    command: c.TimerCommand,
    due: datetime,
    event_types: list[type[e.Event]],
    status: Status,
) -> None:
    state = state_of(given)
    assert next_timer_at(state) == due
    assert due_timer_commands(state, due) == [command]

    events = when(given, command, due)

    assert [type(event) for event in events] == event_types
    assert state_of([*given, *events]).status is status


@TIMER_CASES
def test_only_the_system_fires_timers(
    given: History,
    command: c.TimerCommand,
    due: datetime,
    event_types: list[type[e.Event]],
    status: Status,
) -> None:
    as_admin = command.model_copy(update={"actor": ADMIN})
    assert refused(given, as_admin, due, NotPermitted).code == "action_not_permitted"


@pytest.mark.parametrize(
    ("given", "command"),
    [
        (ACCEPTED, c.AutoCancelUnaccepted()),
        (DEPOSIT_PAID, c.AutoCancelUnpaid()),
        (HELD, c.AutoCancelUnpaid()),
        (OVERDUE, c.MarkShipmentOverdue()),
        (SHIPPED, c.MarkShipmentOverdue()),
        (SHIPPED, c.AutoConfirmReceipt()),
        (DISPUTED, c.AutoConfirmReceipt()),
        (DELIVERED, c.AutoCompleteUndelivered()),
        (DISPUTED, c.AutoCompleteUndelivered()),
        (ESCALATED, c.AutoEscalateDispute()),
        (COMPLETED, c.AutoConfirmReceipt()),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, c.Command) else "",
)
def test_a_timer_command_is_refused_when_its_deadline_is_not_running(
    given: History, command: c.TimerCommand
) -> None:
    # A stale timer (the buyer confirmed, paid or the order moved on first) changes nothing.
    assert refused(given, command, day(1000), InvalidState).code == "invalid_state"


def test_auto_cancel_unaccepted_cancels_as_the_system_with_nothing_to_refund() -> None:
    [cancelled] = when(PLACED, c.AutoCancelUnaccepted(), ACCEPT_BY)
    assert isinstance(cancelled, e.OrderCancelled)
    assert cancelled.by is Role.SYSTEM


def test_auto_cancel_unpaid_refunds_the_partial_payment() -> None:
    events = when(PARTIALLY_PAID, c.AutoCancelUnpaid(), PAY_BY)

    assert events[1:] == [refund_issued(50_000, RefundReason.CANCELLATION, PAY_BY)]
    state = state_of([*PARTIALLY_PAID, *events])
    assert (state.amounts.held, state.amounts.refunded) == (0, 50_000)


def test_mark_shipment_overdue_records_the_ship_by_it_missed() -> None:
    assert when(HELD, c.MarkShipmentOverdue(), SHIP_BY_AT + timedelta(hours=1)) == [
        e.ShipmentOverdue(at=SHIP_BY_AT + timedelta(hours=1), ship_by_at=SHIP_BY_AT)
    ]
    assert state_of(OVERDUE).shipment_overdue is True


@pytest.mark.parametrize(
    ("given", "due"), [(DELIVERED, INSPECTION_ENDS_AT), (SHIPPED, AUTO_COMPLETE_AT)]
)
def test_auto_confirm_and_auto_complete_confirm_receipt_automatically_and_release(
    given: History, due: datetime
) -> None:
    command = due_timer_commands(state_of(given), due)[0]

    assert when(given, command, due) == [
        e.ReceiptConfirmed(at=due, auto=True),
        funds_released(TOTAL, FEE_ON_TOTAL, due),
    ]


def test_a_timer_fires_on_the_deadline_as_extended() -> None:
    extended = e.DeadlineExtended(
        at=day(10),
        deadline=ExtendableDeadline.INSPECTION,
        by=Role.SUPPLIER,
        days=5,
        new_at=INSPECTION_ENDS_AT + timedelta(days=5),
    )
    given = [*DELIVERED, extended]
    refused(given, c.AutoConfirmReceipt(), INSPECTION_ENDS_AT, DeadlineNotReached)
    assert when(given, c.AutoConfirmReceipt(), INSPECTION_ENDS_AT + timedelta(days=5)) != []


@pytest.mark.parametrize(
    "given", [given for given, _ in EXPECTED_DEADLINES.values()], ids=EXPECTED_DEADLINES.keys()
)
def test_every_command_the_worker_is_told_to_fire_is_accepted(given: History) -> None:
    state = state_of(given)
    for deadline in deadlines(state):
        for command in due_timer_commands(state, deadline.at):
            assert decide(state, command, deadline.at, IDS) != []
