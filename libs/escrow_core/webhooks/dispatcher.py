"""The dispatcher: tails the log and writes a delivery row for every matching endpoint.

The event store is the outbox. The dispatcher reads the log with the commit-order-safe reader
(``EventStore.read_log``) from the checkpoint kept in ``webhook_dispatch_checkpoint``, inserts
the batch's deliveries and moves the checkpoint in ONE transaction: a crash leaves both as they
were, and the batch is read again. Inserting is idempotent per (endpoint, event) (a unique key),
so even a batch dispatched twice sends nothing twice.

Only one dispatcher works at a time: it holds the checkpoint row (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so another worker skips its turn instead of waiting; SQLite's writers are
serialised anyway). Dispatching is cheap; sending, which is slow, is shared by every worker.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.store import Checkpoint, Database, EventStore, RecordedEvent
from escrow_core.store.schema import webhook_deliveries, webhook_dispatch_checkpoint
from escrow_core.store.upsert import insert_or_ignore
from escrow_core.webhooks import endpoints as endpoint_store
from escrow_core.webhooks.endpoints import Endpoint
from escrow_core.webhooks.matching import Audience, audiences, matches
from escrow_core.webhooks.schedule import jittered

CHECKPOINT_NAME = "webhooks"
BATCH_SIZE = 500

_cp = webhook_dispatch_checkpoint.c


@dataclass(frozen=True, slots=True)
class Dispatched:
    events: int  # events read (0: nothing new, or another dispatcher has the turn)
    deliveries: int  # delivery rows written
    full: bool  # the batch was full: more is probably waiting


async def _take_checkpoint(conn: AsyncConnection) -> Checkpoint | None:
    """The checkpoint, locked for this transaction; None when another dispatcher holds it."""
    query = sa.select(_cp.transaction_id, _cp.position).where(_cp.name == CHECKPOINT_NAME)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = (await conn.execute(query)).first()
    return None if row is None else Checkpoint(int(row[0]), int(row[1]))


def delivery_rows(
    batch: Sequence[RecordedEvent],
    endpoints: Sequence[Endpoint],
    audience: dict[int, Audience],
    *,
    first_attempt_at: datetime,
    replay: bool = False,
) -> list[dict[str, Any]]:
    rows = []
    for event in batch:
        for endpoint in endpoints:
            if matches(endpoint, event, audience[event.position], replay=replay):
                rows.append(
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
                )
    return rows


async def dispatch_once(
    database: Database,
    store: EventStore,
    schedule: Sequence[float],
    *,
    batch_size: int = BATCH_SIZE,
) -> Dispatched:
    """Dispatch the next batch of the log; see the module docstring."""
    # Look before taking the lock: an idle poll then costs one read, not a write transaction
    # (a transaction id on PostgreSQL, the write lock on SQLite) ten times a second.
    async with database.read() as conn:
        query = sa.select(_cp.transaction_id, _cp.position).where(_cp.name == CHECKPOINT_NAME)
        row = (await conn.execute(query)).one()
        if not await store.read_log(conn, Checkpoint(int(row[0]), int(row[1])), limit=1):
            return Dispatched(0, 0, full=False)
    async with database.transaction() as conn:
        checkpoint = await _take_checkpoint(conn)
        if checkpoint is None:
            return Dispatched(0, 0, full=False)
        batch = await store.read_log(conn, checkpoint, limit=batch_size)
        if not batch:
            return Dispatched(0, 0, full=False)
        rows: list[dict[str, Any]] = []
        active = await endpoint_store.active(conn)
        if active:
            wall_now = datetime.now(UTC)
            first_attempt_at = wall_now + timedelta(seconds=jittered(schedule[0]))
            found = await audiences(conn, batch)
            rows = delivery_rows(batch, active, found, first_attempt_at=first_attempt_at)
        if rows:
            insert = insert_or_ignore(
                database.dialect, webhook_deliveries, ["endpoint_id", "event_id"]
            )
            await conn.execute(insert, rows)
        reached = batch[-1].checkpoint
        await conn.execute(
            webhook_dispatch_checkpoint.update()
            .where(_cp.name == CHECKPOINT_NAME)
            .values(transaction_id=reached.transaction_id, position=reached.position)
        )
    return Dispatched(len(batch), len(rows), full=len(batch) == batch_size)
