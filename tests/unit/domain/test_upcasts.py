"""Old stored event data reads as the current schema, through the registry the store uses."""

from datetime import UTC, datetime, timedelta

import pytest

from escrow_core.application.upcasting import event_upcasters
from escrow_core.domain import events as e
from escrow_core.domain.order import evolve
from escrow_core.projections import order_view

from .scenario import DISPUTED, SHIPPED, TOTAL, order_placed, state_of

DELIVERED_AT = datetime(2025, 3, 9, 8, tzinfo=UTC)
V3_FIELDS = ("agency_id", "agency_fee_bps", "retention", "metadata", "client_reference")
NONE_OF_V3 = {
    "agency_id": None,
    "agency_fee_bps": 0,
    "retention": None,
    "metadata": {},
    "client_reference": None,
}


def test_placed_is_written_with_schema_3_and_delivered_and_dispute_opened_with_2() -> None:
    assert e.schema_version("order.delivered") == 2
    assert e.schema_version("order.placed") == 3
    assert e.schema_version("dispute.opened") == 2
    assert e.schema_version("order.accepted") == 1


@pytest.mark.parametrize(
    ("currency", "priced_under"), [("IQD", 0), ("RSD", 0), ("JPY", 0), ("USD", 2), ("KWD", 3)]
)
def test_a_v1_order_keeps_the_exponent_it_was_priced_under(
    currency: str, priced_under: int
) -> None:
    stored_v1 = e.event_to_data(order_placed(currency=currency, currency_exponent=99))
    for added_later in ("currency_exponent", *V3_FIELDS):
        del stored_v1[added_later]

    version, data = event_upcasters().upcast("order.placed", 1, stored_v1)

    assert version == 3
    assert data == {**stored_v1, "currency_exponent": priced_under, **NONE_OF_V3}
    state = evolve(None, e.event_from_data("order.placed", data))
    assert (state.terms.currency_exponent, state.terms.total) == (priced_under, TOTAL)


def test_a_v1_dispute_is_a_dispute_not_a_claim() -> None:
    stored_v1 = {
        "at": "2025-03-10T12:00:00Z",
        "reason": "quality",
        "description": "leaks",
        "requested_refund": 100,
        "evidence": [],
    }
    version, data = event_upcasters().upcast("dispute.opened", 1, stored_v1)
    assert version == 2
    event = e.event_from_data("dispute.opened", data)
    assert isinstance(event, e.DisputeOpened)
    assert event.kind == "dispute"


def test_a_v2_order_keeps_the_exponent_it_recorded_and_has_no_v3_terms() -> None:
    current = e.event_to_data(order_placed(currency="IQD", currency_exponent=3))
    stored_v2 = {k: v for k, v in current.items() if k not in V3_FIELDS}

    version, data = event_upcasters().upcast("order.placed", 2, stored_v2)

    assert version == 3
    assert data == {**stored_v2, **NONE_OF_V3}
    state = evolve(None, e.event_from_data("order.placed", data))
    assert (state.terms.currency_exponent, state.metadata, state.client_reference) == (3, {}, None)


def test_a_v3_order_keeps_its_metadata() -> None:
    placed = order_placed(metadata={"po": "PO-7"}, client_reference="PO-7")
    stored_v3 = e.event_to_data(placed)
    assert event_upcasters().upcast("order.placed", 3, stored_v3) == (3, stored_v3)


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


def _v1_completed_and_partly_refunded() -> list[e.AnyEvent]:
    """A v1 order as replayed: schema 1 refund and release, upcast."""
    upcast = event_upcasters().upcast
    refund = upcast("refund.issued", 1, {"at": "2025-03-20T09:00:00Z", "amount": 25_000})[1]
    release = upcast(
        "funds.released",
        1,
        {"at": "2025-03-20T09:00:00Z", "gross": 100_000, "fee": 2_500, "net": 97_500},
    )[1]
    return [
        *DISPUTED,
        e.event_from_data("refund.issued", refund),
        e.event_from_data("funds.released", release),
    ]


def test_v1_releases_and_refunds_count_as_paid_out_and_refunded_untracked() -> None:
    state = state_of(_v1_completed_and_partly_refunded())

    assert (state.payouts, state.refunds) == ((), ())
    assert state.amounts.paid_out == 97_500
    assert state.amounts.refunds_completed == 25_000
    assert state.amounts.held == 0


def test_a_snapshot_written_before_money_out_reads_as_its_replay() -> None:
    replayed = state_of(_v1_completed_and_partly_refunded())
    document = order_view.to_document(replayed)
    for untracked in ("paid_out", "refunds_completed", "agency_fees", "retained"):
        del document["amounts"][untracked]
    for field in ("payouts", "refunds", "unexpected"):
        del document[field]

    assert order_view.from_document(document) == replayed
