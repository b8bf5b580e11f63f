"""Delivery as DESIGN section 5 says, to a real HTTP receiver, on both backends."""

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from escrow_core.store import Store
from support.receiver import Answer, Delivery, Receiver, Responder

from .conftest import Cast, Hooks, hooks_on


async def test_a_delivery_is_a_signed_standard_webhook_with_the_contract_body(
    hooks: Hooks,
) -> None:
    await hooks.endpoint()
    cast = await Cast.new(hooks.api)
    async with hooks.worker():
        order_id = await cast.place()
        await hooks.receiver.until(lambda r: len(r.unique()) == 1, what="order.placed")

    [delivery] = hooks.receiver.all()
    assert delivery.verified_with == (0,)  # standardwebhooks' Webhook.verify passed
    feed = await hooks.api.client.get("/v1/events", params={"limit": 100}, headers=hooks.api.admin)
    [event] = [e for e in feed.json()["data"] if e["order_id"] == order_id]
    assert delivery.webhook_id == event["id"]
    assert delivery.payload == {
        key: event[key]
        for key in ("id", "type", "created_at", "order_id", "sequence", "position", "data")
    }
    assert delivery.payload["type"] == "order.placed"
    assert abs(delivery.timestamp - time.time()) < 10  # the real wall clock
    assert delivery.headers["content-type"] == "application/json"
    assert len(delivery.body) < 64 * 1024
    assert orjson.loads(delivery.body) == delivery.payload


def failing_first(times: int, answer: Answer) -> Responder:
    """Answer ``answer`` to the first ``times`` tries of each webhook-id, then 200."""

    def respond(delivery: Delivery, seen: int) -> Answer:
        return answer if seen <= times else Answer()

    return respond


async def test_the_timestamp_is_the_wall_clock_even_when_the_sandbox_clock_is_ahead(
    fresh_store: Store, receiver: Receiver
) -> None:
    async with hooks_on(fresh_store, receiver, sandbox=True) as hooks:
        moved = await hooks.api.client.post(
            "/v1/sandbox/clock", json={"advance_seconds": 30 * 86400}, headers=hooks.api.admin
        )
        assert moved.status_code == 200, moved.text
        await hooks.endpoint()
        cast = await Cast.new(hooks.api)
        async with hooks.worker():
            await cast.place()
            await receiver.until(lambda r: len(r.unique()) == 1)

    [delivery] = receiver.all()
    assert abs(delivery.timestamp - time.time()) < 10
    created = datetime.fromisoformat(delivery.payload["created_at"])
    assert created - datetime.now(UTC) > timedelta(days=29)  # the event is on the sandbox clock


async def test_a_failed_attempt_is_retried_until_a_2xx_and_every_attempt_is_logged(
    hooks: Hooks,
) -> None:
    # The failures take a while to answer, so their recorded latency has to measure the wait.
    hooks.receiver.respond = failing_first(2, Answer(500, body=b"x" * 5000, delay=0.1))
    endpoint = await hooks.endpoint()
    cast = await Cast.new(hooks.api)
    async with hooks.worker():
        await cast.place()
        await hooks.receiver.until(lambda r: len(r.unique()) == 1, what="the third attempt")

    [delivery] = await hooks.deliveries(endpoint["id"])
    assert delivery["status"] == "succeeded"
    assert delivery["attempt_count"] == 3
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]
    assert [len(a["response_body"]) for a in delivery["attempts"]] == [2048, 2048, 2]
    slow, slow_too, quick = (a["latency_ms"] for a in delivery["attempts"])
    assert 100 <= slow < 2000  # at least the receiver's wait, within the 2 s timeout
    assert 100 <= slow_too < 2000
    assert 0 <= quick < 2000
    assert delivery["attempts"][0]["error"] == "HTTP 500"
    # The same webhook-id on every try; a fresh timestamp on each.
    tries = receiver_tries(hooks.receiver)
    assert len({d.webhook_id for d in tries}) == 1
    assert len(tries) == 3


def receiver_tries(receiver: Receiver) -> list[Delivery]:
    return sorted([*receiver.refused, *receiver.all()], key=lambda d: d.received_at)


async def test_only_2xx_succeeds(hooks: Hooks) -> None:
    hooks.receiver.respond = failing_first(1, Answer(204 + 100))  # 304 is not a success
    endpoint = await hooks.endpoint()
    cast = await Cast.new(hooks.api)
    async with hooks.worker():
        await cast.place()
        await hooks.receiver.until(lambda r: len(r.unique()) == 1)

    [delivery] = await hooks.deliveries(endpoint["id"])
    assert [a["status_code"] for a in delivery["attempts"]] == [304, 200]


async def test_a_redirect_is_not_followed(hooks: Hooks) -> None:
    redirect = Answer(302, headers={"Location": hooks.receiver.url("/elsewhere")})
    hooks.receiver.respond = failing_first(1, redirect)
    hooks.receiver.secrets["/elsewhere"] = []
    endpoint = await hooks.endpoint()
    cast = await Cast.new(hooks.api)
    async with hooks.worker():
        await cast.place()
        await hooks.receiver.until(lambda r: len(r.unique()) == 1)

    assert hooks.receiver.all("/elsewhere") == []
    assert hooks.receiver.unverified == []  # nothing was posted to /elsewhere at all
    [delivery] = await hooks.deliveries(endpoint["id"])
    assert [a["status_code"] for a in delivery["attempts"]] == [302, 200]


async def test_retry_after_is_honoured(hooks: Hooks) -> None:
    hooks.receiver.respond = failing_first(1, Answer(503, headers={"Retry-After": "2"}))
    await hooks.endpoint()
    cast = await Cast.new(hooks.api)
    async with hooks.worker():
        await cast.place()
        await hooks.receiver.until(lambda r: len(r.unique()) == 1)

    first, second = receiver_tries(hooks.receiver)
    assert second.received_at - first.received_at >= 1.9  # the schedule alone says 0.2 s


async def test_a_slow_receiver_times_out_and_is_retried(
    fresh_store: Store, receiver: Receiver
) -> None:
    receiver.respond = failing_first(1, Answer(200, delay=2.5))
    async with hooks_on(fresh_store, receiver, webhook_timeout_seconds=1) as hooks:
        endpoint = await hooks.endpoint()
        cast = await Cast.new(hooks.api)
        async with hooks.worker():
            await cast.place()
            await hooks.receiver.until(lambda r: len(r.all()) == 2, within=20)
            deadline = time.monotonic() + 10
            while not await hooks.deliveries(endpoint["id"], status="succeeded"):
                assert time.monotonic() < deadline, "the second attempt was never recorded"
                await asyncio.sleep(0.05)
            [delivery] = await hooks.deliveries(endpoint["id"])

    first, second = delivery["attempts"]
    assert first["status_code"] is None
    assert first["error"] == "timed out after 1 s"
    assert 900 <= first["latency_ms"] < 2000
    assert second["status_code"] == 200


async def test_after_the_last_retry_the_delivery_is_failed_and_replayable(hooks: Hooks) -> None:
    hooks.receiver.respond = lambda delivery, seen: Answer(500)
    endpoint = await hooks.endpoint()
    cast = await Cast.new(hooks.api)
    async with hooks.worker():
        await cast.place()

        async def failed() -> list[dict[str, Any]]:
            return await hooks.deliveries(endpoint["id"], status="failed")

        deadline = time.monotonic() + 10
        while not await failed():
            assert time.monotonic() < deadline, "the delivery never finally failed"
            await asyncio.sleep(0.1)
        [delivery] = await failed()
        assert delivery["attempt_count"] == 4  # the schedule's four steps
        assert delivery["next_attempt_at"] is None

        hooks.receiver.respond = lambda delivery, seen: Answer()
        replayed = await hooks.api.client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/replay",
            json={"since_position": delivery["position"]},
            headers=hooks.api.admin,
        )
        assert replayed.status_code == 202, replayed.text
        assert replayed.json()["enqueued"] == 1
        await hooks.receiver.until(lambda r: len(r.unique()) == 1, what="the replay")

    [again] = await hooks.deliveries(endpoint["id"])
    assert again["status"] == "succeeded"
    assert [a["status_code"] for a in again["attempts"]] == [500, 500, 500, 500, 200]
    assert hooks.receiver.all()[0].webhook_id == delivery["event_id"]


async def test_one_orders_events_arrive_in_sequence_order_while_others_flow(
    hooks: Hooks,
) -> None:
    held_back: set[str] = set()

    def respond(delivery: Delivery, seen: int) -> Answer:
        # The first order's order.placed fails three times (then the schedule's last try works).
        if delivery.payload["order_id"] in held_back and delivery.payload["sequence"] == 1:
            return Answer(500) if seen <= 3 else Answer()
        return Answer()

    hooks.receiver.respond = respond
    await hooks.endpoint()
    cast = await Cast.new(hooks.api)
    slow = await cast.place()
    held_back.add(slow)
    await cast.to(slow, "shipped")
    fast = await cast.place()
    await cast.to(fast, "shipped")
    async with hooks.worker():
        await hooks.receiver.until(lambda r: len(r.unique()) == 14, what="two orders' events")

    arrived = hooks.receiver.payloads()
    for order_id in (slow, fast):
        sequences = [p["sequence"] for p in arrived if p["order_id"] == order_id]
        assert sequences == [1, 2, 3, 4, 5, 6, 7]
    slow_first = next(i for i, p in enumerate(arrived) if p["order_id"] == slow)
    fast_last = max(i for i, p in enumerate(arrived) if p["order_id"] == fast)
    assert fast_last < slow_first  # the stuck order held back only its own events


async def test_a_finally_failed_delivery_no_longer_holds_back_the_next(hooks: Hooks) -> None:
    def respond(delivery: Delivery, seen: int) -> Answer:
        return Answer(500) if delivery.payload["sequence"] == 1 else Answer()

    hooks.receiver.respond = respond
    endpoint = await hooks.endpoint()
    cast = await Cast.new(hooks.api)
    order_id = await cast.place()
    await cast.to(order_id, "accepted")
    async with hooks.worker():
        await hooks.receiver.until(lambda r: len(r.unique()) == 1, what="order.accepted")

    assert hooks.receiver.payloads()[0]["type"] == "order.accepted"
    statuses = {d["sequence"]: d["status"] for d in await hooks.deliveries(endpoint["id"])}
    assert statuses == {1: "failed", 2: "succeeded"}


async def test_a_response_body_the_database_cannot_store_as_is_is_still_recorded(
    hooks: Hooks,
) -> None:
    hooks.receiver.respond = failing_first(1, Answer(500, body=b"bad\x00\xff\xfe" * 10))
    endpoint = await hooks.endpoint()
    cast = await Cast.new(hooks.api)
    async with hooks.worker():
        await cast.place()
        await hooks.receiver.until(lambda r: len(r.unique()) == 1)

    [delivery] = await hooks.deliveries(endpoint["id"])
    first = delivery["attempts"][0]
    assert first["status_code"] == 500
    assert first["response_body"].startswith("bad\ufffd")
    assert len(hooks.receiver.all()) == 1  # recorded at once, not sent again
