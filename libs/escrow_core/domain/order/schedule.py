"""Every tranche is due (DESIGN 7.2): when each tranche after the first falls due, which one
is overdue, and the ``due_by`` rules when an order is placed.

The first tranche keeps ``pay_by``. A later one is due at the end (UTC) of its ``due_by``, by
default the terms' ``ship_by`` as placed; it is overdue when the money paid toward the total
is less than the schedule's running total through it at that moment. Checks start at
acceptance: a due time already past then is overdue at once.
"""

from datetime import datetime, timedelta

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import InvalidDueBy
from escrow_core.domain.order.state import OrderState, Status
from escrow_core.domain.terms import Terms, end_of_day

# Where money is still owed toward the total.
OWING = frozenset({Status.ACCEPTED, Status.PARTIALLY_PAID})


def check_due_by(cmd: c.PlaceOrder, now: datetime) -> None:
    """``due_by`` only on tranches after the first, after the placement date and at most
    ``ship_by``."""
    for position, tranche in enumerate(cmd.payment_schedule or (), start=1):
        if tranche.due_by is None:
            continue
        if position == 1:
            raise InvalidDueBy(
                "the first tranche is due within the pay days: it takes no due_by",
                field="payment_schedule",
            )
        if not now.date() < tranche.due_by <= cmd.ship_by:
            raise InvalidDueBy(
                f"tranche {position}: due_by must be after today and at most ship_by",
                field="payment_schedule",
            )


def due_times(terms: Terms) -> list[tuple[int, int, datetime]]:
    """(1-based position, running total through it, due time) of each tranche after the first."""
    found, running = [], 0
    for position, tranche in enumerate(terms.payment_schedule, start=1):
        running += tranche.amount
        if position > 1:
            found.append((position, running, end_of_day(tranche.due_by or terms.ship_by)))
    return found


def next_due(state: OrderState) -> tuple[int, datetime] | None:
    """The unpaid tranche (after the first) that falls due soonest, while the order is accepted
    and owes money and none is overdue yet: its position and due time."""
    if state.status not in OWING or state.accepted_at is None or state.payment_overdue:
        return None
    unpaid = [(at, pos) for pos, running, at in due_times(state.terms) if state.funded < running]
    if not unpaid:
        return None
    at, position = min(unpaid)
    return position, at


def unpaid_cancel_at(state: OrderState) -> datetime | None:
    """When an order with an overdue tranche is cancelled if still unpaid."""
    if state.status not in OWING or state.overdue_due_at is None:
        return None
    return state.overdue_due_at + timedelta(days=state.terms.policy.pay_days)


# --- evolve ----------------------------------------------------------------------------------
def payment_overdue(state: OrderState, event: e.PaymentOverdue) -> OrderState:
    return state.model_copy(
        update={"overdue_tranche": event.tranche, "overdue_due_at": event.due_at}
    )


def overdue_paid_up(state: OrderState, event: e.FundsHeld) -> OrderState:
    """Paying up to the overdue tranche clears the overdue state (and with it the right to
    cancel and the auto-cancel); a later tranche is then judged on its own due time."""
    if state.overdue_tranche is None:
        return state
    through = sum(t.amount for t in state.terms.payment_schedule[: state.overdue_tranche])
    if state.funded < through:
        return state
    return state.model_copy(update={"overdue_tranche": None, "overdue_due_at": None})
