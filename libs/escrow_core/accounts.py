"""Parties (buyers, suppliers, agents) and the API keys that act for them.

A key's secret is shown once; only its SHA-256 is stored. Keys are random and high-entropy,
not passwords, so a fast hash is right: a lookup is one indexed equality.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.ids import new_id
from escrow_core.store import Store
from escrow_core.store.schema import api_keys, parties

SECRET_PREFIX = "esk_"  # noqa: S105 - a prefix, not a secret


class PartyKind(StrEnum):
    BUYER = "buyer"
    SUPPLIER = "supplier"
    AGENT = "agent"


class KeyRole(StrEnum):
    ADMIN = "admin"
    MEDIATOR = "mediator"
    PAYMENTS = "payments"
    AGENT = "agent"
    BUYER = "buyer"
    SUPPLIER = "supplier"


PARTYLESS_ROLES = frozenset({KeyRole.ADMIN, KeyRole.MEDIATOR, KeyRole.PAYMENTS})


@dataclass(frozen=True, slots=True)
class Party:
    id: str
    kind: PartyKind
    name: str
    trade_assurance: bool
    managed_by: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    role: KeyRole
    party_id: str | None
    created_by: str | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key and its secret: the only moment the secret exists outside the caller."""

    key: ApiKey
    secret: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_party(
    conn: AsyncConnection,
    *,
    kind: PartyKind,
    name: str,
    trade_assurance: bool,
    managed_by: str | None,
    now: datetime,
) -> Party:
    party = Party(new_id("pty"), kind, name, trade_assurance, managed_by, now)
    await conn.execute(
        parties.insert().values(
            id=party.id,
            kind=kind.value,
            name=name,
            trade_assurance=trade_assurance,
            managed_by=managed_by,
            created_at=now,
        )
    )
    return party


async def get_party(conn: AsyncConnection, party_id: str) -> Party | None:
    row = (await conn.execute(sa.select(parties).where(parties.c.id == party_id))).first()
    return None if row is None else _party(row._mapping)


async def find_party(store: Store, party_id: str) -> Party | None:
    """``get_party`` on its own connection: one raw round trip on PostgreSQL (hot paths)."""
    row = await store.find_party(party_id)
    return None if row is None else _party(row)


def _party(row: Any) -> Party:
    return Party(
        row["id"],
        PartyKind(row["kind"]),
        row["name"],
        bool(row["trade_assurance"]),
        row["managed_by"],
        row["created_at"],
    )


async def set_trade_assurance(conn: AsyncConnection, party_id: str, enabled: bool) -> Party | None:
    """Turn Trade Assurance on or off for a party (placed orders keep what they captured)."""
    await conn.execute(
        parties.update().where(parties.c.id == party_id).values(trade_assurance=enabled)
    )
    return await get_party(conn, party_id)


async def managed_party_ids(conn: AsyncConnection, agent_id: str) -> frozenset[str]:
    query = sa.select(parties.c.id).where(parties.c.managed_by == agent_id)
    return frozenset((await conn.execute(query)).scalars())


async def create_api_key(
    conn: AsyncConnection,
    *,
    role: KeyRole,
    party_id: str | None,
    created_by: str | None,
    now: datetime,
) -> IssuedKey:
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(new_id("key"), role, party_id, created_by, now, None)
    await conn.execute(
        api_keys.insert().values(
            id=key.id,
            key_hash=hash_secret(secret),
            role=role.value,
            party_id=party_id,
            created_by=created_by,
            created_at=now,
        )
    )
    return IssuedKey(key, secret)


def _key(row: sa.Row[tuple[object, ...]]) -> ApiKey:
    return ApiKey(
        row.id, KeyRole(row.role), row.party_id, row.created_by, row.created_at, row.revoked_at
    )


async def find_active_key(conn: AsyncConnection, secret: str) -> ApiKey | None:
    query = sa.select(api_keys).where(
        api_keys.c.key_hash == hash_secret(secret), api_keys.c.revoked_at.is_(None)
    )
    row = (await conn.execute(query)).first()
    return None if row is None else _key(row)


async def get_api_key(conn: AsyncConnection, key_id: str) -> ApiKey | None:
    row = (await conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id))).first()
    return None if row is None else _key(row)


async def revoke_api_key(conn: AsyncConnection, key_id: str, now: datetime) -> ApiKey | None:
    """Revoke the key (revoking twice keeps the first time); None if there is no such key."""
    await conn.execute(
        api_keys.update()
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return await get_api_key(conn, key_id)
