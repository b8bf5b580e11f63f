"""``GET /v1/parties/{id}/performance`` over HTTP on both backends, kept by the real worker
loop (DESIGN 7.2, 7.7): any key reads a supplier's figures; a party that is no supplier, or
none at all, is a 404 with its own code."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from escrow_core.application.runtime import Runtime, open_runtime
from escrow_core.settings import Settings
from escrow_core.store import Store
from escrow_worker.worker import Worker
from support.performance import last_position

from .world import World


@pytest.fixture
async def runtime(fresh_store: Store) -> AsyncIterator[Runtime]:
    async with open_runtime(Settings(database_url=fresh_store.url)) as opened:
        yield opened


async def _performance(world: World, party_id: str, role: str) -> Any:
    return await world.call("GET", f"/v1/parties/{party_id}/performance", world.as_(role))


async def test_the_worker_keeps_the_figures_any_key_reads(
    fresh_world: World, runtime: Runtime
) -> None:
    # Given a supplier with a completed order and a disputed one, before any worker ran
    world = fresh_world
    await world.order("completed")
    await world.order("disputed")
    head = await last_position(runtime.store)
    before = (await _performance(world, world.supplier_id, "buyer")).json()
    assert (before["orders_accepted"], before["as_of_position"]) == (0, 0)

    # When the worker runs
    worker = Worker(runtime)
    running = asyncio.create_task(worker.run())
    try:
        for _ in range(300):
            body = (await _performance(world, world.supplier_id, "other_buyer")).json()
            if body["as_of_position"] >= head:
                break
            await asyncio.sleep(0.1)
    finally:
        worker.stop()
        await running

    # Then any key reads what it applied, up to the log's head
    assert body == {
        "party_id": world.supplier_id,
        "orders_accepted": 2,
        "shipped_on_time": 2,
        "shipped_late": 0,
        "completed": 1,
        "disputed": 1,
        "claims": 0,
        "refunded_share": "0.0000",
        "median_days_to_ship": 0.0,
        "as_of_position": head,
        "by_currency": [
            {"currency": "USD", "paid": body["by_currency"][0]["paid"], "refunded": 0,
             "refunded_share": "0.0000"}
        ],
    }  # fmt: skip
    assert body["by_currency"][0]["paid"] > 0
    for role in ("supplier", "other_supplier", "payments", "mediator", "agent"):
        assert (await _performance(world, world.supplier_id, role)).json() == body


async def test_a_party_that_is_no_supplier_or_none_at_all_is_not_found(world: World) -> None:
    buyer = await _performance(world, world.buyer_id, "buyer")
    assert buyer.status_code == 404
    assert buyer.headers["content-type"] == "application/problem+json"
    assert buyer.json()["code"] == "party_not_supplier"
    for unknown in ("pty_nobody", "nonsense"):
        missing = await _performance(world, unknown, "supplier")
        assert (missing.status_code, missing.json()["code"]) == (404, "party_not_found")
