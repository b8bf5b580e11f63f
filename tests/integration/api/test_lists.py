"""Lists: ``limit`` (1-100, default 20) and an opaque ``cursor``, answered as
``{data, next_cursor, has_more}``, each showing only what the caller may see."""

import asyncio
from collections.abc import Callable
from typing import Any

from support.api import order_terms

from .world import World


async def _pages(world: World, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every page of ``path`` (which has a ``limit``), checking the page shape on the way."""
    pages, cursor = [], None
    for _ in range(100):
        url = path if cursor is None else f"{path}&cursor={cursor}"
        answer = await world.call("GET", url, headers)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert set(page) == {"data", "next_cursor", "has_more"}
        pages.append(page)
        if not page["has_more"]:
            return pages
        assert page["next_cursor"]
        cursor = page["next_cursor"]
    raise AssertionError("the list never ended")


async def _once(
    world: World, path: str, done: Callable[[list[dict[str, Any]]], bool], caller: str = "admin"
) -> list[dict[str, Any]]:
    """The pages of ``path`` once ``done(pages)``, polling for up to ten seconds."""
    for _ in range(100):
        pages = await _pages(world, path, world.as_(caller))
        if done(pages):
            return pages
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never showed what was expected")


def _ids(pages: list[dict[str, Any]], key: str = "id") -> list[str]:
    return [item[key] for page in pages for item in page["data"]]


async def test_orders_page_newest_first_with_filters_and_only_what_the_caller_sees(
    world: World,
) -> None:
    mine = [await world.place() for _ in range(5)]
    theirs = [await world.place(buyer="other_buyer") for _ in range(2)]
    for order_id in mine[:2]:
        await world.step(order_id, "accept", "supplier")
    newest_first = list(reversed(mine))

    pages = await _pages(world, "/v1/orders?limit=2", world.as_("buyer"))
    assert [len(page["data"]) for page in pages] == [2, 2, 1]
    assert pages[-1]["next_cursor"] is None
    assert _ids(pages) == newest_first
    default = await world.call("GET", "/v1/orders", world.as_("buyer"))
    assert _ids([default.json()]) == newest_first  # the default limit (20) holds them all
    hundred = await world.call("GET", "/v1/orders?limit=100", world.as_("buyer"))
    assert hundred.status_code == 200

    every = set(mine + theirs)
    seen_by = {
        "buyer": set(mine),
        "agent_for_buyer": set(mine),
        "other_buyer": set(theirs),
        "supplier": every,
        "agent_for_supplier": every,
        "agent": every,
        "other_supplier": set(),
    }
    for caller, expected in seen_by.items():
        pages = await _pages(world, "/v1/orders?limit=3", world.as_(caller))
        assert set(_ids(pages)) == expected, caller
    for caller in ("admin", "mediator", "payments"):
        path = f"/v1/orders?limit=4&supplier_id={world.supplier_id}"
        assert set(_ids(await _pages(world, path, world.as_(caller)))) == every, caller

    filtered = {
        "status=accepted": set(mine[:2]),
        "status=placed": set(mine[2:]),
        f"buyer_id={world.buyer_id}": set(mine),
        f"buyer_id={world.other_buyer_id}": set(),  # not the buyer's to see
        f"supplier_id={world.supplier_id}": set(mine),
        f"supplier_id={world.supplier_id}&status=placed": set(mine[2:]),
    }
    for query, expected in filtered.items():
        pages = await _pages(world, f"/v1/orders?limit=1&{query}", world.as_("buyer"))
        assert set(_ids(pages)) == expected, query
    supplier_view = await _pages(
        world, f"/v1/orders?limit=2&buyer_id={world.other_buyer_id}", world.as_("supplier")
    )
    assert set(_ids(supplier_view)) == set(theirs)


async def test_an_orders_cursor_survives_new_orders(world: World) -> None:
    first_three = [await world.place() for _ in range(3)]
    page = (await world.call("GET", "/v1/orders?limit=2", world.as_("buyer"))).json()
    assert _ids([page]) == first_three[:0:-1]
    newer = await world.place()
    rest = await world.call(
        "GET", f"/v1/orders?limit=2&cursor={page['next_cursor']}", world.as_("buyer")
    )
    assert _ids([rest.json()]) == [first_three[0]]
    assert newer not in _ids([rest.json()])


async def test_an_orders_timeline_pages_oldest_first(world: World) -> None:
    order_id = await world.order("countered")
    everything = await world.call(
        "GET", f"/v1/orders/{order_id}/events?limit=100", world.as_("buyer")
    )
    events = everything.json()["data"]
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert len(events) >= 8
    pages = await _pages(world, f"/v1/orders/{order_id}/events?limit=3", world.as_("supplier"))
    assert [len(p["data"]) for p in pages[:-1]] == [3] * (len(pages) - 1)
    assert _ids(pages) == [e["id"] for e in events]
    assert pages[-1]["next_cursor"] is None
    default = await world.call("GET", f"/v1/orders/{order_id}/events", world.as_("mediator"))
    assert len(default.json()["data"]) == min(20, len(events))
    positions = [e["position"] for e in events]
    assert positions == sorted(positions)


async def test_the_event_feed_pages_after_a_cursor_and_shows_each_caller_its_own(
    fresh_world: World,
) -> None:
    world = fresh_world
    mine = await world.order("held")  # the trade's buyer and supplier (agent-managed)
    theirs = await world.place(buyer="other_buyer", supplier_id=world.other_supplier_id)

    def orders_of(pages: list[dict[str, Any]]) -> set[str]:
        return {event["order_id"] for page in pages for event in page["data"]}

    # On PostgreSQL the feed holds back events while any older transaction on the server may
    # still commit (commit-order-safe reading): other suites' open transactions delay them.
    # Transactions here run one after another, so once the last one shows, all earlier do.
    everything = await _once(world, "/v1/events?limit=100", lambda p: theirs in orders_of(p))
    assert orders_of(everything) == {mine, theirs}
    all_ids = _ids(everything)
    paged = await _pages(world, "/v1/events?limit=2", world.as_("mediator"))
    assert _ids(paged) == all_ids
    positions = [event["position"] for page in paged for event in page["data"]]
    assert positions == sorted(positions)
    for caller, expected in {
        "buyer": {mine},
        "agent_for_supplier": {mine},
        "agent": {mine},
        "other_buyer": {theirs},
        "other_supplier": {theirs},
        "payments": {mine, theirs},
    }.items():
        assert orders_of(await _pages(world, "/v1/events?limit=2", world.as_(caller))) == expected

    # A consumer polls from the last cursor: only what happened since comes back.
    tail = (await _pages(world, "/v1/events?limit=50", world.as_("buyer")))[-1]
    assert tail["has_more"] is False
    assert tail["next_cursor"], "the feed always gives a cursor to poll from"
    nothing_yet = await world.call(
        "GET", f"/v1/events?cursor={tail['next_cursor']}", world.as_("buyer")
    )
    assert nothing_yet.json()["data"] == []
    await world.step(mine, "ship", "supplier", {"carrier": "DHL", "tracking_number": "9"})
    await world.step(theirs, "accept", "other_supplier")
    news = await _once(
        world,
        f"/v1/events?limit=10&cursor={tail['next_cursor']}",
        lambda pages: bool(_ids(pages)),
        caller="buyer",
    )
    assert [(e["type"], e["order_id"]) for e in news[0]["data"]] == [("order.shipped", mine)]


async def test_the_mediation_queue_lists_open_and_escalated_disputes_oldest_first(
    fresh_world: World,
) -> None:
    world = fresh_world
    opened = [await world.order("disputed") for _ in range(3)]
    escalated = await world.order("escalated")
    withdrawn = await world.order("disputed")
    await world.step(withdrawn, "dispute/withdraw", "buyer")
    settled = await world.order("countered")
    await world.step(settled, "dispute/accept-offer", "buyer")
    await world.order("shipped")

    queue = [*opened, escalated]
    for caller in ("mediator", "admin"):
        pages = await _pages(world, "/v1/disputes?limit=2", world.as_(caller))
        assert [len(p["data"]) for p in pages] == [2, 2]
        assert _ids(pages, "order_id") == queue
        assert pages[-1]["next_cursor"] is None
    first = pages[0]["data"][0]
    assert set(first) == {
        "order_id", "kind", "status", "reason", "requested_refund", "opened_at", "escalated_at"
    }  # fmt: skip
    assert (first["kind"], first["status"], first["reason"], first["requested_refund"]) == (
        "dispute",
        "open",
        "quality",
        500_000,
    )
    assert first["escalated_at"] is None
    only_escalated = await world.call("GET", "/v1/disputes?status=escalated", world.admin)
    [row] = only_escalated.json()["data"]
    assert (row["order_id"], row["status"]) == (escalated, "escalated")
    assert row["escalated_at"] >= row["opened_at"]
    only_open = await world.call("GET", "/v1/disputes?status=open&limit=100", world.admin)
    assert _ids([only_open.json()], "order_id") == opened
    default = await world.call("GET", "/v1/disputes", world.as_("mediator"))
    assert _ids([default.json()], "order_id") == queue


async def test_balances_sum_each_currency_for_the_party_and_its_agent(world: World) -> None:
    completed = await world.order("completed")  # USD 10,050.00 released to the supplier
    refunded = await world.place(currency="JPY", payment_schedule=None)
    await world.step(refunded, "accept", "supplier")
    total = (await world.call("GET", f"/v1/orders/{refunded}", world.admin)).json()["total"]
    await world.pay(refunded, total, "jpy")
    await world.step(refunded, "cancel", "supplier", {"reason": "out of stock"})
    held = await world.order("held")
    assert completed
    assert held

    expected = [
        {"currency": "JPY", "currency_exponent": 0, "held": 0, "released": 0,
         "refunded": total, "fees": 0},
        {"currency": "USD", "currency_exponent": 2, "held": 1_005_000, "released": 1_005_000,
         "refunded": 0, "fees": 0},
    ]  # fmt: skip
    for party, callers in (
        (world.buyer_id, ("buyer", "agent_for_buyer", "agent", "admin")),
        (world.supplier_id, ("supplier", "agent_for_supplier", "agent", "admin")),
    ):
        for caller in callers:
            answer = await world.call("GET", f"/v1/parties/{party}/balances", world.as_(caller))
            assert answer.status_code == 200, (caller, answer.text)
            body = answer.json()
            assert (body["party_id"], body["balances"]) == (party, expected), caller
    nothing = await world.call(
        "GET", f"/v1/parties/{world.other_buyer_id}/balances", world.as_("other_buyer")
    )
    assert nothing.json() == {"party_id": world.other_buyer_id, "balances": [], "accounts": []}
    _ = order_terms  # the terms every order above was placed with
