"""The supplier performance projection against the log: the worker's step, the rebuild and
``escrow verify``'s check. The fold is ``supplier_performance`` (pure); the rows, counters and
checkpoint are written by the store in one transaction per batch, read with the
commit-order-safe reader the webhook dispatcher uses (``Store.follow_log``), so a restart
re-applies nothing and skips nothing.
"""

from collections.abc import Callable, Mapping
from dataclasses import asdict

from escrow_core.domain.events import EVENT_TYPES, AnyEvent, event_from_data
from escrow_core.domain.order import OrderState, evolve
from escrow_core.projections import supplier_performance as perf
from escrow_core.projections.order_view import upcast_document
from escrow_core.store import (
    PerformanceCounts,
    PerformanceOrder,
    RecordedEvent,
    Store,
)

BATCH_SIZE = 500
REBUILD_BATCH_SIZE = 2000
_ORDER_EVENT_TYPES = frozenset(EVENT_TYPES)


def _order_events(batch: list[RecordedEvent]) -> list[tuple[str, AnyEvent]]:
    return [
        (recorded.stream_id, event_from_data(recorded.type, recorded.data))
        for recorded in batch
        if recorded.stream_id.startswith("ord_") and recorded.type in _ORDER_EVENT_TYPES
    ]


def fold(
    known: dict[str, PerformanceOrder], batch: list[RecordedEvent]
) -> tuple[list[PerformanceOrder], list[PerformanceCounts]]:
    """The store's ``PerformanceFold``: ``supplier_performance.apply_batch`` over stored rows."""
    return _fold_events(known, _order_events(batch))


def _fold_events(
    known: dict[str, PerformanceOrder],
    events: list[tuple[str, AnyEvent]],
    step: perf.Step = evolve,
) -> tuple[list[PerformanceOrder], list[PerformanceCounts]]:
    tracks = {order_id: perf.Track.loaded(row) for order_id, row in known.items()}
    applied = perf.apply_batch(tracks, events, step)
    return [track.stored() for track in applied.orders.values()], list(applied.deltas.values())


async def rebuild_batch(
    store: Store, batch: list[RecordedEvent], folded: Mapping[int, tuple[AnyEvent, OrderState]]
) -> int:
    """One batch of a rebuild whose caller has decoded and folded its order events already
    (``folded``: by position, each event and its order's state after it): decoding and
    evolving them again was a third of a rebuild's CPU. Returns the events applied (those
    after the checkpoint, as ``project_performance_batch`` does)."""
    state_after = {id(event): state for event, state in folded.values()}

    def folded_state(state: OrderState | None, event: AnyEvent) -> OrderState:
        return state_after[id(event)]

    def fold_decoded(
        known: dict[str, PerformanceOrder], batch: list[RecordedEvent]
    ) -> tuple[list[PerformanceOrder], list[PerformanceCounts]]:
        events = [(r.stream_id, folded[r.position][0]) for r in batch if r.position in folded]
        return _fold_events(known, events, folded_state)

    return await store.project_performance_batch(fold_decoded, batch)


async def project_once(store: Store, *, batch_size: int = BATCH_SIZE) -> int:
    """The worker's step: apply the next batch after the checkpoint; returns the events read
    (``batch_size``: more is probably waiting)."""
    return await store.project_performance(fold, batch_size=batch_size)


async def catch_up(store: Store, *, batch_size: int = BATCH_SIZE) -> int:
    """Apply batches until nothing commit-safe is left to read; returns the events read."""
    read = 0
    while applied := await project_once(store, batch_size=batch_size):
        read += applied
    return read


async def rebuild(
    store: Store,
    *,
    batch_size: int = REBUILD_BATCH_SIZE,
    progress: Callable[[int], None] = lambda n: None,
) -> int:
    """Empty the projection and apply the whole log again, one transaction per batch (a worker
    running meanwhile takes turns with it, never applying an event twice); returns the events
    applied here."""
    await store.reset_performance()
    applied = 0
    async for batch in store.whole_log(batch_size=batch_size):
        applied += await store.project_performance_batch(fold, batch)
        progress(len(batch))
    return applied


async def verify(store: Store, *, batch_size: int = REBUILD_BATCH_SIZE) -> list[str]:
    """Recompute the projection from the log up to its checkpoint and name every difference
    from the stored rows and counters."""
    at, stored_rows, stored_counts = await store.performance_snapshot()
    tracks: dict[str, perf.Track] = {}
    async for batch in store.whole_log(batch_size=batch_size):
        applied = [event for event in batch if event.checkpoint <= at]
        tracks.update(perf.apply_batch(tracks, _order_events(applied)).orders)
        if len(applied) < len(batch):
            break
    expected_rows = {order_id: track.stored() for order_id, track in tracks.items()}
    live_rows = {row.order_id: row for row in stored_rows}
    problems = [
        f"supplier_performance_orders has {order_id} but the log has no such order"
        for order_id in sorted(live_rows.keys() - expected_rows.keys())
    ]
    for order_id, expected in sorted(expected_rows.items()):
        live = live_rows.get(order_id)
        if live is None:
            problems.append(f"supplier_performance_orders lacks {order_id}")
            continue
        want, have = perf.describe(expected), perf.describe(live)
        problems += [
            f"supplier_performance_orders {order_id}.{name}: live {have[name]!r}, "
            f"log says {want[name]!r}"
            for name in want
            if want[name] != have[name]
        ]
        if _document(live) != _document(expected):
            problems.append(f"supplier_performance_orders {order_id}.state differs from the log")
    expected_counts = perf.totals(expected_rows.values())
    live_counts = {(c.supplier_id, c.currency): c for c in stored_counts}
    for key in sorted(expected_counts.keys() | live_counts.keys()):
        want_counts = expected_counts.get(key, PerformanceCounts(*key))
        have_counts = live_counts.get(key, PerformanceCounts(*key))
        if want_counts != have_counts:
            problems.append(
                f"supplier_performance {key[0]}/{key[1]}: live {asdict(have_counts)}, "
                f"log says {asdict(want_counts)}"
            )
    return problems


def _document(row: PerformanceOrder) -> object:
    return None if row.state is None else upcast_document(row.state)
