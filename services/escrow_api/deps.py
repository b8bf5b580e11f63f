"""Annotated dependency aliases shared by the routers, and the one order-command dependency."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Path, Query, Request, Response

from escrow_api import idempotency
from escrow_api.auth import CurrentPrincipal
from escrow_api.idempotency import Render, RunCommand, Shown
from escrow_api.problems import ApiError
from escrow_core.application import orders
from escrow_core.application.commands import CommandContext, CommandResult
from escrow_core.application.idempotency import Remember
from escrow_core.application.principal import Principal
from escrow_core.application.runtime import Runtime
from escrow_core.application.transactions import Keep
from escrow_core.domain.commands import Command
from escrow_core.domain.roles import Actor

T = TypeVar("T")


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x20-\x7e]+$",  # printable ASCII, e.g. a UUID
        description="Retry safely: the same key and body replay the first response (kept 24 h).",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=40,
        description='Run only if the order is at this ETag, e.g. "7".',
    ),
]
OrderId = Annotated[str, Path(max_length=100, description="The order's id, ord_...")]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size, 1-100.")]
Cursor = Annotated[
    str | None,
    Query(max_length=500, description="The next_cursor of the previous page."),
]


def parse_if_match(value: str | None) -> int | None:
    """The version an If-Match names; None for no header or ``*``."""
    if value is None or value.strip() == "*":
        return None
    tag = value.strip().removeprefix("W/").strip('"')
    if not (tag.isascii() and tag.isdigit()):
        raise ApiError(412, "precondition_failed", 'If-Match must be an order ETag such as "7".')
    return int(tag)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls, and the runtime it calls into."""

    principal: Principal
    runtime: Runtime


async def caller(principal: CurrentPrincipal, runtime: RuntimeDep) -> Caller:
    return Caller(principal, runtime)


@dataclass(frozen=True, slots=True)
class Write(Caller):
    """A write, run exactly once per Idempotency-Key: ``once`` for one that is not an order
    command, ``command`` for an order command."""

    request: Request
    idempotency_key: str | None

    def trace(self) -> dict[str, str]:
        """The request's ids that go into the metadata of what it writes."""
        return request_trace(self.request)

    async def once(
        self, call: Callable[[Keep[T] | None], Awaitable[T]], show: Callable[[T], Shown]
    ) -> Response:
        """``call(keep)`` does the write; ``show(result)`` is its answer."""
        return await idempotency.once(
            self.request, self.principal, self.idempotency_key, call, show
        )

    async def command(
        self,
        run: RunCommand,
        *,
        name: Callable[[], str],
        status: int = 200,
        render: Render | None = None,
    ) -> Response:
        """``run(context, remember)`` runs the command; ``name()`` is its type once built;
        ``render`` its answer when that is not the order."""
        return await idempotency.command(
            self.request,
            self.principal,
            self.idempotency_key,
            run,
            name=name,
            status=status,
            render=render,
        )


async def write(
    request: Request,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Write:
    return Write(principal, runtime, request, idempotency_key)


@dataclass(frozen=True, slots=True)
class CommandCall(Write):
    """A command on one order, as requested: run it with ``run(lambda actor: Command(...))``."""

    order_id: str
    expected_version: int | None

    async def run(self, make: Callable[[Actor], Command]) -> Response:
        named: list[str] = []

        def build(actor: Actor) -> Command:
            command = make(actor)
            named.append(type(command).__name__)
            return command

        async def execute(context: CommandContext, remember: Remember | None) -> CommandResult:
            return await orders.execute(
                self.runtime,
                self.principal,
                self.order_id,
                build,
                context=context,
                expected_version=self.expected_version,
                remember=remember,
            )

        return await self.command(execute, name=lambda: named[-1] if named else "")


async def command_call(
    order_id: OrderId,
    request: Request,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> CommandCall:
    expected_version = parse_if_match(if_match)
    return CommandCall(principal, runtime, request, idempotency_key, order_id, expected_version)


def request_trace(request: Request) -> dict[str, str]:
    """``request_id`` and ``correlation_id`` (if sent) of a request, as the edge set them."""
    found = {
        "request_id": getattr(request.state, "request_id", None),
        "correlation_id": getattr(request.state, "correlation_id", None),
    }
    return {name: value for name, value in found.items() if value is not None}


CallerDep = Annotated[Caller, Depends(caller)]
WriteDep = Annotated[Write, Depends(write)]
OrderCommand = Annotated[CommandCall, Depends(command_call)]
