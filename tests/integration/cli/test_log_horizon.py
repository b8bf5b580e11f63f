"""rebuild and verify read the whole log, even while PostgreSQL holds part of it back.

The commit-order-safe log holds back every event newer than the oldest transaction still
running anywhere on the server (transaction ids are server-wide). A one-shot reader that took
that first empty answer for the end of the log would rebuild or verify part of it and say
nothing. These run the library functions the CLI runs, so the test can tell exactly when the
reader has been held back before letting the old transaction end.
"""

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
import sqlalchemy as sa

from escrow_core.projections.rebuild import rebuild
from escrow_core.projections.verify import verify
from escrow_core.store import Checkpoint, RecordedEvent, Store
from escrow_core.store.postgres import PostgresStore
from support.databases import asyncpg_dsn

from .busy_log import write_busy_log

pytestmark = [pytest.mark.postgres_only, pytest.mark.holds_horizon]


class HeldBackStore(PostgresStore):
    """A store that says when the log first answered "nothing safe to read yet"."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.held_back = asyncio.Event()

    async def read_log(self, after: Checkpoint, *, limit: int = 1000) -> list[RecordedEvent]:
        batch = await super().read_log(after, limit=limit)
        if not batch:
            self.held_back.set()
        return batch


@pytest.fixture
async def older_transaction(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A transaction with a transaction id, open in another database of the same server
    (begun before the test writes its log)."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await connection.execute("BEGIN")
        await connection.fetchval("SELECT pg_current_xact_id()")
        yield connection
    finally:
        await connection.close()  # rolls back, if the test did not


@pytest.fixture
async def held_back(fresh_store: Store) -> AsyncIterator[HeldBackStore]:
    store = HeldBackStore(fresh_store.url)
    try:
        yield store
    finally:
        await store.dispose()


async def test_rebuild_waits_for_an_older_transaction_instead_of_stopping_short(
    fresh_store: Store, older_transaction: asyncpg.Connection, held_back: HeldBackStore
) -> None:
    # Given a log written while an older transaction elsewhere is still open
    log = await write_busy_log(fresh_store)
    async with fresh_store.transaction() as conn:
        await conn.execute(sa.text("DELETE FROM order_view"))

    # When a rebuild starts, is held back, and only then the old transaction ends
    rebuilding = asyncio.create_task(rebuild(held_back))
    await asyncio.wait_for(held_back.held_back.wait(), timeout=10)
    assert not rebuilding.done()
    await older_transaction.execute("ROLLBACK")
    read = await rebuilding

    # Then it read the whole log and rebuilt every order
    assert read == await fresh_store.count_events()
    assert set(await fresh_store.all_order_rows()) == set(log.order_ids)


async def test_verify_waits_for_an_older_transaction_instead_of_stopping_short(
    fresh_store: Store, older_transaction: asyncpg.Connection, held_back: HeldBackStore
) -> None:
    log = await write_busy_log(fresh_store)

    verifying = asyncio.create_task(verify(held_back))
    await asyncio.wait_for(held_back.held_back.wait(), timeout=10)
    assert not verifying.done()
    await older_transaction.execute("ROLLBACK")
    report = await verifying

    assert report.problems == []
    assert (report.orders, report.events) == (
        len(log.order_ids),
        await fresh_store.count_events(),
    )
