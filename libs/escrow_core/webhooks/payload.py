"""The body of a webhook: ``{id, type, created_at, order_id, sequence, position, data}``.

The same fields, with the same values, as the event in the API's feed, so a subscriber can
match a webhook with ``GET /v1/events``. A body must stay under 64 KB; an event too large for
that is sent with ``data: null`` and ``data_truncated: true`` (read it from the API).
"""

from datetime import datetime
from typing import Any

import orjson

from escrow_core.store import RecordedEvent

MAX_BODY_BYTES = 64 * 1024 - 1
ORDER_STREAM_PREFIX = "ord_"


def event_id(raw: Any) -> str:
    """The public id ``evt_<hex>`` of a stored event id (the ``webhook-id`` header)."""
    return f"evt_{raw.hex}"


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def document(event: RecordedEvent) -> dict[str, Any]:
    """The body's fields for ``event`` (its data upcast, as every reader sees it)."""
    fields = dict(event.data)
    created_at = fields.pop("at", None) or _iso(event.recorded_at)
    stream_id = event.stream_id
    return {
        "id": event_id(event.event_id),
        "type": event.type,
        "created_at": created_at,
        "order_id": stream_id if stream_id.startswith(ORDER_STREAM_PREFIX) else None,
        "sequence": event.version,
        "position": event.position,
        "data": fields,
    }


def encode(doc: dict[str, Any]) -> bytes:
    """The bytes sent (and signed): compact JSON, under ``MAX_BODY_BYTES``."""
    body = orjson.dumps(doc)
    if len(body) > MAX_BODY_BYTES:
        body = orjson.dumps({**doc, "data": None, "data_truncated": True})
    return body
