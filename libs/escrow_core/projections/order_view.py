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
from escrow_core.store.schema import order_view
from escrow_core.store.upsert import dialect_insert


def apply(view: OrderState | None, event: AnyEvent) -> OrderState:
    return evolve(view, event)


def to_document(state: OrderState) -> dict[str, Any]:
    return state.model_dump(mode="json")


def from_document(document: dict[str, Any]) -> OrderState:
    return OrderState.model_validate(document)


def row_for(order_id: str, state: OrderState) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "version": state.version,
        "status": state.status.value,
        "buyer_id": state.terms.buyer_id,
        "supplier_id": state.terms.supplier_id,
        "currency": state.terms.currency,
        "total": state.terms.total,
        "next_timer_at": next_timer_at(state),
        "state": to_document(state),
        "created_at": state.placed_at,
        "updated_at": state.updated_at,
    }


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


async def save_many(
    conn: AsyncConnection, inserts: dict[str, OrderState], updates: dict[str, OrderState]
) -> None:
    """Write many rows at once (rebuilds): ``inserts`` are new, ``updates`` exist."""
    if inserts:
        await conn.execute(
            order_view.insert(), [row_for(order_id, s) for order_id, s in inserts.items()]
        )
    if updates:
        params = [{**row_for(order_id, s), "key": order_id} for order_id, s in updates.items()]
        for row in params:
            del row["order_id"], row["created_at"]
        statement = (
            order_view.update()
            .where(order_view.c.order_id == sa.bindparam("key"))
            .values({name: sa.bindparam(name) for name in params[0] if name != "key"})
        )
        await conn.execute(statement, params)


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
