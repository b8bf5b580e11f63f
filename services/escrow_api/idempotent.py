"""Run a non-order POST in one transaction, exactly once per Idempotency-Key."""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_api import idempotency
from escrow_api.auth import Principal
from escrow_core.runtime import Runtime

# Does the work inside the transaction; returns the response and, when the response shows a
# secret, the body to store for replays instead (the same ids, the secret as null).
Work = Callable[[AsyncConnection, datetime], Awaitable[tuple[Response, Any]]]


async def run_idempotent(
    request: Request, principal: Principal, key: str | None, work: Work
) -> Response:
    runtime: Runtime = request.app.state.runtime
    claim = await idempotency.begin(request, principal, key)
    if isinstance(claim, Response):
        return claim
    try:
        async with runtime.database.transaction() as conn:
            now = await runtime.clock.now(conn)
            response, stored_body = await work(conn, now)
            if claim is not None:
                await claim.record(conn, response, stored_body=stored_body)
    except BaseException:
        if claim is not None:
            await claim.release()
        raise
    return response
