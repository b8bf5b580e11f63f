"""The dispatcher: tails the log and writes a delivery row for every matching endpoint.

The event store is the outbox. ``Store.dispatch`` reads the log with the commit-order-safe
reader from the checkpoint ``webhooks``, inserts the deliveries this module plans for the batch
and moves the checkpoint, in ONE transaction: a crash leaves both as they were, and the batch is
read again. Inserting skips an (endpoint, event) pair that has its delivery already, so even a
batch dispatched twice sends nothing twice.

Only one dispatcher works at a time: the store holds the checkpoint row for the transaction
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so another worker skips its turn instead of waiting;
SQLite's writers are serialised anyway). Dispatching is cheap; sending, which is slow, is
shared by every worker.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from escrow_core.store import RecordedEvent, Store
from escrow_core.webhooks import endpoints as endpoint_store
from escrow_core.webhooks.endpoints import Endpoint
from escrow_core.webhooks.matching import Audience, audiences, matches
from escrow_core.webhooks.schedule import jittered

CHECKPOINT_NAME = "webhooks"
BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class Dispatched:
    events: int  # events read (0: nothing new, or another dispatcher has the turn)
    deliveries: int  # delivery rows written
    full: bool  # the batch was full: more is probably waiting


def delivery_rows(
    batch: Sequence[RecordedEvent],
    endpoints: Sequence[Endpoint],
    audience: dict[int, Audience],
    *,
    first_attempt_at: datetime,
    replay: bool = False,
) -> list[dict[str, Any]]:
    """The ``webhook_deliveries`` rows for the events of ``batch`` that ``endpoints`` get."""
    return [
        {
            "endpoint_id": endpoint.id,
            "event_id": event.event_id,
            "event_position": event.position,
            "event_type": event.type,
            "stream_id": event.stream_id,
            "sequence": event.version,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": first_attempt_at,
            "created_at": first_attempt_at,
        }
        for event in batch
        for endpoint in endpoints
        if matches(endpoint, event, audience[event.position], replay=replay)
    ]


async def plan_deliveries(
    store: Store, batch: list[RecordedEvent], schedule: Sequence[float]
) -> list[dict[str, Any]]:
    """The deliveries a batch of the log makes: one per (enabled endpoint, matching event),
    first tried after the schedule's first wait (jittered, on the wall clock)."""
    async with store.read() as conn:
        active = await endpoint_store.active(conn)
    if not active:
        return []
    first_attempt_at = datetime.now(UTC) + timedelta(seconds=jittered(schedule[0]))
    found = await audiences(store, batch)
    return delivery_rows(batch, active, found, first_attempt_at=first_attempt_at)


async def dispatch_once(
    store: Store, schedule: Sequence[float], *, batch_size: int = BATCH_SIZE
) -> Dispatched:
    """Dispatch the next batch of the log; see the module docstring."""

    async def plan(batch: list[RecordedEvent]) -> list[dict[str, Any]]:
        return await plan_deliveries(store, batch, schedule)

    read, written = await store.dispatch(CHECKPOINT_NAME, plan, batch_size=batch_size)
    return Dispatched(read, written, full=read == batch_size)
