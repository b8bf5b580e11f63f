"""What goes into the store and what comes out of it."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append; its id is made by the caller, so a retried append is a no-op."""

    event_id: uuid.UUID
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    schema_version: int = 1


class Checkpoint(NamedTuple):
    """Where a log reader stands: compare and store it as the pair, never the position alone.

    ``transaction_id`` is the writer's PostgreSQL xid8 (always 0 on SQLite).
    """

    transaction_id: int
    position: int


LOG_START = Checkpoint(0, 0)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """A stored event, upcast to the newest schema version of its type."""

    position: int
    stream_id: str
    version: int
    event_id: uuid.UUID
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime
    transaction_id: int

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.transaction_id, self.position)
