"""Annotated dependency aliases shared by the routers."""

import base64
import re
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Query, Request

from escrow_api.problems import ApiError
from escrow_core.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x20-\x7e]+$",  # printable ASCII, e.g. a UUID
        description="Retry safely: the same key and body replay the first response (kept 24 h).",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=40,
        description='Run only if the order is at this ETag, e.g. "7".',
    ),
]
# Our ids are a prefix and 1-64 letters and digits; anything else names nothing.
_WELL_FORMED_ID = re.compile(r"[a-z]{3}_[A-Za-z0-9]{1,64}")
Limit = Annotated[int, Query(ge=1, le=100, description="Page size, 1-100.")]
Cursor = Annotated[
    str | None,
    Query(max_length=500, description="The next_cursor of the previous page."),
]


def well_formed(identifier: str, prefix: str) -> bool:
    """Could ``identifier`` be one of our ids with ``prefix``? (Junk is not looked up.)"""
    return identifier.startswith(f"{prefix}_") and _WELL_FORMED_ID.fullmatch(identifier) is not None


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    try:
        return orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError) as error:
        raise bad_cursor() from error


def bad_cursor() -> ApiError:
    return ApiError(
        422,
        "invalid_cursor",
        "The cursor is not one this list gave out.",
        errors=[{"field": "cursor", "in": "query", "code": "invalid", "message": "unknown cursor"}],
    )


def parse_if_match(value: str | None) -> int | None:
    """The version an If-Match names; None for no header or ``*``."""
    if value is None or value.strip() == "*":
        return None
    tag = value.strip().removeprefix("W/").strip('"')
    if not (tag.isascii() and tag.isdigit()):
        raise ApiError(412, "precondition_failed", 'If-Match must be an order ETag such as "7".')
    return int(tag)
