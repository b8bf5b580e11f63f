"""API keys as integrators manage them (DESIGN 7.3), on both backends.

``GET /v1/api-keys`` shows an admin every key and a party or agent its own, with
``revoked_at`` and ``last_used_at`` (to the minute, written at most once a minute per key).
A key may be made ``read`` only (every non-GET is 403 read_only_key, and it is offered no
order action) and may expire (then 401; an expiry already past is refused at creation).
"""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

import escrow_api.auth
from escrow_core.store import Store
from escrow_core.store.schema import api_keys
from support.api import Api, auth, running_api
from support.api import test_settings as settings_for

from .world import World

Headers = dict[str, str]


async def _key(api: Api, party_id: str | None, by: Headers | None = None, **body: Any) -> Any:
    path = "/v1/api-keys" if party_id is None else f"/v1/parties/{party_id}/api-keys"
    return await api.client.post(path, json=body or None, headers=by or api.admin)


async def _made(api: Api, party_id: str | None, by: Headers | None = None, **body: Any) -> Any:
    response = await _key(api, party_id, by, **body)
    assert response.status_code == 201, response.text
    return response.json()


async def _listed(api: Api, path: str, by: Headers) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        url = path if cursor is None else f"{path}{'&' if '?' in path else '?'}cursor={cursor}"
        answer = await api.client.get(url, headers=by)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert set(page) == {"data", "next_cursor", "has_more"}
        items.extend(page["data"])
        if not page["has_more"]:
            return items
        cursor = page["next_cursor"]


# --- the list ------------------------------------------------------------------------------


async def test_keys_are_listed_newest_first_to_their_party_and_the_admin(world: World) -> None:
    api = world.api
    made = [await _made(api, world.buyer_id) for _ in range(3)]
    revoked = await api.client.delete(f"/v1/api-keys/{made[0]['id']}", headers=world.admin)
    assert revoked.status_code == 200

    mine = await _listed(api, "/v1/api-keys?limit=2", world.as_("buyer"))
    # The world's buyer has two keys of its own before these: the one in use, a revoked one.
    assert [k["id"] for k in mine[:3]] == [k["id"] for k in reversed(made)]
    assert len(mine) == 5
    assert {k["party_id"] for k in mine} == {world.buyer_id}
    assert all(k["key"] is None for k in mine)  # a secret is never listed
    first = next(k for k in mine if k["id"] == made[0]["id"])
    assert first["revoked_at"] is not None
    assert set(first) == {
        "id", "key", "role", "party_id", "scope", "created_at", "expires_at", "revoked_at",
        "last_used_at",
    }  # fmt: skip

    # The agent acting for the buyer sees the buyer's; as itself, its own only.
    for_buyer = await _listed(api, "/v1/api-keys", world.as_("agent_for_buyer"))
    assert [k["id"] for k in for_buyer] == [k["id"] for k in mine]
    agents = await _listed(api, "/v1/api-keys", world.as_("agent"))
    assert {k["party_id"] for k in agents} == {world.agent_id}
    # The admin sees everyone's, one party's with party_id; a party naming another: nothing.
    by_admin = await _listed(api, f"/v1/api-keys?party_id={world.buyer_id}&limit=3", world.admin)
    assert [k["id"] for k in by_admin] == [k["id"] for k in mine]
    others = await api.client.get(
        f"/v1/api-keys?party_id={world.supplier_id}", headers=world.as_("buyer")
    )
    assert others.json()["data"] == []
    everyone = await api.client.get("/v1/api-keys?limit=100", headers=world.admin)
    assert len({k["party_id"] for k in everyone.json()["data"]}) > 2

    for caller in ("mediator", "payments"):
        refused = await world.call("GET", "/v1/api-keys", world.as_(caller))
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    bad = await world.call("GET", "/v1/api-keys?cursor=W10", world.admin)
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_cursor")


# --- read-only keys ------------------------------------------------------------------------


async def test_a_read_key_is_offered_no_action_and_reads_like_its_role(world: World) -> None:
    api = world.api
    order_id = await world.order("placed")
    read_supplier = await _made(api, world.supplier_id, scope="read")
    assert (read_supplier["scope"], read_supplier["expires_at"]) == ("read", None)
    full = await world.call("GET", f"/v1/orders/{order_id}", world.as_("supplier"))
    assert "accept" in full.json()["allowed_actions"]
    read = await world.call("GET", f"/v1/orders/{order_id}", auth(read_supplier["key"]))
    assert read.status_code == 200
    assert read.json()["allowed_actions"] == []
    listed = await world.call("GET", "/v1/orders", auth(read_supplier["key"]))
    assert [o["allowed_actions"] for o in listed.json()["data"] if o["id"] == order_id] == [[]]

    read_agent = await _made(api, world.agent_id, scope="read")
    for_supplier = auth(read_agent["key"], world.supplier_id)
    seen = await world.call("GET", f"/v1/orders/{order_id}", for_supplier)
    assert (seen.status_code, seen.json()["allowed_actions"]) == (200, [])
    refused = await world.call("POST", f"/v1/orders/{order_id}/accept", for_supplier)
    assert (refused.status_code, refused.json()["code"]) == (403, "read_only_key")
    unchanged = await world.call("GET", f"/v1/orders/{order_id}", world.admin)
    assert unchanged.json()["status"] == "placed"


async def test_a_read_key_is_refused_on_every_route_that_is_not_a_get(world: World) -> None:
    api = world.api
    read_admin = auth((await _made(api, None, role="admin", scope="read"))["key"])
    read_buyer = auth((await _made(api, world.buyer_id, scope="read"))["key"])
    fill = {"order_id": "ord_x", "party_id": world.buyer_id, "key_id": "key_x"}
    document = api.app.openapi()
    writes = [
        (method.upper(), path)
        for path, operations in document["paths"].items()
        if path.startswith("/v1/")
        for method in operations
        if method != "get"
    ]
    assert len(writes) > 20
    for method, template in writes:
        path = template.format_map(_Anything(fill))
        for headers in (read_admin, read_buyer):
            response = await world.call(method, path, headers, {})
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["code"] == "read_only_key", (method, path)
    # ... while reads work.
    assert (await world.call("GET", "/v1/parties", read_admin)).status_code == 200
    assert (await world.call("GET", "/v1/api-keys", read_buyer)).status_code == 200


class _Anything(dict[str, str]):
    """Fills every path parameter: the known ones with real ids, the rest with a junk id."""

    def __missing__(self, name: str) -> str:
        return "xyz_1"


# --- expiry and last use -------------------------------------------------------------------


async def test_an_expiry_must_be_in_the_future(api: Api) -> None:
    buyer = await api.register("buyer")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    for party_id, body in ((buyer["id"], {}), (None, {"role": "payments"})):
        refused = await _key(api, party_id, expires_at=past, **body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "invalid_expires_at"
        assert refused.json()["errors"][0]["field"] == "expires_at"
    for wrong in ("tomorrow", "3001-01-01T00:00:00Z", "2030-01-01T00:00:00"):
        refused = await _key(api, buyer["id"], expires_at=wrong)
        assert (refused.status_code, refused.json()["code"]) == (422, "validation_error")
    bad_scope = await _key(api, buyer["id"], scope="write")
    assert bad_scope.status_code == 422
    later = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    made = await _made(api, buyer["id"], expires_at=later.isoformat())
    assert datetime.fromisoformat(made["expires_at"]) == later
    assert made["scope"] == "full"


@pytest.fixture
async def sandbox(fresh_store: Store, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    """The app in sandbox mode on a database of its own, its service clock moved to the start
    of a minute (so a test has most of a minute before the next), keys cached for a minute
    (so a test cannot outrun the cache)."""
    monkeypatch.setattr(escrow_api.auth, "KEY_CACHE_SECONDS", 60.0)
    async with running_api(settings_for(fresh_store.url, sandbox=True)) as api:
        now = await api.app.state.runtime.store.now()
        await _advance(api, 60 - now.second)
        yield api


async def _advance(api: Api, seconds: int) -> None:
    moved = await api.client.post(
        "/v1/sandbox/clock", json={"advance_seconds": seconds}, headers=api.admin
    )
    assert moved.status_code == 200, moved.text


async def _last_used_row(api: Api, key_id: str) -> datetime | None:
    async with api.app.state.runtime.store.read() as conn:
        query = sa.select(api_keys.c.last_used_at).where(api_keys.c.id == key_id)
        value: datetime | None = (await conn.execute(query)).scalar_one()
    return value


async def test_a_key_stops_working_when_it_expires(sandbox: Api) -> None:
    api = sandbox
    buyer = await api.register("buyer")
    now = await api.app.state.runtime.store.now()
    made = await _made(api, buyer["id"], expires_at=(now + timedelta(seconds=90)).isoformat())
    headers = auth(made["key"])
    assert (await api.client.get("/v1/orders", headers=headers)).status_code == 200

    await _advance(api, 120)  # past its expiry, while this process has the key cached
    expired = await api.client.get("/v1/orders", headers=headers)
    assert (expired.status_code, expired.json()["code"]) == (401, "unauthenticated")
    # ... and in a process that looks it up afresh.
    async with running_api(settings_for(str(api.app.state.runtime.store.url), sandbox=True)) as b:
        assert (await b.client.get("/v1/orders", headers=headers)).status_code == 401
    listed = await api.client.get(f"/v1/api-keys?party_id={buyer['id']}", headers=api.admin)
    assert listed.json()["data"][0]["expires_at"] == made["expires_at"]


async def test_last_use_is_kept_to_the_minute_and_written_once_a_minute(sandbox: Api) -> None:
    api = sandbox
    buyer = await api.register("buyer")
    made = await _made(api, buyer["id"])
    headers = auth(made["key"])
    assert made["last_used_at"] is None

    assert (await api.client.get("/v1/orders", headers=headers)).status_code == 200
    minute = (await api.app.state.runtime.store.now()).replace(second=0, microsecond=0)
    assert await _last_used_row(api, made["id"]) == minute
    listed = await api.client.get(f"/v1/api-keys?party_id={buyer['id']}", headers=api.admin)
    assert datetime.fromisoformat(listed.json()["data"][0]["last_used_at"]) == minute

    # Within the minute nothing more is written: a mark put in the row stays there.
    mark = minute - timedelta(hours=1)
    async with api.app.state.runtime.store.transaction() as conn:
        await conn.execute(
            api_keys.update().where(api_keys.c.id == made["id"]).values(last_used_at=mark)
        )
    for _ in range(3):
        assert (await api.client.get("/v1/orders", headers=headers)).status_code == 200
    assert await _last_used_row(api, made["id"]) == mark

    # The next minute, the first use writes it again.
    await _advance(api, 60)
    assert (await api.client.get("/v1/api-keys", headers=headers)).status_code == 200
    assert await _last_used_row(api, made["id"]) == minute + timedelta(minutes=1)
