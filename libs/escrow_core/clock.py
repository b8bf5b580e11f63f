"""The service clock: the wall clock, moved forward by the sandbox offset in sandbox mode.

The offset lives in the database (``service_clock``) so every process sharing it agrees.
"""

from datetime import UTC, datetime, timedelta

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

_OFFSET = sa.text("SELECT offset_seconds FROM service_clock WHERE id = 1")


class Clock:
    def __init__(self, *, sandbox: bool) -> None:
        self.sandbox = sandbox

    async def now(self, conn: AsyncConnection | asyncpg.Connection) -> datetime:
        """The service clock, reading the sandbox offset through ``conn`` (SQLAlchemy, or a
        raw asyncpg connection on the hot path)."""
        wall = datetime.now(UTC)
        if not self.sandbox:
            return wall
        if isinstance(conn, AsyncConnection):
            offset = (await conn.execute(_OFFSET)).scalar_one_or_none()
        else:
            offset = await conn.fetchval(str(_OFFSET))
        return wall + timedelta(seconds=offset or 0)

    async def advance(self, conn: AsyncConnection, seconds: int) -> int:
        """Move the sandbox clock forward; returns the new total offset in seconds."""
        if not self.sandbox:
            raise RuntimeError("the clock moves only in sandbox mode")
        result = await conn.execute(
            sa.text(
                "UPDATE service_clock SET offset_seconds = offset_seconds + :s "
                "WHERE id = 1 RETURNING offset_seconds"
            ),
            {"s": seconds},
        )
        return int(result.scalar_one())
