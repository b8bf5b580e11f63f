"""Reading the global log: paging, the head, and never skipping an event that commits late."""

import asyncio
import json

import pytest
import sqlalchemy as sa

from escrow_core.store import LOG_START, Checkpoint, Database, EventStore, RecordedEvent, queries
from support.events import new_event, new_events, now, tail_log


async def append(
    database: Database, store: EventStore, stream_id: str, expected: int, count: int
) -> list[RecordedEvent]:
    async with database.transaction() as conn:
        return await store.append(conn, stream_id, expected, new_events(count), recorded_at=now())


async def test_read_log_pages_through_every_stream_in_commit_order(
    fresh_database: Database, store: EventStore
) -> None:
    appended = [
        *await append(fresh_database, store, "stream-a", 0, 2),
        *await append(fresh_database, store, "stream-b", 0, 1),
        *await append(fresh_database, store, "stream-a", 2, 2),
    ]
    await tail_log(fresh_database, store, LOG_START, count=5)  # all five are readable now

    pages: list[list[RecordedEvent]] = []
    checkpoint = LOG_START
    async with fresh_database.read() as conn:
        while page := await store.read_log(conn, checkpoint, limit=2):
            pages.append(page)
            checkpoint = page[-1].checkpoint

    assert [len(page) for page in pages] == [2, 2, 1]
    read = [event for page in pages for event in page]
    assert read == appended
    assert [e.checkpoint for e in read] == sorted({e.checkpoint for e in read})
    assert [(e.stream_id, e.version) for e in read] == [
        ("stream-a", 1), ("stream-a", 2), ("stream-b", 1), ("stream-a", 3), ("stream-a", 4),
    ]  # fmt: skip
    async with fresh_database.read() as conn:
        assert await store.read_log(conn, read[2].checkpoint, limit=10) == read[3:]


async def test_log_head_is_where_subscribers_start_from_now(
    fresh_database: Database, store: EventStore
) -> None:
    async with fresh_database.read() as conn:
        assert await store.log_head(conn) == LOG_START
    before = await append(fresh_database, store, "stream-a", 0, 3)
    await tail_log(fresh_database, store, LOG_START, count=3)

    async with fresh_database.read() as conn:
        head = await store.log_head(conn)
        assert await store.read_log(conn, head) == []
    [later] = await append(fresh_database, store, "stream-b", 0, 1)
    from_head, _ = await tail_log(fresh_database, store, head, count=1)

    assert head == before[-1].checkpoint
    assert isinstance(head, Checkpoint)
    assert from_head == [later]


@pytest.mark.postgres_only
async def test_an_event_that_commits_late_is_read_not_skipped(
    fresh_database: Database, store: EventStore
) -> None:
    """DESIGN 2: tx A takes the lower position and commits after tx B.

    The reader must hold B back while A may still commit, then read A before B. A reader
    ordering by position alone would read B, move its checkpoint past A, and lose A.
    """
    database = fresh_database
    kept = LOG_START  # the reader's checkpoint
    naive_kept = 0  # the position-only reader's checkpoint
    naive_read: list[int] = []

    async def naive_read_log() -> list[int]:
        async with database.read() as conn:
            query = sa.text("SELECT position FROM events WHERE position > :p ORDER BY position")
            return list((await conn.execute(query, {"p": naive_kept})).scalars())

    async with database.writer.connect() as tx_a, database.writer.connect() as tx_b:
        await tx_a.begin()
        [event_a] = await store.append(tx_a, "stream-a", 0, [new_event()], recorded_at=now())
        await tx_b.begin()
        [event_b] = await store.append(tx_b, "stream-b", 0, [new_event()], recorded_at=now())
        await tx_b.commit()
        assert event_a.position < event_b.position
        assert event_a.transaction_id < event_b.transaction_id

        async with database.read() as conn:
            assert await store.read_log(conn, kept) == []  # B is held back while A runs
        naive_read += await naive_read_log()
        naive_kept = naive_read[-1]
        assert naive_read == [event_b.position]

        await tx_a.commit()

    events, kept = await tail_log(database, store, kept, count=2)
    naive_read += await naive_read_log()

    assert [e.event_id for e in events] == [event_a.event_id, event_b.event_id]
    assert kept == event_b.checkpoint
    assert event_a.position not in naive_read, "the position-only reader skips A for good"


@pytest.mark.sqlite_only
async def test_on_sqlite_a_second_writer_waits_and_the_reader_sees_both_in_order(
    fresh_database: Database, store: EventStore
) -> None:
    """SQLite has one writer at a time, so the late-commit case cannot arise there."""
    database = fresh_database

    async def second_writer() -> RecordedEvent:
        [event] = await append(database, store, "stream-b", 0, 1)
        return event

    async with database.transaction() as tx_a:
        [event_a] = await store.append(tx_a, "stream-a", 0, [new_event()], recorded_at=now())
        writer_b = asyncio.create_task(second_writer())
        await asyncio.sleep(0.3)
        assert not writer_b.done(), "B must wait for A's write lock (BEGIN IMMEDIATE)"
        async with database.read() as conn:
            assert await store.read_log(conn, LOG_START) == []
    event_b = await writer_b

    async with database.read() as conn:
        events = await store.read_log(conn, LOG_START)

    assert [e.event_id for e in events] == [event_a.event_id, event_b.event_id]
    assert event_a.position < event_b.position


@pytest.mark.postgres_only
async def test_the_log_is_read_in_xid8_order_straight_from_the_index(database: Database) -> None:
    """The reader orders by the xid8 column, which the (transaction_id, position) index
    serves without sorting. (Ordering by the text the query also returns would sort every
    page, and put transaction 10 before transaction 9.)"""
    plan_query = f"EXPLAIN (FORMAT JSON) {queries.READ_LOG_POSTGRESQL_SQL}"
    async with database.raw() as connection, connection.transaction():
        # Make every alternative dear, so a Sort shows only where nothing else gives the order.
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            await connection.execute(f"SET LOCAL {setting} = off")
        plan = await connection.fetchval(plan_query, "0", 0, 100)
    text = plan if isinstance(plan, str) else json.dumps(plan)
    assert "events_transaction_id_position_idx" in text
    assert '"Sort"' not in text
