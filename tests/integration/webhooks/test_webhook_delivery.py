"""Delivery as DESIGN section 5 says, to a real HTTP receiver, on both backends."""

import time

import orjson

from support.receiver import Answer, Delivery, Receiver

from .conftest import Cast, Hooks


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
