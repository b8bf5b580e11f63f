"""The FastAPI application: built by ``create_app``; the engine is made in the lifespan."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from escrow_api import health
from escrow_core.runtime import open_runtime
from escrow_core.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(settings) as runtime:
            app.state.runtime = runtime
            yield

    app = FastAPI(
        title="Escrow API",
        version="1.0.0",
        summary="Trade-Assurance-style escrow for cross-border B2B orders.",
        lifespan=lifespan,
    )
    app.include_router(health.router)
    return app
