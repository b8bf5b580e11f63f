"""Claiming due deliveries: a lease on each, taken in one short transaction.

``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`` stamps each row with
a lease (``locked_until``, ``lease_token``). On PostgreSQL concurrent senders skip each other's
rows; SQLAlchemy renders no FOR UPDATE on SQLite, where the claim runs under the single writer
lock (BEGIN IMMEDIATE), which is the same thing there. A sender that dies mid-POST leaves its
lease to expire, and the delivery is then taken by another: at least once, never lost.

Ordering: a delivery is claimable only while no earlier event of the same order for the same
endpoint is still pending (in flight or waiting to retry), so one order's events reach one
endpoint in ``sequence`` order; a delivery that finally failed no longer holds the next back.
"""

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.domain.visibility import Viewer
from escrow_core.store import RecordedEvent, Store
from escrow_core.store.event_sql import event_columns, recorded
from escrow_core.store.schema import events, parties, webhook_deliveries, webhook_endpoints
from escrow_core.webhooks import payload
from escrow_core.webhooks.endpoints import Endpoint, endpoint_from_row

_d = webhook_deliveries.c
_e = webhook_endpoints.c


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
    event_recorded_at: datetime  # the event's commit (service clock): the lag metric's start


def _due(d: Any, wall_now: datetime) -> sa.ColumnElement[bool]:
    """Pending, its time come, and nobody's lease on it (or the lease has run out)."""
    return sa.and_(
        d.status == "pending",
        d.next_attempt_at <= wall_now,
        sa.or_(d.locked_until.is_(None), d.locked_until < wall_now),
    )


def _claimable(limit: int, wall_now: datetime) -> sa.Select[tuple[int]]:
    """Ids of up to ``limit`` due deliveries of live endpoints, each its order's next."""
    # Aliased: unaliased, the subquery would correlate with the UPDATE around it.
    d = webhook_deliveries.alias("d")
    earlier = webhook_deliveries.alias("earlier")
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
    return (
        sa.select(d.c.id)
        .join(webhook_endpoints, _e.id == d.c.endpoint_id)
        .where(_due(d.c, wall_now), _e.enabled.is_(True), _e.deleted_at.is_(None), ~blocked)
        .order_by(d.c.next_attempt_at, d.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=d)
    )


async def any_due(store: Store) -> bool:
    """Whether a delivery may be due: a read, so an idle poll takes no write lock."""
    query = sa.select(_d.id).where(_due(_d, datetime.now(UTC))).limit(1)
    async with store.read() as conn:
        return (await conn.execute(query)).first() is not None


async def claim(store: Store, limit: int, *, lease_seconds: float) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries (committed before this returns)."""
    if limit < 1 or not await any_due(store):
        return []
    token = secrets.token_hex(16)
    async with store.transaction() as conn:
        wall_now = datetime.now(UTC)
        claimed = await conn.execute(
            webhook_deliveries.update()
            .where(_d.id.in_(_claimable(limit, wall_now)))
            .values(locked_until=wall_now + timedelta(seconds=lease_seconds), lease_token=token)
            .returning(_d.id, _d.endpoint_id, _d.event_id, _d.attempts)
        )
        rows = claimed.all()
        if not rows:
            return []
        return await _prepare(conn, store, rows, token, wall_now)


async def _prepare(
    conn: AsyncConnection, store: Store, rows: Sequence[Any], token: str, wall_now: datetime
) -> list[Claimed]:
    """The claimed rows with their endpoints' URLs and secrets and their signed bodies."""
    found = await conn.execute(
        sa.select(webhook_endpoints).where(_e.id.in_({row.endpoint_id for row in rows}))
    )
    endpoints: dict[str, Endpoint] = {e.id: e for e in map(endpoint_from_row, found)}
    claimed_events = await _events(conn, store, [row.event_id for row in rows])
    agents = await _buyer_agents(conn, claimed_events.values())
    return [
        Claimed(
            delivery_id=row.id,
            lease_token=token,
            attempt=row.attempts + 1,
            endpoint_id=row.endpoint_id,
            url=endpoints[row.endpoint_id].url,
            secrets=tuple(endpoints[row.endpoint_id].signing_secrets(wall_now)),
            message_id=payload.event_id(row.event_id),
            body=payload.encode(
                payload.document(
                    _as_seen(endpoints[row.endpoint_id], claimed_events[row.event_id], agents)
                )
            ),
            event_recorded_at=claimed_events[row.event_id].recorded_at,
        )
        for row in rows
    ]


async def _events(
    conn: AsyncConnection, store: Store, event_ids: list[Any]
) -> dict[Any, RecordedEvent]:
    """The claimed deliveries' events (upcast), by event id."""
    query = sa.select(*event_columns(sa.literal(0))).where(events.c.event_id.in_(event_ids))
    found = [recorded(row, store.upcasters) for row in await conn.execute(query)]
    return {event.event_id: event for event in found}


async def _buyer_agents(
    conn: AsyncConnection, claimed: Iterable[RecordedEvent]
) -> dict[str, str | None]:
    """The agent (or None) of the buyer of each ``order.placed`` claimed: its buyer side."""
    buyers = {e.data["buyer_id"] for e in claimed if e.type == "order.placed"}
    if not buyers:
        return {}
    query = sa.select(parties.c.id, parties.c.managed_by).where(parties.c.id.in_(buyers))
    return {row.id: row.managed_by for row in await conn.execute(query)}


def _as_seen(
    endpoint: Endpoint, event: RecordedEvent, agents: dict[str, str | None]
) -> RecordedEvent:
    """The event as the endpoint's owner may see it: a supplier side's ``order.placed``
    without the buyer's bookkeeping (DESIGN 7.6). An admin's endpoint sees it all."""
    owner = endpoint.owner_party_id
    if owner is None or event.type != "order.placed":
        return event
    buyer_id = event.data["buyer_id"]
    view = Viewer(buyer_side=owner in (buyer_id, agents.get(buyer_id)))
    data = view.event_data(event.type, event.data)
    return event if data is event.data else replace(event, data=data)
