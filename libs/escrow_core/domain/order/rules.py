"""The transition table: which roles may issue a command, and in which statuses it applies.

Every decide function starts with ``guard``: the role is checked first (a supplier can never
confirm receipt: 403), then the status (a buyer cannot confirm before shipment: 409).
"""

from escrow_core.domain import commands as c
from escrow_core.domain.errors import InvalidState, NotPermitted
from escrow_core.domain.order.state import BEFORE_SHIPMENT, OrderState, Status
from escrow_core.domain.roles import Actor, Role

S = Status
R = Role
ANY_STATUS = frozenset(Status)

TRANSITIONS: dict[type[c.Command], tuple[frozenset[Role], frozenset[Status]]] = {
    c.AcceptOrder: (frozenset({R.SUPPLIER}), frozenset({S.PLACED})),
    c.RecordPayment: (frozenset({R.PAYMENTS}), frozenset({S.ACCEPTED, S.PARTIALLY_PAID})),
    c.ShipOrder: (frozenset({R.SUPPLIER}), frozenset({S.HELD})),
    c.ReportDelivery: (frozenset({R.SUPPLIER, R.PAYMENTS, R.ADMIN}), frozenset({S.SHIPPED})),
    c.ConfirmReceipt: (frozenset({R.BUYER}), frozenset({S.SHIPPED, S.DELIVERED})),
    c.ExtendDeadline: (frozenset({R.BUYER, R.SUPPLIER}), BEFORE_SHIPMENT | {S.DELIVERED}),
    c.CancelOrder: (frozenset({R.BUYER, R.SUPPLIER, R.ADMIN}), BEFORE_SHIPMENT),
    c.PostMessage: (frozenset({R.BUYER, R.SUPPLIER, R.MEDIATOR}), ANY_STATUS),
    # The buyer's own bookkeeping: it goes on after the order has ended.
    c.UpdateMetadata: (frozenset({R.BUYER}), ANY_STATUS),
    c.OpenDispute: (frozenset({R.BUYER}), frozenset({S.SHIPPED, S.DELIVERED})),
    c.MakeOffer: (frozenset({R.BUYER, R.SUPPLIER}), frozenset({S.DISPUTED})),
    c.AcceptOffer: (frozenset({R.BUYER, R.SUPPLIER}), frozenset({S.DISPUTED})),
    c.EscalateDispute: (frozenset({R.BUYER, R.SUPPLIER}), frozenset({S.DISPUTED})),
    c.ResolveDispute: (frozenset({R.MEDIATOR, R.ADMIN}), frozenset({S.DISPUTED})),
    c.WithdrawDispute: (frozenset({R.BUYER}), frozenset({S.DISPUTED})),
    c.AutoCancelUnaccepted: (frozenset({R.SYSTEM}), frozenset({S.PLACED})),
    c.AutoCancelUnpaid: (frozenset({R.SYSTEM}), frozenset({S.ACCEPTED, S.PARTIALLY_PAID})),
    c.MarkShipmentOverdue: (frozenset({R.SYSTEM}), frozenset({S.HELD})),
    c.AutoConfirmReceipt: (frozenset({R.SYSTEM}), frozenset({S.DELIVERED})),
    c.AutoCompleteUndelivered: (frozenset({R.SYSTEM}), frozenset({S.SHIPPED})),
    c.AutoEscalateDispute: (frozenset({R.SYSTEM}), frozenset({S.DISPUTED})),
    # milestones and every tranche due (DESIGN 7.2)
    c.ReleaseMilestone: (
        frozenset({R.BUYER}),
        frozenset({S.PARTIALLY_PAID, S.HELD, S.SHIPPED, S.DELIVERED}),
    ),
    c.MarkPaymentOverdue: (frozenset({R.SYSTEM}), frozenset({S.ACCEPTED, S.PARTIALLY_PAID})),
    c.AutoCancelOverdue: (frozenset({R.SYSTEM}), frozenset({S.ACCEPTED, S.PARTIALLY_PAID})),
    # Retention: a claim while the window runs; its timer releases the rest (DESIGN 7.2).
    c.MakeClaim: (frozenset({R.BUYER}), frozenset({S.RETAINED})),
    c.EndRetention: (frozenset({R.SYSTEM}), frozenset({S.RETAINED})),
    # Money out goes on after the order has ended: these are not order actions.
    c.ReportPayoutPaid: (frozenset({R.PAYMENTS}), ANY_STATUS),
    c.ReportPayoutFailed: (frozenset({R.PAYMENTS}), ANY_STATUS),
    c.ReportPayoutReturned: (frozenset({R.PAYMENTS}), ANY_STATUS),
    c.RetryPayout: (frozenset({R.PAYMENTS, R.ADMIN}), ANY_STATUS),
    c.ReportRefundSucceeded: (frozenset({R.PAYMENTS}), ANY_STATUS),
    c.ReportRefundFailed: (frozenset({R.PAYMENTS}), ANY_STATUS),
    c.RetryRefund: (frozenset({R.PAYMENTS, R.ADMIN}), ANY_STATUS),
}


def check_role(state: OrderState, command: c.Command) -> None:
    """Refuse an actor whose role may never issue this command on this order."""
    roles, _ = TRANSITIONS[type(command)]
    actor = command.actor
    if actor.role not in roles or not _is_own_order(state, actor):
        raise NotPermitted(f"{actor.role.value} may not {_name(command)} this order")


def check_status(state: OrderState, command: c.Command) -> None:
    """Refuse a command the order's current status does not take."""
    _, statuses = TRANSITIONS[type(command)]
    if state.status not in statuses:
        raise InvalidState(f"cannot {_name(command)} an order that is {state.status.value}")


def guard(state: OrderState, command: c.Command) -> None:
    check_role(state, command)
    check_status(state, command)


def _is_own_order(state: OrderState, actor: Actor) -> bool:
    if actor.role is Role.BUYER:
        return actor.party_id == state.terms.buyer_id
    if actor.role is Role.SUPPLIER:
        return actor.party_id == state.terms.supplier_id
    return True


def _name(command: c.Command) -> str:
    return type(command).__name__
