"""A party's ledger and its accounts' balances (DESIGN 7.1): the party itself, its agent,
admin and payments see them; anyone else is told the party is not found."""

from typing import Any

from escrow_core import accounts
from escrow_core.accounts import KeyRole
from escrow_core.application.errors import party_not_found
from escrow_core.application.ids import well_formed
from escrow_core.application.pagination import Page, paginate, require
from escrow_core.application.principal import Principal
from escrow_core.application.runtime import Runtime
from escrow_core.projections import ledger
from escrow_core.store import AccountBalance, BalanceTotals, Posting

MAX_POSTING_ID = 2**63
# Who sees every party's ledger, besides the party and its agent.
LEDGER_READERS = frozenset({KeyRole.ADMIN, KeyRole.PAYMENTS})


async def _check(runtime: Runtime, principal: Principal, party_id: str) -> None:
    if principal.role in LEDGER_READERS:
        party = (
            await accounts.find_party(runtime.store, party_id)
            if well_formed(party_id, "pty")
            else None
        )
        if party is None:
            raise party_not_found()
        return
    # A mediator sees every order, but no party's ledger (DESIGN 7.6).
    own = principal.party_id == party_id or party_id in principal.managed
    if not well_formed(party_id, "pty") or not own:
        raise party_not_found()


async def postings(
    runtime: Runtime, principal: Principal, party_id: str, *, limit: int, cursor: str | None
) -> Page[Posting]:
    """Postings on the party's accounts, oldest first."""
    await _check(runtime, principal, party_id)

    async def fetch(after: int | None, limit: int) -> list[Posting]:
        return await runtime.store.ledger_of(
            ledger.party_accounts(party_id), after=after, limit=limit
        )

    def parse(raw: Any) -> int:
        # A posting id is a BIGINT: anything past it would overflow the query, not page.
        require(isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < MAX_POSTING_ID)
        return int(raw)

    return await paginate(fetch, limit=limit, cursor=cursor, parse=parse, key=lambda p: p.id)


async def balances(runtime: Runtime, principal: Principal, party_id: str) -> list[AccountBalance]:
    """Posted and pending per account of the party's, per currency."""
    await _check(runtime, principal, party_id)
    return await runtime.store.account_balances(ledger.party_accounts(party_id))


async def party_balances(
    runtime: Runtime, principal: Principal, party_id: str
) -> tuple[list[BalanceTotals], list[AccountBalance]]:
    """The v1 totals over the party's orders per currency, and its accounts' balances."""
    await _check(runtime, principal, party_id)
    totals = await runtime.store.balances_of(party_id)
    return totals, await runtime.store.account_balances(ledger.party_accounts(party_id))
