"""The global event feed: every event after a cursor that the caller may see."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from escrow_api import responses as r
from escrow_api.deps import CallerDep, Cursor, Limit
from escrow_api.presenters import event_json, page_response
from escrow_api.schemas.common import Page
from escrow_api.schemas.events import Event
from escrow_core.application import feed

router = APIRouter(prefix="/v1/events", tags=["events"])
MAX_TYPES = 50

EventTypes = Annotated[
    list[Annotated[str, Query(max_length=100)]] | None,
    Query(
        alias="type",
        max_length=MAX_TYPES,
        description="Only events of these types (repeat the parameter for several).",
    ),
]
OrderFilter = Annotated[
    str | None,
    Query(max_length=100, pattern=r"^ord_", description="Only the events of this order."),
]
From = Annotated[
    Literal["head"] | None,
    Query(
        alias="from",
        description="head: an empty page whose next_cursor is the log's head now, to tail "
        "from now on (no cursor with it).",
    ),
]


@r.listing(router, "", "list_events", Page[Event])
async def list_events(
    call: CallerDep,
    limit: Limit = 20,
    cursor: Cursor = None,
    event_type: EventTypes = None,
    order_id: OrderFilter = None,
    from_: From = None,
) -> Response:
    """Events in commit order after ``cursor`` (an empty page may still have more), filtered by
    type and order; ``from=head`` starts from now."""
    page = await feed.events(
        call.runtime,
        call.principal,
        limit=limit,
        cursor=cursor,
        types=event_type or (),
        order_id=order_id,
        from_head=from_ == "head",
    )
    return page_response(page, event_json)
