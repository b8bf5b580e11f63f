"""The timers of an unpaid tranche: it is marked overdue at its due time, and the order is
cancelled ``pay_days`` later if it is still not paid up (held money refunded, money already
released stays released)."""

from datetime import datetime

from escrow_core.domain import events as e
from escrow_core.domain.errors import InvalidState
from escrow_core.domain.order.payments import refund
from escrow_core.domain.order.schedule import next_due
from escrow_core.domain.order.state import OrderState
from escrow_core.domain.order.timers import fired
from escrow_core.domain.roles import Role
from escrow_core.domain.terms import RefundReason


def _overdue(state: OrderState, now: datetime) -> list[e.AnyEvent]:
    due = next_due(state)
    if due is None:  # require_due found the deadline running: never here
        raise InvalidState("no tranche is due")
    position, due_at = due
    return [e.PaymentOverdue(at=now, tranche=position, due_at=due_at)]


def _cancelled_unpaid(state: OrderState, now: datetime) -> list[e.AnyEvent]:
    return [
        e.OrderCancelled(
            at=now, reason=f"tranche {state.overdue_tranche} not paid in time", by=Role.SYSTEM
        ),
        *refund(state.amounts.held, RefundReason.CANCELLATION, now),
    ]


mark_payment_overdue = fired(_overdue)
auto_cancel_overdue = fired(_cancelled_unpaid)
