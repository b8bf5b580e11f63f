"""Webhook endpoints: register, list, change, delete, rotate the secret, replay, deliveries,
send a test, resend a delivery.

Who: the owning party (or the agent that manages it), or an admin (the rules:
escrow_core.application.webhook_endpoints).
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response

from escrow_api import responses as r
from escrow_api.deps import CallerDep, Cursor, Limit, WriteDep
from escrow_api.jsonresponse import JSONResponse
from escrow_api.presenters import page_response
from escrow_api.schemas import webhooks as s
from escrow_api.schemas.common import Page
from escrow_core.application import webhook_endpoints as endpoints
from escrow_core.application.webhook_endpoints import Replay
from escrow_core.webhooks.endpoints import Endpoint

router = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhooks"])
EndpointId = Annotated[str, Path(max_length=100, description="The endpoint's id, whe_...")]
DELIVERY_PREFIX = "whd_"
DeliveryId = Annotated[
    str,
    Path(
        max_length=30,
        pattern=r"^whd_[0-9]{1,19}$",
        description="The delivery's id, whd_... (from the endpoint's deliveries).",
    ),
]


def endpoint_json(endpoint: Endpoint, secret: str | None = None) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "owner_party_id": endpoint.owner_party_id,
        "secret": secret,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }


def _with_secret(endpoint: Endpoint, status: int = 200) -> tuple[Response, Any]:
    """The endpoint with its new secret, and what a replay shows: the secret null."""
    shown = endpoint_json(endpoint, endpoint.secret)
    headers = {"Location": f"/v1/webhook-endpoints/{endpoint.id}"} if status == 201 else None
    return JSONResponse(shown, status_code=status, headers=headers), {**shown, "secret": None}


def _replayed(replay: Replay) -> tuple[Response, None]:
    replayed, scanned_to = replay.replayed, replay.replayed.scanned_to
    result = {
        "endpoint_id": replay.endpoint.id,
        "enqueued": replayed.enqueued,
        "has_more": replayed.has_more,
        "next_position": (scanned_to + 1 if replayed.has_more and scanned_to is not None else None),
    }
    return JSONResponse(result, status_code=202), None


def _delivery_json(delivery: dict[str, Any]) -> dict[str, Any]:
    return {**delivery, "id": f"{DELIVERY_PREFIX}{delivery['id']}"}


def _queued(delivery: dict[str, Any]) -> tuple[Response, None]:
    return JSONResponse(_delivery_json(delivery), status_code=202), None


@r.creating(router, "", "create_webhook_endpoint", s.WebhookEndpoint)
async def create_webhook_endpoint(body: s.CreateWebhookEndpointRequest, call: WriteDep) -> Response:
    """Register an endpoint; the signing secret is shown in this response only."""
    return await call.once(
        lambda keep: endpoints.create(
            call.runtime, call.principal, url=body.url, event_types=body.event_types, keep=keep
        ),
        lambda endpoint: _with_secret(endpoint, 201),
    )


@r.listing(router, "", "list_webhook_endpoints", Page[s.WebhookEndpoint], 403)
async def list_webhook_endpoints(
    call: CallerDep, limit: Limit = 20, cursor: Cursor = None
) -> Response:
    """The endpoints the caller owns (an agent: also its parties'; an admin: all)."""
    page = await endpoints.list_page(call.runtime, call.principal, limit=limit, cursor=cursor)
    return page_response(page, endpoint_json)


@router.get(
    "/{endpoint_id}",
    operation_id="get_webhook_endpoint",
    response_model=s.WebhookEndpoint,
    responses=r.errors(401, 404, 422),
)
async def get_webhook_endpoint(endpoint_id: EndpointId, call: CallerDep) -> Response:
    """One endpoint (its secret is not shown again: rotate to get a new one)."""
    endpoint = await endpoints.get(call.runtime, call.principal, endpoint_id)
    return JSONResponse(endpoint_json(endpoint))


@router.patch(
    "/{endpoint_id}",
    operation_id="update_webhook_endpoint",
    response_model=s.WebhookEndpoint,
    responses=r.errors(400, 401, 404, 413, 415, 422),
)
async def update_webhook_endpoint(
    endpoint_id: EndpointId, body: s.UpdateWebhookEndpointRequest, call: CallerDep
) -> Response:
    """Change the URL or event types, or disable / re-enable the endpoint."""
    updated = await endpoints.update(
        call.runtime,
        call.principal,
        endpoint_id,
        url=body.url,
        event_types=body.event_types,
        enabled=body.enabled,
    )
    return JSONResponse(endpoint_json(updated))


@router.delete(
    "/{endpoint_id}",
    operation_id="delete_webhook_endpoint",
    status_code=204,
    response_class=Response,
    responses=r.errors(401, 404, 422),
)
async def delete_webhook_endpoint(endpoint_id: EndpointId, call: CallerDep) -> Response:
    """Delete the endpoint: nothing more is sent to it (its history is kept)."""
    await endpoints.delete(call.runtime, call.principal, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/rotate-secret",
    operation_id="rotate_webhook_endpoint_secret",
    response_model=s.WebhookEndpoint,
    responses=r.errors(400, 401, 404, 409, 413, 415, 422),
)
async def rotate_webhook_endpoint_secret(endpoint_id: EndpointId, call: WriteDep) -> Response:
    """A new secret, shown once; for 24 h deliveries carry signatures by both secrets."""
    return await call.once(
        lambda keep: endpoints.rotate_secret(call.runtime, call.principal, endpoint_id, keep),
        _with_secret,
    )


@router.post(
    "/{endpoint_id}/replay",
    operation_id="replay_webhook_endpoint",
    status_code=202,
    response_model=s.ReplayResult,
    responses=r.errors(400, 401, 404, 409, 413, 415, 422),
)
async def replay_webhook_endpoint(
    endpoint_id: EndpointId, body: s.ReplayRequest, call: WriteDep
) -> Response:
    """Send the endpoint's matching events again, from a log position or a time on; each call
    looks at 10,000 events at most and names the next_position to go on from."""
    return await call.once(
        lambda keep: endpoints.replay(
            call.runtime,
            call.principal,
            endpoint_id,
            since_position=body.since_position,
            since=body.since,
            keep=keep,
        ),
        _replayed,
    )


@r.listing(
    router, "/{endpoint_id}/deliveries", "list_webhook_deliveries", Page[s.WebhookDelivery], 404
)
async def list_webhook_deliveries(
    endpoint_id: EndpointId,
    call: CallerDep,
    limit: Limit = 20,
    cursor: Cursor = None,
    status: Annotated[
        Literal["pending", "succeeded", "failed"] | None,
        Query(description="Only deliveries in this status."),
    ] = None,
) -> Response:
    """The endpoint's deliveries, newest first, each with every attempt made."""
    page = await endpoints.deliveries_page(
        call.runtime, call.principal, endpoint_id, limit=limit, cursor=cursor, status=status
    )
    return page_response(page, _delivery_json)


@router.post(
    "/{endpoint_id}/test",
    operation_id="test_webhook_endpoint",
    status_code=202,
    response_model=s.WebhookDelivery,
    responses=r.errors(401, 404, 409, 422),
)
async def test_webhook_endpoint(endpoint_id: EndpointId, call: WriteDep) -> Response:
    """Send the endpoint a signed webhook.test event now, retried and signed like any other;
    answers its delivery (follow it in the endpoint's deliveries)."""
    return await call.once(
        lambda keep: endpoints.send_test(
            call.runtime, call.principal, endpoint_id, trace=call.trace(), keep=keep
        ),
        _queued,
    )


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/resend",
    operation_id="resend_webhook_delivery",
    status_code=202,
    response_model=s.WebhookDelivery,
    responses=r.errors(401, 404, 409, 422),
)
async def resend_webhook_delivery(
    endpoint_id: EndpointId, delivery_id: DeliveryId, call: WriteDep
) -> Response:
    """Send one delivery again now, on a fresh retry schedule: the same event and webhook-id,
    so a receiver deduplicates it like a retry."""
    number = int(delivery_id.removeprefix(DELIVERY_PREFIX))
    return await call.once(
        lambda keep: endpoints.resend(call.runtime, call.principal, endpoint_id, number, keep=keep),
        _queued,
    )
