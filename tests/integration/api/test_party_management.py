"""Parties as integrators manage them (DESIGN 7.3, 7.7): metadata, the list, changes and
deactivation, on both backends.

Metadata is Stripe-like (20 keys of <= 40 characters, string values <= 500; a change merges, a
key set to "" is removed; any broken rule is 422 invalid_metadata). ``GET /v1/parties`` shows
an admin every party and an agent those it registered. A deactivated party's keys stop
working, its agent cannot act for it, it is party to no new order, and its running orders go
on for everyone else.
"""

from typing import Any

import pytest

import escrow_api.auth
from escrow_core.store import Store
from support.api import Api, auth, order_terms, running_api
from support.api import test_settings as settings_for

from .world import DEPOSIT, World

Headers = dict[str, str]


async def _register(api: Api, by: Headers, kind: str = "buyer", **fields: Any) -> dict[str, Any]:
    body = {"kind": kind, "name": f"{kind} ltd", **fields}
    response = await api.client.post("/v1/parties", json=body, headers=by)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _patch(api: Api, party_id: str, body: Any, by: Headers) -> Any:
    return await api.client.patch(f"/v1/parties/{party_id}", json=body, headers=by)


async def _pages(api: Api, path: str, by: Headers) -> list[dict[str, Any]]:
    pages, cursor = [], None
    while True:
        url = path if cursor is None else f"{path}&cursor={cursor}"
        answer = await api.client.get(url, headers=by)
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        if not answer.json()["has_more"]:
            return pages
        cursor = answer.json()["next_cursor"]


def _ids(pages: list[dict[str, Any]]) -> list[str]:
    return [party["id"] for page in pages for party in page["data"]]


# --- metadata and PATCH --------------------------------------------------------------------


async def test_metadata_is_kept_and_a_patch_merges_it(api: Api) -> None:
    _agent, agent_auth = await api.party_with_key("agent")
    party = await _register(api, agent_auth, metadata={"erp_id": "V-1", "region": "south"})
    assert party["metadata"] == {"erp_id": "V-1", "region": "south"}
    assert party["deactivated_at"] is None

    changed = await _patch(
        api, party["id"], {"metadata": {"region": "", "tier": "gold"}, "name": "B2"}, agent_auth
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["metadata"] == {"erp_id": "V-1", "tier": "gold"}
    assert changed.json()["name"] == "B2"
    read = await api.client.get(f"/v1/parties/{party['id']}", headers=agent_auth)
    assert read.json() == changed.json()

    # Removing a key that is not there changes nothing; name alone leaves metadata.
    again = await _patch(api, party["id"], {"metadata": {"nope": ""}}, api.admin)
    assert again.json()["metadata"] == {"erp_id": "V-1", "tier": "gold"}
    renamed = await _patch(api, party["id"], {"name": "B3"}, api.admin)
    assert (renamed.json()["name"], renamed.json()["metadata"]) == ("B3", again.json()["metadata"])
    empty = await _patch(api, party["id"], {}, api.admin)
    assert (empty.status_code, empty.json()["code"]) == (422, "validation_error")


async def test_every_broken_metadata_rule_is_invalid_metadata(api: Api) -> None:
    party = await _register(api, api.admin, metadata={f"k{i}": "v" for i in range(19)})
    cases = [
        ({f"n{i}": "v" for i in range(21)}, "metadata"),  # too many keys at once
        ({"n1": "v", "n2": "v"}, "metadata"),  # 19 kept + 2 is 21
        ({"k" * 41: "v"}, "metadata." + "k" * 41),
        ({"": "v"}, "metadata."),
        ({"a": "v" * 501}, "metadata.a"),
        ({"a": 1}, "metadata.a"),
        ({"a": None}, "metadata.a"),
        ({"a": "bell\x07"}, "metadata.a"),
    ]
    for metadata, field in cases:
        response = await _patch(api, party["id"], {"metadata": metadata}, api.admin)
        assert response.status_code == 422, (metadata, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "invalid_metadata", problem
        assert problem["errors"][0]["field"] == field
    registered = await api.client.post(
        "/v1/parties",
        json={"kind": "buyer", "name": "x", "metadata": {"k" * 41: "v"}},
        headers=api.admin,
    )
    assert (registered.status_code, registered.json()["code"]) == (422, "invalid_metadata")
    not_an_object = await _patch(api, party["id"], {"metadata": ["a"]}, api.admin)
    assert not_an_object.status_code == 422

    # Exactly 20 is fine, and so is a change that removes as many as it adds at 20.
    at_limit = await _patch(api, party["id"], {"metadata": {"k19": "v"}}, api.admin)
    assert len(at_limit.json()["metadata"]) == 20
    swapped = await _patch(
        api, party["id"], {"metadata": {"k0": "", "k1": "", "x": "1", "y": "2"}}, api.admin
    )
    assert swapped.status_code == 200, swapped.text
    assert len(swapped.json()["metadata"]) == 20
    unchanged = await api.client.get(f"/v1/parties/{party['id']}", headers=api.admin)
    assert unchanged.json()["metadata"] == swapped.json()["metadata"]


async def test_who_may_change_what(api: Api) -> None:
    _agent, agent_auth = await api.party_with_key("agent")
    _, stranger_auth = await api.party_with_key("agent")
    supplier = await _register(api, agent_auth, "supplier")
    buyer = await _register(api, agent_auth, "buyer")
    supplier_auth = auth(await api.party_key(supplier["id"]))
    agent_secret = agent_auth["Authorization"].removeprefix("Bearer ")

    def code(response: Any) -> tuple[int, str | None]:
        return response.status_code, response.json().get("code")

    # trade_assurance stays the admin's, and only a supplier's.
    assert code(await _patch(api, supplier["id"], {"trade_assurance": True}, agent_auth)) == (
        403,
        "trade_assurance_admin_only",
    )
    assert code(await _patch(api, buyer["id"], {"trade_assurance": True}, api.admin)) == (
        422,
        "trade_assurance_suppliers_only",
    )
    enabled = await _patch(api, supplier["id"], {"trade_assurance": True}, api.admin)
    assert enabled.json()["trade_assurance"] is True
    made = await api.client.post(
        "/v1/parties",
        json={"kind": "buyer", "name": "x", "trade_assurance": True},
        headers=api.admin,
    )
    assert code(made) == (422, "trade_assurance_suppliers_only")

    # The party itself, its agent acting for it, another agent: not theirs to change.
    assert code(await _patch(api, supplier["id"], {"name": "Me"}, supplier_auth)) == (
        403,
        "forbidden",
    )
    on_behalf = auth(agent_secret, supplier["id"])
    assert code(await _patch(api, supplier["id"], {"name": "Me"}, on_behalf)) == (
        403,
        "forbidden",
    )
    assert code(await _patch(api, supplier["id"], {"name": "Me"}, stranger_auth)) == (
        404,
        "party_not_found",
    )
    assert code(await _patch(api, "pty_nothere", {"name": "Me"}, api.admin)) == (
        404,
        "party_not_found",
    )


async def test_a_patch_with_an_idempotency_key_is_replayed(api: Api) -> None:
    party = await _register(api, api.admin)
    headers = {**api.admin, "Idempotency-Key": f"patch-{party['id']}"}
    first = await _patch(api, party["id"], {"metadata": {"a": "1"}}, headers)
    await _patch(api, party["id"], {"metadata": {"a": "2"}}, api.admin)
    replay = await _patch(api, party["id"], {"metadata": {"a": "1"}}, headers)
    other = await _patch(api, party["id"], {"metadata": {"a": "3"}}, headers)

    assert first.status_code == replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    now = await api.client.get(f"/v1/parties/{party['id']}", headers=api.admin)
    assert now.json()["metadata"] == {"a": "2"}  # the replay changed nothing


# --- the list ------------------------------------------------------------------------------


async def test_an_agent_lists_the_parties_it_registered_newest_first(api: Api) -> None:
    agent, agent_auth = await api.party_with_key("agent")
    _, other_agent_auth = await api.party_with_key("agent")
    made = [await _register(api, agent_auth, kind) for kind in ("buyer", "supplier") * 3]
    await _register(api, other_agent_auth)
    newest_first = [p["id"] for p in reversed(made)]

    pages = await _pages(api, "/v1/parties?limit=4", agent_auth)
    assert [len(page["data"]) for page in pages] == [4, 2]
    assert pages[-1]["next_cursor"] is None
    assert _ids(pages) == newest_first
    assert all(p["managed_by"] == agent["id"] for page in pages for p in page["data"])
    suppliers = await _pages(api, "/v1/parties?kind=supplier&limit=2", agent_auth)
    assert _ids(suppliers) == [p["id"] for p in reversed(made) if p["kind"] == "supplier"]

    bad = await api.client.get("/v1/parties?cursor=bm9wZQ", headers=agent_auth)
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_cursor")
    bad_kind = await api.client.get("/v1/parties?kind=admin", headers=agent_auth)
    assert bad_kind.status_code == 422


async def test_only_an_admin_and_agents_list_parties(api: Api) -> None:
    _agent, agent_auth = await api.party_with_key("agent")
    buyer = await _register(api, agent_auth)
    buyer_auth = auth(await api.party_key(buyer["id"]))
    agent_secret = agent_auth["Authorization"].removeprefix("Bearer ")
    mediator = auth(await api.role_key("mediator"))
    for headers in (buyer_auth, auth(agent_secret, buyer["id"]), mediator):
        response = await api.client.get("/v1/parties", headers=headers)
        assert (response.status_code, response.json()["code"]) == (403, "forbidden")


async def test_an_admin_lists_every_party_and_filters_by_kind(fresh_store: Store) -> None:
    async with running_api(settings_for(fresh_store.url)) as api:
        agent, agent_auth = await api.party_with_key("agent")
        buyer = await _register(api, agent_auth)
        supplier = await _register(api, api.admin, "supplier")
        everyone = await _pages(api, "/v1/parties?limit=2", api.admin)
        agents = await _pages(api, "/v1/parties?kind=agent", api.admin)

    assert _ids(everyone) == [supplier["id"], buyer["id"], agent["id"]]
    assert _ids(agents) == [agent["id"]]


# --- deactivation --------------------------------------------------------------------------


async def test_deactivating_stops_the_party_and_its_agent_but_not_its_running_orders(
    world: World,
) -> None:
    api = world.api
    running = await world.place()  # placed by the buyer, before the deactivation
    assert (await world.call("GET", "/v1/orders", world.as_("buyer"))).status_code == 200

    deactivated = await api.client.post(
        f"/v1/parties/{world.buyer_id}/deactivate", headers=world.admin
    )
    assert deactivated.status_code == 200, deactivated.text
    party = deactivated.json()
    assert party["id"] == world.buyer_id
    assert party["deactivated_at"] is not None
    again = await api.client.post(f"/v1/parties/{world.buyer_id}/deactivate", headers=world.admin)
    assert again.status_code == 200
    assert again.json() == party  # a no-op: the first time is kept

    # Its keys stop at once (this process's key cache forgets them).
    for caller in ("buyer",):
        gone = await world.call("GET", f"/v1/orders/{running}", world.as_(caller))
        assert (gone.status_code, gone.json()["code"]) == (401, "unauthenticated")
    # Its agent cannot act for it, neither reading nor writing.
    for method, path, body in (
        ("GET", f"/v1/orders/{running}", None),
        ("POST", "/v1/orders", order_terms(world.supplier_id)),
        ("POST", f"/v1/orders/{running}/cancel", {"reason": "x"}),
    ):
        refused = await world.call(method, path, world.as_("agent_for_buyer"), body)
        assert (refused.status_code, refused.json()["code"]) == (403, "party_deactivated")
    # ... nor change it or make it keys; an admin may still change it, but makes no keys.
    patched = await world.call(
        "PATCH", f"/v1/parties/{world.buyer_id}", world.as_("agent"), {"name": "New"}
    )
    assert (patched.status_code, patched.json()["code"]) == (403, "party_deactivated")
    keyed = await world.call("POST", f"/v1/parties/{world.buyer_id}/api-keys", world.as_("agent"))
    assert (keyed.status_code, keyed.json()["code"]) == (403, "party_deactivated")
    by_admin = await world.call("POST", f"/v1/parties/{world.buyer_id}/api-keys", world.admin)
    assert (by_admin.status_code, by_admin.json()["code"]) == (409, "party_deactivated")
    renamed = await world.call(
        "PATCH", f"/v1/parties/{world.buyer_id}", world.admin, {"metadata": {"why": "fraud"}}
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["deactivated_at"] == party["deactivated_at"]

    # The running order goes on: the other side, payments and the admin still act on it.
    await world.step(running, "accept", "supplier")
    paid = await world.pay(running, DEPOSIT, "after-deactivation")
    assert paid["amounts"]["paid"] == DEPOSIT
    note = await world.call(
        "POST", f"/v1/orders/{running}/messages", world.as_("supplier"), {"body": "still here"}
    )
    assert note.status_code == 200, note.text
    cancelled = await world.step(running, "cancel", "admin", {"reason": "buyer deactivated"})
    assert cancelled["status"] == "cancelled"
    # The agent as itself still sees the orders of the parties it registered.
    listed = await world.call("GET", f"/v1/orders/{running}", world.as_("agent"))
    assert listed.status_code == 200


async def test_no_new_order_names_a_deactivated_supplier(world: World) -> None:
    deactivated = await world.api.client.post(
        f"/v1/parties/{world.other_supplier_id}/deactivate", headers=world.admin
    )
    assert deactivated.status_code == 200
    for caller in ("buyer", "agent_for_buyer"):
        body = order_terms(world.other_supplier_id)
        refused = await world.call("POST", "/v1/orders", world.as_(caller), body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "party_deactivated"
        assert refused.json()["errors"][0]["field"] == "supplier_id"
    # The supplier's key is dead; its other orders are not touched by that.
    gone = await world.call("GET", "/v1/orders", world.as_("other_supplier"))
    assert gone.status_code == 401


async def test_a_buyer_deactivated_elsewhere_places_no_order_on_a_cached_key(
    world: World, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process deactivates the buyer while this one still has its key cached (keys
    are cached for a few seconds; here for a minute, so the test cannot outrun it): the
    order is refused all the same."""
    monkeypatch.setattr(escrow_api.auth, "KEY_CACHE_SECONDS", 60.0)
    assert (await world.call("GET", "/v1/orders", world.as_("other_buyer"))).status_code == 200
    async with running_api(settings_for(database_url)) as elsewhere:
        done = await elsewhere.client.post(
            f"/v1/parties/{world.other_buyer_id}/deactivate", headers=elsewhere.admin
        )
        assert done.status_code == 200
    refused = await world.call(
        "POST", "/v1/orders", world.as_("other_buyer"), order_terms(world.other_supplier_id)
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "party_deactivated"
    listed = await world.call("GET", "/v1/orders", world.as_("other_buyer"))
    assert listed.status_code == 200  # still cached here: reading goes on until it expires


async def test_a_deactivated_agent_loses_its_keys_and_its_parties_keep_theirs(
    world: World,
) -> None:
    done = await world.api.client.post(
        f"/v1/parties/{world.agent_id}/deactivate", headers=world.admin
    )
    assert done.status_code == 200
    for caller in ("agent", "agent_for_buyer"):
        response = await world.call("GET", "/v1/orders", world.as_(caller))
        assert response.status_code == 401
    assert (await world.call("GET", "/v1/orders", world.as_("buyer"))).status_code == 200
    order_id = await world.place()
    assert order_id.startswith("ord_")


async def test_only_an_admin_deactivates_and_a_replay_answers_the_same(world: World) -> None:
    path = f"/v1/parties/{world.supplier_id}/deactivate"
    for caller, status in (("agent", 403), ("supplier", 403), ("mediator", 404)):
        response = await world.call("POST", path, world.as_(caller))
        assert response.status_code == status, (caller, response.text)
    missing = await world.call("POST", "/v1/parties/pty_missing/deactivate", world.admin)
    assert (missing.status_code, missing.json()["code"]) == (404, "party_not_found")
    headers = {**world.admin, "Idempotency-Key": f"off-{world.supplier_id}"}
    first = await world.call("POST", path, headers)
    replay = await world.call("POST", path, headers)
    assert first.status_code == replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
