"""How Database configures each backend's engines and transactions."""

import sqlite3
from contextlib import closing

import pytest
import sqlalchemy as sa

from escrow_core.store import Database, EventStore
from escrow_core.store.database import SQLITE_BUSY_TIMEOUT_SECONDS
from support.databases import sqlite_path
from support.events import new_events, new_stream_id, now


@pytest.mark.sqlite_only
async def test_sqlite_connections_use_wal_and_wait_for_the_write_lock(database: Database) -> None:
    async with database.transaction() as conn:
        pragmas = {
            name: await conn.scalar(sa.text(f"PRAGMA {name}"))
            for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
        }

    assert pragmas == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "synchronous": 1,  # NORMAL
        "busy_timeout": SQLITE_BUSY_TIMEOUT_SECONDS * 1000,
    }
    assert SQLITE_BUSY_TIMEOUT_SECONDS >= 30


@pytest.mark.sqlite_only
async def test_a_sqlite_write_transaction_takes_the_write_lock_when_it_begins(
    database: Database,
) -> None:
    """BEGIN IMMEDIATE: the lock is held before the first statement, so writers queue."""

    def begin_another_writer() -> str:
        with closing(sqlite3.connect(sqlite_path(database.url), timeout=0)) as other:
            try:
                other.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                return str(error)
            other.rollback()
            return "began"

    async with database.transaction():
        assert begin_another_writer() == "database is locked"
    assert begin_another_writer() == "began"


async def test_read_transactions_refuse_writes_and_leave_the_pool_writable(
    database_url: str, store: EventStore
) -> None:
    database = Database.from_url(database_url, pool_size=1)
    stream_id = new_stream_id()
    try:
        with pytest.raises(sa.exc.DBAPIError, match=r"read-?only"):
            async with database.read() as conn:
                await store.append(conn, stream_id, 0, new_events(1), recorded_at=now())
        async with database.transaction() as conn:
            await store.append(conn, stream_id, 0, new_events(1), recorded_at=now())
        async with database.read() as conn:
            assert await store.stream_version(conn, stream_id) == 1
    finally:
        await database.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///:memory:",
        "sqlite+aiosqlite://",
        "sqlite+pysqlite:///var/escrow.db",
        "postgresql+psycopg://postgres@localhost/escrow",
        "mysql+aiomysql://root@localhost/escrow",
    ],
)
def test_only_asyncpg_and_aiosqlite_file_urls_are_accepted(url: str) -> None:
    with pytest.raises(ValueError, match=r"SQLite needs a database file|unsupported database URL"):
        Database.from_url(url)


async def test_a_savepoint_rolls_back_alone_inside_a_write_transaction(
    database: Database, store: EventStore
) -> None:
    """Callers may recover inside their transaction with begin_nested (SAVEPOINT)."""
    stream_id = new_stream_id()
    async with database.transaction() as conn:
        await store.append(conn, stream_id, 0, new_events(1), recorded_at=now())
        savepoint = await conn.begin_nested()
        await store.append(conn, stream_id, 1, new_events(1), recorded_at=now())
        await savepoint.rollback()
        await store.append(conn, stream_id, 1, new_events(2), recorded_at=now())

    async with database.read() as conn:
        assert [e.version for e in await store.read_stream(conn, stream_id)] == [1, 2, 3]
