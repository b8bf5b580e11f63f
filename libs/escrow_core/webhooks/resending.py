"""Sending on request: a ``webhook.test`` to one endpoint, and one delivery again.

Both go through the normal machinery (a delivery row the senders claim, sign, post, retry and
log), so a test or a resend is signed and retried like any other delivery.

- A test is an event in the log: ``webhook.test`` on the endpoint's own stream (beside its
  ``webhook_endpoint.disabled``), naming the endpoint, so the body is built, upcast and signed
  as every body is. It is never in the feed (``application/feed.py`` leaves it out). Its
  delivery is written at once; the dispatcher, which matches a test to the endpoint it names
  only, finds that delivery there and writes nothing more.
- A resend makes the delivery pending again, due now, with a fresh retry schedule (its
  attempts so far stay in the history). The event and so the ``webhook-id`` are the same:
  a receiver deduplicates a resend like a retry.
"""

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.store import ConcurrencyError, NewEvent, RecordedEvent, Store
from escrow_core.store.schema import webhook_deliveries
from escrow_core.webhooks.dispatcher import delivery_rows
from escrow_core.webhooks.endpoints import WEBHOOK_TEST, Endpoint
from escrow_core.webhooks.matching import Audience

APPEND_ATTEMPTS = 3
_d = webhook_deliveries.c


async def append_test_event(
    store: Store, endpoint: Endpoint, *, now: datetime, metadata: dict[str, Any]
) -> RecordedEvent:
    """Put a ``webhook.test`` for ``endpoint`` in the log (its own stream)."""
    data = {"at": now.isoformat().replace("+00:00", "Z"), "endpoint_id": endpoint.id}
    event = NewEvent(uuid.uuid4(), WEBHOOK_TEST, data, metadata)
    for _ in range(APPEND_ATTEMPTS):
        stream = await store.stream(endpoint.id)
        version = stream[-1].version if stream else 0
        try:
            [recorded] = await store.append(endpoint.id, version, [event], recorded_at=now)
            return recorded
        except ConcurrencyError:
            continue  # another test or a disabling went first: append after it
    raise ConcurrencyError(endpoint.id, version)


async def enqueue_test(
    conn: AsyncConnection, store: Store, endpoint: Endpoint, event: RecordedEvent
) -> None:
    """The test's delivery, due now (the dispatcher may have written it already)."""
    audience = Audience(frozenset(), frozenset())
    rows = delivery_rows(
        [event], [endpoint], {event.position: audience}, first_attempt_at=datetime.now(UTC)
    )
    await store.insert_ignoring(conn, webhook_deliveries, rows, ["endpoint_id", "event_id"])


async def resend(conn: AsyncConnection, endpoint_id: str, delivery_id: int) -> bool:
    """Make the delivery due now, on a fresh schedule; False if the endpoint has no such one.

    A delivery still pending is only brought forward: one being posted right now keeps its
    lease, so it is not posted twice at once, and its outcome is recorded as usual.
    """
    wall_now = datetime.now(UTC)
    mine = sa.and_(_d.endpoint_id == endpoint_id, _d.id == delivery_id)
    pending = await conn.execute(
        webhook_deliveries.update()
        .where(mine, _d.status == "pending")
        .values(next_attempt_at=wall_now)
    )
    if pending.rowcount == 1:
        return True
    done = await conn.execute(
        webhook_deliveries.update()
        .where(mine, _d.status != "pending")
        .values(
            status="pending",
            attempts=0,
            next_attempt_at=wall_now,
            completed_at=None,
            locked_until=None,
            lease_token=None,
        )
    )
    return bool(done.rowcount == 1)
