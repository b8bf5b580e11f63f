"""Every list pages the same way: ``limit`` + an opaque cursor, answering
``{data, next_cursor, has_more}``.

A cursor is the sort key of the last item of the page before, as URL-safe base64 of JSON;
each list says how to read its key back (``parse``) and refuses a cursor it did not give out.
A list either fetches ``limit + 1`` rows after the key (one more says there are more), or
scans a log (``Scan``): then the cursor is where the scan stopped, given even at the end, so
a consumer can poll from it for what comes next.
"""

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson

from escrow_core.application.errors import Invalid
from escrow_core.dates import within_span

T = TypeVar("T")
K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
    has_more: bool


@dataclass(frozen=True, slots=True)
class Scan(Generic[T]):
    """What a scan of a log found (up to ``limit + 1`` items), and where it stopped."""

    items: list[T]
    stopped_at: Any  # the key of the last entry read, visible or not
    exhausted: bool  # read to the end of the log


class BadCursor(ValueError):
    """A cursor this list did not give out (``parse`` raises it, or any ValueError)."""


def encode_cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def decode_cursor(cursor: str, parse: Callable[[Any], K]) -> K:
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return parse(raw)
    except (ValueError, TypeError, KeyError, IndexError, orjson.JSONDecodeError) as error:
        raise Invalid(
            "invalid_cursor",
            "The cursor is not one this list gave out.",
            field="cursor",
            where="query",
            reason="invalid",
            message="unknown cursor",
        ) from error


async def paginate(
    fetch: Callable[[K | None, int], Awaitable[list[T] | Scan[T]]],
    *,
    limit: int,
    cursor: str | None,
    parse: Callable[[Any], K],
    key: Callable[[T], Any],
) -> Page[T]:
    """The page after ``cursor``: ``fetch(after, limit + 1)`` gives the rows after the key,
    ``key(row)`` is a row's key as the next cursor carries it."""
    after = None if cursor is None else decode_cursor(cursor, parse)
    found = await fetch(after, limit + 1)
    rows = found.items if isinstance(found, Scan) else found
    page, has_more = rows[:limit], len(rows) > limit
    if has_more:
        return Page(page, encode_cursor(key(page[-1])), True)
    if isinstance(found, Scan):
        return Page(page, encode_cursor(found.stopped_at), not found.exhausted)
    return Page(page, None, False)


def require(condition: bool) -> None:
    """For ``parse`` functions: refuse the cursor unless ``condition`` holds."""
    if not condition:
        raise BadCursor("not a cursor of this list")


def cursor_time(raw: Any) -> datetime:
    """For ``parse`` functions: a date-time in a cursor, refused unless it has a UTC offset
    and lies in the span every date the service takes in does (``escrow_core.dates``)."""
    require(isinstance(raw, str))
    moment = datetime.fromisoformat(raw)
    require(within_span(moment))
    return moment
