"""Orders: place, read, list, and the timeline (the commands: routes/order_commands.py)."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from escrow_api import idempotency
from escrow_api import responses as r
from escrow_api.auth import CurrentPrincipal
from escrow_api.deps import Cursor, IdempotencyKey, Limit, OrderId, RuntimeDep
from escrow_api.presenters import event_json, order_json, order_response, page_response
from escrow_api.schemas import orders as s
from escrow_api.schemas.common import Page
from escrow_core.application import orders
from escrow_core.application.commands import CommandContext, CommandResult
from escrow_core.application.idempotency import Remember
from escrow_core.domain.order import Status
from escrow_core.domain.terms import LineItem, Tranche

router = APIRouter(prefix="/v1/orders", tags=["orders"])
PARTY_ID_PATTERN = r"^pty_[A-Za-z0-9]{1,64}$"
PartyFilter = Annotated[str | None, Query(max_length=100, pattern=PARTY_ID_PATTERN)]


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
    new = orders.NewOrder(
        supplier_id=body.supplier_id,
        currency=body.currency,
        items=[LineItem(**item.model_dump()) for item in body.items],
        shipping_fee=body.shipping_fee,
        incoterm=body.incoterm.value,
        quality_terms=body.quality_terms,
        ship_by=body.ship_by,
        inspection_days=body.inspection_days,
        payment_schedule=[Tranche(**t.model_dump()) for t in body.payment_schedule or ()],
        remarks=body.remarks,
    )

    async def place(context: CommandContext, remember: Remember | None) -> CommandResult:
        return await orders.place(runtime, principal, new, context=context, remember=remember)

    return await idempotency.command(
        request, principal, idempotency_key, place, name=lambda: "PlaceOrder", status=201
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
    buyer_id: PartyFilter = None,
    supplier_id: PartyFilter = None,
) -> Response:
    """List the orders the caller may see, newest first."""
    page = await orders.list_page(
        runtime,
        principal,
        limit=limit,
        cursor=cursor,
        status=status.value if status else None,
        buyer_id=buyer_id,
        supplier_id=supplier_id,
    )
    return page_response(
        page, lambda o: order_json(o.order_id, o.state, principal.viewer_on(o.state), o.at)
    )


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
    found = await orders.get(runtime, principal, order_id, version=version)
    return order_response(principal, found.order_id, found.state, found.at)


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
    page = await orders.timeline(runtime, principal, order_id, limit=limit, cursor=cursor)
    return page_response(page, event_json)
