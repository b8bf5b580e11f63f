"""Persistence: the event store over PostgreSQL (asyncpg) or SQLite (aiosqlite).

    Database       the engines; transaction() for commands, read() for queries
    EventStore     append / read_stream / stream_version / read_log / log_head
    Upcasters      upgrades old event data as it is read
    upgrade_to_head, schema_is_current    the alembic migrations, the only source of the schema

Errors:

    StoreError
    ├── ConcurrencyError   the stream was not at the expected version
    └── EventIdConflict    event ids reused on another stream, or only some of them reused
"""

from escrow_core.store.database import Database
from escrow_core.store.errors import ConcurrencyError, EventIdConflict, StoreError
from escrow_core.store.event_store import EventStore
from escrow_core.store.migrations import schema_is_current, upgrade_to_head
from escrow_core.store.records import LOG_START, Checkpoint, NewEvent, RecordedEvent
from escrow_core.store.upcasting import Upcasters

__all__ = [
    "LOG_START",
    "Checkpoint",
    "ConcurrencyError",
    "Database",
    "EventIdConflict",
    "EventStore",
    "NewEvent",
    "RecordedEvent",
    "StoreError",
    "Upcasters",
    "schema_is_current",
    "upgrade_to_head",
]
