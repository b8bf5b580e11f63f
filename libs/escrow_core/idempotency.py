"""The answers kept for Idempotency-Key, stored atomically with the command that made them.

The HTTP layer claims a key, runs the command, and the service stores the answer in the same
atomic write as the command's events (``Remember``); a refusal is stored on its own. Answers
are kept 24 h; the worker deletes them after (``purge_expired``).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.domain.order import OrderState
from escrow_core.store import Database
from escrow_core.store.schema import idempotency_keys


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """An HTTP answer as replayed: status, body and the headers worth replaying."""

    status: int
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Remember:
    """Keep the command's answer under (scope, key); ``answer`` renders it from the order as
    the command leaves it (before the write, so the write can carry it)."""

    scope: str
    key: str
    answer: Callable[[str, OrderState, datetime], StoredResponse]


async def save_response(
    conn: AsyncConnection, scope: str, key: str, response: StoredResponse
) -> None:
    c = idempotency_keys.c
    await conn.execute(
        idempotency_keys.update()
        .where(c.scope == scope, c.key == key)
        .values(
            status="done",
            response_status=response.status,
            response_body=response.body.decode(),
            response_headers=response.headers,
        )
    )


SAVE_RESPONSE_POSTGRESQL = """
UPDATE idempotency_keys SET status = 'done', response_status = $3, response_body = $4,
       response_headers = $5::jsonb
WHERE scope = $1 AND key = $2
"""


PURGE_BATCH = 1000


async def purge_expired(database: Database, now: datetime, *, limit: int = PURGE_BATCH) -> int:
    """Delete up to ``limit`` answers kept past their 24 h; returns how many went."""
    c = idempotency_keys.c
    expired = sa.select(c.scope, c.key).where(c.expires_at < now).limit(limit)
    async with database.transaction() as conn:
        result = await conn.execute(
            idempotency_keys.delete().where(sa.tuple_(c.scope, c.key).in_(expired))
        )
    return int(result.rowcount)
