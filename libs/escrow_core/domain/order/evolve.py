"""evolve(state, event) -> state: a mutator per event type, and the fold over a stream."""

from collections.abc import Callable, Iterable
from typing import Any

from escrow_core.domain import events as e
from escrow_core.domain.order import dispute, lifecycle, payments, timers
from escrow_core.domain.order.state import OrderState

Mutator = Callable[[OrderState, Any], OrderState]

MUTATORS: dict[type[e.Event], Mutator] = {
    e.OrderAccepted: lifecycle.accepted,
    e.PaymentReceived: payments.payment_received,
    e.FundsHeld: payments.funds_held,
    e.OrderShipped: lifecycle.shipped,
    e.OrderDelivered: lifecycle.delivered,
    e.ReceiptConfirmed: lifecycle.receipt_confirmed,
    e.FundsReleased: payments.funds_released,
    e.DisputeOpened: dispute.dispute_opened,
    e.DisputeOfferMade: dispute.offer_made,
    e.DisputeOfferAccepted: dispute.offer_accepted,
    e.DisputeEscalated: dispute.escalated,
    e.DisputeResolved: dispute.resolved,
    e.DisputeWithdrawn: dispute.withdrawn,
    e.RefundIssued: payments.refund_issued,
    e.OrderCancelled: lifecycle.cancelled,
    e.ShipmentOverdue: lifecycle.shipment_overdue,
    e.DeadlineExtended: timers.deadline_extended,
    e.MessagePosted: lifecycle.message_posted,
}


def evolve(state: OrderState | None, event: e.AnyEvent) -> OrderState:
    """The state after ``event``; each event moves the version on by one."""
    if isinstance(event, e.OrderPlaced):
        if state is not None:
            raise ValueError("order.placed on an existing order")
        return lifecycle.placed(event)
    if state is None:
        raise ValueError(f"{event.type} before order.placed")
    after = MUTATORS[type(event)](state, event)
    return after.model_copy(update={"version": state.version + 1, "updated_at": event.at})


def fold(events: Iterable[e.AnyEvent], state: OrderState | None = None) -> OrderState | None:
    for event in events:
        state = evolve(state, event)
    return state
