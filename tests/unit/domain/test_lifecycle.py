"""The main line: accept, ship (only when fully held), deliver, confirm receipt (DESIGN 3)."""

from datetime import datetime, timedelta

import pytest

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import (
    InvalidDeliveryTime,
    InvalidState,
    NotFullyHeld,
    NotPermitted,
    OrderNotFound,
)
from escrow_core.domain.order import Amounts, Shipment, Status, evolve, fold
from escrow_core.domain.roles import SYSTEM, Actor

from .scenario import (
    ACCEPTED,
    ACCEPTED_AT,
    ADMIN,
    BUYER,
    CANCELLED,
    COMPLETED,
    DELIVERED,
    DELIVERED_AT,
    FEE_ON_TOTAL,
    HELD,
    MEDIATOR,
    OTHER_SUPPLIER,
    OVERDUE,
    PARTIALLY_PAID,
    PAYMENTS,
    PLACED,
    SHIPPED,
    SHIPPED_AT,
    SUPPLIER,
    TOTAL,
    History,
    day,
    funds_released,
    refused,
    state_of,
    then_state,
    when,
)

SHIP = c.ShipOrder(actor=SUPPLIER, carrier="Maersk", tracking_number="MAEU1234567")


def deliver(actor: Actor = SUPPLIER, delivered_at: datetime | None = None) -> c.ReportDelivery:
    return c.ReportDelivery(actor=actor, delivered_at=delivered_at)


def test_commands_on_an_order_that_does_not_exist_are_refused() -> None:
    error = refused([], c.AcceptOrder(actor=SUPPLIER), day(1), OrderNotFound)
    assert error.code == "order_not_found"


# --- acceptance -------------------------------------------------------------------------------
def test_the_supplier_accepts_the_terms() -> None:
    assert when(PLACED, c.AcceptOrder(actor=SUPPLIER), day(1)) == [e.OrderAccepted(at=day(1))]
    state = then_state(PLACED, c.AcceptOrder(actor=SUPPLIER), day(1))
    assert (state.status, state.accepted_at, state.version) == (Status.ACCEPTED, day(1), 2)


@pytest.mark.parametrize("actor", [BUYER, PAYMENTS, MEDIATOR, ADMIN, SYSTEM, OTHER_SUPPLIER])
def test_only_the_orders_supplier_accepts(actor: Actor) -> None:
    error = refused(PLACED, c.AcceptOrder(actor=actor), day(1), NotPermitted)
    assert error.code == "action_not_permitted"


@pytest.mark.parametrize(
    "given", [ACCEPTED, HELD, CANCELLED], ids=["accepted", "held", "cancelled"]
)
def test_an_order_is_accepted_only_while_placed(given: History) -> None:
    error = refused(given, c.AcceptOrder(actor=SUPPLIER), day(3), InvalidState)
    assert error.code == "invalid_state"


# --- shipping ---------------------------------------------------------------------------------
def test_the_supplier_ships_once_the_total_is_held() -> None:
    assert when(HELD, SHIP, day(5)) == [
        e.OrderShipped(at=day(5), carrier="Maersk", tracking_number="MAEU1234567")
    ]
    state = then_state(HELD, SHIP, day(5))
    assert state.status is Status.SHIPPED
    assert state.shipment == Shipment(
        carrier="Maersk", tracking_number="MAEU1234567", shipped_at=day(5)
    )


def test_a_late_shipment_is_still_a_shipment() -> None:
    assert when(OVERDUE, SHIP, day(40)) == [
        e.OrderShipped(at=day(40), carrier="Maersk", tracking_number="MAEU1234567")
    ]


@pytest.mark.parametrize("given", [ACCEPTED, PARTIALLY_PAID], ids=["unpaid", "partially_paid"])
def test_shipping_before_the_total_is_held_is_refused(given: History) -> None:
    error = refused(given, SHIP, day(5), NotFullyHeld)
    assert error.code == "not_fully_held"


@pytest.mark.parametrize("given", [PLACED, SHIPPED, CANCELLED], ids=["placed", "shipped", "cancel"])
def test_shipping_in_other_states_is_refused(given: History) -> None:
    error = refused(given, SHIP, day(6), InvalidState)
    assert error.code == "invalid_state"


@pytest.mark.parametrize("actor", [BUYER, PAYMENTS, ADMIN, OTHER_SUPPLIER])
def test_only_the_supplier_ships(actor: Actor) -> None:
    command = SHIP.model_copy(update={"actor": actor})
    assert refused(HELD, command, day(5), NotPermitted).code == "action_not_permitted"


# --- delivery ---------------------------------------------------------------------------------
@pytest.mark.parametrize("actor", [SUPPLIER, PAYMENTS, ADMIN])
def test_supplier_payments_or_admin_report_delivery(actor: Actor) -> None:
    assert when(SHIPPED, deliver(actor), day(9)) == [
        e.OrderDelivered(at=day(9), delivered_at=day(9), inspection_starts_at=day(9))
    ]


@pytest.mark.parametrize("actor", [BUYER, MEDIATOR, OTHER_SUPPLIER])
def test_others_do_not_report_delivery(actor: Actor) -> None:
    assert refused(SHIPPED, deliver(actor), day(9), NotPermitted).code == "action_not_permitted"


def test_a_suppliers_backdated_report_starts_the_inspection_window_at_the_report() -> None:
    # Reported late, at the shipment time: the buyer still gets its whole window from now.
    state = then_state(SHIPPED, deliver(delivered_at=SHIPPED_AT), day(19))
    assert state.status is Status.DELIVERED
    assert state.shipment is not None
    assert state.shipment.delivered_at == SHIPPED_AT
    assert state.inspection_ends_at == day(19) + timedelta(days=10)
    assert state.auto_complete_at is None


@pytest.mark.parametrize("actor", [PAYMENTS, ADMIN])
def test_payments_or_an_admin_may_backdate_the_inspection_window(actor: Actor) -> None:
    state = then_state(SHIPPED, deliver(actor, delivered_at=day(7)), day(9))
    assert state.shipment is not None
    assert state.shipment.delivered_at == day(7)
    assert state.inspection_ends_at == day(7) + timedelta(days=10)


@pytest.mark.parametrize("delivered_at", [SHIPPED_AT, day(9)], ids=["at_shipment", "now"])
def test_delivered_at_may_be_anywhere_from_shipment_to_now(delivered_at: datetime) -> None:
    [delivered] = when(SHIPPED, deliver(delivered_at=delivered_at), day(9))
    assert delivered == e.OrderDelivered(
        at=day(9), delivered_at=delivered_at, inspection_starts_at=day(9)
    )


@pytest.mark.parametrize(
    "delivered_at",
    [SHIPPED_AT - timedelta(seconds=1), day(9) + timedelta(seconds=1), datetime(2025, 3, 12)],
    ids=["before_shipment", "in_the_future", "without_offset"],
)
def test_delivered_at_out_of_bounds_is_refused(delivered_at: datetime) -> None:
    error = refused(SHIPPED, deliver(delivered_at=delivered_at), day(9), InvalidDeliveryTime)
    assert error.code == "invalid_delivered_at"
    assert error.field == "delivered_at"


@pytest.mark.parametrize("given", [HELD, DELIVERED], ids=["before_shipment", "twice"])
def test_delivery_is_reported_only_while_shipped(given: History) -> None:
    assert refused(given, deliver(), day(10), InvalidState).code == "invalid_state"


# --- confirmation and release -----------------------------------------------------------------
@pytest.mark.parametrize("given", [SHIPPED, DELIVERED], ids=["shipped", "delivered"])
def test_the_buyer_confirms_receipt_and_the_held_total_is_released_less_the_fee(
    given: History,
) -> None:
    events = when(given, c.ConfirmReceipt(actor=BUYER), day(10))

    assert events == [
        e.ReceiptConfirmed(at=day(10), auto=False),
        funds_released(TOTAL, FEE_ON_TOTAL, day(10)),
    ]
    state = state_of([*given, *events])
    assert state.status is Status.COMPLETED
    assert state.amounts == Amounts(paid=TOTAL, held=0, released=TOTAL, fees=FEE_ON_TOTAL)


@pytest.mark.parametrize("actor", [SUPPLIER, PAYMENTS, MEDIATOR, ADMIN, SYSTEM])
def test_only_the_buyer_confirms_receipt(actor: Actor) -> None:
    error = refused(DELIVERED, c.ConfirmReceipt(actor=actor), day(10), NotPermitted)
    assert error.code == "action_not_permitted"


@pytest.mark.parametrize("given", [HELD, COMPLETED], ids=["before_shipment", "twice"])
def test_receipt_is_confirmed_only_in_shipped_or_delivered(given: History) -> None:
    error = refused(given, c.ConfirmReceipt(actor=BUYER), day(11), InvalidState)
    assert error.code == "invalid_state"


def test_every_event_moves_the_version_on_by_one() -> None:
    for count in range(1, len(COMPLETED) + 1):
        state = state_of(COMPLETED[:count])
        assert state.version == count
        assert state.updated_at == COMPLETED[count - 1].at
    assert state_of(ACCEPTED).accepted_at == ACCEPTED_AT
    assert state_of(DELIVERED).shipment == Shipment(
        carrier="Maersk",
        tracking_number="MAEU1234567",
        shipped_at=SHIPPED_AT,
        delivered_at=DELIVERED_AT,
    )


def test_a_stream_must_start_with_order_placed_and_have_only_one() -> None:
    with pytest.raises(ValueError, match=r"before order\.placed"):
        evolve(None, e.OrderAccepted(at=day(1)))
    with pytest.raises(ValueError, match="existing order"):
        evolve(state_of(PLACED), PLACED[0])
    assert fold([]) is None
