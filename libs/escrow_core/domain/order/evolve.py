"""evolve(state, event) -> state: a mutator per event type, and the fold over a stream."""

from collections.abc import Callable, Iterable
from typing import Any

from escrow_core.domain import events as e
from escrow_core.domain.order import (
    bookkeeping,
    dispute,
    lifecycle,
    milestones,
    money_out,
    payments,
    retention,
    schedule,
    timers,
)
from escrow_core.domain.order.state import OrderState

Mutator = Callable[[OrderState, Any], OrderState]


def _both(first: Mutator, then: Mutator) -> Mutator:
    return lambda state, event: then(first(state, event), event)


MUTATORS: dict[type[e.Event], Mutator] = {
    e.OrderAccepted: lifecycle.accepted,
    e.PaymentReceived: payments.payment_received,
    e.FundsHeld: _both(payments.funds_held, schedule.overdue_paid_up),
    e.OrderShipped: lifecycle.shipped,
    e.OrderDelivered: lifecycle.delivered,
    e.ReceiptConfirmed: lifecycle.receipt_confirmed,
    e.FundsReleased: _both(payments.funds_released, money_out.payouts_created),
    e.DisputeOpened: dispute.dispute_opened,
    e.DisputeOfferMade: dispute.offer_made,
    e.DisputeOfferAccepted: dispute.offer_accepted,
    e.DisputeEscalated: dispute.escalated,
    e.DisputeResolved: dispute.resolved,
    e.DisputeWithdrawn: dispute.withdrawn,
    e.RefundIssued: _both(payments.refund_issued, money_out.refunds_created),
    e.OrderCancelled: lifecycle.cancelled,
    e.ShipmentOverdue: lifecycle.shipment_overdue,
    e.DeadlineExtended: timers.deadline_extended,
    e.MessagePosted: lifecycle.message_posted,
    e.OrderMetadataUpdated: bookkeeping.metadata_updated,
    e.PayoutPaid: money_out.payout_paid,
    e.PayoutFailed: money_out.payout_failed,
    e.PayoutReturned: money_out.payout_returned,
    e.PayoutRetried: money_out.payout_retried,
    e.RefundSucceeded: money_out.refund_succeeded,
    e.RefundFailed: money_out.refund_failed,
    e.RefundRetried: money_out.refund_retried,
    # milestones and every tranche due (DESIGN 7.2)
    e.MilestoneReleased: milestones.milestone_released,
    e.PaymentOverdue: schedule.payment_overdue,
    # retention
    e.FundsRetained: retention.funds_retained,
    e.RetentionEnded: retention.retention_ended,
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
    moved = {"version": state.version + 1, "updated_at": event.at}
    if after is state:  # the event changed nothing else
        return state.model_copy(update=moved)
    # Otherwise ``after`` is the mutators' own new copy, which no one has seen yet: it takes the
    # version and time in place rather than being copied whole once more (a third of the step).
    after.__dict__.update(moved)
    after.__pydantic_fields_set__.update(moved)
    return after


def fold(events: Iterable[e.AnyEvent], state: OrderState | None = None) -> OrderState | None:
    for event in events:
        state = evolve(state, event)
    return state
