"""Sending on request and the payments integration's endpoints (DESIGN 7.3, 7.6).

- ``POST .../test`` sends a signed ``webhook.test`` to that endpoint only, through the normal
  machinery, whatever the endpoint subscribes to; ``POST .../deliveries/{id}/resend`` sends a
  delivery again with the same ``webhook-id``. Both for the owner and an admin, 404 for others.
- A payments key's endpoint receives the money events of every order, and nothing else.

Every delivery is checked by the real receiver with the ``standardwebhooks`` library.
"""

import asyncio
from typing import Any

import pytest

from escrow_core.webhooks.matching import is_money_event

from .conftest import Cast, Hooks

BASE = "/v1/webhook-endpoints"


async def settled(hooks: Hooks, endpoint_id: str, attempts: int) -> dict[str, Any]:
    """The endpoint's one delivery once ``attempts`` attempts are recorded (the receiver has
    the request a moment before the sender records its answer)."""
    for _ in range(200):
        [delivery] = await hooks.deliveries(endpoint_id)
        if len(delivery["attempts"]) == attempts and delivery["status"] != "pending":
            return delivery
        await asyncio.sleep(0.05)
    raise AssertionError(f"the delivery never had {attempts} attempts recorded")


async def feed(hooks: Hooks, path: str, headers: dict[str, str], count: int) -> list[Any]:
    """The feed's events at ``path`` once there are ``count`` (on PostgreSQL the feed holds
    events back while an older transaction on the server, another suite's, may commit)."""
    for _ in range(200):
        answer = await hooks.api.client.get(path, headers=headers)
        assert answer.status_code == 200, answer.text
        events = list(answer.json()["data"])
        if len(events) >= count:
            return events
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never showed {count} events")


@pytest.mark.parametrize(
    ("event_type", "money"),
    [
        ("payment.received", True),
        ("funds.held", True),
        ("funds.released", True),
        ("refund.issued", True),
        # Another helper's events, named by prefix: a payments endpoint gets them as they come.
        ("payout.paid", True),
        ("payout.failed", True),
        ("payout.returned", True),
        ("payout.retried", True),
        ("refund.succeeded", True),
        ("refund.failed", True),
        ("refund.retried", True),
        ("order.placed", False),
        ("order.metadata_updated", False),
        ("dispute.resolved", False),
        ("webhook.test", False),
        ("webhook_endpoint.disabled", False),
        ("funds.released_later", False),
    ],
)
def test_the_money_events_are_a_named_set_and_every_payout_and_refund_event(
    event_type: str, money: bool
) -> None:
    assert is_money_event(event_type) is money


async def test_a_test_event_is_signed_sent_to_that_endpoint_only_and_resent_with_its_id(
    hooks: Hooks,
) -> None:
    api = hooks.api
    cast = await Cast.new(api)
    theirs = await hooks.endpoint("/theirs", by=cast.supplier_auth)
    # Subscribed to one type only: a test is sent whatever the endpoint subscribes to.
    mine = await hooks.endpoint("/mine", by=cast.buyer_auth, event_types=["funds.released"])
    test_path = f"{BASE}/{mine['id']}/test"

    for stranger in (cast.supplier_auth, cast.payments):
        refused = await api.client.post(test_path, headers=stranger)
        assert refused.status_code == 404, refused.text
        assert refused.json()["code"] == "webhook_endpoint_not_found"
    sent = await api.client.post(
        test_path, headers={**cast.buyer_auth, "Escrow-Correlation-Id": "probe-1"}
    )
    assert sent.status_code == 202, sent.text
    delivery = sent.json()
    assert delivery["id"].startswith("whd_")
    assert delivery["event_type"] == "webhook.test"
    assert delivery["status"] == "pending"
    assert delivery["order_id"] is None
    assert sent.headers["escrow-correlation-id"] == "probe-1"

    async with hooks.worker():
        await hooks.receiver.until(lambda r: len(r.all("/mine")) == 1, what="the test")
        [received] = hooks.receiver.all("/mine")
        assert received.verified_with == (0,)
        assert received.webhook_id == delivery["event_id"]
        assert received.payload["type"] == "webhook.test"
        assert received.payload["id"] == delivery["event_id"]
        assert received.payload["data"]["endpoint_id"] == mine["id"]
        shown = await settled(hooks, mine["id"], 1)
        assert shown["status"] == "succeeded"

        # By the admin too; the stranger may not resend it.
        resend_path = f"{BASE}/{mine['id']}/deliveries/{delivery['id']}/resend"
        refused = await api.client.post(resend_path, headers=cast.supplier_auth)
        assert refused.status_code == 404, refused.text
        resent = await api.client.post(resend_path, headers=api.admin)
        assert resent.status_code == 202, resent.text
        assert resent.json()["id"] == delivery["id"]
        assert resent.json()["status"] == "pending"
        await hooks.receiver.until(lambda r: len(r.all("/mine")) == 2, what="the resend")
        again = hooks.receiver.all("/mine")[1]
        assert again.webhook_id == received.webhook_id, "a receiver dedupes a resend by its id"
        assert again.body == received.body
        assert again.verified_with == (0,)
        after = await settled(hooks, mine["id"], 2)
        assert after["status"] == "succeeded"
        assert [a["status_code"] for a in after["attempts"]] == [200, 200]

        by_admin = await api.client.post(f"{BASE}/{theirs['id']}/test", headers=api.admin)
        assert by_admin.status_code == 202, by_admin.text
        await hooks.receiver.until(lambda r: len(r.all("/theirs")) == 1, what="admin's test")

    assert len(hooks.receiver.all("/mine")) == 2, "another endpoint's test never reaches this one"
    assert hooks.receiver.unverified == []

    # The test is for its endpoint only: never in the feed; its metadata names the request.
    assert received.payload["data"] == {"endpoint_id": mine["id"]}
    for caller in (cast.buyer_auth, api.admin):
        shown = await api.client.get("/v1/events?type=webhook.test&limit=100", headers=caller)
        assert shown.status_code == 200, shown.text
        assert shown.json()["data"] == []
    [stored] = await hooks.store.stream(mine["id"])
    assert (stored.type, stored.metadata["correlation_id"]) == ("webhook.test", "probe-1")
    assert stored.metadata["principal"]["party_id"] == cast.buyer["id"]


async def test_resend_refuses_what_is_not_the_endpoints(hooks: Hooks) -> None:
    api = hooks.api
    first = await hooks.endpoint("/a")
    second = await hooks.endpoint("/b")
    sent = await api.client.post(f"{BASE}/{first['id']}/test", headers=api.admin)
    assert sent.status_code == 202, sent.text
    delivery_id = sent.json()["id"]

    for path, status, code in [
        (
            f"{BASE}/{second['id']}/deliveries/{delivery_id}/resend",
            404,
            "webhook_delivery_not_found",
        ),
        (f"{BASE}/{first['id']}/deliveries/whd_999999/resend", 404, "webhook_delivery_not_found"),
        (
            f"{BASE}/{first['id']}/deliveries/whd_9999999999999999999/resend",
            404,
            "webhook_delivery_not_found",
        ),
        (f"{BASE}/{first['id']}/deliveries/42/resend", 422, "validation_error"),
        (f"{BASE}/whe_nope/deliveries/{delivery_id}/resend", 404, "webhook_endpoint_not_found"),
        (f"{BASE}/whe_nope/test", 404, "webhook_endpoint_not_found"),
    ]:
        answer = await api.client.post(path, headers=api.admin)
        assert (answer.status_code, answer.json()["code"]) == (status, code), path

    paused = await api.client.patch(
        f"{BASE}/{first['id']}", json={"enabled": False}, headers=api.admin
    )
    assert paused.status_code == 200, paused.text
    for path in (
        f"{BASE}/{first['id']}/test",
        f"{BASE}/{first['id']}/deliveries/{delivery_id}/resend",
    ):
        answer = await api.client.post(path, headers=api.admin)
        assert (answer.status_code, answer.json()["code"]) == (409, "webhook_endpoint_disabled")


async def test_a_payments_endpoint_gets_every_orders_money_events_and_nothing_else(
    hooks: Hooks,
) -> None:
    api = hooks.api
    cast = await Cast.new(api)
    other = await Cast.new(api)  # another buyer and supplier, another payments key
    created = await api.client.post(
        BASE, json={"url": hooks.receiver.url("/money")}, headers=cast.payments
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert endpoint["owner_party_id"] is None
    hooks.receiver.secrets["/money"] = [endpoint["secret"]]
    everything = await hooks.endpoint("/all")  # the admin's: every event, to compare

    # The payments integration owns it (any of its keys); no party sees it.
    mine = f"{BASE}/{endpoint['id']}"
    assert (await api.client.get(mine, headers=other.payments)).status_code == 200
    assert (await api.client.get(mine, headers=api.admin)).status_code == 200
    for party in (cast.buyer_auth, cast.supplier_auth):
        assert (await api.client.get(mine, headers=party)).status_code == 404
    listed = await api.client.get(BASE, headers=other.payments)
    assert [e["id"] for e in listed.json()["data"]] == [endpoint["id"]]
    assert (
        await api.client.get(f"{BASE}/{everything['id']}", headers=cast.payments)
    ).status_code == 404

    completed = await cast.place()
    await cast.to(completed, "completed")
    cancelled = await other.place()
    await other.to(cancelled, "partially_paid")
    await other.post(f"/v1/orders/{cancelled}/cancel", other.supplier_auth, {"reason": "no stock"})

    # 10 events of the completed order, 6 of the cancelled one (its refund written last).
    everything_shown = await feed(hooks, "/v1/events?limit=100", api.admin, 16)
    expected = [(e["order_id"], e["type"]) for e in everything_shown if is_money_event(e["type"])]
    assert len(expected) == 8
    async with hooks.worker():
        await hooks.receiver.until(
            lambda r: len(r.unique("/money")) >= len(expected), what="the money events"
        )
        await hooks.receiver.until(
            lambda r: len(r.unique("/all")) == len(everything_shown), what="every event"
        )
    got = [(p["order_id"], p["type"]) for p in hooks.receiver.payloads("/money")]
    assert sorted(got) == sorted(expected)
    assert {t for _, t in got} == {
        "payment.received",
        "funds.held",
        "funds.released",
        "refund.issued",
    }
    assert {o for o, _ in got} == {completed, cancelled}
    assert hooks.receiver.unverified == []
