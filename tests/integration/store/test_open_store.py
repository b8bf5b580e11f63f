"""``open_store``: which URLs it takes, that it opens nothing until used, and how each
adapter configures its connections and transactions."""

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import cast

import pytest
import sqlalchemy as sa

from escrow_core.store import Store, StoreUnavailable, open_store
from escrow_core.store.postgres import PostgresStore
from escrow_core.store.shared import CoreStore
from escrow_core.store.sqlite import BUSY_TIMEOUT_SECONDS, SqliteStore
from support.databases import sqlite_path
from support.events import new_events, new_stream_id, now


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+pysqlite:///var/escrow.db",
        "sqlite:///var/escrow.db",
        "postgresql+psycopg://postgres@localhost/escrow",
        "postgresql://postgres@localhost/escrow",
        "mysql+aiomysql://root@localhost/escrow",
    ],
)
def test_only_asyncpg_and_aiosqlite_urls_are_accepted(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported database URL"):
        open_store(url)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///:memory:",
        "sqlite+aiosqlite://",
        "sqlite+aiosqlite:///file:escrow?mode=memory&cache=shared&uri=true",
    ],
)
def test_an_in_memory_sqlite_database_is_refused(url: str) -> None:
    """The reader and the writer are two engines: they must share a file."""
    with pytest.raises(ValueError, match="SQLite needs a database file"):
        open_store(url)


def test_each_backend_gets_its_adapter(tmp_path: Path) -> None:
    sqlite_store = open_store(f"sqlite+aiosqlite:///{tmp_path / 'escrow.db'}")
    postgres_store = open_store("postgresql+asyncpg://postgres@127.0.0.1:5432/escrow")

    assert (type(sqlite_store), sqlite_store.dialect) == (SqliteStore, "sqlite")
    assert (type(postgres_store), postgres_store.dialect) == (PostgresStore, "postgresql")


async def test_a_sqlite_store_opens_its_file_only_when_used(tmp_path: Path) -> None:
    path = tmp_path / "escrow.db"
    store = open_store(f"sqlite+aiosqlite:///{path}")
    try:
        assert not path.exists()
        assert await store.schema_is_current() is False  # the first use opens it
        assert path.exists()
    finally:
        await store.dispose()


async def test_a_postgres_store_connects_only_when_used() -> None:
    """Nothing listens on port 1: opening succeeds, the first query fails to connect, and says
    so as the database being away (asyncpg's own pool and SQLAlchemy's alike)."""
    store = open_store("postgresql+asyncpg://postgres@127.0.0.1:1/escrow")
    try:
        assert await store.now() is not None  # the wall clock needs no database
        for query in (store.snapshot("ord_x"), store.count_events()):
            with pytest.raises(StoreUnavailable, match=r"Connect call failed|refused") as raised:
                await query
            assert isinstance(raised.value.__cause__, OSError)
    finally:
        await store.dispose()


@pytest.mark.sqlite_only
async def test_sqlite_connections_use_wal_and_wait_for_the_write_lock(store: Store) -> None:
    async with store.transaction() as conn:
        pragmas = {
            name: await conn.scalar(sa.text(f"PRAGMA {name}"))
            for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
        }

    assert pragmas == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "synchronous": 1,  # NORMAL
        "busy_timeout": BUSY_TIMEOUT_SECONDS * 1000,
    }
    assert BUSY_TIMEOUT_SECONDS >= 30


@pytest.mark.sqlite_only
@pytest.mark.parametrize("opened", ["transaction", "command"])
async def test_a_sqlite_writer_takes_the_write_lock_when_it_begins(
    store: Store, opened: str
) -> None:
    """BEGIN IMMEDIATE: the lock is held before the first statement, so writers queue; a
    command session is one such transaction from its start."""

    def begin_another_writer() -> str:
        with closing(sqlite3.connect(sqlite_path(store.url), timeout=0)) as other:
            try:
                other.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                return str(error)
            other.rollback()
            return "began"

    context = store.transaction() if opened == "transaction" else store.command()
    async with context:
        assert begin_another_writer() == "database is locked"
    assert begin_another_writer() == "began"


async def test_reads_refuse_writes_and_leave_the_pool_writable(database_url: str) -> None:
    store = open_store(database_url, pool_size=1)
    core = cast(CoreStore, store)
    stream_id = new_stream_id()
    try:
        with pytest.raises(sa.exc.DBAPIError, match=r"read-?only"):
            async with store.read() as conn:
                await core.append_in(conn, stream_id, 0, new_events(1), now())
        await store.append(stream_id, 0, new_events(1), recorded_at=now())
        assert [e.version for e in await store.stream(stream_id)] == [1]
    finally:
        await store.dispose()


async def test_a_savepoint_rolls_back_alone_inside_a_write_transaction(store: Store) -> None:
    """Callers may recover inside their transaction with begin_nested (SAVEPOINT)."""
    core = cast(CoreStore, store)
    stream_id = new_stream_id()
    async with store.transaction() as conn:
        await core.append_in(conn, stream_id, 0, new_events(1), now())
        savepoint = await conn.begin_nested()
        await core.append_in(conn, stream_id, 1, new_events(1), now())
        await savepoint.rollback()
        await core.append_in(conn, stream_id, 1, new_events(2), now())

    assert [e.version for e in await store.stream(stream_id)] == [1, 2, 3]
