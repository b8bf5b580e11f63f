"""A command session's ``commit``: the events, the order's row, the balance changes (with their
events' positions) and the Idempotency-Key answer are written together, or nothing is."""

import asyncio
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import pytest
import sqlalchemy as sa

from escrow_core.store import (
    BalanceChange,
    ConcurrencyError,
    KeyBusy,
    RecordedEvent,
    Store,
    StoredAnswer,
    schema,
)
from escrow_core.store.postgres.session import PostgresSession
from support.events import new_events, new_stream_id, now
from support.tables import balance_rows, view_row

from .writers import commit, make_commit, order_row

REFUSED_BY_THE_DATABASE = (sa.exc.IntegrityError, asyncpg.CheckViolationError)


async def answer_row(store: Store, scope: str) -> dict[str, Any] | None:
    t = schema.idempotency_keys
    async with store.read() as conn:
        query = sa.select(
            t.c.status, t.c.response_status, t.c.response_body, t.c.response_headers
        ).where(t.c.scope == scope)
        row = (await conn.execute(query)).first()
    return None if row is None else dict(row._mapping)


def answer(
    scope: str, status: int = 201, body: bytes = b'{"ok": true}', *, age: timedelta = timedelta()
) -> StoredAnswer:
    """An order command's answer under ``scope``'s key-1, made ``age`` ago, kept a day."""
    at = datetime.now(UTC) - age
    return StoredAnswer(
        scope, "key-1", status, body, {"etag": '"2"'}, "hash", at, at + timedelta(days=1)
    )


def held(stream_id: str, version: int, amount: int) -> list[BalanceChange]:
    """A balance change for each party of the hand-made order, by the event at ``version``."""
    return [
        BalanceChange(party, "USD", stream_id, version, held=amount)
        for party in (f"pty_buyer_{stream_id}", f"pty_supplier_{stream_id}")
    ]


async def test_a_commit_writes_events_row_balances_and_answer_together(store: Store) -> None:
    stream_id, scope = new_stream_id("ord"), new_stream_id("scope")
    at = now()
    written = make_commit(
        stream_id,
        0,
        new_events(3),
        recorded_at=at,
        balances=[*held(stream_id, 2, 50_000), *held(stream_id, 3, 75_000)],
        answer=answer(scope),
    )

    recorded = await commit(store, written)

    stored = await store.stream(stream_id)
    assert recorded == stored
    assert [e.version for e in stored] == [1, 2, 3]
    assert await view_row(store, stream_id) == asdict(order_row(stream_id, 3, at))
    positions = {e.version: e.position for e in stored}
    ledger = await balance_rows(store, stream_id)
    assert [(r["party_id"], r["position"], r["held"]) for r in ledger] == [
        (f"pty_buyer_{stream_id}", positions[2], 50_000),
        (f"pty_supplier_{stream_id}", positions[2], 50_000),
        (f"pty_buyer_{stream_id}", positions[3], 75_000),
        (f"pty_supplier_{stream_id}", positions[3], 75_000),
    ]
    assert await answer_row(store, scope) == {
        "status": "done",
        "response_status": 201,
        "response_body": '{"ok": true}',
        "response_headers": {"etag": '"2"'},
    }
    async with store.command() as session:
        assert await session.snapshot(stream_id) == written.view.state
    assert await store.snapshot(stream_id) == written.view.state
    assert [(b.party_id, b.held) for b in await store.balances_of(f"pty_buyer_{stream_id}")] == [
        (f"pty_buyer_{stream_id}", 125_000)
    ]


async def test_a_commit_at_a_stale_version_writes_nothing(store: Store) -> None:
    # Given an order written by one command, with its row, balances and answer
    stream_id, first_scope, second_scope = (
        new_stream_id("ord"), new_stream_id("scope"), new_stream_id("scope"),
    )  # fmt: skip
    first = make_commit(
        stream_id, 0, new_events(2), balances=held(stream_id, 2, 50_000), answer=answer(first_scope)
    )
    await commit(store, first)
    events_before, row_before = await store.stream(stream_id), await view_row(store, stream_id)
    balances_before = await balance_rows(store, stream_id)

    # When another command decided at version 1 commits
    stale = make_commit(
        stream_id, 1, new_events(2), balances=held(stream_id, 3, 9_999), answer=answer(second_scope)
    )
    with pytest.raises(ConcurrencyError) as raised:
        await commit(store, stale)

    # Then nothing of it is written: no events, no row change, no balance rows, no answer
    assert (raised.value.stream_id, raised.value.expected_version) == (stream_id, 1)
    assert await store.stream(stream_id) == events_before
    assert await view_row(store, stream_id) == row_before
    assert await balance_rows(store, stream_id) == balances_before
    assert await answer_row(store, second_scope) is None
    assert (await answer_row(store, first_scope) or {})["status"] == "done"


async def test_a_retried_commit_is_refused_and_writes_nothing_more(store: Store) -> None:
    """The same commit again (same event ids, same expected version) after it went in: the
    stream has moved, so ConcurrencyError, and above all no second set of balance rows."""
    stream_id = new_stream_id("ord")
    written = make_commit(stream_id, 0, new_events(2), balances=held(stream_id, 2, 50_000))
    await commit(store, written)
    events_before, row_before = await store.stream(stream_id), await view_row(store, stream_id)
    balances_before = await balance_rows(store, stream_id)

    with pytest.raises(ConcurrencyError):
        await commit(store, written)

    assert await store.stream(stream_id) == events_before
    assert await view_row(store, stream_id) == row_before
    assert await balance_rows(store, stream_id) == balances_before


async def test_a_commit_refused_at_its_last_part_leaves_no_trace(store: Store) -> None:
    """An answer the database refuses (a status outside 100-599 breaks a CHECK constraint)
    takes the events, row and balances with it."""
    stream_id, scope = new_stream_id("ord"), new_stream_id("scope")
    events_before = await store.count_events()

    with pytest.raises(REFUSED_BY_THE_DATABASE):
        await commit(
            store,
            make_commit(
                stream_id,
                0,
                new_events(2),
                balances=held(stream_id, 2, 50_000),
                answer=answer(scope, status=999),
            ),
        )

    assert await store.stream(stream_id) == []
    assert await store.count_events() == events_before
    assert await view_row(store, stream_id) is None
    assert await balance_rows(store, stream_id) == []
    assert await answer_row(store, scope) is None
    # and the same command, answered properly, still goes in
    await commit(store, make_commit(stream_id, 0, new_events(2), answer=answer(scope)))
    assert [e.version for e in await store.stream(stream_id)] == [1, 2]


async def test_a_session_keeps_the_answer_of_a_command_that_wrote_nothing(store: Store) -> None:
    scope = new_stream_id("scope")

    async with store.command() as session:
        await session.save_answer(answer(scope, status=200, body=b"{}"))

    assert await answer_row(store, scope) == {
        "status": "done",
        "response_status": 200,
        "response_body": "{}",
        "response_headers": {"etag": '"2"'},
    }


@pytest.mark.postgres_only
async def test_two_sessions_committing_the_same_version_leave_exactly_one_winner(
    store: Store,
) -> None:
    """Both pass the version check; the second insert waits on the (stream_id, version) key
    for the first, then fails: ConcurrencyError, and none of its statement is kept.

    The first commit runs inside a transaction held open by the test, so the second really
    arrives while the first's rows are uncommitted.
    """
    stream_id = new_stream_id("ord")
    scopes = [new_stream_id("scope"), new_stream_id("scope")]
    for scope in scopes:
        winner, loser = (
        make_commit(stream_id, 0, new_events(2), balances=held(stream_id, 2, amount),
                    answer=answer(scope, status=status))
        for amount, scope, status in ((50_000, scopes[0], 201), (9_999, scopes[1], 202))
    )  # fmt: skip
    async with store.command() as first, store.command() as second:
        connection = cast(PostgresSession, first).connection
        transaction = connection.transaction()
        await transaction.start()
        won = await first.commit(winner)
        racing = asyncio.create_task(second.commit(loser))
        await asyncio.sleep(0.3)
        assert not racing.done(), "the second commit should wait for the first transaction"
        await transaction.commit()
        with pytest.raises(ConcurrencyError) as raised:
            await racing

    assert raised.value.expected_version == 0
    stored: list[RecordedEvent] = await store.stream(stream_id)
    assert stored == won
    assert [e.event_id for e in stored] == [e.event_id for e in winner.events]
    assert (await view_row(store, stream_id) or {})["state"] == winner.view.state
    assert [r["held"] for r in await balance_rows(store, stream_id)] == [50_000, 50_000]
    assert (await answer_row(store, scopes[0]) or {})["response_status"] == 201
    assert await answer_row(store, scopes[1]) is None


async def test_a_commit_under_a_key_with_a_live_answer_writes_nothing(store: Store) -> None:
    """A duplicate that decided while the first was still writing: its commit finds the first
    one's answer kept, and keeps nothing of its own (the retry then replays that answer)."""
    first_order, second_order, scope = (
        new_stream_id("ord"),
        new_stream_id("ord"),
        new_stream_id("scope"),
    )
    await commit(store, make_commit(first_order, 0, new_events(2), answer=answer(scope)))

    duplicate = make_commit(
        second_order, 0, new_events(2), balances=held(second_order, 2, 50_000),
        answer=answer(scope, status=202),
    )  # fmt: skip
    with pytest.raises(ConcurrencyError):
        await commit(store, duplicate)

    assert await store.stream(second_order) == []
    assert await view_row(store, second_order) is None
    assert await balance_rows(store, second_order) == []
    assert (await answer_row(store, scope) or {})["response_status"] == 201
    async with store.command() as session:
        await session.save_answer(answer(scope, status=200))  # nor does a no-op's answer
    assert (await answer_row(store, scope) or {})["response_status"] == 201


async def test_an_expired_answer_gives_way_to_a_new_one(store: Store) -> None:
    stream_id, scope = new_stream_id("ord"), new_stream_id("scope")
    async with store.command() as session:
        await session.save_answer(answer(scope, status=200, age=timedelta(days=2)))
    async with store.command() as session:
        assert await session.hold_key(scope, "key-1", datetime.now(UTC), wait_seconds=0) is None

    await commit(store, make_commit(stream_id, 0, new_events(2), answer=answer(scope)))

    assert (await answer_row(store, scope) or {})["response_status"] == 201


async def test_holding_a_key_answers_what_is_kept_under_it(store: Store) -> None:
    scope = new_stream_id("scope")
    async with store.command() as session:
        assert await session.hold_key(scope, "key-1", datetime.now(UTC), wait_seconds=0) is None
        await session.save_answer(answer(scope, status=200, body=b'{"id": 1}'))
    async with store.command() as session:
        found = await session.hold_key(scope, "key-1", datetime.now(UTC), wait_seconds=0)
    assert found is not None
    assert (found.body_hash, found.status, found.response_status, found.response_body) == (
        "hash", "done", 200, '{"id": 1}',
    )  # fmt: skip
    assert found.response_headers == {"etag": '"2"'}


@pytest.mark.postgres_only
async def test_one_session_at_a_time_holds_a_key(store: Store) -> None:
    """PostgreSQL runs no transaction around a command's read and write, so a session advisory
    lock gives duplicates their turns; it goes when the session ends."""
    scope, at = new_stream_id("scope"), datetime.now(UTC)
    async with store.command() as first:
        assert await first.hold_key(scope, "key-1", at, wait_seconds=0) is None
        async with store.command() as second:
            with pytest.raises(KeyBusy):
                await second.hold_key(scope, "key-1", at, wait_seconds=0.2)
            assert await second.hold_key(scope, "key-2", at, wait_seconds=0) is None
        waiting = asyncio.create_task(_hold_after(store, scope, at))
        await asyncio.sleep(0.2)
        assert not waiting.done(), "a duplicate waits for the session holding the key"
        await first.save_answer(answer(scope, status=200))
    found = await asyncio.wait_for(waiting, 5)
    assert found is not None
    assert found.response_status == 200


async def _hold_after(store: Store, scope: str, at: datetime) -> Any:
    async with store.command() as session:
        return await session.hold_key(scope, "key-1", at, wait_seconds=5)


@pytest.mark.postgres_only
async def test_a_written_commit_releases_the_key_in_its_own_statement(store: Store) -> None:
    """The unlock rides in the write (one round trip fewer); a refused write keeps the lock
    until the session ends, so a duplicate never decides beside a write that may still land."""
    written, refused, scope, at = (
        new_stream_id("ord"),
        new_stream_id("ord"),
        new_stream_id("scope"),
        datetime.now(UTC),
    )
    async with store.command() as first:
        assert await first.hold_key(scope, "key-1", at, wait_seconds=0) is None
        await first.commit(make_commit(written, 0, new_events(2), answer=answer(scope)))
        assert cast(PostgresSession, first).held_lock is None
        async with store.command() as duplicate:
            found = await duplicate.hold_key(scope, "key-1", at, wait_seconds=0)
        assert found is not None
        assert found.response_status == 201

    other = new_stream_id("scope")
    async with store.command() as first:
        assert await first.hold_key(other, "key-1", at, wait_seconds=0) is None
        with pytest.raises(ConcurrencyError):
            await first.commit(make_commit(refused, 1, new_events(1), answer=answer(other)))
        async with store.command() as duplicate:
            with pytest.raises(KeyBusy):
                await duplicate.hold_key(other, "key-1", at, wait_seconds=0)
    async with store.command() as later:
        assert await later.hold_key(other, "key-1", at, wait_seconds=0) is None


async def test_holding_a_key_with_the_snapshot_reads_the_order_as_a_plain_snapshot(
    store: Store,
) -> None:
    """``snapshot_of``: the snapshot read with the key's turn is the order's row, or None for
    an order with no row; with an answer kept under the key there is nothing to read."""
    stream_id, missing, scope = new_stream_id("ord"), new_stream_id("ord"), new_stream_id("scope")
    await commit(store, make_commit(stream_id, 0, new_events(2)))
    async with store.command() as session:
        plain = await session.snapshot(stream_id)
    assert plain is not None
    at = datetime.now(UTC)
    async with store.command() as session:
        assert await session.hold_key(scope, "k", at, wait_seconds=0, snapshot_of=stream_id) is None
        assert await session.snapshot(stream_id) == plain
        assert await session.snapshot(stream_id) == plain  # and again, read afresh
    async with store.command() as session:
        assert await session.hold_key(scope, "m", at, wait_seconds=0, snapshot_of=missing) is None
        assert await session.snapshot(missing) is None
    async with store.command() as session:
        await session.save_answer(answer(scope, status=200))
    async with store.command() as session:
        found = await session.hold_key(scope, "key-1", at, wait_seconds=0, snapshot_of=stream_id)
        assert found is not None
        assert found.response_status == 200


@pytest.mark.postgres_only
async def test_the_key_and_the_snapshot_take_one_round_trip(store: Store) -> None:
    """A keyed command on an order the process does not remember: its turn on the key and its
    snapshot in one statement, so the write is the second round trip, not the third."""
    stream_id, scope = new_stream_id("ord"), new_stream_id("scope")
    await commit(store, make_commit(stream_id, 0, new_events(2)))
    plain = await store.snapshot(stream_id)
    statements: list[str] = []

    def logged(record: Any) -> None:
        statements.append(record.query)

    async with store.command() as session:
        connection = cast(PostgresSession, session).connection
        connection.add_query_logger(logged)
        try:
            at = datetime.now(UTC)
            assert (
                await session.hold_key(scope, "k", at, wait_seconds=0, snapshot_of=stream_id)
                is None
            )
            document = await session.snapshot(stream_id)
            await session.commit(make_commit(stream_id, 2, new_events(1), answer=answer(scope)))
        finally:
            connection.remove_query_logger(logged)
    assert plain is not None
    assert document == plain
    assert len(statements) == 2, statements
