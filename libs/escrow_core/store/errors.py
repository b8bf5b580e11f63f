"""The store's errors, raised by ``Store.append`` and ``CommandSession.commit``.

StoreError
├── ConcurrencyError   the stream was not at the expected version: re-read, re-decide, retry
├── EventIdConflict    event ids reused on another stream, or only some of them reused
├── KeyBusy            another request holds the Idempotency-Key past the wait
├── ClaimLost          a claim was taken over: its holder may no longer complete it
└── StoreUnavailable   the database is away (down, restarting, unreachable, locked): retry later

``unavailable(error)`` is the one place that tells a database away from any other failure;
both adapters turn such errors into ``StoreUnavailable`` with ``translating_unavailable``.
"""

import sqlite3
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import asyncpg
import sqlalchemy as sa


class StoreError(Exception):
    """Base class of every error the event store raises."""


class ConcurrencyError(StoreError):
    """The stream was not at ``expected_version``; retry the command in a new transaction."""

    def __init__(self, stream_id: str, expected_version: int, actual_version: int | None = None):
        seen = "" if actual_version is None else f", it is at version {actual_version}"
        super().__init__(f"stream {stream_id!r} was expected at version {expected_version}{seen}")
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version


class KeyBusy(StoreError):
    """Another request held the Idempotency-Key for longer than this one would wait."""


class ClaimLost(StoreError):
    """The claim was taken over (its lease ran out): this request's write must not land."""


class EventIdConflict(StoreError):
    """An append reused some, not all, stored event ids, or reused them on another stream."""

    def __init__(self, stream_id: str, event_ids: Sequence[uuid.UUID]):
        listed = ", ".join(str(event_id) for event_id in event_ids)
        super().__init__(f"append to {stream_id!r} reuses stored event ids: {listed}")
        self.stream_id = stream_id
        self.event_ids = tuple(event_ids)


class DuplicateClientReference(StoreError):
    """A new order's ``client_reference`` is already one of its buyer's orders' (the write
    is refused whole; the order holding it may have committed a moment before)."""

    def __init__(self, buyer_id: str, client_reference: str | None) -> None:
        super().__init__(f"buyer {buyer_id} already has an order {client_reference!r}")
        self.buyer_id = buyer_id
        self.client_reference = client_reference


class StoreUnavailable(StoreError):
    """The database is away: refused, reset or shut down, restarting, out of connections, or
    (SQLite) locked past the busy timeout. Retry later: a write either committed whole or not at
    all (a connection lost during the commit leaves the caller unsure which)."""


# Server states that end or refuse connections, not statements (57014, a cancelled query, and
# the other OperatorIntervention codes are not the database being away).
_SERVER_AWAY = (
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08: refused, reset, does not exist
    asyncpg.CannotConnectNowError,  # 57P03: starting up, shutting down, in recovery
    asyncpg.AdminShutdownError,  # 57P01
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.TooManyConnectionsError,  # 53300
    OSError,  # connect refused or timed out, a socket reset (TimeoutError is an OSError)
    sa.exc.TimeoutError,  # no pooled connection came free in time
)
_SQLITE_AWAY = ("database is locked", "database table is locked", "unable to open database")


def unavailable(error: BaseException) -> bool:
    """Whether ``error`` (or what it wraps) says the database is away rather than wrong."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (StoreUnavailable, *_SERVER_AWAY)):
            return True
        if isinstance(current, sa.exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, asyncpg.InterfaceError) and "connection is closed" in str(current):
            return True
        if isinstance(current, sqlite3.OperationalError) and str(current).startswith(_SQLITE_AWAY):
            return True
        wrapped = current.orig if isinstance(current, sa.exc.DBAPIError) else None
        current = wrapped or current.__cause__
    return False


@asynccontextmanager
async def translating_unavailable() -> AsyncIterator[None]:
    """Raise ``StoreUnavailable`` for an error of the database being away, inside the block."""
    try:
        yield
    except StoreUnavailable:
        raise
    except Exception as error:
        if unavailable(error):
            raise StoreUnavailable(f"the database is unavailable: {error}") from error
        raise
