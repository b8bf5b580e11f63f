"""The dates and times the service takes in: the years 2000 to 2999, nothing outside.

Every date or date-time a client hands in (request bodies, list cursors, the sandbox clock)
is held to this span where it comes in. Python's dates end at year 9999 and begin at year 1,
so one near either end overflows as soon as a deadline is added to it or its offset is taken
off: without the bound that is a 500, not an answer.
"""

from datetime import UTC, date, datetime
from typing import TypeVar

FIRST_YEAR = 2000
LAST_YEAR = 2999
OUT_OF_SPAN = f"dates and times run from the year {FIRST_YEAR} to {LAST_YEAR}"

_START = datetime(FIRST_YEAR, 1, 1, tzinfo=UTC)
_END = datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC)  # the first moment after the span

D = TypeVar("D", bound=date)


def within_span(value: date) -> bool:
    """Whether ``value`` is in the span: a date by its year, a date-time (with a UTC offset)
    both as written and in UTC."""
    # The year as written is checked first: moving year 1 or 9999 to UTC can overflow itself.
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        return False
    if isinstance(value, datetime):
        return value.utcoffset() is not None and _START <= value < _END
    return True


def in_span(value: D) -> D:
    """``value`` if it is within the span; ValueError (a validation error) if not."""
    if not within_span(value):
        raise ValueError(OUT_OF_SPAN)
    return value
