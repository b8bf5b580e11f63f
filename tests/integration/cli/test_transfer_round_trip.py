"""Export and import in process, on each backend: the log comes back exactly (positions, ids,
times, data as stored), the projections rebuilt from it equal the ones the commands wrote, and
a database without the schema is not exported."""

import os
from pathlib import Path

import pytest

from escrow_core.application.transfer import TransferError, export_to, import_from
from escrow_core.application.upcasting import event_upcasters
from escrow_core.store import LOG_START, RecordedEvent, Store, open_store
from support.databases import TestDatabases
from support.performance import caught_up

from .busy_log import BusyLog


async def the_log(store: Store) -> list[tuple[object, ...]]:
    """Every event without its transaction id (which names a transaction of one database)."""
    found: list[RecordedEvent] = []
    async for batch in store.whole_log(batch_size=500):
        found += batch
    return [
        (e.position, e.stream_id, e.version, e.event_id, e.type, e.schema_version, e.data,
         e.metadata, e.recorded_at)
        for e in found
    ]  # fmt: skip


async def test_the_log_and_the_projections_come_back_as_they_were(
    fresh_store: Store, busy_log: BusyLog, test_databases: TestDatabases, tmp_path: Path
) -> None:
    file = tmp_path / "escrow.jsonl"
    await caught_up(fresh_store)  # as the worker would have
    counts = await export_to(fresh_store, file)
    assert counts["event"] == await fresh_store.count_events()

    url = await test_databases.create_empty()
    imported = open_store(url, upcasters=event_upcasters())
    try:
        assert await import_from(imported, file) == counts

        assert await the_log(imported) == await the_log(fresh_store)
        assert await imported.all_order_rows() == await fresh_store.all_order_rows()
        assert await imported.all_balances() == await fresh_store.all_balances()
        assert (await imported.log_head()).position == (await fresh_store.log_head()).position
        assert len(await imported.read_log(LOG_START, limit=10_000)) == counts["event"]
        # the asynchronous projection too: the import's rebuild read the whole log
        at, rows, totals = await imported.performance_snapshot()
        source_at, source_rows, source_totals = await fresh_store.performance_snapshot()
        assert (at.position, rows, totals) == (source_at.position, source_rows, source_totals)
        assert rows
    finally:
        await imported.dispose()
        await test_databases.drop(url)


async def test_a_database_without_the_schema_is_not_exported(
    empty_database_url: str, tmp_path: Path
) -> None:
    store = open_store(empty_database_url)
    try:
        with pytest.raises(TransferError, match="schema is not current: run escrow migrate"):
            await export_to(store, tmp_path / "escrow.jsonl")
    finally:
        await store.dispose()
    assert os.listdir(tmp_path) == []
