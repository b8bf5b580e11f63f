"""GET /v1/events filters: ``type`` (repeatable), ``order_id``, and ``from=head`` (DESIGN 7.3).

Filters narrow the commit-order-safe read in the store; the cursor stays a log checkpoint, so
pages follow one another across a filter, and a head cursor taken with ``from=head`` tails
what comes next, filtered or not.
"""

import asyncio
import json
from typing import Any

import pytest

from escrow_core.store import Store
from escrow_core.store.postgres import PostgresStore, sql
from escrow_core.store.postgres.sql import NamedSQL

from .world import World


async def _pages(world: World, path: str, caller: str = "admin") -> list[dict[str, Any]]:
    pages, cursor = [], None
    for _ in range(100):
        url = path if cursor is None else f"{path}&cursor={cursor}"
        answer = await world.call("GET", url, world.as_(caller))
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        if not pages[-1]["has_more"]:
            return pages
        cursor = pages[-1]["next_cursor"]
    raise AssertionError("the feed never ended")


def _events(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for page in pages for event in page["data"]]


async def _until(world: World, path: str, count: int, caller: str = "admin") -> list[Any]:
    """The events at ``path`` once there are ``count``: on PostgreSQL the feed holds events
    back while an older transaction on the server (another suite's) may still commit."""
    for _ in range(200):
        events = _events(await _pages(world, path, caller))
        if len(events) >= count:
            return events
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never showed {count} events")


async def test_type_and_order_filters_page_in_commit_order_and_tail_from_the_head(
    fresh_world: World,
) -> None:
    world = fresh_world
    mine = await world.order("held")  # placed, accepted, 2 x (payment.received, funds.held)
    theirs = await world.place(buyer="other_buyer", supplier_id=world.other_supplier_id)
    await world.step(theirs, "accept", "other_supplier")
    everything = await _until(world, "/v1/events?limit=100", 8)
    assert len(everything) == 8

    wanted = ("order.placed", "order.accepted")
    filtered = await _pages(world, "/v1/events?limit=1&type=order.placed&type=order.accepted")
    assert [len(page["data"]) for page in filtered] == [1, 1, 1, 1]
    assert _events(filtered) == [e for e in everything if e["type"] in wanted]
    assert [(e["type"], e["order_id"]) for e in _events(filtered)] == [
        ("order.placed", mine),
        ("order.accepted", mine),
        ("order.placed", theirs),
        ("order.accepted", theirs),
    ]

    held = await _pages(world, f"/v1/events?limit=1&type=funds.held&order_id={mine}", "buyer")
    assert [e["type"] for e in _events(held)] == ["funds.held", "funds.held"]
    assert {e["order_id"] for e in _events(held)} == {mine}
    one_order = _events(await _pages(world, f"/v1/events?limit=2&order_id={mine}", "buyer"))
    assert one_order == [e for e in everything if e["order_id"] == mine]
    # A filter never widens what a caller sees.
    assert _events(await _pages(world, f"/v1/events?order_id={theirs}", "buyer")) == []
    placed_by_other = _events(await _pages(world, "/v1/events?type=order.placed", "other_buyer"))
    assert [e["order_id"] for e in placed_by_other] == [theirs]

    # A cursor from a filtered page goes on unfiltered, in the same order.
    [first, *_] = filtered
    rest = _events(await _pages(world, f"/v1/events?limit=3&cursor={first['next_cursor']}"))
    assert rest == everything[1:]

    # from=head: nothing, and the cursor to tail from now on.
    head = await world.call("GET", "/v1/events?from=head&type=order.shipped", world.admin)
    assert head.status_code == 200, head.text
    page = head.json()
    assert page["data"] == []
    assert page["has_more"] is False
    assert page["next_cursor"]
    cursor = page["next_cursor"]
    assert _events(await _pages(world, f"/v1/events?cursor={cursor}")) == []

    await world.step(mine, "ship", "supplier", {"carrier": "DHL", "tracking_number": "9"})
    await world.step(theirs, "cancel", "other_buyer", {"reason": "changed plans"})
    news = await _until(world, f"/v1/events?limit=10&cursor={cursor}", 2)
    assert [(e["type"], e["order_id"]) for e in news] == [
        ("order.shipped", mine),
        ("order.cancelled", theirs),
    ]
    shipped = _events(await _pages(world, f"/v1/events?type=order.shipped&cursor={cursor}"))
    assert [e["id"] for e in shipped] == [news[0]["id"]]
    as_buyer = _events(await _pages(world, f"/v1/events?cursor={cursor}", "buyer"))
    assert [e["id"] for e in as_buyer] == [news[0]["id"]]


async def test_bad_filters_are_refused_with_a_stable_code(world: World) -> None:
    for path, code, field in [
        ("/v1/events?type=order.teleported", "unknown_event_type", "type"),
        ("/v1/events?type=order.placed&type=nope", "unknown_event_type", "type"),
        ("/v1/events?from=tail", "validation_error", "from"),
        ("/v1/events?from=head&cursor=WzAsMF0", "cursor_with_from_head", "from"),
        ("/v1/events?order_id=whe_123", "validation_error", "order_id"),
        ("/v1/events?order_id=" + "ord_" + "x" * 100, "validation_error", "order_id"),
        ("/v1/events?" + "&".join(["type=order.placed"] * 51), "validation_error", "type"),
    ]:
        answer = await world.call("GET", path, world.as_("buyer"))
        assert answer.status_code == 422, (path, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        body = answer.json()
        assert body["code"] == code, path
        assert body["errors"][0]["field"] == field, path


async def test_every_type_the_log_holds_is_a_filter(world: World) -> None:
    for event_type in ("webhook.test", "webhook_endpoint.disabled", "refund.issued"):
        answer = await world.call("GET", f"/v1/events?type={event_type}", world.as_("buyer"))
        assert answer.status_code == 200, answer.text
        assert all(e["type"] == event_type for e in answer.json()["data"])


def _plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in _plan_nodes(child))]


@pytest.mark.postgres_only
async def test_a_type_filter_reads_an_ordered_range_of_the_type_index(fresh_store: Store) -> None:
    """EXPLAIN of the store's type-filtered read on a log of 20,000 events: each wanted type is
    an index range in commit order (no sort of all its events), and one order is its stream."""
    assert isinstance(fresh_store, PostgresStore)
    types = [f"t.{n}" for n in range(10)]
    async with fresh_store.raw() as conn:
        await conn.execute(
            """
            INSERT INTO events (stream_id, version, event_id, type, data, metadata, recorded_at)
            SELECT 'ord_' || (g / 10), g % 10 + 1, gen_random_uuid(),
                   ($1::text[])[g % 10 + 1], '{}', '{}', now()
            FROM generate_series(0, 19999) g
            """,
            types,
        )
        await conn.execute("ANALYZE events")
        values = {"transaction_id": "0", "position": 0, "limit": 501}

        async def plan(statement: NamedSQL, **more: Any) -> list[dict[str, Any]]:
            explained = await conn.fetchval(
                f"EXPLAIN (FORMAT JSON) {statement.sql}", *statement.args({**values, **more})
            )
            document = json.loads(explained) if isinstance(explained, str) else explained
            return _plan_nodes(document[0]["Plan"])

        by_type = await plan(sql.READ_LOG_OF_TYPES, types=["t.3", "t.7"])
        scans = [n for n in by_type if n.get("Relation Name") == "events"]
        assert [(n["Node Type"], n.get("Index Name")) for n in scans] == [
            ("Index Scan", "events_type_idx")
        ]
        by_order = await plan(sql.READ_LOG_OF_STREAM, stream_id="ord_77", types=["t.3"])
        assert {n.get("Index Name") for n in by_order} >= {"events_stream_id_version_key"}
