"""Who sees which money-out fact of an order (DESIGN 7.6), as one pure rule."""

import pytest

from escrow_core.domain.visibility import EVERYTHING, PAYOUT_EVENTS, REFUND_PROGRESS_EVENTS, Viewer

BUYER_SIDE = Viewer(buyer_side=True, own_parties=frozenset({"pty_buyer"}))
SUPPLIER_SIDE = Viewer(supplier_side=True, own_parties=frozenset({"pty_supplier"}))
# The buyer's agent, paid an agency fee by payout to pty_agent.
BUYERS_AGENT = Viewer(buyer_side=True, own_parties=frozenset({"pty_buyer", "pty_agent"}))


@pytest.mark.parametrize("event_type", sorted(PAYOUT_EVENTS))
def test_payout_events_are_the_supplier_sides_and_an_agents_own(event_type: str) -> None:
    assert SUPPLIER_SIDE.sees_event(event_type, "pty_supplier")
    assert EVERYTHING.sees_event(event_type, "pty_supplier")
    assert not BUYER_SIDE.sees_event(event_type, "pty_supplier")
    assert not BUYERS_AGENT.sees_event(event_type, "pty_supplier")
    assert BUYERS_AGENT.sees_event(event_type, "pty_agent")
    assert not BUYERS_AGENT.sees_event(event_type)  # the payout's party unknown: not shown


def test_only_a_reader_that_may_own_a_payout_needs_its_party() -> None:
    assert BUYERS_AGENT.needs_payout_party("payout.paid")
    assert not SUPPLIER_SIDE.needs_payout_party("payout.paid")
    assert not EVERYTHING.needs_payout_party("payout.paid")
    assert not BUYERS_AGENT.needs_payout_party("refund.succeeded")
    assert not Viewer(buyer_side=True).needs_payout_party("payout.paid")


@pytest.mark.parametrize("event_type", sorted(REFUND_PROGRESS_EVENTS))
def test_refund_progress_is_the_buyer_sides(event_type: str) -> None:
    assert BUYER_SIDE.sees_event(event_type)
    assert BUYERS_AGENT.sees_event(event_type)
    assert EVERYTHING.sees_event(event_type)
    assert not SUPPLIER_SIDE.sees_event(event_type)


@pytest.mark.parametrize(
    "event_type", ["refund.issued", "funds.released", "payment.received", "order.placed"]
)
def test_everything_else_is_both_sides(event_type: str) -> None:
    for viewer in (BUYER_SIDE, SUPPLIER_SIDE, BUYERS_AGENT, EVERYTHING):
        assert viewer.sees_event(event_type)


def test_the_lists_follow_the_same_rule() -> None:
    assert (SUPPLIER_SIDE.sees_payouts, SUPPLIER_SIDE.sees_refunds) == (True, False)
    assert (BUYER_SIDE.sees_payouts, BUYER_SIDE.sees_refunds) == (False, True)
    assert (EVERYTHING.sees_payouts, EVERYTHING.sees_refunds) == (True, True)
    assert BUYERS_AGENT.sees_payout_to("pty_agent")
    assert not BUYERS_AGENT.sees_payout_to("pty_supplier")
