"""/v1/webhook-endpoints: register, read, change, delete, rotate, replay, deliveries."""

import asyncio
import time
from typing import Any

import pytest
import sqlalchemy as sa

from escrow_core.application import webhook_endpoints
from escrow_core.store import Store
from escrow_core.store.schema import webhook_deliveries
from escrow_core.webhooks import ssrf
from escrow_core.webhooks.dispatcher import dispatch_once
from support import api as support
from support.api import auth, running_api
from support.receiver import Receiver

from .conftest import Cast, Hooks, hooks_on

BASE = "/v1/webhook-endpoints"


async def test_the_secret_is_shown_once_and_an_idempotent_replay_hides_it(hooks: Hooks) -> None:
    body = {"url": hooks.receiver.url(), "event_types": ["funds.released", "order.placed"]}
    headers = {**hooks.api.admin, "Idempotency-Key": "create-1"}

    created = await hooks.api.client.post(BASE, json=body, headers=headers)
    replayed = await hooks.api.client.post(BASE, json=body, headers=headers)

    assert created.status_code == 201, created.text
    shown = created.json()
    assert shown["id"].startswith("whe_")
    assert shown["secret"].startswith("whsec_")
    assert shown["url"] == body["url"]
    assert shown["event_types"] == ["funds.released", "order.placed"]
    assert shown["enabled"] is True
    assert shown["owner_party_id"] is None
    assert created.headers["location"] == f"{BASE}/{shown['id']}"
    assert replayed.status_code == 201
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json() == {**shown, "secret": None}
    fetched = await hooks.api.client.get(f"{BASE}/{shown['id']}", headers=hooks.api.admin)
    assert fetched.json() == {**shown, "secret": None}


async def test_event_types_default_to_all(hooks: Hooks) -> None:
    created = await hooks.endpoint()

    assert created["event_types"] == ["*"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "https://user:pw@example.com/x"}, "url"),
        ({"url": "https://example.com/" + "x" * 2100}, "url"),
        ({"url": 42}, "url"),
        ({}, "url"),
        ({"url": "https://example.com", "event_types": ["order.teleported"]}, "event_types.0"),
        ({"url": "https://example.com", "event_types": ["*"] * 51}, "event_types"),
        ({"url": "https://example.com", "colour": "blue"}, "colour"),
    ],
)
async def test_a_bad_request_body_is_a_validation_error(
    hooks: Hooks, body: dict[str, Any], field: str
) -> None:
    response = await hooks.api.client.post(BASE, json=body, headers=hooks.api.admin)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert field in [error["field"] for error in problem["errors"]]


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.1:8080/hook", "webhook_url_not_allowed"),
        ("http://[::1]/hook", "webhook_url_not_allowed"),
        ("http://169.254.169.254/latest/meta-data", "webhook_url_not_allowed"),
        ("http://10.1.2.3/hook", "webhook_url_not_allowed"),
        ("http://localhost/hook", "webhook_url_not_allowed"),
        ("https://no-such-host.invalid/hook", "webhook_url_unresolvable"),
    ],
)
async def test_the_ssrf_rule_refuses_a_url_at_registration(
    database_url: str, url: str, code: str
) -> None:
    settings = support.test_settings(database_url)
    async with running_api(settings.model_copy(update={"webhook_allow_private": True})) as lax:
        existing = await lax.client.post(
            BASE, json={"url": "http://127.0.0.1:9/"}, headers=lax.admin
        )
    async with running_api(settings) as api:  # private addresses refused
        response = await api.client.post(BASE, json={"url": url}, headers=api.admin)
        patched = await api.client.patch(
            f"{BASE}/{existing.json()['id']}", json={"url": url}, headers=api.admin
        )

    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == code
    assert problem["errors"][0]["field"] == "url"
    assert patched.status_code == 422
    assert patched.json()["code"] == code


class RecordingResolver:
    """The service's DNS for a test: ``answers`` by name, and every name it was asked."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return self.answers[host]


async def test_a_url_on_someone_elses_endpoint_is_404_and_never_resolved(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dns = RecordingResolver(
        {"hooks.example.com": ["93.184.215.14"], "internal.example.com": ["10.0.0.5"]}
    )
    monkeypatch.setattr(ssrf, "system_resolver", dns)
    async with running_api(support.test_settings(database_url)) as api:  # private refused
        _, owner = await api.party_with_key("buyer")
        _, stranger = await api.party_with_key("supplier")
        created = await api.client.post(
            BASE, json={"url": "https://hooks.example.com/mine"}, headers=owner
        )
        assert created.status_code == 201, created.text
        path = f"{BASE}/{created.json()['id']}"
        dns.asked.clear()

        theirs = await api.client.patch(
            path, json={"url": "https://internal.example.com/x"}, headers=stranger
        )
        nobodys = await api.client.patch(
            f"{BASE}/whe_nosuchendpoint",
            json={"url": "https://internal.example.com/x"},
            headers=stranger,
        )
        asked_for_others = list(dns.asked)
        own = await api.client.patch(
            path, json={"url": "https://internal.example.com/x"}, headers=owner
        )

    for answer in (theirs, nobodys):
        assert answer.status_code == 404, answer.text
        assert answer.json()["code"] == "webhook_endpoint_not_found"
    assert asked_for_others == []
    assert own.status_code == 422, own.text
    assert own.json()["code"] == "webhook_url_not_allowed"
    assert dns.asked == ["internal.example.com"]
    assert "10.0.0.5" not in own.text


async def test_a_name_that_does_not_resolve_in_time_is_a_timely_422(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def hangs(host: str, port: int) -> list[str]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    # The service's timeout is the default (asked_for); the wait is shortened, not waited out.
    asked_for: list[float] = []
    short = 0.3

    async def check_url(
        url: str, *, allow_private: bool, resolve_timeout: float = ssrf.RESOLVE_TIMEOUT_SECONDS
    ) -> None:
        asked_for.append(resolve_timeout)
        await ssrf.check_url(url, allow_private=allow_private, resolve_timeout=short)

    monkeypatch.setattr(ssrf, "system_resolver", hangs)
    monkeypatch.setattr(webhook_endpoints, "check_url", check_url)
    async with running_api(support.test_settings(database_url)) as api:
        started = time.monotonic()
        response = await api.client.post(
            BASE, json={"url": "https://slow.example.com/hook"}, headers=api.admin
        )
        took = time.monotonic() - started

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "webhook_url_resolve_timeout"
    assert problem["errors"][0]["field"] == "url"
    assert asked_for == [ssrf.RESOLVE_TIMEOUT_SECONDS]
    assert short <= took < short + 3


async def test_owners_see_their_endpoints_and_nobody_elses(hooks: Hooks) -> None:
    api = hooks.api
    _, agent_auth = await api.party_with_key("agent")
    managed = await Cast.new(api, buyer_by=agent_auth)
    _, other_auth = await api.party_with_key("buyer")
    mine = await hooks.endpoint("/mine", by=managed.buyer_auth)
    agents = await hooks.endpoint("/agent", by=agent_auth)
    admins = await hooks.endpoint("/admin")

    async def listed(headers: dict[str, str]) -> list[str]:
        response = await api.client.get(BASE, headers=headers)
        assert response.status_code == 200, response.text
        return sorted(e["id"] for e in response.json()["data"])

    async def status_of(endpoint: dict[str, Any], headers: dict[str, str]) -> int:
        return (await api.client.get(f"{BASE}/{endpoint['id']}", headers=headers)).status_code

    assert await listed(managed.buyer_auth) == [mine["id"]]
    assert await listed(agent_auth) == sorted([mine["id"], agents["id"]])  # its party's too
    assert await listed(other_auth) == []
    assert await listed(api.admin) == sorted([mine["id"], agents["id"], admins["id"]])
    assert await status_of(mine, managed.buyer_auth) == 200
    assert await status_of(mine, agent_auth) == 200
    assert await status_of(mine, other_auth) == 404
    assert await status_of(agents, managed.buyer_auth) == 404
    assert await status_of(admins, managed.buyer_auth) == 404
    assert await status_of(admins, agent_auth) == 404
    for target in (mine, admins):
        for verb, path, body in (
            ("PATCH", "", {"enabled": False}),
            ("DELETE", "", None),
            ("POST", "/rotate-secret", None),
            ("POST", "/replay", {"since_position": 1}),
            ("GET", "/deliveries", None),
        ):
            response = await api.client.request(
                verb, f"{BASE}/{target['id']}{path}", json=body, headers=other_auth
            )
            assert response.status_code == 404, (verb, path, response.text)
            assert response.json()["code"] == "webhook_endpoint_not_found"


async def test_mediators_have_no_endpoints(hooks: Hooks) -> None:
    # (A payments key may own endpoints since 1.1: test_webhook_test_and_resend.py.)
    headers = auth(await hooks.api.role_key("mediator"))
    created = await hooks.api.client.post(BASE, json={"url": hooks.receiver.url()}, headers=headers)
    listed = await hooks.api.client.get(BASE, headers=headers)
    assert created.status_code == 403
    assert listed.status_code == 403


async def test_without_a_key_it_is_401(hooks: Hooks) -> None:
    assert (await hooks.api.client.get(BASE)).status_code == 401
    assert (await hooks.api.client.post(BASE, json={"url": "https://x.org"})).status_code == 401


async def test_the_list_is_paginated(hooks: Hooks) -> None:
    made = sorted([(await hooks.endpoint(f"/{n}"))["id"] for n in range(5)])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await hooks.api.client.get(BASE, params=params, headers=hooks.api.admin)).json()
        seen += [e["id"] for e in page["data"]]
        pages += 1
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]

    assert seen == made
    assert pages == 3
    bad = await hooks.api.client.get(BASE, params={"cursor": "!!"}, headers=hooks.api.admin)
    assert bad.status_code == 422


async def test_patch_changes_the_url_and_event_types_and_pauses(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint("/old")
    path = f"{BASE}/{endpoint['id']}"

    changed = await hooks.api.client.patch(
        path,
        json={"url": hooks.receiver.url("/new"), "event_types": ["order.accepted"]},
        headers=hooks.api.admin,
    )
    paused = await hooks.api.client.patch(path, json={"enabled": False}, headers=hooks.api.admin)
    empty = await hooks.api.client.patch(path, json={}, headers=hooks.api.admin)
    extra = await hooks.api.client.patch(path, json={"secret": "x"}, headers=hooks.api.admin)

    assert changed.status_code == 200, changed.text
    assert changed.json()["url"] == hooks.receiver.url("/new")
    assert changed.json()["event_types"] == ["order.accepted"]
    assert paused.json()["enabled"] is False
    assert paused.json()["disabled_reason"] == "disabled through the API"
    assert empty.status_code == 422
    assert extra.status_code == 422


async def test_a_paused_endpoint_gets_nothing(hooks: Hooks) -> None:
    paused = await hooks.endpoint("/paused")
    await hooks.endpoint("/live")
    await hooks.api.client.patch(
        f"{BASE}/{paused['id']}", json={"enabled": False}, headers=hooks.api.admin
    )
    cast = await Cast.new(hooks.api)
    async with hooks.worker():
        order_id = await cast.place()
        # The live endpoint's copy is planned in the same dispatch as the paused one's would
        # be, and sent on: once it is here, the paused endpoint has had its chance.
        await hooks.receiver.until(lambda r: len(r.all("/live")) == 1, what="the live copy")

    assert [p["order_id"] for p in hooks.receiver.payloads("/live")] == [order_id]
    assert hooks.receiver.all("/paused") == hooks.receiver.refused == []
    assert await hooks.deliveries(paused["id"]) == []


async def test_delete_removes_the_endpoint(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint()
    path = f"{BASE}/{endpoint['id']}"

    deleted = await hooks.api.client.delete(path, headers=hooks.api.admin)
    again = await hooks.api.client.delete(path, headers=hooks.api.admin)

    assert deleted.status_code == 204
    assert again.status_code == 404
    assert (await hooks.api.client.get(path, headers=hooks.api.admin)).status_code == 404
    listed = await hooks.api.client.get(BASE, headers=hooks.api.admin)
    assert listed.json()["data"] == []


async def test_what_was_waiting_for_a_deleted_endpoint_is_given_up(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint()
    cast = await Cast.new(hooks.api)
    await cast.place()
    for _ in range(200):  # dispatch by hand (no worker: nothing is sent)
        if (await dispatch_once(hooks.store, (0.0,))).deliveries:
            break
        await asyncio.sleep(0.05)

    await hooks.api.client.delete(f"{BASE}/{endpoint['id']}", headers=hooks.api.admin)

    async with hooks.store.read() as conn:
        query = sa.select(webhook_deliveries.c.status, webhook_deliveries.c.last_error)
        rows = (await conn.execute(query)).all()
    assert [tuple(row) for row in rows] == [("failed", "the endpoint was deleted")]


async def test_a_rotated_secret_signs_alongside_the_old_one(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint()
    old = endpoint["secret"]
    headers = {**hooks.api.admin, "Idempotency-Key": "rotate-1"}

    rotated = await hooks.api.client.post(f"{BASE}/{endpoint['id']}/rotate-secret", headers=headers)
    replayed = await hooks.api.client.post(
        f"{BASE}/{endpoint['id']}/rotate-secret", headers=headers
    )

    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new.startswith("whsec_")
    assert new != old
    assert replayed.json()["secret"] is None  # rotate again for another
    hooks.receiver.secrets["/hook"] = [new, old]
    cast = await Cast.new(hooks.api)
    async with hooks.worker():
        await cast.place()
        await hooks.receiver.until(lambda r: len(r.all()) == 1)

    [delivery] = hooks.receiver.all()
    assert delivery.verified_with == (0, 1)  # both signatures are on it
    assert len(delivery.headers["webhook-signature"].split(" ")) == 2


async def test_replay_from_a_time_or_a_position(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint()
    cast = await Cast.new(hooks.api)
    order_id = await cast.place()
    await cast.to(order_id, "accepted")
    async with hooks.worker():
        await hooks.receiver.until(lambda r: len(r.all()) == 2)
        [accepted, placed] = await hooks.deliveries(endpoint["id"])
        replay = f"{BASE}/{endpoint['id']}/replay"

        by_position = await hooks.api.client.post(
            replay, json={"since_position": accepted["position"]}, headers=hooks.api.admin
        )
        await hooks.receiver.until(lambda r: len(r.all()) == 3)
        by_time = await hooks.api.client.post(
            replay, json={"since": "2000-01-01T00:00:00Z"}, headers=hooks.api.admin
        )
        await hooks.receiver.until(lambda r: len(r.all()) == 5)

    assert by_position.status_code == 202, by_position.text
    assert by_position.json() == {
        "endpoint_id": endpoint["id"],
        "enqueued": 1,
        "has_more": False,
        "next_position": None,
    }
    assert by_time.json()["enqueued"] == 2
    ids = [d.webhook_id for d in hooks.receiver.all()]
    first_round, by_position_round, by_time_round = ids[:2], ids[2:3], ids[3:]
    assert first_round == [placed["event_id"], accepted["event_id"]]
    assert by_position_round == [accepted["event_id"]]
    assert by_time_round == [placed["event_id"], accepted["event_id"]]


@pytest.mark.parametrize(
    "body",
    [{}, {"since_position": 1, "since": "2026-01-01T00:00:00Z"}, {"since_position": 0}],
)
async def test_replay_needs_exactly_one_starting_point(hooks: Hooks, body: dict[str, Any]) -> None:
    endpoint = await hooks.endpoint()

    response = await hooks.api.client.post(
        f"{BASE}/{endpoint['id']}/replay", json=body, headers=hooks.api.admin
    )

    assert response.status_code == 422


async def test_a_disabled_endpoint_cannot_be_replayed_to(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint()
    await hooks.api.client.patch(
        f"{BASE}/{endpoint['id']}", json={"enabled": False}, headers=hooks.api.admin
    )

    response = await hooks.api.client.post(
        f"{BASE}/{endpoint['id']}/replay", json={"since_position": 1}, headers=hooks.api.admin
    )

    assert response.status_code == 409
    assert response.json()["code"] == "webhook_endpoint_disabled"


async def test_deliveries_are_paginated_newest_first_and_filter_by_status(hooks: Hooks) -> None:
    endpoint = await hooks.endpoint()
    cast = await Cast.new(hooks.api)
    for _ in range(3):
        await cast.place()
    async with hooks.worker():
        await hooks.receiver.until(lambda r: len(r.all()) == 3)
    path = f"{BASE}/{endpoint['id']}/deliveries"

    first = (await hooks.api.client.get(path, params={"limit": 2}, headers=hooks.api.admin)).json()
    rest = (
        await hooks.api.client.get(
            path, params={"limit": 2, "cursor": first["next_cursor"]}, headers=hooks.api.admin
        )
    ).json()
    pending = await hooks.api.client.get(
        path, params={"status": "pending"}, headers=hooks.api.admin
    )

    ids = [d["id"] for d in first["data"] + rest["data"]]
    assert first["has_more"] is True
    assert rest["has_more"] is False
    assert len(ids) == 3
    assert all(i.startswith("whd_") for i in ids)
    assert ids == sorted(ids, key=lambda i: int(i.removeprefix("whd_")), reverse=True)
    assert pending.json()["data"] == []
    delivery = first["data"][0]
    assert delivery["status"] == "succeeded"
    assert delivery["event_type"] == "order.placed"
    assert delivery["attempts"][0]["status_code"] == 200


async def test_an_agent_acting_for_a_party_registers_the_partys_endpoint(
    fresh_store: Store, receiver: Receiver
) -> None:
    async with hooks_on(fresh_store, receiver) as hooks:
        _, agent_auth = await hooks.api.party_with_key("agent")
        buyer = await hooks.api.register("buyer", by=agent_auth)
        key = agent_auth["Authorization"].removeprefix("Bearer ")

        created = await hooks.endpoint(by=auth(key, buyer["id"]))

    assert created["owner_party_id"] == buyer["id"]
