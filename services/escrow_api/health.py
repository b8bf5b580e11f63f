"""Liveness and readiness."""

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from escrow_api import responses as r
from escrow_api.deps import RuntimeDep
from escrow_core.application import health

REASONS = {
    "database_unreachable": "The database does not answer.",
    "schema_outdated": "The database schema is not at the latest migration.",
}

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready"]


@router.get("/healthz", operation_id="get_health", response_model=Health)
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get(
    "/readyz", operation_id="get_readiness", response_model=Readiness, responses=r.errors(503)
)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Readiness: the database answers and its schema is at the latest migration."""
    reason = await health.not_ready(runtime)
    if reason is not None:
        return _not_ready(reason, REASONS[reason])
    return JSONResponse({"status": "ready"})


def _not_ready(code: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {
            "type": "about:blank",
            "title": "Not ready",
            "status": 503,
            "detail": detail,
            "code": code,
        },
        status_code=503,
        media_type="application/problem+json",
    )
