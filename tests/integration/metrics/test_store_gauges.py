"""The database gauges on /metrics follow the database, and cost an index lookup each.

    escrow_webhook_deliveries{status="pending"}   rows the dispatcher wrote, not yet delivered
    escrow_timers_due                             orders whose deadline has passed, not fired
    escrow_log_head_position                      the last event a commit-safe reader may read
    escrow_webhook_dispatcher_position            the last event turned into deliveries
    escrow_store_up                               1 when they were read for this scrape

Driven in process (dispatcher and timers called directly, no worker), so each step's figures
are exact.
"""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from escrow_core.application.gauges import GaugeReader
from escrow_core.application.timers import fire_due_timers
from escrow_core.store import Store, open_store
from escrow_core.store.gauges import gauges_query
from escrow_core.webhooks.dispatcher import dispatch_once
from support.api import Api, order_terms, running_api
from support.api import test_settings as settings_for

from .conftest import Samples, scrape, value

DAY = 86_400


@pytest.fixture
async def api(fresh_store: Store) -> AsyncIterator[Api]:
    settings = settings_for(fresh_store.url, sandbox=True, webhook_allow_private=True)
    async with running_api(settings) as running:
        # No sharing between scrapes: each step reads the database again.
        running.app.state.gauge_reader = GaugeReader(running.app.state.runtime.store, max_age=0)
        yield running


async def _head_reaching(store: Store, position: int, within: float = 15) -> int:
    """The log head once it has reached ``position``: on PostgreSQL the commit-safe head waits
    for every older transaction on the server, another test's among them."""
    deadline = asyncio.get_running_loop().time() + within
    while (head := (await store.log_head()).position) < position:
        assert asyncio.get_running_loop().time() < deadline, f"the head stayed at {head}"
        await asyncio.sleep(0.05)
    return head


def gauges(samples: Samples) -> dict[str, float | None]:
    return {
        "up": value(samples, "escrow_store_up"),
        "pending": value(samples, "escrow_webhook_deliveries", status="pending"),
        "timers_due": value(samples, "escrow_timers_due"),
        "head": value(samples, "escrow_log_head_position"),
        "dispatched": value(samples, "escrow_webhook_dispatcher_position"),
    }


async def test_the_gauges_follow_dispatching_and_timers(api: Api) -> None:
    store: Store = api.app.state.runtime.store
    first = await scrape(api.client)
    assert gauges(first) == {"up": 1, "pending": 0, "timers_due": 0, "head": 0, "dispatched": 0}
    # One process: its own process and Python collectors are shown.
    assert value(first, "process_cpu_seconds_total") is not None

    hook = await api.client.post(
        "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hook"}, headers=api.admin
    )
    assert hook.status_code == 201, hook.text
    _, buyer = await api.party_with_key("buyer")
    supplier, _ = await api.party_with_key("supplier", trade_assurance=True)
    for _ in range(2):
        placed = await api.client.post(
            "/v1/orders", json=order_terms(supplier["id"]), headers=buyer
        )
        assert placed.status_code == 201, placed.text
    head = await _head_reaching(store, 2)
    assert gauges(await scrape(api.client)) == {
        "up": 1,
        "pending": 0,
        "timers_due": 0,
        "head": head,
        "dispatched": 0,
    }

    dispatched = await dispatch_once(store, (0,))
    assert dispatched.deliveries >= 2
    assert gauges(await scrape(api.client)) == {
        "up": 1,
        "pending": dispatched.deliveries,
        "timers_due": 0,
        "head": head,
        "dispatched": head,
    }

    # Past the 30 days a supplier has to accept: both orders' timers are due, then fired.
    moved = await api.client.post(
        "/v1/sandbox/clock", json={"advance_seconds": 31 * DAY}, headers=api.admin
    )
    assert moved.status_code == 200, moved.text
    assert gauges(await scrape(api.client))["timers_due"] == 2
    assert len(await fire_due_timers(api.app.state.runtime.commands)) == 2
    # Two cancellations: the head moves on once no older transaction holds it back.
    fired_head = await _head_reaching(store, head + 2)
    after = gauges(await scrape(api.client))
    assert after["timers_due"] == 0
    assert after["head"] == fired_head == head + 2


async def test_a_scrape_answers_without_the_database(api: Api) -> None:
    away = open_store("postgresql+asyncpg://escrow@127.0.0.1:1/away")  # nothing listens there
    api.app.state.gauge_reader = GaugeReader(away, max_age=0, timeout=1)
    try:
        samples = await scrape(api.client)
    finally:
        await away.dispose()
    assert gauges(samples) == {
        "up": 0,
        "pending": None,
        "timers_due": None,
        "head": None,
        "dispatched": None,
    }
    assert value(samples, "python_info", **python_labels(samples)) == 1


def python_labels(samples: Samples) -> dict[str, str]:
    return next(dict(labels) for name, labels in samples if name == "python_info")


async def test_the_gauges_read_no_whole_table(store: Store) -> None:
    """Each figure is read through an index (PostgreSQL: EXPLAIN with sequential scans
    priced out; SQLite: EXPLAIN QUERY PLAN), so a scrape costs the same on a large log."""
    query = gauges_query(datetime.now(UTC))
    async with store.read() as conn:
        if store.dialect == "postgresql":
            await conn.execute(sa.text("SET enable_seqscan = off"))
            try:
                plan = await conn.execute(sa.text(f"EXPLAIN {_literal(query, conn)}"))
                lines = [row[0] for row in plan]
            finally:
                await conn.execute(sa.text("RESET enable_seqscan"))
            assert lines
            assert not [line for line in lines if "Seq Scan" in line], lines
            for table in ("webhook_deliveries", "order_view", "webhook_dispatch_checkpoint"):
                # Pending deliveries: either partial index on pending rows will do.
                assert any(f" on {table}" in line and "Index" in line for line in lines), lines
        else:
            plan = await conn.execute(sa.text(f"EXPLAIN QUERY PLAN {_literal(query, conn)}"))
            lines = [row[-1] for row in plan]
            tables = [line for line in lines if line.startswith(("SCAN", "SEARCH"))]
            scans = [line for line in tables if line != "SCAN CONSTANT ROW"]
            assert len(scans) == 3, lines
            assert all("INDEX" in line for line in scans), lines


def _literal(query: sa.Select[Any], conn: Any) -> str:
    return str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
