"""Appending to a stream and reading it back: the contract both backends keep."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from escrow_core.store import (
    ConcurrencyError,
    Database,
    EventIdConflict,
    EventStore,
    NewEvent,
    RecordedEvent,
)
from support.events import new_event, new_events, new_stream_id, now


async def append(
    database: Database, store: EventStore, stream_id: str, expected: int, events: list[NewEvent]
) -> list[RecordedEvent]:
    async with database.transaction() as conn:
        return await store.append(conn, stream_id, expected, events, recorded_at=now())


async def read(database: Database, store: EventStore, stream_id: str) -> list[RecordedEvent]:
    async with database.read() as conn:
        return await store.read_stream(conn, stream_id)


async def test_appended_events_read_back_as_written(
    database: Database, store: EventStore, backend: str
) -> None:
    stream_id = new_stream_id()
    events = [
        new_event("funds.held", {"amount": 125000, "currency": "USD", "nested": {"é": [1, None]}}),
        new_event("funds.released", {"gross": 125000}, {"actor": {"role": "buyer"}, "req": "r1"}),
    ]
    recorded_at = datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=8)))
    async with database.transaction() as conn:
        appended = await store.append(conn, stream_id, 0, events, recorded_at=recorded_at)

    stored = await read(database, store, stream_id)

    assert stored == appended
    assert [e.version for e in stored] == [1, 2]
    assert [e.event_id for e in stored] == [e.event_id for e in events]
    assert [(e.type, e.data, e.metadata) for e in stored] == [
        (e.type, e.data, e.metadata) for e in events
    ]
    assert {e.stream_id for e in stored} == {stream_id}
    assert [e.schema_version for e in stored] == [1, 1]
    assert stored[0].position < stored[1].position
    for event in stored:
        assert event.recorded_at == recorded_at
        assert event.recorded_at.utcoffset() == timedelta(0)
        assert event.recorded_at.tzinfo is UTC
        assert type(event.event_id) is uuid.UUID
    if backend == "postgresql":
        assert stored[0].transaction_id == stored[1].transaction_id > 0
    else:
        assert stored[0].transaction_id == stored[1].transaction_id == 0
    assert stored[1].checkpoint == (stored[1].transaction_id, stored[1].position)


async def test_later_appends_continue_the_versions(database: Database, store: EventStore) -> None:
    stream_id = new_stream_id()
    await append(database, store, stream_id, 0, new_events(2))
    await append(database, store, stream_id, 2, new_events(1))
    await append(database, store, stream_id, 3, new_events(3))

    stored = await read(database, store, stream_id)

    assert [e.version for e in stored] == [1, 2, 3, 4, 5, 6]
    assert [e.position for e in stored] == sorted(e.position for e in stored)
    async with database.read() as conn:
        assert await store.stream_version(conn, stream_id) == 6


@pytest.mark.parametrize(("expected", "ids"), [(1, "behind"), (3, "ahead"), (7, "far-ahead")])
async def test_an_expected_version_other_than_the_streams_is_refused(
    database: Database, store: EventStore, expected: int, ids: str
) -> None:
    stream_id = new_stream_id()
    before = await append(database, store, stream_id, 0, new_events(2))

    with pytest.raises(ConcurrencyError) as raised:
        await append(database, store, stream_id, expected, new_events(1))

    assert raised.value.stream_id == stream_id
    assert raised.value.expected_version == expected
    assert raised.value.actual_version == 2
    assert await read(database, store, stream_id) == before


async def test_a_new_stream_must_be_expected_at_version_zero(
    database: Database, store: EventStore
) -> None:
    stream_id = new_stream_id()

    with pytest.raises(ConcurrencyError):
        await append(database, store, stream_id, 1, new_events(1))

    assert await read(database, store, stream_id) == []


async def test_the_transaction_stays_usable_after_a_refused_append(
    database: Database, store: EventStore
) -> None:
    """The version check refuses without a database error, so the command can go on."""
    stream_id = new_stream_id()
    await append(database, store, stream_id, 0, new_events(1))
    async with database.transaction() as conn:
        with pytest.raises(ConcurrencyError):
            await store.append(conn, stream_id, 0, new_events(1), recorded_at=now())
        await store.append(conn, stream_id, 1, new_events(1), recorded_at=now())

    assert [e.version for e in await read(database, store, stream_id)] == [1, 2]


async def test_the_store_never_commits_for_its_caller(
    database: Database, store: EventStore
) -> None:
    stream_id = new_stream_id()

    class CommandFailedError(Exception):
        pass

    async def command_that_fails_after_appending() -> None:
        async with database.transaction() as conn:
            await store.append(conn, stream_id, 0, new_events(2), recorded_at=now())
            raise CommandFailedError

    with pytest.raises(CommandFailedError):
        await command_that_fails_after_appending()

    assert await read(database, store, stream_id) == []


async def test_a_retried_append_returns_the_stored_events_and_adds_none(
    database: Database, store: EventStore
) -> None:
    stream_id = new_stream_id()
    events = new_events(2)
    first = await append(database, store, stream_id, 0, events)

    again = await append(database, store, stream_id, 0, events)
    await append(database, store, stream_id, 2, new_events(1))
    after_the_stream_moved_on = await append(database, store, stream_id, 0, events)

    assert again == first
    assert after_the_stream_moved_on == first
    assert [e.version for e in await read(database, store, stream_id)] == [1, 2, 3]


async def test_reusing_some_stored_event_ids_is_a_conflict(
    database: Database, store: EventStore
) -> None:
    stream_id = new_stream_id()
    stored = new_events(2)
    await append(database, store, stream_id, 0, stored)
    fresh = new_event()

    with pytest.raises(EventIdConflict) as raised:
        await append(database, store, stream_id, 2, [stored[1], fresh])

    assert raised.value.event_ids == (stored[1].event_id,)
    assert [e.version for e in await read(database, store, stream_id)] == [1, 2]


async def test_reusing_event_ids_on_another_stream_is_a_conflict(
    database: Database, store: EventStore
) -> None:
    events = new_events(2)
    await append(database, store, new_stream_id(), 0, events)
    other = new_stream_id()

    with pytest.raises(EventIdConflict) as raised:
        await append(database, store, other, 0, events)

    assert set(raised.value.event_ids) == {e.event_id for e in events}
    assert await read(database, store, other) == []


async def test_read_stream_ranges(database: Database, store: EventStore) -> None:
    stream_id = new_stream_id()
    await append(database, store, stream_id, 0, new_events(5))

    async with database.read() as conn:

        async def versions(**bounds: int) -> list[int]:
            return [e.version for e in await store.read_stream(conn, stream_id, **bounds)]

        assert await versions() == [1, 2, 3, 4, 5]
        assert await versions(after_version=2) == [3, 4, 5]
        assert await versions(up_to_version=2) == [1, 2]
        assert await versions(after_version=1, up_to_version=4) == [2, 3, 4]
        assert await versions(after_version=5) == []
        assert await versions(up_to_version=0) == []
        assert await store.read_stream(conn, new_stream_id()) == []
        assert await store.stream_version(conn, new_stream_id()) == 0


async def test_streams_do_not_mix(database: Database, store: EventStore) -> None:
    first, second = new_stream_id(), new_stream_id()
    await append(database, store, first, 0, new_events(2))
    await append(database, store, second, 0, new_events(1))

    assert [e.stream_id for e in await read(database, store, first)] == [first, first]
    assert [e.version for e in await read(database, store, second)] == [1]


async def test_an_empty_append_does_nothing(database: Database, store: EventStore) -> None:
    stream_id = new_stream_id()

    assert await append(database, store, stream_id, 0, []) == []
    assert await read(database, store, stream_id) == []


@pytest.mark.parametrize(
    ("expected", "events", "recorded_at", "message"),
    [
        (-1, "one", now(), "never negative"),
        (0, "twins", now(), "same event id twice"),
        (0, "one", datetime(2025, 1, 1), "timezone-aware"),
    ],
    ids=["negative-version", "duplicate-ids", "naive-time"],
)
async def test_malformed_appends_are_refused_before_reaching_the_database(
    database: Database,
    store: EventStore,
    expected: int,
    events: str,
    recorded_at: datetime,
    message: str,
) -> None:
    stream_id = new_stream_id()
    event = new_event()
    batch = [event, event] if events == "twins" else [event]

    async with database.transaction() as conn:
        with pytest.raises(ValueError, match=message):
            await store.append(conn, stream_id, expected, batch, recorded_at=recorded_at)

    assert await read(database, store, stream_id) == []
