"""Disputes: opening offer, negotiation, escalation, a mediator's split, withdrawal (DESIGN 3)."""

from datetime import timedelta

import pytest

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import (
    CannotAcceptOwnOffer,
    DeadlineNotReached,
    DisputeAlreadyEscalated,
    DisputeCannotReopen,
    DisputeNotEscalated,
    DisputeNotOpen,
    InvalidState,
    InvalidValue,
    NegotiationPeriodActive,
    NotPermitted,
    RefundExceedsHeld,
)
from escrow_core.domain.order import Amounts, DisputeStatus, Status, deadlines
from escrow_core.domain.order.state import Offer
from escrow_core.domain.roles import SYSTEM, Actor, Role, Side
from escrow_core.domain.terms import DeadlineKind, DisputeReason, RefundReason

from .scenario import (
    ADMIN,
    AUTO_ESCALATE_AT,
    BUYER,
    COMPLETED,
    DELIVERED,
    DISPUTE_OPENED_AT,
    DISPUTED,
    ESCALATED,
    ESCALATION_ALLOWED_AT,
    FEE_ON_TOTAL,
    HELD,
    MEDIATOR,
    OTHER_BUYER,
    PAYMENTS,
    SHIPPED,
    SHIPPED_AT,
    SUPPLIER,
    TOTAL,
    History,
    day,
    dispute_opened,
    escalated,
    funds_released,
    open_dispute,
    refund_issued,
    refused,
    state_of,
    when,
)

K = DeadlineKind


def offer(actor: Actor, refund: int) -> c.MakeOffer:
    return c.MakeOffer(actor=actor, refund_amount=refund, note="counter-offer")


def offered(by: Side, refund: int, at: int = 13) -> e.DisputeOfferMade:
    return e.DisputeOfferMade(at=day(at), by=by, refund_amount=refund, note="counter-offer")


def resolve(refund: int, actor: Actor = MEDIATOR) -> c.ResolveDispute:
    return c.ResolveDispute(actor=actor, refund_amount=refund, note="photos show leaks")


# --- opening ----------------------------------------------------------------------------------
@pytest.mark.parametrize("given", [SHIPPED, DELIVERED], ids=["shipped", "delivered"])
def test_the_buyer_opens_a_dispute_once_shipped_with_its_request_as_the_opening_offer(
    given: History,
) -> None:
    events = when(given, open_dispute(refund=50_000), day(12))

    assert events == [
        e.DisputeOpened(
            at=day(12),
            reason=DisputeReason.QUALITY,
            description="valves leak at 10 bar",
            requested_refund=50_000,
        )
    ]
    state = state_of([*given, *events])
    assert state.status is Status.DISPUTED
    assert state.dispute is not None
    assert state.dispute.status is DisputeStatus.OPEN
    assert state.dispute.open_offer == Offer(by=Side.BUYER, refund_amount=50_000)
    assert state.dispute.status_before is state_of(given).status


def test_while_a_dispute_is_open_the_orders_own_timers_stop() -> None:
    state = state_of(DISPUTED)
    assert state.inspection_ends_at is None
    assert [(d.kind, d.at) for d in deadlines(state)] == [
        (K.ESCALATION_ALLOWED_AT, DISPUTE_OPENED_AT + timedelta(days=3)),
        (K.AUTO_ESCALATE_AT, DISPUTE_OPENED_AT + timedelta(days=7)),
    ]
    refused(DISPUTED, c.AutoConfirmReceipt(), day(30), InvalidState)


@pytest.mark.parametrize("given", [HELD, DISPUTED, COMPLETED], ids=["held", "disputed", "done"])
def test_a_dispute_is_opened_only_in_shipped_or_delivered(given: History) -> None:
    assert refused(given, open_dispute(), day(14), InvalidState).code == "invalid_state"


@pytest.mark.parametrize("actor", [SUPPLIER, MEDIATOR, ADMIN, OTHER_BUYER])
def test_only_the_buyer_opens_a_dispute(actor: Actor) -> None:
    error = refused(DELIVERED, open_dispute(actor=actor), day(12), NotPermitted)
    assert error.code == "action_not_permitted"


def test_the_requested_refund_is_at_most_the_held_amount() -> None:
    assert when(DELIVERED, open_dispute(refund=TOTAL), day(12)) != []
    error = refused(DELIVERED, open_dispute(refund=TOTAL + 1), day(12), RefundExceedsHeld)
    assert (error.code, error.field) == ("refund_exceeds_held", "requested_refund")
    negative = refused(DELIVERED, open_dispute(refund=-1), day(12), InvalidValue)
    assert (negative.code, negative.field) == ("invalid_value", "requested_refund")


# --- negotiation ------------------------------------------------------------------------------
@pytest.mark.parametrize(("actor", "side"), [(SUPPLIER, Side.SUPPLIER), (BUYER, Side.BUYER)])
def test_either_side_makes_a_new_offer_which_becomes_the_open_offer(
    actor: Actor, side: Side
) -> None:
    events = when(DISPUTED, offer(actor, 20_000), day(13))

    assert events == [offered(side, 20_000)]
    state = state_of([*DISPUTED, *events])
    assert state.dispute is not None
    assert state.dispute.open_offer == Offer(by=side, refund_amount=20_000)


def test_an_offer_may_be_zero_but_not_negative_nor_beyond_the_held_amount() -> None:
    assert when(DISPUTED, offer(SUPPLIER, 0), day(13)) == [offered(Side.SUPPLIER, 0)]
    refused(DISPUTED, offer(SUPPLIER, -1), day(13), InvalidValue)
    error = refused(DISPUTED, offer(SUPPLIER, TOTAL + 1), day(13), RefundExceedsHeld)
    assert error.field == "refund_amount"


@pytest.mark.parametrize("actor", [MEDIATOR, ADMIN, PAYMENTS, SYSTEM, OTHER_BUYER])
def test_only_buyer_and_supplier_negotiate(actor: Actor) -> None:
    refused(DISPUTED, offer(actor, 1_000), day(13), NotPermitted)
    refused(DISPUTED, c.AcceptOffer(actor=actor), day(13), NotPermitted)


def test_the_supplier_accepts_the_buyers_opening_offer_and_the_dispute_settles() -> None:
    events = when(DISPUTED, c.AcceptOffer(actor=SUPPLIER), day(13))

    release = TOTAL - 50_000  # 75_000, and 2.5% of it is 1_875
    assert events == [
        e.DisputeOfferAccepted(at=day(13), by=Side.SUPPLIER, refund_amount=50_000),
        e.DisputeResolved(
            at=day(13),
            refund_amount=50_000,
            release_amount=release,
            note="supplier accepted the buyer's offer",
            by=Role.SYSTEM,
        ),
        refund_issued(50_000, RefundReason.DISPUTE, day(13)),
        funds_released(release, 1_875, day(13), first=2),
    ]
    state = state_of([*DISPUTED, *events])
    assert state.status is Status.SETTLED
    assert state.amounts == Amounts(
        paid=TOTAL, held=0, released=release, refunded=50_000, fees=1_875
    )


def test_the_buyer_accepts_the_suppliers_offer_of_nothing_and_the_order_completes() -> None:
    given = [*DISPUTED, offered(Side.SUPPLIER, 0)]

    events = when(given, c.AcceptOffer(actor=BUYER), day(14))

    assert events[0] == e.DisputeOfferAccepted(at=day(14), by=Side.BUYER, refund_amount=0)
    assert events[-1] == funds_released(TOTAL, FEE_ON_TOTAL, day(14))
    assert not any(isinstance(event, e.RefundIssued) for event in events)
    assert state_of([*given, *events]).status is Status.COMPLETED


def test_accepting_a_full_refund_refunds_everything() -> None:
    given = [*DISPUTED, offered(Side.SUPPLIER, TOTAL)]

    events = when(given, c.AcceptOffer(actor=BUYER), day(14))

    assert events[-1] == refund_issued(TOTAL, RefundReason.DISPUTE, day(14))
    assert not any(isinstance(event, e.FundsReleased) for event in events)
    state = state_of([*given, *events])
    assert state.status is Status.REFUNDED
    assert state.amounts == Amounts(paid=TOTAL, refunded=TOTAL)


@pytest.mark.parametrize(
    ("given", "actor"),
    [(DISPUTED, BUYER), ([*DISPUTED, offered(Side.SUPPLIER, 0)], SUPPLIER)],
    ids=["buyer_own_opening_offer", "supplier_own_offer"],
)
def test_a_side_cannot_accept_its_own_offer(given: History, actor: Actor) -> None:
    error = refused(given, c.AcceptOffer(actor=actor), day(14), CannotAcceptOwnOffer)
    assert error.code == "cannot_accept_own_offer"


# --- escalation -------------------------------------------------------------------------------
@pytest.mark.parametrize("actor", [BUYER, SUPPLIER])
def test_escalation_waits_for_the_negotiation_period(actor: Actor) -> None:
    just_before = ESCALATION_ALLOWED_AT - timedelta(seconds=1)
    error = refused(DISPUTED, c.EscalateDispute(actor=actor), just_before, NegotiationPeriodActive)
    assert error.code == "negotiation_period_active"

    events = when(DISPUTED, c.EscalateDispute(actor=actor), ESCALATION_ALLOWED_AT)

    assert events == [e.DisputeEscalated(at=ESCALATION_ALLOWED_AT, by=actor.role)]
    state = state_of([*DISPUTED, *events])
    assert state.dispute is not None
    assert state.dispute.status is DisputeStatus.ESCALATED
    assert state.dispute.escalated_at == ESCALATION_ALLOWED_AT
    assert state.status is Status.DISPUTED
    assert deadlines(state) == []


@pytest.mark.parametrize("actor", [MEDIATOR, ADMIN, SYSTEM])
def test_only_the_sides_escalate_by_command(actor: Actor) -> None:
    refused(DISPUTED, c.EscalateDispute(actor=actor), day(16), NotPermitted)


def test_the_timer_escalates_an_open_dispute_after_seven_days() -> None:
    just_before = AUTO_ESCALATE_AT - timedelta(seconds=1)
    error = refused(DISPUTED, c.AutoEscalateDispute(), just_before, DeadlineNotReached)
    assert error.code == "deadline_not_reached"
    assert when(DISPUTED, c.AutoEscalateDispute(), AUTO_ESCALATE_AT) == [
        e.DisputeEscalated(at=AUTO_ESCALATE_AT, by=Role.SYSTEM)
    ]
    refused(ESCALATED, c.AutoEscalateDispute(), day(30), InvalidState)


@pytest.mark.parametrize(
    "command",
    [
        c.EscalateDispute(actor=BUYER),
        c.MakeOffer(actor=SUPPLIER, refund_amount=10),
        c.AcceptOffer(actor=SUPPLIER),
    ],
    ids=["escalate", "offer", "accept_offer"],
)
def test_once_escalated_negotiation_is_over(command: c.Command) -> None:
    error = refused(ESCALATED, command, day(16), DisputeAlreadyEscalated)
    assert error.code == "dispute_already_escalated"


# --- resolution -------------------------------------------------------------------------------
def test_a_mediator_resolves_only_an_escalated_dispute() -> None:
    error = refused(DISPUTED, resolve(10_000), day(16), DisputeNotEscalated)
    assert error.code == "dispute_not_escalated"


@pytest.mark.parametrize("actor", [BUYER, SUPPLIER, PAYMENTS, SYSTEM])
def test_only_a_mediator_or_admin_resolves(actor: Actor) -> None:
    refused(ESCALATED, resolve(10_000, actor=actor), day(16), NotPermitted)


def test_a_refund_of_zero_releases_everything_and_completes_the_order() -> None:
    events = when(ESCALATED, resolve(0), day(16))

    assert events == [
        e.DisputeResolved(
            at=day(16),
            refund_amount=0,
            release_amount=TOTAL,
            note="photos show leaks",
            by=Role.MEDIATOR,
        ),
        funds_released(TOTAL, FEE_ON_TOTAL, day(16)),
    ]
    assert state_of([*ESCALATED, *events]).status is Status.COMPLETED


def test_a_refund_of_everything_refunds_the_order() -> None:
    events = when(ESCALATED, resolve(TOTAL, actor=ADMIN), day(16))

    assert events == [
        e.DisputeResolved(
            at=day(16),
            refund_amount=TOTAL,
            release_amount=0,
            note="photos show leaks",
            by=Role.ADMIN,
        ),
        refund_issued(TOTAL, RefundReason.DISPUTE, day(16)),
    ]
    state = state_of([*ESCALATED, *events])
    assert state.status is Status.REFUNDED
    assert state.amounts == Amounts(paid=TOTAL, refunded=TOTAL)


def test_a_refund_in_between_settles_with_the_rest_released_less_the_fee() -> None:
    events = when(ESCALATED, resolve(25_000), day(16))

    # 100_000 released; 2.5% of it is 2_500
    assert events == [
        e.DisputeResolved(
            at=day(16),
            refund_amount=25_000,
            release_amount=100_000,
            note="photos show leaks",
            by=Role.MEDIATOR,
        ),
        refund_issued(25_000, RefundReason.DISPUTE, day(16)),
        funds_released(100_000, 2_500, day(16), first=2),
    ]
    state = state_of([*ESCALATED, *events])
    assert state.status is Status.SETTLED
    assert state.amounts == Amounts(
        paid=TOTAL, released=100_000, refunded=25_000, fees=2_500, held=0
    )
    assert state.dispute is not None
    assert state.dispute.status is DisputeStatus.RESOLVED
    assert state.dispute.resolution is not None
    assert state.dispute.resolution.release_amount == 100_000


def test_a_resolution_refunds_0_to_the_held_amount() -> None:
    error = refused(ESCALATED, resolve(TOTAL + 1), day(16), RefundExceedsHeld)
    assert (error.code, error.field) == ("refund_exceeds_held", "refund_amount")
    refused(ESCALATED, resolve(-1), day(16), InvalidValue)


def test_a_dispute_is_resolved_once() -> None:
    given = [*ESCALATED, *when(ESCALATED, resolve(0), day(16))]
    assert refused(given, resolve(0), day(17), DisputeNotOpen).code == "dispute_not_open"


# --- withdrawal -------------------------------------------------------------------------------
def test_withdrawing_returns_to_delivered_and_resumes_inspection_with_its_remaining_time() -> None:
    # Opened on day 12 with the window ending on day 19: 7 days were left.
    withdrawn_at = day(17)
    events = when(DISPUTED, c.WithdrawDispute(actor=BUYER), withdrawn_at)

    assert events == [e.DisputeWithdrawn(at=withdrawn_at)]
    state = state_of([*DISPUTED, *events])
    assert state.status is Status.DELIVERED
    assert state.inspection_ends_at == day(24)
    assert [(d.kind, d.at) for d in deadlines(state)] == [(K.INSPECTION_ENDS, day(24))]
    given = [*DISPUTED, *events]
    refused(given, c.AutoConfirmReceipt(), day(24) - timedelta(seconds=1), DeadlineNotReached)
    assert when(given, c.AutoConfirmReceipt(), day(24))[0] == e.ReceiptConfirmed(
        at=day(24), auto=True
    )


def test_withdrawing_returns_to_shipped_and_resumes_auto_complete_with_its_remaining_time() -> None:
    # Shipped on day 5, so auto-complete was due on day 65; opened on day 9: 56 days were left
    # (and withdrawing works after escalation too: DESIGN puts no limit on it).
    given = [*SHIPPED, dispute_opened(at=day(9)), escalated(day(12))]

    events = when(given, c.WithdrawDispute(actor=BUYER), day(20))

    state = state_of([*given, *events])
    assert state.status is Status.SHIPPED
    assert SHIPPED_AT + timedelta(days=60) == day(65)
    assert state.auto_complete_at == day(20 + 56)
    assert [(d.kind, d.at) for d in deadlines(state)] == [(K.AUTO_COMPLETE_AT, day(76))]


def test_a_dispute_opened_after_the_window_ran_out_resumes_with_nothing_left() -> None:
    given = [*DELIVERED, dispute_opened(at=day(20))]  # the window ended on day 19

    state = state_of([*given, *when(given, c.WithdrawDispute(actor=BUYER), day(22))])

    assert state.inspection_ends_at == day(22)
    assert when([*given, e.DisputeWithdrawn(at=day(22))], c.AutoConfirmReceipt(), day(22)) != []


def test_a_withdrawn_dispute_cannot_be_reopened() -> None:
    given = [*DISPUTED, e.DisputeWithdrawn(at=day(13))]
    error = refused(given, open_dispute(), day(14), DisputeCannotReopen)
    assert error.code == "dispute_cannot_reopen"


@pytest.mark.parametrize("actor", [SUPPLIER, MEDIATOR, ADMIN])
def test_only_the_buyer_withdraws(actor: Actor) -> None:
    refused(DISPUTED, c.WithdrawDispute(actor=actor), day(13), NotPermitted)


@pytest.mark.parametrize("given", [DELIVERED, [*DISPUTED, e.DisputeWithdrawn(at=day(13))]])
def test_there_must_be_a_dispute_to_withdraw(given: History) -> None:
    error = refused(given, c.WithdrawDispute(actor=BUYER), day(14), DisputeNotOpen)
    assert error.code == "dispute_not_open"
