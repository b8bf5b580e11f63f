"""Payouts over HTTP on both backends (DESIGN 7.1, 7.6, 7.7): what the payment provider
reports of each, who may report and see it, and the order's answer per side."""

import uuid
from typing import Any

from .world import World

PAID, FAILED, RETURNED, RETRY = "paid", "failed", "returned", "retry"


async def _completed_with_payout(world: World) -> tuple[str, dict[str, Any]]:
    order_id = await world.order("completed")
    order = await world.call("GET", f"/v1/orders/{order_id}", world.as_("payments"))
    (payout,) = order.json()["payouts"]
    return order_id, payout


async def _report(
    world: World, role: str, payout_id: str, what: str, body: Any = None, key: str | None = None
) -> Any:
    headers = dict(world.as_(role))
    if key is not None:
        headers["Idempotency-Key"] = key
    return await world.call("POST", f"/v1/payouts/{payout_id}/{what}", headers, body)


def _problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


async def _timeline_types(world: World, order_id: str, role: str) -> list[str]:
    answer = await world.call("GET", f"/v1/orders/{order_id}/events?limit=100", world.as_(role))
    assert answer.status_code == 200, answer.text
    return [event["type"] for event in answer.json()["data"]]


async def test_a_failed_payout_is_retried_then_paid_and_a_returned_one_retried(
    world: World,
) -> None:
    order_id, payout = await _completed_with_payout(world)
    payout_id = payout["id"]
    assert payout["party_id"] == world.supplier_id
    assert payout["status"] == "pending"

    _problem(
        await _report(world, "payments", payout_id, RETURNED, {"reason": "x"}),
        409,
        "payout_not_paid",
    )
    failed = await _report(world, "payments", payout_id, FAILED, {"reason": "account closed"})
    assert failed.status_code == 200, failed.text
    shown = failed.json()
    assert shown["object"] == "payout"
    assert shown["status"] == "failed"
    assert shown["failure_reason"] == "account closed"
    assert shown["order_id"] == order_id
    assert shown["amount"] == payout["amount"]
    assert shown["currency"] == "USD"
    assert "allowed_actions" not in shown
    assert "etag" not in failed.headers

    retried = await _report(world, "admin", payout_id, RETRY)
    assert (retried.status_code, retried.json()["status"]) == (200, "pending")
    assert retried.json()["failure_reason"] is None
    paid = await _report(world, "payments", payout_id, PAID, {"provider_ref": "tr_1"})
    assert (paid.status_code, paid.json()["status"], paid.json()["provider_ref"]) == (
        200,
        "paid",
        "tr_1",
    )
    again = await _report(world, "payments", payout_id, PAID, {"provider_ref": "tr_1"})
    assert again.status_code == 200
    assert again.json() == paid.json()
    _problem(
        await _report(world, "payments", payout_id, PAID, {"provider_ref": "tr_2"}),
        409,
        "payout_already_settled",
    )
    _problem(await _report(world, "payments", payout_id, RETRY), 409, "payout_already_settled")
    _problem(
        await _report(world, "payments", payout_id, FAILED, {"reason": "late"}),
        409,
        "payout_already_settled",
    )
    order = (await world.call("GET", f"/v1/orders/{order_id}", world.as_("supplier"))).json()
    assert order["amounts"]["paid_out"] == payout["amount"]

    returned = await _report(world, "payments", payout_id, RETURNED, {"reason": "bounced"})
    assert (returned.status_code, returned.json()["status"]) == (200, "returned")
    same = await _report(world, "payments", payout_id, RETURNED, {"reason": "bounced"})
    assert (same.status_code, same.json()["status"]) == (200, "returned")
    order = (await world.call("GET", f"/v1/orders/{order_id}", world.as_("supplier"))).json()
    assert order["amounts"]["paid_out"] == 0
    assert order["payouts"] == [
        {
            "id": payout_id,
            "party_id": world.supplier_id,
            "amount": payout["amount"],
            "status": "returned",
        }
    ]
    assert (await _report(world, "payments", payout_id, RETRY)).json()["status"] == "pending"
    final = await _report(world, "payments", payout_id, PAID, {"provider_ref": "tr_3"})
    assert (final.status_code, final.json()["status"]) == (200, "paid")
    fetched = await world.call("GET", f"/v1/payouts/{payout_id}", world.as_("supplier"))
    assert fetched.status_code == 200
    assert fetched.json() == final.json()

    # The timeline: payout.* to the supplier side and payments/admin/mediator only.
    payout_events = ["payout.failed", "payout.retried", "payout.paid", "payout.returned"]
    for role in ("supplier", "agent_for_supplier", "payments", "mediator", "admin"):
        types = await _timeline_types(world, order_id, role)
        assert set(payout_events) <= set(types), role
    for role in ("buyer", "agent_for_buyer"):
        types = await _timeline_types(world, order_id, role)
        assert not any(t.startswith("payout.") for t in types), role
        assert "funds.released" in types


async def test_who_may_report_and_see_a_payout(world: World) -> None:
    order_id, payout = await _completed_with_payout(world)
    payout_id = payout["id"]
    body = {"provider_ref": "tr_1"}
    for role in ("supplier", "agent_for_supplier", "mediator", "admin"):
        _problem(await _report(world, role, payout_id, PAID, body), 403, "action_not_permitted")
    for role in ("buyer", "agent_for_buyer", "other_supplier", "other_buyer"):
        _problem(await _report(world, role, payout_id, PAID, body), 404, "payout_not_found")
        got = await world.call("GET", f"/v1/payouts/{payout_id}", world.as_(role))
        _problem(got, 404, "payout_not_found")
    for unknown in ("po_nosuchpayout", "nonsense", "rf_" + payout_id[3:]):
        _problem(await _report(world, "payments", unknown, PAID, body), 404, "payout_not_found")
    _problem(await _report(world, "anonymous", payout_id, PAID, body), 401, "unauthenticated")
    invalid = await _report(world, "payments", payout_id, PAID, {"provider_ref": ""})
    _problem(invalid, 422, "validation_error")
    _problem(await _report(world, "payments", payout_id, FAILED, {}), 422, "validation_error")

    # Lists: the supplier side and payments see it; the buyer side does not.
    path = f"/v1/payouts?order_id={order_id}"
    for role in ("supplier", "agent_for_supplier", "payments", "admin", "mediator"):
        listed = await world.call("GET", path, world.as_(role))
        assert [p["id"] for p in listed.json()["data"]] == [payout_id], role
    for role in ("buyer", "agent_for_buyer", "other_supplier"):
        listed = await world.call("GET", path, world.as_(role))
        assert listed.json()["data"] == [], role
    by_status = await world.call(
        "GET", f"/v1/payouts?order_id={order_id}&status=paid", world.as_("payments")
    )
    assert by_status.json()["data"] == []
    by_party = await world.call(
        "GET", f"/v1/payouts?party_id={world.supplier_id}&status=pending", world.as_("payments")
    )
    assert [p["id"] for p in by_party.json()["data"]] == [payout_id]
    bad = await world.call("GET", "/v1/payouts?status=lost", world.as_("payments"))
    _problem(bad, 422, "validation_error")

    # The order: payouts for the supplier side, refunds for the buyer side; amounts for all.
    for role, payouts, refunds in (
        ("supplier", True, False),
        ("agent_for_supplier", True, False),
        ("buyer", False, True),
        ("agent_for_buyer", False, True),
        ("payments", True, True),
        ("mediator", True, True),
        ("admin", True, True),
    ):
        order = (await world.call("GET", f"/v1/orders/{order_id}", world.as_(role))).json()
        assert ("payouts" in order, "refunds" in order) == (payouts, refunds), role
        assert {"agency_fees", "retained", "paid_out", "refunds_completed"} <= set(
            order["amounts"]
        ), role
    listed = await world.call("GET", f"/v1/orders?buyer_id={world.buyer_id}", world.as_("buyer"))
    assert all("payouts" not in o and "refunds" in o for o in listed.json()["data"])


async def test_a_payout_report_is_replayed_under_its_idempotency_key(world: World) -> None:
    order_id, payout = await _completed_with_payout(world)
    key, body = str(uuid.uuid4()), {"provider_ref": "tr_1"}
    first = await _report(world, "payments", payout["id"], PAID, body, key=key)
    assert first.status_code == 200, first.text
    replay = await _report(world, "payments", payout["id"], PAID, body, key=key)
    assert replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content
    reused = await _report(world, "payments", payout["id"], PAID, {"provider_ref": "x"}, key=key)
    _problem(reused, 422, "idempotency_key_reused")
    # A refusal is kept and replayed too.
    refusal_key = str(uuid.uuid4())
    refused = await _report(world, "payments", payout["id"], RETRY, key=refusal_key)
    _problem(refused, 409, "payout_already_settled")
    replayed = await _report(world, "payments", payout["id"], RETRY, key=refusal_key)
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.content == refused.content
    timeline = await _timeline_types(world, order_id, "payments")
    assert timeline.count("payout.paid") == 1


async def test_a_replayed_order_answer_never_crosses_sides(world: World) -> None:
    """Keys are scoped to the caller's party: the same key and body from the other side runs
    anew, and each side's replay shows the money out as that side sees it."""
    order_id, _ = await _completed_with_payout(world)
    key, body = str(uuid.uuid4()), {"body": "thanks"}
    answers = {}
    for role in ("buyer", "supplier"):
        headers = {**world.as_(role), "Idempotency-Key": key}
        path = f"/v1/orders/{order_id}/messages"
        first = await world.call("POST", path, headers, body)
        assert first.status_code == 200, first.text
        assert "idempotent-replayed" not in first.headers, role
        replay = await world.call("POST", path, headers, body)
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.content == first.content
        answers[role] = replay.json()
    assert ("payouts" in answers["buyer"], "refunds" in answers["buyer"]) == (False, True)
    assert ("payouts" in answers["supplier"], "refunds" in answers["supplier"]) == (True, False)
