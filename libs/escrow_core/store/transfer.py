"""Whole tables in and out, for ``escrow export`` and ``escrow import`` (SQLAlchemy Core).

Every table of ``schema.metadata`` is either carried by an export or left behind, and why is
written down here (``LEFT_BEHIND``); a test holds the two lists to the schema, so a new table
is a decision, not an accident. The log itself is read through ``Store.whole_log`` (commit
order) and written back through ``Store.restore_rows`` (positions kept).
"""

from collections.abc import AsyncIterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from escrow_core.store.interface import Store
from escrow_core.store.schema import (
    api_keys,
    events,
    parties,
    service_clock,
    webhook_deliveries,
    webhook_dispatch_checkpoint,
    webhook_endpoints,
)

CARRIED = (
    "service_clock",  # the sandbox offset: the orders' deadlines were set on that clock
    "parties",
    "api_keys",  # only the SHA-256 of each secret is stored, so only that travels
    "webhook_endpoints",  # with their signing secrets: the file is written mode 0600
    "webhook_deliveries",  # the pending ones only (see PENDING_DELIVERY)
    "events",
    "webhook_dispatch_checkpoint",
)
LEFT_BEHIND = {
    "order_view": "a projection: rebuilt from the log after the import",
    "party_balances": "a projection: rebuilt from the log after the import",
    "money_out": "a projection (payouts and refunds as they stand): rebuilt after the import",
    "ledger_postings": (
        "a projection of the log's money events: rebuilt after the import (posting ids are "
        "the new database's)"
    ),
    "idempotency_keys": (
        "answers kept for a day for clients retrying a request; an import is a cut-over, and "
        "a command retried after it is decided on the imported orders like any other"
    ),
    "supplier_performance": (
        "an asynchronous projection: rebuilt from the log after the import, its checkpoint "
        "set by that rebuild"
    ),
    "supplier_performance_orders": "the same projection's rows per order: rebuilt alike",
    "webhook_attempts": (
        "the old server's record of each POST it made; the deliveries still owed travel"
    ),
}

#: Tables an import must find empty (the migrations seed the clock and the checkpoint).
MUST_BE_EMPTY = (events, parties, api_keys, webhook_endpoints)

# A delivery still owed travels: the dispatcher's checkpoint travels too and is past its
# event, so it would never be planned again. The lease belonged to a sender of the old
# database and is dropped. Settled deliveries and their attempts are history, not a duty.
PENDING_DELIVERY = [
    column
    for column in webhook_deliveries.columns
    if column.name not in ("status", "locked_until", "lease_token", "completed_at")
]


async def schema_revision(conn: AsyncConnection) -> str:
    """The database's alembic revision."""
    return str((await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar())


async def contents(store: Store) -> dict[str, int]:
    """How many rows each table an import must find empty holds (none if it has no schema)."""
    async with store.read() as conn:
        present = await conn.run_sync(lambda sync: set(sa.inspect(sync).get_table_names()))
        return {
            table.name: int(
                (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()
            )
            for table in MUST_BE_EMPTY
            if table.name in present
        }


async def pages(
    store: Store,
    columns: Sequence[sa.ColumnElement[Any]],
    key: sa.Column[Any],
    *,
    where: sa.ColumnElement[bool] | None = None,
    size: int,
) -> AsyncIterator[list[dict[str, Any]]]:
    """The rows of ``columns`` in pages of ``size``, in the order of the unique ``key``
    (one short read each: nothing is held open between pages)."""
    query = sa.select(*columns).order_by(key).limit(size)
    if where is not None:
        query = query.where(where)
    last: Any = None
    while True:
        async with store.read() as conn:
            page = query if last is None else query.where(key > last)
            rows = [dict(row._mapping) for row in await conn.execute(page)]
        if not rows:
            return
        last = rows[-1][key.name]
        yield rows


def party_pages(store: Store, *, managed: bool, size: int) -> AsyncIterator[list[dict[str, Any]]]:
    """Parties nobody manages, or the managed ones (written after their managers)."""
    where = parties.c.managed_by.is_not(None) if managed else parties.c.managed_by.is_(None)
    return pages(store, list(parties.columns), parties.c.id, where=where, size=size)


def key_pages(store: Store, *, size: int) -> AsyncIterator[list[dict[str, Any]]]:
    return pages(store, list(api_keys.columns), api_keys.c.id, size=size)


def endpoint_pages(store: Store, *, size: int) -> AsyncIterator[list[dict[str, Any]]]:
    return pages(store, list(webhook_endpoints.columns), webhook_endpoints.c.id, size=size)


def pending_delivery_pages(store: Store, *, size: int) -> AsyncIterator[list[dict[str, Any]]]:
    pending = webhook_deliveries.c.status == "pending"
    return pages(store, PENDING_DELIVERY, webhook_deliveries.c.id, where=pending, size=size)


async def checkpoints(store: Store) -> dict[str, tuple[int, int]]:
    """Every log reader's (transaction_id, position), by name."""
    c = webhook_dispatch_checkpoint.c
    async with store.read() as conn:
        rows = await conn.execute(sa.select(c.name, c.transaction_id, c.position))
        return {row.name: (int(row.transaction_id), int(row.position)) for row in rows}


async def clock_offset(store: Store) -> int:
    async with store.read() as conn:
        found = await conn.execute(sa.select(service_clock.c.offset_seconds))
        return int(found.scalar_one_or_none() or 0)


# --- writing, in the import's one transaction ---------------------------------------------
TABLES: dict[str, sa.Table] = {
    table.name: table
    for table in (parties, api_keys, webhook_endpoints, webhook_deliveries, events)
}


async def restore(
    conn: AsyncConnection, store: Store, table_name: str, rows: Sequence[dict[str, Any]]
) -> None:
    """Insert exported rows of ``table_name`` (a pending delivery becomes pending again)."""
    table = TABLES[table_name]
    if table is webhook_deliveries:
        rows = [{**row, "status": "pending"} for row in rows]
    await store.restore_rows(conn, table, rows)


async def set_clock(conn: AsyncConnection, offset_seconds: int) -> None:
    await conn.execute(service_clock.update().values(offset_seconds=offset_seconds))


async def set_checkpoint(
    conn: AsyncConnection, store: Store, name: str, transaction_id: int, position: int
) -> None:
    """Put log reader ``name`` at (transaction_id, position), adding its row if need be."""
    values = {"name": name, "transaction_id": transaction_id, "position": position}
    insert = store.upsert(webhook_dispatch_checkpoint)
    await conn.execute(
        insert.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "transaction_id": insert.excluded.transaction_id,
                "position": insert.excluded.position,
            },
        ),
        values,
    )
