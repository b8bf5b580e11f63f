"""Payouts: what the payment provider reports of each (payments; a retry also admin), and
the reads. Each report answers 200 with the payout; the same report again is a no-op."""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Response

from escrow_api import money_out as m
from escrow_api import responses as r
from escrow_api.deps import CallerDep, Cursor, Limit, WriteDep
from escrow_api.schemas.common import EmptyBody, Page
from escrow_api.schemas.money_out import FailedRequest, PaidRequest, Payout
from escrow_core.domain import commands as c
from escrow_core.domain.order.state import PayoutStatus

router = APIRouter(prefix="/v1/payouts", tags=["payouts"])


def _report(path: str, operation_id: str) -> Callable[[m.Endpoint], m.Endpoint]:
    return router.post(
        path,
        operation_id=operation_id,
        response_model=Payout,
        responses=r.errors(*r.WRITE_ERRORS, 404),
    )


@_report("/{payout_id}/paid", "report_payout_paid")
async def report_payout_paid(payout_id: m.ObjectId, body: PaidRequest, call: WriteDep) -> Response:
    """The provider paid the payout out (the same provider_ref again is a no-op)."""
    return await m.report(
        call,
        m.PAYOUT,
        payout_id,
        lambda actor: c.ReportPayoutPaid(
            actor=actor, payout_id=payout_id, provider_ref=body.provider_ref
        ),
    )


@_report("/{payout_id}/failed", "report_payout_failed")
async def report_payout_failed(
    payout_id: m.ObjectId, body: FailedRequest, call: WriteDep
) -> Response:
    """The provider could not pay the payout out; it may be retried."""
    return await m.report(
        call,
        m.PAYOUT,
        payout_id,
        lambda actor: c.ReportPayoutFailed(actor=actor, payout_id=payout_id, reason=body.reason),
    )


@_report("/{payout_id}/returned", "report_payout_returned")
async def report_payout_returned(
    payout_id: m.ObjectId, body: FailedRequest, call: WriteDep
) -> Response:
    """The bank sent a paid payout back; it may be retried."""
    return await m.report(
        call,
        m.PAYOUT,
        payout_id,
        lambda actor: c.ReportPayoutReturned(actor=actor, payout_id=payout_id, reason=body.reason),
    )


@_report("/{payout_id}/retry", "retry_payout")
async def retry_payout(
    payout_id: m.ObjectId, call: WriteDep, body: EmptyBody | None = None
) -> Response:
    """A failed or returned payout goes out again (payments or admin)."""
    return await m.report(
        call, m.PAYOUT, payout_id, lambda actor: c.RetryPayout(actor=actor, payout_id=payout_id)
    )


@r.listing(router, "", "list_payouts", Page[Payout])
async def list_payouts(
    call: CallerDep,
    limit: Limit = 20,
    cursor: Cursor = None,
    status: Annotated[
        PayoutStatus | None, Query(description="Only payouts in this status.")
    ] = None,
    party_id: m.PartyFilter = None,
    order_id: m.OrderFilter = None,
) -> Response:
    """The payouts the caller may see, newest first."""
    return await m.list_page(
        call,
        m.PAYOUT,
        limit=limit,
        cursor=cursor,
        status=status.value if status else None,
        party_id=party_id,
        order_id=order_id,
    )


@router.get(
    "/{payout_id}",
    operation_id="get_payout",
    response_model=Payout,
    responses=r.errors(401, 404, 422),
)
async def get_payout(payout_id: m.ObjectId, call: CallerDep) -> Response:
    """A payout, if the caller may see it."""
    return await m.get(call, m.PAYOUT, payout_id)
