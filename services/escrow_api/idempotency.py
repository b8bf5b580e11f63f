"""Idempotency-Key over HTTP, as Stripe does it (the rules: escrow_core.application.idempotency).

The key is scoped to the principal (its party, or the key for party-less roles) plus
Escrow-On-Behalf-Of, method and path. A replay answers the stored status, body and the
headers worth replaying, with ``Idempotent-Replayed: true``. An answer is stored only once the
request ran: an order command's success in the command's own write and its refusal by the
order's rules (a ``Remember``; no claim is taken); a non-order write's answer in its
transaction (a ``Keep`` completing its claim). Anything else (validation, authorization, a
crash) keeps nothing, and a non-order write's claim is released.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import orjson
from fastapi import Request, Response

from escrow_api import metrics
from escrow_api.presenters import order_response
from escrow_api.problems import error_problem
from escrow_core.application import idempotency
from escrow_core.application.commands import CommandContext, CommandResult
from escrow_core.application.idempotency import Claim, Remember, Replayed, StoredResponse
from escrow_core.application.principal import Principal
from escrow_core.application.runtime import Runtime
from escrow_core.application.transactions import Keep
from escrow_core.domain.errors import DomainError, NotPermitted
from escrow_core.domain.order import OrderState

REPLAYED_HEADERS = ("etag", "location")
T = TypeVar("T")
# The response to a write, and the body to keep for replays instead (a secret shown once is
# kept as null) or None to keep the response's own.
Shown = tuple[Response, Any]
RunCommand = Callable[[CommandContext, Remember | None], Awaitable[CommandResult]]
# A command's answer, rendered from the order as the command leaves it (order id, state, now).
Render = Callable[[str, OrderState, datetime], Response]


def stored(response: Response, body: Any = None) -> StoredResponse:
    headers = {name: value for name, value in response.headers.items() if name in REPLAYED_HEADERS}
    headers["content-type"] = response.media_type or "application/json"
    raw = bytes(response.body) if body is None else orjson.dumps(body)
    return StoredResponse(response.status_code, raw, headers)


def _replayed(answer: StoredResponse) -> Response:
    headers = dict(answer.headers)
    media_type = headers.pop("content-type", "application/json")
    headers["Idempotent-Replayed"] = "true"
    return Response(answer.body, status_code=answer.status, headers=headers, media_type=media_type)


async def _begin(
    request: Request, principal: Principal, key: str | None
) -> Claim | Response | None:
    """Claim ``key``: a Claim to go on with, the stored answer to replay, or None (no key)."""
    if key is None:
        return None
    runtime: Runtime = request.app.state.runtime
    scope = f"{principal.scope}|{request.method}|{request.url.path}"
    found = await idempotency.claim(runtime.store, scope, key, await request.body())
    return _replayed(found) if isinstance(found, StoredResponse) else found


async def once(
    request: Request,
    principal: Principal,
    key: str | None,
    call: Callable[[Keep[T] | None], Awaitable[T]],
    show: Callable[[T], Shown],
) -> Response:
    """Run a write that is not an order command, exactly once per Idempotency-Key."""
    claim = await _begin(request, principal, key)
    if isinstance(claim, Response):
        return claim
    shown: list[Response] = []  # rendered once, inside the write, when the answer is kept

    def keep(result: T, claim: Claim) -> Any:
        response, replay_body = show(result)
        shown.append(response)
        return claim.answer(stored(response, replay_body))

    try:
        result = await call(None if claim is None else lambda r: keep(r, claim))
    except BaseException:
        if claim is not None:
            await claim.release()
        raise
    return shown[0] if shown else show(result)[0]


async def command(
    request: Request,
    principal: Principal,
    key: str | None,
    run: RunCommand,
    *,
    name: Callable[[], str],
    status: int = 200,
    render: Render | None = None,
) -> Response:
    """Run an order command exactly once per Idempotency-Key; ``name()`` is the command's
    type once built (for metrics); ``render`` its answer (by default the order as the caller
    sees it; a payout or refund report answers with that object)."""
    rendered: dict[int, Response] = {}  # by order version: the answer is rendered once

    def show(order_id: str, order: OrderState, now: datetime) -> Response:
        if render is not None:
            return render(order_id, order, now)
        return order_response(principal, order_id, order, now, status=status)

    def answer(order_id: str, order: OrderState, now: datetime) -> StoredResponse:
        response = show(order_id, order, now)
        rendered[order.version] = response
        return stored(response)

    def refusal(error: DomainError) -> StoredResponse | None:
        # A refusal by the order's rules is the command's outcome and is replayed; a role
        # that may not act at all is an authorization failure, which DESIGN keeps unstored.
        return None if isinstance(error, NotPermitted) else stored(error_problem(error))

    remember = None
    if key is not None:
        scope = f"{principal.scope}|{request.method}|{request.url.path}"
        remember = idempotency.remember(scope, key, await request.body(), answer, refusal)
    context = CommandContext(
        principal=principal.audit(),
        request_id=getattr(request.state, "request_id", None),
        idempotency_key=key,
        correlation_id=getattr(request.state, "correlation_id", None),
    )
    try:
        result = await run(context, remember)
    except Replayed as replay:
        return _replayed(replay.answer)
    except DomainError as error:
        metrics.command_outcome(name() or "unknown", error.code)
        return error_problem(error)
    metrics.command_outcome(name(), "accepted" if result.events else "no_op")
    return rendered.get(result.state.version) or show(result.order_id, result.state, result.at)
