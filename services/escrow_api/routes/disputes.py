"""The mediation queue."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from escrow_api import responses as r
from escrow_api.auth import CurrentPrincipal
from escrow_api.deps import Cursor, Limit, RuntimeDep, bad_cursor, decode_cursor, encode_cursor
from escrow_api.jsonresponse import JSONResponse
from escrow_api.problems import ApiError
from escrow_api.schemas.common import Page
from escrow_core.accounts import KeyRole
from escrow_core.projections import order_view

router = APIRouter(prefix="/v1/disputes", tags=["disputes"])


class DisputeSummary(BaseModel):
    order_id: str
    status: str
    reason: str
    requested_refund: int
    opened_at: str
    escalated_at: str | None


@router.get(
    "",
    operation_id="list_disputes",
    response_model=Page[DisputeSummary],
    responses=r.errors(401, 403, 422),
)
async def list_disputes(
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    limit: Limit = 20,
    cursor: Cursor = None,
    status: Annotated[Literal["open", "escalated"] | None, Query()] = None,
) -> Response:
    """Open and escalated disputes, oldest first (mediators and admins)."""
    if principal.role not in (KeyRole.MEDIATOR, KeyRole.ADMIN):
        raise ApiError(403, "forbidden", "The mediation queue is for mediators and admins.")
    after = None
    if cursor is not None:
        after = decode_cursor(cursor)
        if not (
            isinstance(after, list) and len(after) == 2 and all(isinstance(v, str) for v in after)
        ):
            raise bad_cursor()
    async with runtime.database.read() as conn:
        orders = await order_view.disputed(conn)
    rows = []
    for order_id, order in orders:
        dispute = order.dispute
        assert dispute is not None
        if status is not None and dispute.status.value != status:
            continue
        key = [dispute.opened_at.isoformat(), order_id]
        if after is not None and key <= after:
            continue
        rows.append(
            (
                key,
                {
                    "order_id": order_id,
                    "status": dispute.status.value,
                    "reason": dispute.reason.value,
                    "requested_refund": dispute.requested_refund,
                    "opened_at": dispute.opened_at.isoformat().replace("+00:00", "Z"),
                    "escalated_at": (
                        dispute.escalated_at.isoformat().replace("+00:00", "Z")
                        if dispute.escalated_at
                        else None
                    ),
                },
            )
        )
    page = rows[:limit]
    has_more = len(rows) > limit
    return JSONResponse(
        {
            "data": [row for _, row in page],
            "next_cursor": encode_cursor(page[-1][0]) if has_more else None,
            "has_more": has_more,
        }
    )
