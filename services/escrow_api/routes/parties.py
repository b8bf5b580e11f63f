"""Parties and their keys and balances."""

from typing import Annotated

from fastapi import APIRouter, Path, Response

from escrow_api import responses as r
from escrow_api.deps import CallerDep, WriteDep
from escrow_api.jsonresponse import JSONResponse
from escrow_api.presenters import issued_key, party_json
from escrow_api.schemas import parties as s
from escrow_core.accounts import Party
from escrow_core.application import ledger, parties
from escrow_core.currency import exponent

router = APIRouter(prefix="/v1/parties", tags=["parties"])
PartyId = Annotated[str, Path(max_length=100, description="The party's id, pty_...")]


def _created(party: Party) -> tuple[Response, None]:
    headers = {"Location": f"/v1/parties/{party.id}"}
    return JSONResponse(party_json(party), status_code=201, headers=headers), None


@r.creating(router, "", "register_party", s.Party)
async def register_party(body: s.RegisterPartyRequest, call: WriteDep) -> Response:
    """Register a buyer, supplier or agent (an agent registers the parties it acts for)."""
    return await call.once(
        lambda keep: parties.register(
            call.runtime,
            call.principal,
            kind=body.kind,
            name=body.name,
            trade_assurance=body.trade_assurance,
            keep=keep,
        ),
        _created,
    )


@router.get(
    "/{party_id}",
    operation_id="get_party",
    response_model=s.Party,
    responses=r.errors(401, 404, 422),
)
async def get_party(party_id: PartyId, call: CallerDep) -> Response:
    """A party: the caller itself, a party its agent registered, or any for an admin."""
    return JSONResponse(party_json(await parties.get(call.runtime, call.principal, party_id)))


@router.patch(
    "/{party_id}",
    operation_id="update_party",
    response_model=s.Party,
    responses=r.errors(400, 401, 403, 404, 413, 415, 422),
)
async def update_party(party_id: PartyId, body: s.UpdatePartyRequest, call: CallerDep) -> Response:
    """Set a supplier's Trade Assurance (admin only); orders already placed keep theirs."""
    party = await parties.set_trade_assurance(
        call.runtime, call.principal, party_id, body.trade_assurance
    )
    return JSONResponse(party_json(party))


@r.creating(router, "/{party_id}/api-keys", "create_party_api_key", s.ApiKey, 404)
async def create_party_api_key(party_id: PartyId, call: WriteDep) -> Response:
    """A key for the party (admin, or its agent); the secret is shown once."""
    parties.check_party_id(party_id)  # before the Idempotency-Key is claimed for this path
    return await call.once(
        lambda keep: parties.create_key(call.runtime, call.principal, party_id, keep), issued_key
    )


@router.get(
    "/{party_id}/balances",
    operation_id="get_party_balances",
    response_model=s.Balances,
    responses=r.errors(401, 404, 422),
)
async def get_party_balances(party_id: PartyId, call: CallerDep) -> Response:
    """Held, released (gross) and refunded per currency, with the fees kept on releases, and
    the party's ledger accounts (posted and pending)."""
    balances, accounts = await ledger.party_balances(call.runtime, call.principal, party_id)
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
            "accounts": [
                {
                    "account": a.account,
                    "currency": a.currency,
                    "posted": a.posted,
                    "pending": a.pending,
                }
                for a in accounts
            ],
        }
    )
