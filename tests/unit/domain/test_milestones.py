"""Milestone release (DESIGN 7.2, 7.7): the buyer (or its agent) releases part of what is held
before receipt; fees are cumulative; the status stays; the supplier may then no longer cancel
on its own, and a dispute can only claim what is still held."""

import pytest

from escrow_core.domain import commands as c
from escrow_core.domain import events as e
from escrow_core.domain.errors import (
    CancellationNotAllowed,
    InvalidState,
    InvalidValue,
    NotFullyHeld,
    NotPermitted,
    RefundExceedsHeld,
    ReleaseExceedsHeld,
)
from escrow_core.domain.money import fee_for
from escrow_core.domain.order import Status, allowed_actions
from escrow_core.domain.roles import Actor, Role
from escrow_core.domain.terms import RefundReason

from .scenario import (
    ACCEPTED,
    ADMIN,
    BUYER,
    DELIVERED,
    DISPUTED,
    FEE_BPS,
    FEE_ON_TOTAL,
    HELD,
    IDS,
    PARTIALLY_PAID,
    PAYMENTS,
    SHIPPED,
    SUPPLIER,
    SUPPLIER_ID,
    TOTAL,
    History,
    day,
    open_dispute,
    order_accepted,
    order_placed,
    paid,
    pay,
    refund_issued,
    refused,
    state_of,
    then_state,
    when,
)

AGENT_ID = "pty_agent"
NOW = day(3)


def release(amount: int, actor: Actor = BUYER, note: str = "deposit") -> c.ReleaseMilestone:
    return c.ReleaseMilestone(actor=actor, amount=amount, note=note)


def released(gross: int, fee: int, agency_fee: int = 0, first: int = 1) -> e.FundsReleased:
    net = gross - fee - agency_fee
    payouts = [e.NewPayout(id=IDS.nth("po", first), party_id=SUPPLIER_ID, amount=net)]
    if agency_fee:
        payouts.append(
            e.NewPayout(id=IDS.nth("po", first + 1), party_id=AGENT_ID, amount=agency_fee)
        )
    return e.FundsReleased(
        at=NOW, gross=gross, fee=fee, agency_fee=agency_fee, net=net, payouts=tuple(payouts)
    )


def test_the_buyer_releases_part_of_a_deposit_and_the_status_stays() -> None:
    # Given 50_000 of 125_000 paid; When the buyer releases 20_000 of it
    events = when(PARTIALLY_PAID, release(20_000), NOW)

    # Then a milestone.released and its funds.released, with the fee and the supplier's payout
    fee = fee_for(20_000, FEE_BPS)
    assert events == [
        e.MilestoneReleased(at=NOW, amount=20_000, note="deposit", by=Role.BUYER),
        released(20_000, fee),
    ]
    state = state_of([*PARTIALLY_PAID, *events])
    assert state.status is Status.PARTIALLY_PAID
    assert (state.amounts.held, state.amounts.released, state.amounts.fees) == (30_000, 20_000, fee)
    assert [(p.party_id, p.amount) for p in state.payouts] == [(SUPPLIER_ID, 20_000 - fee)]


@pytest.mark.parametrize(
    "given",
    [PARTIALLY_PAID, HELD, SHIPPED, DELIVERED],
    ids=["part", "held", "shipped", "delivered"],
)
def test_a_release_may_take_all_that_is_held_but_not_one_unit_more(given: History) -> None:
    held = state_of(given).amounts.held

    error = refused(given, release(held + 1), NOW, ReleaseExceedsHeld)
    assert (error.code, error.field) == ("release_exceeds_held", "amount")

    state = then_state(given, release(held), NOW)
    assert state.amounts.held == 0
    assert state.status is state_of(given).status


@pytest.mark.parametrize("amount", [0, -1])
def test_a_release_must_be_positive(amount: int) -> None:
    refused(HELD, release(amount), NOW, InvalidValue)


@pytest.mark.parametrize(
    ("given", "error"),
    [(ACCEPTED, InvalidState), (DISPUTED, InvalidState)],
    ids=["nothing_held", "dispute_open"],
)
def test_no_release_without_money_held_or_with_a_dispute_open(
    given: History, error: type[InvalidState]
) -> None:
    refused(given, release(1), day(13), error)


@pytest.mark.parametrize("actor", [SUPPLIER, PAYMENTS, ADMIN])
def test_only_the_buyer_side_releases(actor: Actor) -> None:
    refused(HELD, release(1, actor=actor), NOW, NotPermitted)


def test_fees_are_cumulative_so_the_split_never_changes_the_total_fee() -> None:
    # Given a milestone of 333 released (fee 8.325 -> 8), When the buyer confirms the rest
    first = when(HELD, release(333), NOW)
    given = [*HELD, *first]
    rest = when([*given, *SHIPPED[len(HELD) :]], c.ConfirmReceipt(actor=BUYER), day(7))
    state = state_of([*given, *SHIPPED[len(HELD) :], *rest])

    # Then the fees kept are those on the whole total, as if released at once
    assert state.status is Status.COMPLETED
    assert state.amounts.released == TOTAL
    assert state.amounts.fees == FEE_ON_TOTAL


def test_an_agency_fee_is_kept_per_release_and_paid_to_the_agent() -> None:
    given: History = [
        order_placed(agency_id=AGENT_ID, agency_fee_bps=150),
        order_accepted(),
        *paid(TOTAL, held_total=TOTAL),
    ]
    events = when(given, release(40_000), NOW)

    assert events[1] == released(40_000, fee_for(40_000, FEE_BPS), fee_for(40_000, 150))
    state = state_of([*given, *events])
    assert state.amounts.agency_fees == 600
    assert {(p.party_id, p.amount) for p in state.payouts} == {
        (SUPPLIER_ID, 40_000 - 1_000 - 600),
        (AGENT_ID, 600),
    }


def test_after_a_release_the_supplier_cannot_cancel_on_its_own_but_an_admin_can() -> None:
    given = [*HELD, *when(HELD, release(25_000), NOW)]

    refused(given, c.CancelOrder(actor=SUPPLIER), day(4), CancellationNotAllowed)

    # An admin ends it: what is still held goes back, what was released stays released
    events = when(given, c.CancelOrder(actor=ADMIN), day(4))
    assert events[1:] == [refund_issued(100_000, RefundReason.CANCELLATION, day(4))]
    state = state_of([*given, *events])
    assert state.status is Status.CANCELLED
    assert (state.amounts.held, state.amounts.released) == (0, 25_000)


def test_shipping_still_needs_the_order_fully_paid() -> None:
    given = [*PARTIALLY_PAID, *when(PARTIALLY_PAID, release(50_000), NOW)]
    cmd = c.ShipOrder(actor=SUPPLIER, carrier="DHL", tracking_number="1")

    refused(given, cmd, day(4), NotFullyHeld)

    # once the balance is in, the order is held (held + released = total) and ships
    balance = when(given, pay(75_000, ref="pay_2"), day(4))
    state = then_state([*given, *balance], cmd, day(5))
    assert state.status is Status.SHIPPED


def test_a_dispute_after_a_release_claims_only_what_is_still_held() -> None:
    given = [*SHIPPED, *when(SHIPPED, release(100_000), day(6))]

    refused(given, open_dispute(refund=25_001), day(7), RefundExceedsHeld)

    disputed = [*given, *when(given, open_dispute(refund=25_000), day(7))]
    # The supplier accepts a full refund of what is held: settled, since money was released
    events = when(disputed, c.AcceptOffer(actor=SUPPLIER), day(8))
    state = state_of([*disputed, *events])
    assert state.status is Status.SETTLED
    assert (state.amounts.held, state.amounts.released, state.amounts.refunded) == (
        0,
        100_000,
        25_000,
    )


def test_releases_are_probed_for_allowed_actions_at_one_unit() -> None:
    assert "release" in allowed_actions(state_of(HELD), BUYER, NOW)
    emptied = [*HELD, *when(HELD, release(TOTAL), NOW)]
    assert "release" not in allowed_actions(state_of(emptied), BUYER, NOW)
    assert "release" not in allowed_actions(state_of(HELD), SUPPLIER, NOW)
