"""Refunds: what the payment provider reports of each (payments; a retry also admin), and
the reads. Each report answers 200 with the refund; the same report again is a no-op."""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Response

from escrow_api import money_out as m
from escrow_api import responses as r
from escrow_api.deps import CallerDep, Cursor, Limit, WriteDep
from escrow_api.schemas.common import EmptyBody, Page
from escrow_api.schemas.money_out import FailedRequest, PaidRequest, Refund
from escrow_core.domain import commands as c
from escrow_core.domain.order.state import RefundStatus

router = APIRouter(prefix="/v1/refunds", tags=["refunds"])


def _report(path: str, operation_id: str) -> Callable[[m.Endpoint], m.Endpoint]:
    return router.post(
        path,
        operation_id=operation_id,
        response_model=Refund,
        responses=r.errors(*r.WRITE_ERRORS, 404),
    )


@_report("/{refund_id}/succeeded", "report_refund_succeeded")
async def report_refund_succeeded(
    refund_id: m.ObjectId, body: PaidRequest, call: WriteDep
) -> Response:
    """The provider paid the refund back (the same provider_ref again is a no-op)."""
    return await m.report(
        call,
        m.REFUND,
        refund_id,
        lambda actor: c.ReportRefundSucceeded(
            actor=actor, refund_id=refund_id, provider_ref=body.provider_ref
        ),
    )


@_report("/{refund_id}/failed", "report_refund_failed")
async def report_refund_failed(
    refund_id: m.ObjectId, body: FailedRequest, call: WriteDep
) -> Response:
    """The provider could not pay the refund back; it may be retried."""
    return await m.report(
        call,
        m.REFUND,
        refund_id,
        lambda actor: c.ReportRefundFailed(actor=actor, refund_id=refund_id, reason=body.reason),
    )


@_report("/{refund_id}/retry", "retry_refund")
async def retry_refund(
    refund_id: m.ObjectId, call: WriteDep, body: EmptyBody | None = None
) -> Response:
    """A failed refund goes out again (payments or admin)."""
    return await m.report(
        call, m.REFUND, refund_id, lambda actor: c.RetryRefund(actor=actor, refund_id=refund_id)
    )


@r.listing(router, "", "list_refunds", Page[Refund])
async def list_refunds(
    call: CallerDep,
    limit: Limit = 20,
    cursor: Cursor = None,
    status: Annotated[
        RefundStatus | None, Query(description="Only refunds in this status.")
    ] = None,
    party_id: m.PartyFilter = None,
    order_id: m.OrderFilter = None,
) -> Response:
    """The refunds the caller may see, newest first."""
    return await m.list_page(
        call,
        m.REFUND,
        limit=limit,
        cursor=cursor,
        status=status.value if status else None,
        party_id=party_id,
        order_id=order_id,
    )


@router.get(
    "/{refund_id}",
    operation_id="get_refund",
    response_model=Refund,
    responses=r.errors(401, 404, 422),
)
async def get_refund(refund_id: m.ObjectId, call: CallerDep) -> Response:
    """A refund, if the caller may see it."""
    return await m.get(call, m.REFUND, refund_id)
