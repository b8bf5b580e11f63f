"""Old stored event data reads as the current schema, through the registry the store uses."""

from datetime import UTC, datetime, timedelta

import pytest

from escrow_core.application.upcasting import event_upcasters
from escrow_core.domain import events as e
from escrow_core.domain.order import evolve

from .scenario import SHIPPED, TOTAL, order_placed, state_of

DELIVERED_AT = datetime(2025, 3, 9, 8, tzinfo=UTC)


def test_placed_and_delivered_are_written_with_schema_2() -> None:
    assert e.schema_version("order.delivered") == 2
    assert e.schema_version("order.placed") == 2
    assert e.schema_version("order.accepted") == 1


@pytest.mark.parametrize(
    ("currency", "priced_under"), [("IQD", 0), ("RSD", 0), ("JPY", 0), ("USD", 2), ("KWD", 3)]
)
def test_a_v1_order_keeps_the_exponent_it_was_priced_under(
    currency: str, priced_under: int
) -> None:
    stored_v1 = e.event_to_data(order_placed(currency=currency, currency_exponent=99))
    del stored_v1["currency_exponent"]

    version, data = event_upcasters().upcast("order.placed", 1, stored_v1)

    assert version == 2
    assert data == {**stored_v1, "currency_exponent": priced_under}
    state = evolve(None, e.event_from_data("order.placed", data))
    assert (state.terms.currency_exponent, state.terms.total) == (priced_under, TOTAL)


def test_a_v2_order_keeps_the_exponent_it_recorded() -> None:
    stored_v2 = e.event_to_data(order_placed(currency="IQD", currency_exponent=3))
    assert event_upcasters().upcast("order.placed", 2, stored_v2) == (2, stored_v2)


def test_a_v1_delivery_keeps_the_window_it_was_given() -> None:
    stored_v1 = {"at": "2025-03-10T12:00:00Z", "delivered_at": "2025-03-09T08:00:00Z"}

    version, data = event_upcasters().upcast("order.delivered", 1, stored_v1)

    assert version == 2
    event = e.event_from_data("order.delivered", data)
    assert isinstance(event, e.OrderDelivered)
    assert event.inspection_starts_at == DELIVERED_AT
    state = evolve(state_of(SHIPPED), event)
    assert state.inspection_ends_at == DELIVERED_AT + timedelta(days=state.terms.inspection_days)


def test_current_data_is_left_as_it_is() -> None:
    stored_v2 = {
        "at": "2025-03-10T12:00:00Z",
        "delivered_at": "2025-03-09T08:00:00Z",
        "inspection_starts_at": "2025-03-10T12:00:00Z",
    }
    assert event_upcasters().upcast("order.delivered", 2, stored_v2) == (2, stored_v2)
