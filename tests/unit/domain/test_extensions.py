"""Deadline extensions and their caps: ship-by (buyer, 90 days in all), inspection (each side
once, 1-15 days, 30 in all) (DESIGN 3, ``deadline.extended``)."""

from datetime import timedelta

import pytest

from escrow_core.domain import events as e
from escrow_core.domain.errors import (
    ExtensionAlreadyUsed,
    ExtensionLimitExceeded,
    InvalidState,
    InvalidValue,
    NotPermitted,
)
from escrow_core.domain.order import deadlines
from escrow_core.domain.roles import Actor, Role
from escrow_core.domain.terms import DeadlineKind, ExtendableDeadline

from .scenario import (
    ACCEPTED,
    ADMIN,
    BUYER,
    DELIVERED,
    DISPUTED,
    HELD,
    INSPECTION_ENDS_AT,
    MEDIATOR,
    OTHER_BUYER,
    OVERDUE,
    PLACED,
    SHIP_BY_AT,
    SHIPPED,
    SUPPLIER,
    History,
    day,
    extend,
    refused,
    state_of,
    then_state,
    when,
)

SHIP_BY = ExtendableDeadline.SHIP_BY
INSPECTION = ExtendableDeadline.INSPECTION


def ship_by_extended(at: int, days: int, new_at: object) -> e.DeadlineExtended:
    return e.DeadlineExtended(at=day(at), deadline=SHIP_BY, by=Role.BUYER, days=days, new_at=new_at)


# --- ship-by ----------------------------------------------------------------------------------
@pytest.mark.parametrize("given", [PLACED, ACCEPTED, HELD], ids=["placed", "accepted", "held"])
def test_the_buyer_extends_ship_by_before_shipment(given: History) -> None:
    events = when(given, extend(SHIP_BY, 10), day(20))

    new_at = SHIP_BY_AT + timedelta(days=10)
    assert events == [ship_by_extended(20, 10, new_at)]
    state = state_of([*given, *events])
    assert (state.ship_by_at, state.ship_by_extended_days) == (new_at, 10)


def test_only_the_buyer_extends_ship_by() -> None:
    error = refused(HELD, extend(SHIP_BY, 10, actor=SUPPLIER), day(20), NotPermitted)
    assert error.code == "action_not_permitted"


@pytest.mark.parametrize("actor", [MEDIATOR, ADMIN, OTHER_BUYER])
def test_others_extend_nothing(actor: Actor) -> None:
    refused(HELD, extend(SHIP_BY, 10, actor=actor), day(20), NotPermitted)
    refused(DELIVERED, extend(INSPECTION, 5, actor=actor), day(10), NotPermitted)


@pytest.mark.parametrize("given", [SHIPPED, DELIVERED, DISPUTED], ids=["shipped", "deliv", "disp"])
def test_ship_by_is_not_extended_after_shipment(given: History) -> None:
    assert refused(given, extend(SHIP_BY, 5), day(14), InvalidState).code == "invalid_state"


def test_ship_by_extensions_add_up_to_90_days_in_all() -> None:
    given = [*HELD, ship_by_extended(10, 60, SHIP_BY_AT + timedelta(days=60))]

    assert when(given, extend(SHIP_BY, 30), day(11)) == [
        ship_by_extended(11, 30, SHIP_BY_AT + timedelta(days=90))
    ]
    error = refused(given, extend(SHIP_BY, 31), day(11), ExtensionLimitExceeded)
    assert (error.code, error.field) == ("extension_limit_exceeded", "days")
    refused(HELD, extend(SHIP_BY, 91), day(11), ExtensionLimitExceeded)


@pytest.mark.parametrize("days", [0, -3])
def test_an_extension_adds_at_least_one_day(days: int) -> None:
    error = refused(HELD, extend(SHIP_BY, days), day(11), InvalidValue)
    assert (error.code, error.field) == ("invalid_value", "days")
    refused(DELIVERED, extend(INSPECTION, days), day(11), InvalidValue)


def test_extending_ship_by_clears_an_earlier_overdue_and_restarts_its_timer() -> None:
    state = then_state(OVERDUE, extend(SHIP_BY, 14), day(32))

    assert state.shipment_overdue is False
    new_at = SHIP_BY_AT + timedelta(days=14)
    assert [(d.kind, d.at) for d in deadlines(state)] == [(DeadlineKind.SHIP_BY, new_at)]


# --- inspection -------------------------------------------------------------------------------
@pytest.mark.parametrize("actor", [BUYER, SUPPLIER])
def test_either_side_extends_the_inspection_window(actor: Actor) -> None:
    events = when(DELIVERED, extend(INSPECTION, 15, actor=actor), day(10))

    new_at = INSPECTION_ENDS_AT + timedelta(days=15)
    assert events == [
        e.DeadlineExtended(at=day(10), deadline=INSPECTION, by=actor.role, days=15, new_at=new_at)
    ]
    state = state_of([*DELIVERED, *events])
    assert state.inspection_ends_at == new_at
    assert [(d.kind, d.at) for d in deadlines(state)] == [(DeadlineKind.INSPECTION_ENDS, new_at)]


def test_an_inspection_extension_is_at_most_15_days() -> None:
    error = refused(DELIVERED, extend(INSPECTION, 16), day(10), ExtensionLimitExceeded)
    assert (error.code, error.field) == ("extension_limit_exceeded", "days")


def test_each_side_extends_the_inspection_once_and_30_days_in_all() -> None:
    by_buyer = when(DELIVERED, extend(INSPECTION, 15, actor=BUYER), day(10))
    given = [*DELIVERED, *by_buyer]

    error = refused(given, extend(INSPECTION, 1, actor=BUYER), day(11), ExtensionAlreadyUsed)
    assert error.code == "extension_already_used"

    by_supplier = when(given, extend(INSPECTION, 15, actor=SUPPLIER), day(11))
    given = [*given, *by_supplier]
    state = state_of(given)
    assert state.inspection_ends_at == INSPECTION_ENDS_AT + timedelta(days=30)
    assert state.inspection_extended_days == 30
    refused(given, extend(INSPECTION, 1, actor=SUPPLIER), day(12), ExtensionAlreadyUsed)


@pytest.mark.parametrize(
    "given", [HELD, SHIPPED, DISPUTED], ids=["before_shipment", "shipped", "disputed"]
)
def test_the_inspection_window_is_extended_only_while_it_runs(given: History) -> None:
    assert refused(given, extend(INSPECTION, 5), day(14), InvalidState).code == "invalid_state"
