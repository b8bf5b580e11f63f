"""Timers as data: which deadlines an order has now, which are due, and extending them."""

from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import (
    DeadlineNotReached,
    ExtensionAlreadyUsed,
    ExtensionLimitExceeded,
    InvalidState,
    InvalidValue,
    NotPermitted,
)
from escrow_core.domain.order import schedule
from escrow_core.domain.order.rules import guard
from escrow_core.domain.order.state import BEFORE_SHIPMENT, DisputeStatus, OrderState, Status
from escrow_core.domain.policy import (
    INSPECTION_EXTENSION_MAX_DAYS,
    INSPECTION_EXTENSION_MAX_TOTAL_DAYS,
    SHIP_BY_EXTENSION_MAX_TOTAL_DAYS,
)
from escrow_core.domain.roles import Role, Side
from escrow_core.domain.terms import DeadlineKind, ExtendableDeadline

K = DeadlineKind


class Deadline(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: DeadlineKind
    at: datetime


# Which command the worker fires when a deadline passes. escalation_allowed_at only informs.
TIMER_COMMANDS: dict[DeadlineKind, Callable[[], c.TimerCommand]] = {
    K.ACCEPT_BY: c.AutoCancelUnaccepted,
    K.PAY_BY: c.AutoCancelUnpaid,
    K.SHIP_BY: c.MarkShipmentOverdue,
    K.INSPECTION_ENDS: c.AutoConfirmReceipt,
    K.AUTO_COMPLETE_AT: c.AutoCompleteUndelivered,
    K.AUTO_ESCALATE_AT: c.AutoEscalateDispute,
    K.TRANCHE_DUE: c.MarkPaymentOverdue,
    K.UNPAID_CANCEL_AT: c.AutoCancelOverdue,
    K.RETENTION_ENDS: c.EndRetention,
}


def deadlines(state: OrderState) -> list[Deadline]:
    """The deadlines running now, soonest first."""
    policy = state.terms.policy
    found: list[Deadline] = []
    if state.status is Status.PLACED:
        found.append(Deadline(kind=K.ACCEPT_BY, at=state.placed_at + _days(policy.accept_days)))
    if (
        state.status in (Status.ACCEPTED, Status.PARTIALLY_PAID)
        and state.accepted_at is not None
        and state.funded < state.terms.payment_schedule[0].amount
    ):
        found.append(Deadline(kind=K.PAY_BY, at=state.accepted_at + _days(policy.pay_days)))
    if state.status is Status.HELD and not state.shipment_overdue:
        found.append(Deadline(kind=K.SHIP_BY, at=state.ship_by_at))
    if state.status is Status.DELIVERED and state.inspection_ends_at is not None:
        found.append(Deadline(kind=K.INSPECTION_ENDS, at=state.inspection_ends_at))
    if state.status is Status.SHIPPED and state.auto_complete_at is not None:
        found.append(Deadline(kind=K.AUTO_COMPLETE_AT, at=state.auto_complete_at))
    dispute = state.dispute
    if state.status is Status.DISPUTED and dispute and dispute.status is DisputeStatus.OPEN:
        opened = dispute.opened_at
        found.append(
            Deadline(kind=K.ESCALATION_ALLOWED_AT, at=opened + _days(policy.negotiation_days))
        )
        found.append(
            Deadline(kind=K.AUTO_ESCALATE_AT, at=opened + _days(policy.auto_escalate_days))
        )
    # every tranche due (DESIGN 7.2)
    due = schedule.next_due(state)
    if due is not None:
        found.append(Deadline(kind=K.TRANCHE_DUE, at=due[1]))
    cancel_at = schedule.unpaid_cancel_at(state)
    if cancel_at is not None:
        found.append(Deadline(kind=K.UNPAID_CANCEL_AT, at=cancel_at))
    if state.status is Status.RETAINED and state.retention_ends_at is not None:
        found.append(Deadline(kind=K.RETENTION_ENDS, at=state.retention_ends_at))
    return sorted(found, key=lambda deadline: deadline.at)


def next_deadline_at(state: OrderState) -> datetime | None:
    return min((d.at for d in deadlines(state)), default=None)


def next_timer_at(state: OrderState) -> datetime | None:
    """When the worker must next look at this order (a deadline that fires a command)."""
    return min((d.at for d in deadlines(state) if d.kind in TIMER_COMMANDS), default=None)


def due_timer_commands(state: OrderState, now: datetime) -> list[c.TimerCommand]:
    """The timer commands the worker should fire now."""
    return [
        TIMER_COMMANDS[d.kind]()
        for d in deadlines(state)
        if d.kind in TIMER_COMMANDS and d.at <= now
    ]


def require_due(state: OrderState, kind: DeadlineKind, now: datetime) -> None:
    """Refuse a timer command whose deadline is not running or has not passed."""
    running = next((d for d in deadlines(state) if d.kind is kind), None)
    if running is None:
        raise InvalidState(f"no {kind.value} deadline is running")
    if now < running.at:
        raise DeadlineNotReached(f"{kind.value} is not until {running.at.isoformat()}")


TimerOutcome = Callable[[OrderState, datetime], list[e.AnyEvent]]
TimerHandler = Callable[[OrderState, c.TimerCommand, datetime], list[e.AnyEvent]]


def fired(outcome: TimerOutcome) -> TimerHandler:
    """The handler of a timer's command: the system acts, only once its deadline is due."""

    def handle(state: OrderState, cmd: c.TimerCommand, now: datetime) -> list[e.AnyEvent]:
        guard(state, cmd)
        require_due(state, DeadlineKind(cmd.kind), now)
        return outcome(state, now)

    return handle


def escalation_allowed_at(state: OrderState) -> datetime:
    return state.disputed().opened_at + _days(state.terms.policy.negotiation_days)


def extend(state: OrderState, cmd: c.ExtendDeadline, now: datetime) -> list[e.AnyEvent]:
    guard(state, cmd)
    if cmd.days < 1:
        raise InvalidValue("days must be at least 1", field="days")
    if cmd.deadline is ExtendableDeadline.SHIP_BY:
        running = _ship_by_to_extend(state, cmd)
    else:
        running = _inspection_to_extend(state, cmd)
    return [
        e.DeadlineExtended(
            at=now,
            deadline=cmd.deadline,
            by=cmd.actor.role,
            days=cmd.days,
            new_at=running + _days(cmd.days),
        )
    ]


def _ship_by_to_extend(state: OrderState, cmd: c.ExtendDeadline) -> datetime:
    """ship_by, if the buyer may extend it by ``cmd.days`` now."""
    if cmd.actor.role is not Role.BUYER:
        raise NotPermitted("only the buyer extends ship_by")
    if state.status not in BEFORE_SHIPMENT:
        raise InvalidState("ship_by can be extended only before shipment")
    used = state.ship_by_extended_days
    if used + cmd.days > SHIP_BY_EXTENSION_MAX_TOTAL_DAYS:
        limit = f"ship_by may be extended by {SHIP_BY_EXTENSION_MAX_TOTAL_DAYS} days in all"
        raise ExtensionLimitExceeded(f"{limit} ({used} used)", field="days")
    return state.ship_by_at


def _inspection_to_extend(state: OrderState, cmd: c.ExtendDeadline) -> datetime:
    """The end of the inspection window, if this side may extend it by ``cmd.days`` now."""
    side = cmd.actor.side
    if side is None:  # guard admits buyer and supplier only
        raise NotPermitted(f"a {cmd.actor.role.value} has no inspection window to extend")
    if state.status is not Status.DELIVERED or state.inspection_ends_at is None:
        raise InvalidState("the inspection window runs only once the order is delivered")
    if side in state.inspection_extended_by:
        raise ExtensionAlreadyUsed(f"the {side.value} has already extended the inspection")
    if cmd.days > INSPECTION_EXTENSION_MAX_DAYS or (
        state.inspection_extended_days + cmd.days > INSPECTION_EXTENSION_MAX_TOTAL_DAYS
    ):
        raise ExtensionLimitExceeded(
            f"an inspection extension is 1-{INSPECTION_EXTENSION_MAX_DAYS} days, "
            f"{INSPECTION_EXTENSION_MAX_TOTAL_DAYS} in all",
            field="days",
        )
    return state.inspection_ends_at


def deadline_extended(state: OrderState, event: e.DeadlineExtended) -> OrderState:
    days = event.days or 0
    if event.deadline is ExtendableDeadline.SHIP_BY:
        extended = state.ship_by_extended_days + (days if event.by is Role.BUYER else 0)
        return state.model_copy(
            update={
                "ship_by_at": event.new_at,
                "ship_by_extended_days": extended,
                "shipment_overdue": False,
            }
        )
    side = _side(event.by)
    by = (*state.inspection_extended_by, side) if side else state.inspection_extended_by
    return state.model_copy(
        update={
            "inspection_ends_at": event.new_at,
            "inspection_extended_days": state.inspection_extended_days + days,
            "inspection_extended_by": by,
        }
    )


def _side(role: Role) -> Side | None:
    return Side(role.value) if role in (Role.BUYER, Role.SUPPLIER) else None


def _days(n: int) -> timedelta:
    return timedelta(days=n)
