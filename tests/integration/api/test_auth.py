"""Keys (hashed, shown once, revocable, the bootstrap admin), Escrow-On-Behalf-Of, the actor
recorded on every event, and 404 for what a caller may not see."""

import asyncio
import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from escrow_api import auth as auth_module
from escrow_core.accounts import ApiKey, KeyRole
from escrow_core.application import keys
from escrow_core.store.schema import api_keys, idempotency_keys
from support.api import ADMIN_KEY, Api, auth, order_terms, running_api
from support.api import test_settings as settings_for

from .world import World


async def _rows_text(api: Api, table: sa.Table) -> str:
    async with api.app.state.runtime.store.read() as conn:
        rows = (await conn.execute(sa.select(table))).all()
    return "\n".join(repr(tuple(row)) for row in rows)


async def _new_key(api: Api, party_id: str, **headers: str) -> dict[str, Any]:
    made = await api.client.post(
        f"/v1/parties/{party_id}/api-keys", headers={**api.admin, **headers}
    )
    assert made.status_code == 201, made.text
    return dict(made.json())


async def test_a_key_is_stored_as_its_sha256_and_shown_only_once(api: Api) -> None:
    buyer = await api.register("buyer")
    made = await _new_key(api, buyer["id"], **{"Idempotency-Key": "key-once"})
    secret = made["key"]
    assert secret.startswith("esk_")
    assert len(secret) >= 40
    assert set(made) == {
        "id", "key", "role", "party_id", "scope", "created_at", "expires_at", "revoked_at",
        "last_used_at",
    }  # fmt: skip
    assert (made["role"], made["party_id"]) == ("buyer", buyer["id"])

    replay = await api.client.post(
        f"/v1/parties/{buyer['id']}/api-keys",
        headers={**api.admin, "Idempotency-Key": "key-once"},
    )
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == {**made, "key": None}

    role_key = await api.client.post(
        "/v1/api-keys", json={"role": "mediator"}, headers={**api.admin, "Idempotency-Key": "r1"}
    )
    role_replay = await api.client.post(
        "/v1/api-keys", json={"role": "mediator"}, headers={**api.admin, "Idempotency-Key": "r1"}
    )
    assert role_replay.json() == {**role_key.json(), "key": None}

    for shown in (secret, role_key.json()["key"]):
        stored = await _rows_text(api, api_keys) + await _rows_text(api, idempotency_keys)
        assert shown not in stored
        assert hashlib.sha256(shown.encode()).hexdigest() in stored
    # The secret still works after its replay hid it.
    me = await api.client.get(f"/v1/parties/{buyer['id']}", headers=auth(secret))
    assert me.status_code == 200

    revoked = await api.client.delete(f"/v1/api-keys/{made['id']}", headers=api.admin)
    assert revoked.status_code == 200
    assert revoked.json()["key"] is None
    assert revoked.json()["revoked_at"] is not None


async def test_a_revoked_key_is_refused_at_once_by_the_app_that_revoked_it(api: Api) -> None:
    buyer = await api.register("buyer")
    made = await _new_key(api, buyer["id"])
    headers = auth(made["key"])
    for _ in range(2):  # the second answer comes from the key cache
        assert (await api.client.get(f"/v1/parties/{buyer['id']}", headers=headers)).is_success
    revoked = await api.client.delete(f"/v1/api-keys/{made['id']}", headers=api.admin)
    assert revoked.status_code == 200
    refused = await api.client.get(f"/v1/parties/{buyer['id']}", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["code"] == "unauthenticated"
    assert refused.headers["www-authenticate"] == "Bearer"
    again = await api.client.delete(f"/v1/api-keys/{made['id']}", headers=api.admin)
    assert again.status_code == 200, "revoking twice is harmless"
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]


async def test_a_key_may_revoke_itself(api: Api) -> None:
    buyer = await api.register("buyer")
    made = await _new_key(api, buyer["id"])
    headers = auth(made["key"])
    assert (await api.client.delete(f"/v1/api-keys/{made['id']}", headers=headers)).is_success
    assert (await api.client.get(f"/v1/parties/{buyer['id']}", headers=headers)).status_code == 401


async def test_another_process_sees_a_revocation_once_its_cache_entry_expires(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth_module, "KEY_CACHE_SECONDS", 0.2)
    settings = settings_for(database_url)
    async with running_api(settings) as first, running_api(settings) as second:
        buyer = await first.register("buyer")
        made = await _new_key(first, buyer["id"])
        path, headers = f"/v1/parties/{buyer['id']}", auth(made["key"])
        assert (await second.client.get(path, headers=headers)).status_code == 200
        assert await first.client.delete(f"/v1/api-keys/{made['id']}", headers=first.admin)
        await asyncio.sleep(0.25)
        assert (await second.client.get(path, headers=headers)).status_code == 401


async def test_without_a_valid_key_every_call_is_401(api: Api) -> None:
    for authorization in (
        None, "", "Bearer", "Bearer ", "Basic Zm9vOmJhcg==", "Bearer esk_unknown", "esk_nobearer"
    ):  # fmt: skip
        headers = {} if authorization is None else {"Authorization": authorization}
        for method, path in (("GET", "/v1/orders"), ("POST", "/v1/parties"), ("GET", "/v1/events")):
            response = await api.client.request(method, path, headers=headers, json={})
            assert response.status_code == 401, authorization
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["code"] == "unauthenticated"


async def test_unknown_keys_are_never_remembered(api: Api) -> None:
    cache: auth_module.KeyCache = api.app.state.key_cache
    known = len(cache)
    for n in range(50):
        response = await api.client.get("/v1/orders", headers=auth(f"esk_unknown_{n:04d}" * 4))
        assert response.status_code == 401
    assert len(cache) == known
    assert (await api.client.get("/v1/orders", headers=auth(ADMIN_KEY))).status_code == 200


async def test_an_authorization_over_512_bytes_is_refused_before_any_lookup(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[str] = []

    async def authenticate(runtime: Any, secret: str) -> None:
        looked_up.append(secret)

    monkeypatch.setattr(keys, "authenticate", authenticate)
    for size in (513, 1024 * 1024):
        response = await api.client.get("/v1/orders", headers={"Authorization": "B" * size})
        assert response.status_code == 401
        assert response.json()["code"] == "unauthenticated"
    assert looked_up == []


def test_the_key_cache_is_bounded_least_recently_used_first() -> None:
    cache = auth_module.KeyCache(size=2)
    issued = [
        ApiKey(f"key_{n}", KeyRole.BUYER, "pty_x", None, datetime(2026, 1, 1, tzinfo=UTC), None)
        for n in range(3)
    ]
    cache.put("first", issued[0])
    cache.put("second", issued[1])
    assert cache.get("first") == issued[0]  # now the most recently used
    cache.put("third", issued[2])
    assert cache.get("second") is None
    assert cache.get("first") == issued[0]
    assert cache.get("third") == issued[2]
    assert len(cache) == 2


async def test_the_bootstrap_admin_key_works_only_when_configured(database_url: str) -> None:
    async with running_api(settings_for(database_url, admin_key=None)) as api:
        refused = await api.client.get("/v1/orders", headers=auth(ADMIN_KEY))
        assert refused.status_code == 401
    async with running_api(settings_for(database_url)) as api:
        made = await api.client.post("/v1/api-keys", json={"role": "admin"}, headers=api.admin)
        assert made.status_code == 201
        # A key made by the bootstrap admin keeps working without it.
        admin_key = made.json()["key"]
    async with running_api(settings_for(database_url, admin_key=None)) as api:
        assert (await api.client.get("/v1/orders", headers=auth(admin_key))).status_code == 200
        # The bootstrap key is configuration, not a stored key: nothing to revoke.
        gone = await api.client.delete(
            f"/v1/api-keys/{keys.BOOTSTRAP_ADMIN_ID}", headers=auth(admin_key)
        )
        assert gone.status_code == 404


async def test_party_roles_get_no_party_less_keys(api: Api) -> None:
    for role in ("agent", "buyer", "supplier", "superuser", ""):
        made = await api.client.post("/v1/api-keys", json={"role": role}, headers=api.admin)
        assert made.status_code == 422, role
        assert made.json()["errors"][0]["field"] == "role"


async def test_escrow_on_behalf_of_is_for_agents_and_their_own_parties(world: World) -> None:
    api = world.api
    agent_headers = world.as_("agent")
    other_agent, other_agent_headers = await api.party_with_key("agent")
    foreign_buyer = await api.register("buyer", by=other_agent_headers)
    cases: list[tuple[dict[str, str], str, int, str]] = [
        (world.as_("buyer"), world.buyer_id, 403, "on_behalf_of_not_allowed"),
        (world.admin, world.buyer_id, 403, "on_behalf_of_not_allowed"),
        (world.as_("mediator"), world.buyer_id, 403, "on_behalf_of_not_allowed"),
        (agent_headers, world.other_buyer_id, 403, "party_not_managed"),  # admin-registered
        (agent_headers, foreign_buyer["id"], 403, "party_not_managed"),  # another agent's
        (agent_headers, other_agent["id"], 403, "party_not_managed"),  # an agent
        (agent_headers, world.agent_id, 403, "party_not_managed"),  # itself
        (agent_headers, "pty_doesnotexist", 403, "party_not_managed"),
        (agent_headers, "garbage", 403, "party_not_managed"),
        (agent_headers, world.buyer_id, 200, ""),
    ]
    for headers, party, status, code in cases:
        answer = await api.client.get(
            "/v1/orders", headers={**headers, "Escrow-On-Behalf-Of": party}
        )
        assert answer.status_code == status, (party, answer.text)
        if code:
            assert answer.json()["code"] == code


async def test_an_agent_acts_on_an_order_only_in_a_partys_name(world: World) -> None:
    order_id = await world.order("placed")
    as_itself = await world.call("POST", f"/v1/orders/{order_id}/accept", world.as_("agent"))
    assert as_itself.status_code == 403
    assert as_itself.json()["code"] == "on_behalf_of_required"
    placed = await world.call(
        "POST", "/v1/orders", world.as_("agent"), order_terms(world.supplier_id)
    )
    assert placed.status_code == 403
    seen = await world.call("GET", f"/v1/orders/{order_id}", world.as_("agent"))
    assert seen.status_code == 200
    assert seen.json()["allowed_actions"] == []
    as_supplier = await world.call("GET", f"/v1/orders/{order_id}", world.as_("agent_for_supplier"))
    as_buyer = await world.call("GET", f"/v1/orders/{order_id}", world.as_("agent_for_buyer"))
    assert "accept" in as_supplier.json()["allowed_actions"]
    assert "accept" not in as_buyer.json()["allowed_actions"]
    assert "cancel" in as_buyer.json()["allowed_actions"]


async def test_every_event_records_the_acting_key_and_party(api: Api) -> None:
    admin = api.admin
    agent = await api.register("agent")
    agent_key = await _new_key(api, agent["id"])
    agent_secret = agent_key["key"]
    buyer = await api.register("buyer", by=auth(agent_secret))
    supplier = await api.register("supplier", trade_assurance=True)
    supplier_key = await _new_key(api, supplier["id"])
    payments = await api.client.post("/v1/api-keys", json={"role": "payments"}, headers=admin)
    payments_key = payments.json()

    placed = await api.client.post(
        "/v1/orders",
        json=order_terms(supplier["id"], payment_schedule=None),
        headers={
            **auth(agent_secret, buyer["id"]),
            "Idempotency-Key": "place-1",
            "X-Request-Id": "req-place-1",
        },
    )
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    accepted = await api.client.post(
        f"/v1/orders/{order_id}/accept", headers=auth(supplier_key["key"])
    )
    assert accepted.status_code == 200
    paid = await api.client.post(
        f"/v1/orders/{order_id}/payments",
        json={"amount": placed.json()["total"], "method": "wallet", "provider_ref": "w-1"},
        headers=auth(payments_key["key"]),
    )
    assert paid.status_code == 200

    stored = await api.app.state.runtime.store.stream(order_id)
    by_type = {event.type: event.metadata for event in stored}
    assert list(by_type) == ["order.placed", "order.accepted", "payment.received", "funds.held"]
    assert by_type["order.placed"]["principal"] == {
        "key_id": agent_key["id"],
        "role": "buyer",
        "party_id": buyer["id"],
        "on_behalf_of": buyer["id"],
        "agent_id": agent["id"],
    }
    assert by_type["order.placed"]["actor"] == {"role": "buyer", "party_id": buyer["id"]}
    assert by_type["order.placed"]["request_id"] == "req-place-1"
    assert by_type["order.placed"]["idempotency_key"] == "place-1"
    assert by_type["order.accepted"]["principal"] == {
        "key_id": supplier_key["id"],
        "role": "supplier",
        "party_id": supplier["id"],
        "on_behalf_of": None,
        "agent_id": None,
    }
    assert by_type["funds.held"]["principal"]["key_id"] == payments_key["id"]
    assert by_type["funds.held"]["request_id"].startswith("req_")

    timeline = await api.client.get(f"/v1/orders/{order_id}/events", headers=admin)
    actors = [(e["type"], e["actor"]) for e in timeline.json()["data"]]
    assert actors == [
        ("order.placed", {"role": "buyer", "party_id": buyer["id"], "on_behalf_of": buyer["id"]}),
        ("order.accepted", {"role": "supplier", "party_id": supplier["id"], "on_behalf_of": None}),
        ("payment.received", {"role": "payments", "party_id": None, "on_behalf_of": None}),
        ("funds.held", {"role": "payments", "party_id": None, "on_behalf_of": None}),
    ]
    event = timeline.json()["data"][0]
    assert set(event) == {
        "id", "type", "order_id", "sequence", "position", "created_at", "data", "actor",
        "correlation_id", "causation_id",
    }  # fmt: skip
    assert event["id"] == f"evt_{stored[0].event_id.hex}"
    assert (event["order_id"], event["sequence"]) == (order_id, 1)


async def test_another_partys_order_is_not_found_exactly_like_a_missing_one(world: World) -> None:
    order_id = await world.order("accepted")
    stranger = world.as_("other_buyer")
    requests: list[tuple[str, str, Any, dict[str, str]]] = [
        ("GET", "/v1/orders/{}", None, {}),
        ("GET", "/v1/orders/{}?version=1", None, {}),
        ("GET", "/v1/orders/{}?version=99", None, {}),
        ("GET", "/v1/orders/{}/events", None, {}),
        ("POST", "/v1/orders/{}/cancel", {"reason": "x"}, {"If-Match": '"1"'}),
        ("POST", "/v1/orders/{}/messages", {"body": "hi"}, {"Idempotency-Key": "probe"}),
        ("POST", "/v1/orders/{}/confirm-receipt", None, {}),
    ]
    for method, template, body, extra in requests:
        answers = [
            await world.call(method, template.format(oid), {**stranger, **extra}, body)
            for oid in (order_id, "ord_" + "N" * 24)
        ]
        assert [a.status_code for a in answers] == [404, 404], template
        assert answers[0].json() == answers[1].json()
        assert answers[0].json()["code"] == "order_not_found"
    # The party that may see it gets 404 only for a version it never had.
    missing = await world.call("GET", f"/v1/orders/{order_id}?version=99", world.as_("buyer"))
    assert (missing.status_code, missing.json()["code"]) == (404, "version_not_found")


async def test_only_an_admin_sets_trade_assurance(world: World) -> None:
    agent = world.as_("agent")
    assured = {"kind": "supplier", "name": "S", "trade_assurance": True}
    for body, status, code in (
        (assured, 403, "trade_assurance_admin_only"),
        ({"kind": "agent", "name": "Sub-agent"}, 403, "forbidden"),
        ({"kind": "supplier", "name": "S"}, 201, ""),
    ):
        answer = await world.call("POST", "/v1/parties", agent, body)
        assert answer.status_code == status, answer.text
        if code:
            assert answer.json()["code"] == code
    supplier = answer.json()
    assert (supplier["trade_assurance"], supplier["managed_by"]) == (False, world.agent_id)
    order = order_terms(supplier["id"])
    refused = await world.call("POST", "/v1/orders", world.as_("agent_for_buyer"), order)
    assert refused.json()["code"] == "supplier_not_trade_assurance"
    for caller in ("agent", "buyer", "mediator"):
        patch = await world.call(
            "PATCH", f"/v1/parties/{supplier['id']}", world.as_(caller), {"trade_assurance": True}
        )
        assert patch.status_code in (403, 404), caller
    enabled = await world.call(
        "PATCH", f"/v1/parties/{supplier['id']}", world.admin, {"trade_assurance": True}
    )
    assert enabled.json()["trade_assurance"] is True
    placed = await world.call("POST", "/v1/orders", world.as_("agent_for_buyer"), order)
    assert placed.status_code == 201
    # Turning it off later does not touch the order placed under it.
    await world.call(
        "PATCH", f"/v1/parties/{supplier['id']}", world.admin, {"trade_assurance": False}
    )
    accepted = await world.call(
        "POST",
        f"/v1/orders/{placed.json()['id']}/accept",
        auth(world.as_("agent")["Authorization"].removeprefix("Bearer "), supplier["id"]),
    )
    assert accepted.status_code == 200
