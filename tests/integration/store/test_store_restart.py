"""After PostgreSQL restarts, a store's pooled connections are dead: the first use of each
pool opens a new one instead of failing (asyncpg's own pool and SQLAlchemy's engines alike),
and while the server is down every use is ``StoreUnavailable``."""

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from escrow_core.store import Store, StoreUnavailable, open_store
from support.databases import PostgresDatabases
from support.own_postgres import OwnPostgres

pytestmark = pytest.mark.postgres_only


@pytest.fixture
async def own_store(own_server: OwnPostgres) -> AsyncIterator[Store]:
    databases = PostgresDatabases(admin_url=own_server.admin_url)
    url = await databases.create_migrated()
    store = open_store(url)
    try:
        yield store
    finally:
        await store.dispose()
        await databases.close()


async def uses(store: Store) -> list[object]:
    """One use of each pool: asyncpg's (snapshot), SQLAlchemy's reader and writer."""
    snapshot = await store.snapshot("ord_none")
    events = await store.count_events()
    async with store.transaction() as conn:
        written = (await conn.execute(sa.text("SELECT 1"))).scalar_one()
    return [snapshot, events, written]


async def test_every_pool_recovers_from_an_immediate_restart_by_itself(
    own_server: OwnPostgres, own_store: Store
) -> None:
    before = await uses(own_store)  # every pool now holds a connection

    await asyncio.to_thread(own_server.stop, "immediate")
    for use in (own_store.snapshot("ord_none"), own_store.count_events()):
        with pytest.raises(StoreUnavailable):
            await use
    await asyncio.to_thread(own_server.start)

    assert await uses(own_store) == before  # the first try after the restart, on each pool
