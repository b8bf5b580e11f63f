"""Idempotency-Key as DESIGN section 4 has it (and Stripe does): replay, reuse, in flight,
scope, what is stored and what is not, concurrent duplicates; on both backends."""

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from escrow_core.store.schema import idempotency_keys
from support.api import auth, order_terms

from .world import BALANCE, DEPOSIT, World


def _key() -> str:
    return f"idem-{uuid.uuid4()}"


def _with(headers: dict[str, str], key: str, **extra: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key, **extra}


async def _orders_of(world: World, buyer_id: str) -> list[dict[str, Any]]:
    listed = await world.call("GET", f"/v1/orders?buyer_id={buyer_id}&limit=100", world.admin)
    return list(listed.json()["data"])


async def _events(world: World, order_id: str) -> list[str]:
    timeline = await world.call("GET", f"/v1/orders/{order_id}/events?limit=100", world.admin)
    return [event["type"] for event in timeline.json()["data"]]


async def test_a_retry_replays_the_first_answer_exactly(world: World) -> None:
    key, body = _key(), order_terms(world.supplier_id)
    first = await world.call("POST", "/v1/orders", _with(world.as_("buyer"), key), body)
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    # The same JSON, keys in another order and spaced differently, is the same body.
    same_body = json.dumps(dict(reversed(list(body.items()))), indent=2).encode()
    for content in (json.dumps(body).encode(), same_body):
        again = await world.api.client.post(
            "/v1/orders",
            content=content,
            headers=_with(world.as_("buyer"), key, **{"Content-Type": "application/json"}),
        )
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content
        assert again.headers["etag"] == first.headers["etag"] == '"1"'
        assert again.headers["location"] == first.headers["location"]
        assert again.headers["content-type"] == first.headers["content-type"]
    assert len(await _orders_of(world, world.buyer_id)) == 1


async def test_a_replay_answers_as_it_did_even_after_the_order_moved_on(world: World) -> None:
    order_id = await world.order("placed")
    key = _key()
    accept = f"/v1/orders/{order_id}/accept"
    first = await world.call("POST", accept, _with(world.as_("supplier"), key))
    await world.pay(order_id, DEPOSIT, "d1")
    replay = await world.call("POST", accept, _with(world.as_("supplier"), key))
    assert replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content
    assert replay.json()["status"] == "accepted"
    assert replay.headers["etag"] == '"2"'
    assert (await _events(world, order_id)).count("order.accepted") == 1


async def test_the_same_key_with_another_body_is_refused_and_runs_nothing(world: World) -> None:
    key = _key()
    first = await world.call(
        "POST", "/v1/orders", _with(world.as_("buyer"), key), order_terms(world.supplier_id)
    )
    assert first.status_code == 201
    other = order_terms(world.supplier_id, remarks="changed my mind")
    reused = await world.call("POST", "/v1/orders", _with(world.as_("buyer"), key), other)
    assert reused.status_code == 422
    assert reused.headers["content-type"] == "application/problem+json"
    assert reused.json()["code"] == "idempotency_key_reused"
    assert len(await _orders_of(world, world.buyer_id)) == 1


def _hold_the_first_command(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> tuple[asyncio.Event, asyncio.Event]:
    """Hold the next command that gets as far as deciding (it holds its key by then) until
    ``go_on`` is set; ``entered`` is set when it is held."""
    service = world.api.app.state.runtime.commands
    entered, go_on = asyncio.Event(), asyncio.Event()
    decide_and_write = service._decide_and_write

    async def held_up(*args: Any, **kwargs: Any) -> Any:
        if not entered.is_set():
            entered.set()
            await go_on.wait()
        return await decide_and_write(*args, **kwargs)

    monkeypatch.setattr(service, "_decide_and_write", held_up)
    return entered, go_on


async def test_a_duplicate_waits_for_the_first_and_replays_its_answer(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_id = await world.order("placed")
    entered, go_on = _hold_the_first_command(world, monkeypatch)
    path, headers = f"/v1/orders/{order_id}/messages", _with(world.as_("buyer"), _key())
    first = asyncio.create_task(world.call("POST", path, headers, {"body": "one"}))
    await asyncio.wait_for(entered.wait(), 10)
    duplicate = asyncio.create_task(world.call("POST", path, headers, {"body": "one"}))
    await asyncio.sleep(0.3)
    assert not duplicate.done(), "the duplicate waits for the first"

    go_on.set()
    done, replayed = await first, await duplicate

    assert done.status_code == 200
    assert "idempotent-replayed" not in done.headers
    assert replayed.status_code == 200
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.content == done.content
    assert (await _events(world, order_id)).count("message.posted") == 1


async def test_another_body_never_overtakes_a_slow_first_request(
    world: World, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """The first request's answer stands: a request with another body under its key, sent
    while the first runs, is 409 once it has waited its turn long enough (PostgreSQL), or
    waits for the write lock and is then 422 (SQLite); it never runs."""
    monkeypatch.setattr("escrow_core.application.commands.DUPLICATE_WAIT_SECONDS", 0.3)
    order_id = await world.order("placed")
    entered, go_on = _hold_the_first_command(world, monkeypatch)
    path, headers = f"/v1/orders/{order_id}/messages", _with(world.as_("buyer"), _key())
    first = asyncio.create_task(world.call("POST", path, headers, {"body": "one"}))
    await asyncio.wait_for(entered.wait(), 10)

    other = asyncio.create_task(world.call("POST", path, headers, {"body": "two"}))
    if backend == "postgresql":
        busy = await asyncio.wait_for(other, 10)
        assert busy.status_code == 409
        assert busy.headers["content-type"] == "application/problem+json"
        assert busy.json()["code"] == "idempotency_key_in_flight"
        same = await world.call("POST", path, headers, {"body": "one"})
        assert same.json()["code"] == "idempotency_key_in_flight"
    go_on.set()
    done = await first
    if backend == "sqlite":
        reused = await other
        assert reused.status_code == 422
        assert reused.json()["code"] == "idempotency_key_reused"

    assert done.status_code == 200
    monkeypatch.undo()
    replay = await world.call("POST", path, headers, {"body": "one"})
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == done.content
    changed = await world.call("POST", path, headers, {"body": "two"})
    assert changed.status_code == 422
    assert changed.json()["code"] == "idempotency_key_reused"
    timeline = await world.call("GET", f"/v1/orders/{order_id}/events?limit=100", world.admin)
    posted = [e["data"]["body"] for e in timeline.json()["data"] if e["type"] == "message.posted"]
    assert posted == ["one"]


async def test_the_key_is_scoped_to_the_caller_and_the_path(world: World) -> None:
    key, body = _key(), order_terms(world.supplier_id)
    placed: dict[str, httpx.Response] = {}
    for caller in ("buyer", "other_buyer", "agent_for_buyer"):
        placed[caller] = await world.call("POST", "/v1/orders", _with(world.as_(caller), key), body)
        assert placed[caller].status_code == 201, caller
        assert "idempotent-replayed" not in placed[caller].headers, caller
    ids = {response.json()["id"] for response in placed.values()}
    assert len(ids) == 3, "each caller's key is its own"
    # Another key of the same party shares the party's keys: a replay, not a second order.
    second_key = auth(await world.api.party_key(world.buyer_id))
    replay = await world.call("POST", "/v1/orders", _with(second_key, key), body)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == placed["buyer"].json()["id"]
    # The same key on another path is another request.
    for order in placed.values():
        accepted = await world.call(
            "POST", f"/v1/orders/{order.json()['id']}/accept", _with(world.as_("supplier"), key)
        )
        assert accepted.status_code == 200
        assert "idempotent-replayed" not in accepted.headers
    # Party-less roles: the key is scoped to the API key itself.
    other_admin = auth((await world.api.client.post(
        "/v1/api-keys", json={"role": "admin"}, headers=world.admin
    )).json()["key"])  # fmt: skip
    party = {"kind": "buyer", "name": "Scoped Ltd"}
    made = [
        await world.call("POST", "/v1/parties", _with(headers, key), party)
        for headers in (world.admin, other_admin)
    ]
    assert [m.status_code for m in made] == [201, 201]
    assert made[0].json()["id"] != made[1].json()["id"]


async def test_a_refusal_by_the_orders_rules_is_stored_and_replayed(world: World) -> None:
    order_id = await world.order("accepted")
    key, ship = _key(), {"carrier": "DHL", "tracking_number": "1Z"}
    path, supplier = f"/v1/orders/{order_id}/ship", world.as_("supplier")
    refused = await world.call("POST", path, _with(supplier, key), ship)
    assert refused.status_code == 409
    assert refused.json()["code"] == "not_fully_held"
    await world.pay(order_id, DEPOSIT + BALANCE, "all")
    replay = await world.call("POST", path, _with(supplier, key), ship)
    assert replay.status_code == 409
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == refused.content
    assert replay.headers["content-type"] == "application/problem+json"
    # A new key is a new request, and now it runs.
    assert (await world.call("POST", path, _with(supplier, _key()), ship)).status_code == 200

    # A payment under a provider_ref already paid with another amount is refused, and the
    # refusal is replayed (an overpayment is no refusal any more: the excess is refunded).
    pay_key = _key()
    other_order = await world.order("accepted")
    await world.pay(other_order, DEPOSIT, "dep")
    conflicting = {"amount": 10**9, "method": "card", "provider_ref": "dep"}
    pay_path = f"/v1/orders/{other_order}/payments"
    first = await world.call("POST", pay_path, _with(world.as_("payments"), pay_key), conflicting)
    assert (first.status_code, first.json()["code"]) == (409, "provider_ref_conflict")
    again = await world.call("POST", pay_path, _with(world.as_("payments"), pay_key), conflicting)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content


async def test_validation_auth_and_precondition_failures_are_not_stored(world: World) -> None:
    order_id = await world.order("held")
    path, supplier = f"/v1/orders/{order_id}/ship", world.as_("supplier")

    key = _key()  # validation: the corrected retry with the same key runs
    invalid = await world.call("POST", path, _with(supplier, key), {"carrier": "DHL"})
    assert (invalid.status_code, invalid.json()["code"]) == (422, "validation_error")
    fixed = await world.call(
        "POST", path, _with(supplier, key), {"carrier": "DHL", "tracking_number": "1Z"}
    )
    assert fixed.status_code == 200
    assert "idempotent-replayed" not in fixed.headers

    other = await world.order("shipped")
    for caller, path, expected in (
        ("agent", f"/v1/orders/{other}/deliver", "on_behalf_of_required"),  # 403 at the edge
        ("buyer", f"/v1/orders/{other}/deliver", "action_not_permitted"),  # 403 by the rules
        ("other_buyer", f"/v1/orders/{other}/deliver", "order_not_found"),  # 404
    ):
        key = _key()
        for _ in range(2):
            answer = await world.call("POST", path, _with(world.as_(caller), key))
            assert answer.json()["code"] == expected
            assert "idempotent-replayed" not in answer.headers

    key = _key()  # If-Match: 412 is not stored; the retry naming the right version runs
    deliver = f"/v1/orders/{other}/deliver"
    stale = await world.call("POST", deliver, _with(supplier, key, **{"If-Match": '"3"'}))
    assert (stale.status_code, stale.json()["code"]) == (412, "precondition_failed")
    version = (await world.call("GET", f"/v1/orders/{other}", supplier)).headers["etag"]
    current = await world.call("POST", deliver, _with(supplier, key, **{"If-Match": version}))
    assert current.status_code == 200
    assert "idempotent-replayed" not in current.headers

    # Unauthenticated: nothing is claimed, so the real caller's first use is fresh.
    key = _key()
    message = {"body": "hi"}
    anonymous = await world.call(
        "POST", f"/v1/orders/{other}/messages", {"Idempotency-Key": key}, message
    )
    assert anonymous.status_code == 401
    posted = await world.call(
        "POST", f"/v1/orders/{other}/messages", _with(world.as_("buyer"), key), message
    )
    assert posted.status_code == 200
    assert "idempotent-replayed" not in posted.headers


async def test_concurrent_duplicates_run_once(world: World) -> None:
    for round_ in range(4):
        key, body = _key(), order_terms(world.supplier_id, remarks=f"round {round_}")
        answers = await asyncio.gather(
            *(world.call("POST", "/v1/orders", _with(world.as_("buyer"), key), body) for _ in "ab")
        )
        _assert_one_ran(answers, 201)
    assert len(await _orders_of(world, world.buyer_id)) == 4

    order_id = await world.order("placed")
    key = _key()
    answers = await asyncio.gather(
        *(
            world.call("POST", f"/v1/orders/{order_id}/accept", _with(world.as_("supplier"), key))
            for _ in "abc"
        )
    )
    _assert_one_ran(answers, 200)
    assert await _events(world, order_id) == ["order.placed", "order.accepted"]


def _assert_one_ran(answers: list[httpx.Response], status: int) -> None:
    ran = [a for a in answers if a.status_code == status and "idempotent-replayed" not in a.headers]
    assert len(ran) == 1, [(a.status_code, a.text[:100]) for a in answers]
    for other in answers:
        if other is ran[0]:
            continue
        if other.status_code == 409:
            assert other.json()["code"] == "idempotency_key_in_flight"
        else:
            assert other.headers["idempotent-replayed"] == "true"
            assert other.content == ran[0].content


async def test_keys_are_1_to_255_printable_ascii_characters(world: World) -> None:
    for key, status in (("k", 201), ("k" * 255, 201), ("k" * 256, 422), ("k" * 5000, 422)):
        answer = await world.call(
            "POST", "/v1/parties", _with(world.admin, key), {"kind": "buyer", "name": "Len"}
        )
        assert answer.status_code == status, len(key)
        if status == 422:
            assert answer.json()["code"] == "validation_error"
            assert answer.json()["errors"][0]["field"] == "Idempotency-Key"
    for odd in ("", "tab\there", "naïve", "line\nbreak"):
        headers = {**world.admin, "Idempotency-Key": odd.encode("utf-8")}
        answer = await world.api.client.post(
            "/v1/parties", json={"kind": "buyer", "name": "Odd Ltd"}, headers=headers
        )
        assert answer.status_code == 422, odd
        assert answer.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_an_expired_key_may_be_used_again(world: World) -> None:
    key = _key()
    first = await world.call(
        "POST", "/v1/parties", _with(world.admin, key), {"kind": "buyer", "name": "Old"}
    )
    runtime = world.api.app.state.runtime
    now = await runtime.store.now()
    async with runtime.store.transaction() as conn:
        expired = await conn.execute(
            idempotency_keys.update()
            .where(idempotency_keys.c.key == key)
            .values(expires_at=now - timedelta(seconds=1))
        )
        assert expired.rowcount == 1  # as if 24 hours had passed
    later = await world.call(
        "POST", "/v1/parties", _with(world.admin, key), {"kind": "buyer", "name": "New"}
    )
    assert later.status_code == 201
    assert later.json()["id"] != first.json()["id"]
