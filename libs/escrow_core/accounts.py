"""Parties (buyers, suppliers, agents) and the API keys that act for them.

A key's secret is shown once; only its SHA-256 is stored. Keys are random and high-entropy,
not passwords, so a fast hash is right: a lookup is one indexed equality.
"""

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
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


class KeyScope(StrEnum):
    """What a key may do: everything its role may (``full``), or only read (``read``)."""

    FULL = "full"
    READ = "read"


PARTYLESS_ROLES = frozenset({KeyRole.ADMIN, KeyRole.MEDIATOR, KeyRole.PAYMENTS})


@dataclass(frozen=True, slots=True)
class Party:
    id: str
    kind: PartyKind
    name: str
    trade_assurance: bool
    managed_by: str | None
    created_at: datetime
    metadata: Mapping[str, str] = field(default_factory=dict)
    deactivated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    role: KeyRole
    party_id: str | None
    created_by: str | None
    created_at: datetime
    revoked_at: datetime | None
    scope: KeyScope = KeyScope.FULL
    expires_at: datetime | None = None
    last_used_at: datetime | None = None  # to the minute (application.keys.touch)

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


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
    metadata: Mapping[str, str] | None = None,
) -> Party:
    party = Party(new_id("pty"), kind, name, trade_assurance, managed_by, now, dict(metadata or {}))
    await conn.execute(
        parties.insert().values(
            id=party.id,
            kind=kind.value,
            name=name,
            trade_assurance=trade_assurance,
            managed_by=managed_by,
            created_at=now,
            metadata=dict(party.metadata),
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


async def find_parties(store: Store, party_ids: Sequence[str]) -> dict[str, Party]:
    """Several parties by id in one round trip (placing an order: its buyer and supplier)."""
    return {row["id"]: _party(row) for row in await store.find_parties(party_ids)}


def _party(row: Any) -> Party:
    return Party(
        row["id"],
        PartyKind(row["kind"]),
        row["name"],
        bool(row["trade_assurance"]),
        row["managed_by"],
        row["created_at"],
        dict(row["metadata"] or {}),
        row["deactivated_at"],
    )


async def update_party(
    conn: AsyncConnection,
    party_id: str,
    *,
    name: str | None = None,
    metadata: Mapping[str, str] | None = None,
    trade_assurance: bool | None = None,
) -> Party | None:
    """Set what is given (``metadata`` whole, already merged); None if there is no party."""
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = name
    if metadata is not None:
        values["metadata"] = dict(metadata)
    if trade_assurance is not None:
        values["trade_assurance"] = trade_assurance
    if values:
        await conn.execute(parties.update().where(parties.c.id == party_id).values(values))
    return await get_party(conn, party_id)


async def deactivate_party(conn: AsyncConnection, party_id: str, now: datetime) -> Party | None:
    """Deactivate the party (again: keeps the first time); None if there is no party."""
    await conn.execute(
        parties.update()
        .where(parties.c.id == party_id, parties.c.deactivated_at.is_(None))
        .values(deactivated_at=now)
    )
    return await get_party(conn, party_id)


async def list_parties(
    conn: AsyncConnection,
    *,
    limit: int,
    kind: PartyKind | None = None,
    managed_by: str | None = None,
    before: tuple[datetime, str] | None = None,
) -> list[Party]:
    """Parties newest first, after ``before`` (created_at, id); ``managed_by`` one agent's."""
    c = parties.c
    query = sa.select(parties).order_by(c.created_at.desc(), c.id.desc()).limit(limit)
    if kind is not None:
        query = query.where(c.kind == kind.value)
    if managed_by is not None:
        query = query.where(c.managed_by == managed_by)
    if before is not None:
        query = query.where(_before(c.created_at, c.id, before))
    return [_party(row._mapping) for row in await conn.execute(query)]


def _before(
    created_at: sa.ColumnElement[datetime], id_: sa.ColumnElement[str], key: tuple[datetime, str]
) -> sa.ColumnElement[bool]:
    return sa.or_(created_at < key[0], sa.and_(created_at == key[0], id_ < key[1]))


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
    scope: KeyScope = KeyScope.FULL,
    expires_at: datetime | None = None,
) -> IssuedKey:
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(new_id("key"), role, party_id, created_by, now, None, scope, expires_at)
    await conn.execute(
        api_keys.insert().values(
            id=key.id,
            key_hash=hash_secret(secret),
            role=role.value,
            party_id=party_id,
            created_by=created_by,
            created_at=now,
            scope=scope.value,
            expires_at=expires_at,
        )
    )
    return IssuedKey(key, secret)


def _key(row: sa.Row[tuple[object, ...]]) -> ApiKey:
    return ApiKey(
        row.id,
        KeyRole(row.role),
        row.party_id,
        row.created_by,
        row.created_at,
        row.revoked_at,
        KeyScope(row.scope),
        row.expires_at,
        row.last_used_at,
    )


async def find_active_key(conn: AsyncConnection, secret: str, now: datetime) -> ApiKey | None:
    """The key with this secret, unless it is revoked, expired or its party deactivated."""
    k = api_keys.c
    query = (
        sa.select(api_keys)
        .select_from(api_keys.outerjoin(parties, parties.c.id == k.party_id))
        .where(
            k.key_hash == hash_secret(secret),
            k.revoked_at.is_(None),
            sa.or_(k.expires_at.is_(None), k.expires_at > now),
            parties.c.deactivated_at.is_(None),
        )
    )
    row = (await conn.execute(query)).first()
    return None if row is None else _key(row)


async def list_api_keys(
    conn: AsyncConnection,
    *,
    limit: int,
    party_id: str | None = None,
    before: tuple[datetime, str] | None = None,
) -> list[ApiKey]:
    """Keys newest first, after ``before`` (created_at, id); ``party_id``: one party's."""
    k = api_keys.c
    query = sa.select(api_keys).order_by(k.created_at.desc(), k.id.desc()).limit(limit)
    if party_id is not None:
        query = query.where(k.party_id == party_id)
    if before is not None:
        query = query.where(_before(k.created_at, k.id, before))
    return [_key(row) for row in await conn.execute(query)]


async def touch_api_key(conn: AsyncConnection, key: ApiKey, minute: datetime) -> ApiKey:
    """Record use at ``minute``; never moves ``last_used_at`` back (another process's write
    of a later minute wins)."""
    k = api_keys.c
    await conn.execute(
        api_keys.update()
        .where(k.id == key.id, sa.or_(k.last_used_at.is_(None), k.last_used_at < minute))
        .values(last_used_at=minute)
    )
    return replace(key, last_used_at=minute)


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
