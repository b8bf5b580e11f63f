"""ETag: "<version>" on order responses and If-Match on order commands (412 on mismatch)."""

import asyncio

from support.api import order_terms

from .world import DEPOSIT, World


async def test_order_responses_carry_the_version_as_etag(world: World) -> None:
    placed = await world.call(
        "POST", "/v1/orders", world.as_("buyer"), order_terms(world.supplier_id)
    )
    assert placed.status_code == 201
    order_id = placed.json()["id"]
    assert placed.headers["etag"] == '"1"'
    assert placed.headers["location"] == f"/v1/orders/{order_id}"
    accepted = await world.call("POST", f"/v1/orders/{order_id}/accept", world.as_("supplier"))
    assert accepted.headers["etag"] == '"2"'
    paid = await world.call(
        "POST",
        f"/v1/orders/{order_id}/payments",
        world.as_("payments"),
        {"amount": DEPOSIT, "method": "card", "provider_ref": "d"},
    )
    for response in (
        paid,
        await world.call("GET", f"/v1/orders/{order_id}", world.as_("buyer")),
    ):
        assert response.headers["etag"] == f'"{response.json()["version"]}"'
        assert response.json()["version"] > 2
    then = await world.call("GET", f"/v1/orders/{order_id}?version=1", world.as_("buyer"))
    assert then.headers["etag"] == '"1"'
    assert (then.json()["version"], then.json()["status"]) == (1, "placed")


async def test_a_command_runs_only_when_if_match_names_the_current_version(
    world: World,
) -> None:
    order_id = await world.order("accepted")
    path = f"/v1/orders/{order_id}/messages"
    version = 2
    for if_match in ['"2"', "3", "*", ' "5" ']:
        answer = await world.call(
            "POST", path, {**world.as_("buyer"), "If-Match": if_match}, {"body": "still on?"}
        )
        assert answer.status_code == 200, if_match
        version += 1
        assert answer.headers["etag"] == f'"{version}"'
    refused: list[str | bytes] = ['"1"', '"5"', '"0"', '"abc"', "", '"6", "7"', '"99999"']
    for if_match in [*refused, b'"\xb2"']:  # the last: a superscript two, a digit to Python
        answer = await world.call(
            "POST",
            f"/v1/orders/{order_id}/cancel",
            {**world.as_("supplier"), "If-Match": if_match},
            {"reason": "too late"},
        )
        assert answer.status_code == 412, if_match
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "precondition_failed"
    now = await world.call("GET", f"/v1/orders/{order_id}", world.admin)
    assert (now.headers["etag"], now.json()["status"]) == ('"6"', "accepted")


async def test_of_two_writers_naming_the_same_version_one_wins(world: World) -> None:
    order_id = await world.order("accepted")
    answers = await asyncio.gather(
        *(
            world.call(
                "POST",
                f"/v1/orders/{order_id}/messages",
                {**world.as_(side), "If-Match": '"2"'},
                {"body": f"from the {side}"},
            )
            for side in ("buyer", "supplier")
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 412]
    timeline = await world.call("GET", f"/v1/orders/{order_id}/events", world.admin)
    assert [e["type"] for e in timeline.json()["data"]].count("message.posted") == 1
