"""Every v1 route x every kind of caller, with the expected status written out per cell.

The expectations come from DESIGN section 4 (who may do what; 401 without a valid key; 404
for what the caller may not see; 403 when it may see but its role may not act), not from
the code. A cell whose caller is permitted runs on a fresh order (or key) in a state where the
command succeeds, so its 2xx tells "allowed" apart from 403/404/409; refused cells share one
order per route (a refusal changes nothing).
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from escrow_api.app import create_app
from support.api import order_terms
from support.api import test_settings as settings_for

from .world import World, build_world, fast_dispute_api

# The columns of EXPECTED, in order.
CALLERS = (
    "admin",
    "mediator",
    "payments",
    "agent",  # the agent as itself (it registered the order's buyer and supplier)
    "agent_for_buyer",  # the agent with Escrow-On-Behalf-Of: the order's buyer
    "agent_for_supplier",  # ... the order's supplier
    "buyer",  # the order's buyer
    "supplier",  # the order's supplier
    "other_buyer",  # a buyer with nothing to do with the order or the agent
    "other_supplier",  # likewise a supplier
    "anonymous",  # no Authorization header
    "revoked",  # a revoked key of the order's buyer
    "agent_unmanaged",  # the agent naming a party it did not register
)

# fmt: off
EXPECTED: dict[str, tuple[int, ...]] = {
    #                       adm  med  pay  agt  a/b  a/s  buy  sup  o/b  o/s  ano  rev  a/x
    "register_party":       (201, 403, 403, 201, 403, 403, 403, 403, 403, 403, 401, 401, 403),
    "update_party":         (200, 404, 404, 403, 404, 403, 404, 403, 404, 404, 401, 401, 403),
    "list_parties":         (200, 403, 403, 200, 403, 403, 403, 403, 403, 403, 401, 401, 403),
    # The party deactivated is the order's buyer, or a fresh buyer of the agent's (admin).
    "deactivate_party":     (200, 404, 404, 403, 403, 404, 403, 404, 404, 404, 401, 401, 403),
    "get_party":            (200, 404, 404, 200, 200, 404, 200, 404, 404, 404, 401, 401, 403),
    "create_party_api_key": (201, 404, 404, 201, 403, 404, 403, 404, 404, 404, 401, 401, 403),
    "get_party_balances":   (200, 404, 200, 200, 200, 404, 200, 404, 404, 404, 401, 401, 403),
    "list_party_ledger":    (200, 404, 200, 200, 200, 404, 200, 404, 404, 404, 401, 401, 403),
    # Any key reads a supplier's record (DESIGN 7.2).
    "get_supplier_performance": (
                            200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 403),
    "create_api_key":       (201, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 401, 403),
    "revoke_api_key":       (200, 404, 404, 200, 200, 404, 200, 404, 404, 404, 401, 401, 403),
    "list_api_keys":        (200, 403, 403, 200, 200, 200, 200, 200, 200, 200, 401, 401, 403),
    "place_order":          (403, 403, 403, 403, 201, 403, 201, 403, 201, 403, 401, 401, 403),
    "list_orders":          (200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 403),
    "get_order":            (200, 200, 200, 200, 200, 200, 200, 200, 404, 404, 401, 401, 403),
    "get_order_version":    (200, 200, 200, 200, 200, 200, 200, 200, 404, 404, 401, 401, 403),
    "list_order_events":    (200, 200, 200, 200, 200, 200, 200, 200, 404, 404, 401, 401, 403),
    "accept_order":         (403, 403, 403, 403, 403, 200, 403, 200, 404, 404, 401, 401, 403),
    "record_payment":       (403, 403, 200, 403, 403, 403, 403, 403, 404, 404, 401, 401, 403),
    "ship_order":           (403, 403, 403, 403, 403, 200, 403, 200, 404, 404, 401, 401, 403),
    "deliver_order":        (200, 403, 200, 403, 403, 200, 403, 200, 404, 404, 401, 401, 403),
    "confirm_receipt":      (403, 403, 403, 403, 200, 403, 200, 403, 404, 404, 401, 401, 403),
    "extend_deadline":      (403, 403, 403, 403, 200, 200, 200, 200, 404, 404, 401, 401, 403),
    "cancel_order":         (200, 403, 403, 403, 200, 200, 200, 200, 404, 404, 401, 401, 403),
    "post_message":         (403, 200, 403, 403, 200, 200, 200, 200, 404, 404, 401, 401, 403),
    "update_order_metadata": (403, 403, 403, 403, 200, 403, 200, 403, 404, 404, 401, 401, 403),
    "open_dispute":         (403, 403, 403, 403, 200, 403, 200, 403, 404, 404, 401, 401, 403),
    "make_dispute_offer":   (403, 403, 403, 403, 200, 200, 200, 200, 404, 404, 401, 401, 403),
    "accept_dispute_offer": (403, 403, 403, 403, 200, 200, 200, 200, 404, 404, 401, 401, 403),
    "escalate_dispute":     (403, 403, 403, 403, 200, 200, 200, 200, 404, 404, 401, 401, 403),
    "resolve_dispute":      (200, 200, 403, 403, 403, 403, 403, 403, 404, 404, 401, 401, 403),
    "withdraw_dispute":     (403, 403, 403, 403, 200, 403, 200, 403, 404, 404, 401, 401, 403),
    "release_milestone":    (403, 403, 403, 403, 200, 403, 200, 403, 404, 404, 401, 401, 403),
    "make_claim":           (403, 403, 403, 403, 200, 403, 200, 403, 404, 404, 401, 401, 403),
    "list_disputes":        (200, 200, 403, 403, 403, 403, 403, 403, 403, 403, 401, 401, 403),
    "list_events":          (200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 403),
    # Money out (DESIGN 7.1, 7.6): payouts are the supplier side's, refunds the buyer side's.
    "list_payouts":         (200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 403),
    "get_payout":           (200, 200, 200, 200, 404, 200, 404, 200, 404, 404, 401, 401, 403),
    "report_payout_paid":   (403, 403, 200, 403, 404, 403, 404, 403, 404, 404, 401, 401, 403),
    "report_payout_failed": (403, 403, 200, 403, 404, 403, 404, 403, 404, 404, 401, 401, 403),
    "report_payout_returned": (403, 403, 200, 403, 404, 403, 404, 403, 404, 404, 401, 401, 403),
    "retry_payout":         (200, 403, 200, 403, 404, 403, 404, 403, 404, 404, 401, 401, 403),
    "list_refunds":         (200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 403),
    "get_refund":           (200, 200, 200, 200, 200, 404, 200, 404, 404, 404, 401, 401, 403),
    "report_refund_succeeded": (403, 403, 200, 403, 403, 404, 403, 404, 404, 404, 401, 401, 403),
    "report_refund_failed": (403, 403, 200, 403, 403, 404, 403, 404, 404, 404, 401, 401, 403),
    "retry_refund":         (200, 403, 200, 403, 403, 404, 403, 404, 404, 404, 401, 401, 403),
    # Webhook endpoints: "owner, admin"; the endpoint in a path is the order's buyer's.
    "create_webhook":       (201, 403, 201, 201, 201, 201, 201, 201, 201, 201, 401, 401, 403),
    "list_webhooks":        (200, 403, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401, 403),
    "get_webhook":          (200, 404, 404, 200, 200, 404, 200, 404, 404, 404, 401, 401, 403),
    "update_webhook":       (200, 404, 404, 200, 200, 404, 200, 404, 404, 404, 401, 401, 403),
    "delete_webhook":       (204, 404, 404, 204, 204, 404, 204, 404, 404, 404, 401, 401, 403),
    "rotate_webhook_secret":(200, 404, 404, 200, 200, 404, 200, 404, 404, 404, 401, 401, 403),
    "replay_webhook":       (202, 404, 404, 202, 202, 404, 202, 404, 404, 404, 401, 401, 403),
    "list_deliveries":      (200, 404, 404, 200, 200, 404, 200, 404, 404, 404, 401, 401, 403),
    "test_webhook":         (202, 404, 404, 202, 202, 404, 202, 404, 404, 404, 401, 401, 403),
    "resend_delivery":      (202, 404, 404, 202, 202, 404, 202, 404, 404, 404, 401, 401, 403),
    # Sandbox mode only (the matrix app runs in it).
    "advance_clock":        (200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 401, 403),
}
# fmt: on


HOOK = "http://127.0.0.1:9/escrow-hook"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {order} {buyer} {supplier} {key} are filled in per cell
    state: str | None = None  # the state of the order the call is made on (World.order)
    body: Any = None  # a JSON body, or what makes one from the World


ROUTES: dict[str, Route] = {
    "register_party": Route("POST", "/v1/parties", body={"kind": "buyer", "name": "M Ltd"}),
    "update_party": Route("PATCH", "/v1/parties/{supplier}", body={"trade_assurance": True}),
    "list_parties": Route("GET", "/v1/parties"),
    "deactivate_party": Route("POST", "/v1/parties/{party}/deactivate"),
    "get_party": Route("GET", "/v1/parties/{buyer}"),
    "create_party_api_key": Route("POST", "/v1/parties/{buyer}/api-keys"),
    "get_party_balances": Route("GET", "/v1/parties/{buyer}/balances"),
    "list_party_ledger": Route("GET", "/v1/parties/{buyer}/ledger"),
    "get_supplier_performance": Route("GET", "/v1/parties/{supplier}/performance"),
    "create_api_key": Route("POST", "/v1/api-keys", body={"role": "payments"}),
    "revoke_api_key": Route("DELETE", "/v1/api-keys/{key}"),  # a key of the order's buyer
    "list_api_keys": Route("GET", "/v1/api-keys"),
    "place_order": Route("POST", "/v1/orders", body=lambda w: order_terms(w.supplier_id)),
    "list_orders": Route("GET", "/v1/orders"),
    "get_order": Route("GET", "/v1/orders/{order}", "placed"),
    "get_order_version": Route("GET", "/v1/orders/{order}?version=1", "accepted"),
    "list_order_events": Route("GET", "/v1/orders/{order}/events", "placed"),
    "accept_order": Route("POST", "/v1/orders/{order}/accept", "placed"),
    "record_payment": Route(
        "POST",
        "/v1/orders/{order}/payments",
        "accepted",
        {"amount": 301_500, "method": "card", "provider_ref": "matrix"},
    ),
    "ship_order": Route(
        "POST", "/v1/orders/{order}/ship", "held", {"carrier": "DHL", "tracking_number": "1Z"}
    ),
    "deliver_order": Route("POST", "/v1/orders/{order}/deliver", "shipped"),
    "confirm_receipt": Route("POST", "/v1/orders/{order}/confirm-receipt", "delivered"),
    "extend_deadline": Route(
        "POST", "/v1/orders/{order}/extend", "delivered", {"deadline": "inspection", "days": 3}
    ),
    "cancel_order": Route("POST", "/v1/orders/{order}/cancel", "placed", {"reason": "matrix"}),
    "post_message": Route("POST", "/v1/orders/{order}/messages", "placed", {"body": "hello"}),
    "update_order_metadata": Route(
        "PATCH", "/v1/orders/{order}", "completed", {"metadata": {"po": "PO-1"}}
    ),
    "open_dispute": Route(
        "POST",
        "/v1/orders/{order}/dispute",
        "shipped",
        {"reason": "quality", "requested_refund": 1000},
    ),
    "make_dispute_offer": Route(
        "POST", "/v1/orders/{order}/dispute/offers", "disputed", {"refund_amount": 200_000}
    ),
    # The open offer is the other side's: the supplier's counter-offer for the buyer side,
    # the buyer's opening offer for everyone else.
    "accept_dispute_offer": Route(
        "POST", "/v1/orders/{order}/dispute/accept-offer", "offer_of_the_other_side"
    ),
    "escalate_dispute": Route("POST", "/v1/orders/{order}/dispute/escalate", "disputed"),
    "resolve_dispute": Route(
        "POST",
        "/v1/orders/{order}/dispute/resolve",
        "escalated",
        {"refund_amount": 400_000, "note": "split"},
    ),
    "withdraw_dispute": Route("POST", "/v1/orders/{order}/dispute/withdraw", "disputed"),
    "release_milestone": Route("POST", "/v1/orders/{order}/release", "held", {"amount": 1}),
    "make_claim": Route(
        "POST",
        "/v1/orders/{order}/claim",
        "retained",
        {"reason": "quality", "requested_refund": 50_000},
    ),
    "list_disputes": Route("GET", "/v1/disputes"),
    "list_events": Route("GET", "/v1/events"),
    "list_payouts": Route("GET", "/v1/payouts"),
    "get_payout": Route("GET", "/v1/payouts/{payout}"),
    "report_payout_paid": Route("POST", "/v1/payouts/{payout}/paid", body={"provider_ref": "m"}),
    "report_payout_failed": Route("POST", "/v1/payouts/{payout}/failed", body={"reason": "m"}),
    "report_payout_returned": Route(
        "POST", "/v1/payouts/{paid_payout}/returned", body={"reason": "m"}
    ),
    "retry_payout": Route("POST", "/v1/payouts/{failed_payout}/retry"),
    "list_refunds": Route("GET", "/v1/refunds"),
    "get_refund": Route("GET", "/v1/refunds/{refund}"),
    "report_refund_succeeded": Route(
        "POST", "/v1/refunds/{refund}/succeeded", body={"provider_ref": "m"}
    ),
    "report_refund_failed": Route("POST", "/v1/refunds/{refund}/failed", body={"reason": "m"}),
    "retry_refund": Route("POST", "/v1/refunds/{failed_refund}/retry"),
    "create_webhook": Route("POST", "/v1/webhook-endpoints", body={"url": HOOK}),
    "list_webhooks": Route("GET", "/v1/webhook-endpoints"),
    "get_webhook": Route("GET", "/v1/webhook-endpoints/{endpoint}"),
    "update_webhook": Route(
        "PATCH", "/v1/webhook-endpoints/{endpoint}", body={"event_types": ["funds.released"]}
    ),
    "delete_webhook": Route("DELETE", "/v1/webhook-endpoints/{endpoint}"),
    "rotate_webhook_secret": Route("POST", "/v1/webhook-endpoints/{endpoint}/rotate-secret"),
    "replay_webhook": Route(  # from a position past the log's end: nothing to send
        "POST", "/v1/webhook-endpoints/{endpoint}/replay", body={"since_position": 2**40}
    ),
    "list_deliveries": Route("GET", "/v1/webhook-endpoints/{endpoint}/deliveries"),
    "test_webhook": Route("POST", "/v1/webhook-endpoints/{endpoint}/test"),
    "resend_delivery": Route(
        "POST", "/v1/webhook-endpoints/{endpoint}/deliveries/{delivery}/resend"
    ),
    # One second at a time: the offset is kept in the shared session database.
    "advance_clock": Route("POST", "/v1/sandbox/clock", body={"advance_seconds": 1}),
}
# The matrix app: sandbox mode (for the clock route) and private webhook URLs (no DNS).
MATRIX_SETTINGS = {"sandbox": True, "webhook_allow_private": True}

_PLACEHOLDERS = {
    "{order}": "{order_id}",
    "{buyer}": "{party_id}",
    "{supplier}": "{party_id}",
    "{party}": "{party_id}",
    "{key}": "{key_id}",
    "{endpoint}": "{endpoint_id}",
    "{delivery}": "{delivery_id}",
    "{payout}": "{payout_id}",
    "{paid_payout}": "{payout_id}",
    "{failed_payout}": "{payout_id}",
    "{refund}": "{refund_id}",
    "{failed_refund}": "{refund_id}",
}
# A money-out placeholder: (payout or refund, the report that brings it there, or None).
_MONEY_OUT = {
    "payout": ("payout", None),
    "paid_payout": ("payout", ("paid", {"provider_ref": "m0"})),
    "failed_payout": ("payout", ("failed", {"reason": "m0"})),
    "refund": ("refund", None),
    "failed_refund": ("refund", ("failed", {"reason": "m0"})),
}


def _template(route: Route) -> tuple[str, str]:
    path = route.path.split("?")[0]
    for ours, theirs in _PLACEHOLDERS.items():
        path = path.replace(ours, theirs)
    return route.method, path


def test_the_matrix_covers_every_v1_route() -> None:
    """A new route needs a row (webhooks and the sandbox clock get theirs when they land)."""
    app = create_app(settings_for("sqlite+aiosqlite:///never-opened.db", **MATRIX_SETTINGS))
    # From the app's OpenAPI document: ``app.routes`` holds included routers unflattened
    # (FastAPI's ``_IncludedRouter``), where a walk for paths finds none.
    served = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/v1/")
        for method in operations
    }
    assert len(served) > 30
    assert ("POST", "/v1/orders/{order_id}/accept") in served
    assert served - {_template(r) for r in ROUTES.values()} == set()
    assert set(EXPECTED) == set(ROUTES)
    assert all(len(row) == len(CALLERS) for row in EXPECTED.values())


@pytest.fixture(scope="module")
async def matrix_world(database_url: str) -> AsyncIterator[World]:
    async with fast_dispute_api(database_url, **MATRIX_SETTINGS) as api:
        yield await build_world(api)


async def _path(
    world: World, route: Route, caller: str, fresh: bool, shared: dict[str, str]
) -> str:
    """The cell's path: a fresh order (or key) when the call may succeed, else a shared one."""
    values = {"buyer": world.buyer_id, "supplier": world.supplier_id}
    if "{party}" in route.path:  # a party the call may change for good: fresh when it may
        fresh_party = await world.api.register("buyer", by=world.as_("agent")) if fresh else None
        values["party"] = fresh_party["id"] if fresh_party else world.buyer_id
    if "{key}" in route.path:
        if fresh or "key" not in shared:
            made = await world.api.client.post(
                f"/v1/parties/{world.buyer_id}/api-keys", headers=world.admin
            )
            assert made.status_code == 201, made.text
            values["key"] = made.json()["id"]
            if not fresh:
                shared["key"] = values["key"]
        else:
            values["key"] = shared["key"]
    if "{endpoint}" in route.path:
        if fresh or "endpoint" not in shared:
            made = await world.call(
                "POST", "/v1/webhook-endpoints", world.as_("buyer"), {"url": HOOK}
            )
            assert made.status_code == 201, made.text
            values["endpoint"] = made.json()["id"]
            if not fresh:
                shared["endpoint"] = values["endpoint"]
        else:
            values["endpoint"] = shared["endpoint"]
    if "{delivery}" in route.path:  # the endpoint's test event's delivery
        if fresh or "delivery" not in shared:
            sent = await world.call(
                "POST", f"/v1/webhook-endpoints/{values['endpoint']}/test", world.admin
            )
            assert sent.status_code == 202, sent.text
            values["delivery"] = sent.json()["id"]
            if not fresh:
                shared["delivery"] = values["delivery"]
        else:
            values["delivery"] = shared["delivery"]
    for name, (kind, report) in _MONEY_OUT.items():
        if "{" + name + "}" in route.path:
            if fresh or name not in shared:
                values[name] = await _money_out(world, kind, report)
                if not fresh:
                    shared[name] = values[name]
            else:
                values[name] = shared[name]
    if route.state is not None:
        state = route.state
        if state == "offer_of_the_other_side":
            state = "countered" if caller in ("buyer", "agent_for_buyer") else "disputed"
        if fresh or state not in shared:
            values["order"] = await world.order(state)
            if not fresh:
                shared[state] = values["order"]
        else:
            values["order"] = shared[state]
    return route.path.format(**values)


async def _money_out(world: World, kind: str, report: tuple[str, Any] | None) -> str:
    """A payout (of a completed order) or refund (of a payment after cancellation), pending
    or as the payments key's ``report`` (path, body) leaves it."""
    if kind == "payout":
        order_id = await world.order("completed")
    else:
        order_id = await world.order("cancelled")
        await world.pay(order_id, 1_000, "after_cancel")
    order = await world.call("GET", f"/v1/orders/{order_id}", world.as_("payments"))
    object_id = str(order.json()[f"{kind}s"][0]["id"])
    if report is not None:
        what, body = report
        path = f"/v1/{kind}s/{object_id}/{what}"
        reported = await world.call("POST", path, world.as_("payments"), body)
        assert reported.status_code == 200, reported.text
    return object_id


@pytest.mark.parametrize("name", list(ROUTES))
async def test_who_may_call(matrix_world: World, name: str) -> None:
    world, route = matrix_world, ROUTES[name]
    shared: dict[str, str] = {}
    mismatches = []
    for caller, expected in zip(CALLERS, EXPECTED[name], strict=True):
        path = await _path(world, route, caller, 200 <= expected < 300, shared)
        body = route.body(world) if callable(route.body) else route.body
        response = await world.call(route.method, path, world.as_(caller), body)
        if response.status_code != expected:
            got = f"{response.status_code} {response.text[:160]}"
            mismatches.append(f"{caller}: expected {expected}, got {got}")
        elif expected >= 400:
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["status"] == expected
            if expected == 401:
                assert response.headers["www-authenticate"] == "Bearer"
    assert not mismatches, "\n".join(mismatches)
