"""SQLAlchemy engine options both adapters share."""

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

# How long a request waits for a pooled connection before it is answered "unavailable".
POOL_TIMEOUT_SECONDS = 10


def _dump_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def engine_options(pool_size: int) -> dict[str, Any]:
    return {
        "pool_size": pool_size,
        # No overflow: a burst waits for a pooled connection (a fraction of a millisecond)
        # rather than opening and closing new ones (a TLS negotiation and a fresh statement
        # cache each time, which made a loaded server slower than a queued one).
        "max_overflow": 0,
        "pool_timeout": POOL_TIMEOUT_SECONDS,
        "json_serializer": _dump_json,
        "json_deserializer": orjson.loads,
    }


def replace_closed_connections(engine: AsyncEngine) -> AsyncEngine:
    """Check a pooled asyncpg connection out only if it is still open, else open a new one.

    After a database restart the pool holds connections the server has closed; asyncpg marks
    them closed as soon as the socket ends, so this costs no round trip (pool_pre_ping would
    cost one on every checkout).
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _still_open(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if record.driver_connection.is_closed():
            raise sa.exc.DisconnectionError("the server closed this pooled connection")

    return engine
