"""Webhooks end to end with real processes: ``escrow serve --no-worker`` + ``escrow worker`` +
a real HTTP receiver that verifies EVERY delivery with the public ``standardwebhooks`` library
and deduplicates by ``webhook-id``.

Each test has its own migrated database and a short retry schedule (DESIGN's is days long).
The crash test prints what it measured (events, deliveries received, duplicates).
"""

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from escrow_core.store import open_store
from support.databases import TestDatabases
from support.processes import run_cli, serve, worker
from support.receiver import Answer, Delivery, Receiver

ADMIN_KEY = "esk_e2e_webhooks_admin_key_0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
SCHEDULE = "0,0.2,0.5,1,1,1,1,1,1,1"


def environment(url: str, **extra: str) -> dict[str, str]:
    return {
        "ESCROW_DATABASE_URL": url,
        "ESCROW_ADMIN_KEY": ADMIN_KEY,
        "ESCROW_WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver is on 127.0.0.1
        "ESCROW_WEBHOOK_RETRY_SCHEDULE": SCHEDULE,
        "ESCROW_WEBHOOK_LEASE_SECONDS": "3",
        "ESCROW_WEBHOOK_TIMEOUT_SECONDS": "2",
        "ESCROW_WORKER_POLL_SECONDS": "0.1",
        "ESCROW_LOG_LEVEL": "WARNING",
        **extra,
    }


@pytest.fixture
async def database_url(test_databases: TestDatabases) -> AsyncIterator[str]:
    url = await test_databases.create_migrated()
    try:
        yield url
    finally:
        await test_databases.drop(url)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path


@dataclass
class Escrow:
    """A client of the real server with a small cast: a buyer, a supplier, payments."""

    http: httpx.AsyncClient
    buyer: dict[str, str]
    supplier_id: str
    supplier: dict[str, str]
    payments: dict[str, str]

    @classmethod
    async def start(cls, http: httpx.AsyncClient) -> "Escrow":
        async def post(path: str, body: Any = None) -> dict[str, Any]:
            response = await http.post(path, json=body, headers=ADMIN)
            assert response.status_code == 201, response.text
            return dict(response.json())

        buyer = await post("/v1/parties", {"kind": "buyer", "name": "Buyer"})
        supplier = await post(
            "/v1/parties", {"kind": "supplier", "name": "Supplier", "trade_assurance": True}
        )
        buyer_key = await post(f"/v1/parties/{buyer['id']}/api-keys")
        supplier_key = await post(f"/v1/parties/{supplier['id']}/api-keys")
        payments_key = await post("/v1/api-keys", {"role": "payments"})
        return cls(
            http,
            _bearer(buyer_key["key"]),
            supplier["id"],
            _bearer(supplier_key["key"]),
            _bearer(payments_key["key"]),
        )

    async def call(self, path: str, headers: dict[str, str], body: Any = None) -> dict[str, Any]:
        response = await self.http.post(path, json=body, headers=headers)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    async def endpoint(self, receiver: Receiver, path: str = "/hook") -> dict[str, Any]:
        created = await self.call("/v1/webhook-endpoints", ADMIN, {"url": receiver.url(path)})
        receiver.secrets[path] = [created["secret"]]
        return created

    async def place(self) -> str:
        terms = {
            "supplier_id": self.supplier_id,
            "currency": "USD",
            "items": [{"sku": "A", "description": "a", "quantity": 2, "unit_price": 50_000}],
            "incoterm": "FOB",
            "quality_terms": "as agreed",
            "ship_by": (date.today() + timedelta(days=30)).isoformat(),
        }
        return str((await self.call("/v1/orders", self.buyer, terms))["id"])

    async def to(self, order_id: str, status: str) -> None:
        steps = [
            ("accepted", "accept", self.supplier, None),
            (
                "held",
                "payments",
                self.payments,
                {"amount": 100_000, "method": "card", "provider_ref": f"{order_id}-1"},
            ),
            ("shipped", "ship", self.supplier, {"carrier": "DHL", "tracking_number": "1"}),
            ("delivered", "deliver", self.supplier, None),
            ("completed", "confirm-receipt", self.buyer, None),
        ]
        for reached, path, headers, body in steps:
            order = await self.call(f"/v1/orders/{order_id}/{path}", headers, body)
            assert order["status"] == reached
            if reached == status:
                return
        raise AssertionError(f"no step reaches {status}")


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def order_events(url: str) -> dict[str, list[tuple[int, str, str]]]:
    """Every order event in the log: order id -> [(sequence, evt_ id, type)]."""
    store = open_store(url)
    try:
        async with store.read() as conn:
            rows = await conn.execute(
                sa.text(
                    "SELECT stream_id, version, event_id, type FROM events "
                    "WHERE stream_id LIKE 'ord_%' ORDER BY position"
                )
            )
            found: dict[str, list[tuple[int, str, str]]] = {}
            for stream_id, version, event_id, type_ in rows:
                hex_id = event_id.hex if hasattr(event_id, "hex") else event_id.replace("-", "")
                found.setdefault(stream_id, []).append((version, f"evt_{hex_id}", type_))
            return found
    finally:
        await store.dispose()


def by_order(receiver: Receiver) -> dict[str, list[int]]:
    """The sequences each order's events arrived in (first arrival of each webhook-id)."""
    arrived: dict[str, list[int]] = {}
    for payload in receiver.payloads():
        arrived.setdefault(payload["order_id"], []).append(payload["sequence"])
    return arrived


async def test_the_happy_path_delivers_every_event_in_order(
    database_url: str, receiver: Receiver, log_dir: Path
) -> None:
    env = environment(database_url)
    with serve(env, log_dir, extra_args=("--no-worker",)) as server, worker(env, log_dir):
        async with httpx.AsyncClient(base_url=str(server.base_url), timeout=30) as http:
            escrow = await Escrow.start(http)
            await escrow.endpoint(receiver)
            orders = [await escrow.place() for _ in range(3)]
            await asyncio.gather(*(escrow.to(order_id, "completed") for order_id in orders))
            expected = await order_events(database_url)
            total = sum(len(events) for events in expected.values())
            await receiver.until(lambda r: len(r.unique()) >= total, within=30, what="all")

    assert receiver.unverified == []
    assert by_order(receiver) == {
        order_id: [sequence for sequence, _, _ in events] for order_id, events in expected.items()
    }
    for order_id in orders:
        types = [p["type"] for p in receiver.payloads() if p["order_id"] == order_id]
        assert types[0] == "order.placed"
        assert types[-2:] == ["receipt.confirmed", "funds.released"]


@pytest.mark.postgres_only
async def test_a_receiver_failing_for_a_while_still_gets_every_event(
    database_url: str, receiver: Receiver, log_dir: Path
) -> None:
    first_request: list[float] = []

    def respond(delivery: Delivery, seen: int) -> Answer:
        # Down for the 2.5 s after the first request, then back.
        first_request[:] = first_request or [time.monotonic()]
        return Answer(500, body=b"down") if time.monotonic() < first_request[0] + 2.5 else Answer()

    receiver.respond = respond
    env = environment(database_url)
    with serve(env, log_dir, extra_args=("--no-worker",)) as server, worker(env, log_dir):
        async with httpx.AsyncClient(base_url=str(server.base_url), timeout=30) as http:
            escrow = await Escrow.start(http)
            await escrow.endpoint(receiver)
            orders = await asyncio.gather(*(escrow.place() for _ in range(20)))
            await asyncio.gather(*(escrow.to(order_id, "accepted") for order_id in orders))
            expected = await order_events(database_url)
            total = sum(len(events) for events in expected.values())
            await receiver.until(lambda r: len(r.unique()) >= total, within=30, what="all")

    assert receiver.refused  # it really was down
    assert receiver.unverified == []
    received = set(receiver.unique())
    assert received == {event_id for events in expected.values() for _, event_id, _ in events}
    assert by_order(receiver) == {order_id: [1, 2] for order_id in orders}


@pytest.mark.postgres_only
async def test_a_worker_killed_mid_burst_loses_nothing(
    database_url: str, receiver: Receiver, log_dir: Path
) -> None:
    # The burst is 200 orders from one buyer key as fast as the server takes them: a load
    # test of the worker, not of the per-key rate limit, which is off.
    env = environment(database_url, ESCROW_RATE_LIMIT_PER_SECOND="0")
    with ExitStack() as stack:
        server = stack.enter_context(serve(env, log_dir, extra_args=("--no-worker",)))
        first = stack.enter_context(worker(env, log_dir, name="worker-1"))
        limits = httpx.Limits(max_connections=25)
        async with httpx.AsyncClient(
            base_url=str(server.base_url), timeout=60, limits=limits
        ) as http:
            escrow = await Escrow.start(http)
            await escrow.endpoint(receiver)

            async def one_order() -> str:
                order_id = await escrow.place()
                await escrow.to(order_id, "accepted")
                return order_id

            burst = asyncio.gather(*(one_order() for _ in range(200)))
            await receiver.until(lambda r: len(r.all()) >= 60, within=30, what="the burst")
            first.kill()  # SIGKILL: leases held, posts in flight, nothing cleaned up
            killed_at = len(receiver.all())
            orders = await burst
            stack.enter_context(worker(env, log_dir, name="worker-2"))
            expected = await order_events(database_url)
            sent = {event_id for events in expected.values() for _, event_id, _ in events}
            await receiver.until(lambda r: set(r.unique()) >= sent, within=40, what="every event")

    received = receiver.all()
    unique = receiver.unique()
    duplicates = Counter(d.webhook_id for d in received) - Counter(unique.keys())
    print(
        f"\ncrash test: {len(sent)} events sent by the log, {len(received)} deliveries received "
        f"({len(unique)} unique, {sum(duplicates.values())} duplicates); "
        f"the worker was killed after {killed_at}"
    )
    assert len(orders) == 200
    assert set(unique) == sent  # none missing, nothing unknown
    assert receiver.unverified == []
    for delivery in received:  # a duplicate is the same event under the same webhook-id
        assert delivery.payload == unique[delivery.webhook_id].payload
    assert all(sequences == [1, 2] for sequences in by_order(receiver).values())


@pytest.mark.postgres_only
async def test_two_workers_share_the_deliveries_without_sending_twice(
    database_url: str, receiver: Receiver, log_dir: Path
) -> None:
    env = environment(database_url, ESCROW_WEBHOOK_CONCURRENCY="8")
    with (
        serve(env, log_dir, extra_args=("--no-worker",)) as server,
        worker(env, log_dir, name="a"),
        worker(env, log_dir, name="b"),
    ):
        async with httpx.AsyncClient(base_url=str(server.base_url), timeout=30) as http:
            escrow = await Escrow.start(http)
            await escrow.endpoint(receiver)
            orders = await asyncio.gather(*(escrow.place() for _ in range(150)))
            await receiver.until(lambda r: len(r.unique()) >= len(orders), within=30)
            await asyncio.sleep(0.5)  # time for a double send to show up, were there one

    assert len(receiver.all()) == len(receiver.unique()) == len(orders)
    store = open_store(database_url)
    try:
        async with store.read() as conn:
            rows = await conn.execute(
                sa.text("SELECT worker, count(*) FROM webhook_attempts GROUP BY worker")
            )
            per_worker = dict(rows.all())
    finally:
        await store.dispose()
    assert len(per_worker) == 2, per_worker  # both took a share
    assert sum(per_worker.values()) == len(orders)


@pytest.mark.postgres_only
async def test_the_sandbox_clock_runs_out_the_inspection_window_in_another_process(
    database_url: str, receiver: Receiver, log_dir: Path
) -> None:
    env = environment(database_url, ESCROW_SANDBOX="true")
    with serve(env, log_dir, extra_args=("--no-worker",)) as server, worker(env, log_dir):
        async with httpx.AsyncClient(base_url=str(server.base_url), timeout=30) as http:
            escrow = await Escrow.start(http)
            await escrow.endpoint(receiver)
            order_id = await escrow.place()
            await escrow.to(order_id, "delivered")
            await asyncio.sleep(0.5)
            assert not any(p["type"] == "funds.released" for p in receiver.payloads())

            moved = await http.post(
                "/v1/sandbox/clock", json={"advance_seconds": 16 * 86400}, headers=ADMIN
            )
            assert moved.status_code == 200, moved.text
            await receiver.until(
                lambda r: any(p["type"] == "funds.released" for p in r.payloads()),
                within=20,
                what="funds.released",
            )
            order = (await http.get(f"/v1/orders/{order_id}", headers=ADMIN)).json()

    confirmed, released = receiver.payloads()[-2:]
    assert confirmed["type"] == "receipt.confirmed"
    assert confirmed["data"]["auto"] is True
    assert released["type"] == "funds.released"
    assert order["status"] == "completed"
    # The events are on the sandbox clock; the signatures on the wall clock.
    created = datetime.fromisoformat(released["created_at"])
    assert created - datetime.now(UTC) > timedelta(days=15)
    assert abs(receiver.unique()[released["id"]].timestamp - time.time()) < 30


@pytest.mark.sqlite_only
async def test_serve_runs_the_worker_inside_by_default(
    database_url: str, receiver: Receiver, log_dir: Path
) -> None:
    # `make run`: one process on SQLite, API and worker together.
    env = environment(database_url)
    with serve(env, log_dir) as server:
        async with httpx.AsyncClient(base_url=str(server.base_url), timeout=30) as http:
            escrow = await Escrow.start(http)
            await escrow.endpoint(receiver)
            order_id = await escrow.place()
            await escrow.to(order_id, "accepted")
            await receiver.until(lambda r: len(r.unique()) == 2, within=20)

    assert [p["type"] for p in receiver.payloads()] == ["order.placed", "order.accepted"]
    assert receiver.unverified == []


@pytest.mark.postgres_only
async def test_a_payment_provider_pays_out_a_release_and_the_ledger_checks_out(
    database_url: str, receiver: Receiver, log_dir: Path
) -> None:
    """The payment provider's whole loop: its own endpoint gets ``funds.released`` (signed),
    it pays the supplier and reports the payout paid; the ledger export passes Beancount."""
    from beancount import loader  # the checker of the field, a test dependency only

    env = environment(database_url)
    with serve(env, log_dir, extra_args=("--no-worker",)) as server, worker(env, log_dir):
        async with httpx.AsyncClient(base_url=str(server.base_url), timeout=30) as http:
            escrow = await Escrow.start(http)
            hook = await escrow.call(
                "/v1/webhook-endpoints", escrow.payments, {"url": receiver.url("/provider")}
            )
            receiver.secrets["/provider"] = [hook["secret"]]
            order_id = await escrow.place()
            await escrow.to(order_id, "completed")
            await receiver.until(
                lambda r: any(p["type"] == "funds.released" for p in r.payloads()),
                within=30,
                what="funds.released",
            )
            released = next(p for p in receiver.payloads() if p["type"] == "funds.released")
            (payout,) = released["data"]["payouts"]
            paid = await escrow.call(
                f"/v1/payouts/{payout['id']}/paid", escrow.payments, {"provider_ref": "tr_42"}
            )
            await receiver.until(
                lambda r: any(p["type"] == "payout.paid" for p in r.payloads()),
                within=30,
                what="payout.paid",
            )

    assert receiver.unverified == []
    assert (paid["status"], paid["amount"], paid["provider_ref"]) == (
        "paid",
        payout["amount"],
        "tr_42",
    )
    assert {p["type"] for p in receiver.payloads()} <= {
        "payment.received", "funds.held", "funds.released", "refund.issued", "payout.paid"
    }  # fmt: skip
    exported = log_dir / "ledger.beancount"
    result = await asyncio.to_thread(
        run_cli, "ledger", "export", "--format", "beancount", "--out", str(exported), env=env
    )
    assert result.returncode == 0, result.stderr
    entries, errors, _ = loader.load_file(str(exported))
    assert errors == []
    assert any(payout["id"] in str(getattr(entry, "narration", "")) for entry in entries)
