"""Prometheus metrics: requests by route, method and status; commands by type and outcome."""

from prometheus_client import CollectorRegistry, Counter, Histogram

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


def command_outcome(command: str, outcome: str) -> None:
    COMMANDS.labels(command, outcome).inc()
