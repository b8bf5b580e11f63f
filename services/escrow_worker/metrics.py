"""The worker's metrics: webhook attempts and lag, timer lag (DESIGN 7.7 names them).

They live in the process's registry (``escrow_core.metrics.REGISTRY``), so the worker inside
``escrow serve`` shows them on the server's /metrics, and ``escrow worker --metrics-port``
on its own (``metrics_server``). Both lags are measured on the service clock, the one event
times and deadlines are written in, so a sandbox clock moved forward does not skew them.
"""

from collections.abc import Sequence
from datetime import datetime

from prometheus_client import Counter, Histogram

from escrow_core.application.timers import FiredTimer
from escrow_core.metrics import REGISTRY
from escrow_core.webhooks.sender import Attempt, Outcome

# The delivery's state after the attempt, as operators read it.
OUTCOMES = {"succeeded": "succeeded", "pending": "retrying", "failed": "failed"}
# From sub-second (a healthy sender) to the retry schedule's day-long waits.
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 21600, 86400)

ATTEMPTS = Counter(
    "escrow_webhook_attempts_total",
    "Webhook delivery attempts by outcome: succeeded, retrying (failed, tried again later) "
    "or failed (failed for good: the delivery waits for a replay).",
    ["outcome"],
    registry=REGISTRY,
)
WEBHOOK_LAG = Histogram(
    "escrow_webhook_lag_seconds",
    "From an event's commit to its successful delivery, per delivery.",
    registry=REGISTRY,
    buckets=LAG_BUCKETS,
)
TIMER_LAG = Histogram(
    "escrow_timer_lag_seconds",
    "From a deadline to its timer firing, by deadline kind.",
    ["kind"],
    registry=REGISTRY,
    buckets=LAG_BUCKETS,
)
for _outcome in OUTCOMES.values():
    ATTEMPTS.labels(_outcome)  # shown at 0 before the first attempt


def attempts_recorded(
    attempts: Sequence[Attempt], outcomes: Sequence[Outcome], now: datetime | None
) -> None:
    """Count recorded attempts; ``now`` (the service clock) times the successful ones."""
    for attempt, outcome in zip(attempts, outcomes, strict=True):
        ATTEMPTS.labels(OUTCOMES.get(outcome.state, outcome.state)).inc()
        if outcome.state == "succeeded" and now is not None:
            lag = (now - attempt.claimed.event_recorded_at).total_seconds()
            WEBHOOK_LAG.observe(max(0.0, lag))


def timer_fired(fired: FiredTimer) -> None:
    TIMER_LAG.labels(fired.kind).observe(fired.lag_seconds)
