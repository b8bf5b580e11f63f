"""Dates and times outside the years 2000-2999 are a 422, wherever a client hands them in
(request bodies, list cursors, the sandbox clock), never an overflow 500 (DESIGN 7.4)."""

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from escrow_core.application.runtime import Runtime
from escrow_core.store import Store
from support.api import order_terms, running_api
from support.api import test_settings as settings_for

from .world import World

PROBLEM = "application/problem+json"

OUT_OF_SPAN_DATES = ["9999-12-31", "0001-01-01", "1999-12-31", "3000-01-01"]
OUT_OF_SPAN_TIMES = [
    "9999-12-31T23:59:59-14:00",  # year 10000 in UTC
    "9999-12-31T23:59:59+14:00",
    "0001-01-01T00:00:00+14:00",  # year 0 in UTC
    "0001-01-01T00:00:00Z",
    "3000-01-01T00:00:00Z",
    "2999-12-31T23:00:00-14:00",  # year 3000 in UTC
    "2000-01-01T00:30:00+01:00",  # year 1999 in UTC
]


def _refused(response: Any, field: str, code: str = "validation_error") -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["code"] == code
    assert field in [error["field"] for error in problem["errors"]], problem


@pytest.mark.parametrize("ship_by", OUT_OF_SPAN_DATES)
async def test_an_order_shipping_by_a_date_out_of_span_is_refused(
    world: World, ship_by: str
) -> None:
    body = order_terms(world.supplier_id, ship_by=ship_by)

    response = await world.call("POST", "/v1/orders", world.as_("buyer"), body)

    _refused(response, "ship_by")


async def test_the_last_day_of_the_span_is_a_ship_by_date(world: World) -> None:
    order_id = await world.place(ship_by="2999-12-31")

    order = await world.call("GET", f"/v1/orders/{order_id}", world.as_("buyer"))

    assert order.json()["ship_by"] == "2999-12-31"


async def test_a_delivery_reported_at_a_time_out_of_span_is_refused(world: World) -> None:
    order_id = await world.order("shipped")

    for delivered_at in OUT_OF_SPAN_TIMES:
        response = await world.call(
            "POST",
            f"/v1/orders/{order_id}/deliver",
            world.as_("supplier"),
            {"delivered_at": delivered_at},
        )
        _refused(response, "delivered_at")
    order = await world.call("GET", f"/v1/orders/{order_id}", world.as_("buyer"))
    assert order.json()["status"] == "shipped"


@pytest.mark.parametrize("since", OUT_OF_SPAN_TIMES)
async def test_a_replay_since_a_time_out_of_span_is_refused(database_url: str, since: str) -> None:
    settings = settings_for(database_url, webhook_allow_private=True)
    async with running_api(settings) as api:
        endpoint = await api.client.post(
            "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hook"}, headers=api.admin
        )
        assert endpoint.status_code == 201, endpoint.text
        response = await api.client.post(
            f"/v1/webhook-endpoints/{endpoint.json()['id']}/replay",
            json={"since": since},
            headers=api.admin,
        )

    _refused(response, "since")


def _cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


FORGED_TIMES = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59+14:00",
    "9999-12-31T23:59:59-14:00",
    "3000-01-01T00:00:00+00:00",
    "2026-01-01T00:00:00",  # no offset
]


@pytest.mark.parametrize("moment", FORGED_TIMES)
async def test_a_forged_cursor_out_of_span_is_an_invalid_cursor(world: World, moment: str) -> None:
    order_id = await world.place()
    cursor = _cursor([moment, order_id])

    orders = await world.call("GET", f"/v1/orders?cursor={cursor}", world.admin)
    disputes = await world.call("GET", f"/v1/disputes?cursor={cursor}", world.admin)

    _refused(orders, "cursor", "invalid_cursor")
    _refused(disputes, "cursor", "invalid_cursor")


async def test_a_cursor_in_span_still_pages(world: World) -> None:
    order_id = await world.place()
    cursor = _cursor([datetime.now(UTC).isoformat(), order_id])

    orders = await world.call("GET", f"/v1/orders?cursor={cursor}", world.admin)
    disputes = await world.call("GET", f"/v1/disputes?cursor={cursor}", world.admin)

    assert orders.status_code == 200, orders.text
    assert disputes.status_code == 200, disputes.text


async def test_the_sandbox_clock_does_not_leave_the_span(fresh_store: Store) -> None:
    async with running_api(settings_for(fresh_store.url, sandbox=True)) as api:
        runtime: Runtime = api.app.state.runtime
        near_the_end = datetime(2999, 12, 1, tzinfo=UTC) - datetime.now(UTC)
        offset = await runtime.store.advance_clock(int(near_the_end.total_seconds()))

        past_the_end = await api.client.post(
            "/v1/sandbox/clock", json={"advance_seconds": 60 * 86_400}, headers=api.admin
        )
        within = await api.client.post(
            "/v1/sandbox/clock", json={"advance_seconds": 86_400}, headers=api.admin
        )

    _refused(past_the_end, "advance_seconds")
    assert within.status_code == 200, within.text
    assert within.json()["offset_seconds"] == offset + 86_400  # the refused move was undone
