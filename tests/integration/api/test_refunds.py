"""Refunds over HTTP on both backends (DESIGN 7.1, 7.6, 7.7): allocated newest first over
the order's payments, reported by the payment provider, seen by the buyer side only; and
unexpected money accepted and refunded."""

import uuid
from typing import Any

from .world import BALANCE, DEPOSIT, World

REFUND = 800_000  # more than the balance payment: it reaches into the deposit


def _problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


async def _report(
    world: World, role: str, refund_id: str, what: str, body: Any = None, key: str | None = None
) -> Any:
    headers = dict(world.as_(role))
    if key is not None:
        headers["Idempotency-Key"] = key
    return await world.call("POST", f"/v1/refunds/{refund_id}/{what}", headers, body)


async def _events(world: World, order_id: str, role: str) -> list[dict[str, Any]]:
    answer = await world.call("GET", f"/v1/orders/{order_id}/events?limit=100", world.as_(role))
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"])


async def _order(world: World, order_id: str, role: str = "payments") -> dict[str, Any]:
    answer = await world.call("GET", f"/v1/orders/{order_id}", world.as_(role))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_a_mediators_partial_refund_goes_back_newest_first_and_is_reported(
    world: World,
) -> None:
    order_id = await world.order("escalated")
    resolved = await world.step(
        order_id, "dispute/resolve", "mediator", {"refund_amount": REFUND, "note": "half bad"}
    )
    assert resolved["status"] == "settled"
    assert [(r["payment_provider_ref"], r["amount"], r["status"]) for r in resolved["refunds"]] == [
        ("bal", BALANCE, "pending"),
        ("dep", REFUND - BALANCE, "pending"),
    ]
    (payout,) = resolved["payouts"]
    fee = resolved["amounts"]["fees"]
    assert payout["amount"] == DEPOSIT + BALANCE - REFUND - fee
    newest, oldest = (r["id"] for r in resolved["refunds"])

    # Who sees the refunds: the buyer side, payments, admin, mediator; not the supplier side.
    for role in ("buyer", "agent_for_buyer", "payments", "admin", "mediator"):
        got = await world.call("GET", f"/v1/refunds/{newest}", world.as_(role))
        assert got.status_code == 200, role
        shown = got.json()
        assert (shown["object"], shown["party_id"], shown["payment_provider_ref"]) == (
            "refund",
            world.buyer_id,
            "bal",
        )
        listed = await world.call("GET", f"/v1/refunds?order_id={order_id}", world.as_(role))
        assert {r["id"] for r in listed.json()["data"]} == {newest, oldest}, role
    for role in ("supplier", "agent_for_supplier", "other_buyer"):
        _problem(
            await world.call("GET", f"/v1/refunds/{newest}", world.as_(role)),
            404,
            "refund_not_found",
        )
        listed = await world.call("GET", f"/v1/refunds?order_id={order_id}", world.as_(role))
        assert listed.json()["data"] == [], role
        if role != "other_buyer":
            assert "refunds" not in await _order(world, order_id, role), role

    # Who may report: payments (and retry: admin); the buyer may see but not report.
    body = {"provider_ref": "rf_bank_1"}
    for role in ("buyer", "mediator", "admin"):
        _problem(await _report(world, role, newest, "succeeded", body), 403, "action_not_permitted")
    for role in ("supplier", "other_buyer"):
        _problem(await _report(world, role, newest, "succeeded", body), 404, "refund_not_found")
    _problem(
        await _report(world, "payments", "rf_unknown", "succeeded", body), 404, "refund_not_found"
    )

    succeeded = await _report(world, "payments", newest, "succeeded", body)
    assert (succeeded.status_code, succeeded.json()["status"]) == (200, "succeeded")
    again = await _report(world, "payments", newest, "succeeded", body)
    assert again.status_code == 200
    assert again.json() == succeeded.json()
    _problem(
        await _report(world, "payments", newest, "succeeded", {"provider_ref": "other"}),
        409,
        "refund_already_settled",
    )
    _problem(await _report(world, "payments", newest, "retry"), 409, "refund_already_settled")

    failed = await _report(world, "payments", oldest, "failed", {"reason": "card expired"})
    assert (failed.json()["status"], failed.json()["failure_reason"]) == ("failed", "card expired")
    key = str(uuid.uuid4())
    retried = await _report(world, "admin", oldest, "retry", key=key)
    assert (retried.status_code, retried.json()["status"]) == (200, "pending")
    replay = await _report(world, "admin", oldest, "retry", key=key)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == retried.content
    done = await _report(world, "payments", oldest, "succeeded", {"provider_ref": "rf_bank_2"})
    assert done.json()["status"] == "succeeded"

    order = await _order(world, order_id, "buyer")
    assert order["amounts"]["refunds_completed"] == REFUND
    assert order["amounts"]["refunded"] == REFUND
    assert "payouts" not in order
    assert [r["status"] for r in order["refunds"]] == ["succeeded", "succeeded"]

    # Timeline: refund progress to the buyer side; refund.issued to everyone.
    progress = {"refund.succeeded", "refund.failed", "refund.retried"}
    for role in ("buyer", "agent_for_buyer", "payments", "mediator"):
        types = {e["type"] for e in await _events(world, order_id, role)}
        assert progress | {"refund.issued"} <= types, role
    for role in ("supplier", "agent_for_supplier"):
        types = {e["type"] for e in await _events(world, order_id, role)}
        assert "refund.issued" in types, role
        assert not types & progress, role
    issued = next(
        e for e in await _events(world, order_id, "supplier") if e["type"] == "refund.issued"
    )
    assert issued["data"]["reason"] == "dispute"
    assert issued["data"]["amount"] == REFUND


async def test_an_overpayment_is_refunded_and_the_order_otherwise_untouched(
    world: World,
) -> None:
    order_id = await world.place(
        items=[{"sku": "X", "description": "x", "quantity": 1, "unit_price": 660_000}],
        shipping_fee=0,
        payment_schedule=None,
    )
    await world.step(order_id, "accept", "supplier")
    paid = await world.pay(order_id, 660_100, "wire_1")
    assert paid["total"] == 660_000
    assert paid["status"] == "held"
    assert {k: paid["amounts"][k] for k in ("paid", "held", "refunded", "released")} == {
        "paid": 660_100,
        "held": 660_000,
        "refunded": 100,
        "released": 0,
    }
    (refund,) = paid["refunds"]
    assert (refund["payment_provider_ref"], refund["amount"]) == ("wire_1", 100)
    issued = [e for e in await _events(world, order_id, "buyer") if e["type"] == "refund.issued"]
    assert [(e["data"]["amount"], e["data"]["reason"]) for e in issued] == [(100, "overpayment")]
    assert "ship" in (await _order(world, order_id, "supplier"))["allowed_actions"]
    # The same payment again is a no-op; the same provider_ref with another amount conflicts.
    again = await world.pay(order_id, 660_100, "wire_1")
    assert again["version"] == paid["version"]
    conflict = await world.call(
        "POST",
        f"/v1/orders/{order_id}/payments",
        world.as_("payments"),
        {"amount": 5, "method": "card", "provider_ref": "wire_1"},
    )
    _problem(conflict, 409, "provider_ref_conflict")


async def test_a_payment_after_cancellation_is_refunded_whole(world: World) -> None:
    order_id = await world.order("cancelled")
    paid = await world.pay(order_id, 12_345, "late_wire")
    assert paid["status"] == "cancelled"
    assert {k: paid["amounts"][k] for k in ("paid", "held", "refunded")} == {
        "paid": 12_345,
        "held": 0,
        "refunded": 12_345,
    }
    assert [(r["payment_provider_ref"], r["amount"]) for r in paid["refunds"]] == [
        ("late_wire", 12_345)
    ]
    issued = [e for e in await _events(world, order_id, "buyer") if e["type"] == "refund.issued"]
    assert [e["data"]["reason"] for e in issued] == ["order_not_payable"]
