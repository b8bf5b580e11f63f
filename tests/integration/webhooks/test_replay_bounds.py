"""A replay looks at a bounded part of the log per call and holds no transaction while it
scans (DESIGN 7.4): writers and log readers go on while a replay of a long log runs.

The bounds are shrunk for these tests (``bounds``), keeping their proportions (twenty pages a
call, many write batches a call): the rules are the same at any size, and a log of 500 events
is written and replayed in a fraction of the time 10,000 take.
"""

import asyncio
from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.store import LOG_START, RecordedEvent, Store
from escrow_core.store.schema import webhook_deliveries
from escrow_core.webhooks import deliveries
from escrow_core.webhooks.matching import Audience
from support.events import new_events, new_stream_id, now, tail_log

from .conftest import Cast, Hooks

BASE = "/v1/webhook-endpoints"


@dataclass(frozen=True)
class Bounds:
    scan_limit: int
    page: int
    write_batch: int


@pytest.fixture
def bounds(monkeypatch: pytest.MonkeyPatch) -> Bounds:
    """The replay's bounds, shrunk for the test (the service reads them at each call): twenty
    pages a call and 100 deliveries a write batch in production, twenty and 20 here."""
    shrunk = Bounds(scan_limit=500, page=25, write_batch=20)
    monkeypatch.setattr(deliveries, "REPLAY_SCAN_LIMIT", shrunk.scan_limit)
    monkeypatch.setattr(deliveries, "REPLAY_PAGE", shrunk.page)
    monkeypatch.setattr(deliveries, "REPLAY_WRITE_BATCH", shrunk.write_batch)
    return shrunk


async def _append(store: Store, count: int) -> list[RecordedEvent]:
    """``count`` events on one stream, in appends small enough for one statement each."""
    stream_id, appended = new_stream_id(), []
    for start in range(0, count, 1000):
        batch = new_events(min(1000, count - start))
        appended += await store.append(stream_id, start, batch, recorded_at=now())
    return appended


async def _replay(hooks: Hooks, endpoint: dict[str, Any], since_position: int) -> dict[str, Any]:
    response = await hooks.api.client.post(
        f"{BASE}/{endpoint['id']}/replay",
        json={"since_position": since_position},
        headers=hooks.api.admin,
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


async def _delivered_positions(store: Store, endpoint_id: str) -> list[int]:
    d = webhook_deliveries.c
    query = sa.select(d.event_position).where(d.endpoint_id == endpoint_id).order_by(d.id)
    async with store.read() as conn:
        return sorted(row.event_position for row in await conn.execute(query))


async def test_a_replay_past_the_bound_names_next_position_and_the_next_call_goes_on(
    hooks: Hooks, bounds: Bounds
) -> None:
    endpoint = await hooks.endpoint()
    appended = await _append(hooks.store, bounds.scan_limit + 50)

    first = await _replay(hooks, endpoint, appended[0].position)
    second = await _replay(hooks, endpoint, first["next_position"])

    assert first == {
        "endpoint_id": endpoint["id"],
        "enqueued": bounds.scan_limit,
        "has_more": True,
        "next_position": appended[bounds.scan_limit].position,
    }
    assert second == {
        "endpoint_id": endpoint["id"],
        "enqueued": 50,
        "has_more": False,
        "next_position": None,
    }
    positions = await _delivered_positions(hooks.store, endpoint["id"])
    assert positions == [event.position for event in appended]


async def test_the_bound_counts_events_looked_at_not_deliveries_made(
    hooks: Hooks, bounds: Bounds
) -> None:
    """An endpoint that matches none of a long log still gets an answer after the bound."""
    endpoint = await hooks.endpoint(event_types=["order.placed"])
    appended = await _append(hooks.store, bounds.scan_limit + 1)

    first = await _replay(hooks, endpoint, appended[0].position)
    second = await _replay(hooks, endpoint, first["next_position"])

    assert first == {
        "endpoint_id": endpoint["id"],
        "enqueued": 0,
        "has_more": True,
        "next_position": appended[-1].position,
    }
    assert second["has_more"] is False
    assert second["next_position"] is None
    assert await _delivered_positions(hooks.store, endpoint["id"]) == []


async def test_an_exact_bound_at_the_end_of_the_log_has_nothing_more(
    hooks: Hooks, bounds: Bounds
) -> None:
    endpoint = await hooks.endpoint()
    appended = await _append(hooks.store, bounds.scan_limit)

    replayed = await _replay(hooks, endpoint, appended[0].position)

    assert (replayed["enqueued"], replayed["has_more"]) == (bounds.scan_limit, False)
    assert replayed["next_position"] is None


class PausedScan:
    """Holds a replay between two pages of its scan until ``resume``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, pause_at_page: int) -> None:
        self.paused = asyncio.Event()
        self.resumed = asyncio.Event()
        self.pages = 0
        real = deliveries.audiences

        async def audiences(store: Store, page: Collection[RecordedEvent]) -> dict[int, Audience]:
            self.pages += 1
            if self.pages == pause_at_page:
                self.paused.set()
                await self.resumed.wait()
            return await real(store, page)

        monkeypatch.setattr(deliveries, "audiences", audiences)


async def test_writers_and_log_readers_go_on_while_a_replay_scans(
    hooks: Hooks, bounds: Bounds, monkeypatch: pytest.MonkeyPatch
) -> None:
    cast = await Cast.new(hooks.api)
    endpoint = await hooks.endpoint()
    appended = await _append(hooks.store, 2 * bounds.page + 200)
    head = (await tail_log(hooks.store, LOG_START, count=len(appended)))[1]
    scan = PausedScan(monkeypatch, pause_at_page=2)  # the first page is planned (or written)
    replay = asyncio.create_task(_replay(hooks, endpoint, appended[0].position))
    try:
        await asyncio.wait_for(scan.paused.wait(), timeout=10)

        # A command commits while the replay is halfway through its scan (on SQLite a
        # transaction held over the scan keeps the write lock: the command would wait)...
        order_id = await asyncio.wait_for(cast.place(), timeout=5)
        # ...and the log's readers see it (on PostgreSQL an open writing transaction older
        # than the command holds every commit-order reader back until it ends).
        seen, _ = await tail_log(hooks.store, head, count=1, streams={order_id}, give_up_after=3)
    finally:
        scan.resumed.set()
    replayed = await asyncio.wait_for(replay, timeout=30)

    assert [event.type for event in seen] == ["order.placed"]
    # The last page of the scan reads on past the appended events to the order just placed.
    assert replayed["enqueued"] == len(appended) + 1
    assert replayed["has_more"] is False


async def test_the_deliveries_are_written_a_batch_per_short_transaction(
    hooks: Hooks, bounds: Bounds, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer waits for one batch of a replay's writes at most, never for all of them."""
    endpoint = await hooks.endpoint()
    appended = await _append(hooks.store, bounds.scan_limit)
    written_in: list[list[int]] = []  # per transaction opened, the deliveries it enqueued
    real_transaction, real_enqueue = type(hooks.store).transaction, deliveries.enqueue_replay

    def transaction(store: Store) -> AbstractAsyncContextManager[AsyncConnection]:
        written_in.append([])
        return real_transaction(store)

    async def enqueue_replay(*args: Any, **kwargs: Any) -> int:
        written = await real_enqueue(*args, **kwargs)
        written_in[-1].append(written)
        return written

    monkeypatch.setattr(type(hooks.store), "transaction", transaction)
    monkeypatch.setattr(deliveries, "enqueue_replay", enqueue_replay)
    replayed = await _replay(hooks, endpoint, appended[0].position)

    per_transaction = [sum(written) for written in written_in if written]
    assert replayed["enqueued"] == sum(per_transaction) == bounds.scan_limit
    assert max(per_transaction) <= bounds.write_batch
