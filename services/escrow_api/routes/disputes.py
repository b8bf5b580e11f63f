"""The mediation queue."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from escrow_api import responses as r
from escrow_api.deps import CallerDep, Cursor, Limit
from escrow_api.presenters import iso, page_response
from escrow_api.schemas.common import Page
from escrow_core.application import disputes
from escrow_core.domain.order import Dispute
from escrow_core.domain.terms import DisputeKind, DisputeReason

router = APIRouter(prefix="/v1/disputes", tags=["disputes"])


class DisputeSummary(BaseModel):
    order_id: str
    kind: DisputeKind
    status: Literal["open", "escalated"]
    reason: DisputeReason
    requested_refund: int
    opened_at: str
    escalated_at: str | None


def _summary(row: tuple[str, Dispute]) -> dict[str, Any]:
    order_id, dispute = row
    return {
        "order_id": order_id,
        "kind": dispute.kind.value,
        "status": dispute.status.value,
        "reason": dispute.reason.value,
        "requested_refund": dispute.requested_refund,
        "opened_at": iso(dispute.opened_at),
        "escalated_at": iso(dispute.escalated_at),
    }


@r.listing(router, "", "list_disputes", Page[DisputeSummary], 403)
async def list_disputes(
    call: CallerDep,
    limit: Limit = 20,
    cursor: Cursor = None,
    status: Annotated[Literal["open", "escalated"] | None, Query()] = None,
) -> Response:
    """Open and escalated disputes, oldest first (mediators and admins)."""
    page = await disputes.queue(
        call.runtime, call.principal, limit=limit, cursor=cursor, status=status
    )
    return page_response(page, _summary)
