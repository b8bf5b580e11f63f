"""Retention (DESIGN 7.2): a share of the total kept after confirmation, claimable for a while.

Confirmation keeps ``percent`` of the total (at most what is held) as ``amounts.retained`` and
releases the rest; the order is ``retained`` until ``retention_ends``. Until then the buyer may
claim once: a dispute of kind ``claim`` over the retained money only (``dispute.py`` runs it).
At the deadline with no claim open the timer releases what is retained.
"""

from datetime import datetime, timedelta

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import (
    ClaimAlreadyMade,
    ClaimExceedsRetained,
    ClaimWindowClosed,
    InvalidRetention,
    InvalidValue,
)
from escrow_core.domain.money import fee_for
from escrow_core.domain.order.payments import release
from escrow_core.domain.order.rules import check_role, check_status
from escrow_core.domain.order.state import OrderState, Status
from escrow_core.domain.order.timers import fired
from escrow_core.domain.terms import DisputeKind, Retention

PERCENT_MIN, PERCENT_MAX = 1, 30
DAYS_MIN, DAYS_MAX = 1, 90


def check_retention(retention: Retention | None) -> None:
    """Refuse terms whose retention is out of bounds (none at all is fine)."""
    if retention is None:
        return
    if not PERCENT_MIN <= retention.percent <= PERCENT_MAX:
        raise InvalidRetention(
            f"retention.percent must be {PERCENT_MIN}-{PERCENT_MAX}", field="retention.percent"
        )
    if not DAYS_MIN <= retention.days <= DAYS_MAX:
        raise InvalidRetention(
            f"retention.days must be {DAYS_MIN}-{DAYS_MAX}", field="retention.days"
        )


def to_retain(state: OrderState) -> int:
    """What confirmation keeps: the retention's share of the total, half-even, at most what
    is held (a milestone may have released the rest already); 0 without a retention."""
    retention = state.terms.retention
    if retention is None:
        return 0
    return min(fee_for(state.terms.total, retention.percent * 100), state.amounts.held)


def confirmed(state: OrderState, now: datetime, *, auto: bool = False) -> list[e.AnyEvent]:
    """Receipt confirmed (by the buyer or a timer): all is released but the retention, which
    stays held until its deadline. With nothing to retain the order completes as in v1."""
    held, retained = state.amounts.held, to_retain(state)
    events: list[e.AnyEvent] = [
        e.ReceiptConfirmed(at=now, auto=auto),
        *release(state, held - retained, now),
    ]
    if retained and state.terms.retention is not None:
        ends = now + timedelta(days=state.terms.retention.days)
        events.append(e.FundsRetained(at=now, amount=retained, retention_ends=ends))
    return events


def claim(state: OrderState, cmd: c.MakeClaim, now: datetime) -> list[e.AnyEvent]:
    check_role(state, cmd)
    if state.dispute is not None and state.dispute.kind is DisputeKind.CLAIM:
        raise ClaimAlreadyMade("the order has had its claim")
    ends = state.retention_ends_at
    # Past the deadline, or the window already closed by its timer (the status has moved on).
    if ends is not None and (now >= ends or state.status is not Status.RETAINED):
        raise ClaimWindowClosed(f"the retention window closed at {ends.isoformat()}")
    check_status(state, cmd)
    if cmd.requested_refund < 0:
        raise InvalidValue("a refund cannot be negative", field="requested_refund")
    if cmd.requested_refund > state.amounts.retained:
        raise ClaimExceedsRetained(
            f"requested_refund {cmd.requested_refund} exceeds the {state.amounts.retained} "
            "retained",
            field="requested_refund",
        )
    return [
        e.DisputeOpened(
            at=now,
            kind=DisputeKind.CLAIM,
            reason=cmd.reason,
            description=cmd.description,
            requested_refund=cmd.requested_refund,
            evidence=cmd.evidence,
        )
    ]


# The window closed with no claim open: what is retained goes to the supplier.
end_retention = fired(
    lambda state, now: [e.RetentionEnded(at=now), *release(state, state.amounts.held, now)]
)


# --- evolve ----------------------------------------------------------------------------------
def funds_retained(state: OrderState, event: e.FundsRetained) -> OrderState:
    amounts = state.amounts.model_copy(update={"retained": event.amount})
    return state.moved_to(Status.RETAINED, amounts=amounts, retention_ends_at=event.retention_ends)


def retention_ended(state: OrderState, event: e.RetentionEnded) -> OrderState:
    amounts = state.amounts.model_copy(update={"retained": 0})
    return state.moved_to(Status.COMPLETED, amounts=amounts)
