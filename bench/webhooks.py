"""Webhook delivery on PostgreSQL: deliveries per second, and commit-to-receiver latency.

    python -m bench.webhooks          (make bench-friendly; not part of make test)

Real processes as in production: ``escrow serve --no-worker`` and one ``escrow worker``, a
local receiver (a thread) that verifies every delivery with ``standardwebhooks``.

    drain     N orders are placed with the worker stopped, then the worker starts: deliveries
              per second = N / (last arrival - first arrival)
    latency   orders placed at a steady rate with the worker running: for each delivery,
              arrival time - the event's created_at (the service clock when the command was
              decided, just before its commit: a slight overestimate of commit-to-receiver)

Environment: BENCH_DATABASE_URL (an admin URL; default the local server), BENCH_ORDERS
(drain size, default 2000), BENCH_RATE (orders per second for latency, default 50),
BENCH_SECONDS (latency run, default 10), BENCH_POLL (ESCROW_WORKER_POLL_SECONDS, default 0.2),
BENCH_LISTEN (ESCROW_WORKER_LISTEN, default true: the worker wakes on commit signals; false
measures polling alone), BENCH_DATABASE_NAME (the database it drops and creates, default
escrow_bench_webhooks).
The receiver speaks HTTP/1.1 and keeps a connection open between requests, as a real
receiver behind any common server does (an HTTP/1.0 one would close every connection itself).
The per-key rate limit is off (the drain places its orders with one buyer key, 32 at a time).
Goal (DESIGN): p50 under 300 ms; issue 13: p50 under 50 ms, p99 under 150 ms.
"""

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook

from escrow_core.store import upgrade_to_head

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ADMIN_URL = sa.make_url(
    os.environ.get("BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
)
ORDERS = int(os.environ.get("BENCH_ORDERS", 2000))
RATE = float(os.environ.get("BENCH_RATE", 50))
SECONDS = float(os.environ.get("BENCH_SECONDS", 10))
POLL = os.environ.get("BENCH_POLL", "0.2")
LISTEN = os.environ.get("BENCH_LISTEN", "true")
ADMIN_KEY = "esk_bench_webhooks_admin_key_0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
DATABASE = os.environ.get("BENCH_DATABASE_NAME", "escrow_bench_webhooks")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default backlog (5) drops SYNs under 32 parallel posts


class Receiver:
    """Records (arrival time, created_at, webhook-id) of every verified delivery."""

    def __init__(self) -> None:
        self.secret: str | None = None
        self.arrivals: list[tuple[float, str, str]] = []
        self.bad = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                arrived = time.time()
                try:
                    assert receiver.secret is not None
                    payload = Webhook(receiver.secret).verify(body, dict(self.headers.items()))
                    with receiver.lock:
                        receiver.arrivals.append(
                            (arrived, payload["created_at"], self.headers["webhook-id"])
                        )
                    status = 200
                except Exception:
                    receiver.bad += 1
                    status = 400
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def count(self) -> int:
        with self.lock:
            return len({webhook_id for _, _, webhook_id in self.arrivals})

    def take(self) -> list[tuple[float, str, str]]:
        with self.lock:
            taken, self.arrivals = self.arrivals, []
        return taken


async def _fresh_database() -> str:
    dsn = ADMIN_URL.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()
    url = ADMIN_URL.set(database=DATABASE).render_as_string(hide_password=False)
    await upgrade_to_head(url)
    return url


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def escrow_process(
    args: list[str], env: dict[str, str], ready: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``escrow ARGS`` running (ready once ``ready``, a URL, answers 200), then terminated."""
    log = tempfile.NamedTemporaryFile(prefix="bench-webhooks-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [str(BIN / "escrow"), *args], cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while ready is not None:
            if process.poll() is not None:
                raise RuntimeError(Path(log.name).read_text()[-2000:])
            try:
                if httpx.get(ready, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(Path(log.name).read_text()[-2000:])
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


class Cast:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.buyer: dict[str, str] = {}
        self.supplier_id = ""

    async def setup(self, receiver: Receiver) -> None:
        async def post(path: str, body: Any = None) -> dict[str, Any]:
            response = await self.http.post(path, json=body, headers=ADMIN)
            response.raise_for_status()
            return dict(response.json())

        buyer = await post("/v1/parties", {"kind": "buyer", "name": "Bench buyer"})
        supplier = await post(
            "/v1/parties", {"kind": "supplier", "name": "Bench supplier", "trade_assurance": True}
        )
        key = await post(f"/v1/parties/{buyer['id']}/api-keys")
        self.buyer = {"Authorization": f"Bearer {key['key']}"}
        self.supplier_id = supplier["id"]
        endpoint = await post("/v1/webhook-endpoints", {"url": receiver.url})
        receiver.secret = endpoint["secret"]

    async def place(self) -> None:
        terms = {
            "supplier_id": self.supplier_id,
            "currency": "USD",
            "items": [{"sku": "B", "description": "bench", "quantity": 1, "unit_price": 1000}],
            "incoterm": "FOB",
            "quality_terms": "as agreed",
            "ship_by": (date.today() + timedelta(days=30)).isoformat(),
        }
        # Keyed, so a connection reset on a loaded machine is retried without a second order.
        headers = {**self.buyer, "Idempotency-Key": uuid.uuid4().hex}
        for attempt in range(3):
            try:
                response = await self.http.post("/v1/orders", json=terms, headers=headers)
                break
            except httpx.TransportError:
                if attempt == 2:
                    raise
        response.raise_for_status()


async def _place_many(cast: Cast, count: int, concurrency: int = 32) -> None:
    queue = iter(range(count))

    async def client() -> None:
        for _ in queue:
            await cast.place()

    await asyncio.gather(*(client() for _ in range(concurrency)))


async def _wait_for(receiver: Receiver, count: int, within: float) -> None:
    deadline = time.monotonic() + within
    while receiver.count() < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{receiver.count()} of {count} deliveries arrived")
        await asyncio.sleep(0.01)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> dict[str, Any]:
    url = await _fresh_database()
    receiver = Receiver()
    env = {
        "ESCROW_DATABASE_URL": url,
        "ESCROW_ADMIN_KEY": ADMIN_KEY,
        "ESCROW_WEBHOOK_ALLOW_PRIVATE": "true",
        "ESCROW_WORKER_POLL_SECONDS": POLL,
        "ESCROW_WORKER_LISTEN": LISTEN,
        "ESCROW_LOG_LEVEL": "WARNING",
        "ESCROW_RATE_LIMIT_PER_SECOND": "0",
    }
    port = _free_port()
    serve = ["serve", "--no-worker", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    limits = httpx.Limits(max_connections=64)
    with escrow_process(serve, env, ready=f"{base}/readyz"):
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
            cast = Cast(http)
            await cast.setup(receiver)
            # drain: the backlog of ORDERS order.placed events, then the worker.
            await _place_many(cast, ORDERS)
            with escrow_process(["worker"], env):
                await _wait_for(receiver, ORDERS, within=600)
                drained = receiver.take()
                first, last = min(a for a, _, _ in drained), max(a for a, _, _ in drained)
                per_second = ORDERS / (last - first)
                # latency: a steady trickle with the worker caught up.
                started = time.monotonic()
                placed = 0
                while time.monotonic() - started < SECONDS:
                    due = int((time.monotonic() - started) * RATE) - placed
                    if due > 0:
                        await asyncio.gather(*(cast.place() for _ in range(due)))
                        placed += due
                    await asyncio.sleep(0.005)
                await _wait_for(receiver, placed, within=60)
                steady = receiver.take()
    latencies = [
        (arrived - datetime.fromisoformat(created).timestamp()) * 1000
        for arrived, created, _ in steady
    ]
    return {
        "database": "postgresql",
        "worker_poll_seconds": float(POLL),
        "worker_listen": LISTEN,
        "rate_limit_per_second": "off",
        "drain": {"deliveries": ORDERS, "deliveries_per_second": round(per_second, 1)},
        "latency": {
            "orders_per_second": RATE,
            "deliveries": len(latencies),
            "p50_ms": round(statistics.median(latencies), 1),
            "p90_ms": round(_percentile(latencies, 0.90), 1),
            "p99_ms": round(_percentile(latencies, 0.99), 1),
            "max_ms": round(max(latencies), 1),
        },
        "unverified": receiver.bad,
    }


if __name__ == "__main__":
    result = asyncio.run(main())
    print(json.dumps(result, indent=2))
    latency = result["latency"]
    print(
        f"webhooks: {result['drain']['deliveries_per_second']} deliveries/s (drain), "
        f"commit-to-receiver p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms "
        f"at {latency['orders_per_second']:g} orders/s",
        file=sys.stderr,
    )
