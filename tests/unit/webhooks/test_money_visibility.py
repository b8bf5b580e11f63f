"""A webhook endpoint gets an order's money out as its owner would see it (DESIGN 7.6)."""

from dataclasses import replace

from escrow_core.webhooks.matching import Audience, matches

from .test_payload_and_matching import endpoint, recorded

AUDIENCE = Audience(
    parties=frozenset({"pty_buyer", "pty_supplier"}),
    agents=frozenset({"pty_agent"}),
    buyer_side=frozenset({"pty_buyer", "pty_agent"}),
    supplier_side=frozenset({"pty_supplier"}),
    payout_party_id="pty_supplier",
)


def _owners(event_type: str, audience: Audience = AUDIENCE) -> set[str | None]:
    owners: tuple[str | None, ...] = (None, "pty_buyer", "pty_supplier", "pty_agent")
    return {o for o in owners if matches(endpoint(o), recorded(event_type), audience, replay=False)}


def test_payout_events_go_to_the_supplier_side_and_the_admin() -> None:
    assert _owners("payout.paid") == {None, "pty_supplier"}


def test_an_agents_own_payout_goes_to_it_on_the_buyer_side() -> None:
    agency = replace(AUDIENCE, payout_party_id="pty_agent")
    assert _owners("payout.failed", agency) == {None, "pty_supplier", "pty_agent"}


def test_refund_progress_goes_to_the_buyer_side_and_refund_issued_to_all() -> None:
    assert _owners("refund.succeeded") == {None, "pty_buyer", "pty_agent"}
    assert _owners("refund.issued") == {None, "pty_buyer", "pty_supplier", "pty_agent"}
    assert _owners("funds.released") == {None, "pty_buyer", "pty_supplier", "pty_agent"}
