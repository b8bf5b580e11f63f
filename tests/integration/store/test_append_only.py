"""The database itself refuses to change or remove events: tried here through the raw drivers,
around our code, as an operator's session would."""

import sqlite3
from contextlib import closing

import asyncpg
import pytest
import sqlalchemy as sa

from escrow_core.store import RecordedEvent, Store
from support.databases import asyncpg_dsn, sqlite_path
from support.events import new_events, now

STATEMENTS = {
    "update": "UPDATE events SET type = 'tampered' WHERE position = {position}",
    "update-data": "UPDATE events SET data = metadata",
    "delete": "DELETE FROM events WHERE position = {position}",
    "delete-all": "DELETE FROM events",
}


async def execute_raw(store: Store, statement: str) -> None:
    if store.dialect == "postgresql":
        connection = await asyncpg.connect(asyncpg_dsn(store.url))
        try:
            await connection.execute(statement)
        finally:
            await connection.close()
    else:
        with closing(sqlite3.connect(sqlite_path(store.url))) as connection:
            connection.execute(statement)
            connection.commit()


async def stored_log(store: Store) -> list[RecordedEvent]:
    return await store.stream("stream-a")


@pytest.mark.parametrize("name", list(STATEMENTS))
async def test_events_cannot_be_changed_or_deleted(fresh_store: Store, name: str) -> None:
    appended = await fresh_store.append("stream-a", 0, new_events(2), recorded_at=now())
    statement = STATEMENTS[name].format(position=appended[0].position)

    with pytest.raises((asyncpg.PostgresError, sqlite3.DatabaseError), match="append-only"):
        await execute_raw(fresh_store, statement)

    assert await stored_log(fresh_store) == appended


@pytest.mark.postgres_only
async def test_events_cannot_be_truncated(fresh_store: Store) -> None:
    appended = await fresh_store.append("stream-a", 0, new_events(1), recorded_at=now())

    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await execute_raw(fresh_store, "TRUNCATE events")
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await execute_raw(fresh_store, "TRUNCATE events RESTART IDENTITY CASCADE")

    assert await stored_log(fresh_store) == appended


async def test_other_tables_stay_writable(fresh_store: Store) -> None:
    """The triggers are on events alone: projections and the clock are updated in place."""
    await execute_raw(fresh_store, "UPDATE service_clock SET offset_seconds = 60")

    async with fresh_store.read() as conn:
        offset = await conn.scalar(sa.text("SELECT offset_seconds FROM service_clock"))
    assert offset == 60
