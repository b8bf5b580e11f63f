"""``order_view``: each order's current state, kept inline with every command.

The row doubles as the aggregate's snapshot: the service loads it instead of re-reading the
stream. ``apply`` is the domain's ``evolve``; the row adds the columns lists filter on.
"""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.domain.events import AnyEvent
from escrow_core.domain.order import OrderState, evolve, next_timer_at
from escrow_core.store.database import driver_connection
from escrow_core.store.schema import order_view
from escrow_core.store.upsert import dialect_insert


def apply(view: OrderState | None, event: AnyEvent) -> OrderState:
    return evolve(view, event)


def to_document(state: OrderState) -> dict[str, Any]:
    return state.model_dump(mode="json")


def from_document(document: dict[str, Any]) -> OrderState:
    return OrderState.model_validate(document)


def row_for(order_id: str, state: OrderState, *, document: bool = True) -> dict[str, Any]:
    """The row's columns; ``document=False`` leaves the state out (the caller encodes it)."""
    row = {
        "order_id": order_id,
        "version": state.version,
        "status": state.status.value,
        "buyer_id": state.terms.buyer_id,
        "supplier_id": state.terms.supplier_id,
        "currency": state.terms.currency,
        "total": state.terms.total,
        "next_timer_at": next_timer_at(state),
        "created_at": state.placed_at,
        "updated_at": state.updated_at,
    }
    if document:
        row["state"] = to_document(state)
    return row


async def load(conn: AsyncConnection, order_id: str) -> OrderState | None:
    query = sa.select(order_view.c.state).where(order_view.c.order_id == order_id)
    document = (await conn.execute(query)).scalar_one_or_none()
    return None if document is None else from_document(document)


async def upsert(conn: AsyncConnection, order_id: str, state: OrderState) -> None:
    """Write the row for ``state``, inserting it or replacing the one there."""
    row = row_for(order_id, state)
    insert = dialect_insert(conn.dialect.name, order_view).values(row)
    kept = ("order_id", "created_at", "buyer_id", "supplier_id", "currency", "total")
    await conn.execute(
        insert.on_conflict_do_update(
            index_elements=["order_id"],
            set_={name: insert.excluded[name] for name in row if name not in kept},
        )
    )


async def upsert_many(conn: AsyncConnection, states: dict[str, OrderState]) -> None:
    """Write many rows at once, inserting or replacing (rebuilds)."""
    if not states:
        return
    if conn.dialect.name == "postgresql":
        driver = await driver_connection(conn)
        rows = [row_for(order_id, state, document=False) for order_id, state in states.items()]
        await driver.execute(
            _UPSERT_MANY_POSTGRESQL,
            *([row[name] for row in rows] for name in _UPSERT_COLUMNS[:-1]),
            [state.model_dump_json() for state in states.values()],
        )
        return
    for order_id, state in states.items():
        await upsert(conn, order_id, state)


_UPSERT_COLUMNS = (
    "order_id", "version", "status", "buyer_id", "supplier_id", "currency", "total",
    "next_timer_at", "created_at", "updated_at", "state",
)  # fmt: skip
_UPSERT_MANY_POSTGRESQL = """
INSERT INTO order_view (order_id, version, status, buyer_id, supplier_id, currency, total,
                        next_timer_at, created_at, updated_at, state)
SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::bigint[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[],
                     $11::jsonb[])
ON CONFLICT (order_id) DO UPDATE SET version = EXCLUDED.version, status = EXCLUDED.status,
    next_timer_at = EXCLUDED.next_timer_at, state = EXCLUDED.state,
    updated_at = EXCLUDED.updated_at
"""


async def all_rows(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    """Every row by order id, as stored (for verification)."""
    return {row.order_id: dict(row._mapping) for row in await conn.execute(sa.select(order_view))}


async def due_for_timers(conn: AsyncConnection, now: datetime, limit: int) -> list[tuple[str, int]]:
    """Orders with a timer due at ``now``: (order_id, version), soonest first."""
    query = (
        sa.select(order_view.c.order_id, order_view.c.version)
        .where(order_view.c.next_timer_at <= now)
        .order_by(order_view.c.next_timer_at)
        .limit(limit)
    )
    return [(row.order_id, row.version) for row in await conn.execute(query)]


async def list_page(
    conn: AsyncConnection,
    *,
    limit: int,
    parties: frozenset[str] | None = None,
    status: str | None = None,
    buyer_id: str | None = None,
    supplier_id: str | None = None,
    before: tuple[datetime, str] | None = None,
) -> list[tuple[str, OrderState]]:
    """Orders newest first; ``parties`` limits them to orders one of those parties is in;
    ``before`` is the (created_at, order_id) of the last row of the previous page."""
    c = order_view.c
    query = sa.select(c.order_id, c.state).order_by(c.created_at.desc(), c.order_id.desc())
    if parties is not None:
        query = query.where(sa.or_(c.buyer_id.in_(parties), c.supplier_id.in_(parties)))
    if status is not None:
        query = query.where(c.status == status)
    if buyer_id is not None:
        query = query.where(c.buyer_id == buyer_id)
    if supplier_id is not None:
        query = query.where(c.supplier_id == supplier_id)
    if before is not None:
        created_at, order_id = before
        query = query.where(
            sa.or_(
                c.created_at < created_at,
                sa.and_(c.created_at == created_at, c.order_id < order_id),
            )
        )
    rows = await conn.execute(query.limit(limit))
    return [(row.order_id, from_document(row.state)) for row in rows]


async def disputed(conn: AsyncConnection) -> list[tuple[str, OrderState]]:
    """Every order in dispute (the mediation queue), oldest dispute first."""
    query = sa.select(order_view.c.order_id, order_view.c.state).where(
        order_view.c.status == "disputed"
    )
    orders = [(row.order_id, from_document(row.state)) for row in await conn.execute(query)]
    return sorted(
        orders,
        key=lambda pair: (
            pair[1].dispute.opened_at if pair[1].dispute else pair[1].updated_at,
            pair[0],
        ),
    )


async def parties_of(conn: AsyncConnection, order_ids: set[str]) -> dict[str, tuple[str, str]]:
    """(buyer_id, supplier_id) of each of ``order_ids`` that exists."""
    if not order_ids:
        return {}
    c = order_view.c
    query = sa.select(c.order_id, c.buyer_id, c.supplier_id).where(c.order_id.in_(order_ids))
    return {row.order_id: (row.buyer_id, row.supplier_id) for row in await conn.execute(query)}
