"""An endpoint is disabled on 410 or after failing for the disable period: never silently."""

import asyncio
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from escrow_core.store import Store, schema
from escrow_core.webhooks import endpoints
from escrow_core.webhooks.dispatcher import CHECKPOINT_NAME
from support.receiver import Answer, Delivery, Receiver

from .conftest import Cast, Hooks, hooks_on


async def disabled_events(hooks: Hooks, within: float = 10) -> list[dict[str, object]]:
    """The feed's webhook_endpoint.disabled events, once there are any. On PostgreSQL the feed
    holds an event back while an older transaction anywhere on the server is still open
    (commit-order-safe reading), so a test running beside others polls for it."""
    deadline = time.monotonic() + within
    while True:
        feed = await hooks.api.client.get(
            "/v1/events", params={"limit": 100}, headers=hooks.api.admin
        )
        assert feed.status_code == 200, feed.text
        found = [e for e in feed.json()["data"] if e["type"] == "webhook_endpoint.disabled"]
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


async def until_dispatched(hooks: Hooks, order_id: str, sequence: int) -> None:
    """Wait until the dispatcher's checkpoint has passed the order's event ``sequence``."""
    events = await hooks.api.client.get(f"/v1/orders/{order_id}/events", headers=hooks.api.admin)
    position = next(e["position"] for e in events.json()["data"] if e["sequence"] == sequence)
    checkpoint = schema.webhook_dispatch_checkpoint
    deadline = time.monotonic() + 10
    while True:
        async with hooks.store.read() as conn:
            dispatcher = checkpoint.c.name == CHECKPOINT_NAME
            query = sa.select(checkpoint.c.position).where(dispatcher)
            passed = (await conn.execute(query)).scalar_one()
        if passed >= position:
            return
        assert time.monotonic() < deadline, "the dispatcher never got there"
        await asyncio.sleep(0.05)


async def until_disabled(hooks: Hooks, endpoint_id: str, within: float = 10) -> dict[str, object]:
    deadline = time.monotonic() + within
    while (endpoint := await hooks.get_endpoint(endpoint_id))["enabled"]:
        assert time.monotonic() < deadline, "the endpoint was never disabled"
        await asyncio.sleep(0.05)
    return endpoint


async def test_410_gone_disables_the_endpoint_with_an_event_in_the_feed(hooks: Hooks) -> None:
    def respond(delivery: Delivery, seen: int) -> Answer:
        return Answer(410) if delivery.path == "/gone" else Answer()

    hooks.receiver.respond = respond
    gone = await hooks.endpoint("/gone")
    await hooks.endpoint("/watcher", event_types=["webhook_endpoint.disabled"])
    cast = await Cast.new(hooks.api)
    async with hooks.worker():
        await cast.place()
        endpoint = await until_disabled(hooks, gone["id"])
        await hooks.receiver.until(lambda r: len(r.unique("/watcher")) == 1, what="the notice")

    assert endpoint["disabled_reason"] == "the endpoint answered 410 Gone"
    [event] = await disabled_events(hooks)
    assert event["order_id"] is None
    assert event["data"] == {
        "endpoint_id": gone["id"],
        "owner_party_id": None,
        "url": gone["url"],
        "reason": "the endpoint answered 410 Gone",
    }
    # The other endpoint heard about it through a webhook as well.
    [notice] = hooks.receiver.payloads("/watcher")
    assert notice["type"] == "webhook_endpoint.disabled"
    assert notice["data"]["endpoint_id"] == gone["id"]
    [delivery] = await hooks.deliveries(gone["id"])
    assert delivery["status"] == "failed"  # replayable once re-enabled


async def test_an_endpoint_failing_for_the_whole_period_is_disabled(
    fresh_store: Store, receiver: Receiver
) -> None:
    receiver.respond = lambda delivery, seen: Answer(500) if delivery.path == "/hook" else Answer()
    schedule = (0, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2)
    async with hooks_on(
        fresh_store,
        receiver,
        webhook_disable_after_seconds=1.0,
        webhook_retry_schedule=schedule,
    ) as hooks:
        endpoint = await hooks.endpoint()
        await hooks.endpoint("/watcher", event_types=["order.placed"])
        cast = await Cast.new(hooks.api)
        async with hooks.worker():
            started = time.monotonic()
            await cast.place()
            disabled = await until_disabled(hooks, endpoint["id"])
            elapsed = time.monotonic() - started
            events = await disabled_events(hooks)
            attempts = len(receiver.refused)
            # An order placed now reaches the watcher; by then it would have reached the
            # disabled endpoint too, were anything still sent to it.
            later = await cast.place()
            await receiver.until(
                lambda r: later in [p["order_id"] for p in r.payloads("/watcher")],
                what="the later order at the watcher",
            )
            assert len(receiver.refused) == attempts  # nothing more is sent to it
            sent_to_it = [d["order_id"] for d in await hooks.deliveries(endpoint["id"])]
            assert later not in sent_to_it  # nor planned for it

    assert elapsed >= 1.0
    assert str(disabled["disabled_reason"]).startswith("every delivery has failed since ")
    assert len(events) == 1


async def test_a_success_ends_the_failure_streak(fresh_store: Store, receiver: Receiver) -> None:
    # Fail each event's first try, succeed on its second (0.2 s later): the endpoint keeps
    # failing on and off for longer than the period, but never continuously, so it stays enabled.
    period = 1.5
    receiver.respond = lambda delivery, seen: Answer(500) if seen == 1 else Answer()
    async with hooks_on(fresh_store, receiver, webhook_disable_after_seconds=period) as hooks:
        endpoint = await hooks.endpoint()
        cast = await Cast.new(hooks.api)
        async with hooks.worker():
            placed = 0
            started = time.monotonic()
            while placed < 3 or time.monotonic() - started < period + 0.5:
                await cast.place()
                placed += 1
                await receiver.until(lambda r, n=placed: len(r.unique()) == n, what="the retry")

        assert (await hooks.get_endpoint(endpoint["id"]))["enabled"] is True

    failed_first, succeeded_last = receiver.refused[0], receiver.all()[-1]
    assert succeeded_last.received_at - failed_first.received_at > period
    assert len(receiver.refused) == placed  # every event failed once


async def test_re_enabling_clears_the_reason_and_resumes_deliveries(hooks: Hooks) -> None:
    def gone_once(delivery: Delivery, seen: int) -> Answer:
        return Answer(410) if len(hooks.receiver.refused) == 0 else Answer()

    hooks.receiver.respond = gone_once
    endpoint = await hooks.endpoint()
    cast = await Cast.new(hooks.api)
    async with hooks.worker():
        order_id = await cast.place()
        await until_disabled(hooks, endpoint["id"])
        await cast.to(order_id, "accepted")  # dispatched while disabled: not sent
        await until_dispatched(hooks, order_id, sequence=2)
        enabled = await hooks.api.client.patch(
            f"/v1/webhook-endpoints/{endpoint['id']}",
            json={"enabled": True},
            headers=hooks.api.admin,
        )
        assert enabled.status_code == 200, enabled.text
        assert enabled.json()["disabled_reason"] is None
        replay = await hooks.api.client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/replay",
            json={"since_position": 1},
            headers=hooks.api.admin,
        )
        assert replay.status_code == 202, replay.text
        await hooks.receiver.until(lambda r: len(r.unique()) == 3, what="the events")

    # The replay also brings the endpoint's own webhook_endpoint.disabled, which was recorded
    # while it was disabled.
    assert sorted(p["type"] for p in hooks.receiver.payloads()) == [
        "order.accepted",
        "order.placed",
        "webhook_endpoint.disabled",
    ]
    placed, accepted = (p for p in hooks.receiver.payloads() if p["order_id"] == order_id)
    assert (placed["sequence"], accepted["sequence"]) == (1, 2)


async def test_a_party_sees_its_own_endpoint_disabled_in_its_feed(hooks: Hooks) -> None:
    hooks.receiver.respond = lambda delivery, seen: Answer(410)
    cast = await Cast.new(hooks.api)
    stranger, stranger_auth = await hooks.api.party_with_key("buyer")
    own = await hooks.endpoint("/gone", by=cast.buyer_auth)
    async with hooks.worker():
        await cast.place()
        await until_disabled(hooks, own["id"])

    async def feed(headers: dict[str, str], within: float) -> list[dict[str, object]]:
        deadline = time.monotonic() + within
        while True:
            response = await hooks.api.client.get("/v1/events?limit=100", headers=headers)
            found = [e for e in response.json()["data"] if e["type"] == "webhook_endpoint.disabled"]
            if found or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.05)

    [event] = await feed(cast.buyer_auth, within=10)
    assert event["data"]["endpoint_id"] == own["id"]  # type: ignore[index]
    # once the owner reads it, it is readable by all: another party still does not see it
    assert await feed(stranger_auth, within=0) == []
    assert stranger["id"] != cast.buyer["id"]


async def test_workers_disabling_an_endpoint_for_one_streak_append_one_event(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint()
    streak = datetime.now(UTC) - timedelta(days=5)

    async def disable() -> bool:
        return await endpoints.disable(
            hooks.store,
            endpoint["id"],
            reason="every delivery has failed since then",
            failing_since=streak,
            now=await hooks.store.now(),
            metadata={"worker": "test"},
        )

    results = await asyncio.gather(disable(), disable(), disable())

    assert sorted(results) == [False, False, True]  # one of them disabled it
    assert [e.type for e in await hooks.store.stream(endpoint["id"])] == [
        "webhook_endpoint.disabled"
    ]
    assert (await hooks.get_endpoint(endpoint["id"]))["enabled"] is False

    # A worker that died between the append and the update left the endpoint enabled: the
    # next one to disable it for the same streak finishes the job without a second event.
    async with hooks.store.transaction() as conn:
        await conn.execute(
            schema.webhook_endpoints.update()
            .where(schema.webhook_endpoints.c.id == endpoint["id"])
            .values(enabled=True, disabled_reason=None)
        )
    assert await disable() is True
    assert len(await hooks.store.stream(endpoint["id"])) == 1
    assert (await hooks.get_endpoint(endpoint["id"]))["enabled"] is False
