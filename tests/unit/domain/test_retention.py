"""Retention and claims (DESIGN 7.2): confirmation keeps a share of the total until a deadline;
the buyer may claim on it once, through the dispute flow, over the retained money only.

The reference order (125_000, fee 250 bps) with a 10% retention for 30 days: confirmation
releases 112_500 (fee 2_812, half-even of 2_812.5) and retains 12_500; releasing the rest later
keeps the fee on the whole total less what was kept (3_125 - 2_812 = 313).
"""

from datetime import datetime, timedelta

import pytest

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import (
    ClaimAlreadyMade,
    ClaimExceedsRetained,
    ClaimWindowClosed,
    DeadlineNotReached,
    InvalidRetention,
    InvalidState,
    InvalidValue,
    NotPermitted,
    RefundExceedsHeld,
)
from escrow_core.domain.order import Status, allowed_actions, deadlines, due_timer_commands
from escrow_core.domain.roles import SYSTEM, Actor, Role, Side
from escrow_core.domain.terms import (
    DeadlineKind,
    DisputeKind,
    DisputeReason,
    RefundReason,
    Retention,
)
from escrow_core.domain.visibility import Viewer

from .scenario import (
    BUYER,
    DELIVERED_AT,
    FEE_ON_TOTAL,
    MEDIATOR,
    OTHER_BUYER,
    PAYMENTS,
    SUPPLIER,
    TOTAL,
    History,
    day,
    dispute_opened,
    funds_released,
    order_accepted,
    order_delivered,
    order_placed,
    order_shipped,
    paid,
    place_order,
    refund_issued,
    refused,
    state_of,
    then_state,
    when,
)

K = DeadlineKind
RETENTION = Retention(percent=10, days=30)
RETAINED_AMOUNT = 12_500
FIRST_GROSS = TOTAL - RETAINED_AMOUNT  # 112_500
FIRST_FEE = 2_812  # 112_500 * 2.5% = 2_812.5, half-even
REST_FEE = FEE_ON_TOTAL - FIRST_FEE  # 313: the fee is cumulative per order
CONFIRMED_AT = day(10)
ENDS_AT = CONFIRMED_AT + timedelta(days=30)
CLAIM_AT = day(20)


def with_retention(retention: Retention | None = RETENTION, total: int = TOTAL) -> History:
    """The reference order, placed with ``retention``, up to delivered."""
    return [
        order_placed(retention=retention, total=total),
        order_accepted(),
        *paid(total, held_total=total),
        order_shipped(),
        order_delivered(),
    ]


DELIVERED_R = with_retention()
RETAINED: History = [
    *DELIVERED_R,
    e.ReceiptConfirmed(at=CONFIRMED_AT),
    funds_released(FIRST_GROSS, FIRST_FEE, CONFIRMED_AT),
    e.FundsRetained(at=CONFIRMED_AT, amount=RETAINED_AMOUNT, retention_ends=ENDS_AT),
]


def claim(refund: int = 5_000, actor: Actor = BUYER) -> c.MakeClaim:
    return c.MakeClaim(
        actor=actor,
        reason=DisputeReason.QUALITY,
        description="two valves crack after a month",
        requested_refund=refund,
    )


def claim_opened(at: datetime = CLAIM_AT, refund: int = 5_000) -> e.DisputeOpened:
    return e.DisputeOpened(
        at=at,
        kind=DisputeKind.CLAIM,
        reason=DisputeReason.QUALITY,
        description="two valves crack after a month",
        requested_refund=refund,
    )


CLAIMED: History = [*RETAINED, claim_opened()]
ESCALATED_CLAIM: History = [*CLAIMED, e.DisputeEscalated(at=day(24), by=Role.BUYER)]
WITHDRAWN_CLAIM: History = [*CLAIMED, e.DisputeWithdrawn(at=day(22))]


# --- the terms --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "retention",
    [Retention(percent=1, days=1), Retention(percent=30, days=90), None],
    ids=["lowest", "highest", "none"],
)
def test_terms_may_set_a_retention_within_its_bounds(retention: Retention | None) -> None:
    events = when([], place_order(retention=retention), day(0))
    assert isinstance(events[0], e.OrderPlaced)
    assert state_of(events).terms.retention == retention


@pytest.mark.parametrize(
    ("percent", "days", "field"),
    [
        (0, 30, "retention.percent"),
        (31, 30, "retention.percent"),
        (-5, 30, "retention.percent"),
        (10, 0, "retention.days"),
        (10, 91, "retention.days"),
    ],
)
def test_a_retention_out_of_bounds_is_refused(percent: int, days: int, field: str) -> None:
    command = place_order(retention=Retention(percent=percent, days=days))
    error = refused([], command, day(0), InvalidRetention)
    assert (error.code, error.field) == ("invalid_retention", field)


# --- confirmation retains -----------------------------------------------------------------
def test_the_buyers_confirmation_releases_all_but_the_retention() -> None:
    events = when(DELIVERED_R, c.ConfirmReceipt(actor=BUYER), CONFIRMED_AT)

    assert events == RETAINED[len(DELIVERED_R) :]
    state = state_of([*DELIVERED_R, *events])
    assert state.status is Status.RETAINED
    a = state.amounts
    assert (a.held, a.retained, a.released, a.fees) == (12_500, 12_500, 112_500, 2_812)
    assert state.retention_ends_at == ENDS_AT
    assert [(d.kind, d.at) for d in deadlines(state)] == [(K.RETENTION_ENDS, ENDS_AT)]


@pytest.mark.parametrize(
    ("given", "timer", "at"),
    [
        (DELIVERED_R, c.AutoConfirmReceipt(), DELIVERED_AT + timedelta(days=10)),
        (DELIVERED_R[:-1], c.AutoCompleteUndelivered(), day(5) + timedelta(days=60)),
    ],
    ids=["inspection_ends", "undelivered"],
)
def test_every_confirmation_by_a_timer_retains_too(
    given: History, timer: c.TimerCommand, at: datetime
) -> None:
    events = when(given, timer, at)

    assert [type(ev) for ev in events] == [e.ReceiptConfirmed, e.FundsReleased, e.FundsRetained]
    assert isinstance(events[0], e.ReceiptConfirmed)
    assert events[0].auto
    assert isinstance(events[2], e.FundsRetained)
    assert events[2].amount == RETAINED_AMOUNT
    assert events[2].retention_ends == at + timedelta(days=30)
    assert state_of([*given, *events]).status is Status.RETAINED


@pytest.mark.parametrize(
    ("total", "percent", "retained"),
    [(12_345, 10, 1_234), (12_355, 10, 1_236), (99_999, 30, 30_000), (1_001, 5, 50)],
)
def test_the_retained_share_of_the_total_is_rounded_half_even(
    total: int, percent: int, retained: int
) -> None:
    # 1_234.5 -> 1_234, 1_235.5 -> 1_236, 29_999.7 -> 30_000, 50.05 -> 50
    given = with_retention(Retention(percent=percent, days=5), total=total)
    state = then_state(given, c.ConfirmReceipt(actor=BUYER), CONFIRMED_AT)
    assert (state.amounts.retained, state.amounts.released) == (retained, total - retained)


def test_with_nothing_to_retain_the_order_completes_as_in_v1() -> None:
    given = with_retention(Retention(percent=10, days=5), total=4)  # 10% of 4 is 0.4 -> 0
    events = when(given, c.ConfirmReceipt(actor=BUYER), CONFIRMED_AT)
    assert [type(ev) for ev in events] == [e.ReceiptConfirmed, e.FundsReleased]
    state = state_of([*given, *events])
    assert state.status is Status.COMPLETED
    assert (state.amounts.held, state.amounts.retained, state.retention_ends_at) == (0, 0, None)


def test_without_a_retention_confirmation_releases_everything() -> None:
    given = with_retention(None)
    state = then_state(given, c.ConfirmReceipt(actor=BUYER), CONFIRMED_AT)
    assert state.status is Status.COMPLETED
    assert (state.amounts.released, state.amounts.fees) == (TOTAL, FEE_ON_TOTAL)


# --- the window closes ------------------------------------------------------------------------
def test_at_the_deadline_the_timer_releases_the_retained_money() -> None:
    assert due_timer_commands(state_of(RETAINED), ENDS_AT) == [c.EndRetention()]

    events = when(RETAINED, c.EndRetention(), ENDS_AT)

    assert events == [
        e.RetentionEnded(at=ENDS_AT),
        funds_released(RETAINED_AMOUNT, REST_FEE, ENDS_AT),
    ]
    state = state_of([*RETAINED, *events])
    assert state.status is Status.COMPLETED
    a = state.amounts
    assert (a.held, a.retained, a.released, a.fees) == (0, 0, TOTAL, FEE_ON_TOTAL)
    assert deadlines(state) == []


def test_the_timer_waits_for_the_deadline_and_only_the_system_fires_it() -> None:
    assert due_timer_commands(state_of(RETAINED), ENDS_AT - timedelta(seconds=1)) == []
    refused(RETAINED, c.EndRetention(), ENDS_AT - timedelta(seconds=1), DeadlineNotReached)
    refused(RETAINED, c.EndRetention(actor=BUYER), ENDS_AT, NotPermitted)
    refused(CLAIMED, c.EndRetention(), ENDS_AT, InvalidState)  # a claim is open


# --- the claim --------------------------------------------------------------------------------
def test_the_buyer_claims_within_the_window_as_a_dispute_of_kind_claim() -> None:
    events = when(RETAINED, claim(5_000), CLAIM_AT)

    assert events == [claim_opened(refund=5_000)]
    state = state_of([*RETAINED, *events])
    assert state.status is Status.DISPUTED
    assert state.dispute is not None
    assert (state.dispute.kind, state.dispute.status_before) == (DisputeKind.CLAIM, Status.RETAINED)
    assert state.amounts.retained == state.amounts.held == RETAINED_AMOUNT
    # While it is open the window's timer stops; the dispute's own timers run.
    assert {d.kind for d in deadlines(state)} == {K.ESCALATION_ALLOWED_AT, K.AUTO_ESCALATE_AT}


def test_a_claim_may_ask_for_all_that_is_retained_and_no_more() -> None:
    assert when(RETAINED, claim(RETAINED_AMOUNT), CLAIM_AT) != []
    error = refused(RETAINED, claim(RETAINED_AMOUNT + 1), CLAIM_AT, ClaimExceedsRetained)
    assert (error.code, error.field) == ("claim_exceeds_retained", "requested_refund")
    negative = refused(RETAINED, claim(-1), CLAIM_AT, InvalidValue)
    assert negative.field == "requested_refund"


@pytest.mark.parametrize("late_by", [timedelta(0), timedelta(days=3)])
def test_a_claim_after_the_window_is_refused(late_by: timedelta) -> None:
    assert when(RETAINED, claim(), ENDS_AT - timedelta(seconds=1)) != []
    error = refused(RETAINED, claim(), ENDS_AT + late_by, ClaimWindowClosed)
    assert error.code == "claim_window_closed"


def test_a_claim_once_the_timer_has_closed_the_window_is_refused() -> None:
    ended = [*RETAINED, *when(RETAINED, c.EndRetention(), ENDS_AT)]
    # even at a clock that reads earlier (a claim re-decided after losing the race)
    refused(ended, claim(), ENDS_AT - timedelta(hours=1), ClaimWindowClosed)


@pytest.mark.parametrize(
    "given",
    [
        CLAIMED,
        WITHDRAWN_CLAIM,
        [
            *ESCALATED_CLAIM,
            *when(ESCALATED_CLAIM, c.ResolveDispute(actor=MEDIATOR, refund_amount=0), day(25)),
        ],
    ],
    ids=["open", "withdrawn", "resolved"],
)
def test_an_order_takes_one_claim(given: History) -> None:
    error = refused(given, claim(), day(26), ClaimAlreadyMade)
    assert error.code == "claim_already_made"


def test_a_dispute_withdrawn_before_receipt_does_not_use_up_the_claim() -> None:
    given = [
        *DELIVERED_R,
        dispute_opened(at=day(9, 2)),
        e.DisputeWithdrawn(at=day(9, 3)),
        e.ReceiptConfirmed(at=CONFIRMED_AT),
        funds_released(FIRST_GROSS, FIRST_FEE, CONFIRMED_AT),
        e.FundsRetained(at=CONFIRMED_AT, amount=RETAINED_AMOUNT, retention_ends=ENDS_AT),
    ]
    assert when(given, claim(), CLAIM_AT) == [claim_opened()]


@pytest.mark.parametrize("actor", [SUPPLIER, MEDIATOR, PAYMENTS, OTHER_BUYER, SYSTEM])
def test_only_the_buyer_claims(actor: Actor) -> None:
    refused(RETAINED, claim(actor=actor), CLAIM_AT, NotPermitted)


def test_an_order_without_retention_takes_no_claim() -> None:
    given = with_retention(None)
    completed = [*given, *when(given, c.ConfirmReceipt(actor=BUYER), CONFIRMED_AT)]
    assert refused(completed, claim(), CLAIM_AT, InvalidState).code == "invalid_state"
    assert refused(DELIVERED_R, claim(), CLAIM_AT, InvalidState).code == "invalid_state"


# --- the claim runs the dispute flow over the retained money -------------------------------
def test_offers_are_bounded_by_what_is_retained() -> None:
    offer = c.MakeOffer(actor=SUPPLIER, refund_amount=RETAINED_AMOUNT + 1)
    refused(CLAIMED, offer, day(21), RefundExceedsHeld)
    resolve = c.ResolveDispute(actor=MEDIATOR, refund_amount=RETAINED_AMOUNT + 1)
    refused(ESCALATED_CLAIM, resolve, day(25), RefundExceedsHeld)


def test_a_mediator_refunding_part_of_a_claim_settles_the_order() -> None:
    resolve = c.ResolveDispute(actor=MEDIATOR, refund_amount=4_000, note="two valves")
    events = when(ESCALATED_CLAIM, resolve, day(25))

    assert events == [
        e.DisputeResolved(
            at=day(25),
            refund_amount=4_000,
            release_amount=8_500,
            note="two valves",
            by=Role.MEDIATOR,
        ),
        refund_issued(4_000, RefundReason.DISPUTE, day(25)),
        # cumulative: fee_for(112_500 + 8_500 = 121_000) = 3_025, less the 2_812 kept
        funds_released(8_500, 3_025 - FIRST_FEE, day(25), first=2),
    ]
    state = state_of([*ESCALATED_CLAIM, *events])
    assert state.status is Status.SETTLED
    a = state.amounts
    assert (a.held, a.retained, a.refunded, a.released, a.fees) == (0, 0, 4_000, 121_000, 3_025)


def test_a_claim_refunding_all_that_is_retained_is_settled_not_refunded() -> None:
    resolve = c.ResolveDispute(actor=MEDIATOR, refund_amount=RETAINED_AMOUNT)
    state = then_state(ESCALATED_CLAIM, resolve, day(25))
    assert state.status is Status.SETTLED  # the rest was released at confirmation
    assert (state.amounts.held, state.amounts.released) == (0, FIRST_GROSS)


def test_a_claim_resolved_with_no_refund_completes_the_order() -> None:
    resolve = c.ResolveDispute(actor=MEDIATOR, refund_amount=0)
    state = then_state(ESCALATED_CLAIM, resolve, day(25))
    assert state.status is Status.COMPLETED
    assert (state.amounts.released, state.amounts.fees) == (TOTAL, FEE_ON_TOTAL)


def test_the_buyer_accepting_the_suppliers_offer_settles_the_claim() -> None:
    offered = [*CLAIMED, e.DisputeOfferMade(at=day(21), by=Side.SUPPLIER, refund_amount=2_000)]
    events = when(offered, c.AcceptOffer(actor=BUYER), day(22))
    assert [type(ev) for ev in events] == [
        e.DisputeOfferAccepted,
        e.DisputeResolved,
        e.RefundIssued,
        e.FundsReleased,
    ]
    state = state_of([*offered, *events])
    assert state.status is Status.SETTLED
    assert (state.amounts.refunded, state.amounts.held) == (2_000, 0)


def test_an_unanswered_claim_is_escalated_by_its_timer() -> None:
    at = CLAIM_AT + timedelta(days=7)
    assert due_timer_commands(state_of(CLAIMED), at) == [c.AutoEscalateDispute()]
    assert when(CLAIMED, c.AutoEscalateDispute(), at) == [e.DisputeEscalated(at=at, by=Role.SYSTEM)]


def test_a_withdrawn_claim_returns_to_retained_with_its_deadline_unchanged() -> None:
    state = then_state(CLAIMED, c.WithdrawDispute(actor=BUYER), day(22))
    assert state.status is Status.RETAINED
    assert state.amounts.retained == RETAINED_AMOUNT
    assert [(d.kind, d.at) for d in deadlines(state)] == [(K.RETENTION_ENDS, ENDS_AT)]


def test_a_claim_withdrawn_past_the_deadline_has_the_rest_released_at_once_by_the_timer() -> None:
    # The claim outlived the window; withdrawing it leaves the deadline passed, so the timer
    # is due the moment the order is retained again.
    late = ENDS_AT + timedelta(days=2)
    withdrawn = [*CLAIMED, *when(CLAIMED, c.WithdrawDispute(actor=BUYER), late)]
    state = state_of(withdrawn)
    assert state.status is Status.RETAINED
    assert due_timer_commands(state, late) == [c.EndRetention()]
    refused(withdrawn, claim(), late, ClaimAlreadyMade)
    events = when(withdrawn, c.EndRetention(), late)
    assert [type(ev) for ev in events] == [e.RetentionEnded, e.FundsReleased]
    assert state_of([*withdrawn, *events]).status is Status.COMPLETED


# --- what the parties may do --------------------------------------------------------------
def test_allowed_actions_offer_the_claim_while_the_window_runs() -> None:
    retained = state_of(RETAINED)
    assert "claim" in allowed_actions(retained, BUYER, CLAIM_AT)
    assert "claim" not in allowed_actions(retained, BUYER, ENDS_AT)
    assert allowed_actions(retained, SUPPLIER, CLAIM_AT) == ["message"]
    assert "claim" not in allowed_actions(state_of(CLAIMED), BUYER, day(21))
    assert "claim" not in allowed_actions(state_of(DELIVERED_R), BUYER, day(10))


@pytest.mark.parametrize("event_type", ["funds.retained", "retention.ended"])
def test_the_new_events_are_seen_by_both_sides(event_type: str) -> None:
    for viewer in (Viewer(buyer_side=True), Viewer(supplier_side=True), Viewer(everything=True)):
        assert viewer.sees_event(event_type)
