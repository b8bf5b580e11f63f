"""The service clock is the store's: the wall clock, plus the offset kept in the database when
the store runs in sandbox mode, read the same by ``Store.now`` and a command session's ``now``."""

from datetime import UTC, datetime, timedelta

import pytest

from escrow_core.store import Store, open_store

HOUR = 3600


async def test_a_sandbox_store_adds_the_offset_to_the_wall_clock(fresh_store: Store) -> None:
    sandboxed = open_store(fresh_store.url, sandbox=True)
    try:
        assert await sandboxed.advance_clock(HOUR) == HOUR
        assert await sandboxed.advance_clock(2 * HOUR) == 3 * HOUR
        async with sandboxed.transaction() as conn:
            assert await sandboxed.advance_clock(HOUR, conn) == 4 * HOUR

        before = datetime.now(UTC)
        from_store = await sandboxed.now()
        async with sandboxed.command() as session:
            from_session = await session.now()
        after = datetime.now(UTC)
    finally:
        await sandboxed.dispose()

    for moment in (from_store, from_session):
        assert moment.tzinfo is not None
        assert before + timedelta(hours=4) <= moment <= after + timedelta(hours=4)


async def test_a_store_outside_sandbox_mode_keeps_the_wall_clock(fresh_store: Store) -> None:
    sandboxed = open_store(fresh_store.url, sandbox=True)
    try:
        await sandboxed.advance_clock(24 * HOUR)
    finally:
        await sandboxed.dispose()

    before = datetime.now(UTC)
    from_store = await fresh_store.now()
    async with fresh_store.command() as session:
        from_session = await session.now()
    after = datetime.now(UTC)

    for moment in (from_store, from_session):
        assert before <= moment <= after
    with pytest.raises(RuntimeError, match="only in sandbox mode"):
        await fresh_store.advance_clock(HOUR)
