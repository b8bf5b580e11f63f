"""decide(state, command, now, ids) -> events: pure, and the only place a command is judged."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import OrderAlreadyExists, OrderNotFound
from escrow_core.domain.order import (
    bookkeeping,
    dispute,
    lifecycle,
    milestones,
    money_out,
    overdue,
    payments,
    retention,
    timers,
)
from escrow_core.domain.order.evolve import evolve
from escrow_core.domain.order.money_out import PAYOUT_PREFIX, REFUND_PREFIX, NewIds
from escrow_core.domain.order.state import OrderState

Handler = Callable[[OrderState, Any, datetime], list[e.AnyEvent]]

HANDLERS: dict[type[c.Command], Handler] = {
    c.AcceptOrder: lifecycle.accept,
    c.RecordPayment: payments.record_payment,
    c.ShipOrder: lifecycle.ship,
    c.ReportDelivery: lifecycle.deliver,
    c.ConfirmReceipt: lifecycle.confirm,
    c.ExtendDeadline: timers.extend,
    c.CancelOrder: lifecycle.cancel,
    c.PostMessage: lifecycle.post_message,
    c.UpdateMetadata: bookkeeping.update_metadata,
    c.OpenDispute: dispute.open_dispute,
    c.MakeOffer: dispute.make_offer,
    c.AcceptOffer: dispute.accept_offer,
    c.EscalateDispute: dispute.escalate,
    c.ResolveDispute: dispute.resolve,
    c.WithdrawDispute: dispute.withdraw,
    c.ReportPayoutPaid: money_out.report_payout_paid,
    c.ReportPayoutFailed: money_out.report_payout_failed,
    c.ReportPayoutReturned: money_out.report_payout_returned,
    c.RetryPayout: money_out.retry_payout,
    c.ReportRefundSucceeded: money_out.report_refund_succeeded,
    c.ReportRefundFailed: money_out.report_refund_failed,
    c.RetryRefund: money_out.retry_refund,
    c.AutoCancelUnaccepted: lifecycle.auto_cancel_unaccepted,
    c.AutoCancelUnpaid: lifecycle.auto_cancel_unpaid,
    c.MarkShipmentOverdue: lifecycle.mark_shipment_overdue,
    c.AutoConfirmReceipt: lifecycle.auto_confirm,
    c.AutoCompleteUndelivered: lifecycle.auto_complete,
    c.AutoEscalateDispute: dispute.auto_escalate,
    # milestones and every tranche due (DESIGN 7.2)
    c.ReleaseMilestone: milestones.release_milestone,
    c.MarkPaymentOverdue: overdue.mark_payment_overdue,
    c.AutoCancelOverdue: overdue.auto_cancel_overdue,
    # retention and claims
    c.MakeClaim: retention.claim,
    c.EndRetention: retention.end_retention,
}


def decide(
    state: OrderState | None, command: c.Command, now: datetime, ids: NewIds
) -> list[e.AnyEvent]:
    """The events ``command`` causes on ``state`` at ``now``, or a DomainError. What the
    decision creates (payouts, refunds) takes its ids from ``ids``.

    An empty list means the command was already carried out (a retried payment).
    """
    if isinstance(command, c.PlaceOrder):
        if state is not None:
            raise OrderAlreadyExists("the order already exists")
        return lifecycle.place(command, now)
    if state is None:
        raise OrderNotFound("no such order")
    return name_money_out(state, HANDLERS[type(command)](state, command, now), ids)


def name_money_out(state: OrderState, events: list[e.AnyEvent], ids: NewIds) -> list[e.AnyEvent]:
    """The decided events, with the payouts each release creates and the split of each refund
    over the payments (as the order stands at that event, so a payment refunded in the same
    command is counted)."""
    if not any(isinstance(event, e.FundsReleased | e.RefundIssued) for event in events):
        return events
    named: list[e.AnyEvent] = []
    minted = 0
    for event in events:
        if isinstance(event, e.FundsReleased) and event.payouts == ():
            payouts = []
            for party_id, amount in money_out.payouts_of(state, event):
                minted += 1
                payouts.append(
                    e.NewPayout(id=ids.nth(PAYOUT_PREFIX, minted), party_id=party_id, amount=amount)
                )
            event = event.model_copy(update={"payouts": tuple(payouts)})
        elif isinstance(event, e.RefundIssued) and event.refunds == ():
            refunds = []
            for provider_ref, amount in money_out.allocation(state, event.amount):
                minted += 1
                refunds.append(
                    e.NewRefund(
                        id=ids.nth(REFUND_PREFIX, minted),
                        payment_provider_ref=provider_ref,
                        amount=amount,
                    )
                )
            event = event.model_copy(update={"refunds": tuple(refunds)})
        named.append(event)
        state = evolve(state, event)
    return named
