"""Retention and claims over the API (DESIGN 7.2, 7.7): the terms, the retained status and its
deadline, the claim and its codes, the mediation queue's ``kind``, the timer at the deadline.

Each story runs on a database (and so a sandbox clock) of its own, on both backends.
"""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from escrow_core.application.timers import fire_due_timers
from escrow_core.store import Store
from support.api import order_terms, running_api
from support.api import test_settings as settings_for

from .world import BALANCE, DEPOSIT, TOTAL, World, build_world

DAY = 24 * 3600
RETAINED = TOTAL // 10  # 10% of 1_005_000, exact


@pytest.fixture
async def sandbox(fresh_store: Store) -> AsyncIterator[World]:
    settings = settings_for(fresh_store.url, sandbox=True, negotiation_days=0)
    async with running_api(settings) as api:
        yield await build_world(api)


async def retained_order(world: World, percent: int = 10, days: int = 30) -> dict[str, Any]:
    """An order with a retention, taken through to the buyer's confirmation."""
    order_id = await world.place(retention={"percent": percent, "days": days})
    await world.step(order_id, "accept", "supplier")
    await world.pay(order_id, DEPOSIT, "dep")
    await world.pay(order_id, BALANCE, "bal")
    await world.step(order_id, "ship", "supplier", {"carrier": "DHL", "tracking_number": "1Z"})
    await world.step(order_id, "deliver", "supplier")
    return await world.step(order_id, "confirm-receipt", "buyer")


def claim(refund: int) -> dict[str, Any]:
    return {"reason": "quality", "description": "panels flicker", "requested_refund": refund}


async def problem(world: World, order_id: str, role: str, body: Any) -> tuple[int, str]:
    answer = await world.call("POST", f"/v1/orders/{order_id}/claim", world.as_(role), body)
    assert answer.headers["content-type"] == "application/problem+json", answer.text
    return answer.status_code, answer.json()["code"]


async def test_a_claim_runs_the_dispute_flow_over_the_retained_money(sandbox: World) -> None:
    world = sandbox
    # Given an order confirmed with a 10% retention
    order = await retained_order(world)
    order_id = order["id"]
    assert order["retention"] == {"percent": 10, "days": 30}
    assert order["status"] == "retained"
    amounts = order["amounts"]
    assert (amounts["held"], amounts["retained"]) == (RETAINED, RETAINED)
    assert amounts["released"] == TOTAL - RETAINED
    assert [d["kind"] for d in order["deadlines"]] == ["retention_ends"]
    for side in ("buyer", "agent_for_buyer"):
        read = await world.call("GET", f"/v1/orders/{order_id}", world.as_(side))
        assert "claim" in read.json()["allowed_actions"], side
    timeline = await world.call("GET", f"/v1/orders/{order_id}/events", world.as_("supplier"))
    types = [event["type"] for event in timeline.json()["data"]]
    assert types[-3:] == ["receipt.confirmed", "funds.released", "funds.retained"]

    # A claim above what is retained, or by the supplier, is refused with nothing written
    assert await problem(world, order_id, "buyer", claim(RETAINED + 1)) == (
        422,
        "claim_exceeds_retained",
    )
    assert (await problem(world, order_id, "supplier", claim(1)))[0] == 403

    # When the buyer's agent claims part of it
    claimed = await world.step(order_id, "claim", "agent_for_buyer", claim(60_000))

    # Then the order is disputed by a claim, in the mediation queue with its kind
    assert claimed["version"] == order["version"] + 1
    assert claimed["status"] == "disputed"
    assert claimed["dispute"]["kind"] == "claim"
    assert claimed["amounts"]["retained"] == RETAINED
    for query in ("", "?status=open"):
        queue = await world.call("GET", f"/v1/disputes{query}", world.as_("mediator"))
        assert [(d["order_id"], d["kind"]) for d in queue.json()["data"]] == [(order_id, "claim")]
    assert await problem(world, order_id, "buyer", claim(1)) == (409, "claim_already_made")

    # And escalated, a mediator refunds part of the retained money: the rest is released
    await world.step(order_id, "dispute/escalate", "supplier")
    settled = await world.step(
        order_id, "dispute/resolve", "mediator", {"refund_amount": 40_000, "note": "4 panels"}
    )
    assert settled["status"] == "settled"
    a = settled["amounts"]
    assert (a["held"], a["retained"], a["refunded"]) == (0, 0, 40_000)
    assert a["released"] == TOTAL - 40_000
    assert settled["deadlines"] == []


async def test_at_the_deadline_the_rest_is_released_and_a_late_claim_refused(
    sandbox: World,
) -> None:
    world = sandbox
    # Given an order retaining 5% for a day
    order = await retained_order(world, percent=5, days=1)
    order_id = order["id"]
    (deadline,) = order["deadlines"]
    assert deadline["kind"] == "retention_ends"

    # When the day has passed (before the timer has fired)
    answer = await world.call(
        "POST", "/v1/sandbox/clock", world.admin, {"advance_seconds": DAY + 60}
    )
    assert answer.status_code == 200, answer.text

    # Then a claim is too late
    assert await problem(world, order_id, "buyer", claim(1)) == (409, "claim_window_closed")
    # and the timer releases what was retained
    (fired,) = await fire_due_timers(world.api.app.state.runtime.commands)
    assert [event.type for event in fired.events] == ["retention.ended", "funds.released"]
    read = await world.call("GET", f"/v1/orders/{order_id}", world.as_("buyer"))
    done = read.json()
    assert done["status"] == "completed"
    assert (done["amounts"]["held"], done["amounts"]["retained"]) == (0, 0)
    assert done["amounts"]["released"] == TOTAL
    assert await problem(world, order_id, "buyer", claim(1)) == (409, "claim_window_closed")


async def test_a_claim_withdrawn_past_the_deadline_has_the_rest_released_at_once(
    sandbox: World,
) -> None:
    world = sandbox
    # Given a claim still open when the one-day window has passed
    order = await retained_order(world, percent=5, days=1)
    order_id = order["id"]
    await world.step(order_id, "claim", "buyer", claim(1_000))
    answer = await world.call(
        "POST", "/v1/sandbox/clock", world.admin, {"advance_seconds": DAY + 60}
    )
    assert answer.status_code == 200, answer.text
    runtime = world.api.app.state.runtime
    assert await fire_due_timers(runtime.commands) == []  # a claim is open: no release

    # When the buyer withdraws it
    back = await world.step(order_id, "dispute/withdraw", "buyer")

    # Then the order is retained again with its deadline (already past) unchanged, and the
    # timer releases the rest at once
    assert back["status"] == "retained"
    assert back["deadlines"] == order["deadlines"]
    assert [d["kind"] for d in back["deadlines"]] == ["retention_ends"]
    (fired,) = await fire_due_timers(runtime.commands)
    assert [event.type for event in fired.events] == ["retention.ended", "funds.released"]
    assert fired.state.status.value == "completed"
    assert fired.state.amounts.released == TOTAL


@pytest.mark.parametrize(
    "retention",
    [{"percent": 0, "days": 30}, {"percent": 31, "days": 30}, {"percent": 10, "days": 91}],
)
async def test_a_retention_out_of_bounds_is_refused(
    world: World, retention: dict[str, int]
) -> None:
    body = {**order_terms(world.supplier_id), "retention": retention}
    answer = await world.call("POST", "/v1/orders", world.as_("buyer"), body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "invalid_retention"
