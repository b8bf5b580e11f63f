"""``Store.read_log_matching``: the log narrowed to some types and/or one stream, in the same
commit-safe order as ``read_log`` (the feed's ``type`` and ``order_id`` filters)."""

import asyncio
from typing import cast

import pytest

from escrow_core.store import LOG_START, Checkpoint, LogFilter, RecordedEvent, Store
from escrow_core.store.shared import CoreStore
from support.events import new_event, now, tail_log


async def _matching(
    store: Store, after: Checkpoint, only: LogFilter, count: int, *, limit: int = 2
) -> list[RecordedEvent]:
    """Page through the matching events from ``after`` until ``count`` have come (PostgreSQL
    holds events back while an older transaction anywhere on the server may commit)."""
    found: list[RecordedEvent] = []
    for _ in range(200):
        page = await store.read_log_matching(after, only, limit=limit)
        found += page
        if page:
            after = page[-1].checkpoint
        if len(found) >= count:
            return found
        if not page:
            await asyncio.sleep(0.05)
    raise AssertionError(f"only {len(found)} of {count} matching events came")


async def test_filters_narrow_the_log_in_its_order_and_page_by_checkpoint(
    fresh_store: Store,
) -> None:
    written: list[RecordedEvent] = []
    for stream in ("ord_a", "ord_b", "ord_a", "ord_c", "ord_b", "ord_a"):
        version = sum(1 for e in written if e.stream_id == stream)
        kind = ("x.one", "x.two", "x.three")[len(written) % 3]
        written += await fresh_store.append(stream, version, [new_event(kind)], recorded_at=now())
    everything, _ = await tail_log(fresh_store, LOG_START, count=len(written))
    assert everything == written

    for only in (
        LogFilter(types=("x.one",)),
        LogFilter(types=("x.three", "x.one")),
        LogFilter(stream_id="ord_a"),
        LogFilter(types=("x.one", "x.two"), stream_id="ord_b"),
        LogFilter(types=("x.nothing",), stream_id="ord_a"),
    ):
        expected = [
            e
            for e in written
            if (not only.types or e.type in only.types)
            and (only.stream_id is None or e.stream_id == only.stream_id)
        ]
        assert await _matching(fresh_store, LOG_START, only, len(expected)) == expected, only
        rest = await fresh_store.read_log_matching(written[-1].checkpoint, only, limit=10)
        assert rest == []
    # From the middle: only what comes after the checkpoint.
    after = written[2].checkpoint
    later = await fresh_store.read_log_matching(after, LogFilter(types=("x.one",)), limit=10)
    assert later == [e for e in written[3:] if e.type == "x.one"]


@pytest.mark.postgres_only
@pytest.mark.parametrize(
    "only", [LogFilter(types=("x.late",)), LogFilter(types=("x.late",), stream_id="ord_b")]
)
async def test_a_filtered_read_holds_back_what_may_still_commit_before_it(
    fresh_store: Store, only: LogFilter
) -> None:
    """Transaction A takes the lower position and commits after B: a filtered reader, like
    the log's, reads nothing past A while A runs, then A before B, never B alone."""
    store = cast(CoreStore, fresh_store)
    async with store.writer.connect() as tx_a, store.writer.connect() as tx_b:
        await tx_a.begin()
        [event_a] = await store.append_in(tx_a, "ord_b", 0, [new_event("x.late")], now())
        await tx_b.begin()
        [event_b] = await store.append_in(tx_b, "ord_c", 0, [new_event("x.late")], now())
        await tx_b.commit()
        assert event_a.position < event_b.position
        assert await store.read_log_matching(LOG_START, only, limit=10) == []
        await tx_a.commit()

    expected = [e for e in (event_a, event_b) if only.stream_id in (None, e.stream_id)]
    found = await _matching(store, LOG_START, only, len(expected))
    assert [e.event_id for e in found] == [e.event_id for e in expected]
