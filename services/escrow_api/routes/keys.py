"""API keys: for the party-less roles, the list, and revocation."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from escrow_api import responses as r
from escrow_api.auth import key_cache
from escrow_api.deps import CallerDep, Cursor, Limit, WriteDep
from escrow_api.jsonresponse import JSONResponse
from escrow_api.presenters import issued_key, key_json, page_response
from escrow_api.schemas import parties as s
from escrow_api.schemas.common import Page
from escrow_core.accounts import KeyRole
from escrow_core.application import keys

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])
KeyId = Annotated[str, Path(max_length=100, description="The key's id, key_...")]


@r.creating(router, "", "create_api_key", s.ApiKey)
async def create_api_key(body: s.CreateApiKeyRequest, call: WriteDep) -> Response:
    """A key for the admin, mediator or payments role (admin only); the secret is shown once."""
    role = KeyRole(body.role)
    return await call.once(
        lambda keep: keys.create_role_key(
            call.runtime,
            call.principal,
            role,
            scope=body.scope,
            expires_at=body.expires_at,
            keep=keep,
        ),
        issued_key,
    )


@r.listing(router, "", "list_api_keys", Page[s.ApiKey], 403)
async def list_api_keys(
    call: CallerDep,
    limit: Limit = 20,
    cursor: Cursor = None,
    party_id: Annotated[
        str | None,
        Query(max_length=100, pattern=r"^pty_[A-Za-z0-9]{1,64}$", description="One party's keys."),
    ] = None,
) -> Response:
    """Keys newest first, with revoked_at and last_used_at (never a secret): all for an
    admin, its own for a party or an agent."""
    page = await keys.list_page(
        call.runtime, call.principal, limit=limit, cursor=cursor, party_id=party_id
    )
    return page_response(page, lambda key: key_json(key, None))


@router.delete(
    "/{key_id}",
    operation_id="revoke_api_key",
    response_model=s.ApiKey,
    responses=r.errors(401, 404, 422),
)
async def revoke_api_key(key_id: KeyId, request: Request, call: CallerDep) -> Response:
    """Revoke a key (admin, the key's party or its agent, or the key itself); idempotent."""
    revoked = await keys.revoke(call.runtime, call.principal, key_id)
    key_cache(request).forget(key_id)
    return JSONResponse(key_json(revoked, None))
