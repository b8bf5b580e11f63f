"""The global event feed: every event after a cursor that the caller may see."""

from fastapi import APIRouter, Response

from escrow_api import responses as r
from escrow_api.deps import CallerDep, Cursor, Limit
from escrow_api.presenters import event_json, page_response
from escrow_api.schemas.common import Page
from escrow_api.schemas.events import Event
from escrow_core.application import feed

router = APIRouter(prefix="/v1/events", tags=["events"])


@r.listing(router, "", "list_events", Page[Event])
async def list_events(call: CallerDep, limit: Limit = 20, cursor: Cursor = None) -> Response:
    """Events in commit order after ``cursor`` (an empty page may still have more)."""
    page = await feed.events(call.runtime, call.principal, limit=limit, cursor=cursor)
    return page_response(page, event_json)
