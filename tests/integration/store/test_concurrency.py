"""Concurrent writers: optimistic concurrency on (stream_id, version), on both backends."""

import asyncio

import pytest

from escrow_core.store import ConcurrencyError, Database, EventIdConflict, EventStore, NewEvent
from support.events import new_event, new_stream_id, now

WRITERS = 50


async def test_of_many_writers_at_the_same_version_exactly_one_wins(
    database: Database, store: EventStore
) -> None:
    """50 transactions on 50 connections append at version 0: one succeeds, 49 conflict.

    On SQLite they queue on BEGIN IMMEDIATE and the busy timeout, so the losers see the
    winner's event and get ConcurrencyError, never "database is locked".
    """
    stream_id = new_stream_id()
    writers = Database.from_url(database.url, pool_size=WRITERS)
    all_connected, start = asyncio.Event(), asyncio.Event()
    connected = 0

    async def write(event: NewEvent) -> str:
        nonlocal connected
        async with writers.writer.connect() as conn:
            connected += 1
            if connected == WRITERS:
                all_connected.set()
            await start.wait()
            try:
                async with conn.begin():
                    # Read first, as a command loads its state: on SQLite a deferred
                    # transaction would now fail to upgrade to writing instead of queueing.
                    await store.stream_version(conn, stream_id)
                    await store.append(conn, stream_id, 0, [event], recorded_at=now())
            except ConcurrencyError:
                return "conflict"
            return "appended"

    events = [new_event(data={"writer": n}) for n in range(WRITERS)]
    try:
        tasks = [asyncio.create_task(write(event)) for event in events]
        await all_connected.wait()  # every writer holds its own connection before any begins
        start.set()
        outcomes = await asyncio.gather(*tasks)
    finally:
        await writers.dispose()

    assert sorted(outcomes) == ["appended"] + ["conflict"] * (WRITERS - 1)
    async with database.read() as conn:
        stored = await store.read_stream(conn, stream_id)
    winner = events[outcomes.index("appended")]
    assert [(e.version, e.event_id) for e in stored] == [(1, winner.event_id)]


async def test_writers_of_different_streams_do_not_conflict(
    database: Database, store: EventStore
) -> None:
    streams = [new_stream_id() for _ in range(20)]

    async def write(stream_id: str) -> None:
        async with database.transaction() as conn:
            await store.append(conn, stream_id, 0, [new_event()], recorded_at=now())

    await asyncio.gather(*(write(stream_id) for stream_id in streams))

    async with database.read() as conn:
        assert [await store.stream_version(conn, s) for s in streams] == [1] * len(streams)


@pytest.mark.postgres_only
async def test_a_writer_racing_an_uncommitted_append_gets_concurrency_error(
    database: Database, store: EventStore
) -> None:
    """Both pass the version check; the second insert waits on the unique key, then fails.

    The driver's unique violation is translated; the transaction is left aborted (no
    savepoint), and the retry in a new transaction sees the winner's event.
    """
    stream_id = new_stream_id()
    async with database.writer.connect() as first, database.writer.connect() as second:
        await first.begin()
        await store.append(first, stream_id, 0, [new_event()], recorded_at=now())
        await second.begin()
        racing = asyncio.create_task(
            store.append(second, stream_id, 0, [new_event()], recorded_at=now())
        )
        await asyncio.sleep(0.2)
        assert not racing.done(), "the second insert should wait for the first transaction"
        await first.commit()
        with pytest.raises(ConcurrencyError) as raised:
            await racing
        await second.rollback()

    assert raised.value.expected_version == 0
    assert raised.value.actual_version is None  # it came from the unique key, not the check
    async with database.transaction() as conn:
        with pytest.raises(ConcurrencyError) as retried:
            await store.append(conn, stream_id, 0, [new_event()], recorded_at=now())
    assert retried.value.actual_version == 1


@pytest.mark.postgres_only
async def test_the_same_event_ids_racing_on_two_streams_resolve_on_retry(
    database: Database, store: EventStore
) -> None:
    """A concurrent insert of the same event id fails on its unique key: ConcurrencyError, and
    the retry classifies it (here, ids reused on another stream)."""
    event = new_event()
    first_stream, second_stream = new_stream_id(), new_stream_id()
    async with database.writer.connect() as first, database.writer.connect() as second:
        await first.begin()
        await store.append(first, first_stream, 0, [event], recorded_at=now())
        await second.begin()
        racing = asyncio.create_task(
            store.append(second, second_stream, 0, [event], recorded_at=now())
        )
        await asyncio.sleep(0.2)
        await first.commit()
        with pytest.raises(ConcurrencyError):
            await racing
        await second.rollback()

    async with database.transaction() as conn:
        with pytest.raises(EventIdConflict):
            await store.append(conn, second_stream, 0, [event], recorded_at=now())
