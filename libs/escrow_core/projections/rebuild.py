"""Rebuild the inline projections from the log.

The log is streamed in batches and each batch commits on its own, so a rebuild never holds
back the log readers' snapshot horizon. Run it with the writers stopped: commands load their
snapshot from ``order_view`` (they fall back to the stream while a row is missing).
"""

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from escrow_core.domain.events import EVENT_TYPES, AnyEvent, event_from_data
from escrow_core.domain.order import OrderState, evolve
from escrow_core.projections import (
    ledger,
    money_out,
    order_view,
    party_balances,
    supplier_performance_log,
)
from escrow_core.store import BalanceChange, Posting, RecordedEvent, Store

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


async def rebuild(
    store: Store,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] = lambda n: None,
) -> int:
    """Empty and refill the inline projections and the supplier performance projection
    (asynchronous: the worker keeps it after this) in one pass over the log, each event
    decoded once; returns the events read."""
    await store.reset_projections()
    await store.reset_performance()
    states: dict[str, OrderState] = {}
    read = 0
    with states_kept_out_of_gc() as freeze:
        async for batch in store.whole_log(batch_size=batch_size):
            touched: set[str] = set()
            balances: list[BalanceChange] = []
            postings: list[Posting] = []
            moved: dict[str, set[str]] = {}  # order id -> its payouts and refunds touched
            decoded: dict[int, AnyEvent] = {}  # by position, for the performance projection
            for recorded in filter(is_order_event, batch):
                order_id = recorded.stream_id
                event = event_from_data(recorded.type, recorded.data)
                decoded[recorded.position] = event
                states[order_id] = order = evolve(states.get(order_id), event)
                touched.add(order_id)
                balances += party_balances.changes(
                    order_id, order, event, recorded.version, recorded.position
                )
                if isinstance(event, ledger.MONEY_EVENTS):
                    postings += ledger.postings(order_id, order, event, str(recorded.event_id))
                    moved.setdefault(order_id, set()).update(money_out.touched([event]))
            rows = [order_view.row_for(order_id, states[order_id]) for order_id in touched]
            money_rows = [
                row
                for order_id, ids in moved.items()
                for row in money_out.rows_for(order_id, states[order_id], ids)
            ]
            await store.write_projections(rows, balances, postings, money_rows)
            await supplier_performance_log.rebuild_batch(store, batch, decoded)
            freeze()
            read += len(batch)
            progress(len(batch))
    return read
