"""The database itself refuses to change or remove events: tried here through the raw drivers,
around our code, as an operator's session would."""

import sqlite3
from contextlib import closing

import asyncpg
import pytest
import sqlalchemy as sa

from escrow_core.store import Database, EventStore, RecordedEvent
from support.databases import asyncpg_dsn, sqlite_path
from support.events import new_events, now

STATEMENTS = {
    "update": "UPDATE events SET type = 'tampered' WHERE position = {position}",
    "update-data": "UPDATE events SET data = metadata",
    "delete": "DELETE FROM events WHERE position = {position}",
    "delete-all": "DELETE FROM events",
}


async def execute_raw(database: Database, statement: str) -> None:
    if database.dialect == "postgresql":
        connection = await asyncpg.connect(asyncpg_dsn(database.url))
        try:
            await connection.execute(statement)
        finally:
            await connection.close()
    else:
        with closing(sqlite3.connect(sqlite_path(database.url))) as connection:
            connection.execute(statement)
            connection.commit()


async def stored_log(database: Database, store: EventStore) -> list[RecordedEvent]:
    async with database.read() as conn:
        return await store.read_stream(conn, "stream-a")


@pytest.mark.parametrize("name", list(STATEMENTS))
async def test_events_cannot_be_changed_or_deleted(
    fresh_database: Database, store: EventStore, name: str
) -> None:
    async with fresh_database.transaction() as conn:
        appended = await store.append(conn, "stream-a", 0, new_events(2), recorded_at=now())
    statement = STATEMENTS[name].format(position=appended[0].position)

    with pytest.raises((asyncpg.PostgresError, sqlite3.DatabaseError), match="append-only"):
        await execute_raw(fresh_database, statement)

    assert await stored_log(fresh_database, store) == appended


@pytest.mark.postgres_only
async def test_events_cannot_be_truncated(fresh_database: Database, store: EventStore) -> None:
    async with fresh_database.transaction() as conn:
        appended = await store.append(conn, "stream-a", 0, new_events(1), recorded_at=now())

    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await execute_raw(fresh_database, "TRUNCATE events")
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await execute_raw(fresh_database, "TRUNCATE events RESTART IDENTITY CASCADE")

    assert await stored_log(fresh_database, store) == appended


async def test_other_tables_stay_writable(fresh_database: Database) -> None:
    """The triggers are on events alone: projections and the clock are updated in place."""
    await execute_raw(fresh_database, "UPDATE service_clock SET offset_seconds = 60")

    async with fresh_database.read() as conn:
        offset = await conn.scalar(sa.text("SELECT offset_seconds FROM service_clock"))
    assert offset == 60
