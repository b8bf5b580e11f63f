"""What the database holds now, for the metrics: each figure one index lookup, never a scan.

    deliveries pending   counted on the partial index ``webhook_deliveries_due_idx`` (pending
                         rows only), so it costs what is pending, not what was ever delivered
    timers due           counted on ``order_view_next_timer_idx``: the orders whose next timer
                         is due by the service clock (the sandbox offset applied)
    dispatcher position  the ``webhooks`` checkpoint row (its primary key)
    log head             ``Store.log_head``: the last event a commit-safe reader may read

Delivery rows are never deleted, so ``succeeded`` and ``failed`` have no index to count on
and are not read here: counting them would read the whole table on every scrape.

The partial indexes' predicates are written as literals: a bound ``status = $1`` does not
prove ``status = 'pending'`` to PostgreSQL's generic plans or to SQLite, and either would
fall back to reading the whole table.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from escrow_core.store.interface import Store
from escrow_core.store.schema import order_view, webhook_deliveries, webhook_dispatch_checkpoint

DISPATCHER_CHECKPOINT = "webhooks"  # escrow_core.webhooks.dispatcher.CHECKPOINT_NAME

_PENDING = sa.text("webhook_deliveries.status = 'pending'")


@dataclass(frozen=True, slots=True)
class StoreGauges:
    """The database's state at one moment, as the metrics show it."""

    deliveries_pending: int
    timers_due: int
    log_head_position: int
    dispatcher_position: int


def gauges_query(now: datetime) -> sa.Select[Any]:
    """One round trip: pending deliveries, timers due at ``now``, the dispatcher's position."""
    pending = sa.select(sa.func.count()).select_from(webhook_deliveries).where(_PENDING)
    due = (
        sa.select(sa.func.count()).select_from(order_view).where(order_view.c.next_timer_at <= now)
    )
    checkpoint = webhook_dispatch_checkpoint.c
    dispatched = sa.select(sa.func.coalesce(sa.func.max(checkpoint.position), 0)).where(
        checkpoint.name == DISPATCHER_CHECKPOINT
    )
    return sa.select(pending.scalar_subquery(), due.scalar_subquery(), dispatched.scalar_subquery())


async def read_gauges(store: Store) -> StoreGauges:
    """The figures of the module docstring, read now."""
    now = await store.now()
    head = await store.log_head()
    async with store.read() as conn:
        pending, due, dispatched = (await conn.execute(gauges_query(now))).one()
    return StoreGauges(
        deliveries_pending=int(pending),
        timers_due=int(due),
        log_head_position=head.position,
        dispatcher_position=int(dispatched),
    )
