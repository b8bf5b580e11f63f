"""The buyer's bookkeeping on orders (DESIGN 7.3, 7.6): ``metadata`` and ``client_reference``
at placement, ``PATCH /v1/orders/{id}``, the list's filters, and the supplier side that never
sees any of it.
"""

import asyncio
import uuid
from typing import Any

from support.api import order_terms

from .world import World

BUYER_SIDE = ("buyer", "agent_for_buyer", "agent", "admin", "payments", "mediator")
SUPPLIER_SIDE = ("supplier", "agent_for_supplier")


def unique(prefix: str) -> str:
    """A value of this test's own: the session database is shared."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def place(world: World, buyer: str = "buyer", expect: int = 201, **terms: Any) -> Any:
    supplier_id = world.supplier_id if buyer == "buyer" else world.other_supplier_id
    headers = {**world.as_(buyer), **terms.pop("headers", {})}
    answer = await world.call("POST", "/v1/orders", headers, order_terms(supplier_id, **terms))
    assert answer.status_code == expect, answer.text
    return answer


async def patch(
    world: World, order_id: str, change: dict[str, Any], role: str = "buyer", **headers: str
) -> Any:
    return await world.call(
        "PATCH", f"/v1/orders/{order_id}", {**world.as_(role), **headers}, {"metadata": change}
    )


async def timeline(world: World, order_id: str, role: str) -> list[dict[str, Any]]:
    answer = await world.call("GET", f"/v1/orders/{order_id}/events?limit=100", world.as_(role))
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"])


async def feed(world: World, order_id: str, role: str, count: int) -> list[dict[str, Any]]:
    """The order's events in the feed once ``count`` show (PostgreSQL's feed holds events back
    while an older transaction, another test's, may still commit)."""
    for _ in range(200):
        answer = await world.call("GET", f"/v1/events?order_id={order_id}", world.as_(role))
        assert answer.status_code == 200, answer.text
        events = list(answer.json()["data"])
        if len(events) >= count:
            return events
        await asyncio.sleep(0.05)
    raise AssertionError(f"the feed never showed {count} events of {order_id}")


async def test_the_bookkeeping_is_the_buyer_sides_in_the_order_timeline_and_feed(
    world: World,
) -> None:
    reference = unique("PO")
    placed = await place(world, metadata={"cost_center": "B-12"}, client_reference=reference)
    order = placed.json()
    assert (order["metadata"], order["client_reference"]) == ({"cost_center": "B-12"}, reference)
    assert "update_metadata" in order["allowed_actions"]
    order_id = order["id"]
    updated = await patch(world, order_id, {"erp_id": "E-1"})
    assert updated.status_code == 200, updated.text

    for role in BUYER_SIDE:
        seen = (await world.call("GET", f"/v1/orders/{order_id}", world.as_(role))).json()
        assert seen["metadata"] == {"cost_center": "B-12", "erp_id": "E-1"}, role
        assert seen["client_reference"] == reference, role
        events = await timeline(world, order_id, role)
        assert [e["type"] for e in events] == ["order.placed", "order.metadata_updated"], role
        assert events[0]["data"]["client_reference"] == reference, role
        assert events[1]["data"]["metadata"] == seen["metadata"], role
    for role in SUPPLIER_SIDE:
        seen = (await world.call("GET", f"/v1/orders/{order_id}", world.as_(role))).json()
        assert "metadata" not in seen, role
        assert "client_reference" not in seen, role
        assert "update_metadata" not in seen["allowed_actions"], role
        events = await timeline(world, order_id, role)
        assert [e["type"] for e in events] == ["order.placed"], role
        assert "metadata" not in events[0]["data"], role
        assert "client_reference" not in events[0]["data"], role
        assert events[0]["data"]["buyer_id"] == world.buyer_id, role

    # The feed cuts the same way (the supplier's feed has the order, without the books).
    accepted = await world.step(order_id, "accept", "supplier")
    assert accepted["status"] == "accepted"
    buyer_feed = await feed(world, order_id, "buyer", 3)
    assert [e["type"] for e in buyer_feed] == [
        "order.placed",
        "order.metadata_updated",
        "order.accepted",
    ]
    assert buyer_feed[0]["data"]["metadata"] == {"cost_center": "B-12"}
    supplier_feed = await feed(world, order_id, "supplier", 2)
    assert [e["type"] for e in supplier_feed] == ["order.placed", "order.accepted"]
    assert "metadata" not in supplier_feed[0]["data"]
    assert "client_reference" not in supplier_feed[0]["data"]
    typed = await world.call(
        "GET",
        f"/v1/events?order_id={order_id}&type=order.metadata_updated",
        world.as_("supplier"),
    )
    assert typed.json()["data"] == []


async def test_a_second_order_with_the_reference_is_409_naming_the_first(world: World) -> None:
    reference = unique("PO")
    key = {"Idempotency-Key": unique("key")}
    first = (await place(world, client_reference=reference, headers=key)).json()

    second = await place(world, expect=409, client_reference=reference)
    problem = second.json()
    assert second.headers["content-type"] == "application/problem+json"
    assert problem["code"] == "duplicate_client_reference"
    assert problem["order_id"] == first["id"]
    assert first["id"] in problem["detail"]

    # The same placement again under its Idempotency-Key is a replay, not a conflict.
    replayed = await place(world, client_reference=reference, headers=key)
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json()["id"] == first["id"]
    # Unique per buyer: another buyer may use the same reference.
    assert (await place(world, buyer="other_buyer", client_reference=reference)).json()["id"]
    # The agent placing for the buyer is the buyer: the same conflict.
    agent = await place(world, buyer="agent_for_buyer", expect=409, client_reference=reference)
    assert agent.json()["order_id"] == first["id"]


async def test_concurrent_placements_with_one_reference_exactly_one_wins(world: World) -> None:
    reference = unique("PO")
    answers = await asyncio.gather(
        *(
            world.call(
                "POST",
                "/v1/orders",
                world.as_("buyer"),
                {**_terms(world), "client_reference": reference},
            )
            for _ in range(6)
        )
    )

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201, 409, 409, 409, 409, 409], [a.text for a in answers]
    [winner] = [a.json()["id"] for a in answers if a.status_code == 201]
    assert {a.json()["order_id"] for a in answers if a.status_code == 409} == {winner}
    listed = await world.call("GET", f"/v1/orders?client_reference={reference}", world.as_("buyer"))
    assert [o["id"] for o in listed.json()["data"]] == [winner]


def _terms(world: World) -> dict[str, Any]:
    return order_terms(world.supplier_id)


async def test_patch_merges_under_if_match_and_idempotency_key(world: World) -> None:
    order_id = (await place(world, metadata={"a": "1", "b": "2"})).json()["id"]

    stale = await patch(world, order_id, {"c": "3"}, **{"If-Match": '"7"'})
    assert stale.status_code == 412, stale.text
    key = unique("key")
    merged = await patch(world, order_id, {"b": "", "c": "3"}, **{"If-Match": '"1"'})
    assert merged.status_code == 200, merged.text
    assert merged.json()["metadata"] == {"a": "1", "c": "3"}
    assert merged.headers["etag"] == '"2"'

    first = await patch(world, order_id, {"d": "4"}, **{"Idempotency-Key": key})
    again = await patch(world, order_id, {"d": "4"}, **{"Idempotency-Key": key})
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert first.json()["version"] == 3
    reused = await patch(world, order_id, {"d": "5"}, **{"Idempotency-Key": key})
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"

    # Nothing to change records nothing.
    same = await patch(world, order_id, {"a": "1", "absent": ""})
    assert same.status_code == 200
    assert same.json()["version"] == 3


async def test_patch_is_the_buyer_sides_in_any_status_within_the_limits(world: World) -> None:
    order_id = await world.order("cancelled")

    assert (await patch(world, order_id, {"written_off": "yes"})).status_code == 200
    agent = await patch(world, order_id, {"by": "agent"}, "agent_for_buyer")
    assert agent.json()["metadata"] == {"written_off": "yes", "by": "agent"}
    refused = await patch(world, order_id, {"k": "v"}, "supplier")
    assert refused.status_code == 403
    assert refused.json()["code"] == "action_not_permitted"
    stranger = await patch(world, order_id, {"k": "v"}, "other_buyer")
    assert stranger.status_code == 404

    too_long = await patch(world, order_id, {"k": "v" * 501})
    assert too_long.status_code == 422
    body = too_long.json()
    assert body["code"] == "invalid_metadata"
    assert body["errors"][0]["field"] == "metadata.k"
    assert body["errors"][0]["code"] == "value_too_long"
    too_many = await patch(world, order_id, {f"k{n}": "v" for n in range(19)})
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["code"] == "too_many_keys"
    not_text = await patch(world, order_id, {"k": 7})
    assert not_text.status_code == 422
    assert not_text.json()["code"] == "invalid_metadata"

    bad_place = await place(world, expect=422, metadata={"k" * 41: "v"})
    assert bad_place.json()["code"] == "invalid_metadata"
    long_reference = await place(world, expect=422, client_reference="r" * 101)
    assert long_reference.json()["code"] == "validation_error"


async def _ids(world: World, query: str, role: str = "buyer") -> list[str]:
    found, cursor = [], None
    for _ in range(50):
        path = f"/v1/orders?limit=2&{query}" + (f"&cursor={cursor}" if cursor else "")
        answer = await world.call("GET", path, world.as_(role))
        assert answer.status_code == 200, answer.text
        page = answer.json()
        found += [order["id"] for order in page["data"]]
        if not page["has_more"]:
            return found
        cursor = page["next_cursor"]
    raise AssertionError("the list never ended")


async def test_the_list_filters_by_metadata_reference_and_creation_time(world: World) -> None:
    run = unique("run")
    one = (await place(world, metadata={"run": run, "region": "south"})).json()
    two = (await place(world, metadata={"run": run, "region": "north", "odd": "a:b"})).json()
    three = (
        await place(world, metadata={"run": run, "region": "south"}, client_reference=run)
    ).json()
    await world.step(three["id"], "accept", "supplier")

    # Newest first, paged; every metadata= pair must match; a value may hold a colon.
    assert await _ids(world, f"metadata=run:{run}") == [three["id"], two["id"], one["id"]]
    south = f"metadata=run:{run}&metadata=region:south"
    assert await _ids(world, south) == [three["id"], one["id"]]
    assert await _ids(world, f"{south}&status=accepted") == [three["id"]]
    assert await _ids(world, f"metadata=run:{run}&metadata=odd:a:b") == [two["id"]]
    assert await _ids(world, f"metadata=run:{run}&metadata=region:east") == []
    assert await _ids(world, f"client_reference={run}") == [three["id"]]
    assert await _ids(world, f"client_reference={run}", "admin") == [three["id"]]
    assert await _ids(world, f"metadata=run:{run}", "agent_for_buyer") == [
        three["id"],
        two["id"],
        one["id"],
    ]
    # Created at or after the second, before the third.
    gte, lt = two["created_at"], three["created_at"]
    assert await _ids(world, f"metadata=run:{run}&created_gte={gte}") == [three["id"], two["id"]]
    window = f"metadata=run:{run}&created_gte={gte}&created_lt={lt}"
    assert await _ids(world, window) == [two["id"]]
    assert await _ids(world, f"metadata=run:{run}&created_lt={one['created_at']}") == []

    # The supplier side learns nothing from a filter on the buyer's books.
    for role in SUPPLIER_SIDE:
        assert await _ids(world, f"metadata=run:{run}", role) == []
        assert await _ids(world, f"client_reference={run}", role) == []
        assert three["id"] in await _ids(world, f"created_gte={gte}", role)


async def test_bad_filters_are_422_with_stable_codes(world: World) -> None:
    for query, code in [
        ("metadata=nocolon", "invalid_metadata_filter"),
        ("metadata=:value", "invalid_metadata_filter"),
        ("metadata=key:", "invalid_metadata_filter"),
        ("metadata=key:%00", "invalid_metadata_filter"),
        ("client_reference=a%00b", "invalid_client_reference"),
        ("created_gte=yesterday", "invalid_timestamp"),
        ("created_lt=2027-01-01T00:00:00", "invalid_timestamp"),  # no UTC offset
        ("created_gte=1999-12-31T00:00:00Z", "invalid_timestamp"),
    ]:
        answer = await world.call("GET", f"/v1/orders?{query}", world.as_("buyer"))
        assert answer.status_code == 422, (query, answer.text)
        assert answer.json()["code"] == code, query
