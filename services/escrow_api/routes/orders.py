"""Orders: place, read, list, timeline, and every order command."""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request, Response

from escrow_api import responses as r
from escrow_api.auth import CurrentPrincipal
from escrow_api.commanding import order_not_found, order_response, run_order_command
from escrow_api.deps import (
    Cursor,
    IdempotencyKey,
    IfMatch,
    Limit,
    RuntimeDep,
    bad_cursor,
    decode_cursor,
    encode_cursor,
    well_formed,
)
from escrow_api.jsonresponse import JSONResponse
from escrow_api.presenters import event_json, order_json
from escrow_api.problems import ApiError
from escrow_api.schemas import orders as s
from escrow_api.schemas.common import EmptyBody, Page
from escrow_core import accounts
from escrow_core.domain import commands as c
from escrow_core.domain.order import Status
from escrow_core.domain.terms import Evidence, LineItem, Tranche
from escrow_core.projections import order_view

router = APIRouter(prefix="/v1/orders", tags=["orders"])
PARTY_ID_PATTERN = r"^pty_[A-Za-z0-9]{1,64}$"
OrderId = Annotated[str, Path(max_length=100, description="The order's id, ord_...")]
Body = EmptyBody | None
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


@router.post(
    "",
    operation_id="place_order",
    status_code=201,
    response_model=s.Order,
    responses=r.errors(400, 401, 403, 409, 413, 415, 422),
)
async def place_order(
    body: s.PlaceOrderRequest,
    request: Request,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Place an order with a Trade-Assurance supplier (a buyer, or an agent for its buyer)."""
    actor = principal.actor_on_new_order()
    supplier = await accounts.find_party(runtime.database, body.supplier_id)
    if supplier is None or supplier.kind is not accounts.PartyKind.SUPPLIER:
        raise ApiError(
            422,
            "supplier_not_found",
            "supplier_id names no registered supplier.",
            errors=[
                {
                    "field": "supplier_id",
                    "in": "body",
                    "code": "supplier_not_found",
                    "message": "no such supplier",
                }
            ],
        )
    settings = runtime.settings
    command = c.PlaceOrder(
        actor=actor,
        buyer_id=actor.party_id or "",
        supplier_id=supplier.id,
        supplier_trade_assurance=supplier.trade_assurance,
        currency=body.currency,
        items=tuple(LineItem(**item.model_dump()) for item in body.items),
        shipping_fee=body.shipping_fee,
        incoterm=body.incoterm.value,
        quality_terms=body.quality_terms,
        ship_by=body.ship_by,
        inspection_days=body.inspection_days or settings.inspection_days,
        payment_schedule=(
            tuple(Tranche(**t.model_dump()) for t in body.payment_schedule)
            if body.payment_schedule
            else None
        ),
        remarks=body.remarks,
        fee_bps=settings.release_fee_bps,
        policy=settings.timer_policy,
    )
    return await run_order_command(
        request, principal, None, lambda _: command, idempotency_key=idempotency_key
    )


@router.get(
    "",
    operation_id="list_orders",
    response_model=Page[s.Order],
    responses=r.errors(401, 403, 422),
)
async def list_orders(
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    limit: Limit = 20,
    cursor: Cursor = None,
    status: Annotated[Status | None, Query(description="Only orders in this status.")] = None,
    buyer_id: Annotated[str | None, Query(max_length=100, pattern=PARTY_ID_PATTERN)] = None,
    supplier_id: Annotated[str | None, Query(max_length=100, pattern=PARTY_ID_PATTERN)] = None,
) -> Response:
    """List the orders the caller may see, newest first."""
    before = None
    if cursor is not None:
        raw = decode_cursor(cursor)
        try:
            before = (datetime.fromisoformat(raw[0]), str(raw[1]))
        except (TypeError, ValueError, IndexError, KeyError) as error:
            raise bad_cursor() from error
        if len(raw) != 2 or before[0].tzinfo is None or not well_formed(before[1], "ord"):
            raise bad_cursor()
    parties = None if principal.sees_everything else principal.visible_parties
    async with runtime.database.read() as conn:
        now = await runtime.clock.now(conn)
        rows = await order_view.list_page(
            conn,
            limit=limit + 1,
            parties=parties,
            status=status.value if status else None,
            buyer_id=buyer_id,
            supplier_id=supplier_id,
            before=before,
        )
    page, has_more = rows[:limit], len(rows) > limit
    next_cursor = None
    if has_more:
        last_id, last = page[-1]
        next_cursor = encode_cursor([last.placed_at.isoformat(), last_id])
    data = [order_json(i, o, principal.viewer_on(o), now) for i, o in page]
    return JSONResponse({"data": data, "next_cursor": next_cursor, "has_more": has_more})


@router.get(
    "/{order_id}",
    operation_id="get_order",
    response_model=s.Order,
    responses=r.errors(401, 404, 422),
)
async def get_order(
    order_id: OrderId,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    version: Annotated[
        int | None, Query(ge=1, le=1_000_000, description="The order as it stood at this version.")
    ] = None,
) -> Response:
    """The order now, or as it stood at ``version``."""
    current = await runtime.service.get_order(order_id) if well_formed(order_id, "ord") else None
    if not principal.can_see(current):
        raise order_not_found()
    order = (
        current if version is None else await runtime.service.get_order(order_id, version=version)
    )
    if order is None:
        raise ApiError(404, "version_not_found", f"The order has no version {version}.")
    async with runtime.database.read() as conn:
        now = await runtime.clock.now(conn)
    return order_response(principal, order_id, order, now)


@router.get(
    "/{order_id}/events",
    operation_id="list_order_events",
    response_model=Page[s.Event],
    responses=r.errors(401, 404, 422),
)
async def list_order_events(
    order_id: OrderId,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    """The order's timeline, oldest first."""
    if not well_formed(order_id, "ord") or not principal.can_see(
        await runtime.service.get_order(order_id)
    ):
        raise order_not_found()
    after = 0
    if cursor is not None:
        after = decode_cursor(cursor)
        if not isinstance(after, int) or not 0 <= after < 2**31:
            raise bad_cursor()
    async with runtime.database.read() as conn:
        events = await runtime.store.read_stream(
            conn, order_id, after_version=after, up_to_version=after + limit + 1
        )
    page, has_more = events[:limit], len(events) > limit
    return JSONResponse(
        {
            "data": [event_json(e) for e in page],
            "next_cursor": encode_cursor(page[-1].version) if has_more else None,
            "has_more": has_more,
        }
    )


def _command_route(
    path: str, operation_id: str, *, codes: tuple[int, ...] = ()
) -> Callable[[Endpoint], Endpoint]:
    return router.post(
        path,
        operation_id=operation_id,
        response_model=s.Order,
        responses=r.errors(400, 401, 403, 404, 409, 412, 413, 415, 422, *codes),
    )


@_command_route("/{order_id}/accept", "accept_order")
async def accept_order(
    order_id: OrderId,
    request: Request,
    principal: CurrentPrincipal,
    body: Body = None,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> Response:
    """The supplier agrees to the terms."""
    return await run_order_command(
        request,
        principal,
        order_id,
        lambda actor: c.AcceptOrder(actor=actor),
        idempotency_key=idempotency_key,
        if_match=if_match,
    )


@_command_route("/{order_id}/payments", "record_payment")
async def record_payment(
    order_id: OrderId,
    body: s.RecordPaymentRequest,
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> Response:
    """The payment provider reports money in; a repeated provider_ref is a no-op."""
    return await run_order_command(
        request,
        principal,
        order_id,
        lambda actor: c.RecordPayment(
            actor=actor, amount=body.amount, method=body.method, provider_ref=body.provider_ref
        ),
        idempotency_key=idempotency_key,
        if_match=if_match,
    )


@_command_route("/{order_id}/ship", "ship_order")
async def ship_order(
    order_id: OrderId,
    body: s.ShipRequest,
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> Response:
    """The supplier ships, with carrier and tracking number; only once the total is held."""
    return await run_order_command(
        request,
        principal,
        order_id,
        lambda actor: c.ShipOrder(
            actor=actor, carrier=body.carrier, tracking_number=body.tracking_number
        ),
        idempotency_key=idempotency_key,
        if_match=if_match,
    )


@_command_route("/{order_id}/deliver", "deliver_order")
async def deliver_order(
    order_id: OrderId,
    request: Request,
    principal: CurrentPrincipal,
    body: s.DeliverRequest | None = None,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> Response:
    """Report arrival; the inspection window starts."""
    delivered_at = body.delivered_at if body else None
    return await run_order_command(
        request,
        principal,
        order_id,
        lambda actor: c.ReportDelivery(actor=actor, delivered_at=delivered_at),
        idempotency_key=idempotency_key,
        if_match=if_match,
    )


@_command_route("/{order_id}/confirm-receipt", "confirm_receipt")
async def confirm_receipt(
    order_id: OrderId,
    request: Request,
    principal: CurrentPrincipal,
    body: Body = None,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> Response:
    """The buyer accepts the goods; the funds are released to the supplier."""
    return await run_order_command(
        request,
        principal,
        order_id,
        lambda actor: c.ConfirmReceipt(actor=actor),
        idempotency_key=idempotency_key,
        if_match=if_match,
    )


@_command_route("/{order_id}/extend", "extend_deadline")
async def extend_deadline(
    order_id: OrderId,
    body: s.ExtendRequest,
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> Response:
    """Extend ship_by (buyer) or the inspection window (each side once)."""
    return await run_order_command(
        request,
        principal,
        order_id,
        lambda actor: c.ExtendDeadline(actor=actor, deadline=body.deadline, days=body.days),
        idempotency_key=idempotency_key,
        if_match=if_match,
    )


@_command_route("/{order_id}/cancel", "cancel_order")
async def cancel_order(
    order_id: OrderId,
    request: Request,
    principal: CurrentPrincipal,
    body: s.CancelRequest | None = None,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> Response:
    """Cancel before shipment, per the cancellation rules; held money is refunded."""
    reason = body.reason if body else ""
    return await run_order_command(
        request,
        principal,
        order_id,
        lambda actor: c.CancelOrder(actor=actor, reason=reason),
        idempotency_key=idempotency_key,
        if_match=if_match,
    )


@_command_route("/{order_id}/messages", "post_message")
async def post_message(
    order_id: OrderId,
    body: s.MessageRequest,
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> Response:
    """Post a message on the order, kept as evidence."""
    return await run_order_command(
        request,
        principal,
        order_id,
        lambda actor: c.PostMessage(actor=actor, body=body.body),
        idempotency_key=idempotency_key,
        if_match=if_match,
    )


@_command_route("/{order_id}/dispute", "open_dispute")
async def open_dispute(
    order_id: OrderId,
    body: s.OpenDisputeRequest,
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> Response:
    """The buyer disputes while funds are held; requested_refund is its opening offer."""
    evidence = tuple(Evidence(**item.model_dump()) for item in body.evidence)
    return await run_order_command(
        request,
        principal,
        order_id,
        lambda actor: c.OpenDispute(
            actor=actor,
            reason=body.reason,
            description=body.description,
            requested_refund=body.requested_refund,
            evidence=evidence,
        ),
        idempotency_key=idempotency_key,
        if_match=if_match,
    )


@_command_route("/{order_id}/dispute/offers", "make_dispute_offer")
async def make_dispute_offer(
    order_id: OrderId,
    body: s.OfferRequest,
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> Response:
    """Either side proposes a refund amount (until the dispute is escalated)."""
    return await run_order_command(
        request,
        principal,
        order_id,
        lambda actor: c.MakeOffer(actor=actor, refund_amount=body.refund_amount, note=body.note),
        idempotency_key=idempotency_key,
        if_match=if_match,
    )


@_command_route("/{order_id}/dispute/accept-offer", "accept_dispute_offer")
async def accept_dispute_offer(
    order_id: OrderId,
    request: Request,
    principal: CurrentPrincipal,
    body: Body = None,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> Response:
    """The other side accepts the open offer; the dispute is settled by it."""
    return await run_order_command(
        request,
        principal,
        order_id,
        lambda actor: c.AcceptOffer(actor=actor),
        idempotency_key=idempotency_key,
        if_match=if_match,
    )


@_command_route("/{order_id}/dispute/escalate", "escalate_dispute")
async def escalate_dispute(
    order_id: OrderId,
    request: Request,
    principal: CurrentPrincipal,
    body: Body = None,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> Response:
    """A side hands the dispute to a mediator, once the negotiation period is over."""
    return await run_order_command(
        request,
        principal,
        order_id,
        lambda actor: c.EscalateDispute(actor=actor),
        idempotency_key=idempotency_key,
        if_match=if_match,
    )


@_command_route("/{order_id}/dispute/resolve", "resolve_dispute")
async def resolve_dispute(
    order_id: OrderId,
    body: s.ResolveRequest,
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> Response:
    """A mediator or admin decides an escalated dispute: refund_amount back, the rest released."""
    return await run_order_command(
        request,
        principal,
        order_id,
        lambda actor: c.ResolveDispute(
            actor=actor, refund_amount=body.refund_amount, note=body.note
        ),
        idempotency_key=idempotency_key,
        if_match=if_match,
    )


@_command_route("/{order_id}/dispute/withdraw", "withdraw_dispute")
async def withdraw_dispute(
    order_id: OrderId,
    request: Request,
    principal: CurrentPrincipal,
    body: Body = None,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> Response:
    """The buyer withdraws; the order returns to where it was (and cannot be disputed again)."""
    return await run_order_command(
        request,
        principal,
        order_id,
        lambda actor: c.WithdrawDispute(actor=actor),
        idempotency_key=idempotency_key,
        if_match=if_match,
    )
