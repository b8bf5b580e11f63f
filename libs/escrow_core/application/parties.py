"""Parties: registration, reading, Trade Assurance, their keys and balances.

Who: an admin manages every party; an agent, the parties it registered; a party sees itself.
"""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core import accounts
from escrow_core.accounts import IssuedKey, KeyRole, Party, PartyKind
from escrow_core.application.errors import Forbidden, Invalid, party_not_found
from escrow_core.application.ids import well_formed
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
    keep: Keep[Party] | None = None,
) -> Party:
    managed_by = _managed_by_new(principal, kind, trade_assurance)
    _suppliers_only(kind, trade_assurance)

    async def work(conn: AsyncConnection, now: datetime) -> Party:
        return await accounts.create_party(
            conn,
            kind=kind,
            name=name,
            trade_assurance=trade_assurance,
            managed_by=managed_by,
            now=now,
        )

    return await write(runtime.store, work, keep)


async def get(runtime: Runtime, principal: Principal, party_id: str) -> Party:
    async with runtime.store.read() as conn:
        return await visible_party(conn, principal, party_id)


async def set_trade_assurance(
    runtime: Runtime, principal: Principal, party_id: str, enabled: bool
) -> Party:
    """Admin only; suppliers only. Orders already placed keep what they captured."""
    async with runtime.store.transaction() as conn:
        party = await visible_party(conn, principal, party_id)
        principal.require_admin("Only an admin sets trade_assurance.", "trade_assurance_admin_only")
        _suppliers_only(party.kind, enabled)
        updated = await accounts.set_trade_assurance(conn, party.id, enabled)
    if updated is None:
        raise party_not_found()
    return updated


def check_party_id(party_id: str) -> None:
    """NotFound for a string that is no party id (before an Idempotency-Key is claimed)."""
    if not well_formed(party_id, "pty"):
        raise party_not_found()


async def create_key(
    runtime: Runtime, principal: Principal, party_id: str, keep: Keep[IssuedKey] | None = None
) -> IssuedKey:
    """A key for the party (admin, or its agent acting as itself)."""

    async def work(conn: AsyncConnection, now: datetime) -> IssuedKey:
        party = await visible_party(conn, principal, party_id)
        if not may_manage(principal, party) or principal.on_behalf_of is not None:
            raise Forbidden("forbidden", "Only an admin or the party's agent makes its keys.")
        return await accounts.create_api_key(
            conn,
            role=KeyRole(party.kind.value),
            party_id=party.id,
            created_by=principal.key_id,
            now=now,
        )

    return await write(runtime.store, work, keep)


async def balances(runtime: Runtime, principal: Principal, party_id: str) -> list[BalanceTotals]:
    """Held, released (gross), refunded and fees per currency."""
    await get(runtime, principal, party_id)
    return await runtime.store.balances_of(party_id)
