"""The dispatcher (log -> delivery rows) and the senders' claims, without a worker loop."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from escrow_core.store.schema import events, webhook_deliveries, webhook_dispatch_checkpoint
from escrow_core.webhooks.dispatcher import CHECKPOINT_NAME, dispatch_once
from escrow_core.webhooks.sender import Sender, SenderSettings
from support.api import auth

from .conftest import Cast, Hooks

SCHEDULE = (0.0, 0.2)


async def delivery_count(hooks: Hooks) -> int:
    async with hooks.store.read() as conn:
        query = sa.select(sa.func.count()).select_from(webhook_deliveries)
        return int((await conn.execute(query)).scalar_one())


async def events_of(hooks: Hooks, order_id: str) -> int:
    return len(await hooks.store.stream(order_id))


async def dispatch_all(hooks: Hooks) -> int:
    """Dispatch until the checkpoint reaches the last event. (On PostgreSQL a transaction
    running anywhere on the server, another test's say, may hold the reader back a while.)"""
    async with hooks.store.read() as conn:
        last = (await conn.execute(sa.select(sa.func.max(events.c.position)))).scalar_one()
    written = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done = await dispatch_once(hooks.store, SCHEDULE)
        written += done.deliveries
        async with hooks.store.read() as conn:
            cp = webhook_dispatch_checkpoint.c
            query = sa.select(cp.position).where(cp.name == CHECKPOINT_NAME)
            if (await conn.execute(query)).scalar_one() >= (last or 0):
                return written
        if done.events == 0:
            await asyncio.sleep(0.05)
    raise AssertionError("the dispatcher never caught up")


async def test_each_endpoint_gets_exactly_the_events_its_owner_may_see(hooks: Hooks) -> None:
    api = hooks.api
    _, agent_auth = await api.party_with_key("agent")
    direct = await Cast.new(api)
    managed = await Cast.new(api, buyer_by=agent_auth)
    _, stranger_auth = await api.party_with_key("buyer")
    await hooks.endpoint("/direct-buyer", by=direct.buyer_auth)
    await hooks.endpoint("/managed-buyer", by=managed.buyer_auth)
    await hooks.endpoint("/agent", by=agent_auth)
    await hooks.endpoint("/stranger", by=stranger_auth)
    await hooks.endpoint("/direct-supplier", by=direct.supplier_auth)
    await hooks.endpoint("/admin-released", event_types=["funds.released"])
    # An agent acting for its party registers the party's own endpoint.
    on_behalf = auth(agent_auth["Authorization"].removeprefix("Bearer "), managed.buyer["id"])
    created = await hooks.endpoint("/managed-buyer-by-agent", by=on_behalf)
    assert created["owner_party_id"] == managed.buyer["id"]

    direct_order = await direct.place()
    await direct.to(direct_order, "completed")
    n = await events_of(hooks, direct_order)
    managed_order = await managed.place()  # 1 event
    async with hooks.worker():
        await hooks.receiver.until(lambda r: len(r.all()) == n + 1 + 1 + 1 + n + 1)

    def orders_at(path: str) -> list[tuple[str, str]]:
        return [(p["order_id"], p["type"]) for p in hooks.receiver.payloads(path)]

    assert len(orders_at("/direct-buyer")) == n
    assert {o for o, _ in orders_at("/direct-buyer")} == {direct_order}
    assert orders_at("/managed-buyer") == [(managed_order, "order.placed")]
    assert orders_at("/managed-buyer-by-agent") == [(managed_order, "order.placed")]
    assert orders_at("/agent") == [(managed_order, "order.placed")]
    assert orders_at("/stranger") == []
    assert {o for o, _ in orders_at("/direct-supplier")} == {direct_order}
    assert orders_at("/admin-released") == [(direct_order, "funds.released")]


async def test_events_from_before_an_endpoint_existed_are_not_sent(hooks: Hooks) -> None:
    cast = await Cast.new(hooks.api)
    before = await cast.place()
    await hooks.endpoint()
    after = await cast.place()

    await dispatch_all(hooks)

    async with hooks.store.read() as conn:
        rows = (await conn.execute(sa.select(webhook_deliveries.c.stream_id))).scalars().all()
    assert rows == [after]
    assert before not in rows


async def test_dispatching_again_from_the_start_adds_no_delivery(hooks: Hooks) -> None:
    await hooks.endpoint()
    cast = await Cast.new(hooks.api)
    order_id = await cast.place()
    await cast.to(order_id, "held")
    n = await events_of(hooks, order_id)

    assert await dispatch_all(hooks) == n
    async with hooks.store.read() as conn:
        checkpoint = (
            await conn.execute(
                sa.select(webhook_dispatch_checkpoint).where(
                    webhook_dispatch_checkpoint.c.name == CHECKPOINT_NAME
                )
            )
        ).one()
    head = await hooks.store.log_head()
    assert (checkpoint.transaction_id, checkpoint.position) == tuple(head)

    async with hooks.store.transaction() as conn:  # as if the checkpoint had been lost
        await conn.execute(
            webhook_dispatch_checkpoint.update()
            .where(webhook_dispatch_checkpoint.c.name == CHECKPOINT_NAME)
            .values(transaction_id=0, position=0)
        )
    await dispatch_all(hooks)

    assert await delivery_count(hooks) == n  # unique (endpoint, event)


@pytest.mark.postgres_only
async def test_concurrent_dispatchers_take_turns(hooks: Hooks) -> None:
    await hooks.endpoint()
    cast = await Cast.new(hooks.api)
    n = 0
    for _ in range(5):
        order_id = await cast.place()
        await cast.to(order_id, "held")
        n += await events_of(hooks, order_id)

    results = await asyncio.gather(*(dispatch_once(hooks.store, SCHEDULE) for _ in range(4)))

    assert sum(1 for r in results if r.events) <= 1  # the others skipped their turn
    await dispatch_all(hooks)
    assert await delivery_count(hooks) == n


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The senders' HTTP client (claiming never posts; closed after the test all the same)."""
    async with httpx.AsyncClient() as http:
        yield http


@pytest.fixture
def sender(hooks: Hooks, client: httpx.AsyncClient) -> Callable[[str], Sender]:
    settings = SenderSettings(
        schedule=SCHEDULE, lease_seconds=30, total_timeout=2, disable_after_seconds=3600
    )
    return lambda name: Sender(hooks.store, settings, client, worker=name)


async def test_only_the_first_pending_event_of_an_order_can_be_claimed(
    hooks: Hooks, sender: Callable[[str], Sender]
) -> None:
    await hooks.endpoint()
    cast = await Cast.new(hooks.api)
    orders = [await cast.place() for _ in range(3)]
    for order_id in orders:
        await cast.to(order_id, "accepted")
    await dispatch_all(hooks)

    claimed = await sender("a").claim(100)

    assert len(claimed) == 3  # one per order: each order's order.placed
    firsts = [(await hooks.store.stream(order_id))[0] for order_id in orders]
    assert {e.type for e in firsts} == {"order.placed"}
    assert sorted(c.message_id for c in claimed) == sorted(f"evt_{e.event_id.hex}" for e in firsts)
    assert await sender("b").claim(100) == []  # leased, and the rest wait their turn


@pytest.mark.postgres_only
async def test_concurrent_senders_claim_disjoint_deliveries(
    hooks: Hooks, sender: Callable[[str], Sender]
) -> None:
    await hooks.endpoint()
    cast = await Cast.new(hooks.api)
    for _ in range(40):
        await cast.place()
    await dispatch_all(hooks)
    senders = [sender(f"s{i}") for i in range(4)]

    batches = await asyncio.gather(*(s.claim(10) for s in senders))

    ids = [c.delivery_id for batch in batches for c in batch]
    assert len(ids) == len(set(ids)) == 40  # no delivery claimed twice
    assert [len(batch) for batch in batches] == [10, 10, 10, 10]


async def test_an_expired_lease_is_taken_over(
    hooks: Hooks, sender: Callable[[str], Sender]
) -> None:
    await hooks.endpoint()
    cast = await Cast.new(hooks.api)
    await cast.place()
    await dispatch_all(hooks)
    [first] = await sender("crashed").claim(10)
    assert await sender("other").claim(10) == []

    async with hooks.store.transaction() as conn:  # the crashed sender's lease runs out
        await conn.execute(
            webhook_deliveries.update().values(
                locked_until=datetime.now(UTC) - timedelta(seconds=1)
            )
        )
    [again] = await sender("other").claim(10)

    assert again.delivery_id == first.delivery_id
    assert again.lease_token != first.lease_token
    assert again.attempt == first.attempt == 1  # the crashed attempt was never recorded
