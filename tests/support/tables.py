"""Reading what the database holds, past the store's interface (for tests that check rows)."""

from typing import Any

import sqlalchemy as sa

from escrow_core.store import Store, schema


async def view_row(store: Store, order_id: str) -> dict[str, Any] | None:
    async with store.read() as conn:
        query = sa.select(schema.order_view).where(schema.order_view.c.order_id == order_id)
        row = (await conn.execute(query)).one_or_none()
    return None if row is None else dict(row._mapping)


async def balance_rows(store: Store, order_id: str) -> list[dict[str, Any]]:
    """The order's ledger rows, without the surrogate id, in log order."""
    t = schema.party_balances
    async with store.read() as conn:
        query = sa.select(t).where(t.c.order_id == order_id).order_by(t.c.position, t.c.party_id)
        rows = await conn.execute(query)
    return [{k: v for k, v in row._mapping.items() if k != "id"} for row in rows]
