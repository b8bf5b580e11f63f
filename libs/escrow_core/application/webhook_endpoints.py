"""Webhook endpoints and their deliveries, as their owners manage them.

Who: the owning party (or the agent that manages it), the payments integration (any payments
key, for the endpoints a payments key registered), or an admin. An admin's endpoint may
receive every event; a party's, the events of its own orders; an agent's, those of the parties
it manages; a payments key's, the money events of every order. Anyone else gets "not found"
for an endpoint, as for an order.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.accounts import KeyRole
from escrow_core.application.errors import Conflict, Forbidden, Invalid, NotFound
from escrow_core.application.pagination import Page, paginate, require
from escrow_core.application.principal import Principal
from escrow_core.application.runtime import Runtime
from escrow_core.application.transactions import Keep, write
from escrow_core.webhooks import deliveries, endpoints, resending
from escrow_core.webhooks.deliveries import Replayed
from escrow_core.webhooks.endpoints import PAYMENTS_OWNER, Endpoint
from escrow_core.webhooks.ssrf import UnsafeUrl, check_url

OWNING_ROLES = frozenset({KeyRole.BUYER, KeyRole.SUPPLIER, KeyRole.AGENT})
MAX_DELIVERY_ID = 2**63


@dataclass(frozen=True, slots=True)
class Replay:
    """A replay's outcome: the endpoint and what was enqueued."""

    endpoint: Endpoint
    replayed: Replayed


def _not_found() -> NotFound:
    return NotFound("webhook_endpoint_not_found", "No such webhook endpoint.")


def _owner_of_new(principal: Principal) -> tuple[str | None, str | None]:
    """Who owns an endpoint this caller registers, as (party, role): its party (the named one
    for an agent acting on behalf), the agent itself, the payments role, or nobody for an
    admin."""
    if principal.is_admin:
        return None, None
    if principal.role is KeyRole.PAYMENTS:
        return None, PAYMENTS_OWNER
    if principal.party_id is not None and principal.role in OWNING_ROLES:
        return principal.party_id, None
    raise Forbidden(
        "forbidden", "Only a party, its agent, a payments key or an admin registers endpoints."
    )


def _may_access(principal: Principal, endpoint: Endpoint) -> bool:
    if principal.is_admin:
        return True
    if endpoint.owner_role == PAYMENTS_OWNER or principal.role is KeyRole.PAYMENTS:
        return endpoint.owner_role == PAYMENTS_OWNER and principal.role is KeyRole.PAYMENTS
    owner = endpoint.owner_party_id
    if owner is None:
        return False
    return owner == principal.party_id or (
        principal.role is KeyRole.AGENT and owner in principal.managed
    )


async def _visible(conn: AsyncConnection, principal: Principal, endpoint_id: str) -> Endpoint:
    endpoint = await endpoints.get(conn, endpoint_id) if endpoint_id.startswith("whe_") else None
    if endpoint is None or not _may_access(principal, endpoint):
        raise _not_found()
    return endpoint


async def _check_url(runtime: Runtime, url: str) -> None:
    """The SSRF rule at registration: a URL that may not be used is refused with its code."""
    try:
        await check_url(url, allow_private=runtime.settings.webhook_allow_private)
    except UnsafeUrl as error:
        raise Invalid(error.code, error.detail, field="url", where="body") from error


async def create(
    runtime: Runtime,
    principal: Principal,
    *,
    url: str,
    event_types: Sequence[str] | None,
    keep: Keep[Endpoint] | None = None,
) -> Endpoint:
    """Register an endpoint; the result carries its signing secret."""
    owner, owner_role = _owner_of_new(principal)
    await _check_url(runtime, url)

    async def work(conn: AsyncConnection, now: datetime) -> Endpoint:
        return await endpoints.create(
            conn,
            owner_party_id=owner,
            owner_role=owner_role,
            url=url,
            event_types=event_types,
            created_by=principal.key_id,
            now=now,
        )

    return await write(runtime.store, work, keep)


async def list_page(
    runtime: Runtime, principal: Principal, *, limit: int, cursor: str | None
) -> Page[Endpoint]:
    """The endpoints the caller owns (an agent: also its parties'; an admin: all)."""
    owners: frozenset[str] | None = None
    owner_role: str | None = None
    if principal.role is KeyRole.PAYMENTS:
        owner_role = PAYMENTS_OWNER
    elif not principal.is_admin:
        if principal.party_id is None:
            raise Forbidden("forbidden", "Only parties, agents, payments and admins own endpoints.")
        owners = principal.visible_parties

    async def fetch(after: str | None, limit: int) -> list[Endpoint]:
        async with runtime.store.read() as conn:
            return await endpoints.list_page(
                conn, owners=owners, owner_role=owner_role, limit=limit, after=after
            )

    return await paginate(
        fetch, limit=limit, cursor=cursor, parse=_endpoint_key, key=lambda e: e.id
    )


async def get(runtime: Runtime, principal: Principal, endpoint_id: str) -> Endpoint:
    async with runtime.store.read() as conn:
        return await _visible(conn, principal, endpoint_id)


async def update(
    runtime: Runtime,
    principal: Principal,
    endpoint_id: str,
    *,
    url: str | None,
    event_types: Sequence[str] | None,
    enabled: bool | None,
) -> Endpoint:
    """Change the URL or event types, or disable / re-enable the endpoint."""
    if url is not None:
        # Whose endpoint it is comes first: resolving a URL for a caller who may not see the
        # endpoint would answer them what a name resolves to, whatever its owner.
        await get(runtime, principal, endpoint_id)
        await _check_url(runtime, url)

    async def work(conn: AsyncConnection, now: datetime) -> Endpoint | None:
        await _visible(conn, principal, endpoint_id)
        return await endpoints.update(
            conn, endpoint_id, now=now, url=url, event_types=event_types, enabled=enabled
        )

    updated = await write(runtime.store, work, None)
    if updated is None:
        raise _not_found()
    return updated


async def delete(runtime: Runtime, principal: Principal, endpoint_id: str) -> None:
    """Nothing more is sent to the endpoint (its history is kept)."""

    async def work(conn: AsyncConnection, now: datetime) -> None:
        await _visible(conn, principal, endpoint_id)
        await endpoints.delete(conn, endpoint_id, now)

    await write(runtime.store, work, None)


async def rotate_secret(
    runtime: Runtime, principal: Principal, endpoint_id: str, keep: Keep[Endpoint] | None = None
) -> Endpoint:
    """A new secret; for 24 h deliveries carry signatures by both secrets."""

    async def work(conn: AsyncConnection, now: datetime) -> Endpoint:
        await _visible(conn, principal, endpoint_id)
        rotated = await endpoints.rotate_secret(
            conn, endpoint_id, now=now, wall_now=datetime.now(UTC)
        )
        if rotated is None:
            raise _not_found()
        return rotated

    return await write(runtime.store, work, keep)


async def replay(
    runtime: Runtime,
    principal: Principal,
    endpoint_id: str,
    *,
    since_position: int | None,
    since: datetime | None,
    keep: Keep[Replay] | None = None,
) -> Replay:
    """Send the endpoint's matching events again, from a log position or a time on (at most
    ``deliveries.REPLAY_SCAN_LIMIT`` events looked at per call)."""
    async with runtime.store.read() as conn:
        endpoint = _replayable(await _visible(conn, principal, endpoint_id))
    plan = await deliveries.plan_replay(
        runtime.store, endpoint, since_position=since_position, since=since
    )

    async def enqueue(
        rows: list[dict[str, Any]], before: int, answer: Keep[Replay] | None
    ) -> Replay:
        async def work(conn: AsyncConnection, now: datetime) -> Replay:
            current = _replayable(await _visible(conn, principal, endpoint_id))
            written = await deliveries.enqueue_replay(conn, runtime.store, current, rows, plan.at)
            return Replay(current, replace(plan.replayed, enqueued=before + written))

        return await write(runtime.store, work, answer)

    # A batch per transaction: a writer waits for one batch at most, never for the replay. The
    # answer is kept with the last batch; a retry before it re-enqueues, which is harmless.
    *first, last = plan.batches()
    enqueued = 0
    for rows in first:
        enqueued = (await enqueue(rows, enqueued, None)).replayed.enqueued
    return await enqueue(last, enqueued, keep)


async def send_test(
    runtime: Runtime,
    principal: Principal,
    endpoint_id: str,
    *,
    trace: dict[str, str],
    keep: Keep[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Send the endpoint a signed ``webhook.test`` through the normal delivery machinery;
    returns its delivery (pending). ``trace`` (request and correlation ids) goes into the
    event's metadata."""
    async with runtime.store.read() as conn:
        endpoint = _replayable(await _visible(conn, principal, endpoint_id))
    metadata = {
        "actor": {"role": principal.role.value, "party_id": principal.party_id},
        "principal": principal.audit(),
        **trace,
    }
    event = await resending.append_test_event(
        runtime.store, endpoint, now=await runtime.store.now(), metadata=metadata
    )

    async def work(conn: AsyncConnection, now: datetime) -> dict[str, Any]:
        current = _replayable(await _visible(conn, principal, endpoint_id))
        await resending.enqueue_test(conn, runtime.store, current, event)
        delivery = await deliveries.of_event(conn, endpoint_id, event.event_id)
        if delivery is None:
            raise RuntimeError("the test's delivery was written and is gone")
        return delivery

    return await write(runtime.store, work, keep)


async def resend(
    runtime: Runtime,
    principal: Principal,
    endpoint_id: str,
    delivery_id: int,
    *,
    keep: Keep[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Send one delivery again, due now: the same event, so the same ``webhook-id``."""

    async def work(conn: AsyncConnection, now: datetime) -> dict[str, Any]:
        _replayable(await _visible(conn, principal, endpoint_id))
        if not 0 < delivery_id < MAX_DELIVERY_ID:
            raise _delivery_not_found()  # no row has such an id (a bigint could not hold it)
        if not await resending.resend(conn, endpoint_id, delivery_id):
            raise _delivery_not_found()
        delivery = await deliveries.one(conn, endpoint_id, delivery_id)
        if delivery is None:
            raise _delivery_not_found()
        return delivery

    return await write(runtime.store, work, keep)


def _delivery_not_found() -> NotFound:
    return NotFound("webhook_delivery_not_found", "No such delivery of this endpoint.")


def _replayable(endpoint: Endpoint) -> Endpoint:
    if not endpoint.enabled:
        raise Conflict(
            "webhook_endpoint_disabled", "Enable the endpoint before sending anything to it."
        )
    return endpoint


async def deliveries_page(
    runtime: Runtime,
    principal: Principal,
    endpoint_id: str,
    *,
    limit: int,
    cursor: str | None,
    status: str | None,
) -> Page[dict[str, Any]]:
    """The endpoint's deliveries, newest first, each with every attempt made."""

    async def fetch(before: int | None, limit: int) -> list[dict[str, Any]]:
        async with runtime.store.read() as conn:
            await _visible(conn, principal, endpoint_id)
            return await deliveries.list_page(
                conn, endpoint_id, limit=limit, before=before, status=status
            )

    return await paginate(
        fetch, limit=limit, cursor=cursor, parse=_delivery_key, key=lambda d: d["id"]
    )


def _endpoint_key(raw: Any) -> str:
    require(isinstance(raw, str))
    return str(raw)


def _delivery_key(raw: Any) -> int:
    require(isinstance(raw, int) and not isinstance(raw, bool) and 0 < raw < MAX_DELIVERY_ID)
    return int(raw)
