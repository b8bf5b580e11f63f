"""Prometheus metrics: requests by route, method and status; commands by type and outcome.

They live in the process's registry (``escrow_core.metrics``), beside the worker's when it
runs inside the server; ``GET /metrics`` serves them with the database gauges read for the
scrape (``escrow_core.application.gauges``), summed over every server process when there
are several (``escrow serve --workers N``).
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from escrow_core.application.gauges import GaugeReader
from escrow_core.application.runtime import Runtime
from escrow_core.metrics import REGISTRY, StoreCollector, scrape_registry

__all__ = ["COMMANDS", "REGISTRY", "REQUESTS", "command_outcome", "router"]

REQUESTS = Histogram(
    "escrow_http_request_duration_seconds",
    "HTTP requests by route template, method and status, with their latency.",
    ["route", "method", "status"],
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

COMMANDS = Counter(
    "escrow_commands_total",
    "Order commands by type and outcome (accepted, no_op, or the refusal's code).",
    ["type", "outcome"],
    registry=REGISTRY,
)

router = APIRouter(tags=["operations"])


def command_outcome(command: str, outcome: str) -> None:
    COMMANDS.labels(command, outcome).inc()


def gauge_reader(request: Request) -> GaugeReader:
    """The app's reader of the database gauges (one per app, made on the first scrape)."""
    # Not deps.RuntimeDep: deps imports this module (through idempotency).
    state = request.app.state
    reader: GaugeReader | None = getattr(state, "gauge_reader", None)
    if reader is None:
        runtime: Runtime = state.runtime
        reader = state.gauge_reader = GaugeReader(runtime.store)
    return reader


@router.get(
    "/metrics",
    operation_id="get_metrics",
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text exposition format.",
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(reader: Annotated[GaugeReader, Depends(gauge_reader)]) -> Response:
    """Prometheus metrics: requests, order commands, the worker's, and the database gauges."""
    found = await reader.read()
    registry = scrape_registry(StoreCollector(lambda: found))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
