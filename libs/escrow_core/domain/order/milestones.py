"""Milestone release (DESIGN 7.2): the buyer (or its agent) releases part of what is held to
the supplier before receipt, with the fees of any release; the status does not change and
confirmation releases the rest."""

from datetime import datetime

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import InvalidValue, ReleaseExceedsHeld
from escrow_core.domain.order.payments import release
from escrow_core.domain.order.rules import guard
from escrow_core.domain.order.state import OrderState


def release_milestone(
    state: OrderState, cmd: c.ReleaseMilestone, now: datetime
) -> list[e.AnyEvent]:
    guard(state, cmd)
    held = state.amounts.held
    if cmd.amount < 1:
        raise InvalidValue("a release must be positive", field="amount")
    if cmd.amount > held:
        raise ReleaseExceedsHeld(f"release {cmd.amount} exceeds the {held} held", field="amount")
    return [
        e.MilestoneReleased(at=now, amount=cmd.amount, note=cmd.note, by=cmd.actor.role),
        *release(state, cmd.amount, now),
    ]


# --- evolve ----------------------------------------------------------------------------------
def milestone_released(state: OrderState, event: e.MilestoneReleased) -> OrderState:
    return state  # the money moves with the funds.released that follows
