"""A write that is not an order command: one transaction, with its Idempotency-Key answer.

The answer is rendered by the caller (``keep``) from the write's result and completes the
request's claim in the same transaction, so a replay sees it exactly when the write happened;
a claim taken over meanwhile rolls the whole write back.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.application.idempotency import in_flight
from escrow_core.store import ClaimLost, Store, StoredAnswer

T = TypeVar("T")
Keep = Callable[[T], StoredAnswer]  # renders the answer to keep under the request's key


async def write(
    store: Store,
    work: Callable[[AsyncConnection, datetime], Awaitable[T]],
    keep: Keep[T] | None,
) -> T:
    """Run ``work(conn, now)`` in a transaction and keep its answer in it, if asked to."""
    now = await store.now()
    try:
        async with store.transaction() as conn:
            result = await work(conn, now)
            if keep is not None:
                await store.complete_claim(keep(result), conn)
    except ClaimLost as lost:
        raise in_flight() from lost
    return result
