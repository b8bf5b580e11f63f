"""PostgreSQL restarted in immediate mode under load, on a server of the test's own
(support.own_postgres): a real ``escrow serve`` and ``escrow worker`` ride it out (one
scenario: a server's start-up is most of its cost).

While it is away every answer is a 503 ``database_unavailable`` problem with ``Retry-After``
(no 500, no connection reset) and ``/readyz`` is 503; afterwards both processes carry on
without a restart, every acknowledged command is in the log, ``escrow verify`` passes, and
every committed event's webhook arrives (none for an event that was not committed).

PostgreSQL only by nature: it runs once, not once per backend.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.databases import PostgresDatabases
from support.own_postgres import OwnPostgres
from support.processes import Process, run_cli, serve, worker
from support.receiver import Receiver

from .test_webhooks_e2e import ADMIN, environment, order_events

pytestmark = pytest.mark.postgres_only

CLIENTS = 8
DOWN_SECONDS = 1.5  # how long the server stays stopped before it starts (and recovers)
WARM_SECONDS = 1.0
AFTER_SECONDS = 1.0  # load kept up once /readyz is 200 again


@pytest.fixture
async def own_database(own_server: OwnPostgres) -> AsyncIterator[str]:
    databases = PostgresDatabases(admin_url=own_server.admin_url)
    url = await databases.create_migrated()
    try:
        yield url
    finally:
        await databases.close()


@dataclass
class Answer:
    at: float
    status: int | None  # None: no answer (a transport error, e.g. a reset)
    content_type: str = ""
    code: str | None = None
    retry_after: str | None = None
    error: str = ""


@dataclass
class Driver:
    """One client on one keep-alive connection: places orders and accepts them, in a loop."""

    http: httpx.AsyncClient
    buyer: dict[str, str]
    supplier_id: str
    supplier: dict[str, str]
    answers: list[Answer] = field(default_factory=list)
    acknowledged: dict[str, int] = field(default_factory=dict)  # order id -> version
    connections: int = 0  # TCP connections opened: 1 unless the server dropped one

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            self.connections += 1

    async def post(self, path: str, headers: dict[str, str], body: Any = None) -> Any:
        headers = {**headers, "Idempotency-Key": uuid.uuid4().hex}
        try:
            response = await self.http.post(
                path, json=body, headers=headers, extensions={"trace": self.trace}
            )
        except httpx.TransportError as error:
            self.answers.append(Answer(time.monotonic(), None, error=repr(error)))
            await asyncio.sleep(0.05)
            return None
        problem = response.headers.get("content-type") == "application/problem+json"
        self.answers.append(
            Answer(
                time.monotonic(),
                response.status_code,
                response.headers.get("content-type", ""),
                response.json().get("code") if problem else None,
                response.headers.get("retry-after"),
            )
        )
        if response.is_success:
            order = response.json()
            self.acknowledged[order["id"]] = order["version"]
            return order
        await asyncio.sleep(0.05)  # as a client told to retry later would, only sooner
        return None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            order = await self.post("/v1/orders", self.buyer, terms(self.supplier_id))
            if order is not None:
                await self.post(f"/v1/orders/{order['id']}/accept", self.supplier)


def terms(supplier_id: str) -> dict[str, Any]:
    return {
        "supplier_id": supplier_id,
        "currency": "USD",
        "items": [{"sku": "A", "description": "a", "quantity": 2, "unit_price": 50_000}],
        "incoterm": "FOB",
        "quality_terms": "as agreed",
        "ship_by": (date.today() + timedelta(days=30)).isoformat(),
    }


async def admin_post(http: httpx.AsyncClient, path: str, body: Any = None) -> dict[str, Any]:
    response = await http.post(path, json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def driver(base_url: str) -> Driver:
    """A client with a buyer and a supplier of its own (a per-key rate limit never binds), on
    a connection of its own, opened by its first order."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        buyer = await admin_post(http, "/v1/parties", {"kind": "buyer", "name": "Buyer"})
        supplier = await admin_post(
            http, "/v1/parties", {"kind": "supplier", "name": "Supplier", "trade_assurance": True}
        )
        buyer_key = await admin_post(http, f"/v1/parties/{buyer['id']}/api-keys")
        supplier_key = await admin_post(http, f"/v1/parties/{supplier['id']}/api-keys")
    return Driver(
        httpx.AsyncClient(base_url=base_url, timeout=30),
        {"Authorization": f"Bearer {buyer_key['key']}"},
        supplier["id"],
        {"Authorization": f"Bearer {supplier_key['key']}"},
    )


@dataclass
class Outage:
    """What /readyz said while the database was away, and after; when it came back."""

    while_away: list[int] = field(default_factory=list)
    back_at: float = 0.0


async def restart_under_load(
    own_server: OwnPostgres, server: Process, drivers: list[Driver], receiver: Receiver
) -> Outage:
    """Load, an immediate-mode restart with the server down DOWN_SECONDS, load again. The
    restart waits for the worker's first delivery: a worker still starting when the database
    goes away refuses to start (one line, exit 1), which is not what this test is about."""
    assert server.base_url is not None
    stop = asyncio.Event()
    load = [asyncio.create_task(d.run(stop)) for d in drivers]
    outage = Outage()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as probe:
        await receiver.until(lambda r: len(r.unique("/hook")) > 0, within=30, what="a delivery")
        await asyncio.sleep(WARM_SECONDS)
        await asyncio.to_thread(own_server.stop, "immediate")
        down_until = time.monotonic() + DOWN_SECONDS
        while time.monotonic() < down_until:
            outage.while_away.append((await probe.get("/readyz")).status_code)
            await asyncio.sleep(0.2)
        await asyncio.to_thread(own_server.start)
        deadline = time.monotonic() + 15
        while (await probe.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "/readyz never came back to 200"
            await asyncio.sleep(0.1)
        outage.back_at = time.monotonic()
        await asyncio.sleep(AFTER_SECONDS)
    stop.set()
    await asyncio.gather(*load)
    for d in drivers:
        await d.http.aclose()
    return outage


def assert_rode_it_out(drivers: list[Driver], outage: Outage, server: Process) -> None:
    answers = [a for d in drivers for a in d.answers]
    resets = [a.error for a in answers if a.status is None]
    assert resets == [], f"{len(resets)} requests got no answer: {resets[:3]}"
    # httpx quietly reconnects when it finds a connection closed between requests, which a
    # client racing the close would see as a reset: the server kept every connection open.
    assert [d.connections for d in drivers] == [1] * len(drivers)
    failed = [a for a in answers if a.status is not None and not 200 <= a.status < 300]
    assert failed, "no request met the outage: the test proved nothing"
    assert {(a.status, a.content_type, a.code) for a in failed} == {
        (503, "application/problem+json", "database_unavailable")
    }
    assert all(a.retry_after is not None and 1 <= int(a.retry_after) <= 5 for a in failed)
    assert 503 in outage.while_away, outage.while_away
    # The same process serves again: every client got through after the database came back.
    assert server.popen.poll() is None
    for d in drivers:
        assert any(a.status in (200, 201) and a.at > outage.back_at for a in d.answers)


async def assert_acknowledged_are_logged(drivers: list[Driver], url: str) -> None:
    logged = {
        order_id: max(version for version, _, _ in events)
        for order_id, events in (await order_events(url)).items()
    }
    acknowledged = {order_id: v for d in drivers for order_id, v in d.acknowledged.items()}
    assert acknowledged
    missing = {
        order_id: version
        for order_id, version in acknowledged.items()
        if logged.get(order_id, 0) < version
    }
    assert missing == {}, f"acknowledged but not in the log: {missing}"
    verified = await asyncio.to_thread(run_cli, "verify", env={"ESCROW_DATABASE_URL": url})
    assert verified.returncode == 0, verified.stdout + verified.stderr


async def test_serve_and_worker_ride_out_an_immediate_restart_of_postgresql(
    own_server: OwnPostgres, own_database: str, tmp_path: Path
) -> None:
    # One restart for both processes (each run of the scenario costs a server's start-up).
    env = {**environment(own_database), "ESCROW_RATE_LIMIT_PER_SECOND": "0"}
    with (
        Receiver() as receiver,
        serve(env, tmp_path, extra_args=("--no-worker",)) as server,
        worker(env, tmp_path) as running_worker,
    ):
        assert server.base_url is not None
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            endpoint = await admin_post(
                http, "/v1/webhook-endpoints", {"url": receiver.url("/hook")}
            )
        receiver.secrets["/hook"] = [endpoint["secret"]]
        drivers = list(await asyncio.gather(*(driver(server.base_url) for _ in range(CLIENTS))))
        outage = await restart_under_load(own_server, server, drivers, receiver)
        assert_rode_it_out(drivers, outage, server)
        # escrow serve: every acknowledged command is in the log, and escrow verify passes
        # (while the worker delivers: the commands have stopped, the log is final).
        logged = asyncio.create_task(assert_acknowledged_are_logged(drivers, own_database))

        # escrow worker: every committed order event is delivered, none that was not.
        committed = {
            event_id
            for events in (await order_events(own_database)).values()
            for _, event_id, _ in events
        }
        await receiver.until(
            lambda r: set(r.unique("/hook")) >= committed, within=30, what="every event"
        )
        assert running_worker.popen.poll() is None, running_worker.log()
        await logged

    delivered = set(receiver.unique("/hook"))
    assert committed, "no order event was committed: the test proved nothing"
    assert delivered == committed, f"delivered but never committed: {delivered - committed}"
    assert receiver.unverified == []
