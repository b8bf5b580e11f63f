"""The async engines for one database, with transactions configured per backend."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal

import asyncpg
import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

# Long enough that queued SQLite writers wait for their turn rather than fail.
SQLITE_BUSY_TIMEOUT_SECONDS = 30


def _dump_json(value: Any) -> str:
    return orjson.dumps(value).decode()


class Database:
    """Owns the async engines for one database URL.

    ``transaction()`` is for commands: it commits on exit and rolls back on an exception.
    ``read()`` is for queries: autocommit on PostgreSQL, a read-only snapshot on SQLite.
    """

    def __init__(
        self,
        url: str,
        dialect: Literal["postgresql", "sqlite"],
        writer: AsyncEngine,
        reader: AsyncEngine,
    ) -> None:
        self.url = url
        self.dialect: Literal["postgresql", "sqlite"] = dialect
        self.writer = writer
        self.reader = reader
        self.pool_size = writer.sync_engine.pool.size()  # type: ignore[attr-defined]
        self._raw_pool: asyncpg.Pool | None = None
        self._raw_pool_lock = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 10) -> "Database":
        """Open ``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://...`` (lazily)."""
        parsed = sa.make_url(url)
        backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
        if (backend, driver) == ("postgresql", "asyncpg"):
            writer = _engine(url, pool_size)
            # Reads have a pool of their own, in autocommit on read-only sessions: a read
            # costs one round trip, not three (BEGIN, query, ROLLBACK), and a stray write
            # still fails loudly. Each query is its own snapshot; no read needs two to agree.
            reader = _engine(
                url,
                pool_size,
                isolation_level="AUTOCOMMIT",
                connect_args={"server_settings": {"default_transaction_read_only": "on"}},
            )
            return cls(url, "postgresql", writer, reader)
        if (backend, driver) == ("sqlite", "aiosqlite"):
            if parsed.database in (None, "", ":memory:") or "mode=memory" in str(parsed.query):
                raise ValueError("SQLite needs a database file: reader and writer share it")
            writer = _sqlite_engine(url, pool_size, begin="BEGIN IMMEDIATE", query_only=False)
            reader = _sqlite_engine(url, pool_size, begin="BEGIN", query_only=True)
            return cls(url, "sqlite", writer, reader)
        raise ValueError(
            f"unsupported database URL {parsed!r}: use postgresql+asyncpg or sqlite+aiosqlite"
        )

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A write transaction: commits on exit, rolls back on an exception."""
        return self.writer.begin()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for queries (autocommit on PostgreSQL, one snapshot on SQLite)."""
        async with self.reader.connect() as conn:
            transaction = await conn.begin()
            try:
                yield conn
            finally:
                if transaction.is_active:
                    await transaction.rollback()

    @asynccontextmanager
    async def raw(self) -> AsyncIterator[Any]:
        """A pooled asyncpg connection outside any transaction (PostgreSQL only), for the hot
        paths: one statement per round trip, no layer between (a pool of its own, since a
        checkout through SQLAlchemy's costs more than the statement's Python side)."""
        if self.dialect != "postgresql":
            raise RuntimeError("raw connections are for PostgreSQL")
        pool = self._raw_pool or await self._open_raw_pool()
        async with pool.acquire() as connection:
            yield connection

    async def _open_raw_pool(self) -> asyncpg.Pool:
        async with self._raw_pool_lock:
            if self._raw_pool is None:
                dsn = sa.make_url(self.url).set(drivername="postgresql")
                self._raw_pool = await asyncpg.create_pool(
                    dsn.render_as_string(hide_password=False),
                    min_size=1,
                    max_size=self.pool_size,
                    init=_json_codecs,
                )
            return self._raw_pool

    async def dispose(self) -> None:
        if self._raw_pool is not None:
            await self._raw_pool.close()
            self._raw_pool = None
        await self.writer.dispose()
        if self.reader.sync_engine.pool is not self.writer.sync_engine.pool:
            await self.reader.dispose()


async def _json_codecs(connection: asyncpg.Connection) -> None:
    """JSON in as text, out as Python values, as SQLAlchemy's connections have it (binary
    format, so COPY can carry it too; jsonb's binary form is a version byte, then text)."""
    await connection.set_type_codec(
        "json", schema="pg_catalog", format="binary", encoder=str.encode, decoder=orjson.loads
    )
    await connection.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        format="binary",
        encoder=lambda text: b"\x01" + text.encode(),
        decoder=lambda data: orjson.loads(data[1:]),
    )


async def driver_connection(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn`` (PostgreSQL). What is sent through it runs in the
    transaction ``conn`` has begun on the server, if any: SQLAlchemy begins lazily, at its
    first statement."""
    adapted = await conn.get_raw_connection()
    driver = adapted.driver_connection
    assert driver is not None
    return driver


def _engine(url: str, pool_size: int, **options: Any) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        # No overflow: a burst waits for a pooled connection (a fraction of a millisecond)
        # rather than opening and closing new ones (a TLS negotiation and a fresh statement
        # cache each time, which made a loaded server slower than a queued one).
        max_overflow=0,
        json_serializer=_dump_json,
        json_deserializer=orjson.loads,
        **options,
    )


def _sqlite_engine(url: str, pool_size: int, *, begin: str, query_only: bool) -> AsyncEngine:
    engine = _engine(url, pool_size, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
    pragmas = [
        f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_SECONDS * 1000}",
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
    ]
    if query_only:
        pragmas.append("PRAGMA query_only = ON")

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module, which would otherwise BEGIN
        # (deferred) lazily before the first write.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        # Writers take the write lock up front (BEGIN IMMEDIATE), so they queue on the busy
        # timeout; a deferred transaction that upgrades to writing fails with "database is
        # locked" instead of waiting. Readers keep deferred BEGIN: WAL lets them run alongside.
        connection.exec_driver_sql(begin)

    return engine
