"""API keys for the party-less roles, and revocation."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_api import responses as r
from escrow_api.auth import CurrentPrincipal, KeyCache, Principal
from escrow_api.deps import IdempotencyKey, RuntimeDep, well_formed
from escrow_api.idempotent import run_idempotent
from escrow_api.jsonresponse import JSONResponse
from escrow_api.problems import ApiError
from escrow_api.routes.parties import key_json
from escrow_api.schemas import parties as s
from escrow_core import accounts
from escrow_core.accounts import KeyRole

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])
KeyId = Annotated[str, Path(max_length=100, description="The key's id, key_...")]


@router.post(
    "",
    operation_id="create_api_key",
    status_code=201,
    response_model=s.ApiKey,
    responses=r.errors(400, 401, 403, 409, 413, 415, 422),
)
async def create_api_key(
    body: s.CreateApiKeyRequest,
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A key for the admin, mediator or payments role (admin only); the secret is shown once."""
    if principal.role is not KeyRole.ADMIN:
        raise ApiError(403, "forbidden", "Only an admin makes keys for party-less roles.")

    async def work(conn: AsyncConnection, now: datetime) -> tuple[Response, Any]:
        issued = await accounts.create_api_key(
            conn, role=KeyRole(body.role), party_id=None, created_by=principal.key_id, now=now
        )
        shown = key_json(issued, issued.secret)
        return JSONResponse(shown, status_code=201), {**shown, "key": None}

    return await run_idempotent(request, principal, idempotency_key, work)


@router.delete(
    "/{key_id}",
    operation_id="revoke_api_key",
    response_model=s.ApiKey,
    responses=r.errors(401, 404, 422),
)
async def revoke_api_key(
    key_id: KeyId, request: Request, principal: CurrentPrincipal, runtime: RuntimeDep
) -> Response:
    """Revoke a key (admin, the key's party or its agent, or the key itself); idempotent."""
    async with runtime.database.transaction() as conn:
        key = await accounts.get_api_key(conn, key_id) if well_formed(key_id, "key") else None
        if key is None or not await _may_revoke(conn, principal, key):
            raise ApiError(404, "api_key_not_found", "No such API key.")
        now = await runtime.clock.now(conn)
        revoked = await accounts.revoke_api_key(conn, key_id, now)
    cache: KeyCache = request.app.state.key_cache
    cache.forget(key_id)
    assert revoked is not None
    return JSONResponse(key_json(revoked, None))


async def _may_revoke(conn: AsyncConnection, principal: Principal, key: accounts.ApiKey) -> bool:
    if principal.role is KeyRole.ADMIN or principal.key_id == key.id:
        return True
    if key.party_id is None:
        return False
    if principal.party_id == key.party_id:  # the party, or its agent acting for it
        return True
    if principal.on_behalf_of is not None:
        return False
    party = await accounts.get_party(conn, key.party_id)
    return (
        party is not None
        and principal.role is KeyRole.AGENT
        and party.managed_by == principal.party_id
    )
