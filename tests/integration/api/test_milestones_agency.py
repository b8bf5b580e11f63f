"""Milestone release and the agency fee over HTTP on both backends (DESIGN 7.2, 7.7): an agent
places an order for its buyer with a fee and a dated balance, releases part of the deposit,
and its own balances and ledger show the agency fee paid to it; the codes of bad terms."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from support.api import order_terms

from .world import World

DEPOSIT, BALANCE = 301_500, 703_500


def dated_schedule(due_in_days: int) -> list[dict[str, Any]]:
    due_by = (datetime.now(UTC).date() + timedelta(days=due_in_days)).isoformat()
    return [
        {"name": "deposit", "amount": DEPOSIT},
        {"name": "balance", "amount": BALANCE, "due_by": due_by},
    ]


async def test_an_agent_places_with_a_fee_releases_a_milestone_and_is_paid_its_fee(
    world: World,
) -> None:
    # Given an order the agent places for its buyer with a 1.5 % fee and a dated balance
    schedule = dated_schedule(10)
    order_id = await world.place("agent_for_buyer", agency_fee_bps=150, payment_schedule=schedule)
    order = (await world.call("GET", f"/v1/orders/{order_id}", world.as_("buyer"))).json()
    assert (order["agency_id"], order["agency_fee_bps"]) == (world.agent_id, 150)
    assert [t.get("due_by") for t in order["payment_schedule"]] == [None, schedule[1]["due_by"]]
    await world.step(order_id, "accept", "supplier")
    paid = await world.pay(order_id, DEPOSIT, "dep")
    tranche_due = [d for d in paid["deadlines"] if d["kind"] == "tranche_due"]
    assert [d["at"][:10] for d in tranche_due] == [
        (datetime.now(UTC).date() + timedelta(days=11)).isoformat()
    ]

    # A release above what is held is refused, nothing written
    too_much = await world.call(
        "POST", f"/v1/orders/{order_id}/release", world.as_("buyer"), {"amount": DEPOSIT + 1}
    )
    assert too_much.status_code == 422, too_much.text
    assert too_much.json()["code"] == "release_exceeds_held"

    # When the agent, for the buyer, releases 100,000.00 of the deposit
    released = await world.step(
        order_id, "release", "agent_for_buyer", {"amount": 100_000, "note": "tooling"}
    )

    # Then the status stays, the agency fee is kept and paid to the agent
    assert released["status"] == "partially_paid"
    amounts = released["amounts"]
    assert (amounts["held"], amounts["released"], amounts["agency_fees"]) == (
        DEPOSIT - 100_000,
        100_000,
        1_500,
    )
    seen_by_buyer = (await world.call("GET", f"/v1/orders/{order_id}", world.as_("buyer"))).json()
    assert "release" in seen_by_buyer["allowed_actions"]
    as_supplier = (await world.call("GET", f"/v1/orders/{order_id}", world.as_("supplier"))).json()
    assert sorted((p["party_id"], p["amount"]) for p in as_supplier["payouts"]) == sorted(
        [(world.supplier_id, 100_000 - 1_500 - amounts["fees"]), (world.agent_id, 1_500)]
    )
    assert "cancel" not in as_supplier["allowed_actions"]  # released: no cancelling on its own
    timeline = await world.call("GET", f"/v1/orders/{order_id}/events", world.as_("supplier"))
    types = [ev["type"] for ev in timeline.json()["data"]]
    assert types[-2:] == ["milestone.released", "funds.released"]
    funds = timeline.json()["data"][-1]["data"]
    assert (funds["gross"], funds["agency_fee"]) == (100_000, 1_500)

    # and the agent's own balances and ledger show its agency account
    balances = await world.call("GET", f"/v1/parties/{world.agent_id}/balances", world.as_("agent"))
    assert balances.status_code == 200, balances.text
    accounts = {a["account"]: a for a in balances.json()["accounts"]}
    assert accounts[f"agency:{world.agent_id}"]["currency"] == "USD"
    assert accounts[f"agency:{world.agent_id}"]["pending"] == -1_500
    ledger = await world.call("GET", f"/v1/parties/{world.agent_id}/ledger", world.as_("agent"))
    assert ledger.status_code == 200, ledger.text
    postings = [p for p in ledger.json()["data"] if p["order_id"] == order_id]
    assert {p["account"] for p in postings} == {f"agency:{world.agent_id}"}
    assert sum(p["amount"] for p in postings if p["phase"] == "posted") == 1_500


@pytest.mark.parametrize(
    ("caller", "terms", "code"),
    [
        ("buyer", {"agency_fee_bps": 150}, "agency_fee_not_allowed"),
        ("agent_for_buyer", {"agency_fee_bps": 2_001}, "invalid_terms"),
        ("buyer", {"payment_schedule": dated_schedule(40)}, "invalid_due_by"),
        ("buyer", {"payment_schedule": dated_schedule(0)}, "invalid_due_by"),
    ],
    ids=["buyer_sets_a_fee", "fee_out_of_range", "due_after_ship_by", "due_today"],
)
async def test_bad_agency_terms_are_refused_with_their_code(
    world: World, caller: str, terms: dict[str, Any], code: str
) -> None:
    body = order_terms(world.supplier_id, **terms)
    answer = await world.call("POST", "/v1/orders", world.as_(caller), body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == code
