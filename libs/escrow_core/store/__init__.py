"""Persistence: one interface (``Store``), one adapter per backend, each owning its SQL.

    Store          events, the inline projections, Idempotency-Key answers, checkpoints
    open_store     the adapter for a URL: postgresql+asyncpg://... or sqlite+aiosqlite:///...
    Upcasters      upgrades old event data as it is read
    upgrade_to_head, schema_is_current    the alembic migrations, the only source of the schema

Errors:

    StoreError
    ├── ConcurrencyError   the stream was not at the expected version
    ├── EventIdConflict    event ids reused on another stream, or only some of them reused
    ├── KeyBusy            another request holds the Idempotency-Key past the wait
    ├── ClaimLost          a claim was taken over: its holder may no longer complete it
    ├── DuplicateClientReference    a new order's client_reference is its buyer's already
    └── StoreUnavailable   the database is away (down, restarting, locked): retry later
"""

import sqlalchemy as sa

from escrow_core.store import records
from escrow_core.store.errors import (
    ClaimLost,
    ConcurrencyError,
    DuplicateClientReference,
    EventIdConflict,
    KeyBusy,
    StoreError,
    StoreUnavailable,
)
from escrow_core.store.interface import (
    DELIVERIES_CHANNEL,
    EVENTS_CHANNEL,
    CommandSession,
    DeliveryPlanner,
    PerformanceFold,
    Store,
)
from escrow_core.store.migrations import upgrade_to_head
from escrow_core.store.records import *  # noqa: F403 - the records are the package's vocabulary
from escrow_core.store.upcasting import Upcasters

__all__ = [
    *records.__all__,
    "DELIVERIES_CHANNEL",
    "EVENTS_CHANNEL",
    "ClaimLost",
    "CommandSession",
    "ConcurrencyError",
    "DeliveryPlanner",
    "DuplicateClientReference",
    "EventIdConflict",
    "KeyBusy",
    "PerformanceFold",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Upcasters",
    "open_store",
    "upgrade_to_head",
]


def open_store(
    url: str, *, sandbox: bool = False, upcasters: Upcasters | None = None, pool_size: int = 10
) -> Store:
    """The adapter for ``url`` (connections are opened lazily)."""
    parsed = sa.make_url(url)
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if (backend, driver) == ("postgresql", "asyncpg"):
        from escrow_core.store.postgres import PostgresStore

        return PostgresStore(url, sandbox=sandbox, upcasters=upcasters, pool_size=pool_size)
    if (backend, driver) == ("sqlite", "aiosqlite"):
        from escrow_core.store.sqlite import SqliteStore

        return SqliteStore(url, sandbox=sandbox, upcasters=upcasters, pool_size=pool_size)
    raise ValueError(
        f"unsupported database URL {parsed!r}: use postgresql+asyncpg or sqlite+aiosqlite"
    )
