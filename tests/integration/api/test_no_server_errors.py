"""Nothing a client can send makes the API answer 5xx.

Every route gets junk bodies, every field of every request body gets values of the wrong
type, size or encoding (the rest of the body valid, sent by a permitted caller on an order in
a state where the command would run), and the lists, ids, query parameters and headers get
bad values. Each answer must be below 500 and, when an error, a problem with a stable code.
"""

import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from support.api import order_terms

from .test_authorization_matrix import (
    _MONEY_OUT,
    CALLERS,
    EXPECTED,
    HOOK,
    MATRIX_SETTINGS,
    ROUTES,
    Route,
    _money_out,
)
from .world import World, build_world, fast_dispute_api

HUGE_INT_TEXT = "9" * 5000  # beyond Python's default int-from-text limit
DEEP = "[" * 3000 + "]" * 3000
DEEP_OBJECT = '{"a":' * 3000 + "1" + "}" * 3000

RAW_BODIES: list[bytes] = [
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"1e400",
    b'{"a": NaN}',
    HUGE_INT_TEXT.encode(),
    DEEP.encode(),
    DEEP_OBJECT.encode(),
    b'{"\\u0000": 1}',
    b"\xff\xfe\x00",
    '{"\u00e9": "\u2603"}'.encode(),
]

# Replacements for one field at a time: JSON text, so numbers beyond any int64 can be sent.
BAD_VALUES: list[str] = [
    "null",
    "true",
    "1.5",
    "-1",
    str(10**30),
    HUGE_INT_TEXT,
    '""',
    '"' + "x" * 6000 + '"',
    '"a\\u0000b"',
    '"\\ud800"',
    '"\U0001d518\u202e\u0301\\n"',
    '[{"a": 1}]',
]


def _with_field(body: dict[str, Any], path: tuple[Any, ...], value: str) -> bytes:
    """``body`` as JSON text with the field at ``path`` replaced by the raw JSON ``value``."""
    marker = "__REPLACE_ME__"
    doc = orjson.loads(orjson.dumps(body))
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = marker
    return orjson.dumps(doc).replace(f'"{marker}"'.encode(), value.encode())


def _field_paths(body: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths: list[tuple[Any, ...]] = []
    if isinstance(body, dict):
        for key, value in body.items():
            paths.append((*prefix, key))
            paths.extend(_field_paths(value, (*prefix, key)))
    elif isinstance(body, list):
        for index, value in enumerate(body[:1]):
            paths.append((*prefix, index))
            paths.extend(_field_paths(value, (*prefix, index)))
    return paths


# A full body per route with every optional field present, so each one gets the junk.
FULL_BODIES: dict[str, Any] = {
    "register_party": {"kind": "supplier", "name": "Junk Co", "trade_assurance": False},
    "update_party": {"trade_assurance": True, "name": "Junk Co", "metadata": {"a": "b"}},
    "create_api_key": {"role": "mediator", "scope": "read", "expires_at": "2999-01-01T00:00:00Z"},
    "create_party_api_key": {"scope": "full", "expires_at": "2999-01-01T00:00:00Z"},
    "record_payment": {"amount": 1000, "method": "card", "provider_ref": "junk"},
    "ship_order": {"carrier": "DHL", "tracking_number": "1Z"},
    "deliver_order": {"delivered_at": "2020-01-01T00:00:00Z"},
    "extend_deadline": {"deadline": "inspection", "days": 3},
    "cancel_order": {"reason": "junk"},
    "post_message": {"body": "junk"},
    "update_order_metadata": {"metadata": {"po": "PO-1", "gone": ""}},
    "open_dispute": {
        "reason": "quality",
        "description": "junk",
        "requested_refund": 1000,
        "evidence": [
            {"description": "photo", "url": "https://example.com/p.jpg", "sha256": "a" * 64}
        ],
    },
    "make_dispute_offer": {"refund_amount": 1000, "note": "junk"},
    "resolve_dispute": {"refund_amount": 1000, "note": "junk"},
    "accept_order": {},
    "confirm_receipt": {},
    "accept_dispute_offer": {},
    "escalate_dispute": {},
    "withdraw_dispute": {},
    "make_claim": {
        "reason": "quality",
        "description": "junk",
        "requested_refund": 1000,
        "evidence": [{"description": "photo", "url": "https://example.com/p.jpg"}],
    },
    "create_webhook": {"url": HOOK, "event_types": ["funds.released"]},
    "update_webhook": {"url": HOOK, "event_types": ["*"], "enabled": True},
    "rotate_webhook_secret": {},
    "replay_webhook": {"since_position": 2**40},
    "advance_clock": {"advance_seconds": 1},
    "report_payout_paid": {"provider_ref": "junk"},
    "report_payout_failed": {"reason": "junk"},
    "report_payout_returned": {"reason": "junk"},
    "retry_payout": {},
    "report_refund_succeeded": {"provider_ref": "junk"},
    "report_refund_failed": {"reason": "junk"},
    "retry_refund": {},
}


def _full_place_order(world: World) -> dict[str, Any]:
    return order_terms(
        world.supplier_id,
        inspection_days=5,
        remarks="junk",
        metadata={"po": "PO-1"},
        client_reference=f"junk-{uuid.uuid4().hex}",
        retention={"percent": 10, "days": 30},
    )


def _permitted(name: str) -> str:
    return next(c for c, s in zip(CALLERS, EXPECTED[name], strict=True) if 200 <= s < 300)


class Checker:
    def __init__(self, world: World) -> None:
        self.world = world
        self.failures: list[str] = []
        self.calls = 0

    async def send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        content: bytes | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        all_headers = {**headers, **(extra or {})}
        if content is not None:
            all_headers.setdefault("Content-Type", "application/json")
        self.calls += 1
        try:
            response = await self.world.api.client.request(
                method, path, content=content, headers=all_headers
            )
        except Exception as error:  # the app raised instead of answering
            self.failures.append(f"{method} {path} {content!r:.80} {extra}: raised {error!r}")
            return
        if response.status_code >= 500:
            self.failures.append(
                f"{method} {path} {content!r:.80} {extra}: {response.status_code} "
                f"{response.text[:200]}"
            )
        elif response.status_code >= 400:
            problem = response.json()
            if response.headers["content-type"] != "application/problem+json" or not problem.get(
                "code"
            ):
                self.failures.append(f"{method} {path}: not a problem: {response.text[:200]}")


async def _path_for(world: World, route: Route, shared: dict[str, str]) -> str:
    # update_party gets junk like trade_assurance=false: keep the trade's supplier out of it
    values = {"buyer": world.buyer_id, "supplier": world.other_supplier_id}
    if "{party}" in route.path:  # deactivated by junk that passes: a party of its own
        if "party" not in shared:
            shared["party"] = (await world.api.register("buyer", by=world.as_("agent")))["id"]
        values["party"] = shared["party"]
    if "{key}" in route.path:
        if "key" not in shared:
            made = await world.api.client.post(
                f"/v1/parties/{world.buyer_id}/api-keys", headers=world.admin
            )
            shared["key"] = made.json()["id"]
        values["key"] = shared["key"]
    if "{endpoint}" in route.path:
        if "endpoint" not in shared:
            made = await world.call(
                "POST", "/v1/webhook-endpoints", world.as_("buyer"), {"url": HOOK}
            )
            shared["endpoint"] = made.json()["id"]
        values["endpoint"] = shared["endpoint"]
    if "{delivery}" in route.path:
        values["delivery"] = "whd_1"  # any: the calls here only need the route to match
    for name, (kind, report) in _MONEY_OUT.items():
        if "{" + name + "}" in route.path:
            if name not in shared:
                shared[name] = await _money_out(world, kind, report)
            values[name] = shared[name]
    if route.state is not None:
        state = "disputed" if route.state == "offer_of_the_other_side" else route.state
        if state not in shared:
            shared[state] = await world.order(state)
        values["order"] = shared[state]
    return route.path.format(**values)


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    """The cast in the matrix's app, so the sandbox and webhook routes are there too."""
    async with fast_dispute_api(database_url, **MATRIX_SETTINGS) as api:
        yield await build_world(api)


async def test_junk_bodies_and_fields_never_make_a_5xx(world: World) -> None:
    checker = Checker(world)
    shared: dict[str, str] = {}
    for name, route in ROUTES.items():
        caller = world.as_(_permitted(name))
        path = await _path_for(world, route, shared)
        for raw in RAW_BODIES if route.method in ("POST", "PATCH") else ():
            await checker.send(route.method, path, caller, raw)
        full = _full_place_order(world) if name == "place_order" else FULL_BODIES.get(name)
        if full is None:
            continue
        for field in _field_paths(full):
            for value in BAD_VALUES:
                await checker.send(route.method, path, caller, _with_field(full, field, value))
        for value in BAD_VALUES:  # an unknown field, and one with a strange name
            await checker.send(route.method, path, caller, _with_field(full, ("zzz",), value))
    assert not checker.failures, f"{len(checker.failures)} of {checker.calls}:\n" + "\n".join(
        checker.failures[:60]
    )


def _b64(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


BAD_CURSORS = [
    "",
    "x",
    "!!!!",
    "%00",
    "a" * 600,
    _b64(b"\xff\xfe"),
    _b64(b"not json"),
    _b64(None),
    _b64([]),
    _b64({}),
    _b64(1),
    _b64(-1),
    _b64(10**30),
    _b64([1, 2]),
    _b64([-1, -1]),
    _b64([10**30, 10**30]),
    _b64([2**63, 0]),
    _b64(["a", "b"]),
    _b64(["2027-01-01T00:00:00+00:00", "ord_x"]),
    _b64(["2027-01-01T00:00:00+00:00", "\u0000"]),
    _b64(["\u0000", 1]),
    _b64([None, None]),
    _b64([[], {}]),
    _b64([1.5, 2.5]),
    _b64([1, 2, 3]),
    _b64("string"),
    _b64(2**40),
    _b64(2**63),
    _b64(["2027-01-01T00:00:00", "ord_x"]),
    _b64(["2027-01-01T00:00:00+00:00", "ord_x", 1]),
]
BAD_QUERY_VALUES = ["", "0", "-1", "101", "abc", "1.5", str(10**30), "%00", "%FF", "ü" * 200]
BAD_IDS = [
    "%00",
    "ord_%00",
    "pty_%00",
    "key_%00",
    "x" * 300,
    "ord_" + "a" * 96,
    "%F0%9F%98%80",
    "%ED%A0%80",  # an encoded lone surrogate
    "%FF",
    "..",
    "%2F",
    "ord_ü",
    " ",
]
# Each list and the query parameters it takes (and one it does not).
LISTS = {
    "/v1/parties": ("limit", "cursor", "kind"),
    "/v1/api-keys": ("limit", "cursor", "party_id"),
    "/v1/webhook-endpoints": ("limit", "cursor"),
    "/v1/webhook-endpoints/{endpoint}/deliveries": ("limit", "cursor", "status"),
    "/v1/orders": (
        "limit",
        "cursor",
        "status",
        "buyer_id",
        "supplier_id",
        "client_reference",
        "metadata",
        "created_gte",
        "created_lt",
    ),
    "/v1/events": ("limit", "cursor", "status", "type", "order_id", "from"),
    "/v1/disputes": ("limit", "cursor", "status"),
    "/v1/orders/{order}/events": ("limit", "cursor"),
    "/v1/payouts": ("limit", "cursor", "status", "party_id", "order_id"),
    "/v1/refunds": ("limit", "cursor", "status", "party_id", "order_id"),
    "/v1/parties/{buyer}/ledger": ("limit", "cursor"),
}


async def test_bad_lists_ids_queries_and_headers_never_make_a_5xx(world: World) -> None:
    checker = Checker(world)
    order_id = await world.order("placed")
    shared: dict[str, str] = {}
    hook = await world.call("POST", "/v1/webhook-endpoints", world.as_("buyer"), {"url": HOOK})
    admin, buyer = world.admin, world.as_("buyer")
    for template, parameters in LISTS.items():
        path = template.format(order=order_id, endpoint=hook.json()["id"], buyer=world.buyer_id)
        for cursor in BAD_CURSORS:
            await checker.send("GET", f"{path}?cursor={cursor}", admin)
        for value in BAD_QUERY_VALUES:
            for name in parameters:
                await checker.send("GET", f"{path}?{name}={value}", buyer)
    for value in BAD_QUERY_VALUES:
        await checker.send("GET", f"/v1/orders/{order_id}?version={value}", admin)
    for bad in BAD_IDS:
        for name, route in ROUTES.items():
            placeholders = (
                "{order}",
                "{buyer}",
                "{supplier}",
                "{party}",
                "{key}",
                "{endpoint}",
                *("{" + name + "}" for name in _MONEY_OUT),
            )
            if not any(p in route.path for p in placeholders):
                continue
            path = route.path.split("?")[0]
            for placeholder in placeholders:
                path = path.replace(placeholder, bad)
            body = orjson.dumps(FULL_BODIES.get(name, {})) if route.method != "GET" else None
            await checker.send(route.method, path, admin, body)
    for route in ROUTES.values():  # methods the route does not take
        path = await _path_for(world, route, shared)
        for method in {"OPTIONS", "PUT", "TRACE", "DELETE", "PATCH"} - {route.method}:
            await checker.send(method, path, buyer, b"{}")
    headers_to_try: list[dict[str, Any]] = [
        {"If-Match": b'"\xb2"'},
        {"If-Match": b'"\xd9\xa1"'},
        {"If-Match": "9" * 40},
        {"If-Match": '"1", "2"'},
        {"If-Match": "W/"},
        {"If-Match": ""},
        {"Idempotency-Key": b"\x01\x02"},
        {"Idempotency-Key": b"a\x00b"},
        {"X-Request-Id": b"a\x00b"},
        {"Escrow-Correlation-Id": b"a\x00b"},
        {"Escrow-Correlation-Id": b"\xff"},
        {"Escrow-Correlation-Id": "c" * 5000},
        {"Escrow-On-Behalf-Of": b"pty_\x00"},
        {"Idempotency-Key": b"\xff\xfe"},
        {"Idempotency-Key": "k" * 256},
        {"Idempotency-Key": " "},
        {"X-Request-Id": b"\x01\x7f"},
        {"X-Request-Id": b"\xff"},
        {"Escrow-On-Behalf-Of": b"\x01"},
        {"Escrow-On-Behalf-Of": b"pty_\xff"},
        {"Escrow-On-Behalf-Of": "x" * 500},
        {"Authorization": b"Bearer \xff\x01"},
        {"Authorization": "Bearer " + "k" * 10000},
        {"Authorization": "Basic Zm9vOmJhcg=="},
        {"Content-Type": "application/json; charset=latin-1"},
        {"Content-Length": "-1"},
        {"Content-Length": "abc"},
    ]
    for extra in headers_to_try:
        for caller in ("buyer", "agent"):
            headers = world.as_(caller)
            message = b'{"body": "hi"}'
            await checker.send("POST", f"/v1/orders/{order_id}/messages", headers, message, extra)
            await checker.send("GET", f"/v1/orders/{order_id}", headers, None, extra)
    assert not checker.failures, f"{len(checker.failures)} of {checker.calls}:\n" + "\n".join(
        checker.failures[:60]
    )


@pytest.mark.parametrize("path", ["/v1/orders", "/v1/parties"])
async def test_huge_and_empty_bodies_answer_cleanly(world: World, path: str) -> None:
    checker = Checker(world)
    await checker.send("POST", path, world.as_("buyer"), b" " * 70_000)
    await checker.send("POST", path, world.as_("buyer"), b"")
    await checker.send("POST", path, world.admin, b"{}" + b" " * 65_000)
    assert not checker.failures, "\n".join(checker.failures)
