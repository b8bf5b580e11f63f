"""SQLAlchemy engine options both adapters share."""

from typing import Any

import orjson


def _dump_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def engine_options(pool_size: int) -> dict[str, Any]:
    return {
        "pool_size": pool_size,
        # No overflow: a burst waits for a pooled connection (a fraction of a millisecond)
        # rather than opening and closing new ones (a TLS negotiation and a fresh statement
        # cache each time, which made a loaded server slower than a queued one).
        "max_overflow": 0,
        "json_serializer": _dump_json,
        "json_deserializer": orjson.loads,
    }
