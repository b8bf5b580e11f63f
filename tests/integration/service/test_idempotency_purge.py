"""Idempotency-Key answers are kept 24 h and then deleted by the worker's purge."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from escrow_core.application.idempotency import purge_expired
from escrow_core.store import Store, open_store, schema
from support.events import new_stream_id


async def keep(store: Store, scope: str, key: str, expires_at: datetime) -> None:
    async with store.transaction() as conn:
        await conn.execute(
            schema.idempotency_keys.insert().values(
                scope=scope,
                key=key,
                body_hash="hash",
                status="done",
                response_status=200,
                response_body="{}",
                created_at=expires_at - timedelta(hours=24),
                expires_at=expires_at,
            )
        )


async def keys_of(store: Store, scope: str) -> set[str]:
    t = schema.idempotency_keys
    async with store.read() as conn:
        return set((await conn.execute(sa.select(t.c.key).where(t.c.scope == scope))).scalars())


async def test_the_purge_deletes_expired_answers_and_keeps_the_rest(fresh_store: Store) -> None:
    now = datetime.now(UTC)
    scope = new_stream_id("scope")
    await keep(fresh_store, scope, "expired-1", now - timedelta(seconds=1))
    await keep(fresh_store, scope, "expired-2", now - timedelta(hours=3))
    await keep(fresh_store, scope, "kept", now + timedelta(hours=23))

    assert await purge_expired(fresh_store) == 2

    assert await keys_of(fresh_store, scope) == {"kept"}


async def test_the_purge_goes_in_batches(fresh_store: Store) -> None:
    now = datetime.now(UTC)
    scope = new_stream_id("scope")
    for n in range(3):
        await keep(fresh_store, scope, f"expired-{n}", now - timedelta(minutes=n + 1))

    assert await purge_expired(fresh_store, limit=2) == 2
    assert len(await keys_of(fresh_store, scope)) == 1
    assert await purge_expired(fresh_store, limit=2) == 1
    assert await keys_of(fresh_store, scope) == set()


async def test_the_purge_goes_by_the_wall_clock_not_the_sandbox_clock(
    fresh_store: Store,
) -> None:
    """Records are kept 24 h of real time, whatever a sandbox clock moved forward says."""
    sandboxed = open_store(fresh_store.url, sandbox=True)
    try:
        await sandboxed.advance_clock(7 * 24 * 3600)
        scope = new_stream_id("scope")
        await keep(sandboxed, scope, "kept", datetime.now(UTC) + timedelta(hours=1))

        assert await purge_expired(sandboxed) == 0
        assert await keys_of(sandboxed, scope) == {"kept"}
    finally:
        await sandboxed.dispose()
