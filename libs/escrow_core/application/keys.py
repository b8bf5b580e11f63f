"""API keys: who a secret is, keys for the party-less roles, and revocation.

``ESCROW_ADMIN_KEY``, when set, is accepted as an admin key (bootstrap).
"""

import hmac
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core import accounts
from escrow_core.accounts import ApiKey, IssuedKey, KeyRole
from escrow_core.application.errors import NotFound
from escrow_core.application.ids import well_formed
from escrow_core.application.principal import Principal
from escrow_core.application.runtime import Runtime
from escrow_core.application.transactions import Keep, write

BOOTSTRAP_ADMIN_ID = "key_bootstrap_admin"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def authenticate(runtime: Runtime, secret: str) -> ApiKey | None:
    """The active key with this secret, if any."""
    admin_key = runtime.settings.admin_key
    if admin_key and hmac.compare_digest(secret.encode(), admin_key.get_secret_value().encode()):
        return ApiKey(BOOTSTRAP_ADMIN_ID, KeyRole.ADMIN, None, None, _EPOCH, None)
    async with runtime.store.read() as conn:
        return await accounts.find_active_key(conn, secret)


async def create_role_key(
    runtime: Runtime, principal: Principal, role: KeyRole, keep: Keep[IssuedKey] | None = None
) -> IssuedKey:
    """A key for the admin, mediator or payments role (admin only)."""
    principal.require_admin("Only an admin makes keys for party-less roles.")

    async def work(conn: AsyncConnection, now: datetime) -> IssuedKey:
        return await accounts.create_api_key(
            conn, role=role, party_id=None, created_by=principal.key_id, now=now
        )

    return await write(runtime.store, work, keep)


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
