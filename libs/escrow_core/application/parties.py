"""Parties: registration, listing, changes, deactivation, their keys and balances.

Who: an admin manages every party; an agent, the parties it registered (their name and
metadata, not Trade Assurance); a party sees itself. A deactivated party's keys stop working,
its agent may no longer act for it or change it, and it cannot be party to a new order; its
running orders go on.
"""

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core import accounts
from escrow_core.accounts import IssuedKey, KeyRole, KeyScope, Party, PartyKind
from escrow_core.application import party_metadata
from escrow_core.application.errors import (
    Conflict,
    Forbidden,
    Invalid,
    party_not_found,
)
from escrow_core.application.ids import well_formed
from escrow_core.application.keys import check_expiry, created_cursor
from escrow_core.application.pagination import Page, paginate
from escrow_core.application.principal import Principal
from escrow_core.application.runtime import Runtime
from escrow_core.application.transactions import Keep, write
from escrow_core.store import BalanceTotals


def may_manage(principal: Principal, party: Party) -> bool:
    """Admin, or the agent that registered the party."""
    if principal.is_admin:
        return True
    return principal.role is KeyRole.AGENT and party.managed_by == principal.party_id


def may_see(principal: Principal, party: Party) -> bool:
    return may_manage(principal, party) or principal.party_id == party.id


async def visible_party(conn: AsyncConnection, principal: Principal, party_id: str) -> Party:
    """The party, if the caller may see it; NotFound otherwise (never says which)."""
    party = await accounts.get_party(conn, party_id) if well_formed(party_id, "pty") else None
    if party is None or not may_see(principal, party):
        raise party_not_found()
    return party


def _managed_by_new(principal: Principal, kind: PartyKind, trade_assurance: bool) -> str | None:
    """Who manages a party this caller registers: the agent itself, or nobody (an admin's)."""
    if principal.role is KeyRole.AGENT and principal.on_behalf_of is None:
        if kind is PartyKind.AGENT:
            raise Forbidden("forbidden", "An agent registers buyers and suppliers only.")
        if trade_assurance:
            raise Forbidden("trade_assurance_admin_only", "Only an admin sets trade_assurance.")
        return principal.party_id
    if principal.is_admin:
        return None
    raise Forbidden("forbidden", "Only an admin or an agent registers parties.")


def _suppliers_only(kind: PartyKind, trade_assurance: bool) -> None:
    if trade_assurance and kind is not PartyKind.SUPPLIER:
        raise Invalid(
            "trade_assurance_suppliers_only",
            "Trade Assurance is for suppliers.",
            field="trade_assurance",
            where="body",
            reason="suppliers_only",
            message="only a supplier can be Trade Assurance enabled",
        )


async def register(
    runtime: Runtime,
    principal: Principal,
    *,
    kind: PartyKind,
    name: str,
    trade_assurance: bool,
    metadata: Mapping[str, object] | None = None,
    keep: Keep[Party] | None = None,
) -> Party:
    managed_by = _managed_by_new(principal, kind, trade_assurance)
    _suppliers_only(kind, trade_assurance)
    kept = party_metadata.merged({}, metadata or {})

    async def work(conn: AsyncConnection, now: datetime) -> Party:
        return await accounts.create_party(
            conn,
            kind=kind,
            name=name,
            trade_assurance=trade_assurance,
            managed_by=managed_by,
            now=now,
            metadata=kept,
        )

    return await write(runtime.store, work, keep)


async def list_page(
    runtime: Runtime,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
    kind: PartyKind | None = None,
) -> Page[Party]:
    """Parties newest first: every one for an admin, an agent's own for an agent."""
    managed_by = None
    if not principal.is_admin:
        if principal.role is not KeyRole.AGENT or principal.on_behalf_of is not None:
            raise Forbidden("forbidden", "Only an admin or an agent (as itself) lists parties.")
        managed_by = principal.party_id

    async def fetch(before: tuple[datetime, str] | None, limit: int) -> list[Party]:
        async with runtime.store.read() as conn:
            return await accounts.list_parties(
                conn, limit=limit, kind=kind, managed_by=managed_by, before=before
            )

    return await paginate(
        fetch,
        limit=limit,
        cursor=cursor,
        parse=lambda raw: created_cursor(raw, "pty"),
        key=lambda party: [party.created_at.isoformat(), party.id],
    )


async def update(
    runtime: Runtime,
    principal: Principal,
    party_id: str,
    *,
    name: str | None = None,
    metadata: Mapping[str, object] | None = None,
    trade_assurance: bool | None = None,
    keep: Keep[Party] | None = None,
) -> Party:
    """Change the name, merge metadata (admin, or the party's agent as itself), or set a
    supplier's Trade Assurance (admin only; orders already placed keep theirs)."""

    async def work(conn: AsyncConnection, now: datetime) -> Party:
        party = await visible_party(conn, principal, party_id)
        if not may_manage(principal, party) or principal.on_behalf_of is not None:
            raise Forbidden("forbidden", "Only an admin or the party's agent changes a party.")
        if trade_assurance is not None:
            principal.require_admin(
                "Only an admin sets trade_assurance.", "trade_assurance_admin_only"
            )
            _suppliers_only(party.kind, trade_assurance)
        if not principal.is_admin:
            _active_for_agent(party)
        kept = None if metadata is None else party_metadata.merged(party.metadata, metadata)
        updated = await accounts.update_party(
            conn, party.id, name=name, metadata=kept, trade_assurance=trade_assurance
        )
        if updated is None:
            raise party_not_found()
        return updated

    return await write(runtime.store, work, keep)


async def deactivate(
    runtime: Runtime, principal: Principal, party_id: str, keep: Keep[Party] | None = None
) -> Party:
    """Deactivate the party (admin only); again is a no-op answering the party as it is."""

    async def work(conn: AsyncConnection, now: datetime) -> Party:
        party = await visible_party(conn, principal, party_id)
        principal.require_admin("Only an admin deactivates a party.")
        deactivated = await accounts.deactivate_party(conn, party.id, now)
        if deactivated is None:
            raise party_not_found()
        return deactivated

    return await write(runtime.store, work, keep)


def _active_for_agent(party: Party) -> None:
    if party.deactivated_at is not None:
        raise Forbidden("party_deactivated", "The party is deactivated: its agent cannot act.")


async def get(runtime: Runtime, principal: Principal, party_id: str) -> Party:
    async with runtime.store.read() as conn:
        return await visible_party(conn, principal, party_id)


def check_party_id(party_id: str) -> None:
    """NotFound for a string that is no party id (before an Idempotency-Key is claimed)."""
    if not well_formed(party_id, "pty"):
        raise party_not_found()


async def create_key(
    runtime: Runtime,
    principal: Principal,
    party_id: str,
    *,
    scope: KeyScope = KeyScope.FULL,
    expires_at: datetime | None = None,
    keep: Keep[IssuedKey] | None = None,
) -> IssuedKey:
    """A key for the party (admin, or its agent acting as itself), of ``scope``, valid until
    ``expires_at`` (if given: a moment still to come)."""

    async def work(conn: AsyncConnection, now: datetime) -> IssuedKey:
        party = await visible_party(conn, principal, party_id)
        if not may_manage(principal, party) or principal.on_behalf_of is not None:
            raise Forbidden("forbidden", "Only an admin or the party's agent makes its keys.")
        if not principal.is_admin:
            _active_for_agent(party)
        elif party.deactivated_at is not None:
            raise Conflict("party_deactivated", "The party is deactivated: it takes no new keys.")
        check_expiry(expires_at, now)
        return await accounts.create_api_key(
            conn,
            role=KeyRole(party.kind.value),
            party_id=party.id,
            created_by=principal.key_id,
            now=now,
            scope=scope,
            expires_at=expires_at,
        )

    return await write(runtime.store, work, keep)


async def balances(runtime: Runtime, principal: Principal, party_id: str) -> list[BalanceTotals]:
    """Held, released (gross), refunded and fees per currency."""
    await get(runtime, principal, party_id)
    return await runtime.store.balances_of(party_id)
