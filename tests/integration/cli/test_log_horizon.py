"""rebuild and verify read the whole log, even while PostgreSQL holds part of it back.

The commit-order-safe log holds back every event newer than the oldest transaction still
running anywhere on the server (transaction ids are server-wide). A one-shot reader that took
that first empty answer for the end of the log would rebuild or verify part of it and say
nothing. These run the library functions the CLI runs, so the test can tell exactly when the
reader has been held back before letting the old transaction end.
"""

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.projections.rebuild import rebuild
from escrow_core.projections.verify import verify
from escrow_core.store import LOG_START, Checkpoint, Database, EventStore, RecordedEvent

from .busy_log import write_busy_log

pytestmark = pytest.mark.postgres_only


class HeldBackStore(EventStore):
    """An event store that says when the log first answered "nothing safe to read yet"."""

    def __init__(self) -> None:
        super().__init__()
        self.held_back = asyncio.Event()

    async def read_log(
        self, conn: AsyncConnection, after: Checkpoint = LOG_START, *, limit: int = 1000
    ) -> list[RecordedEvent]:
        batch = await super().read_log(conn, after, limit=limit)
        if not batch:
            self.held_back.set()
        return batch


@pytest.fixture
async def older_transaction(database: Database) -> AsyncIterator[AsyncConnection]:
    """A transaction with a transaction id, open in another database of the same server."""
    async with database.writer.connect() as conn:
        await conn.begin()
        await conn.execute(sa.text("SELECT pg_current_xact_id()"))
        yield conn
        await conn.rollback()


async def count_events(database: Database) -> int:
    async with database.read() as conn:
        return int((await conn.execute(sa.text("SELECT count(*) FROM events"))).scalar_one())


async def test_rebuild_waits_for_an_older_transaction_instead_of_stopping_short(
    fresh_database: Database, older_transaction: AsyncConnection
) -> None:
    # Given a log written while an older transaction elsewhere is still open
    log = await write_busy_log(fresh_database)
    store = HeldBackStore()

    # When a rebuild starts, is held back, and only then the old transaction ends
    rebuilding = asyncio.create_task(rebuild(fresh_database, store))
    await store.held_back.wait()
    await older_transaction.rollback()
    read = await rebuilding

    # Then it read the whole log and rebuilt every order
    assert read == await count_events(fresh_database)
    async with fresh_database.read() as conn:
        views = (await conn.execute(sa.text("SELECT count(*) FROM order_view"))).scalar_one()
    assert views == len(log.order_ids)


async def test_verify_waits_for_an_older_transaction_instead_of_stopping_short(
    fresh_database: Database, older_transaction: AsyncConnection
) -> None:
    log = await write_busy_log(fresh_database)
    store = HeldBackStore()

    verifying = asyncio.create_task(verify(fresh_database, store))
    await store.held_back.wait()
    await older_transaction.rollback()
    report = await verifying

    assert report.problems == []
    assert (report.orders, report.events) == (
        len(log.order_ids),
        await count_events(fresh_database),
    )
