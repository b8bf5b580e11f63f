"""What the payout and refund routes share: a report (or retry) run as a command on the
payout's or refund's order, answered with that object (kept under the Idempotency-Key in
the command's own write), and the reads.

The objects are not order actions: they take Idempotency-Key, not If-Match.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Path, Query, Response

from escrow_api.deps import Caller, Write
from escrow_api.jsonresponse import JSONResponse
from escrow_api.presenters import money_out_json, page_response, payout_json, refund_json
from escrow_core.application import money_out
from escrow_core.application.commands import CommandContext, CommandResult
from escrow_core.application.idempotency import Remember
from escrow_core.domain.commands import Command
from escrow_core.domain.order import OrderState
from escrow_core.domain.roles import Actor

PAYOUT, REFUND = "payout", "refund"
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
ObjectId = Annotated[
    str, Path(max_length=100, description="The payout's (po_) or refund's (rf_) id.")
]
PartyFilter = Annotated[str | None, Query(max_length=100, pattern=r"^pty_[A-Za-z0-9]{1,64}$")]
OrderFilter = Annotated[str | None, Query(max_length=100, pattern=r"^ord_[A-Za-z0-9]{1,64}$")]


def object_json(kind: str, order_id: str, order: OrderState, object_id: str) -> dict[str, Any]:
    """The payout or refund ``object_id`` as the order has it."""
    if kind == PAYOUT and (payout := order.payout(object_id)) is not None:
        return payout_json(order_id, order, payout)
    if kind == REFUND and (refund := order.refund(object_id)) is not None:
        return refund_json(order_id, order, refund)
    raise LookupError(f"order {order_id} has no {kind} {object_id}")


async def report(
    call: Write, kind: str, object_id: str, make: Callable[[Actor], Command]
) -> Response:
    """Run ``make(actor)`` on the object's order; answer with the object as it leaves it."""
    named: list[str] = []

    def build(actor: Actor) -> Command:
        command = make(actor)
        named.append(type(command).__name__)
        return command

    async def execute(context: CommandContext, remember: Remember | None) -> CommandResult:
        return await money_out.report(
            call.runtime,
            call.principal,
            kind,
            object_id,
            build,
            context=context,
            remember=remember,
        )

    def render(order_id: str, order: OrderState, now: datetime) -> Response:
        return JSONResponse(object_json(kind, order_id, order, object_id))

    return await call.command(execute, name=lambda: named[-1] if named else "", render=render)


async def get(call: Caller, kind: str, object_id: str) -> Response:
    row = await money_out.find(call.runtime, call.principal, kind, object_id)
    return JSONResponse(money_out_json(row))


async def list_page(
    call: Caller,
    kind: str,
    *,
    limit: int,
    cursor: str | None,
    status: str | None,
    party_id: str | None,
    order_id: str | None,
) -> Response:
    page = await money_out.list_page(
        call.runtime,
        call.principal,
        kind,
        limit=limit,
        cursor=cursor,
        status=status,
        party_id=party_id,
        order_id=order_id,
    )
    return page_response(page, money_out_json)
