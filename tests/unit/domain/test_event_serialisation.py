"""Every event survives event_to_data -> JSON -> event_from_data unchanged, under its type."""

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from escrow_core.domain import events as e
from escrow_core.domain.roles import Role, Side
from escrow_core.domain.terms import (
    DisputeReason,
    Evidence,
    ExtendableDeadline,
    PaymentMethod,
    RefundReason,
)

from .scenario import T0, order_placed

AT = datetime(2025, 3, 4, 10, 30, 15, 123456, tzinfo=UTC)

# The public type names, copied from the events table of DESIGN 3.
DESIGN_EVENT_TYPES = {
    "order.placed",
    "order.accepted",
    "payment.received",
    "funds.held",
    "order.shipped",
    "order.delivered",
    "receipt.confirmed",
    "funds.released",
    "dispute.opened",
    "dispute.offer_made",
    "dispute.offer_accepted",
    "dispute.escalated",
    "dispute.resolved",
    "dispute.withdrawn",
    "refund.issued",
    "order.cancelled",
    "shipment.overdue",
    "deadline.extended",
    "message.posted",
    # DESIGN 7.1: money leaving escrow, tracked to the bank.
    "payout.paid",
    "payout.failed",
    "payout.returned",
    "payout.retried",
    "refund.succeeded",
    "refund.failed",
    "refund.retried",
    "milestone.released",
    "payment.overdue",
    # DESIGN 7.3: the buyer's bookkeeping.
    "order.metadata_updated",
    # DESIGN 7.2: retention after receipt.
    "funds.retained",
    "retention.ended",
}

SAMPLES: list[e.Event] = [
    order_placed(at=T0, remarks="urgent"),
    e.OrderAccepted(at=AT),
    e.PaymentReceived(at=AT, amount=50_000, method=PaymentMethod.WALLET, provider_ref="pi_123"),
    e.FundsHeld(at=AT, amount=50_000, held_total=125_000),
    e.OrderShipped(at=AT, carrier="DHL", tracking_number="JD0001"),
    e.OrderDelivered(
        at=AT,
        delivered_at=datetime(2025, 3, 4, tzinfo=UTC),
        inspection_starts_at=datetime(2025, 3, 5, tzinfo=UTC),
    ),
    e.ReceiptConfirmed(at=AT, auto=True),
    e.FundsReleased(at=AT, gross=1_000, fee=25, net=975),
    e.DisputeOpened(
        at=AT,
        reason=DisputeReason.NOT_RECEIVED,
        description="nothing arrived",
        requested_refund=125_000,
        evidence=(
            Evidence(description="carrier status", url="https://example.com/t", sha256="ab" * 32),
            Evidence(description="email"),
        ),
    ),
    e.DisputeOfferMade(at=AT, by=Side.SUPPLIER, refund_amount=0, note="goods are fine"),
    e.DisputeOfferAccepted(at=AT, by=Side.BUYER, refund_amount=0),
    e.DisputeEscalated(at=AT, by=Role.SYSTEM),
    e.DisputeResolved(at=AT, refund_amount=1, release_amount=2, note="split", by=Role.MEDIATOR),
    e.DisputeWithdrawn(at=AT),
    e.RefundIssued(
        at=AT,
        amount=7,
        reason=RefundReason.DISPUTE,
        refunds=(
            e.NewRefund(id="rf_2", payment_provider_ref="pi_2", amount=5),
            e.NewRefund(id="rf_1", payment_provider_ref="pi_1", amount=2),
        ),
    ),
    e.FundsReleased(
        at=AT,
        gross=1_000,
        fee=25,
        net=975,
        payouts=(e.NewPayout(id="po_1", party_id="pty_s", amount=975),),
    ),
    e.PayoutPaid(at=AT, payout_id="po_1", provider_ref="tr_9"),
    e.PayoutFailed(at=AT, payout_id="po_1", reason="account closed"),
    e.PayoutReturned(at=AT, payout_id="po_1", reason="R03 no account"),
    e.PayoutRetried(at=AT, payout_id="po_1"),
    e.RefundSucceeded(at=AT, refund_id="rf_1", provider_ref="re_1"),
    e.RefundFailed(at=AT, refund_id="rf_1", reason="card expired"),
    e.RefundRetried(at=AT, refund_id="rf_1"),
    e.MilestoneReleased(at=AT, amount=30_000, note="deposit for production", by=Role.BUYER),
    e.PaymentOverdue(at=AT, tranche=2, due_at=datetime(2025, 3, 4, tzinfo=UTC)),
    e.OrderCancelled(at=AT, reason="late", by=Role.ADMIN),
    e.ShipmentOverdue(at=AT, ship_by_at=datetime(2025, 3, 4, tzinfo=UTC)),
    e.DeadlineExtended(
        at=AT, deadline=ExtendableDeadline.SHIP_BY, by=Role.SYSTEM, days=None, new_at=AT
    ),
    e.DeadlineExtended(
        at=AT, deadline=ExtendableDeadline.INSPECTION, by=Role.BUYER, days=5, new_at=AT
    ),
    e.MessagePosted(at=AT, by=Role.MEDIATOR, party_id=None, body="please upload photos"),
    e.OrderMetadataUpdated(at=AT, metadata={"po": "PO-7", "cost_center": "B-12"}),
    e.FundsRetained(at=AT, amount=12_500, retention_ends=datetime(2025, 4, 3, tzinfo=UTC)),
    e.RetentionEnded(at=AT),
]


def test_the_public_type_names_are_those_of_design() -> None:
    assert set(e.EVENT_TYPES) == DESIGN_EVENT_TYPES
    assert len(e.EVENT_TYPES) == len(DESIGN_EVENT_TYPES)


def test_every_event_type_has_a_sample_here() -> None:
    # A new event type must be added to SAMPLES, so its round trip is tested.
    assert {sample.type for sample in SAMPLES} == set(e.EVENT_TYPES)  # type: ignore[attr-defined]


@pytest.mark.parametrize("event", SAMPLES, ids=lambda event: event.type)
def test_an_event_round_trips_through_its_stored_json(event: e.AnyEvent) -> None:
    data = e.event_to_data(event)

    assert "type" not in data
    stored = json.loads(json.dumps(data))  # what the database hands back
    restored = e.event_from_data(event.type, stored)

    assert restored == event
    assert type(restored) is type(event)


def test_money_is_stored_as_integers_and_times_with_their_offset() -> None:
    data = e.event_to_data(e.FundsReleased(at=AT, gross=1_000, fee=25, net=975))
    assert data == {
        "at": "2025-03-04T10:30:15.123456Z",
        "gross": 1_000,
        "fee": 25,
        "agency_fee": 0,
        "net": 975,
        "payouts": [],
    }


def test_unknown_types_and_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        e.event_from_data("order.teleported", {"at": AT.isoformat()})
    with pytest.raises(ValidationError):
        e.event_from_data("refund.issued", {"at": AT.isoformat(), "amount": 1, "x": 2})


def test_events_are_frozen() -> None:
    event = e.RefundIssued(at=AT, amount=7, reason=RefundReason.CANCELLATION)
    with pytest.raises(ValidationError):
        event.amount = 8  # type: ignore[misc]
