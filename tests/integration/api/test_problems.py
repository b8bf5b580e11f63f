"""Every error is application/problem+json with a stable code; validation is strict and names
each field at fault (DESIGN section 4)."""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from support.api import order_terms

from .world import World

PROBLEM = "application/problem+json"


def _assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = dict(response.json())
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["type"] == f"urn:escrow:problem:{code}"
    assert body["title"]
    assert body["detail"]
    return body


def _fields(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body.get("errors") or []}


# --- place order: each bad value, and the field the 422 must name ---------------------------
def _item(**overrides: Any) -> list[dict[str, Any]]:
    return [{"sku": "A-1", "quantity": 10, "unit_price": 100_000, **overrides}]


BAD_TERMS: list[tuple[dict[str, Any], str]] = [
    ({"surprise": 1}, "surprise"),  # unknown fields are refused
    ({"total": 5}, "total"),  # the total is computed, never taken
    ({"supplier_id": 42}, "supplier_id"),
    ({"supplier_id": "pty_!"}, "supplier_id"),
    ({"currency": "ABC"}, "currency"),
    ({"currency": "usd"}, "currency"),
    ({"currency": "US"}, "currency"),
    ({"currency": "XAU"}, "currency"),  # a metal, not money
    ({"currency": 840}, "currency"),
    ({"currency": None}, "currency"),
    ({"items": []}, "items"),
    ({"items": _item() * 101}, "items"),
    ({"items": _item(quantity=0)}, "items.0.quantity"),
    ({"items": _item(quantity=1.0)}, "items.0.quantity"),
    ({"items": _item(quantity="10")}, "items.0.quantity"),
    ({"items": _item(quantity=True)}, "items.0.quantity"),
    ({"items": _item(unit_price=0)}, "items.0.unit_price"),
    ({"items": _item(unit_price=-100)}, "items.0.unit_price"),
    ({"items": _item(unit_price=99.5)}, "items.0.unit_price"),
    ({"items": _item(unit_price="100")}, "items.0.unit_price"),
    ({"items": _item(unit_price=False)}, "items.0.unit_price"),
    ({"items": _item(unit_price=10**13)}, "items.0.unit_price"),
    ({"items": _item(unit_price=10**30)}, "items.0.unit_price"),
    ({"items": _item(sku="")}, "items.0.sku"),
    ({"items": _item(sku="x" * 201)}, "items.0.sku"),
    ({"items": _item(sku="nul\u0000")}, "items.0.sku"),
    ({"items": _item(colour="red")}, "items.0.colour"),
    ({"shipping_fee": -1}, "shipping_fee"),
    ({"shipping_fee": 1.5}, "shipping_fee"),
    ({"shipping_fee": "0"}, "shipping_fee"),
    ({"incoterm": "XYZ"}, "incoterm"),
    ({"incoterm": "fob"}, "incoterm"),
    ({"quality_terms": ""}, "quality_terms"),
    ({"quality_terms": "q" * 5001}, "quality_terms"),
    ({"ship_by": 20270101}, "ship_by"),
    ({"ship_by": "31/12/2027"}, "ship_by"),
    ({"ship_by": "2027-13-01"}, "ship_by"),
    ({"ship_by": "2027-02-30"}, "ship_by"),
    ({"ship_by": "2027-12-31T00:00:00Z"}, "ship_by"),
    ({"ship_by": "20271231"}, "ship_by"),
    ({"inspection_days": 0}, "inspection_days"),
    ({"inspection_days": 31}, "inspection_days"),
    ({"inspection_days": "5"}, "inspection_days"),
    ({"payment_schedule": []}, "payment_schedule"),
    ({"payment_schedule": [{"name": "all", "amount": 0}]}, "payment_schedule.0.amount"),
    ({"payment_schedule": [{"name": "all"}]}, "payment_schedule.0.amount"),
    ({"remarks": "r" * 5001}, "remarks"),
    ({"remarks": None}, "remarks"),
]


async def test_place_order_refuses_each_bad_value_and_names_its_field(world: World) -> None:
    for overrides, field in BAD_TERMS:
        terms = {**order_terms(world.supplier_id), **overrides}
        answer = await world.call("POST", "/v1/orders", world.as_("buyer"), terms)
        body = _assert_problem(answer, 422, "validation_error")
        assert field in _fields(body), (overrides, body["errors"])
        assert all(error["in"] == "body" for error in body["errors"])
    # Missing required fields are named too, all at once.
    answer = await world.call("POST", "/v1/orders", world.as_("buyer"), {})
    assert _fields(_assert_problem(answer, 422, "validation_error")) >= {
        "supplier_id", "currency", "items", "incoterm", "quality_terms", "ship_by"
    }  # fmt: skip
    nothing = await world.call("GET", f"/v1/orders?buyer_id={world.buyer_id}", world.admin)
    assert nothing.json()["data"] == []


async def test_good_edge_values_are_taken(world: World) -> None:
    answer = await world.call(
        "POST",
        "/v1/orders",
        world.as_("buyer"),
        order_terms(
            world.supplier_id,
            currency="KWD",
            items=_item(sku="s" * 200, unit_price=1),
            shipping_fee=0,
            payment_schedule=None,
            inspection_days=30,
            quality_terms="q" * 5000,
            remarks="Ünïcödé ✓ 日本語\nsecond line\ttab",
        ),
    )
    assert answer.status_code == 201, answer.text
    order = answer.json()
    assert (order["currency"], order["currency_exponent"], order["total"]) == ("KWD", 3, 10)
    assert [tranche["amount"] for tranche in order["payment_schedule"]] == [10]
    assert order["remarks"] == "Ünïcödé ✓ 日本語\nsecond line\ttab"


async def test_domain_refusals_carry_the_rules_code_and_field(world: World) -> None:
    order_id = await world.order("placed")
    supplier = world.as_("supplier")
    await world.step(order_id, "accept", "supplier")
    twice = await world.call("POST", f"/v1/orders/{order_id}/accept", supplier)
    assert "errors" not in _assert_problem(twice, 409, "invalid_state")
    # Unexpected money is never refused (DESIGN 7.1): the excess is refunded; the same
    # provider_ref with another amount is the conflict.
    paid = {"amount": 10**9, "method": "card", "provider_ref": "x"}
    overpaid = await world.call(
        "POST", f"/v1/orders/{order_id}/payments", world.as_("payments"), paid
    )
    assert overpaid.status_code == 200, overpaid.text
    conflicting = await world.call(
        "POST",
        f"/v1/orders/{order_id}/payments",
        world.as_("payments"),
        {**paid, "amount": 5},
    )
    assert "errors" not in _assert_problem(conflicting, 409, "provider_ref_conflict")
    not_theirs = await world.call("POST", f"/v1/orders/{order_id}/confirm-receipt", supplier)
    _assert_problem(not_theirs, 403, "action_not_permitted")
    past = await world.call(
        "POST",
        "/v1/orders",
        world.as_("buyer"),
        order_terms(world.supplier_id, ship_by="2020-01-01"),
    )
    assert _assert_problem(past, 422, "invalid_terms")["errors"][0]["field"] == "ship_by"
    unsummed = await world.call(
        "POST",
        "/v1/orders",
        world.as_("buyer"),
        order_terms(world.supplier_id, payment_schedule=[{"name": "a", "amount": 5}]),
    )
    assert _fields(_assert_problem(unsummed, 422, "payment_schedule_mismatch")) == {
        "payment_schedule"
    }
    no_assurance = await world.call(
        "POST", "/v1/orders", world.as_("buyer"), order_terms(world.other_supplier_id)
    )
    assert no_assurance.status_code == 201  # the admin registered it with Trade Assurance
    await world.api.client.patch(
        f"/v1/parties/{world.other_supplier_id}",
        json={"trade_assurance": False},
        headers=world.admin,
    )
    refused = await world.call(
        "POST", "/v1/orders", world.as_("buyer"), order_terms(world.other_supplier_id)
    )
    assert _fields(_assert_problem(refused, 422, "supplier_not_trade_assurance")) == {"supplier_id"}
    unknown = await world.call(
        "POST", "/v1/orders", world.as_("buyer"), order_terms("pty_nosuchsupplier")
    )
    assert _fields(_assert_problem(unknown, 422, "supplier_not_found")) == {"supplier_id"}


# --- order commands: (path, state, caller, body, field) -------------------------------------
def _pay(**fields: Any) -> dict[str, Any]:
    return {"amount": 5, "method": "card", "provider_ref": "r", **fields}


def _dispute(**fields: Any) -> dict[str, Any]:
    return {"reason": "quality", "requested_refund": 1, **fields}


def _evidence(**fields: Any) -> list[dict[str, Any]]:
    return [{"description": "photo", **fields}]


BAD_COMMANDS: list[tuple[str, str, str, Any, str]] = [
    ("accept", "placed", "supplier", {"note": "x"}, "note"),
    ("payments", "accepted", "payments", _pay(amount=0), "amount"),
    ("payments", "accepted", "payments", _pay(amount=1.5), "amount"),
    ("payments", "accepted", "payments", _pay(amount="5"), "amount"),
    ("payments", "accepted", "payments", _pay(amount=True), "amount"),
    ("payments", "accepted", "payments", _pay(amount=10**13), "amount"),
    ("payments", "accepted", "payments", _pay(method="cash"), "method"),
    ("payments", "accepted", "payments", _pay(provider_ref=""), "provider_ref"),
    ("payments", "accepted", "payments", {"amount": 5, "method": "card"}, "provider_ref"),
    ("payments", "accepted", "payments", _pay(currency="USD"), "currency"),
    ("ship", "held", "supplier", {"carrier": "DHL"}, "tracking_number"),
    ("ship", "held", "supplier", {"carrier": "", "tracking_number": "1"}, "carrier"),
    ("ship", "held", "supplier", {"carrier": "D" * 201, "tracking_number": "1"}, "carrier"),
    ("ship", "held", "supplier", {"carrier": ["DHL"], "tracking_number": "1"}, "carrier"),
    ("deliver", "shipped", "supplier", {"delivered_at": "2026-01-01T10:00:00"}, "delivered_at"),
    ("deliver", "shipped", "supplier", {"delivered_at": "2026-01-01"}, "delivered_at"),
    ("deliver", "shipped", "supplier", {"delivered_at": 1767225600}, "delivered_at"),
    ("deliver", "shipped", "supplier", {"delivered_at": "1767225600"}, "delivered_at"),
    ("deliver", "shipped", "supplier", {"delivered_at": "yesterday"}, "delivered_at"),
    ("extend", "placed", "buyer", {"deadline": "forever", "days": 1}, "deadline"),
    ("extend", "placed", "buyer", {"deadline": "ship_by", "days": 0}, "days"),
    ("extend", "placed", "buyer", {"deadline": "ship_by", "days": 91}, "days"),
    ("extend", "placed", "buyer", {"deadline": "ship_by", "days": 2.0}, "days"),
    ("cancel", "placed", "buyer", {"reason": "r" * 5001}, "reason"),
    ("cancel", "placed", "buyer", {"reason": 7}, "reason"),
    ("messages", "placed", "buyer", {"body": ""}, "body"),
    ("messages", "placed", "buyer", {"body": "b" * 5001}, "body"),
    ("messages", "placed", "buyer", {}, "body"),
    ("dispute", "shipped", "buyer", _dispute(reason="bored"), "reason"),
    ("dispute", "shipped", "buyer", _dispute(requested_refund=-1), "requested_refund"),
    ("dispute", "shipped", "buyer", _dispute(requested_refund=0.5), "requested_refund"),
    ("dispute", "shipped", "buyer", _dispute(evidence=_evidence(url="ftp://x")), "evidence.0.url"),
    ("dispute", "shipped", "buyer", _dispute(evidence=_evidence(sha256="ab")), "evidence.0.sha256"),
    ("dispute", "shipped", "buyer", _dispute(evidence=_evidence() * 21), "evidence"),
    ("dispute/offers", "disputed", "supplier", {"refund_amount": -1}, "refund_amount"),
    ("dispute/offers", "disputed", "supplier", {"refund_amount": "0"}, "refund_amount"),
    ("dispute/offers", "disputed", "supplier", {"refund_amount": 0, "note": None}, "note"),
    ("dispute/accept-offer", "disputed", "supplier", {"amount": 1}, "amount"),
    ("dispute/escalate", "disputed", "buyer", {"why": "x"}, "why"),
    ("dispute/resolve", "escalated", "mediator", {"refund_amount": 1.5}, "refund_amount"),
    ("dispute/resolve", "escalated", "mediator", {}, "refund_amount"),
    ("dispute/withdraw", "disputed", "buyer", {"because": 1}, "because"),
    ("confirm-receipt", "delivered", "buyer", {"rating": 5}, "rating"),
]


async def test_order_commands_refuse_bad_bodies_and_name_the_field(world: World) -> None:
    orders: dict[str, str] = {}
    versions: dict[str, str] = {}
    for path, state, caller, body, field in BAD_COMMANDS:
        if state not in orders:
            orders[state] = await world.order(state)
            order = await world.call("GET", f"/v1/orders/{orders[state]}", world.admin)
            versions[state] = order.headers["etag"]
        answer = await world.call(
            "POST", f"/v1/orders/{orders[state]}/{path}", world.as_(caller), body
        )
        problem = _assert_problem(answer, 422, "validation_error")
        assert field in _fields(problem), (path, body, problem["errors"])
    # Nothing ran: each order is still at the version it was made at.
    for state, order_id in orders.items():
        order = await world.call("GET", f"/v1/orders/{order_id}", world.admin)
        assert order.headers["etag"] == versions[state], state


async def test_zero_refunds_are_allowed(world: World) -> None:
    order_id = await world.order("shipped")
    opened = await world.step(
        order_id, "dispute", "buyer", {"reason": "other", "requested_refund": 0}
    )
    assert opened["dispute"]["requested_refund"] == 0
    offered = await world.step(order_id, "dispute/offers", "supplier", {"refund_amount": 0})
    assert offered["dispute"]["open_offer"] == {"by": "supplier", "refund_amount": 0}


def _party(**fields: Any) -> dict[str, Any]:
    return {"kind": "buyer", "name": "x", **fields}


BAD_PARTY_BODIES: list[tuple[str, str, Any, str]] = [
    ("POST", "/v1/parties", _party(kind="admin"), "kind"),
    ("POST", "/v1/parties", _party(name=""), "name"),
    ("POST", "/v1/parties", _party(name="n" * 201), "name"),
    ("POST", "/v1/parties", _party(trade_assurance="yes"), "trade_assurance"),
    ("POST", "/v1/parties", _party(trade_assurance=1), "trade_assurance"),
    ("POST", "/v1/parties", _party(managed_by="pty_x"), "managed_by"),
    ("PATCH", "/v1/parties/{supplier}", {}, "body"),  # name at least one field
    ("PATCH", "/v1/parties/{supplier}", {"trade_assurance": "true"}, "trade_assurance"),
    ("PATCH", "/v1/parties/{supplier}", {"trade_assurance": True, "kind": "x"}, "kind"),
    ("PATCH", "/v1/parties/{supplier}", {"name": ""}, "name"),
    ("POST", "/v1/api-keys", {}, "role"),
    ("POST", "/v1/api-keys", {"role": "payments", "party_id": "pty_x"}, "party_id"),
    ("POST", "/v1/api-keys", {"role": "payments", "scope": "write"}, "scope"),
    ("POST", "/v1/api-keys", {"role": "payments", "expires_at": "soon"}, "expires_at"),
    ("POST", "/v1/parties/{supplier}/api-keys", {"scope": "all"}, "scope"),
]


async def test_party_and_key_bodies_are_strict(world: World) -> None:
    for method, path, body, field in BAD_PARTY_BODIES:
        answer = await world.call(
            method, path.format(supplier=world.supplier_id), world.admin, body
        )
        assert field in _fields(_assert_problem(answer, 422, "validation_error")), body
    buyer_assurance = await world.call(
        "PATCH", f"/v1/parties/{world.buyer_id}", world.admin, {"trade_assurance": True}
    )
    _assert_problem(buyer_assurance, 422, "trade_assurance_suppliers_only")


@pytest.mark.parametrize("kind", ["buyer", "agent"])
async def test_only_a_supplier_is_registered_with_trade_assurance(world: World, kind: str) -> None:
    refused = await world.call(
        "POST", "/v1/parties", world.admin, _party(kind=kind, trade_assurance=True)
    )
    supplier = await world.call(
        "POST", "/v1/parties", world.admin, _party(kind="supplier", trade_assurance=True)
    )

    body = _assert_problem(refused, 422, "trade_assurance_suppliers_only")
    assert _fields(body) == {"trade_assurance"}
    assert supplier.status_code == 201, supplier.text
    assert supplier.json()["trade_assurance"] is True


async def test_query_parameters_are_validated(world: World) -> None:
    admin = world.admin
    for query, field in (
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("status=lost", "status"),
        ("buyer_id=nobody", "buyer_id"),
        ("cursor=%21%21", "cursor"),
    ):
        body = _assert_problem(
            await world.call("GET", f"/v1/orders?{query}", admin),
            422,
            "invalid_cursor" if field == "cursor" else "validation_error",
        )
        assert _fields(body) == {field}
        assert body["errors"][0]["in"] == "query"
    order_id = await world.order("placed")
    for version in ("0", "-1", "x", "1.5", "99999999999"):
        _assert_problem(
            await world.call("GET", f"/v1/orders/{order_id}?version={version}", admin),
            422,
            "validation_error",
        )


async def test_every_http_error_is_a_problem(world: World) -> None:
    buyer = world.as_("buyer")
    client = world.api.client
    _assert_problem(await client.get("/v1/nowhere", headers=buyer), 404, "not_found")
    _assert_problem(await client.post("/nowhere", headers=buyer), 404, "not_found")
    _assert_problem(await client.get("/v1/nowhere"), 404, "not_found")
    not_allowed = await client.delete("/v1/orders", headers=buyer)
    _assert_problem(not_allowed, 405, "method_not_allowed")
    allowed = {method.strip() for method in not_allowed.headers["allow"].split(",")}
    assert allowed  # Starlette names the methods of one route of the path
    assert allowed <= {"GET", "POST"}
    _assert_problem(await client.put("/v1/parties", headers=buyer), 405, "method_not_allowed")
    _assert_problem(await client.get("/v1/orders"), 401, "unauthenticated")
    order_id = await world.order("placed")
    mismatch = await world.call(
        "POST", f"/v1/orders/{order_id}/cancel", {**buyer, "If-Match": '"7"'}, {}
    )
    _assert_problem(mismatch, 412, "precondition_failed")


@pytest.mark.parametrize("path", ["/v1/orders", "/v1/parties", "/v1/orders/{order}/messages"])
async def test_bodies_over_64_kib_get_413_with_or_without_content_length(
    world: World, path: str
) -> None:
    order_id = await world.order("placed")
    path = path.format(order=order_id)
    headers = {**world.as_("buyer"), "Content-Type": "application/json"}
    big = b'{"body": "' + b"x" * (64 * 1024) + b'"}'
    declared = await world.api.client.post(path, content=big, headers=headers)
    _assert_problem(declared, 413, "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    streamed = await world.api.client.post(path, content=chunks(), headers=headers)
    assert "content-length" not in streamed.request.headers
    _assert_problem(streamed, 413, "payload_too_large")
    lying = await world.api.client.post(
        path, content=big, headers={**headers, "Content-Length": "10"}
    )
    assert lying.status_code in (400, 413)
    assert lying.headers["content-type"] == PROBLEM


async def test_a_body_must_be_json(world: World) -> None:
    order_id = await world.order("placed")
    client, buyer = world.api.client, world.as_("buyer")
    path = f"/v1/orders/{order_id}/messages"
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        answer = await client.post(
            path, content=b'{"body": "hi"}', headers={**buyer, "Content-Type": content_type}
        )
        _assert_problem(answer, 415, "unsupported_media_type")
    no_type = await client.post(path, content=b'{"body": "hi"}', headers=buyer)
    _assert_problem(no_type, 415, "unsupported_media_type")
    with_charset = await client.post(
        path,
        content=b'{"body": "hi"}',
        headers={**buyer, "Content-Type": "application/json; charset=utf-8"},
    )
    assert with_charset.status_code == 200
    for broken in (b'{"body": ', b"{'body': 'hi'}", b"\xff\xfe", b'{"body": "hi"} x', b"9" * 5000):
        answer = await client.post(
            path, content=broken, headers={**buyer, "Content-Type": "application/json"}
        )
        _assert_problem(answer, 400, "malformed_json")
