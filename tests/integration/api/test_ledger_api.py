"""A party's ledger and balances over HTTP on both backends (DESIGN 7.1, 7.7): postings of
its own accounts as a cursor list, and its accounts' posted and pending balances; and who
sees the money out of an order in the feed and in webhooks (DESIGN 7.6)."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from escrow_core.store import Store
from escrow_core.webhooks.endpoints import Endpoint
from escrow_core.webhooks.matching import audiences, matches

from .world import World


async def _paid_out(world: World) -> tuple[str, dict[str, Any]]:
    """A completed order whose payout the provider reported paid."""
    order_id = await world.order("completed")
    order = (await world.call("GET", f"/v1/orders/{order_id}", world.as_("payments"))).json()
    (payout,) = order["payouts"]
    paid = await world.call(
        "POST", f"/v1/payouts/{payout['id']}/paid", world.as_("payments"), {"provider_ref": "t1"}
    )
    assert paid.status_code == 200, paid.text
    return order_id, order


async def _all_postings(world: World, party_id: str, role: str) -> list[dict[str, Any]]:
    postings: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        path = f"/v1/parties/{party_id}/ledger?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await world.call("GET", path, world.as_(role))
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["data"]) <= 2
        postings.extend(body["data"])
        if not body["has_more"]:
            return postings
        cursor = body["next_cursor"]


async def test_the_ledger_pages_and_the_balances_follow_the_payout(world: World) -> None:
    order_id, order = await _paid_out(world)
    amounts, (payout,) = order["amounts"], order["payouts"]
    gross, fee, net = amounts["released"], amounts["fees"], payout["amount"]
    supplier_account = f"supplier:{world.supplier_id}"

    postings = await _all_postings(world, world.supplier_id, "supplier")
    assert {p["account"] for p in postings} == {supplier_account}
    # The release, the fee (if any), the payout pending, then posted: over two pages or more.
    assert len(postings) == (4 if fee else 3)
    assert [p["id"] for p in postings] == sorted({p["id"] for p in postings})
    assert all(p["order_id"] == order_id and p["currency"] == "USD" for p in postings)
    assert not any(p["legacy"] for p in postings)
    by_phase: dict[str, int] = {}
    for p in postings:
        by_phase[p["phase"]] = by_phase.get(p["phase"], 0) + p["amount"]
    assert by_phase == {"posted": gross - fee - net, "pending": -net}
    settled = [p for p in postings if p["pending_id"] is not None]
    assert [(p["phase"], p["amount"]) for p in settled] == [("posted", -net)]
    assert set(postings[0]) == {
        "id",
        "transfer_id",
        "order_id",
        "event_id",
        "at",
        "account",
        "amount",
        "currency",
        "phase",
        "pending_id",
        "legacy",
    }

    balances = await world.call(
        "GET", f"/v1/parties/{world.supplier_id}/balances", world.as_("supplier")
    )
    assert balances.status_code == 200, balances.text
    body = balances.json()
    assert body["accounts"] == [
        {"account": supplier_account, "currency": "USD", "posted": 0, "pending": 0, "paid_out": net}
    ]
    assert body["balances"][0]["released"] == gross  # the v1 fields stay

    buyer = await world.call("GET", f"/v1/parties/{world.buyer_id}/balances", world.as_("buyer"))
    assert buyer.json()["accounts"] == []  # nothing refunded: no buyer account yet
    assert await _all_postings(world, world.buyer_id, "agent_for_buyer") == []


async def test_a_refunded_buyers_accounts_and_who_may_read_a_ledger(world: World) -> None:
    order_id = await world.order("cancelled")
    paid = await world.pay(order_id, 7_000, "late")
    (refund,) = paid["refunds"]
    buyer_account = f"buyer:{world.buyer_id}"

    def balances_of(answer: Any) -> list[dict[str, Any]]:
        assert answer.status_code == 200, answer.text
        return list(answer.json()["accounts"])

    path = f"/v1/parties/{world.buyer_id}/balances"
    assert balances_of(await world.call("GET", path, world.as_("buyer"))) == [
        {
            "account": buyer_account,
            "currency": "USD",
            "posted": 7_000,
            "pending": -7_000,
            "paid_out": 0,
        }
    ]
    done = await world.call(
        "POST",
        f"/v1/refunds/{refund['id']}/succeeded",
        world.as_("payments"),
        {"provider_ref": "r"},
    )
    assert done.status_code == 200, done.text
    for role in ("buyer", "agent_for_buyer", "agent", "payments", "admin"):
        assert balances_of(await world.call("GET", path, world.as_(role))) == [
            {
                "account": buyer_account,
                "currency": "USD",
                "posted": 0,
                "pending": 0,
                "paid_out": 7_000,  # what came back
            }
        ], role
        ledger = await world.call("GET", f"/v1/parties/{world.buyer_id}/ledger", world.as_(role))
        assert ledger.status_code == 200, role
        assert len(ledger.json()["data"]) == 3, role
    for role in ("supplier", "other_buyer", "mediator", "agent_for_supplier"):
        for what in ("ledger", "balances"):
            answer = await world.call(
                "GET", f"/v1/parties/{world.buyer_id}/{what}", world.as_(role)
            )
            assert (answer.status_code, answer.json()["code"]) == (404, "party_not_found"), role
    unknown = await world.call("GET", "/v1/parties/pty_nobody/ledger", world.as_("payments"))
    assert unknown.status_code == 404
    bad = await world.call(
        "GET", f"/v1/parties/{world.buyer_id}/ledger?cursor=nonsense", world.as_("buyer")
    )
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_cursor")


async def _feed_types(world: World, role: str, order_id: str) -> set[str]:
    types: set[str] = set()
    cursor: str | None = None
    while True:
        path = "/v1/events?limit=100" + (f"&cursor={cursor}" if cursor else "")
        page = (await world.call("GET", path, world.as_(role))).json()
        types |= {e["type"] for e in page["data"] if e["order_id"] == order_id}
        if not page["has_more"]:
            return types
        cursor = page["next_cursor"]


def _endpoint(owner: str | None) -> Endpoint:
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    return Endpoint(
        id="whe_1",
        owner_party_id=owner,
        url="https://example.com",
        event_types=("*",),
        enabled=True,
        disabled_reason=None,
        secret="whsec_x",
        previous_secret=None,
        previous_secret_expires_at=None,
        failing_since=None,
        created_at=long_ago,
        updated_at=long_ago + timedelta(seconds=1),
    )


async def test_the_feed_and_webhooks_show_money_out_per_side(world: World, store: Store) -> None:
    order_id, _order = await _paid_out(world)  # payout.paid
    paid = await world.pay(order_id, 100, "late")  # refund.issued (order_not_payable)
    (refund,) = paid["refunds"]
    failed = await world.call(
        "POST", f"/v1/refunds/{refund['id']}/failed", world.as_("payments"), {"reason": "x"}
    )
    assert failed.status_code == 200, failed.text
    money = {"payout.paid", "refund.issued", "refund.failed"}
    # On PostgreSQL the feed's commit-safe head waits for every older transaction on the
    # server (another test's among them): read it once the head has passed this order.
    last = (await store.stream(order_id))[-1].position
    deadline = asyncio.get_running_loop().time() + 15
    while (await store.log_head()).position < last:
        assert asyncio.get_running_loop().time() < deadline, "the head never passed the order"
        await asyncio.sleep(0.05)

    seen = {
        role: await _feed_types(world, role, order_id) & money
        for role in ("buyer", "supplier", "agent", "payments")
    }
    assert seen == {
        "buyer": {"refund.issued", "refund.failed"},
        "supplier": {"payout.paid", "refund.issued"},
        "agent": money,  # it manages both sides of this trade
        "payments": money,
    }

    events = await store.stream(order_id, after_version=0, up_to_version=1000)
    found = await audiences(store, events)

    def delivered(owner: str | None) -> set[str]:
        endpoint = _endpoint(owner)
        return {
            e.type
            for e in events
            if e.type in money and matches(endpoint, e, found[e.position], replay=False)
        }

    assert delivered(world.buyer_id) == {"refund.issued", "refund.failed"}
    assert delivered(world.supplier_id) == {"payout.paid", "refund.issued"}
    assert delivered(world.agent_id) == money
    assert delivered(None) == money
    assert delivered(world.other_buyer_id) == set()
