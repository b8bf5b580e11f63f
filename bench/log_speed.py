"""Rebuild and feed speed over a seeded log of complete orders.

Seeding goes straight through the store (each order's eight events in one append, many orders
per transaction) so a 100k-event log takes seconds, not the minutes the API would.
"""

import asyncio
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from escrow_core.application.upcasting import event_upcasters
from escrow_core.domain import commands as c
from escrow_core.domain.events import event_from_data, event_to_data, schema_version
from escrow_core.domain.order import NewIds, decide, fold
from escrow_core.domain.roles import Actor, Role
from escrow_core.domain.terms import LineItem, PaymentMethod
from escrow_core.gc_policy import collect_rarely_in_full
from escrow_core.ids import new_id
from escrow_core.projections.rebuild import rebuild
from escrow_core.store import LOG_START, NewEvent, Store, open_store
from escrow_core.store.postgres import PostgresStore

BUYER = Actor(role=Role.BUYER, party_id="pty_bench_buyer")
SUPPLIER = Actor(role=Role.SUPPLIER, party_id="pty_bench_supplier")
PAYMENTS = Actor(role=Role.PAYMENTS)
ORDERS_PER_COPY = 1000


def order_events(now: datetime) -> list[NewEvent]:
    """One order's whole life, as the service would record it (one command id per command)."""
    commands: list[c.Command] = [
        c.PlaceOrder(
            actor=BUYER,
            buyer_id=BUYER.party_id or "",
            supplier_id=SUPPLIER.party_id or "",
            supplier_trade_assurance=True,
            currency="USD",
            currency_exponent=2,
            items=(LineItem(sku="LED", quantity=10, unit_price=12_500),),
            incoterm="FOB",
            quality_terms="AQL 2.5",
            ship_by=date.today() + timedelta(days=30),
            inspection_days=15,
            fee_bps=250,
        ),
        c.AcceptOrder(actor=SUPPLIER),
        c.RecordPayment(
            actor=PAYMENTS, amount=125_000, method=PaymentMethod.CARD, provider_ref="p1"
        ),
        c.ShipOrder(actor=SUPPLIER, carrier="DHL", tracking_number="JD1"),
        c.ReportDelivery(actor=SUPPLIER),
        c.ConfirmReceipt(actor=BUYER),
    ]
    state = None
    recorded: list[NewEvent] = []
    for command in commands:
        events = decide(state, command, now, NewIds(ID_STEM))
        state = fold(events, state)
        metadata: dict[str, Any] = {
            "command": type(command).__name__,
            "command_id": str(uuid.uuid4()),
            "actor": command.actor.model_dump(mode="json"),
        }
        recorded += [
            NewEvent(uuid.uuid4(), e.type, event_to_data(e), metadata, schema_version(e.type))
            for e in events
        ]
    return recorded


# The template's payout ids carry this stem; each seeded order puts its own id there, so every
# payout id is unique (``money_out`` is keyed by it), as the service's random ids are.
ID_STEM = "Zq9stem"


async def seed(store: PostgresStore, events_wanted: int) -> int:
    """COPY whole orders straight into ``events`` (as many as make ``events_wanted``)."""
    now = datetime.now(UTC)
    template = order_events(now)  # every order tells the same story; ids are made fresh
    encoded = [
        (e, orjson.dumps(e.data).decode(), orjson.dumps(e.metadata).decode()) for e in template
    ]
    columns = ["stream_id", "version", "event_id", "type", "schema_version", "data", "metadata",
               "recorded_at"]  # fmt: skip
    written = 0
    async with store.raw() as connection:
        while written < events_wanted:
            records = []
            for _ in range(ORDERS_PER_COPY):
                order_id = new_id("ord")
                records += [
                    (order_id, version, uuid.uuid4(), e.type, e.schema_version,
                     data.replace(ID_STEM, order_id[4:]), metadata, now)
                    for version, (e, data, metadata) in enumerate(encoded, start=1)
                ]  # fmt: skip
            await connection.copy_records_to_table("events", records=records, columns=columns)
            written += len(records)
    return written


async def rebuild_speed(store: Store) -> dict[str, float]:
    started = time.perf_counter()
    events = await rebuild(store)
    elapsed = time.perf_counter() - started
    return {"events": events, "seconds": round(elapsed, 2), "events_per_s": round(events / elapsed)}


async def feed_speed(store: Store, batch: int = 1000) -> dict[str, float]:
    started = time.perf_counter()
    count = 0
    after = LOG_START
    while True:
        page = await store.read_log(after, limit=batch)
        if not page:
            break
        for recorded in page:
            event_from_data(recorded.type, recorded.data)
        count += len(page)
        after = page[-1].checkpoint
    elapsed = time.perf_counter() - started
    return {"events": count, "seconds": round(elapsed, 2), "events_per_s": round(count / elapsed)}


async def measure(url: str, events_wanted: int = 100_000) -> dict[str, Any]:
    collect_rarely_in_full()  # as in the API, which serves the feed, and the CLI, which rebuilds
    store = open_store(url, upcasters=event_upcasters())
    if not isinstance(store, PostgresStore):
        raise SystemExit("the log benchmark seeds PostgreSQL with COPY: give it a PostgreSQL URL")
    try:
        seeded_from = time.perf_counter()
        written = await seed(store, events_wanted)
        seeded = time.perf_counter() - seeded_from
        return {
            "seeded_events": written,
            "seed_seconds": round(seeded, 1),
            "rebuild": await rebuild_speed(store),
            "feed": await feed_speed(store),
        }
    finally:
        await store.dispose()


if __name__ == "__main__":
    import json
    import sys

    print(
        json.dumps(
            asyncio.run(measure(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100_000))
        )
    )
