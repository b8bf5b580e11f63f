"""The span of dates and times the service takes in: the years 2000-2999."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from escrow_core.dates import in_span, within_span

EAST = timezone(timedelta(hours=14))
WEST = timezone(timedelta(hours=-14))


@pytest.mark.parametrize(
    "value",
    [
        date(2000, 1, 1),
        date(2999, 12, 31),
        datetime(2000, 1, 1, tzinfo=UTC),
        datetime(2999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2999, 12, 31, 9, 0, tzinfo=WEST),  # 23:00 UTC
        datetime(2000, 1, 1, 14, 0, tzinfo=EAST),  # midnight UTC
    ],
)
def test_the_span_takes_the_years_2000_to_2999(value: date) -> None:
    assert within_span(value)
    assert in_span(value) is value


@pytest.mark.parametrize(
    "value",
    [
        date(1, 1, 1),
        date(1999, 12, 31),
        date(3000, 1, 1),
        date(9999, 12, 31),
        datetime(1, 1, 1, tzinfo=EAST),  # year 0 in UTC: converting it would overflow
        datetime(9999, 12, 31, 23, 59, tzinfo=WEST),  # year 10000 in UTC
        datetime(9999, 12, 31, 23, 59, tzinfo=EAST),
        datetime(2999, 12, 31, 23, 0, tzinfo=WEST),  # year 3000 in UTC
        datetime(2000, 1, 1, 0, 30, tzinfo=EAST),  # year 1999 in UTC
        datetime(2026, 1, 1),  # no offset: no moment at all
    ],
)
def test_outside_the_span_is_refused_without_overflowing(value: date) -> None:
    assert not within_span(value)
    with pytest.raises(ValueError, match="2000 to 2999"):
        in_span(value)
