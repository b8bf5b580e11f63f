"""The sandbox clock (only with ESCROW_SANDBOX=true): move the service's time forward.

The offset is kept in the database, so every process sharing it (servers, workers) sees the
new time at once: a client can watch an inspection window run out in seconds. Without sandbox
mode this router is not mounted at all, so the route answers 404.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, StrictInt

from escrow_api import responses as r
from escrow_api.deps import WriteDep
from escrow_api.jsonresponse import JSONResponse
from escrow_api.schemas.common import RequestBody
from escrow_core.application import sandbox
from escrow_core.application.sandbox import ClockMoved

router = APIRouter(prefix="/v1/sandbox", tags=["sandbox"])
TEN_YEARS = 10 * 366 * 86_400


class AdvanceClockRequest(RequestBody):
    advance_seconds: Annotated[StrictInt, Field(ge=1, le=TEN_YEARS, examples=[1_296_000])]


class SandboxClock(BaseModel):
    offset_seconds: int = Field(description="How far the service clock is ahead of the wall.")
    now: datetime = Field(description="The service clock after the move.")


def _moved(moved: ClockMoved) -> tuple[Response, None]:
    return JSONResponse({"offset_seconds": moved.offset_seconds, "now": moved.now}), None


@router.post(
    "/clock",
    operation_id="advance_sandbox_clock",
    response_model=SandboxClock,
    responses=r.errors(400, 401, 403, 409, 413, 415, 422),
)
async def advance_sandbox_clock(body: AdvanceClockRequest, call: WriteDep) -> Response:
    """Move the service clock forward for every process on this database (admin)."""
    seconds = body.advance_seconds
    return await call.once(
        lambda keep: sandbox.advance_clock(call.runtime, call.principal, seconds, keep), _moved
    )
