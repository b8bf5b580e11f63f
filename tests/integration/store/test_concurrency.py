"""Concurrent writers: optimistic concurrency on (stream_id, version), on both backends,
through ``Store.append`` and through command sessions' ``commit``."""

import asyncio
from typing import cast

import pytest

from escrow_core.store import ConcurrencyError, EventIdConflict, NewEvent, Store, open_store
from escrow_core.store.shared import CoreStore
from support.events import new_event, new_stream_id, now
from support.tables import view_row

from .writers import Writer, make_commit

WRITERS = 50


async def test_of_many_writers_at_the_same_version_exactly_one_wins(
    write: Writer, store: Store
) -> None:
    """50 writers on 50 connections write at version 0: one succeeds, 49 conflict.

    On SQLite they queue on BEGIN IMMEDIATE and the busy timeout, so the losers see the
    winner's event and get ConcurrencyError, never "database is locked". A command session
    reads the stream first, as a command loads its order, then commits; on PostgreSQL all 50
    have read the empty stream before any commits, so they really race.
    """
    stream_id = new_stream_id()
    writers = open_store(store.url, pool_size=WRITERS)
    start = asyncio.Event()
    all_loaded = asyncio.Barrier(WRITERS)

    async def one(event: NewEvent) -> str:
        await start.wait()
        try:
            if write.name == "append":
                await writers.append(stream_id, 0, [event], recorded_at=now())
            else:
                async with writers.command() as session:
                    loaded = await session.stream(stream_id)
                    if store.dialect == "postgresql":  # SQLite: the others wait for the lock
                        await asyncio.wait_for(all_loaded.wait(), timeout=30)
                        assert loaded == []
                    await session.commit(make_commit(stream_id, 0, [event]))
        except ConcurrencyError:
            return "conflict"
        return "written"

    events = [new_event(data={"writer": n}) for n in range(WRITERS)]
    try:
        tasks = [asyncio.create_task(one(event)) for event in events]
        await asyncio.sleep(0)  # every writer is waiting on the start
        start.set()
        outcomes = await asyncio.gather(*tasks)
    finally:
        await writers.dispose()

    assert sorted(outcomes) == ["conflict"] * (WRITERS - 1) + ["written"]
    stored = await store.stream(stream_id)
    winner = events[outcomes.index("written")]
    assert [(e.version, e.event_id) for e in stored] == [(1, winner.event_id)]
    if write.name == "commit":
        assert (await view_row(store, stream_id) or {})["version"] == 1


async def test_writers_of_different_streams_do_not_conflict(write: Writer, store: Store) -> None:
    streams = [new_stream_id() for _ in range(20)]

    await asyncio.gather(*(write(stream_id, 0, [new_event()]) for stream_id in streams))

    assert [len(await store.stream(s)) for s in streams] == [1] * len(streams)


@pytest.mark.postgres_only
async def test_a_writer_racing_an_uncommitted_append_gets_concurrency_error(
    store: Store,
) -> None:
    """Both pass the version check; the second insert waits on the unique key, then fails.

    The driver's unique violation is translated; the transaction is left aborted (no
    savepoint), and the retry in a new transaction sees the winner's event.
    """
    core = cast(CoreStore, store)
    stream_id = new_stream_id()
    async with core.writer.connect() as first, core.writer.connect() as second:
        await first.begin()
        await core.append_in(first, stream_id, 0, [new_event()], now())
        await second.begin()
        racing = asyncio.create_task(core.append_in(second, stream_id, 0, [new_event()], now()))
        await asyncio.sleep(0.2)
        assert not racing.done(), "the second insert should wait for the first transaction"
        await first.commit()
        with pytest.raises(ConcurrencyError) as raised:
            await racing
        await second.rollback()

    assert raised.value.expected_version == 0
    assert raised.value.actual_version is None  # it came from the unique key, not the check
    with pytest.raises(ConcurrencyError) as retried:
        await store.append(stream_id, 0, [new_event()], recorded_at=now())
    assert retried.value.actual_version == 1


@pytest.mark.postgres_only
async def test_the_same_event_ids_racing_on_two_streams_resolve_on_retry(store: Store) -> None:
    """A concurrent insert of the same event id fails on its unique key: ConcurrencyError, and
    the retry classifies it (here, ids reused on another stream)."""
    core = cast(CoreStore, store)
    event = new_event()
    first_stream, second_stream = new_stream_id(), new_stream_id()
    async with core.writer.connect() as first, core.writer.connect() as second:
        await first.begin()
        await core.append_in(first, first_stream, 0, [event], now())
        await second.begin()
        racing = asyncio.create_task(core.append_in(second, second_stream, 0, [event], now()))
        await asyncio.sleep(0.2)
        await first.commit()
        with pytest.raises(ConcurrencyError):
            await racing
        await second.rollback()

    with pytest.raises(EventIdConflict):
        await store.append(second_stream, 0, [event], recorded_at=now())
