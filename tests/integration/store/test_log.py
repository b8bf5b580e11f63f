"""Reading the global log: paging, the head, and never skipping an event that commits late."""

import asyncio
import json
from typing import cast

import pytest
import sqlalchemy as sa

from escrow_core.store import LOG_START, Checkpoint, RecordedEvent, Store
from escrow_core.store.postgres import PostgresStore
from escrow_core.store.postgres import sql as postgres_sql
from escrow_core.store.shared import CoreStore
from support.events import new_event, new_events, now, tail_log

from .writers import Writer, make_commit


async def append(store: Store, stream_id: str, expected: int, count: int) -> list[RecordedEvent]:
    return await store.append(stream_id, expected, new_events(count), recorded_at=now())


@pytest.mark.parametrize("writer", ["append", "commit"])
async def test_read_log_pages_through_every_stream_in_commit_order(
    fresh_store: Store, writer: str
) -> None:
    write = Writer(writer, fresh_store)
    appended = [
        *await write("stream-a", 0, new_events(2)),
        *await write("stream-b", 0, new_events(1)),
        *await write("stream-a", 2, new_events(2)),
    ]
    await tail_log(fresh_store, LOG_START, count=5)  # all five are readable now

    pages: list[list[RecordedEvent]] = []
    checkpoint = LOG_START
    while page := await fresh_store.read_log(checkpoint, limit=2):
        pages.append(page)
        checkpoint = page[-1].checkpoint

    assert [len(page) for page in pages] == [2, 2, 1]
    read = [event for page in pages for event in page]
    assert read == appended
    assert [e.checkpoint for e in read] == sorted({e.checkpoint for e in read})
    assert [(e.stream_id, e.version) for e in read] == [
        ("stream-a", 1), ("stream-a", 2), ("stream-b", 1), ("stream-a", 3), ("stream-a", 4),
    ]  # fmt: skip
    assert await fresh_store.read_log(read[2].checkpoint, limit=10) == read[3:]
    with pytest.raises(ValueError, match="at least 1"):
        await fresh_store.read_log(LOG_START, limit=0)


async def test_whole_log_gives_every_event_in_batches(fresh_store: Store) -> None:
    appended = [*await append(fresh_store, "stream-a", 0, 3), *await append(fresh_store, "b", 0, 2)]
    # Commit-safe first: another test's open transaction may hold PostgreSQL's head back.
    await tail_log(fresh_store, LOG_START, count=5)

    batches = [batch async for batch in fresh_store.whole_log(batch_size=2)]

    assert [len(batch) for batch in batches] == [2, 2, 1]
    assert [e for batch in batches for e in batch] == appended
    assert await fresh_store.count_events() == 5


async def test_log_head_is_where_subscribers_start_from_now(fresh_store: Store) -> None:
    assert await fresh_store.log_head() == LOG_START
    before = await append(fresh_store, "stream-a", 0, 3)
    await tail_log(fresh_store, LOG_START, count=3)

    head = await fresh_store.log_head()
    assert await fresh_store.read_log(head) == []
    [later] = await append(fresh_store, "stream-b", 0, 1)
    from_head, _ = await tail_log(fresh_store, head, count=1)

    assert head == before[-1].checkpoint
    assert isinstance(head, Checkpoint)
    assert from_head == [later]


@pytest.mark.postgres_only
@pytest.mark.holds_horizon
async def test_an_event_that_commits_late_is_read_not_skipped(fresh_store: Store) -> None:
    """DESIGN 2: tx A takes the lower position and commits after tx B.

    The reader must hold B back while A may still commit, then read A before B. A reader
    ordering by position alone would read B, move its checkpoint past A, and lose A.
    """
    store = cast(CoreStore, fresh_store)
    kept = LOG_START  # the reader's checkpoint
    naive_kept = 0  # the position-only reader's checkpoint
    naive_read: list[int] = []

    async def naive_read_log() -> list[int]:
        async with store.read() as conn:
            query = sa.text("SELECT position FROM events WHERE position > :p ORDER BY position")
            return list((await conn.execute(query, {"p": naive_kept})).scalars())

    async with store.writer.connect() as tx_a, store.writer.connect() as tx_b:
        await tx_a.begin()
        [event_a] = await store.append_in(tx_a, "stream-a", 0, [new_event()], now())
        await tx_b.begin()
        [event_b] = await store.append_in(tx_b, "stream-b", 0, [new_event()], now())
        await tx_b.commit()
        assert event_a.position < event_b.position
        assert event_a.transaction_id < event_b.transaction_id

        assert await store.read_log(kept) == []  # B is held back while A runs
        assert await store.log_head() == LOG_START
        naive_read += await naive_read_log()
        naive_kept = naive_read[-1]
        assert naive_read == [event_b.position]

        await tx_a.commit()

    events, kept = await tail_log(store, kept, count=2)
    naive_read += await naive_read_log()

    assert [e.event_id for e in events] == [event_a.event_id, event_b.event_id]
    assert kept == event_b.checkpoint
    assert event_a.position not in naive_read, "the position-only reader skips A for good"


@pytest.mark.postgres_only
@pytest.mark.holds_horizon
async def test_a_command_that_commits_late_is_read_not_skipped(fresh_store: Store) -> None:
    """The same rule for the command write (one statement): one held open in a transaction
    holds back a later command's events until it commits, and is then read first."""
    store = cast(PostgresStore, fresh_store)
    async with store.command() as first, store.command() as second:
        connection = first.connection  # type: ignore[attr-defined]
        transaction = connection.transaction()
        await transaction.start()
        [event_a] = await first.commit(make_commit("ord_a", 0, [new_event()]))
        [event_b] = await second.commit(make_commit("ord_b", 0, [new_event()]))
        assert event_a.position < event_b.position
        assert await store.read_log(LOG_START) == []
        await transaction.commit()

    events, _ = await tail_log(store, LOG_START, count=2)
    assert [e.event_id for e in events] == [event_a.event_id, event_b.event_id]


@pytest.mark.sqlite_only
async def test_on_sqlite_a_second_writer_waits_and_the_reader_sees_both_in_order(
    fresh_store: Store,
) -> None:
    """SQLite has one writer at a time, so the late-commit case cannot arise there."""
    store = cast(CoreStore, fresh_store)

    async def second_writer() -> RecordedEvent:
        [event] = await append(store, "stream-b", 0, 1)
        return event

    async with store.transaction() as tx_a:
        [event_a] = await store.append_in(tx_a, "stream-a", 0, [new_event()], now())
        writer_b = asyncio.create_task(second_writer())
        await asyncio.sleep(0.3)
        assert not writer_b.done(), "B must wait for A's write lock (BEGIN IMMEDIATE)"
        assert await store.read_log(LOG_START) == []
    event_b = await writer_b

    events = await store.read_log(LOG_START)

    assert [e.event_id for e in events] == [event_a.event_id, event_b.event_id]
    assert event_a.position < event_b.position


@pytest.mark.postgres_only
async def test_the_log_is_read_in_xid8_order_straight_from_the_index(store: Store) -> None:
    """The reader orders by the xid8 column, which the (transaction_id, position) index
    serves without sorting. (Ordering by the text the query also returns would sort every
    page, and put transaction 10 before transaction 9.)"""
    plan_query = f"EXPLAIN (FORMAT JSON) {postgres_sql.READ_LOG.sql}"
    async with cast(PostgresStore, store).raw() as connection, connection.transaction():
        # Make every alternative dear, so a Sort shows only where nothing else gives the order.
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            await connection.execute(f"SET LOCAL {setting} = off")
        plan = await connection.fetchval(plan_query, "0", 0, 100)
    text = plan if isinstance(plan, str) else json.dumps(plan)
    assert "events_transaction_id_position_idx" in text
    assert '"Sort"' not in text
