"""The load generator: its own process (so it never shares the server's event loop), asyncio +
aiohttp, closed-loop clients. Prints one JSON line of results.

    python -m bench.loadgen --mode mix --base-url URL --clients 16 --seconds 10 --setup setup.json

Modes: ``ceiling`` (POST a small body to the bare endpoint), ``mix`` (orders walked through
place, accept, pay, ship, deliver, confirm with Idempotency-Key and auth, as a real client
sends them), ``get`` (GET /v1/orders/{id} over pre-made orders), ``get_ceiling`` (GET one
of the bare app's JSON documents by id).
"""

import argparse
import asyncio
import itertools
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp


class Recorder:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.by_step: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.recording = False

    def add(self, started: float, status: int, expected: int, step: str) -> None:
        if not self.recording:
            return
        if status == expected:
            elapsed = time.perf_counter() - started
            self.latencies.append(elapsed)
            self.by_step.setdefault(step, []).append(elapsed)
        else:
            self.errors[str(status)] = self.errors.get(str(status), 0) + 1


async def _call(
    session: aiohttp.ClientSession,
    rec: Recorder,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    body: Any = None,
    expected: int = 200,
) -> dict[str, Any]:
    started = time.perf_counter()
    async with session.request(method, url, json=body, headers=headers) as response:
        payload = await response.read()
        step = url.rsplit("/", 1)[-1] if method == "POST" else method
        rec.add(started, response.status, expected, step)
        if response.status != expected:
            raise RuntimeError(f"{method} {url}: {response.status} {payload[:300]!r}")
        return dict(json.loads(payload))


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _idem(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Idempotency-Key": uuid.uuid4().hex}


async def walk_order(
    session: aiohttp.ClientSession, rec: Recorder, base: str, setup: dict[str, Any]
) -> None:
    """One order of the mix: place, accept, pay, ship, deliver, confirm (RuntimeError on an
    unexpected status)."""
    buyer, supplier, payments = (
        _bearer(setup[k]) for k in ("buyer_key", "supplier_key", "payments_key")
    )
    terms = {
        "supplier_id": setup["supplier_id"],
        "currency": "USD",
        "items": [{"sku": "LED-40W", "quantity": 10, "unit_price": 12_500}],
        "incoterm": "FOB",
        "quality_terms": "AQL 2.5",
        "ship_by": (datetime.now(UTC).date() + timedelta(days=30)).isoformat(),
    }
    order = await _call(
        session, rec, "POST", f"{base}/v1/orders", headers=_idem(buyer), body=terms, expected=201
    )
    url = f"{base}/v1/orders/{order['id']}"
    await _call(session, rec, "POST", f"{url}/accept", headers=_idem(supplier))
    await _call(
        session,
        rec,
        "POST",
        f"{url}/payments",
        headers=_idem(payments),
        body={
            "amount": order["total"],
            "method": "bank_transfer",
            "provider_ref": uuid.uuid4().hex,
        },
    )
    await _call(
        session,
        rec,
        "POST",
        f"{url}/ship",
        headers=_idem(supplier),
        body={"carrier": "DHL", "tracking_number": "JD1"},
    )
    await _call(session, rec, "POST", f"{url}/deliver", headers=_idem(supplier))
    await _call(session, rec, "POST", f"{url}/confirm-receipt", headers=_idem(buyer))


async def mix_client(
    session: aiohttp.ClientSession, rec: Recorder, base: str, setup: dict[str, Any], stop: float
) -> None:
    while time.perf_counter() < stop:
        try:
            await walk_order(session, rec, base, setup)
        except RuntimeError:
            continue


async def ceiling_client(
    session: aiohttp.ClientSession, rec: Recorder, base: str, setup: dict[str, Any], stop: float
) -> None:
    stream = uuid.uuid4().hex
    headers = {**_bearer("ceiling"), "Idempotency-Key": "unused"}
    while time.perf_counter() < stop:
        try:
            await _call(
                session,
                rec,
                "POST",
                f"{base}/v1/things/{stream}",
                headers=headers,
                body={"amount": 12_500, "note": "x"},
            )
        except RuntimeError:
            continue


async def get_client(
    session: aiohttp.ClientSession, rec: Recorder, base: str, setup: dict[str, Any], stop: float
) -> None:
    buyer = _bearer(setup["buyer_key"])
    orders = itertools.cycle(setup["order_ids"])
    while time.perf_counter() < stop:
        try:
            await _call(session, rec, "GET", f"{base}/v1/orders/{next(orders)}", headers=buyer)
        except RuntimeError:
            continue


async def get_ceiling_client(
    session: aiohttp.ClientSession, rec: Recorder, base: str, setup: dict[str, Any], stop: float
) -> None:
    docs = itertools.cycle(range(200))  # ceiling_app.DOCS
    while time.perf_counter() < stop:
        try:
            await _call(session, rec, "GET", f"{base}/v1/docs/doc-{next(docs)}", headers={})
        except RuntimeError:
            continue


CLIENTS = {
    "mix": mix_client,
    "ceiling": ceiling_client,
    "get": get_client,
    "get_ceiling": get_ceiling_client,
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def main(args: argparse.Namespace, setup: dict[str, Any]) -> dict[str, Any]:
    rec = Recorder()
    connector = aiohttp.TCPConnector(limit=args.clients, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        stop = start + args.warmup + args.seconds
        client = CLIENTS[args.mode]
        tasks = [
            asyncio.create_task(client(session, rec, args.base_url, setup, stop))
            for _ in range(args.clients)
        ]
        await asyncio.sleep(args.warmup)
        rec.recording = True
        measured_from = time.perf_counter()
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - measured_from
    lat = rec.latencies
    return {
        "mode": args.mode,
        "clients": args.clients,
        "seconds": round(elapsed, 2),
        "requests": len(lat),
        "errors": rec.errors,
        "rps": round(len(lat) / elapsed, 1),
        "p50_ms": round(percentile(lat, 0.50) * 1000, 2),
        "p99_ms": round(percentile(lat, 0.99) * 1000, 2),
        "p99_ms_by_step": {
            step: round(percentile(values, 0.99) * 1000, 2)
            for step, values in sorted(rec.by_step.items())
            if not step.startswith(("ord_", "thing"))
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=sorted(CLIENTS), required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--setup")
    import uvloop

    arguments = parser.parse_args()
    cast = json.loads(Path(arguments.setup).read_text()) if arguments.setup else {}
    print(json.dumps(uvloop.run(main(arguments, cast))))
