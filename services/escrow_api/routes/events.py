"""The global event feed: every event after a cursor that the caller may see."""

from fastapi import APIRouter, Response

from escrow_api import responses as r
from escrow_api.auth import CurrentPrincipal
from escrow_api.deps import Cursor, Limit, RuntimeDep, bad_cursor, decode_cursor, encode_cursor
from escrow_api.jsonresponse import JSONResponse
from escrow_api.presenters import event_json
from escrow_api.schemas.common import Page
from escrow_api.schemas.orders import Event
from escrow_core.projections import order_view
from escrow_core.store import LOG_START, Checkpoint, RecordedEvent

router = APIRouter(prefix="/v1/events", tags=["events"])

# A party's events are a thin slice of a busy log: one request reads at most this many
# events looking for them, then answers what it found with a cursor to go on from.
SCAN_BUDGET = 5000
READ_BATCH = 500


@router.get(
    "", operation_id="list_events", response_model=Page[Event], responses=r.errors(401, 422)
)
async def list_events(
    principal: CurrentPrincipal, runtime: RuntimeDep, limit: Limit = 20, cursor: Cursor = None
) -> Response:
    """Events in commit order after ``cursor`` (an empty page may still have more)."""
    after = LOG_START
    if cursor is not None:
        raw = decode_cursor(cursor)
        if not (
            isinstance(raw, list)
            and len(raw) == 2
            and all(isinstance(v, int) and 0 <= v < 2**63 for v in raw)
        ):
            raise bad_cursor()
        after = Checkpoint(*raw)
    found: list[dict[str, object]] = []
    scanned = 0
    exhausted = False
    async with runtime.database.read() as conn:
        while len(found) < limit and scanned < SCAN_BUDGET:
            batch = await runtime.store.read_log(conn, after, limit=READ_BATCH)
            if not batch:
                exhausted = True
                break
            owners = await order_view.parties_of(conn, {e.stream_id for e in batch})
            for event in batch:
                after = event.checkpoint
                scanned += 1
                parties = owners.get(event.stream_id) or _owner_of(event)
                if principal.sees_everything or any(map(principal.can_see_party, parties)):
                    found.append(event_json(event))
                    if len(found) == limit:
                        break
            if len(batch) < READ_BATCH and after == batch[-1].checkpoint:
                exhausted = True  # read to the end of the log
                break
    # next_cursor is always given: a consumer polls the feed from it for what comes next.
    return JSONResponse(
        {"data": found, "next_cursor": encode_cursor(list(after)), "has_more": not exhausted}
    )


def _owner_of(event: RecordedEvent) -> tuple[str, ...]:
    """A non-order event's party (a disabled webhook endpoint's owner), if it has one."""
    owner = event.data.get("owner_party_id")
    return (owner,) if isinstance(owner, str) else ()
