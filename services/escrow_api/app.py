"""The FastAPI application: built by ``create_app``; the runtime is opened in the lifespan."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

from fastapi import FastAPI

from escrow_api import docs, health, metrics, problems
from escrow_api.auth import KeyCache
from escrow_api.middleware import EdgeMiddleware
from escrow_api.openapi import install_openapi
from escrow_api.rate_limit import RateLimiter
from escrow_api.routes import (
    disputes,
    events,
    keys,
    ledger,
    order_commands,
    orders,
    parties,
    payouts,
    refunds,
    sandbox,
    webhooks,
)
from escrow_core import logs
from escrow_core.application.runtime import Runtime, open_runtime
from escrow_core.gc_policy import collect_rarely_in_full
from escrow_core.metrics import process_exiting
from escrow_core.settings import Settings, get_settings

# Work run beside the API for as long as it serves (``escrow serve`` passes the worker).
Background = Callable[[Runtime], AbstractAsyncContextManager[Any]]


def create_app(settings: Settings | None = None, background: Background | None = None) -> FastAPI:
    settings = settings or get_settings()
    logs.configure(settings.log_level)

    collect_rarely_in_full()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            async with open_runtime(settings) as runtime:
                app.state.runtime = runtime
                async with background(runtime) if background else nullcontext():
                    yield
        finally:
            process_exiting()  # escrow serve --workers N: this process's live gauges go

    app = FastAPI(
        title="Escrow API",
        version="1.2.0",
        summary="Trade-Assurance-style escrow for cross-border B2B orders.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.key_cache = KeyCache()
    per_second = settings.rate_limit_per_second
    app.state.rate_limiter = RateLimiter(per_second) if per_second else None
    problems.install(app)
    routers = (
        parties,
        ledger,
        keys,
        orders,
        order_commands,
        payouts,
        refunds,
        disputes,
        events,
        webhooks,
    )
    for module in routers:
        app.include_router(module.router)
    if settings.sandbox:  # the sandbox clock exists only in sandbox mode
        app.include_router(sandbox.router)
    app.include_router(health.router)
    app.include_router(metrics.router)

    docs.install(app)
    install_openapi(app)
    app.add_middleware(EdgeMiddleware)
    return app
