"""Parties and their keys and balances."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_api import responses as r
from escrow_api.auth import CurrentPrincipal, Principal
from escrow_api.deps import IdempotencyKey, RuntimeDep, well_formed
from escrow_api.idempotent import run_idempotent
from escrow_api.jsonresponse import JSONResponse
from escrow_api.problems import ApiError
from escrow_api.schemas import parties as s
from escrow_core import accounts
from escrow_core.accounts import KeyRole, Party, PartyKind
from escrow_core.currency import exponent
from escrow_core.projections import party_balances

router = APIRouter(prefix="/v1/parties", tags=["parties"])
PartyId = Annotated[str, Path(max_length=100, description="The party's id, pty_...")]


def party_json(party: Party) -> dict[str, Any]:
    return {
        "id": party.id,
        "kind": party.kind.value,
        "name": party.name,
        "trade_assurance": party.trade_assurance,
        "managed_by": party.managed_by,
        "created_at": party.created_at,
    }


def key_json(issued: accounts.IssuedKey | accounts.ApiKey, secret: str | None) -> dict[str, Any]:
    key = issued.key if isinstance(issued, accounts.IssuedKey) else issued
    return {
        "id": key.id,
        "key": secret,
        "role": key.role.value,
        "party_id": key.party_id,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


def party_not_found() -> ApiError:
    return ApiError(404, "party_not_found", "No such party.")


def _may_manage(principal: Principal, party: Party) -> bool:
    """Admin, or the agent that registered the party."""
    if principal.role is KeyRole.ADMIN:
        return True
    return principal.role is KeyRole.AGENT and party.managed_by == principal.party_id


def _may_see(principal: Principal, party: Party) -> bool:
    return _may_manage(principal, party) or principal.party_id == party.id


async def _visible_party(conn: AsyncConnection, principal: Principal, party_id: str) -> Party:
    if not well_formed(party_id, "pty"):
        raise party_not_found()
    party = await accounts.get_party(conn, party_id)
    if party is None or not _may_see(principal, party):
        raise party_not_found()
    return party


@router.post(
    "",
    operation_id="register_party",
    status_code=201,
    response_model=s.Party,
    responses=r.errors(400, 401, 403, 409, 413, 415, 422),
)
async def register_party(
    body: s.RegisterPartyRequest,
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Register a buyer, supplier or agent (an agent registers the parties it acts for)."""
    if principal.role is KeyRole.AGENT and principal.on_behalf_of is None:
        if body.kind is PartyKind.AGENT:
            raise ApiError(403, "forbidden", "An agent registers buyers and suppliers only.")
        if body.trade_assurance:
            raise ApiError(403, "trade_assurance_admin_only", "Only an admin sets trade_assurance.")
        managed_by = principal.party_id
    elif principal.role is KeyRole.ADMIN:
        managed_by = None
    else:
        raise ApiError(403, "forbidden", "Only an admin or an agent registers parties.")

    async def work(conn: AsyncConnection, now: datetime) -> tuple[Response, None]:
        party = await accounts.create_party(
            conn,
            kind=body.kind,
            name=body.name,
            trade_assurance=body.trade_assurance,
            managed_by=managed_by,
            now=now,
        )
        headers = {"Location": f"/v1/parties/{party.id}"}
        return JSONResponse(party_json(party), status_code=201, headers=headers), None

    return await run_idempotent(request, principal, idempotency_key, work)


@router.get(
    "/{party_id}",
    operation_id="get_party",
    response_model=s.Party,
    responses=r.errors(401, 404, 422),
)
async def get_party(
    party_id: PartyId, principal: CurrentPrincipal, runtime: RuntimeDep
) -> Response:
    """A party: the caller itself, a party its agent registered, or any for an admin."""
    async with runtime.database.read() as conn:
        party = await _visible_party(conn, principal, party_id)
    return JSONResponse(party_json(party))


@router.patch(
    "/{party_id}",
    operation_id="update_party",
    response_model=s.Party,
    responses=r.errors(400, 401, 403, 404, 413, 415, 422),
)
async def update_party(
    party_id: PartyId,
    body: s.UpdatePartyRequest,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
) -> Response:
    """Set a supplier's Trade Assurance (admin only); orders already placed keep theirs."""
    async with runtime.database.transaction() as conn:
        party = await _visible_party(conn, principal, party_id)
        if principal.role is not KeyRole.ADMIN:
            raise ApiError(403, "trade_assurance_admin_only", "Only an admin sets trade_assurance.")
        if body.trade_assurance and party.kind is not PartyKind.SUPPLIER:
            raise ApiError(
                422,
                "trade_assurance_suppliers_only",
                "Trade Assurance is for suppliers.",
                errors=[
                    {
                        "field": "trade_assurance",
                        "in": "body",
                        "code": "suppliers_only",
                        "message": "only a supplier can be Trade Assurance enabled",
                    }
                ],
            )
        updated = await accounts.set_trade_assurance(conn, party.id, body.trade_assurance)
    assert updated is not None
    return JSONResponse(party_json(updated))


@router.post(
    "/{party_id}/api-keys",
    operation_id="create_party_api_key",
    status_code=201,
    response_model=s.ApiKey,
    responses=r.errors(400, 401, 403, 404, 409, 413, 415, 422),
)
async def create_party_api_key(
    party_id: PartyId,
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A key for the party (admin, or its agent); the secret is shown once."""
    if not well_formed(party_id, "pty"):
        raise party_not_found()  # before the Idempotency-Key is claimed for this path

    async def work(conn: AsyncConnection, now: datetime) -> tuple[Response, Any]:
        party = await _visible_party(conn, principal, party_id)
        if not _may_manage(principal, party) or principal.on_behalf_of is not None:
            raise ApiError(403, "forbidden", "Only an admin or the party's agent makes its keys.")
        issued = await accounts.create_api_key(
            conn,
            role=KeyRole(party.kind.value),
            party_id=party.id,
            created_by=principal.key_id,
            now=now,
        )
        shown = key_json(issued, issued.secret)
        return JSONResponse(shown, status_code=201), {**shown, "key": None}

    return await run_idempotent(request, principal, idempotency_key, work)


@router.get(
    "/{party_id}/balances",
    operation_id="get_party_balances",
    response_model=s.Balances,
    responses=r.errors(401, 404, 422),
)
async def get_party_balances(
    party_id: PartyId, principal: CurrentPrincipal, runtime: RuntimeDep
) -> Response:
    """Held, released (gross) and refunded per currency, with the fees kept on releases."""
    async with runtime.database.read() as conn:
        await _visible_party(conn, principal, party_id)
        balances = await party_balances.for_party(conn, party_id)
    return JSONResponse(
        {
            "party_id": party_id,
            "balances": [
                {
                    "currency": b.currency,
                    "currency_exponent": exponent(b.currency),
                    "held": b.held,
                    "released": b.released,
                    "refunded": b.refunded,
                    "fees": b.fees,
                }
                for b in balances
            ],
        }
    )
