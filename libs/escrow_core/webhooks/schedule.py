"""When to try a delivery again: the retry schedule with +-20% jitter, and ``Retry-After``.

``schedule[n]`` is the wait before attempt ``n + 1`` (the default: 0, 5 s, 5 min, 30 min, 2 h,
5 h, 10 h, 14 h, 20 h, 24 h); once every step is used the delivery has finally failed.
A ``Retry-After`` (seconds or an HTTP date) is honoured when it asks for a longer wait than the
schedule, up to ``MAX_RETRY_AFTER_SECONDS`` so a receiver cannot park a delivery for ever.
"""

import random
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

JITTER = 0.2
MAX_RETRY_AFTER_SECONDS = 24 * 3600.0


def jittered(delay: float, rng: random.Random | None = None) -> float:
    """``delay`` moved by up to 20% either way."""
    return delay * (rng or random).uniform(1 - JITTER, 1 + JITTER)


def next_delay(
    schedule: Sequence[float],
    attempts_made: int,
    *,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until the next attempt after ``attempts_made`` attempts; None: no more tries."""
    if attempts_made >= len(schedule):
        return None
    delay = jittered(schedule[attempts_made], rng)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
    return delay


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date; None if absent
    or unreadable (then the schedule alone decides)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
