"""The sender: claims due deliveries, posts them, and records what happened.

Claiming is one short transaction: ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP
LOCKED) RETURNING``, which stamps each row with a lease (``locked_until``, ``lease_token``).
On PostgreSQL concurrent senders skip each other's rows; on SQLite the claim runs under the
single writer lock (BEGIN IMMEDIATE), which is the same thing there. The POST happens after
that transaction has committed, with no transaction or lock held; the outcome is recorded in
another short transaction, guarded by the lease token. A sender that dies mid-POST leaves its
lease to expire, and the delivery is then taken by another: at least once, never lost.

Ordering: a delivery is claimable only while no earlier event of the same order for the same
endpoint is still pending (in flight or waiting to retry), so one order's events reach one
endpoint in ``sequence`` order; a delivery that finally failed no longer holds the next back.
"""

import asyncio
import random
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.clock import Clock
from escrow_core.store import Database, EventStore
from escrow_core.store.schema import events, webhook_attempts, webhook_deliveries, webhook_endpoints
from escrow_core.webhooks import endpoints as endpoint_store
from escrow_core.webhooks import payload
from escrow_core.webhooks.schedule import next_delay, parse_retry_after
from escrow_core.webhooks.signing import signed_headers
from escrow_core.webhooks.ssrf import BlockedAddress

RESPONSE_SNIPPET_BYTES = 2048
GONE = 410
SYSTEM_METADATA = {"principal": {"role": "system", "worker": "webhooks"}}
log = structlog.get_logger("escrow.webhooks")

_d = webhook_deliveries.c


@dataclass(frozen=True, slots=True)
class SenderSettings:
    schedule: tuple[float, ...]
    lease_seconds: float
    total_timeout: float
    disable_after_seconds: float


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this sender holds the lease on, with everything needed to post it."""

    delivery_id: int
    lease_token: str
    attempt: int  # the number of this attempt, from 1
    endpoint_id: str
    url: str
    secrets: tuple[str, ...]
    message_id: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Outcome:
    delivery_id: int
    attempt: int
    status_code: int | None
    error: str | None
    latency_ms: int
    state: str  # the delivery's status afterwards: succeeded, pending (to retry) or failed

    @property
    def succeeded(self) -> bool:
        return self.state == "succeeded"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one POST got, before it is recorded."""

    claimed: Claimed
    started_at: datetime
    status_code: int | None
    error: str | None
    snippet: str | None
    latency_ms: int
    retry_after: float | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


# The outcome of an attempt, guarded by the lease: a sender whose lease ran out (and was taken
# over) changes nothing. Executed once per batch with many parameter sets.
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


def _claim_statement(postgresql: bool, limit: int, now: datetime) -> Any:
    d = webhook_deliveries.alias("d")
    earlier = webhook_deliveries.alias("earlier")
    e = webhook_endpoints
    blocked = (
        sa.select(sa.literal(1))
        .where(
            earlier.c.endpoint_id == d.c.endpoint_id,
            earlier.c.stream_id == d.c.stream_id,
            earlier.c.status == "pending",
            earlier.c.sequence < d.c.sequence,
        )
        .exists()
    )
    due = (
        sa.select(d.c.id)
        .join(e, e.c.id == d.c.endpoint_id)
        .where(
            d.c.status == "pending",
            d.c.next_attempt_at <= now,
            sa.or_(d.c.locked_until.is_(None), d.c.locked_until < now),
            e.c.enabled.is_(True),
            e.c.deleted_at.is_(None),
            ~blocked,
        )
        .order_by(d.c.next_attempt_at, d.c.id)
        .limit(limit)
    )
    if postgresql:
        due = due.with_for_update(skip_locked=True, of=d)
    return due


class Sender:
    """Claims, posts and records deliveries for one worker process."""

    def __init__(
        self,
        database: Database,
        store: EventStore,
        clock: Clock,
        settings: SenderSettings,
        client: httpx.AsyncClient,
        *,
        worker: str,
        rng: random.Random | None = None,
    ) -> None:
        self.database = database
        self.store = store
        self.clock = clock
        self.settings = settings
        self.client = client
        self.worker = worker
        self.rng = rng or random.Random()  # jitter, not a secret

    async def claim(self, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` due deliveries (committed before this returns)."""
        if limit < 1:
            return []
        token = secrets.token_hex(16)
        if self.database.dialect == "sqlite" and not await self._any_due():
            return []  # spare SQLite's single write lock on an idle poll
        async with self.database.transaction() as conn:
            wall_now = datetime.now(UTC)
            due = _claim_statement(conn.dialect.name == "postgresql", limit, wall_now)
            claimed = await conn.execute(
                webhook_deliveries.update()
                .where(_d.id.in_(due))
                .values(
                    locked_until=wall_now + timedelta(seconds=self.settings.lease_seconds),
                    lease_token=token,
                )
                .returning(_d.id, _d.endpoint_id, _d.event_id, _d.attempts)
            )
            rows = claimed.all()
            if not rows:
                return []
            return await self._prepare(conn, rows, token, wall_now)

    async def _any_due(self) -> bool:
        wall_now = datetime.now(UTC)
        query = (
            sa.select(_d.id)
            .where(
                _d.status == "pending",
                _d.next_attempt_at <= wall_now,
                sa.or_(_d.locked_until.is_(None), _d.locked_until < wall_now),
            )
            .limit(1)
        )
        async with self.database.read() as conn:
            return (await conn.execute(query)).first() is not None

    async def _prepare(
        self, conn: AsyncConnection, rows: Sequence[Any], token: str, wall_now: datetime
    ) -> list[Claimed]:
        endpoint_ids = {row.endpoint_id for row in rows}
        found = [await endpoint_store.get(conn, endpoint_id) for endpoint_id in endpoint_ids]
        by_id = {endpoint.id: endpoint for endpoint in found if endpoint is not None}
        event_rows = await conn.execute(
            sa.select(
                events.c.event_id,
                events.c.type,
                events.c.schema_version,
                events.c.data,
                events.c.stream_id,
                events.c.version,
                events.c.position,
                events.c.recorded_at,
            ).where(events.c.event_id.in_([row.event_id for row in rows]))
        )
        bodies = {}
        for event in event_rows:
            _, data = self.store.upcasters.upcast(event.type, event.schema_version, event.data)
            doc = payload.document(
                event_uuid=event.event_id,
                type_=event.type,
                stream_id=event.stream_id,
                sequence=event.version,
                position=event.position,
                data=data,
                recorded_at=event.recorded_at,
            )
            bodies[event.event_id] = payload.encode(doc)
        return [
            Claimed(
                delivery_id=row.id,
                lease_token=token,
                attempt=row.attempts + 1,
                endpoint_id=row.endpoint_id,
                url=by_id[row.endpoint_id].url,
                secrets=tuple(by_id[row.endpoint_id].signing_secrets(wall_now)),
                message_id=payload.event_id(row.event_id),
                body=bodies[row.event_id],
            )
            for row in rows
        ]

    async def release(self, claimed: Sequence[Claimed]) -> None:
        """Give leases back unposted (a clean shutdown), so no one waits for them to expire."""
        for item in claimed:
            async with self.database.transaction() as conn:
                await conn.execute(
                    webhook_deliveries.update()
                    .where(_d.id == item.delivery_id, _d.lease_token == item.lease_token)
                    .values(locked_until=None, lease_token=None)
                )

    async def deliver(self, claimed: Claimed) -> Outcome:
        """POST one claimed delivery and record the attempt."""
        [outcome] = await self.record([await self.post(claimed)])
        return outcome

    async def post(self, claimed: Claimed) -> Attempt:
        """POST one claimed delivery, with no transaction open; nothing is recorded yet."""
        wall_now = datetime.now(UTC)
        headers = signed_headers(
            claimed.message_id, int(wall_now.timestamp()), claimed.body, claimed.secrets
        )
        headers["content-type"] = "application/json"
        status_code: int | None = None
        error: str | None = None
        snippet: str | None = None
        retry_after: float | None = None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.total_timeout):
                async with self.client.stream(
                    "POST", claimed.url, content=claimed.body, headers=headers
                ) as response:
                    status_code = response.status_code
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                    snippet = await _read_snippet(response)
        except BlockedAddress as blocked:
            error = f"refused by the SSRF guard: {blocked}"
        except TimeoutError:
            error = f"timed out after {self.settings.total_timeout:g} s"
        except Exception as failure:  # any failure is a failed attempt, recorded as such
            error = f"{type(failure).__name__}: {failure}"[:500]
        if status_code is not None and not 200 <= status_code < 300 and error is None:
            error = f"HTTP {status_code}"
        latency_ms = round((time.perf_counter() - started) * 1000)
        return Attempt(claimed, wall_now, status_code, error, snippet, latency_ms, retry_after)

    async def record(self, attempts: Sequence[Attempt]) -> list[Outcome]:
        """Record attempts (many at once: one transaction) and what follows from them: the
        deliveries' new states, the endpoints' failure streaks, any disabling."""
        if not attempts:
            return []
        wall_now = datetime.now(UTC)
        outcomes: list[Outcome] = []
        updates: list[dict[str, Any]] = []
        for attempt in attempts:
            claimed = attempt.claimed
            next_at = wall_now
            if attempt.succeeded:
                state = "succeeded"
            else:
                delay = next_delay(
                    self.settings.schedule,
                    claimed.attempt,
                    retry_after=attempt.retry_after,
                    rng=self.rng,
                )
                state = "failed" if delay is None or attempt.status_code == GONE else "pending"
                if delay is not None:
                    next_at = wall_now + timedelta(seconds=delay)
            updates.append(
                {
                    "b_id": claimed.delivery_id,
                    "b_token": claimed.lease_token,
                    "b_status": state,
                    "b_attempts": claimed.attempt,
                    "b_next_attempt_at": next_at,
                    "b_completed_at": None if state == "pending" else wall_now,
                    "b_status_code": attempt.status_code,
                    "b_error": attempt.error,
                }
            )
            outcomes.append(
                Outcome(
                    claimed.delivery_id,
                    claimed.attempt,
                    attempt.status_code,
                    attempt.error,
                    attempt.latency_ms,
                    state,
                )
            )
        async with self.database.transaction() as conn:
            await conn.execute(
                webhook_attempts.insert(),
                [
                    {
                        "delivery_id": a.claimed.delivery_id,
                        "attempt": a.claimed.attempt,
                        "started_at": a.started_at,
                        "latency_ms": a.latency_ms,
                        "status_code": a.status_code,
                        "error": a.error,
                        "response_body": a.snippet,
                        "worker": self.worker,
                    }
                    for a in attempts
                ],
            )
            await conn.execute(_RECORD_DELIVERY, updates)
            # Endpoints in a fixed order, so two workers' batches cannot deadlock on them.
            for endpoint_id in sorted({a.claimed.endpoint_id for a in attempts}):
                mine = [a for a in attempts if a.claimed.endpoint_id == endpoint_id]
                await self._note_endpoint(conn, endpoint_id, mine, wall_now)
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
        return outcomes

    async def _note_endpoint(
        self,
        conn: AsyncConnection,
        endpoint_id: str,
        attempts: Sequence[Attempt],
        wall_now: datetime,
    ) -> None:
        """The endpoint's failure streak: a success ends it, a failure starts it if none runs;
        410 Gone, or failing for ``disable_after_seconds``, disables the endpoint."""
        last = max(attempts, key=lambda a: a.started_at)
        if last.succeeded and not any(a.status_code == GONE for a in attempts):
            await endpoint_store.record_success(conn, endpoint_id)
            return
        failing_since = await endpoint_store.record_failure(conn, endpoint_id, wall_now)
        reason = None
        if any(a.status_code == GONE for a in attempts):
            reason = "the endpoint answered 410 Gone"
        elif (wall_now - failing_since).total_seconds() >= self.settings.disable_after_seconds:
            since = failing_since.isoformat().replace("+00:00", "Z")
            reason = f"every delivery has failed since {since}"
        if reason is None:
            return
        if await endpoint_store.disable(
            conn,
            self.store,
            endpoint_id,
            reason=reason,
            now=await self.clock.now(conn),
            metadata={**SYSTEM_METADATA, "worker": self.worker},
        ):
            log.warning("webhook endpoint disabled", endpoint_id=endpoint_id, reason=reason)


async def _read_snippet(response: httpx.Response) -> str:
    """The first 2 KB of the response body, as text; the rest is never read."""
    received = b""
    async for chunk in response.aiter_raw():
        received += chunk
        if len(received) >= RESPONSE_SNIPPET_BYTES:
            break
    text = received[:RESPONSE_SNIPPET_BYTES].decode("utf-8", errors="replace")
    return text.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL
