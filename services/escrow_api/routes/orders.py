"""Orders: place, read, list, and the timeline (the commands: routes/order_commands.py)."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from escrow_api import responses as r
from escrow_api.deps import CallerDep, Cursor, Limit, OrderId, WriteDep
from escrow_api.presenters import caller_order_json, event_json, order_response, page_response
from escrow_api.schemas import orders as s
from escrow_api.schemas.common import Page
from escrow_api.schemas.events import Event
from escrow_core.application import orders
from escrow_core.application.commands import CommandContext, CommandResult
from escrow_core.application.idempotency import Remember
from escrow_core.domain.metadata import MAX_CLIENT_REFERENCE_LENGTH, MAX_KEYS
from escrow_core.domain.order import Status
from escrow_core.domain.terms import LineItem, Retention, Tranche

router = APIRouter(prefix="/v1/orders", tags=["orders"])
PARTY_ID_PATTERN = r"^pty_[A-Za-z0-9]{1,64}$"
PartyFilter = Annotated[str | None, Query(max_length=100, pattern=PARTY_ID_PATTERN)]


@r.creating(router, "", "place_order", s.Order)
async def place_order(body: s.PlaceOrderRequest, call: WriteDep) -> Response:
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
        agency_fee_bps=body.agency_fee_bps,
        metadata=body.metadata,
        client_reference=body.client_reference,
        retention=Retention(**body.retention.model_dump()) if body.retention else None,
    )

    async def place(context: CommandContext, remember: Remember | None) -> CommandResult:
        return await orders.place(
            call.runtime, call.principal, new, context=context, remember=remember
        )

    return await call.command(place, name=lambda: "PlaceOrder", status=201)


@r.listing(router, "", "list_orders", Page[s.Order], 403)
async def list_orders(
    call: CallerDep,
    limit: Limit = 20,
    cursor: Cursor = None,
    status: Annotated[Status | None, Query(description="Only orders in this status.")] = None,
    buyer_id: PartyFilter = None,
    supplier_id: PartyFilter = None,
    client_reference: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_CLIENT_REFERENCE_LENGTH,
            description="Only the buyer's order with this client_reference (buyer side: a "
            "supplier-side caller finds none).",
        ),
    ] = None,
    metadata: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_KEYS,
            description="key:value, repeatable: only orders whose metadata holds every pair "
            "(buyer side: a supplier-side caller finds none).",
            examples=["cost_center:B-12"],
        ),
    ] = None,
    created_gte: Annotated[
        str | None, Query(description="Only orders placed at or after this timestamp.")
    ] = None,
    created_lt: Annotated[
        str | None, Query(description="Only orders placed before this timestamp.")
    ] = None,
) -> Response:
    """List the orders the caller may see, newest first."""
    principal = call.principal
    only = orders.OrderFilter(
        status=status.value if status else None,
        buyer_id=buyer_id,
        supplier_id=supplier_id,
        client_reference=orders.reference_filter(client_reference),
        metadata=orders.metadata_pairs(metadata or []),
        created_gte=orders.filter_time("created_gte", created_gte),
        created_lt=orders.filter_time("created_lt", created_lt),
    )
    page = await orders.list_page(call.runtime, principal, limit=limit, cursor=cursor, only=only)
    return page_response(page, lambda o: caller_order_json(principal, o.order_id, o.state, o.at))


@router.get(
    "/{order_id}",
    operation_id="get_order",
    response_model=s.Order,
    responses=r.errors(401, 404, 422),
)
async def get_order(
    order_id: OrderId,
    call: CallerDep,
    version: Annotated[
        int | None, Query(ge=1, le=1_000_000, description="The order as it stood at this version.")
    ] = None,
) -> Response:
    """The order now, or as it stood at ``version``."""
    found = await orders.get(call.runtime, call.principal, order_id, version=version)
    return order_response(call.principal, found.order_id, found.state, found.at)


@r.listing(router, "/{order_id}/events", "list_order_events", Page[Event], 404)
async def list_order_events(
    order_id: OrderId, call: CallerDep, limit: Limit = 20, cursor: Cursor = None
) -> Response:
    """The order's timeline, oldest first."""
    page = await orders.timeline(call.runtime, call.principal, order_id, limit=limit, cursor=cursor)
    return page_response(page, event_json)
