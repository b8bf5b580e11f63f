"""Shared field types and bounds for request bodies.

Bounds (documented in the OpenAPI schema and the README):
- amounts are integers in the order currency's minor unit, 1 to 10^12 (refunds 0 to 10^12);
- an order's total may not exceed 10^12;
- short texts 1-200 characters, long texts up to 5,000;
- at most 100 items, 10 tranches and 20 evidence items;
- dates and date-times in the years 2000-2999 (``escrow_core.dates``).
"""

import re
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
)

from escrow_core.currency import is_currency
from escrow_core.dates import in_span

MAX_AMOUNT = 10**12

Amount = Annotated[StrictInt, Field(ge=1, le=MAX_AMOUNT, examples=[125000])]
RefundAmount = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT, examples=[30000])]
# No control characters but tab and line breaks: PostgreSQL cannot even store NUL.
NO_CONTROL_CHARACTERS = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
ShortText = Annotated[StrictStr, Field(min_length=1, max_length=200, pattern=NO_CONTROL_CHARACTERS)]
OptionalText = Annotated[StrictStr, Field(max_length=5000, pattern=NO_CONTROL_CHARACTERS)]
LongText = Annotated[StrictStr, Field(min_length=1, max_length=5000, pattern=NO_CONTROL_CHARACTERS)]
PartyId = Annotated[
    StrictStr, Field(pattern=r"^pty_[A-Za-z0-9]{1,64}$", examples=["pty_3kTMd9cQx7b2Lp0aW4yZ1uV8"])
]


def _currency(code: str) -> str:
    if not is_currency(code):
        raise ValueError("not an ISO 4217 currency code")
    return code


Currency = Annotated[
    StrictStr,
    Field(pattern=r"^[A-Z]{3}$", examples=["USD"], description="ISO 4217 code"),
    AfterValidator(_currency),
]


# Only the ISO 8601 text forms: no unix times, no date-times for dates, no week dates.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}.*")


def _iso_date(value: Any) -> Any:
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("expected an ISO 8601 date, YYYY-MM-DD")
    return value


def _iso_datetime(value: Any) -> Any:
    if not isinstance(value, str) or not _ISO_DATETIME.fullmatch(value):
        raise ValueError("expected an ISO 8601 date-time with a UTC offset")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("the date-time needs a UTC offset, e.g. 2026-01-31T12:00:00Z")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date), AfterValidator(in_span)]
IsoDateTime = Annotated[
    datetime, BeforeValidator(_iso_datetime), AfterValidator(_aware), AfterValidator(in_span)
]


class RequestBody(BaseModel):
    """Unknown fields are refused: a typo must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


class EmptyBody(RequestBody):
    """No fields: the command needs none."""


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a list; pass ``next_cursor`` as ``cursor`` for the next one."""

    data: list[T]
    next_cursor: str | None
    has_more: bool
