"""The order aggregate: ``decide`` judges commands, ``evolve`` folds events into state."""

from escrow_core.domain.order.actions import allowed_actions
from escrow_core.domain.order.decide import decide
from escrow_core.domain.order.evolve import evolve, fold
from escrow_core.domain.order.money_out import NewIds
from escrow_core.domain.order.state import (
    TERMINAL,
    Amounts,
    Dispute,
    DisputeStatus,
    OrderState,
    Payout,
    PayoutStatus,
    Refund,
    RefundStatus,
    Shipment,
    Status,
)
from escrow_core.domain.order.timers import (
    Deadline,
    deadlines,
    due_timer_commands,
    next_deadline_at,
    next_timer_at,
)

__all__ = [
    "TERMINAL",
    "Amounts",
    "Deadline",
    "Dispute",
    "DisputeStatus",
    "NewIds",
    "OrderState",
    "Payout",
    "PayoutStatus",
    "Refund",
    "RefundStatus",
    "Shipment",
    "Status",
    "allowed_actions",
    "deadlines",
    "decide",
    "due_timer_commands",
    "evolve",
    "fold",
    "next_deadline_at",
    "next_timer_at",
]
