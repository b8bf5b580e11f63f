"""A party's ledger: the postings on its own accounts (DESIGN 7.1)."""

from typing import Any

from fastapi import APIRouter, Response

from escrow_api import responses as r
from escrow_api.deps import CallerDep, Cursor, Limit
from escrow_api.presenters import iso, page_response
from escrow_api.routes.parties import PartyId
from escrow_api.schemas.common import Page
from escrow_api.schemas.parties import Posting
from escrow_core.application import ledger

router = APIRouter(prefix="/v1/parties", tags=["parties"])


def posting_json(posting: Any) -> dict[str, Any]:
    return {
        "id": posting.id,
        "transfer_id": posting.transfer_id,
        "order_id": posting.order_id,
        "event_id": posting.event_id,
        "at": iso(posting.at),
        "account": posting.account,
        "amount": posting.amount,
        "currency": posting.currency,
        "phase": posting.phase,
        "pending_id": posting.pending_id,
        "legacy": posting.legacy,
    }


@r.listing(router, "/{party_id}/ledger", "list_party_ledger", Page[Posting], 404)
async def list_party_ledger(
    party_id: PartyId, call: CallerDep, limit: Limit = 20, cursor: Cursor = None
) -> Response:
    """Postings on the party's own accounts, oldest first (the party, its agent, payments and
    admin)."""
    page = await ledger.postings(call.runtime, call.principal, party_id, limit=limit, cursor=cursor)
    return page_response(page, posting_json)
