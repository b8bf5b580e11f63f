"""Appending to a stream and reading it back: the contract both backends keep, through
``Store.append`` and through a command session's ``commit`` (the ``write`` fixture)."""

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import cast

import pytest

from escrow_core.store import (
    ConcurrencyError,
    EventIdConflict,
    RecordedEvent,
    Store,
    StoreError,
)
from escrow_core.store.shared import CoreStore
from support.events import new_event, new_events, new_stream_id, now
from support.tables import balance_rows, view_row

from .writers import Writer, commit, make_commit


async def read(store: Store, stream_id: str) -> list[RecordedEvent]:
    return await store.stream(stream_id)


async def test_appended_events_read_back_as_written(
    write: Writer, store: Store, backend: str
) -> None:
    stream_id = new_stream_id()
    events = [
        new_event("funds.held", {"amount": 125000, "currency": "USD", "nested": {"é": [1, None]}}),
        new_event("order.shipped", {"carrier": "DHL"}, {"actor": {"role": "buyer"}, "req": "r1"}),
    ]
    recorded_at = datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=8)))
    appended = await write(stream_id, 0, events, recorded_at=recorded_at)

    stored = await read(store, stream_id)

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


async def test_later_appends_continue_the_versions(write: Writer, store: Store) -> None:
    stream_id = new_stream_id()
    await write(stream_id, 0, new_events(2))
    await write(stream_id, 2, new_events(1))
    await write(stream_id, 3, new_events(3))

    stored = await read(store, stream_id)

    assert [e.version for e in stored] == [1, 2, 3, 4, 5, 6]
    assert [e.position for e in stored] == sorted(e.position for e in stored)
    if write.name == "commit":
        assert (await view_row(store, stream_id) or {})["version"] == 6


@pytest.mark.parametrize("expected", [1, 3, 7], ids=["behind", "ahead", "far-ahead"])
async def test_an_expected_version_other_than_the_streams_is_refused(
    write: Writer, store: Store, expected: int
) -> None:
    stream_id = new_stream_id()
    before = await write(stream_id, 0, new_events(2))
    row_before = await view_row(store, stream_id)

    with pytest.raises(ConcurrencyError) as raised:
        await write(stream_id, expected, new_events(1))

    assert raised.value.stream_id == stream_id
    assert raised.value.expected_version == expected
    # append looks the version up; PostgreSQL's one-statement commit does not (no round trip)
    assert raised.value.actual_version in ({2} if write.name == "append" else {2, None})
    assert await read(store, stream_id) == before
    assert await view_row(store, stream_id) == row_before


async def test_a_new_stream_must_be_expected_at_version_zero(write: Writer, store: Store) -> None:
    stream_id = new_stream_id()

    with pytest.raises(ConcurrencyError):
        await write(stream_id, 1, new_events(1))

    assert await read(store, stream_id) == []
    assert await view_row(store, stream_id) is None


async def test_the_transaction_stays_usable_after_a_refused_append(store: Store) -> None:
    """Inside a caller's transaction (``append_in``) the version check refuses without a
    database error, so the caller can go on."""
    core = cast(CoreStore, store)
    stream_id = new_stream_id()
    await store.append(stream_id, 0, new_events(1), recorded_at=now())
    async with core.transaction() as conn:
        with pytest.raises(ConcurrencyError):
            await core.append_in(conn, stream_id, 0, new_events(1), now())
        await core.append_in(conn, stream_id, 1, new_events(1), now())

    assert [e.version for e in await read(store, stream_id)] == [1, 2]


async def test_append_in_never_commits_for_its_caller(store: Store) -> None:
    core = cast(CoreStore, store)
    stream_id = new_stream_id()

    class CommandFailedError(Exception):
        pass

    async def command_that_fails_after_appending() -> None:
        async with core.transaction() as conn:
            await core.append_in(conn, stream_id, 0, new_events(2), now())
            raise CommandFailedError

    with pytest.raises(CommandFailedError):
        await command_that_fails_after_appending()

    assert await read(store, stream_id) == []


async def test_a_retried_append_returns_the_stored_events_and_adds_none(store: Store) -> None:
    stream_id = new_stream_id()
    events = new_events(2)
    first = await store.append(stream_id, 0, events, recorded_at=now())

    again = await store.append(stream_id, 0, events, recorded_at=now())
    await store.append(stream_id, 2, new_events(1), recorded_at=now())
    after_the_stream_moved_on = await store.append(stream_id, 0, events, recorded_at=now())

    assert again == first
    assert after_the_stream_moved_on == first
    assert [e.version for e in await read(store, stream_id)] == [1, 2, 3]


async def test_reusing_some_stored_event_ids_is_refused(write: Writer, store: Store) -> None:
    stream_id = new_stream_id()
    stored = new_events(2)
    await write(stream_id, 0, stored)
    row_before = await view_row(store, stream_id)
    fresh = new_event()

    with pytest.raises(StoreError) as raised:
        await write(stream_id, 2, [stored[1], fresh])

    if write.name == "append":
        assert isinstance(raised.value, EventIdConflict)
        assert raised.value.event_ids == (stored[1].event_id,)
    assert [e.version for e in await read(store, stream_id)] == [1, 2]
    assert await view_row(store, stream_id) == row_before


async def test_reusing_event_ids_on_another_stream_is_refused(write: Writer, store: Store) -> None:
    events = new_events(2)
    await write(new_stream_id(), 0, events)
    other = new_stream_id()

    with pytest.raises(StoreError) as raised:
        await write(other, 0, events)

    if write.name == "append":
        assert isinstance(raised.value, EventIdConflict)
        assert set(raised.value.event_ids) == {e.event_id for e in events}
    assert await read(store, other) == []
    assert await view_row(store, other) is None
    assert await balance_rows(store, other) == []


async def test_stream_ranges(store: Store) -> None:
    stream_id = new_stream_id()
    await store.append(stream_id, 0, new_events(5), recorded_at=now())

    async def versions(**bounds: int) -> list[int]:
        return [e.version for e in await store.stream(stream_id, **bounds)]

    assert await versions() == [1, 2, 3, 4, 5]
    assert await versions(after_version=2) == [3, 4, 5]
    assert await versions(up_to_version=2) == [1, 2]
    assert await versions(after_version=1, up_to_version=4) == [2, 3, 4]
    assert await versions(after_version=5) == []
    assert await versions(up_to_version=0) == []
    assert await store.stream(new_stream_id()) == []
    async with store.command() as session:
        assert await session.stream(stream_id) == await store.stream(stream_id)
        assert await session.stream(new_stream_id()) == []


async def test_streams_do_not_mix(write: Writer, store: Store) -> None:
    first, second = new_stream_id(), new_stream_id()
    await write(first, 0, new_events(2))
    await write(second, 0, new_events(1))

    assert [e.stream_id for e in await read(store, first)] == [first, first]
    assert [e.version for e in await read(store, second)] == [1]


async def test_an_empty_append_does_nothing(store: Store) -> None:
    stream_id = new_stream_id()

    assert await store.append(stream_id, 0, [], recorded_at=now()) == []
    assert await read(store, stream_id) == []


@pytest.mark.parametrize(
    ("expected", "events", "recorded_at", "message"),
    [
        (-1, "one", now(), "never negative"),
        (0, "twins", now(), "same event id twice"),
        (0, "one", datetime(2025, 1, 1), "timezone-aware"),
    ],
    ids=["negative-version", "duplicate-ids", "naive-time"],
)
async def test_malformed_writes_are_refused_before_reaching_the_database(
    write: Writer,
    store: Store,
    expected: int,
    events: str,
    recorded_at: datetime,
    message: str,
) -> None:
    stream_id = new_stream_id()
    event = new_event()
    batch = [event, event] if events == "twins" else [event]

    with pytest.raises(ValueError, match=message):
        await write(stream_id, expected, batch, recorded_at=recorded_at)

    assert await read(store, stream_id) == []
    assert await view_row(store, stream_id) is None


async def test_a_commit_without_events_is_refused(store: Store) -> None:
    """A command that changes nothing keeps its answer with ``save_answer``; a commit of no
    events would write an order's row that no event backs."""
    stream_id = new_stream_id()

    with pytest.raises(ValueError, match="at least one event"):
        await commit(store, make_commit(stream_id, 0, []))

    assert await read(store, stream_id) == []
    assert await view_row(store, stream_id) is None
