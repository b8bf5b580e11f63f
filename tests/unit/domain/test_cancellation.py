"""Who may cancel when, and the refund of held money in the same command (DESIGN 3)."""

from datetime import timedelta

import pytest

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import CancellationNotAllowed, NotPermitted
from escrow_core.domain.order import Amounts, Status
from escrow_core.domain.roles import SYSTEM, Actor, Role
from escrow_core.domain.terms import ExtendableDeadline, RefundReason

from .scenario import (
    ACCEPTED,
    ADMIN,
    BUYER,
    CANCELLED,
    COMPLETED,
    DELIVERED,
    DISPUTED,
    HELD,
    MEDIATOR,
    OTHER_BUYER,
    OTHER_SUPPLIER,
    OVERDUE,
    PARTIALLY_PAID,
    PAYMENTS,
    PLACED,
    SHIP_BY_AT,
    SHIPPED,
    SUPPLIER,
    TOTAL,
    History,
    day,
    refund_issued,
    refused,
    state_of,
    when,
)

NOW = day(40)  # after ship-by, so lateness is never what makes a refusal


def cancel(actor: Actor) -> c.CancelOrder:
    return c.CancelOrder(actor=actor, reason="no longer needed")


def cancelled(by: Role) -> e.OrderCancelled:
    return e.OrderCancelled(at=NOW, reason="no longer needed", by=by)


@pytest.mark.parametrize("actor", [BUYER, SUPPLIER, ADMIN])
@pytest.mark.parametrize("given", [PLACED, ACCEPTED], ids=["before_acceptance", "before_payment"])
def test_before_any_payment_either_side_cancels_with_nothing_to_refund(
    given: History, actor: Actor
) -> None:
    events = when(given, cancel(actor), NOW)

    assert events == [cancelled(actor.role)]
    state = state_of([*given, *events])
    assert state.status is Status.CANCELLED
    assert state.cancellation_reason == "no longer needed"


@pytest.mark.parametrize("actor", [MEDIATOR, PAYMENTS, SYSTEM, OTHER_BUYER, OTHER_SUPPLIER])
def test_others_never_cancel(actor: Actor) -> None:
    assert refused(PLACED, cancel(actor), NOW, NotPermitted).code == "action_not_permitted"


@pytest.mark.parametrize(
    ("given", "held"),
    [(PARTIALLY_PAID, 50_000), (HELD, TOTAL)],
    ids=["partially_paid", "held"],
)
@pytest.mark.parametrize("actor", [SUPPLIER, ADMIN])
def test_after_payment_the_supplier_or_an_admin_cancels_and_the_held_money_is_refunded(
    given: History, held: int, actor: Actor
) -> None:
    events = when(given, cancel(actor), NOW)

    assert events == [cancelled(actor.role), refund_issued(held, RefundReason.CANCELLATION, NOW)]
    state = state_of([*given, *events])
    assert state.status is Status.CANCELLED
    assert state.amounts == Amounts(paid=held, refunded=held)


@pytest.mark.parametrize("given", [PARTIALLY_PAID, HELD], ids=["partially_paid", "held"])
def test_after_payment_the_buyer_may_not_cancel_before_the_shipment_is_overdue(
    given: History,
) -> None:
    error = refused(given, cancel(BUYER), NOW, CancellationNotAllowed)
    assert error.code == "cancellation_not_allowed"


def test_once_the_shipment_is_overdue_the_buyer_cancels_and_is_refunded() -> None:
    events = when(OVERDUE, cancel(BUYER), NOW)

    assert events == [cancelled(Role.BUYER), refund_issued(TOTAL, RefundReason.CANCELLATION, NOW)]
    assert state_of([*OVERDUE, *events]).amounts == Amounts(paid=TOTAL, refunded=TOTAL)


def test_extending_ship_by_takes_the_buyers_right_to_cancel_away_until_it_is_overdue_again() -> (
    None
):
    extended = e.DeadlineExtended(
        at=day(33),
        deadline=ExtendableDeadline.SHIP_BY,
        by=Role.BUYER,
        days=30,
        new_at=SHIP_BY_AT + timedelta(days=30),
    )
    given = [*OVERDUE, extended]
    refused(given, cancel(BUYER), NOW, CancellationNotAllowed)
    overdue_again = e.ShipmentOverdue(at=day(61), ship_by_at=extended.new_at)
    assert when([*given, overdue_again], cancel(BUYER), day(62))[0] == e.OrderCancelled(
        at=day(62), reason="no longer needed", by=Role.BUYER
    )


@pytest.mark.parametrize("actor", [BUYER, SUPPLIER, ADMIN])
@pytest.mark.parametrize(
    "given",
    [SHIPPED, DELIVERED, DISPUTED, COMPLETED, CANCELLED],
    ids=["shipped", "delivered", "disputed", "completed", "cancelled"],
)
def test_after_shipment_or_once_final_nobody_cancels(given: History, actor: Actor) -> None:
    error = refused(given, cancel(actor), NOW, CancellationNotAllowed)
    assert error.code == "cancellation_not_allowed"
