"""Issue 12, reproduction 2: one webhook replay over a large log beside a writer and a reader.

    python -m bench.replay_contention [--backend postgresql|sqlite] [--events 300000]

Seeds a log of complete orders of one buyer, registers the buyer's webhook endpoint, then runs
one replay from position 1 while a writer appends one event every 20 ms and a reader tails the
log. Reports how long the replay took and what it enqueued, the writer's worst wait, and the
worst delay between a write and the reader seeing it. Before the fix the replay scanned the
whole log in one transaction: on SQLite writers waited seconds for the write lock, on
PostgreSQL its old snapshot held every log reader back for as long as it ran.
"""

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from bench.log_speed import BUYER, SUPPLIER, order_events, seed
from bench.run import create_database
from escrow_core.accounts import KeyRole
from escrow_core.application import webhook_endpoints
from escrow_core.application.commands import CommandService
from escrow_core.application.principal import Principal
from escrow_core.application.runtime import Runtime
from escrow_core.application.upcasting import event_upcasters
from escrow_core.ids import new_id
from escrow_core.settings import Settings
from escrow_core.store import Checkpoint, NewEvent, Store, open_store, schema, upgrade_to_head
from escrow_core.store.postgres import PostgresStore
from escrow_core.webhooks import endpoints

WRITE_EVERY_SECONDS = 0.02
SQLITE_BATCH = 8_000


async def seed_sqlite(store: Store, events_wanted: int) -> int:
    template, now, written = order_events(datetime.now(UTC)), datetime.now(UTC), 0
    while written < events_wanted:
        rows = []
        for _ in range(SQLITE_BATCH // len(template)):
            order_id = new_id("ord")
            rows += [
                {"stream_id": order_id, "version": version, "event_id": str(uuid.uuid4()),
                 "type": e.type, "schema_version": e.schema_version,
                 "data": e.data, "metadata": e.metadata, "recorded_at": now}
                for version, e in enumerate(template, start=1)
            ]  # fmt: skip
        async with store.transaction() as conn:
            await conn.execute(schema.events.insert(), rows)
        written += len(rows)
    return written


async def prepare(store: Store, events_wanted: int) -> str:
    """Seed the log and the parties; the buyer's endpoint id."""
    if isinstance(store, PostgresStore):
        await seed(store, events_wanted)
    else:
        await seed_sqlite(store, events_wanted)
    now = datetime.now(UTC)
    async with store.transaction() as conn:
        for actor, kind in ((BUYER, "buyer"), (SUPPLIER, "supplier")):
            await conn.execute(
                schema.parties.insert().values(
                    id=actor.party_id, kind=kind, name=kind, trade_assurance=True, created_at=now
                )
            )
        endpoint = await endpoints.create(
            conn,
            owner_party_id=BUYER.party_id,
            url="http://127.0.0.1:9/hook",
            event_types=None,
            created_by=None,
            now=now,
        )
    return endpoint.id


async def writer(store: Store, stop: asyncio.Event, written: dict[str, float]) -> list[float]:
    waits: list[float] = []
    while not stop.is_set():
        stream_id, started = f"bench-writer-{uuid.uuid4().hex}", time.perf_counter()
        event = NewEvent(uuid.uuid4(), "bench.tick", {}, {}, 1)
        await store.append(stream_id, 0, [event], recorded_at=datetime.now(UTC))
        written[stream_id] = time.perf_counter()
        waits.append(time.perf_counter() - started)
        await asyncio.sleep(WRITE_EVERY_SECONDS)
    return waits


async def reader(
    store: Store, checkpoint: Checkpoint, stop: asyncio.Event, written: dict[str, float]
) -> list[float]:
    """How long after each write committed the reader (from ``checkpoint`` on) saw it."""
    seen = dict[str, float]()
    while not stop.is_set() or not written.keys() <= seen.keys():
        for event in await store.read_log(checkpoint, limit=1000):
            checkpoint = event.checkpoint
            if event.stream_id.startswith("bench-writer-"):
                seen[event.stream_id] = time.perf_counter()
        await asyncio.sleep(0.005)
    # A write seen before its writer got control back counts as seen at once.
    return [max(0.0, seen[stream_id] - at) for stream_id, at in written.items()]


async def measure(url: str, events_wanted: int) -> dict[str, Any]:
    await upgrade_to_head(url)
    store = open_store(url, upcasters=event_upcasters())
    try:
        endpoint_id = await prepare(store, events_wanted)
        runtime = Runtime(Settings(database_url=url), store, CommandService(store))
        buyer = Principal(key_id="key_bench", role=KeyRole.BUYER, party_id=BUYER.party_id)
        stop, written = asyncio.Event(), dict[str, float]()
        head = await store.log_head()
        writing = asyncio.create_task(writer(store, stop, written))
        reading = asyncio.create_task(reader(store, head, stop, written))
        await asyncio.sleep(0.5)  # both running before the replay starts
        started = time.perf_counter()
        replay = await webhook_endpoints.replay(
            runtime, buyer, endpoint_id, since_position=1, since=None
        )
        took = time.perf_counter() - started
        await asyncio.sleep(0.5)
        stop.set()
        waits, delays = await writing, await asyncio.wait_for(reading, 30)
        return {
            "events": events_wanted,
            "replay_seconds": round(took, 2),
            "replay": repr(replay.replayed),
            "writes": len(waits),
            "writer_worst_wait_ms": round(max(waits) * 1000, 1),
            "reader_worst_delay_ms": round(max(delays) * 1000, 1),
        }
    finally:
        await store.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--events", type=int, default=300_000)
    args = parser.parse_args()
    if args.backend == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            url = f"sqlite+aiosqlite:///{os.path.join(directory, 'replay.db')}"
            print(orjson.dumps(asyncio.run(measure(url, args.events))).decode())
        return
    url = create_database("bench_replay")
    print(orjson.dumps(asyncio.run(measure(url, args.events))).decode())


if __name__ == "__main__":
    main()
