"""Recording attempts: the attempt rows, the deliveries' new states, the endpoints' streaks.

Many attempts go in one short transaction. Each delivery's update is guarded by its lease
token: a sender whose lease ran out (and was taken over) changes nothing. Endpoints are visited
in a fixed order, so two workers' batches cannot deadlock on them. Disabling an endpoint (410
Gone, or failing for ``disable_after_seconds``) appends to the log, so it happens once that
transaction has committed (``endpoints.disable``).
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.store import Store
from escrow_core.store.schema import webhook_attempts, webhook_deliveries
from escrow_core.webhooks import endpoints as endpoint_store
from escrow_core.webhooks.posting import Attempt
from escrow_core.webhooks.schedule import next_delay

GONE = 410
SYSTEM_PRINCIPAL = {"role": "system", "worker": "webhooks"}
log = structlog.get_logger("escrow.webhooks")

_d = webhook_deliveries.c

# Executed once per batch with many parameter sets.
_RECORD_DELIVERY = (
    webhook_deliveries.update()
    .where(_d.id == sa.bindparam("b_id"), _d.lease_token == sa.bindparam("b_token"))
    .values(
        status=sa.bindparam("b_status"),
        attempts=sa.bindparam("b_attempts"),
        next_attempt_at=sa.bindparam("b_next_attempt_at"),
        completed_at=sa.bindparam("b_completed_at"),
        last_status_code=sa.bindparam("b_status_code"),
        last_error=sa.bindparam("b_error"),
        locked_until=None,
        lease_token=None,
    )
)


@dataclass(frozen=True, slots=True)
class Outcome:
    delivery_id: int
    attempt: int
    status_code: int | None
    error: str | None
    latency_ms: int
    state: str  # the delivery's status afterwards: succeeded, pending (to retry) or failed
    next_attempt_at: datetime


@dataclass(frozen=True, slots=True)
class Disabling:
    """An endpoint to disable once the attempts are recorded."""

    endpoint_id: str
    reason: str
    failing_since: datetime


async def record(
    store: Store,
    attempts: Sequence[Attempt],
    *,
    schedule: Sequence[float],
    disable_after_seconds: float,
    worker: str,
    rng: random.Random,
) -> list[Outcome]:
    """Record ``attempts`` (one transaction) and what follows from them: the deliveries' new
    states, the endpoints' failure streaks, any disabling."""
    if not attempts:
        return []
    wall_now = datetime.now(UTC)
    outcomes = [_outcome(a, schedule, rng, wall_now) for a in attempts]
    async with store.transaction() as conn:
        await conn.execute(webhook_attempts.insert(), [_attempt_row(a, worker) for a in attempts])
        await conn.execute(
            _RECORD_DELIVERY,
            [_delivery_update(a, o, wall_now) for a, o in zip(attempts, outcomes, strict=True)],
        )
        disablings = []
        for endpoint_id in sorted({a.claimed.endpoint_id for a in attempts}):
            mine = [a for a in attempts if a.claimed.endpoint_id == endpoint_id]
            found = await _note_streak(conn, endpoint_id, mine, wall_now, disable_after_seconds)
            if found is not None:
                disablings.append(found)
    for outcome, attempt in zip(outcomes, attempts, strict=True):
        log.info(
            "webhook attempt",
            delivery_id=outcome.delivery_id,
            endpoint_id=attempt.claimed.endpoint_id,
            webhook_id=attempt.claimed.message_id,
            attempt=outcome.attempt,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            outcome=outcome.state,
        )
    for disabling in disablings:
        try:
            await _disable(store, disabling, worker)
        except Exception:
            # The attempts are recorded (recording them again would repeat them); the streak
            # stands, so the endpoint's next failed attempt disables it.
            log.exception("disabling a webhook endpoint failed", endpoint_id=disabling.endpoint_id)
    return outcomes


def _outcome(
    attempt: Attempt, schedule: Sequence[float], rng: random.Random, wall_now: datetime
) -> Outcome:
    claimed = attempt.claimed
    state, next_at = "succeeded", wall_now
    if not attempt.succeeded:
        delay = next_delay(schedule, claimed.attempt, retry_after=attempt.retry_after, rng=rng)
        state = "failed" if delay is None or attempt.status_code == GONE else "pending"
        if delay is not None:
            next_at = wall_now + timedelta(seconds=delay)
    return Outcome(
        claimed.delivery_id,
        claimed.attempt,
        attempt.status_code,
        attempt.error,
        attempt.latency_ms,
        state,
        next_at,
    )


def _attempt_row(attempt: Attempt, worker: str) -> dict[str, Any]:
    return {
        "delivery_id": attempt.claimed.delivery_id,
        "attempt": attempt.claimed.attempt,
        "started_at": attempt.started_at,
        "latency_ms": attempt.latency_ms,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "response_body": attempt.snippet,
        "worker": worker,
    }


def _delivery_update(attempt: Attempt, outcome: Outcome, wall_now: datetime) -> dict[str, Any]:
    return {
        "b_id": outcome.delivery_id,
        "b_token": attempt.claimed.lease_token,
        "b_status": outcome.state,
        "b_attempts": outcome.attempt,
        "b_next_attempt_at": outcome.next_attempt_at,
        "b_completed_at": None if outcome.state == "pending" else wall_now,
        "b_status_code": outcome.status_code,
        "b_error": outcome.error,
    }


async def _note_streak(
    conn: AsyncConnection,
    endpoint_id: str,
    attempts: Sequence[Attempt],
    wall_now: datetime,
    disable_after_seconds: float,
) -> Disabling | None:
    """The endpoint's failure streak: a success ends it, a failure starts it if none runs;
    410 Gone, or failing for ``disable_after_seconds``, calls for disabling the endpoint."""
    gone = any(a.status_code == GONE for a in attempts)
    last = max(attempts, key=lambda a: a.started_at)
    if last.succeeded and not gone:
        await endpoint_store.record_success(conn, endpoint_id)
        return None
    failing_since = await endpoint_store.record_failure(conn, endpoint_id, wall_now)
    if gone:
        return Disabling(endpoint_id, "the endpoint answered 410 Gone", failing_since)
    if (wall_now - failing_since).total_seconds() >= disable_after_seconds:
        since = failing_since.isoformat().replace("+00:00", "Z")
        return Disabling(endpoint_id, f"every delivery has failed since {since}", failing_since)
    return None


async def _disable(store: Store, disabling: Disabling, worker: str) -> None:
    disabled = await endpoint_store.disable(
        store,
        disabling.endpoint_id,
        reason=disabling.reason,
        failing_since=disabling.failing_since,
        now=await store.now(),
        metadata={"principal": SYSTEM_PRINCIPAL, "worker": worker},
    )
    if disabled:
        log.warning(
            "webhook endpoint disabled", endpoint_id=disabling.endpoint_id, reason=disabling.reason
        )
