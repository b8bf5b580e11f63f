"""Webhook endpoints: who owns them, where they point, what they subscribe to, their secrets.

An endpoint belongs to a party (buyer, supplier or agent), to the payments integration
(``owner_role`` ``payments``: every order's money events) or, with no owner, to the operators
(an admin's endpoint may receive every event). Secrets are kept as given (they sign, so they
cannot be hashed); the previous secret keeps signing for ``ROTATION_OVERLAP`` after a rotation.
Deleting an endpoint keeps its row and history (``deleted_at``); it is then gone from the API.

Every function but ``disable`` runs on a connection from ``Store.transaction()`` or
``Store.read()``: the statements are the same on both backends.
"""

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.domain.events import EVENT_TYPES
from escrow_core.ids import new_id
from escrow_core.store import ConcurrencyError, EventIdConflict, NewEvent, Store
from escrow_core.store.schema import webhook_deliveries, webhook_endpoints
from escrow_core.webhooks.signing import new_secret

ROTATION_OVERLAP = timedelta(hours=24)
ALL_EVENTS = "*"
ENDPOINT_DISABLED = "webhook_endpoint.disabled"
#: A signed test event sent to one endpoint on request (``POST .../test``), and only to it.
WEBHOOK_TEST = "webhook.test"
#: The owner role of an endpoint a payments key registered.
PAYMENTS_OWNER = "payments"
#: Names the ``webhook_endpoint.disabled`` event of one failure streak (see ``disable``).
APPEND_ATTEMPTS = 3
_DISABLED_EVENT_IDS = uuid.UUID("5d0c9a4e-8f0b-4a57-9a43-0f7c3f1f7b21")
#: What ``event_types`` may name: every order event, the endpoint's own, or ``*``.
SUBSCRIBABLE = frozenset({*EVENT_TYPES, ENDPOINT_DISABLED})

_c = webhook_endpoints.c


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    owner_party_id: str | None
    url: str
    event_types: tuple[str, ...]
    enabled: bool
    disabled_reason: str | None
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime
    owner_role: str | None = None  # PAYMENTS_OWNER, or None (a party's or an admin's endpoint)

    def subscribes_to(self, event_type: str) -> bool:
        return ALL_EVENTS in self.event_types or event_type in self.event_types

    def signing_secrets(self, wall_now: datetime) -> list[str]:
        """The secrets to sign with now: the current one, and the previous during rotation."""
        expires = self.previous_secret_expires_at
        if self.previous_secret and expires is not None and wall_now < expires:
            return [self.secret, self.previous_secret]
        return [self.secret]


def normalise_event_types(event_types: Sequence[str] | None) -> tuple[str, ...]:
    """Omitted, empty or containing ``*``: all events. Duplicates dropped, order kept."""
    if not event_types or ALL_EVENTS in event_types:
        return (ALL_EVENTS,)
    return tuple(dict.fromkeys(event_types))


_FIELDS = tuple(field.name for field in dataclasses.fields(Endpoint))


def endpoint_from_row(row: Any) -> Endpoint:
    """An ``Endpoint`` from a ``webhook_endpoints`` row (or the values of one)."""
    values: dict[str, Any] = {name: getattr(row, name, None) for name in _FIELDS}
    values.update(event_types=tuple(values["event_types"]), enabled=bool(values["enabled"]))
    return Endpoint(**values)


async def create(
    conn: AsyncConnection,
    *,
    owner_party_id: str | None,
    url: str,
    event_types: Sequence[str] | None,
    created_by: str | None,
    now: datetime,
    owner_role: str | None = None,
) -> Endpoint:
    values = {
        "id": new_id("whe"),
        "owner_party_id": owner_party_id,
        "owner_role": owner_role,
        "url": url,
        "event_types": list(normalise_event_types(event_types)),
        "enabled": True,
        "secret": new_secret(),
        "created_by": created_by,
        "created_at": now,
        "updated_at": now,
    }
    await conn.execute(webhook_endpoints.insert().values(values))
    return endpoint_from_row(SimpleNamespace(**values))


async def get(conn: AsyncConnection, endpoint_id: str) -> Endpoint | None:
    query = sa.select(webhook_endpoints).where(_c.id == endpoint_id, _c.deleted_at.is_(None))
    row = (await conn.execute(query)).first()
    return None if row is None else endpoint_from_row(row)


async def list_page(
    conn: AsyncConnection,
    *,
    owners: frozenset[str] | None,
    limit: int,
    after: str | None,
    owner_role: str | None = None,
) -> list[Endpoint]:
    """Endpoints by id; ``owners`` limits them to those parties', ``owner_role`` to that role's
    (neither: every endpoint)."""
    query = sa.select(webhook_endpoints).where(_c.deleted_at.is_(None)).order_by(_c.id)
    if owners is not None:
        query = query.where(_c.owner_party_id.in_(owners))
    if owner_role is not None:
        query = query.where(_c.owner_role == owner_role)
    if after is not None:
        query = query.where(_c.id > after)
    return [endpoint_from_row(row) for row in await conn.execute(query.limit(limit))]


async def active(conn: AsyncConnection) -> list[Endpoint]:
    """Every enabled endpoint: the ones new events are dispatched to."""
    query = sa.select(webhook_endpoints).where(_c.deleted_at.is_(None), _c.enabled.is_(True))
    return [endpoint_from_row(row) for row in await conn.execute(query)]


async def update(
    conn: AsyncConnection,
    endpoint_id: str,
    *,
    now: datetime,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    enabled: bool | None = None,
) -> Endpoint | None:
    values: dict[str, Any] = {"updated_at": now}
    if url is not None:
        values["url"] = url
    if event_types is not None:
        values["event_types"] = list(normalise_event_types(event_types))
    if enabled is True:
        # Re-enabled: the failure streak starts over.
        values.update(enabled=True, disabled_reason=None, failing_since=None)
    elif enabled is False:
        values.update(enabled=False, disabled_reason="disabled through the API")
    await conn.execute(
        webhook_endpoints.update()
        .where(_c.id == endpoint_id, _c.deleted_at.is_(None))
        .values(values)
    )
    return await get(conn, endpoint_id)


async def delete(conn: AsyncConnection, endpoint_id: str, now: datetime) -> None:
    """Delete the endpoint; what was still waiting to be sent to it is given up."""
    await conn.execute(
        webhook_endpoints.update()
        .where(_c.id == endpoint_id, _c.deleted_at.is_(None))
        .values(deleted_at=now, enabled=False, updated_at=now)
    )
    d = webhook_deliveries.c
    await conn.execute(
        webhook_deliveries.update()
        .where(d.endpoint_id == endpoint_id, d.status == "pending")
        .values(
            status="failed",
            completed_at=datetime.now(UTC),
            last_error="the endpoint was deleted",
            locked_until=None,
            lease_token=None,
        )
    )


async def rotate_secret(
    conn: AsyncConnection, endpoint_id: str, *, now: datetime, wall_now: datetime
) -> Endpoint | None:
    """A new secret; the old one keeps signing for 24 h of the wall clock."""
    await conn.execute(
        webhook_endpoints.update()
        .where(_c.id == endpoint_id, _c.deleted_at.is_(None))
        .values(
            previous_secret=_c.secret,
            previous_secret_expires_at=wall_now + ROTATION_OVERLAP,
            secret=new_secret(),
            updated_at=now,
        )
    )
    return await get(conn, endpoint_id)


async def record_success(conn: AsyncConnection, endpoint_id: str) -> None:
    """A delivery got through: the failure streak ends."""
    # The WHERE keeps a busy endpoint's row unwritten (and unlocked) in the normal case.
    await conn.execute(
        webhook_endpoints.update()
        .where(_c.id == endpoint_id, _c.failing_since.is_not(None))
        .values(failing_since=None)
    )


async def record_failure(conn: AsyncConnection, endpoint_id: str, wall_now: datetime) -> datetime:
    """A delivery attempt failed: start the failure streak if none runs; returns its start."""
    await conn.execute(
        webhook_endpoints.update()
        .where(_c.id == endpoint_id, _c.failing_since.is_(None))
        .values(failing_since=wall_now)
    )
    query = sa.select(_c.failing_since).where(_c.id == endpoint_id)
    since = (await conn.execute(query)).scalar_one_or_none()
    return since or wall_now


async def disable(
    store: Store,
    endpoint_id: str,
    *,
    reason: str,
    failing_since: datetime,
    now: datetime,
    metadata: dict[str, Any],
) -> bool:
    """Disable the endpoint and put ``webhook_endpoint.disabled`` in the log (the feed): never
    silently. False if it was not enabled (then nothing is appended).

    The event goes first, so no crash can leave the endpoint disabled without it; its id is
    made from the endpoint and its failure streak, so every worker that decides to disable the
    endpoint for the same streak appends the same event, once (the store refuses the id
    again). A crash between the two steps leaves the event and an enabled endpoint, which the
    next failed attempt disables.
    """
    async with store.read() as conn:
        query = sa.select(_c.owner_party_id, _c.url).where(
            _c.id == endpoint_id, _c.enabled.is_(True), _c.deleted_at.is_(None)
        )
        row = (await conn.execute(query)).first()
    if row is None:
        return False
    data = {
        "at": now.isoformat().replace("+00:00", "Z"),
        "endpoint_id": endpoint_id,
        "owner_party_id": row.owner_party_id,
        "url": row.url,
        "reason": reason,
    }
    event_id = uuid.uuid5(_DISABLED_EVENT_IDS, f"{endpoint_id}/{failing_since.isoformat()}")
    event = NewEvent(event_id, ENDPOINT_DISABLED, data, metadata)
    for _ in range(APPEND_ATTEMPTS):
        stream = await store.stream(endpoint_id)
        version = stream[-1].version if stream else 0
        try:
            await store.append(endpoint_id, version, [event], recorded_at=now)
            break
        except EventIdConflict:
            break  # another worker has appended this streak's event: it is in the feed
        except ConcurrencyError:
            continue  # the stream moved since we read it: append after what is there now
    else:
        raise ConcurrencyError(endpoint_id, version)
    async with store.transaction() as conn:
        result = await conn.execute(
            webhook_endpoints.update()
            .where(_c.id == endpoint_id, _c.enabled.is_(True), _c.deleted_at.is_(None))
            .values(enabled=False, disabled_reason=reason, updated_at=now)
        )
    return bool(result.rowcount == 1)
