"""Parties: register, list, change, deactivate; their keys, balances and (suppliers)
performance."""

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from escrow_api import responses as r
from escrow_api.auth import key_cache
from escrow_api.deps import CallerDep, Cursor, Limit, WriteDep
from escrow_api.jsonresponse import JSONResponse
from escrow_api.presenters import issued_key, page_response, party_json
from escrow_api.schemas import parties as s
from escrow_api.schemas.common import Page
from escrow_core.accounts import Party, PartyKind
from escrow_core.application import ledger, parties, performance
from escrow_core.currency import exponent

router = APIRouter(prefix="/v1/parties", tags=["parties"])
PartyId = Annotated[str, Path(max_length=100, description="The party's id, pty_...")]


def _created(party: Party) -> tuple[Response, None]:
    headers = {"Location": f"/v1/parties/{party.id}"}
    return JSONResponse(party_json(party), status_code=201, headers=headers), None


def _shown(party: Party) -> tuple[Response, None]:
    return JSONResponse(party_json(party)), None


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
            metadata=body.metadata,
            keep=keep,
        ),
        _created,
    )


@r.listing(router, "", "list_parties", Page[s.Party], 403)
async def list_parties(
    call: CallerDep,
    limit: Limit = 20,
    cursor: Cursor = None,
    kind: Annotated[PartyKind | None, Query(description="Only parties of this kind.")] = None,
) -> Response:
    """Parties newest first: all for an admin, the parties it registered for an agent."""
    page = await parties.list_page(
        call.runtime, call.principal, limit=limit, cursor=cursor, kind=kind
    )
    return page_response(page, party_json)


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
    responses=r.errors(*r.WRITE_ERRORS, 404),
)
async def update_party(party_id: PartyId, body: s.UpdatePartyRequest, call: WriteDep) -> Response:
    """Rename, merge metadata (a key set to "" is removed), or set a supplier's Trade
    Assurance (admin only; orders already placed keep theirs)."""
    parties.check_party_id(party_id)  # before the Idempotency-Key is claimed for this path
    return await call.once(
        lambda keep: parties.update(
            call.runtime,
            call.principal,
            party_id,
            name=body.name,
            metadata=body.metadata,
            trade_assurance=body.trade_assurance,
            keep=keep,
        ),
        _shown,
    )


@router.post(
    "/{party_id}/deactivate",
    operation_id="deactivate_party",
    response_model=s.Party,
    responses=r.errors(*r.WRITE_ERRORS, 404),
)
async def deactivate_party(party_id: PartyId, request: Request, call: WriteDep) -> Response:
    """Deactivate a party (admin): its keys stop working, its agent can no longer act for it
    and it cannot be party to new orders; its running orders go on. Again is a no-op."""
    parties.check_party_id(party_id)
    response = await call.once(
        lambda keep: parties.deactivate(call.runtime, call.principal, party_id, keep), _shown
    )
    if response.status_code == 200:
        key_cache(request).forget_party(party_id)
    return response


@r.creating(router, "/{party_id}/api-keys", "create_party_api_key", s.ApiKey, 404)
async def create_party_api_key(
    party_id: PartyId, call: WriteDep, body: s.CreatePartyApiKeyRequest | None = None
) -> Response:
    """A key for the party (admin, or its agent); the secret is shown once. ``scope`` read
    makes a key that only reads; ``expires_at`` one that stops working then."""
    parties.check_party_id(party_id)  # before the Idempotency-Key is claimed for this path
    options = body or s.CreatePartyApiKeyRequest()
    return await call.once(
        lambda keep: parties.create_key(
            call.runtime,
            call.principal,
            party_id,
            scope=options.scope,
            expires_at=options.expires_at,
            keep=keep,
        ),
        issued_key,
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
                    "paid_out": a.paid_out,
                }
                for a in accounts
            ],
        }
    )


def _share(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@router.get(
    "/{party_id}/performance",
    operation_id="get_supplier_performance",
    response_model=s.SupplierPerformance,
    responses=r.errors(401, 404, 422),
)
async def get_supplier_performance(party_id: PartyId, call: CallerDep) -> Response:
    """A supplier's record (any key may read it), from an asynchronous projection the worker
    keeps from the log: as_of_position says how far it has read. 404 party_not_found for an
    unknown party, 404 party_not_supplier for a party that is no supplier."""
    found = await performance.of_supplier(call.runtime, call.principal, party_id)
    f = found.figures
    return JSONResponse(
        {
            "party_id": found.party_id,
            "orders_accepted": f.orders_accepted,
            "shipped_on_time": f.shipped_on_time,
            "shipped_late": f.shipped_late,
            "completed": f.completed,
            "disputed": f.disputed,
            "claims": f.claims,
            "refunded_share": _share(f.refunded_share),
            "median_days_to_ship": (
                None if f.median_days_to_ship is None else float(f.median_days_to_ship)
            ),
            "as_of_position": found.as_of_position,
            "by_currency": [
                {
                    "currency": c.currency,
                    "paid": c.paid,
                    "refunded": c.refunded,
                    "refunded_share": _share(c.refunded_share),
                }
                for c in f.by_currency
            ],
        }
    )
