"""API keys: who a secret is, keys for the party-less roles, listing and revocation.

``ESCROW_ADMIN_KEY``, when set, is accepted as an admin key (bootstrap). A key works until it
is revoked, its ``expires_at`` passes or its party is deactivated; a ``read`` key only reads.

``last_used_at`` is kept to the minute and written at most once a minute per key and process:
``touch`` writes only when the key as last read (cached by the API for a few seconds, else
from its row) names an earlier minute, and the UPDATE itself never moves the time back, so
reads stay reads in the other 59 seconds.
"""

import hmac
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core import accounts
from escrow_core.accounts import ApiKey, IssuedKey, KeyRole, KeyScope
from escrow_core.application.errors import Forbidden, Invalid, NotFound
from escrow_core.application.ids import well_formed
from escrow_core.application.pagination import Page, cursor_time, paginate, require
from escrow_core.application.principal import Principal
from escrow_core.application.runtime import Runtime
from escrow_core.application.transactions import Keep, write

BOOTSTRAP_ADMIN_ID = "key_bootstrap_admin"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def authenticate(runtime: Runtime, secret: str, now: datetime) -> ApiKey | None:
    """The key with this secret, if it works at ``now`` (not revoked, not expired, its party
    not deactivated)."""
    admin_key = runtime.settings.admin_key
    if admin_key and hmac.compare_digest(secret.encode(), admin_key.get_secret_value().encode()):
        return ApiKey(BOOTSTRAP_ADMIN_ID, KeyRole.ADMIN, None, None, _EPOCH, None)
    async with runtime.store.read() as conn:
        return await accounts.find_active_key(conn, secret, now)


def used_minute(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


async def touch(runtime: Runtime, key: ApiKey, now: datetime) -> ApiKey:
    """``key`` with ``last_used_at`` at ``now``'s minute, written only if it names an earlier
    one (the bootstrap admin key has no row)."""
    minute = used_minute(now)
    if key.id == BOOTSTRAP_ADMIN_ID or (
        key.last_used_at is not None and key.last_used_at >= minute
    ):
        return key
    async with runtime.store.transaction() as conn:
        return await accounts.touch_api_key(conn, key, minute)


def check_expiry(expires_at: datetime | None, now: datetime) -> None:
    """A new key's ``expires_at`` must still be to come."""
    if expires_at is not None and expires_at <= now:
        raise Invalid(
            "invalid_expires_at",
            "expires_at is not in the future.",
            field="expires_at",
            where="body",
            reason="in_the_past",
            message="a key cannot be made already expired",
        )


async def create_role_key(
    runtime: Runtime,
    principal: Principal,
    role: KeyRole,
    *,
    scope: KeyScope = KeyScope.FULL,
    expires_at: datetime | None = None,
    keep: Keep[IssuedKey] | None = None,
) -> IssuedKey:
    """A key for the admin, mediator or payments role (admin only)."""
    principal.require_admin("Only an admin makes keys for party-less roles.")

    async def work(conn: AsyncConnection, now: datetime) -> IssuedKey:
        check_expiry(expires_at, now)
        return await accounts.create_api_key(
            conn,
            role=role,
            party_id=None,
            created_by=principal.key_id,
            now=now,
            scope=scope,
            expires_at=expires_at,
        )

    return await write(runtime.store, work, keep)


async def list_page(
    runtime: Runtime,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
    party_id: str | None = None,
) -> Page[ApiKey]:
    """Keys newest first, revoked and expired ones too: every key for an admin (``party_id``
    narrows to one party's), a party's own for a party or agent (its agent acting for it:
    the party's)."""
    if not principal.is_admin:
        if principal.party_id is None:
            raise Forbidden("forbidden", "Only an admin, a party or an agent lists API keys.")
        if party_id is not None and party_id != principal.party_id:
            return Page([], None, False)
        party_id = principal.party_id

    async def fetch(before: tuple[datetime, str] | None, limit: int) -> list[ApiKey]:
        async with runtime.store.read() as conn:
            return await accounts.list_api_keys(conn, limit=limit, party_id=party_id, before=before)

    return await paginate(
        fetch,
        limit=limit,
        cursor=cursor,
        parse=lambda raw: created_cursor(raw, "key"),
        key=lambda key: [key.created_at.isoformat(), key.id],
    )


def created_cursor(raw: Any, prefix: str) -> tuple[datetime, str]:
    """The (created_at, id) cursor of a list newest first (API keys, parties)."""
    require(isinstance(raw, list) and len(raw) == 2)
    created_at, item_id = cursor_time(raw[0]), str(raw[1])
    require(well_formed(item_id, prefix))
    return created_at, item_id


async def revoke(runtime: Runtime, principal: Principal, key_id: str) -> ApiKey:
    """Revoke a key (admin, the key's party or its agent, or the key itself); idempotent."""
    now = await runtime.store.now()
    async with runtime.store.transaction() as conn:
        key = await accounts.get_api_key(conn, key_id) if well_formed(key_id, "key") else None
        if key is None or not await _may_revoke(conn, principal, key):
            raise _key_not_found()
        revoked = await accounts.revoke_api_key(conn, key_id, now)
    if revoked is None:
        raise _key_not_found()
    return revoked


def _key_not_found() -> NotFound:
    return NotFound("api_key_not_found", "No such API key.")


async def _may_revoke(conn: AsyncConnection, principal: Principal, key: ApiKey) -> bool:
    if principal.is_admin or principal.key_id == key.id:
        return True
    if key.party_id is None:
        return False
    if principal.party_id == key.party_id:  # the party, or its agent acting for it
        return True
    if principal.on_behalf_of is not None:
        return False
    party = await accounts.get_party(conn, key.party_id)
    return (
        party is not None
        and principal.role is KeyRole.AGENT
        and party.managed_by == principal.party_id
    )
