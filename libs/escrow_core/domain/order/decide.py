"""decide(state, command, now) -> events: pure, and the only place a command is judged."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from escrow_core.domain import commands as c
from escrow_core.domain.errors import OrderAlreadyExists, OrderNotFound
from escrow_core.domain.events import AnyEvent
from escrow_core.domain.order import dispute, lifecycle, payments, timers
from escrow_core.domain.order.state import OrderState

Handler = Callable[[OrderState, Any, datetime], list[AnyEvent]]

HANDLERS: dict[type[c.Command], Handler] = {
    c.AcceptOrder: lifecycle.accept,
    c.RecordPayment: payments.record_payment,
    c.ShipOrder: lifecycle.ship,
    c.ReportDelivery: lifecycle.deliver,
    c.ConfirmReceipt: lifecycle.confirm,
    c.ExtendDeadline: timers.extend,
    c.CancelOrder: lifecycle.cancel,
    c.PostMessage: lifecycle.post_message,
    c.OpenDispute: dispute.open_dispute,
    c.MakeOffer: dispute.make_offer,
    c.AcceptOffer: dispute.accept_offer,
    c.EscalateDispute: dispute.escalate,
    c.ResolveDispute: dispute.resolve,
    c.WithdrawDispute: dispute.withdraw,
    c.AutoCancelUnaccepted: lifecycle.auto_cancel_unaccepted,
    c.AutoCancelUnpaid: lifecycle.auto_cancel_unpaid,
    c.MarkShipmentOverdue: lifecycle.mark_shipment_overdue,
    c.AutoConfirmReceipt: lifecycle.auto_confirm,
    c.AutoCompleteUndelivered: lifecycle.auto_complete,
    c.AutoEscalateDispute: dispute.auto_escalate,
}


def decide(state: OrderState | None, command: c.Command, now: datetime) -> list[AnyEvent]:
    """The events ``command`` causes on ``state`` at ``now``, or a DomainError.

    An empty list means the command was already carried out (a retried payment).
    """
    if isinstance(command, c.PlaceOrder):
        if state is not None:
            raise OrderAlreadyExists("the order already exists")
        return lifecycle.place(command, now)
    if state is None:
        raise OrderNotFound("no such order")
    return HANDLERS[type(command)](state, command, now)
