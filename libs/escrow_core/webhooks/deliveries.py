"""Deliveries as the API shows them (with their attempts), and replay.

Replay re-enqueues an endpoint's matching events from a position or a time: a delivery that
exists is reset to pending with a fresh schedule (its attempts so far stay in the history), a
missing one is created. The subscriber sees the same ``webhook-id`` as before, so a replay
deduplicates like any retry. A replay is planned by reading the log in short reads, at most
``REPLAY_SCAN_LIMIT`` events a call, ``REPLAY_PAGE`` a read, and only then written, in short
transactions of at most ``REPLAY_WRITE_BATCH`` deliveries each.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.store import RecordedEvent, Store
from escrow_core.store.event_sql import event_columns, recorded
from escrow_core.store.schema import events, webhook_attempts, webhook_deliveries
from escrow_core.webhooks.dispatcher import delivery_rows
from escrow_core.webhooks.endpoints import Endpoint
from escrow_core.webhooks.matching import audiences

#: A replay looks at no more events than this per call; ask again from ``next_position``.
REPLAY_SCAN_LIMIT = 10_000
REPLAY_PAGE = 500
# Small enough that a command waiting behind one of these transactions waits a few ms: at 500
# deliveries a transaction a command waited up to 140 ms on SQLite (bench.replay_contention).
REPLAY_WRITE_BATCH = 100

_d = webhook_deliveries.c
_a = webhook_attempts.c


@dataclass(frozen=True, slots=True)
class Replayed:
    enqueued: int
    scanned_to: int | None  # the last position looked at
    has_more: bool  # the scan stopped at its limit with events after ``scanned_to``


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """What a replay will enqueue (``plan_replay``), planned at ``at`` on the wall clock."""

    rows: list[dict[str, Any]]
    replayed: Replayed
    at: datetime

    def batches(self) -> list[list[dict[str, Any]]]:
        """The rows in batches of ``REPLAY_WRITE_BATCH``, one transaction each (at least one)."""
        rows, size = self.rows, REPLAY_WRITE_BATCH
        return [rows[i : i + size] for i in range(0, len(rows), size)] or [[]]


async def list_page(
    conn: AsyncConnection,
    endpoint_id: str,
    *,
    limit: int,
    before: int | None,
    status: str | None,
) -> list[dict[str, Any]]:
    """An endpoint's deliveries, newest first, each with its attempts (oldest first)."""
    query = sa.select(webhook_deliveries).where(_d.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(_d.status == status)
    if before is not None:
        query = query.where(_d.id < before)
    rows = (await conn.execute(query.order_by(_d.id.desc()).limit(limit))).all()
    return await _shown(conn, rows)


async def one(conn: AsyncConnection, endpoint_id: str, delivery_id: int) -> dict[str, Any] | None:
    """One of the endpoint's deliveries, as ``list_page`` shows it."""
    query = sa.select(webhook_deliveries).where(_d.endpoint_id == endpoint_id, _d.id == delivery_id)
    rows = (await conn.execute(query)).all()
    return next(iter(await _shown(conn, rows)), None)


async def of_event(conn: AsyncConnection, endpoint_id: str, event_id: Any) -> dict[str, Any] | None:
    """The endpoint's delivery of one event, as ``list_page`` shows it."""
    query = sa.select(webhook_deliveries).where(
        _d.endpoint_id == endpoint_id, _d.event_id == event_id
    )
    rows = (await conn.execute(query)).all()
    return next(iter(await _shown(conn, rows)), None)


async def _shown(conn: AsyncConnection, rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Delivery rows as the API shows them, each with its attempts (oldest first)."""
    attempts: dict[int, list[dict[str, Any]]] = {row.id: [] for row in rows}
    if rows:
        found = await conn.execute(
            sa.select(webhook_attempts)
            .where(_a.delivery_id.in_(list(attempts)))
            .order_by(_a.delivery_id, _a.id)
        )
        for attempt in found:
            attempts[attempt.delivery_id].append(
                {
                    "attempt": attempt.attempt,
                    "started_at": attempt.started_at,
                    "status_code": attempt.status_code,
                    "latency_ms": attempt.latency_ms,
                    "error": attempt.error,
                    "response_body": attempt.response_body,
                }
            )
    return [
        {
            "id": row.id,
            "event_id": f"evt_{row.event_id.hex}",
            "event_type": row.event_type,
            "order_id": row.stream_id if row.stream_id.startswith("ord_") else None,
            "sequence": row.sequence,
            "position": row.event_position,
            "status": row.status,
            "attempt_count": row.attempts,
            "next_attempt_at": row.next_attempt_at if row.status == "pending" else None,
            "last_status_code": row.last_status_code,
            "last_error": row.last_error,
            "created_at": row.created_at,
            "completed_at": row.completed_at,
            "attempts": attempts[row.id],
        }
        for row in rows
    ]


async def plan_replay(
    store: Store,
    endpoint: Endpoint,
    *,
    since_position: int | None = None,
    since: datetime | None = None,
) -> ReplayPlan:
    """The deliveries that replay ``endpoint``'s matching events from ``since_position`` or
    ``since`` on, looking at no more than ``REPLAY_SCAN_LIMIT`` events.

    Each page of the log is read in a short read of its own: no transaction stays open while
    the log is scanned (on SQLite it would hold the write lock, on PostgreSQL an old snapshot
    that holds back every reader of the log). ``enqueue_replay`` writes it, batch by batch.
    """
    if (since_position is None) == (since is None):
        raise ValueError("replay from a position or from a time, exactly one")
    after = (since_position - 1) if since_position is not None else await _position_at(store, since)
    at = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    scanned = 0
    last: int | None = None
    while scanned < REPLAY_SCAN_LIMIT:
        page = await _events_after(store, after, min(REPLAY_PAGE, REPLAY_SCAN_LIMIT - scanned))
        if not page:
            return ReplayPlan(rows, Replayed(len(rows), last, has_more=False), at)
        found = await audiences(store, page)
        rows += delivery_rows(page, [endpoint], found, first_attempt_at=at, replay=True)
        scanned += len(page)
        last = after = page[-1].position
    more = await _events_after(store, after, 1)
    return ReplayPlan(rows, Replayed(len(rows), last, has_more=bool(more)), at)


async def enqueue_replay(
    conn: AsyncConnection,
    store: Store,
    endpoint: Endpoint,
    rows: Sequence[dict[str, Any]],
    at: datetime,
) -> int:
    """Write a batch of a plan (``ReplayPlan.batches``) in ``conn``'s transaction, for the
    endpoint as it is now (an event type it stopped subscribing to since is left out): a
    delivery that exists starts over as pending (its attempts so far stay in the history), a
    missing one is created. Returns how many were enqueued."""
    wanted = [row for row in rows if endpoint.subscribes_to(row["event_type"])]
    if not wanted:
        return 0
    insert = store.upsert(webhook_deliveries)
    again = insert.on_conflict_do_update(
        index_elements=["endpoint_id", "event_id"],
        set_={
            "status": "pending",
            "next_attempt_at": at,
            "locked_until": None,
            "lease_token": None,
            "completed_at": None,
            "attempts": 0,
        },
    )
    await conn.execute(again, wanted)
    return len(wanted)


async def _position_at(store: Store, since: datetime | None) -> int:
    """The position just before the first event recorded at or after ``since``."""
    query = sa.select(sa.func.min(events.c.position)).where(events.c.recorded_at >= since)
    async with store.read() as conn:
        first = (await conn.execute(query)).scalar_one_or_none()
        if first is None:
            head = (await conn.execute(sa.select(sa.func.max(events.c.position)))).scalar_one()
            return int(head or 0)
    return int(first) - 1


async def _events_after(store: Store, position: int, limit: int) -> list[RecordedEvent]:
    """Committed events by position (a replay looks back; the dispatcher handles what is new)."""
    c = events.c
    query = (
        sa.select(*event_columns(sa.literal(0)))
        .where(c.position > position)
        .order_by(c.position)
        .limit(limit)
    )
    async with store.read() as conn:
        return [recorded(row, store.upcasters) for row in await conn.execute(query)]
