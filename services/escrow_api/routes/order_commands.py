"""Every order command: parse the body, build the domain command, run it for the caller.

Each answers 200 with the order as the command leaves it; each takes Idempotency-Key and
If-Match (the ``OrderCommand`` dependency carries them).
"""

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Response

from escrow_api import responses as r
from escrow_api.deps import OrderCommand
from escrow_api.schemas import orders as s
from escrow_api.schemas.common import EmptyBody
from escrow_core.domain import commands as c
from escrow_core.domain.terms import Evidence

router = APIRouter(prefix="/v1/orders", tags=["orders"])
Body = EmptyBody | None
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def _command_route(path: str, operation_id: str) -> Callable[[Endpoint], Endpoint]:
    return router.post(
        path,
        operation_id=operation_id,
        response_model=s.Order,
        responses=r.errors(*r.WRITE_ERRORS, 404, 412),
    )


@_command_route("/{order_id}/accept", "accept_order")
async def accept_order(call: OrderCommand, body: Body = None) -> Response:
    """The supplier agrees to the terms."""
    return await call.run(lambda actor: c.AcceptOrder(actor=actor))


@_command_route("/{order_id}/payments", "record_payment")
async def record_payment(call: OrderCommand, body: s.RecordPaymentRequest) -> Response:
    """The payment provider reports money in; a repeated provider_ref is a no-op."""
    return await call.run(
        lambda actor: c.RecordPayment(
            actor=actor, amount=body.amount, method=body.method, provider_ref=body.provider_ref
        )
    )


@_command_route("/{order_id}/ship", "ship_order")
async def ship_order(call: OrderCommand, body: s.ShipRequest) -> Response:
    """The supplier ships, with carrier and tracking number; only once the total is held."""
    return await call.run(
        lambda actor: c.ShipOrder(
            actor=actor, carrier=body.carrier, tracking_number=body.tracking_number
        )
    )


@_command_route("/{order_id}/deliver", "deliver_order")
async def deliver_order(call: OrderCommand, body: s.DeliverRequest | None = None) -> Response:
    """Report arrival; the inspection window starts."""
    delivered_at = body.delivered_at if body else None
    return await call.run(lambda actor: c.ReportDelivery(actor=actor, delivered_at=delivered_at))


@_command_route("/{order_id}/confirm-receipt", "confirm_receipt")
async def confirm_receipt(call: OrderCommand, body: Body = None) -> Response:
    """The buyer accepts the goods; the funds are released to the supplier."""
    return await call.run(lambda actor: c.ConfirmReceipt(actor=actor))


@_command_route("/{order_id}/extend", "extend_deadline")
async def extend_deadline(call: OrderCommand, body: s.ExtendRequest) -> Response:
    """Extend ship_by (buyer) or the inspection window (each side once)."""
    return await call.run(
        lambda actor: c.ExtendDeadline(actor=actor, deadline=body.deadline, days=body.days)
    )


@_command_route("/{order_id}/cancel", "cancel_order")
async def cancel_order(call: OrderCommand, body: s.CancelRequest | None = None) -> Response:
    """Cancel before shipment, per the cancellation rules; held money is refunded."""
    reason = body.reason if body else ""
    return await call.run(lambda actor: c.CancelOrder(actor=actor, reason=reason))


@_command_route("/{order_id}/messages", "post_message")
async def post_message(call: OrderCommand, body: s.MessageRequest) -> Response:
    """Post a message on the order, kept as evidence."""
    return await call.run(lambda actor: c.PostMessage(actor=actor, body=body.body))


@router.patch(
    "/{order_id}",
    operation_id="update_order_metadata",
    response_model=s.Order,
    responses=r.errors(*r.WRITE_ERRORS, 404, 412),
)
async def update_order_metadata(call: OrderCommand, body: s.UpdateOrderMetadataRequest) -> Response:
    """The buyer side merges metadata into the order's (a key set to "" is removed), in any
    status."""
    return await call.run(lambda actor: c.UpdateMetadata(actor=actor, metadata=body.metadata))


@_command_route("/{order_id}/dispute", "open_dispute")
async def open_dispute(call: OrderCommand, body: s.OpenDisputeRequest) -> Response:
    """The buyer disputes while funds are held; requested_refund is its opening offer."""
    evidence = tuple(Evidence(**item.model_dump()) for item in body.evidence)
    return await call.run(
        lambda actor: c.OpenDispute(
            actor=actor,
            reason=body.reason,
            description=body.description,
            requested_refund=body.requested_refund,
            evidence=evidence,
        )
    )


@_command_route("/{order_id}/claim", "make_claim")
async def make_claim(call: OrderCommand, body: s.ClaimRequest) -> Response:
    """The buyer claims on the retained money within the retention window (once per order)."""
    evidence = tuple(Evidence(**item.model_dump()) for item in body.evidence)
    return await call.run(
        lambda actor: c.MakeClaim(
            actor=actor,
            reason=body.reason,
            description=body.description,
            requested_refund=body.requested_refund,
            evidence=evidence,
        )
    )


@_command_route("/{order_id}/dispute/offers", "make_dispute_offer")
async def make_dispute_offer(call: OrderCommand, body: s.OfferRequest) -> Response:
    """Either side proposes a refund amount (until the dispute is escalated)."""
    return await call.run(
        lambda actor: c.MakeOffer(actor=actor, refund_amount=body.refund_amount, note=body.note)
    )


@_command_route("/{order_id}/dispute/accept-offer", "accept_dispute_offer")
async def accept_dispute_offer(call: OrderCommand, body: Body = None) -> Response:
    """The other side accepts the open offer; the dispute is settled by it."""
    return await call.run(lambda actor: c.AcceptOffer(actor=actor))


@_command_route("/{order_id}/dispute/escalate", "escalate_dispute")
async def escalate_dispute(call: OrderCommand, body: Body = None) -> Response:
    """A side hands the dispute to a mediator, once the negotiation period is over."""
    return await call.run(lambda actor: c.EscalateDispute(actor=actor))


@_command_route("/{order_id}/dispute/resolve", "resolve_dispute")
async def resolve_dispute(call: OrderCommand, body: s.ResolveRequest) -> Response:
    """A mediator or admin decides an escalated dispute: refund_amount back, the rest released."""
    return await call.run(
        lambda actor: c.ResolveDispute(
            actor=actor, refund_amount=body.refund_amount, note=body.note
        )
    )


@_command_route("/{order_id}/dispute/withdraw", "withdraw_dispute")
async def withdraw_dispute(call: OrderCommand, body: Body = None) -> Response:
    """The buyer withdraws; the order returns to where it was (and cannot be disputed again)."""
    return await call.run(lambda actor: c.WithdrawDispute(actor=actor))


@_command_route("/{order_id}/release", "release_milestone")
async def release_milestone(call: OrderCommand, body: s.ReleaseRequest) -> Response:
    """The buyer (or its agent) releases part of what is held before receipt (a milestone)."""
    return await call.run(
        lambda actor: c.ReleaseMilestone(actor=actor, amount=body.amount, note=body.note)
    )
