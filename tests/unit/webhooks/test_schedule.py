"""The retry schedule, its +-20% jitter, and Retry-After."""

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from escrow_core.settings import DEFAULT_RETRY_SCHEDULE, Settings
from escrow_core.webhooks.schedule import (
    MAX_RETRY_AFTER_SECONDS,
    jittered,
    next_delay,
    parse_retry_after,
)

HOUR = 3600


def test_the_default_schedule_is_the_contract() -> None:
    assert DEFAULT_RETRY_SCHEDULE == (
        0, 5, 5 * 60, 30 * 60, 2 * HOUR, 5 * HOUR, 10 * HOUR, 14 * HOUR, 20 * HOUR, 24 * HOUR,
    )  # fmt: skip
    assert Settings().webhook_retry_schedule == DEFAULT_RETRY_SCHEDULE


def test_the_schedule_setting_takes_seconds_as_a_list() -> None:
    settings = Settings(webhook_retry_schedule="[0, 0.2,1, 2]")  # type: ignore[arg-type]

    assert settings.webhook_retry_schedule == (0.0, 0.2, 1.0, 2.0)
    with pytest.raises(ValueError, match="retry schedule"):
        Settings(webhook_retry_schedule="")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retry schedule"):
        Settings(webhook_retry_schedule="0,-5")  # type: ignore[arg-type]


@pytest.mark.parametrize("attempts_made", range(len(DEFAULT_RETRY_SCHEDULE)))
def test_each_step_waits_its_delay_within_20_percent(attempts_made: int) -> None:
    rng = random.Random(attempts_made)
    base = DEFAULT_RETRY_SCHEDULE[attempts_made]

    delays = [next_delay(DEFAULT_RETRY_SCHEDULE, attempts_made, rng=rng) for _ in range(200)]

    assert all(d is not None and 0.8 * base <= d <= 1.2 * base for d in delays)
    if base:
        assert max(d for d in delays if d) - min(d for d in delays if d) > 0.2 * base  # spread


def test_after_every_step_the_delivery_has_finally_failed() -> None:
    assert next_delay(DEFAULT_RETRY_SCHEDULE, len(DEFAULT_RETRY_SCHEDULE)) is None
    assert next_delay((0, 1), 2) is None
    assert next_delay((0, 1), 1) is not None


def test_jitter_reaches_both_ends() -> None:
    class Edge(random.Random):
        def __init__(self, value: float) -> None:
            super().__init__()
            self.value = value

        def uniform(self, a: float, b: float) -> float:
            return a if self.value == 0 else b

    assert jittered(100, Edge(0)) == pytest.approx(80)
    assert jittered(100, Edge(1)) == pytest.approx(120)


def test_retry_after_is_honoured_when_it_asks_for_longer() -> None:
    rng = random.Random(1)

    assert next_delay(DEFAULT_RETRY_SCHEDULE, 1, retry_after=600, rng=rng) == 600
    shorter = next_delay(DEFAULT_RETRY_SCHEDULE, 2, retry_after=1, rng=rng)
    assert shorter is not None
    assert shorter >= 0.8 * 300  # the schedule's longer wait stands


def test_retry_after_cannot_park_a_delivery_for_ever() -> None:
    delay = next_delay((0, 5), 1, retry_after=365 * 86400)

    assert delay == MAX_RETRY_AFTER_SECONDS


def test_retry_after_does_not_grant_attempts_beyond_the_schedule() -> None:
    assert next_delay((0, 5), 2, retry_after=10) is None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("120", 120.0), ("0", 0.0), (" 7 ", 7.0), (None, None), ("soon", None), ("-5", None)],
)
def test_retry_after_in_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    earlier = format_datetime(now - timedelta(seconds=90), usegmt=True)

    assert parse_retry_after(later, now) == 90.0
    assert parse_retry_after(earlier, now) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == 0.0
