"""Webhook endpoints: register, list, change, delete, rotate the secret, replay, deliveries.

Who: the owning party (or the agent that manages it), or an admin. An admin's endpoint may
receive every event; a party's, the events of its own orders; an agent's, those of the parties
it manages. Anyone else gets 404 for an endpoint, as for an order.
"""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_api import responses as r
from escrow_api.auth import CurrentPrincipal, Principal
from escrow_api.deps import (
    Cursor,
    IdempotencyKey,
    Limit,
    RuntimeDep,
    bad_cursor,
    decode_cursor,
    encode_cursor,
)
from escrow_api.idempotent import run_idempotent
from escrow_api.jsonresponse import JSONResponse
from escrow_api.problems import ApiError
from escrow_api.schemas import webhooks as s
from escrow_api.schemas.common import Page
from escrow_core.accounts import KeyRole
from escrow_core.runtime import Runtime
from escrow_core.webhooks import deliveries, endpoints
from escrow_core.webhooks.endpoints import Endpoint
from escrow_core.webhooks.ssrf import UnsafeUrl, check_url

router = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhooks"])
EndpointId = Annotated[str, Path(max_length=100, description="The endpoint's id, whe_...")]
DELIVERY_PREFIX = "whd_"


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


def _not_found() -> ApiError:
    return ApiError(404, "webhook_endpoint_not_found", "No such webhook endpoint.")


def _owner_of_new(principal: Principal) -> str | None:
    """Who owns an endpoint this caller registers: its party (the named one for an agent
    acting on behalf), the agent itself, or nobody for an admin."""
    if principal.role is KeyRole.ADMIN:
        return None
    if principal.party_id is not None and principal.role in (
        KeyRole.BUYER,
        KeyRole.SUPPLIER,
        KeyRole.AGENT,
    ):
        return principal.party_id
    raise ApiError(
        403, "forbidden", "Only a party, its agent or an admin registers webhook endpoints."
    )


def _may_access(principal: Principal, endpoint: Endpoint) -> bool:
    if principal.role is KeyRole.ADMIN:
        return True
    owner = endpoint.owner_party_id
    if owner is None:
        return False
    return owner == principal.party_id or (
        principal.role is KeyRole.AGENT and owner in principal.managed
    )


async def _visible(conn: AsyncConnection, principal: Principal, endpoint_id: str) -> Endpoint:
    if not endpoint_id.startswith("whe_"):
        raise _not_found()
    endpoint = await endpoints.get(conn, endpoint_id)
    if endpoint is None or not _may_access(principal, endpoint):
        raise _not_found()
    return endpoint


async def _check_url(runtime: Runtime, url: str) -> None:
    """The SSRF rule at registration: 422 with a stable code when the URL may not be used."""
    try:
        await check_url(url, allow_private=runtime.settings.webhook_allow_private)
    except UnsafeUrl as error:
        raise ApiError(
            422,
            error.code,
            error.detail,
            errors=[{"field": "url", "in": "body", "code": error.code, "message": error.detail}],
        ) from error


@router.post(
    "",
    operation_id="create_webhook_endpoint",
    status_code=201,
    response_model=s.WebhookEndpoint,
    responses=r.errors(400, 401, 403, 409, 413, 415, 422),
)
async def create_webhook_endpoint(
    body: s.CreateWebhookEndpointRequest,
    request: Request,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Register an endpoint; the signing secret is shown in this response only."""
    owner = _owner_of_new(principal)
    await _check_url(runtime, body.url)

    async def work(conn: AsyncConnection, now: datetime) -> tuple[Response, Any]:
        endpoint = await endpoints.create(
            conn,
            owner_party_id=owner,
            url=body.url,
            event_types=body.event_types,
            created_by=principal.key_id,
            now=now,
        )
        shown = endpoint_json(endpoint, endpoint.secret)
        headers = {"Location": f"/v1/webhook-endpoints/{endpoint.id}"}
        return JSONResponse(shown, status_code=201, headers=headers), {**shown, "secret": None}

    return await run_idempotent(request, principal, idempotency_key, work)


@router.get(
    "",
    operation_id="list_webhook_endpoints",
    response_model=Page[s.WebhookEndpoint],
    responses=r.errors(401, 403, 422),
)
async def list_webhook_endpoints(
    principal: CurrentPrincipal, runtime: RuntimeDep, limit: Limit = 20, cursor: Cursor = None
) -> Response:
    """The endpoints the caller owns (an agent: also its parties'; an admin: all)."""
    owners: frozenset[str] | None = None
    if principal.role is not KeyRole.ADMIN:
        if principal.party_id is None:
            raise ApiError(403, "forbidden", "Only parties, agents and admins have endpoints.")
        owners = principal.visible_parties
    after = None
    if cursor is not None:
        after = decode_cursor(cursor)
        if not isinstance(after, str):
            raise bad_cursor()
    async with runtime.database.read() as conn:
        found = await endpoints.list_page(conn, owners=owners, limit=limit + 1, after=after)
    page, more = found[:limit], len(found) > limit
    return JSONResponse(
        {
            "data": [endpoint_json(e) for e in page],
            "next_cursor": encode_cursor(page[-1].id) if more else None,
            "has_more": more,
        }
    )


@router.get(
    "/{endpoint_id}",
    operation_id="get_webhook_endpoint",
    response_model=s.WebhookEndpoint,
    responses=r.errors(401, 404, 422),
)
async def get_webhook_endpoint(
    endpoint_id: EndpointId, principal: CurrentPrincipal, runtime: RuntimeDep
) -> Response:
    """One endpoint (its secret is not shown again: rotate to get a new one)."""
    async with runtime.database.read() as conn:
        endpoint = await _visible(conn, principal, endpoint_id)
    return JSONResponse(endpoint_json(endpoint))


@router.patch(
    "/{endpoint_id}",
    operation_id="update_webhook_endpoint",
    response_model=s.WebhookEndpoint,
    responses=r.errors(400, 401, 404, 413, 415, 422),
)
async def update_webhook_endpoint(
    endpoint_id: EndpointId,
    body: s.UpdateWebhookEndpointRequest,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
) -> Response:
    """Change the URL or event types, or disable / re-enable the endpoint."""
    if body.url is not None:
        await _check_url(runtime, body.url)
    async with runtime.database.transaction() as conn:
        await _visible(conn, principal, endpoint_id)
        updated = await endpoints.update(
            conn,
            endpoint_id,
            now=await runtime.clock.now(conn),
            url=body.url,
            event_types=body.event_types,
            enabled=body.enabled,
        )
    assert updated is not None
    return JSONResponse(endpoint_json(updated))


@router.delete(
    "/{endpoint_id}",
    operation_id="delete_webhook_endpoint",
    status_code=204,
    response_class=Response,
    responses=r.errors(401, 404, 422),
)
async def delete_webhook_endpoint(
    endpoint_id: EndpointId, principal: CurrentPrincipal, runtime: RuntimeDep
) -> Response:
    """Delete the endpoint: nothing more is sent to it (its history is kept)."""
    async with runtime.database.transaction() as conn:
        await _visible(conn, principal, endpoint_id)
        await endpoints.delete(conn, endpoint_id, await runtime.clock.now(conn))
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/rotate-secret",
    operation_id="rotate_webhook_endpoint_secret",
    response_model=s.WebhookEndpoint,
    responses=r.errors(400, 401, 404, 409, 413, 415, 422),
)
async def rotate_webhook_endpoint_secret(
    endpoint_id: EndpointId,
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A new secret, shown once; for 24 h deliveries carry signatures by both secrets."""

    async def work(conn: AsyncConnection, now: datetime) -> tuple[Response, Any]:
        await _visible(conn, principal, endpoint_id)
        rotated = await endpoints.rotate_secret(
            conn, endpoint_id, now=now, wall_now=datetime.now(UTC)
        )
        assert rotated is not None
        shown = endpoint_json(rotated, rotated.secret)
        return JSONResponse(shown), {**shown, "secret": None}

    return await run_idempotent(request, principal, idempotency_key, work)


@router.post(
    "/{endpoint_id}/replay",
    operation_id="replay_webhook_endpoint",
    status_code=202,
    response_model=s.ReplayResult,
    responses=r.errors(400, 401, 404, 409, 413, 415, 422),
)
async def replay_webhook_endpoint(
    endpoint_id: EndpointId,
    body: s.ReplayRequest,
    request: Request,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Send the endpoint's matching events again, from a log position or a time on."""

    async def work(conn: AsyncConnection, now: datetime) -> tuple[Response, None]:
        endpoint = await _visible(conn, principal, endpoint_id)
        if not endpoint.enabled:
            raise ApiError(
                409, "webhook_endpoint_disabled", "Enable the endpoint before replaying to it."
            )
        replayed = await deliveries.replay(
            conn,
            runtime.store,
            endpoint,
            since_position=body.since_position,
            since=body.since,
        )
        result = {
            "endpoint_id": endpoint.id,
            "enqueued": replayed.enqueued,
            "has_more": replayed.has_more,
            "next_position": (
                replayed.scanned_to + 1
                if replayed.has_more and replayed.scanned_to is not None
                else None
            ),
        }
        return JSONResponse(result, status_code=202), None

    return await run_idempotent(request, principal, idempotency_key, work)


@router.get(
    "/{endpoint_id}/deliveries",
    operation_id="list_webhook_deliveries",
    response_model=Page[s.WebhookDelivery],
    responses=r.errors(401, 404, 422),
)
async def list_webhook_deliveries(
    endpoint_id: EndpointId,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    limit: Limit = 20,
    cursor: Cursor = None,
    status: Annotated[
        Literal["pending", "succeeded", "failed"] | None,
        Query(description="Only deliveries in this status."),
    ] = None,
) -> Response:
    """The endpoint's deliveries, newest first, each with every attempt made."""
    before = None
    if cursor is not None:
        before = decode_cursor(cursor)
        if not isinstance(before, int) or isinstance(before, bool) or not 0 < before < 2**63:
            raise bad_cursor()
    async with runtime.database.read() as conn:
        await _visible(conn, principal, endpoint_id)
        found = await deliveries.list_page(
            conn, endpoint_id, limit=limit + 1, before=before, status=status
        )
    page, more = found[:limit], len(found) > limit
    for delivery in page:
        delivery["id"] = f"{DELIVERY_PREFIX}{delivery['id']}"
    return JSONResponse(
        {
            "data": page,
            "next_cursor": (
                encode_cursor(int(page[-1]["id"].removeprefix(DELIVERY_PREFIX))) if more else None
            ),
            "has_more": more,
        }
    )
