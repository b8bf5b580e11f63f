"""``escrow export FILE`` and ``escrow import FILE`` as an operator runs them (DESIGN 7.4, 7.7).

A PostgreSQL database with an order in every state (and a dispute settled by an accepted
offer, one decided by the mediator, one refunded in full), agent-managed parties, keys (one
revoked), a webhook endpoint with deliveries pending and a sandbox clock moved on, is exported
once. The file goes into a SQLite file that does not exist yet (``escrow import`` and ``escrow
verify`` as processes) and into a fresh PostgreSQL database (the same two in process: each
process start costs seconds); each reads every order, timeline, balance and the feed as the
source does, takes the old keys, and appends new commands after the imported positions. The
source, holding events, refuses the import.
"""

import asyncio
import json
import stat
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from api.world import TOTAL, World, build_world, fast_dispute_api

from escrow_core.application.transfer import import_from
from escrow_core.application.upcasting import event_upcasters
from escrow_core.projections.verify import verify
from escrow_core.store import Posting, Store, open_store
from escrow_core.store.schema import (
    api_keys,
    events,
    parties,
    service_clock,
    webhook_deliveries,
    webhook_dispatch_checkpoint,
    webhook_endpoints,
)
from escrow_core.store.transfer import schema_revision
from escrow_core.webhooks.dispatcher import CHECKPOINT_NAME, dispatch_once
from support.api import Api, running_api
from support.api import test_settings as settings_for
from support.databases import PostgresDatabases

from .busy_log import escrow

pytestmark = pytest.mark.postgres_only

STATES = (
    "placed", "accepted", "partially_paid", "held", "shipped", "delivered", "completed",
    "cancelled", "disputed", "countered", "escalated",
)  # fmt: skip
CLOCK_OFFSET = 3 * 86_400
SCHEDULE = (0.0,)


@dataclass
class Source:
    url: str
    world: World
    order_ids: list[str]
    party_ids: list[str]
    seen: dict[str, Any]  # everything the API reads, as the source answers it
    file: Path
    exported: Any  # the CLI's answer
    rows: dict[str, list[dict[str, Any]]]  # parties, keys, endpoints, deliveries (pending)
    last_position: int
    revision: str  # the source's alembic revision
    ledger: list[Posting]  # every posting, without its id (the importer's database numbers them)


async def read_all(api: Api, path: str, headers: dict[str, str]) -> list[Any]:
    """Every item of a cursor list."""
    items: list[Any] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = await api.client.get(path, params=params, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["data"]
        if not body["has_more"]:
            return items
        params["cursor"] = body["next_cursor"]


async def everything(api: Api, order_ids: list[str], party_ids: list[str]) -> dict[str, Any]:
    """Each order, its timeline, each party's balances, the order list and the feed."""
    admin = api.admin
    seen: dict[str, Any] = {}
    for order_id in order_ids:
        order = await api.client.get(f"/v1/orders/{order_id}", headers=admin)
        assert order.status_code == 200, order.text
        seen[order_id] = order.json()
        seen[f"{order_id}/events"] = await read_all(api, f"/v1/orders/{order_id}/events", admin)
    for party_id in party_ids:
        balances = await api.client.get(f"/v1/parties/{party_id}/balances", headers=admin)
        assert balances.status_code == 200, balances.text
        seen[f"{party_id}/balances"] = balances.json()
    seen["orders"] = await read_all(api, "/v1/orders", admin)
    seen["feed"] = await read_all(api, "/v1/events", admin)
    return seen


async def carried(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Every row of the tables an export carries whole (the sandbox clock aside)."""
    found = {}
    async with store.read() as conn:
        for table in (parties, api_keys, webhook_endpoints, webhook_deliveries):
            rows = await conn.execute(sa.select(table).order_by(*table.primary_key))
            found[table.name] = [dict(row._mapping) for row in rows]
    return found


async def drive(world: World) -> list[str]:
    """An order in every state, three ways a dispute ends, and an order in euros."""
    order_ids = [await world.order(state) for state in STATES]
    by_offer = await world.order("countered")
    await world.step(by_offer, "dispute/accept-offer", "buyer")
    settled = await world.order("escalated")
    await world.step(settled, "dispute/resolve", "mediator", {"refund_amount": 200_000})
    refunded = await world.order("escalated")
    await world.step(refunded, "dispute/resolve", "mediator", {"refund_amount": TOTAL})
    euros = await world.place(currency="EUR")
    await world.step(euros, "accept", "supplier")
    await world.pay(euros, 301_500, "eur-deposit")
    for order_id, status in ((by_offer, "settled"), (settled, "settled"), (refunded, "refunded")):
        order = await world.api.client.get(f"/v1/orders/{order_id}", headers=world.admin)
        assert order.json()["status"] == status
    return [*order_ids, by_offer, settled, refunded, euros]


async def ledger_of(store: Store) -> list[Posting]:
    """The whole ledger without posting ids, in a stable order."""
    postings = [
        replace(p, id=None) async for batch in store.all_postings(batch_size=1000) for p in batch
    ]
    return sorted(postings, key=lambda p: (p.transfer_id, p.account, p.phase))


async def dispatch_through(store: Store, position: int) -> int:
    """Run the webhook dispatcher until it has read the log through ``position``; returns
    the events it read. (On PostgreSQL it waits while events are held back behind any older
    transaction on the server, another test's too, so one pass is not enough.)"""
    c = webhook_dispatch_checkpoint.c
    where = sa.select(c.position).where(c.name == CHECKPOINT_NAME)
    deadline = time.monotonic() + 30
    read = 0
    while True:
        async with store.read() as conn:
            if await conn.scalar(where) >= position:
                return read
        assert time.monotonic() < deadline, "the dispatcher did not catch up"
        dispatched = (await dispatch_once(store, SCHEDULE)).events
        read += dispatched
        if not dispatched:
            await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
async def source(
    test_databases: PostgresDatabases, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Source]:
    url = await test_databases.create_migrated()
    async with fast_dispute_api(url, webhook_allow_private=True) as api:
        hook = await api.client.post(
            "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hook"}, headers=api.admin
        )
        assert hook.status_code == 201, hook.text
        world = await build_world(api)
        payments = {"Authorization": f"Bearer {await api.role_key('payments')}"}
        money_hook = await api.client.post(  # its owner_role goes across too
            "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/money"}, headers=payments
        )
        assert money_hook.status_code == 201, money_hook.text
        order_ids = await drive(world)
        party_ids = [world.agent_id, world.buyer_id, world.supplier_id, world.other_buyer_id]
        store = open_store(url, upcasters=event_upcasters(), sandbox=True)
        try:
            await store.advance_clock(CLOCK_OFFSET)
            async with store.read() as conn:
                last_position = await conn.scalar(sa.select(sa.func.max(events.c.position)))
                revision = await schema_revision(conn)
            assert await dispatch_through(store, last_position) == last_position
            rows = await carried(store)
            ledger = await ledger_of(store)
        finally:
            await store.dispose()
        seen = await everything(api, order_ids, party_ids)
        file = tmp_path_factory.mktemp("export") / "escrow.jsonl"
        exported = await escrow(url, "export", str(file))
        yield Source(
            url,
            world,
            order_ids,
            party_ids,
            seen,
            file,
            exported,
            rows,
            int(last_position or 0),
            revision,
            ledger,
        )
    await test_databases.drop(url)


def records(file: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in file.read_text().splitlines()]


async def test_the_export_is_a_private_versioned_file_of_kinded_lines(source: Source) -> None:
    assert source.exported.returncode == 0, source.exported.stderr
    assert "exporting" in source.exported.stderr
    # Only its owner may read it: it holds the webhook endpoints' signing secrets.
    assert stat.S_IMODE(source.file.stat().st_mode) == 0o600

    lines = records(source.file)
    header, end = lines[0], lines[-1]
    assert header["kind"] == "header"
    assert header["format"] == "escrow-export"
    assert header["format_version"] == 1
    assert header["schema_revision"] == source.revision
    assert end["kind"] == "end"
    kinds = [line["kind"] for line in lines[1:-1]]
    assert end["counts"] == {kind: kinds.count(kind) for kind in set(kinds)}
    logged = [line for line in lines if line["kind"] == "event"]
    assert len(logged) == end["counts"]["event"]
    assert max(line["position"] for line in logged) == source.last_position
    assert all(line["kind"] != "api_key" or "key_hash" in line for line in lines)
    assert not any("esk_" in json.dumps(line) for line in lines if line["kind"] == "api_key")


async def import_by_cli(source: Source, url: str) -> None:
    """``escrow import`` then ``escrow verify``, as an operator runs them."""
    result = await escrow(url, "import", str(source.file))
    assert result.returncode == 0, result.stderr
    assert "importing" in result.stderr
    verified = await escrow(url, "verify")
    assert verified.returncode == 0, verified.stderr
    assert f"{len(source.order_ids)} orders" in verified.stderr


async def import_in_process(source: Source, url: str) -> None:
    """What those two commands run, without two more process starts (seconds each)."""
    store = open_store(url, upcasters=event_upcasters())
    try:
        await import_from(store, source.file)
        report = await verify(store)
    finally:
        await store.dispose()
    assert report.ok, report.problems
    assert report.orders == len(source.order_ids)


async def check_imported(source: Source, url: str) -> None:
    store = open_store(url, upcasters=event_upcasters())
    try:
        # Parties, key hashes, endpoints with their secrets, the deliveries still owed (all of
        # them: no sender ran at the source) and the sandbox clock came along as they were
        assert await carried(store) == source.rows
        # The ledger, a projection, was rebuilt from the log: the same postings
        assert source.ledger
        assert await ledger_of(store) == source.ledger
        by_endpoint = Counter(row["endpoint_id"] for row in source.rows["webhook_deliveries"])
        # The admin's endpoint owes every event; the payments one the money events only.
        assert sorted(by_endpoint.values())[-1] == source.last_position
        assert 0 < sorted(by_endpoint.values())[0] < source.last_position
        async with store.read() as conn:
            assert await conn.scalar(sa.select(service_clock.c.offset_seconds)) == CLOCK_OFFSET

        async with running_api(settings_for(url, webhook_allow_private=True)) as api:
            # Every order, timeline, balance and the feed read as they did at the source
            assert await everything(api, source.order_ids, source.party_ids) == source.seen

            # The old keys still work (and the revoked one still does not)
            world = source.world
            mine = await api.client.get(
                f"/v1/orders/{source.order_ids[0]}", headers=world.as_("buyer")
            )
            assert mine.status_code == 200, mine.text
            revoked = await api.client.get("/v1/orders", headers=world.as_("revoked"))
            assert revoked.status_code == 401

            # New commands append after the imported positions
            world = World(**{**world.__dict__, "api": api})
            held = source.order_ids[STATES.index("held")]
            await world.step(held, "ship", "supplier", {"carrier": "DHL", "tracking_number": "2Z"})
            placed = await world.place()
            timeline = await read_all(api, f"/v1/orders/{held}/events", api.admin)
            new = [timeline[-1], *(await read_all(api, f"/v1/orders/{placed}/events", api.admin))]
            assert [event["type"] for event in new] == ["order.shipped", "order.placed"]
            assert [event["position"] for event in new] == [
                source.last_position + 1,
                source.last_position + 2,
            ]
        # and the dispatcher, which had read the imported log, reads only those
        assert await dispatch_through(store, source.last_position + 2) == 2
    finally:
        await store.dispose()


async def test_an_import_into_sqlite_reads_the_same_and_goes_on(
    source: Source, tmp_path: Path
) -> None:
    # Given a SQLite database that does not exist yet (no schema at all)
    url = f"sqlite+aiosqlite:///{tmp_path / 'imported.db'}"

    # When the file is imported (the database is migrated first), escrow verify passes
    await import_by_cli(source, url)

    # Then it reads the same and goes on
    await check_imported(source, url)


async def test_an_import_into_postgresql_reads_the_same_and_goes_on(
    source: Source, test_databases: PostgresDatabases
) -> None:
    # Given a fresh, migrated PostgreSQL database
    url = await test_databases.create_migrated()
    try:
        # When the file is imported, verify passes
        await import_in_process(source, url)

        # Then it reads the same and goes on
        await check_imported(source, url)
    finally:
        await test_databases.drop(url)


async def test_an_import_refuses_a_database_that_holds_events(source: Source) -> None:
    async with running_api(settings_for(source.url)) as api:
        before = await everything(api, source.order_ids[:1], [])

    refused = await escrow(source.url, "import", str(source.file))

    assert refused.returncode == 1
    assert "error: the database is not empty" in refused.stderr
    assert "events" in refused.stderr
    assert "Traceback" not in refused.stderr
    async with running_api(settings_for(source.url)) as api:
        assert await everything(api, source.order_ids[:1], []) == before
