"""Escrow-Correlation-Id and causation (DESIGN 7.3).

The header is stored as ``correlation_id`` in the metadata of the events a request writes,
shown on those events in the timeline and the feed, and echoed; a bad one is 422
``invalid_correlation_id``. A timer's events carry as ``causation_id`` the event that set the
deadline which fired (and that event's correlation id on).
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from escrow_core.application.timers import fire_due_timers
from escrow_core.store import Store
from support.api import Api, running_api
from support.api import test_settings as settings_for

from .world import World, build_world

DAY = 86_400


async def _timeline(api: Api, order_id: str) -> list[dict[str, Any]]:
    answer = await api.client.get(f"/v1/orders/{order_id}/events?limit=100", headers=api.admin)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"])


async def test_the_correlation_id_is_stored_shown_and_echoed(world: World) -> None:
    order_id = await world.place()
    accepted = await world.call(
        "POST",
        f"/v1/orders/{order_id}/accept",
        {**world.as_("supplier"), "Escrow-Correlation-Id": "erp-42/accept"},
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.headers["escrow-correlation-id"] == "erp-42/accept"
    plain = await world.call("GET", f"/v1/orders/{order_id}", world.as_("buyer"))
    assert "escrow-correlation-id" not in plain.headers

    placed, accept = await _timeline(world.api, order_id)
    assert (placed["correlation_id"], placed["causation_id"]) == (None, None)
    assert (accept["type"], accept["correlation_id"]) == ("order.accepted", "erp-42/accept")
    assert accept["causation_id"] is None
    for _ in range(200):  # the feed (PostgreSQL holds back what may still have company)
        feed = await world.call("GET", f"/v1/events?order_id={order_id}", world.as_("buyer"))
        if len(feed.json()["data"]) == 2:
            break
        await asyncio.sleep(0.05)
    assert [e["correlation_id"] for e in feed.json()["data"]] == [None, "erp-42/accept"]
    stored = await world.api.app.state.runtime.store.stream(order_id)
    assert stored[1].metadata["correlation_id"] == "erp-42/accept"


@pytest.mark.parametrize(
    "value",
    ["x" * 201, "", "tab\there", "caf\u00e9", "line\x7f"],
    ids=["long", "empty", "tab", "latin1", "del"],
)
async def test_a_bad_correlation_id_is_refused_before_anything_is_written(
    world: World, value: str
) -> None:
    order_id = await world.place()
    answer = await world.call(
        "POST",
        f"/v1/orders/{order_id}/accept",
        {**world.as_("supplier"), "Escrow-Correlation-Id": value.encode("latin-1")},
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "invalid_correlation_id"
    assert [e["type"] for e in await _timeline(world.api, order_id)] == ["order.placed"]


async def test_the_longest_correlation_id_is_taken(world: World) -> None:
    value = "c" * 200
    order_id = await world.place()
    answer = await world.call(
        "POST",
        f"/v1/orders/{order_id}/accept",
        {**world.as_("supplier"), "Escrow-Correlation-Id": value},
    )
    assert answer.status_code == 200, answer.text
    assert (await _timeline(world.api, order_id))[-1]["correlation_id"] == value


@pytest.fixture
async def sandbox(fresh_store: Store) -> AsyncIterator[World]:
    async with running_api(settings_for(fresh_store.url, sandbox=True)) as api:
        yield await build_world(api)


async def _advance(world: World, days: float) -> None:
    answer = await world.call(
        "POST", "/v1/sandbox/clock", world.admin, {"advance_seconds": int(days * DAY)}
    )
    assert answer.status_code == 200, answer.text


async def _fire(world: World) -> int:
    return len(await fire_due_timers(world.api.app.state.runtime.commands))


async def test_a_timers_events_name_the_event_that_set_its_deadline(sandbox: World) -> None:
    world = sandbox
    # accept_by runs from the placement: the placement is the cause.
    unaccepted = await world.place()
    extended = await world.call(
        "POST",
        f"/v1/orders/{await world.order('delivered')}/extend",
        {**world.as_("buyer"), "Escrow-Correlation-Id": "ext-7"},
        {"deadline": "inspection", "days": 3},
    )
    assert extended.status_code == 200, extended.text
    delivered = extended.json()["id"]

    await _advance(world, 31)  # past accept_by (30 days) and the extended inspection (15 + 3)
    assert await _fire(world) == 2

    events = await _timeline(world.api, unaccepted)
    [(cancelled, refunds)] = [
        (e, [r for r in events if r["type"] == "refund.issued"])
        for e in events
        if e["type"] == "order.cancelled"
    ]
    assert refunds == []  # nothing was paid
    assert cancelled["causation_id"] == events[0]["id"]
    assert events[0]["type"] == "order.placed"
    assert cancelled["correlation_id"] is None
    assert cancelled["actor"]["role"] == "system"

    # The inspection window was moved by the buyer's extension: that is the cause, and the
    # extension's correlation id follows through to what the timer did.
    events = await _timeline(world.api, delivered)
    [extension] = [e for e in events if e["type"] == "deadline.extended"]
    fired = events[events.index(extension) + 1 :]
    assert [e["type"] for e in fired] == ["receipt.confirmed", "funds.released"]
    for event in fired:
        assert event["causation_id"] == extension["id"]
        assert event["correlation_id"] == "ext-7"
