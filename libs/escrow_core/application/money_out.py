"""Payouts and refunds: find one, list them, and run what the payment provider reports.

Who sees which (DESIGN 7.6): payments, admin and mediator every one; a party (or its agent)
those paid to it, which makes a supplier's payouts the supplier side's, a buyer's refunds the
buyer side's, and an agent's agency-fee payouts its own. Anything else is "not found".
Amounts are never taken from the client: the order computed them when it created each one.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from escrow_core.application import orders
from escrow_core.application.commands import CommandContext, CommandResult
from escrow_core.application.errors import NotFound
from escrow_core.application.idempotency import Remember
from escrow_core.application.ids import well_formed
from escrow_core.application.pagination import Page, cursor_time, paginate, require
from escrow_core.application.principal import Principal
from escrow_core.application.runtime import Runtime
from escrow_core.domain.commands import Command
from escrow_core.domain.order.money_out import PAYOUT_PREFIX, REFUND_PREFIX
from escrow_core.domain.roles import Actor
from escrow_core.projections.money_out import PAYOUT, REFUND
from escrow_core.store import MoneyOutQuery, MoneyOutRow

PREFIXES = {PAYOUT: PAYOUT_PREFIX, REFUND: REFUND_PREFIX}


def not_found(kind: str) -> NotFound:
    return NotFound(f"{kind}_not_found", f"No such {kind}.")


def may_see(principal: Principal, row: MoneyOutRow) -> bool:
    return principal.sees_everything or principal.can_see_party(row.party_id)


async def find(runtime: Runtime, principal: Principal, kind: str, object_id: str) -> MoneyOutRow:
    """The payout or refund, if the caller may see it."""
    row = (
        await runtime.store.find_money_out(object_id, kind)
        if well_formed(object_id, PREFIXES[kind])
        else None
    )
    if row is None or not may_see(principal, row):
        raise not_found(kind)
    return row


async def report(
    runtime: Runtime,
    principal: Principal,
    kind: str,
    object_id: str,
    make: Callable[[Actor], Command],
    *,
    context: CommandContext,
    remember: Remember | None = None,
) -> CommandResult:
    """Run ``make(actor)`` (a report or a retry) on the order the payout or refund is of."""
    row = await find(runtime, principal, kind, object_id)
    return await orders.execute(
        runtime, principal, row.order_id, make, context=context, remember=remember
    )


async def list_page(
    runtime: Runtime,
    principal: Principal,
    kind: str,
    *,
    limit: int,
    cursor: str | None,
    status: str | None = None,
    party_id: str | None = None,
    order_id: str | None = None,
) -> Page[MoneyOutRow]:
    """The payouts (or refunds) the caller may see, newest first."""
    parties = None if principal.sees_everything else principal.visible_parties

    async def fetch(before: tuple[datetime, str] | None, limit: int) -> list[MoneyOutRow]:
        query = MoneyOutQuery(kind, limit, parties, status, party_id, order_id, before)
        return await runtime.store.list_money_out(query)

    def parse(raw: Any) -> tuple[datetime, str]:
        require(isinstance(raw, list) and len(raw) == 2)
        created_at, object_id = cursor_time(raw[0]), str(raw[1])
        require(well_formed(object_id, PREFIXES[kind]))
        return created_at, object_id

    return await paginate(
        fetch,
        limit=limit,
        cursor=cursor,
        parse=parse,
        key=lambda row: [row.created_at.isoformat(), row.id],
    )
