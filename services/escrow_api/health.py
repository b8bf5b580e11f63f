"""Liveness and readiness."""

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from escrow_api import responses as r
from escrow_core.application.runtime import Runtime

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
async def readyz(request: Request) -> JSONResponse:
    """Readiness: the database answers and its schema is at the latest migration."""
    runtime: Runtime = request.app.state.runtime
    try:
        current = await runtime.store.schema_is_current()
    except Exception:  # any failure to reach the database means not ready
        return _not_ready("database_unreachable", "The database does not answer.")
    if not current:
        return _not_ready("schema_outdated", "The database schema is not at the latest migration.")
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
