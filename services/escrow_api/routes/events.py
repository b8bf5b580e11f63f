"""The global event feed: every event after a cursor that the caller may see."""

from fastapi import APIRouter, Response

from escrow_api import responses as r
from escrow_api.auth import CurrentPrincipal
from escrow_api.deps import Cursor, Limit, RuntimeDep
from escrow_api.presenters import event_json, page_response
from escrow_api.schemas.common import Page
from escrow_api.schemas.orders import Event
from escrow_core.application import feed

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.get(
    "", operation_id="list_events", response_model=Page[Event], responses=r.errors(401, 422)
)
async def list_events(
    principal: CurrentPrincipal, runtime: RuntimeDep, limit: Limit = 20, cursor: Cursor = None
) -> Response:
    """Events in commit order after ``cursor`` (an empty page may still have more)."""
    page = await feed.events(runtime, principal, limit=limit, cursor=cursor)
    return page_response(page, event_json)
