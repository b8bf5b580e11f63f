"""The dispute: opening offer, negotiation, escalation, a mediator's split, withdrawal."""

from datetime import datetime, timedelta

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import (
    CannotAcceptOwnOffer,
    DisputeAlreadyEscalated,
    DisputeCannotReopen,
    DisputeNotEscalated,
    DisputeNotOpen,
    InvalidValue,
    NegotiationPeriodActive,
    NoOpenOffer,
    NotPermitted,
    RefundExceedsHeld,
)
from escrow_core.domain.order.payments import refund, release
from escrow_core.domain.order.rules import check_role, check_status
from escrow_core.domain.order.state import (
    Dispute,
    DisputeStatus,
    Offer,
    OrderState,
    Resolution,
    Status,
)
from escrow_core.domain.order.timers import escalation_allowed_at, fired
from escrow_core.domain.roles import Role, Side
from escrow_core.domain.terms import DisputeKind, RefundReason


def open_dispute(state: OrderState, cmd: c.OpenDispute, now: datetime) -> list[e.AnyEvent]:
    check_role(state, cmd)
    if state.dispute is not None and state.dispute.status is DisputeStatus.WITHDRAWN:
        raise DisputeCannotReopen("a withdrawn dispute cannot be reopened")
    check_status(state, cmd)
    _check_refund(state, cmd.requested_refund, "requested_refund")
    return [
        e.DisputeOpened(
            at=now,
            kind=DisputeKind.DISPUTE,
            reason=cmd.reason,
            description=cmd.description,
            requested_refund=cmd.requested_refund,
            evidence=cmd.evidence,
        )
    ]


def make_offer(state: OrderState, cmd: c.MakeOffer, now: datetime) -> list[e.AnyEvent]:
    _negotiating(state, cmd)
    _check_refund(state, cmd.refund_amount, "refund_amount")
    side = _side_of(cmd)
    return [e.DisputeOfferMade(at=now, by=side, refund_amount=cmd.refund_amount, note=cmd.note)]


def accept_offer(state: OrderState, cmd: c.AcceptOffer, now: datetime) -> list[e.AnyEvent]:
    dispute = _negotiating(state, cmd)
    offer = dispute.open_offer
    if offer is None:
        raise NoOpenOffer("there is no open offer to accept")
    side = _side_of(cmd)
    if offer.by is side:
        raise CannotAcceptOwnOffer("only the other side can accept an offer")
    note = f"{side.value} accepted the {offer.by.value}'s offer"
    return [
        e.DisputeOfferAccepted(at=now, by=side, refund_amount=offer.refund_amount),
        *_settle(state, offer.refund_amount, note, Role.SYSTEM, now),
    ]


def escalate(state: OrderState, cmd: c.EscalateDispute, now: datetime) -> list[e.AnyEvent]:
    _negotiating(state, cmd)
    allowed_at = escalation_allowed_at(state)
    if now < allowed_at:
        raise NegotiationPeriodActive(f"either side may escalate from {allowed_at.isoformat()}")
    return [e.DisputeEscalated(at=now, by=cmd.actor.role)]


auto_escalate = fired(lambda state, now: [e.DisputeEscalated(at=now, by=Role.SYSTEM)])


def resolve(state: OrderState, cmd: c.ResolveDispute, now: datetime) -> list[e.AnyEvent]:
    dispute = _active(state, cmd)
    if dispute.status is not DisputeStatus.ESCALATED:
        raise DisputeNotEscalated("a mediator resolves a dispute only once it is escalated")
    _check_refund(state, cmd.refund_amount, "refund_amount")
    return _settle(state, cmd.refund_amount, cmd.note, cmd.actor.role, now)


def withdraw(state: OrderState, cmd: c.WithdrawDispute, now: datetime) -> list[e.AnyEvent]:
    _active(state, cmd)
    return [e.DisputeWithdrawn(at=now)]


def _settle(
    state: OrderState, refund_amount: int, note: str, by: Role, now: datetime
) -> list[e.AnyEvent]:
    release_amount = state.amounts.held - refund_amount
    return [
        e.DisputeResolved(
            at=now, refund_amount=refund_amount, release_amount=release_amount, note=note, by=by
        ),
        *refund(refund_amount, RefundReason.DISPUTE, now),
        *release(state, release_amount, now),
    ]


def _active(state: OrderState, cmd: c.Command) -> Dispute:
    check_role(state, cmd)
    if state.dispute is None or not state.dispute.active:
        raise DisputeNotOpen("the order has no open dispute")
    check_status(state, cmd)
    return state.dispute


def _negotiating(state: OrderState, cmd: c.Command) -> Dispute:
    dispute = _active(state, cmd)
    if dispute.status is DisputeStatus.ESCALATED:
        raise DisputeAlreadyEscalated("the dispute is escalated: a mediator decides now")
    return dispute


def _check_refund(state: OrderState, amount: int, field: str) -> None:
    if amount < 0:
        raise InvalidValue("a refund cannot be negative", field=field)
    if amount > state.amounts.held:
        raise RefundExceedsHeld(
            f"refund {amount} exceeds the {state.amounts.held} held", field=field
        )


def _side_of(cmd: c.Command) -> Side:
    side = cmd.actor.side
    if side is None:  # the transition table admits buyer and supplier only
        raise NotPermitted(f"a {cmd.actor.role.value} takes no side in a dispute")
    return side


# --- evolve ----------------------------------------------------------------------------------
def dispute_opened(state: OrderState, event: e.DisputeOpened) -> OrderState:
    running = state.inspection_ends_at or state.auto_complete_at
    remaining = max(running - event.at, timedelta(0)) if running else None
    dispute = Dispute(
        kind=event.kind,
        status=DisputeStatus.OPEN,
        reason=event.reason,
        description=event.description,
        requested_refund=event.requested_refund,
        evidence=event.evidence,
        open_offer=Offer(by=Side.BUYER, refund_amount=event.requested_refund),
        opened_at=event.at,
        status_before=state.status,
        paused_remaining=remaining,
    )
    return state.moved_to(Status.DISPUTED, dispute=dispute)


def offer_made(state: OrderState, event: e.DisputeOfferMade) -> OrderState:
    offer = Offer(by=event.by, refund_amount=event.refund_amount)
    return _with_dispute(state, open_offer=offer)


def offer_accepted(state: OrderState, event: e.DisputeOfferAccepted) -> OrderState:
    return state


def escalated(state: OrderState, event: e.DisputeEscalated) -> OrderState:
    return _with_dispute(state, status=DisputeStatus.ESCALATED, escalated_at=event.at)


def resolved(state: OrderState, event: e.DisputeResolved) -> OrderState:
    resolution = Resolution(
        refund_amount=event.refund_amount,
        release_amount=event.release_amount,
        note=event.note,
        by=event.by,
        resolved_at=event.at,
    )
    # Refunded only if nothing was ever released (a claim follows a release at confirmation).
    if event.refund_amount == 0:
        status = Status.COMPLETED
    elif event.release_amount == 0 and state.amounts.released == 0:
        status = Status.REFUNDED  # only if nothing was ever released (a milestone was)
    else:
        status = Status.SETTLED
    state = _with_dispute(
        state, status=DisputeStatus.RESOLVED, resolution=resolution, open_offer=None
    )
    # A claim settles all that was retained (its refund and release follow this event).
    amounts = state.amounts.model_copy(update={"retained": 0})
    return state.model_copy(update={"status": status, "amounts": amounts})


def withdrawn(state: OrderState, event: e.DisputeWithdrawn) -> OrderState:
    dispute = state.disputed()
    resumed = event.at + dispute.paused_remaining if dispute.paused_remaining is not None else None
    timer = (
        "inspection_ends_at" if dispute.status_before is Status.DELIVERED else "auto_complete_at"
    )
    state = _with_dispute(state, status=DisputeStatus.WITHDRAWN, open_offer=None)
    return state.model_copy(update={"status": dispute.status_before, timer: resumed})


def _with_dispute(state: OrderState, **changes: object) -> OrderState:
    return state.model_copy(update={"dispute": state.disputed().model_copy(update=changes)})
