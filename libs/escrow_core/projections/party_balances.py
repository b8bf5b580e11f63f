"""``party_balances``: held / released / refunded per party and currency.

An append-only ledger of signed deltas, summed on read: a busy buyer with many orders in flight
never serialises its commands on one hot balance row.
"""

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.domain import events as e
from escrow_core.domain.order import OrderState
from escrow_core.store.database import driver_connection
from escrow_core.store.schema import party_balances


@dataclass(frozen=True, slots=True)
class Balance:
    currency: str
    held: int = 0
    released: int = 0
    refunded: int = 0
    fees: int = 0

    def __add__(self, other: "Balance") -> "Balance":
        return Balance(
            self.currency,
            self.held + other.held,
            self.released + other.released,
            self.refunded + other.refunded,
            self.fees + other.fees,
        )


def apply(order: OrderState, event: e.Event) -> Balance | None:
    """The change ``event`` makes to each party of ``order``, or None if it moves no money."""
    currency = order.terms.currency
    match event:
        case e.FundsHeld(amount=amount):
            return Balance(currency, held=amount)
        case e.FundsReleased(gross=gross, fee=fee):
            return Balance(currency, held=-gross, released=gross, fees=fee)
        case e.RefundIssued(amount=amount):
            return Balance(currency, held=-amount, refunded=amount)
    return None


def rows_for(
    order_id: str, order: OrderState, delta: Balance, position: int
) -> list[dict[str, Any]]:
    return [
        {
            "party_id": party_id,
            "currency": delta.currency,
            "order_id": order_id,
            "position": position,
            "held": delta.held,
            "released": delta.released,
            "refunded": delta.refunded,
            "fees": delta.fees,
        }
        for party_id in order.party_ids
    ]


async def insert(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql" and len(rows) > 50:  # a rebuild's batch: COPY it
        driver = await driver_connection(conn)
        columns = list(rows[0])
        records = [tuple(row[name] for name in columns) for row in rows]
        await driver.copy_records_to_table("party_balances", records=records, columns=columns)
        return
    await conn.execute(party_balances.insert(), rows)


async def for_party(conn: AsyncConnection, party_id: str) -> list[Balance]:
    c = party_balances.c
    query = (
        sa.select(
            c.currency,
            sa.func.sum(c.held),
            sa.func.sum(c.released),
            sa.func.sum(c.refunded),
            sa.func.sum(c.fees),
        )
        .where(c.party_id == party_id)
        .group_by(c.currency)
        .order_by(c.currency)
    )
    return [Balance(row[0], *(int(v) for v in row[1:])) for row in await conn.execute(query)]


async def all_balances(conn: AsyncConnection) -> dict[tuple[str, str], Balance]:
    """Every party's balance per currency (for verification)."""
    c = party_balances.c
    query = sa.select(
        c.party_id,
        c.currency,
        sa.func.sum(c.held),
        sa.func.sum(c.released),
        sa.func.sum(c.refunded),
        sa.func.sum(c.fees),
    ).group_by(c.party_id, c.currency)
    return {
        (row[0], row[1]): Balance(row[1], *(int(v) for v in row[2:]))
        for row in await conn.execute(query)
    }


def totals(entries: list[tuple[str, Balance]]) -> dict[tuple[str, str], Balance]:
    """Sum (party_id, delta) pairs per party and currency, as reading the table would."""
    summed: dict[tuple[str, str], Balance] = {}
    for party_id, delta in entries:
        key = (party_id, delta.currency)
        summed[key] = summed[key] + delta if key in summed else delta
    return summed
