"""Building events and tailing the log in tests."""

import asyncio
import time
import uuid
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from escrow_core.store import Checkpoint, NewEvent, RecordedEvent, Store


def new_stream_id(prefix: str = "test") -> str:
    """A stream id no other test uses, for tests sharing the session database."""
    return f"{prefix}_{uuid.uuid4().hex}"


def new_event(
    type: str = "test.happened",
    data: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    *,
    schema_version: int = 1,
) -> NewEvent:
    return NewEvent(
        event_id=uuid.uuid4(),
        type=type,
        data={"n": 1} if data is None else data,
        metadata={"actor": "test"} if metadata is None else metadata,
        schema_version=schema_version,
    )


def new_events(count: int, type: str = "test.happened") -> list[NewEvent]:
    return [new_event(type, {"n": n}) for n in range(count)]


def now() -> datetime:
    return datetime.now(UTC)


async def tail_log(
    store: Store,
    after: Checkpoint,
    *,
    count: int,
    streams: Collection[str] | None = None,
    give_up_after: float = 10.0,
    poll_every: float = 0.05,
) -> tuple[list[RecordedEvent], Checkpoint]:
    """Tail the log from ``after`` like a subscriber until ``count`` events have arrived.

    Returns the events (only those of ``streams`` when given) and the checkpoint reached.
    On PostgreSQL a transaction still running anywhere on the server holds the reader back
    (that is the point of the commit-order rule), so this polls rather than reads once.
    """
    seen: list[RecordedEvent] = []
    checkpoint = after
    deadline = time.monotonic() + give_up_after
    while True:
        batch = await store.read_log(checkpoint, limit=500)
        if batch:
            checkpoint = batch[-1].checkpoint
            seen += [e for e in batch if streams is None or e.stream_id in streams]
        if len(seen) >= count:
            return seen, checkpoint
        if time.monotonic() > deadline:
            raise AssertionError(f"tailing the log gave {len(seen)} of {count} events: {seen}")
        if not batch:
            await asyncio.sleep(poll_every)
