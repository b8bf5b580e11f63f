"""Idempotency-Key answers are kept 24 h and then deleted by the worker's purge."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from escrow_core.idempotency import purge_expired
from escrow_core.store import Database, schema
from support.events import new_stream_id


async def keep(database: Database, scope: str, key: str, expires_at: datetime) -> None:
    async with database.transaction() as conn:
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


async def keys_of(database: Database, scope: str) -> set[str]:
    t = schema.idempotency_keys
    async with database.read() as conn:
        return set((await conn.execute(sa.select(t.c.key).where(t.c.scope == scope))).scalars())


async def test_the_purge_deletes_expired_answers_and_keeps_the_rest(database: Database) -> None:
    now = datetime.now(UTC)
    scope = new_stream_id("scope")
    await keep(database, scope, "expired-1", now - timedelta(seconds=1))
    await keep(database, scope, "expired-2", now - timedelta(hours=3))
    await keep(database, scope, "kept", now + timedelta(hours=23))

    await purge_expired(database, now)

    assert await keys_of(database, scope) == {"kept"}


async def test_the_purge_goes_in_batches(fresh_database: Database) -> None:
    database = fresh_database
    now = datetime.now(UTC)
    scope = new_stream_id("scope")
    for n in range(3):
        await keep(database, scope, f"expired-{n}", now - timedelta(minutes=n + 1))

    assert await purge_expired(database, now, limit=2) == 2
    assert len(await keys_of(database, scope)) == 1
