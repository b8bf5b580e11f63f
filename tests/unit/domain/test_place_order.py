"""Placing an order: the terms captured at ``order.placed`` and each refusal (DESIGN 3, Terms)."""

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import (
    InvalidTerms,
    NotPermitted,
    OrderAlreadyExists,
    PaymentScheduleMismatch,
    SupplierNotTradeAssurance,
)
from escrow_core.domain.order import Amounts, Status
from escrow_core.domain.policy import TimerPolicy
from escrow_core.domain.terms import LineItem, Tranche

from .scenario import (
    BUYER_ID,
    OTHER_BUYER,
    PLACED,
    SHIP_BY,
    SUPPLIER,
    SUPPLIER_ID,
    T0,
    TOTAL,
    day,
    place_order,
    refused,
    state_of,
    when,
)

WIDGETS = (
    LineItem(sku="W-1", description="widget", quantity=3, unit_price=1_999),
    LineItem(sku="W-2", description="gadget", quantity=2, unit_price=10_001),
)
WIDGETS_TOTAL = 3 * 1_999 + 2 * 10_001  # 26_999


def test_the_order_is_placed_with_every_term_and_the_total_computed() -> None:
    [placed] = when([], place_order(items=WIDGETS, shipping_fee=1_500, remarks="blue"), T0)

    assert placed == e.OrderPlaced(
        at=T0,
        buyer_id=BUYER_ID,
        supplier_id=SUPPLIER_ID,
        currency="USD",
        currency_exponent=2,
        items=WIDGETS,
        shipping_fee=1_500,
        total=WIDGETS_TOTAL + 1_500,
        incoterm="FOB",
        quality_terms="brass CW617N, pressure-tested to 16 bar",
        ship_by=SHIP_BY,
        inspection_days=10,
        payment_schedule=(Tranche(name="full", amount=WIDGETS_TOTAL + 1_500),),
        remarks="blue",
        fee_bps=250,
        policy=TimerPolicy(),  # the defaults: the service passes the deployment's
    )


def test_the_shipping_fee_defaults_to_zero() -> None:
    fields = place_order(items=WIDGETS).model_dump(exclude={"shipping_fee"})
    [placed] = when([], c.PlaceOrder.model_validate(fields), T0)
    assert isinstance(placed, e.OrderPlaced)
    assert placed.total == WIDGETS_TOTAL


def test_the_total_is_never_taken_from_the_client() -> None:
    with pytest.raises(ValidationError, match="total"):
        place_order(total=1)


def test_the_default_payment_schedule_is_one_tranche_of_the_total() -> None:
    [placed] = when([], place_order(), T0)
    assert isinstance(placed, e.OrderPlaced)
    assert [t.amount for t in placed.payment_schedule] == [TOTAL]


def test_a_payment_schedule_that_sums_to_the_total_is_kept() -> None:
    schedule = (Tranche(name="deposit", amount=37_500), Tranche(name="balance", amount=87_500))
    [placed] = when([], place_order(payment_schedule=schedule), T0)
    assert isinstance(placed, e.OrderPlaced)
    assert placed.payment_schedule == schedule


@pytest.mark.parametrize("balance", [87_499, 87_501])
def test_a_payment_schedule_must_sum_to_the_total(balance: int) -> None:
    schedule = (Tranche(name="deposit", amount=37_500), Tranche(name="balance", amount=balance))

    error = refused([], place_order(payment_schedule=schedule), T0, PaymentScheduleMismatch)

    assert error.code == "payment_schedule_mismatch"
    assert error.field == "payment_schedule"


def test_the_supplier_must_be_trade_assurance_enabled() -> None:
    command = place_order(supplier_trade_assurance=False)
    error = refused([], command, T0, SupplierNotTradeAssurance)
    assert error.code == "supplier_not_trade_assurance"
    assert error.field == "supplier_id"


def test_buyer_and_supplier_must_differ() -> None:
    error = refused([], place_order(supplier_id=BUYER_ID), T0, InvalidTerms)
    assert error.code == "invalid_terms"
    assert error.field == "supplier_id"


def test_ship_by_in_the_past_is_refused() -> None:
    error = refused([], place_order(ship_by=date(2025, 3, 2)), T0, InvalidTerms)
    assert error.code == "invalid_terms"
    assert error.field == "ship_by"


def test_ship_by_is_the_end_of_that_day() -> None:
    # Placed at 09:00 on 3 March: shipping by today is still possible ...
    [placed] = when([], place_order(ship_by=date(2025, 3, 3)), T0)
    assert isinstance(placed, e.OrderPlaced)
    # ... and at midnight that day is over.
    midnight = datetime(2025, 3, 4, tzinfo=UTC)
    refused([], place_order(ship_by=date(2025, 3, 3)), midnight, InvalidTerms)
    state = state_of(PLACED)
    assert state.ship_by_at == datetime(2025, 4, 3, tzinfo=UTC)


@pytest.mark.parametrize("days", [0, 31, -1])
def test_inspection_days_outside_1_to_30_are_refused(days: int) -> None:
    error = refused([], place_order(inspection_days=days), T0, InvalidTerms)
    assert error.code == "invalid_terms"
    assert error.field == "inspection_days"


@pytest.mark.parametrize("days", [1, 30])
def test_inspection_days_of_1_and_30_are_accepted(days: int) -> None:
    [placed] = when([], place_order(inspection_days=days), T0)
    assert isinstance(placed, e.OrderPlaced)
    assert placed.inspection_days == days


def test_an_order_needs_items() -> None:
    error = refused([], place_order(items=()), T0, InvalidTerms)
    assert error.field == "items"


def test_a_negative_shipping_fee_is_refused() -> None:
    error = refused([], place_order(shipping_fee=-1), T0, InvalidTerms)
    assert error.field == "shipping_fee"


@pytest.mark.parametrize("fee_bps", [-1, 10_001])
def test_the_fee_must_be_0_to_10000_bps(fee_bps: int) -> None:
    error = refused([], place_order(fee_bps=fee_bps), T0, InvalidTerms)
    assert error.field == "fee_bps"


@pytest.mark.parametrize("field", ["quantity", "unit_price"])
def test_quantities_and_prices_are_positive(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        LineItem(**{"sku": "X", "quantity": 1, "unit_price": 1, field: 0})


@pytest.mark.parametrize("actor", [SUPPLIER, OTHER_BUYER])
def test_only_the_buyer_places_its_own_order(actor: object) -> None:
    error = refused([], place_order(actor=actor), T0, NotPermitted)
    assert error.code == "action_not_permitted"


def test_an_order_is_placed_once() -> None:
    error = refused(PLACED, place_order(), day(1), OrderAlreadyExists)
    assert error.code == "order_already_exists"


def test_a_placed_order_starts_at_version_1_holding_nothing() -> None:
    state = state_of(PLACED)
    assert (state.version, state.status, state.amounts) == (1, Status.PLACED, Amounts())
    assert state.terms.total == TOTAL
    assert state.terms.fee_bps == 250
