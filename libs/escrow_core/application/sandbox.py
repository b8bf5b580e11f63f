"""The sandbox clock: move the service's time forward for every process on the database."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.application.errors import Invalid
from escrow_core.application.principal import Principal
from escrow_core.application.runtime import Runtime
from escrow_core.application.transactions import Keep, write
from escrow_core.dates import OUT_OF_SPAN, within_span


@dataclass(frozen=True, slots=True)
class ClockMoved:
    offset_seconds: int  # how far the service clock is ahead of the wall
    now: datetime  # the service clock after the move


async def advance_clock(
    runtime: Runtime, principal: Principal, seconds: int, keep: Keep[ClockMoved] | None = None
) -> ClockMoved:
    """Admin only (and only in sandbox mode, where the route exists)."""
    principal.require_admin("Only an admin moves the sandbox clock.")

    async def work(conn: AsyncConnection, _: datetime) -> ClockMoved:
        offset = await runtime.store.advance_clock(seconds, conn)
        # The service clock is the wall clock plus the offset: read here, inside the move.
        moved = ClockMoved(offset, datetime.now(UTC) + timedelta(seconds=offset))
        if not within_span(moved.now):  # refused, the transaction and the move roll back
            raise Invalid(
                "validation_error",
                "The request has invalid fields.",
                field="advance_seconds",
                where="body",
                reason="out_of_span",
                message=f"the service clock would leave its span: {OUT_OF_SPAN}",
            )
        return moved

    return await write(runtime.store, work, keep)
