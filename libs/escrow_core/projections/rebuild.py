"""Rebuild the inline projections from the log.

The log is streamed in batches and each batch commits on its own, so a rebuild never holds
back the log readers' snapshot horizon. Run it with the writers stopped: commands load their
snapshot from ``order_view`` (they fall back to the stream while a row is missing).
"""

import asyncio
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from escrow_core.domain.events import EVENT_TYPES, AnyEvent, event_from_data
from escrow_core.domain.order import OrderState, evolve
from escrow_core.projections import (
    ledger,
    money_out,
    order_view,
    party_balances,
    supplier_performance_log,
)
from escrow_core.store import (
    BalanceChange,
    MoneyOutRow,
    OrderRow,
    Posting,
    RecordedEvent,
    Store,
)

BATCH_SIZE = 2000
ORDER_STREAM_PREFIX = "ord_"
_ORDER_EVENT_TYPES = frozenset(EVENT_TYPES)


def is_order_event(recorded: RecordedEvent) -> bool:
    return (
        recorded.stream_id.startswith(ORDER_STREAM_PREFIX) and recorded.type in _ORDER_EVENT_TYPES
    )


@contextmanager
def states_kept_out_of_gc() -> Iterator[Callable[[], None]]:
    """Replaying the log keeps every order's state alive to the end; the cyclic garbage
    collector would walk all of them again and again (a quarter of a rebuild's time). The
    yielded function freezes what is alive so far, out of its reach; all is handed back after.
    """
    try:
        yield gc.freeze
    finally:
        gc.unfreeze()


@dataclass(slots=True)
class _Projected:
    """One batch of the log folded: what the rebuild writes for it."""

    rows: list[OrderRow]
    balances: list[BalanceChange]
    postings: list[Posting]
    money_rows: list[MoneyOutRow]
    # By position, each order event and its order's state after it, for supplier performance.
    folded: dict[int, tuple[AnyEvent, OrderState]]


def _project(batch: list[RecordedEvent], states: dict[str, OrderState]) -> _Projected:
    """Fold ``batch`` into ``states`` (each order's state, moved on in place) and the rows."""
    touched: set[str] = set()
    projected = _Projected([], [], [], [], {})
    moved: dict[str, set[str]] = {}  # order id -> its payouts and refunds touched
    for recorded in filter(is_order_event, batch):
        order_id = recorded.stream_id
        event = event_from_data(recorded.type, recorded.data)
        states[order_id] = order = evolve(states.get(order_id), event)
        projected.folded[recorded.position] = (event, order)
        touched.add(order_id)
        projected.balances += party_balances.changes(
            order_id, order, event, recorded.version, recorded.position
        )
        if isinstance(event, ledger.MONEY_EVENTS):
            projected.postings += ledger.postings(order_id, order, event, str(recorded.event_id))
            moved.setdefault(order_id, set()).update(money_out.touched([event]))
    projected.rows = [order_view.row_for(order_id, states[order_id]) for order_id in touched]
    projected.money_rows = [
        row
        for order_id, ids in moved.items()
        for row in money_out.rows_for(order_id, states[order_id], ids)
    ]
    return projected


async def _write(store: Store, batch: list[RecordedEvent], projected: _Projected) -> None:
    p = projected
    await store.write_projections(p.rows, p.balances, p.postings, p.money_rows)
    await supplier_performance_log.rebuild_batch(store, batch, p.folded)


async def rebuild(
    store: Store,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] = lambda n: None,
) -> int:
    """Empty and refill the inline projections and the supplier performance projection
    (asynchronous: the worker keeps it after this) in one pass over the log, each event
    decoded once; returns the events read.

    A batch is written while the next is read and folded: the database's half and ours
    overlap (waiting for the writes was two fifths of a rebuild's time). The writes still go
    one batch after the other, in the log's order."""
    await store.reset_projections()
    await store.reset_performance()
    states: dict[str, OrderState] = {}
    read = 0
    writing: asyncio.Task[None] | None = None
    writing_size = 0
    with states_kept_out_of_gc() as freeze:
        try:
            async for batch in store.whole_log(batch_size=batch_size):
                projected = _project(batch, states)
                freeze()
                if writing is not None:
                    await writing
                    progress(writing_size)
                writing = asyncio.create_task(_write(store, batch, projected))
                writing_size = len(batch)
                read += len(batch)
            if writing is not None:
                await writing
                progress(writing_size)
        finally:
            if writing is not None and not writing.done():
                writing.cancel()
                await asyncio.gather(writing, return_exceptions=True)
    return read
