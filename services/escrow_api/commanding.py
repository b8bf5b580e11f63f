"""Run an order command for an HTTP request: idempotency, If-Match, visibility, the answer."""

from collections.abc import Callable
from datetime import datetime

from fastapi import Request, Response

from escrow_api import idempotency, metrics
from escrow_api.auth import Principal
from escrow_api.deps import parse_if_match, well_formed
from escrow_api.jsonresponse import JSONResponse
from escrow_api.presenters import order_json
from escrow_api.problems import ApiError, domain_problem
from escrow_core.domain.commands import Command, PlaceOrder
from escrow_core.domain.errors import DomainError, NotPermitted
from escrow_core.domain.order import OrderState
from escrow_core.domain.roles import Actor
from escrow_core.idempotency import Remember, StoredResponse
from escrow_core.runtime import Runtime
from escrow_core.service import CommandContext, CommandResult

MakeCommand = Callable[[Actor], Command]


def order_not_found() -> ApiError:
    return ApiError(404, "order_not_found", "No such order.")


def order_response(
    principal: Principal,
    order_id: str,
    order: OrderState,
    now: datetime,
    *,
    status: int = 200,
) -> Response:
    actor = principal.viewer_on(order)
    headers = {"ETag": f'"{order.version}"'}
    if status == 201:
        headers["Location"] = f"/v1/orders/{order_id}"
    return JSONResponse(
        order_json(order_id, order, actor, now),
        status_code=status,
        headers=headers,
    )


def command_context(request: Request, principal: Principal, key: str | None) -> CommandContext:
    return CommandContext(
        principal=principal.audit(),
        request_id=getattr(request.state, "request_id", None),
        idempotency_key=key,
    )


async def run_order_command(
    request: Request,
    principal: Principal,
    order_id: str | None,
    make: MakeCommand,
    *,
    idempotency_key: str | None,
    if_match: str | None = None,
) -> Response:
    """Decide ``make(actor)`` on the order for this caller, exactly once per Idempotency-Key."""
    runtime: Runtime = request.app.state.runtime
    if order_id is not None and not well_formed(order_id, "ord"):
        raise order_not_found()
    expected_version = parse_if_match(if_match)
    claim = await idempotency.begin(request, principal, idempotency_key)
    if isinstance(claim, Response):
        return claim
    created = order_id is None
    command_name = "PlaceOrder" if created else ""

    def build(order: OrderState | None) -> Command:
        nonlocal command_name
        if created:
            command = make(principal.actor_on_new_order())
        else:
            if not principal.can_see(order):
                raise order_not_found()
            assert order is not None
            command = make(principal.actor_on(order))
        command_name = type(command).__name__
        return command

    remember = None
    rendered: dict[int, Response] = {}  # by order version: the answer is rendered once
    if claim is not None:
        status = 201 if created else 200

        def answer(order_id: str, order: OrderState, now: datetime) -> StoredResponse:
            response = order_response(principal, order_id, order, now, status=status)
            rendered[order.version] = response
            return idempotency.stored(response)

        remember = Remember(claim.scope, claim.key, answer)

    try:
        context = command_context(request, principal, idempotency_key)
        if created:
            placed = build(None)
            assert isinstance(placed, PlaceOrder)
            result = await runtime.service.place_order(placed, context=context, remember=remember)
        else:
            assert order_id is not None
            result = await runtime.service.execute(
                order_id,
                build,
                context=context,
                expected_version=expected_version,
                remember=remember,
            )
    except DomainError as error:
        metrics.command_outcome(command_name or "unknown", error.code)
        response = domain_problem(error)
        if claim is not None:
            # A refusal by the order's rules is the command's outcome and is replayed; a role
            # that may not act at all is an authorization failure, which DESIGN keeps unstored.
            if isinstance(error, NotPermitted):
                await claim.release()
            else:
                await claim.record_alone(response)
        return response
    except BaseException:
        if claim is not None:
            await claim.release()
        raise
    metrics.command_outcome(command_name, "accepted" if result.events else "no_op")
    return rendered.get(result.state.version) or _answer(principal, result, created)


def _answer(principal: Principal, result: CommandResult, created: bool) -> Response:
    return order_response(
        principal, result.order_id, result.state, result.at, status=201 if created else 200
    )
