"""Prometheus metrics: requests by route, method and status; commands by type and outcome.

The registry is the process's own (not the global default), so tests and several apps in one
process do not collide on metric names; ``GET /metrics`` serves it in the text format.
"""

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

REGISTRY = CollectorRegistry(auto_describe=True)

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
async def metrics() -> Response:
    """Prometheus metrics of this process: requests and order commands."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
