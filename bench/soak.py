"""A bounded soak on PostgreSQL: the command mix and webhook delivery at a steady rate.

    python -m bench.soak [--minutes 10] [--rate 5]     (not part of make test)

Real processes as in production: ``escrow serve --no-worker`` and one ``escrow worker`` on a
fresh database, a loopback receiver that verifies every delivery (bench/webhooks.py), and
orders walked through the mix (bench/loadgen.py: place, accept, pay, ship, deliver, confirm)
started at ``--rate`` a second, whatever the server's pace (an open loop: a slowdown shows as
latency, not as fewer requests). The first minute is the warm-up.

Reported: the server's and the worker's RSS after the warm-up and at the end, p99 latency and
requests per minute, how long the worker took after the last command to deliver the rest, and
the errors (any status but the expected one, any failed request, any delivery that did not
verify or did not arrive within two minutes): there must be none. Memory growing more than
10 % after the warm-up is flagged, and either makes the exit status 1.

The rate limit is the production default (ESCROW_RATE_LIMIT_PER_SECOND=100 per party key): at
the default rate the supplier key, the busiest, sends 15 requests a second; above ``--rate``
33 it would be limited. Environment: BENCH_DATABASE_URL (an admin URL; default the local
server).
"""

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
import sqlalchemy as sa
import uvloop

from bench import run
from bench.loadgen import Recorder, percentile, walk_order
from bench.webhooks import Receiver, escrow_process

RATE_LIMIT_PER_SECOND = 100  # the production default
MAX_GROWTH = 0.10
MAX_IN_FLIGHT = 200  # orders under way at once; beyond, the server has fallen behind
SAMPLE_SECONDS = 60.0
CATCH_UP_SECONDS = 120.0  # after the last command, for the worker to deliver the rest


def resident_mib(pid: int) -> float:
    """A process's resident set size (VmRSS) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class Minute:
    """What one minute of the soak measured."""

    index: int
    recorder: Recorder = field(default_factory=Recorder)
    failures: int = 0  # requests that raised (a reset, a timeout) or were not sent (backlog)
    server_mib: float = 0.0
    worker_mib: float = 0.0

    def __post_init__(self) -> None:
        self.recorder.recording = True

    def errors(self) -> int:
        return sum(self.recorder.errors.values()) + self.failures

    def row(self) -> dict[str, Any]:
        latencies = self.recorder.latencies
        return {
            "minute": self.index,
            "requests": len(latencies),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            "errors": self.errors(),
            "statuses": self.recorder.errors,
            "server_mib": self.server_mib,
            "worker_mib": self.worker_mib,
        }


async def drive(
    base: str, setup: dict[str, Any], rate: float, minutes: int, sample: Callable[[Minute], None]
) -> list[Minute]:
    """Start an order every 1/rate s for ``minutes``; each walks the mix into its minute."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    until = started + minutes * SAMPLE_SECONDS
    done: list[Minute] = []
    current = Minute(1)
    in_flight: set[asyncio.Task[None]] = set()
    connector = aiohttp.TCPConnector(limit=64)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one_order(minute: Minute) -> None:
            try:
                await walk_order(session, minute.recorder, base, setup)
            except RuntimeError:
                pass  # the unexpected status is already counted
            except (aiohttp.ClientError, TimeoutError):
                minute.failures += 1

        next_start = started
        while next_start < until:
            await asyncio.sleep(max(0.0, next_start - loop.time()))
            if loop.time() >= started + current.index * SAMPLE_SECONDS:
                sample(current)
                done.append(current)
                current = Minute(current.index + 1)
            if len(in_flight) >= MAX_IN_FLIGHT:
                current.failures += 1
            else:
                task = asyncio.create_task(one_order(current))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            next_start += 1 / rate
        await asyncio.gather(*in_flight)
    sample(current)
    done.append(current)
    return done


async def events_in(url: str) -> int:
    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM events"))
    finally:
        await conn.close()


def register_endpoint(base: str, receiver: Receiver) -> None:
    admin = {"Authorization": f"Bearer {run.ADMIN_KEY}"}
    response = httpx.post(
        f"{base}/v1/webhook-endpoints", json={"url": receiver.url}, headers=admin, timeout=30
    )
    response.raise_for_status()
    receiver.secret = response.json()["secret"]


def wait_for_deliveries(receiver: Receiver, count: int, within: float) -> float:
    """Seconds until ``count`` deliveries have arrived (or ``within`` has passed)."""
    started = time.monotonic()
    while receiver.count() < count and time.monotonic() < started + within:
        time.sleep(0.1)
    return round(time.monotonic() - started, 1)


def soak(minutes: int, rate: float) -> dict[str, Any]:
    url = run.create_database("bench_soak")
    env = {
        **run.escrow_env(url),
        "ESCROW_RATE_LIMIT_PER_SECOND": str(RATE_LIMIT_PER_SECOND),
        "ESCROW_WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver is on 127.0.0.1
    }
    receiver = Receiver()
    port = run.free_port()
    base = f"http://127.0.0.1:{port}"
    serve = ["serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)]
    with (
        escrow_process(serve, env, ready=f"{base}/readyz") as server,
        escrow_process(["worker"], env) as worker,
    ):
        register_endpoint(base, receiver)
        setup = run.setup_cast(base, orders=0)

        def sample(minute: Minute) -> None:
            minute.server_mib = resident_mib(server.pid)
            minute.worker_mib = resident_mib(worker.pid)
            print(json.dumps(minute.row()), file=sys.stderr, flush=True)

        measured = uvloop.run(drive(base, setup, rate, minutes, sample))
        events = asyncio.run(events_in(url))
        catching_up = wait_for_deliveries(receiver, events, within=CATCH_UP_SECONDS)
        delivered = receiver.count()

    warm, end = measured[0], measured[-1]
    growth = {
        "server": round(end.server_mib / warm.server_mib - 1, 3),
        "worker": round(end.worker_mib / warm.worker_mib - 1, 3),
    }
    request_errors = sum(minute.errors() for minute in measured)
    webhook_errors = receiver.bad + (events - delivered)
    return {
        "minutes": minutes,
        "orders_per_second": rate,
        "rate_limit_per_second": RATE_LIMIT_PER_SECOND,
        "per_minute": [minute.row() for minute in measured],
        "rss_mib": {
            "server": {"after_warm_up": warm.server_mib, "end": end.server_mib},
            "worker": {"after_warm_up": warm.worker_mib, "end": end.worker_mib},
        },
        "growth": growth,
        "grew_too_much": [name for name, share in growth.items() if share > MAX_GROWTH],
        "webhooks": {
            "events": events,
            "delivered": delivered,
            "unverified": receiver.bad,
            "seconds_to_catch_up": catching_up,
        },
        "errors": request_errors + webhook_errors,
    }


def render(report: dict[str, Any]) -> str:
    rss = report["rss_mib"]
    lines = [
        f"soak: {report['minutes']} min, {report['orders_per_second']:g} orders/s "
        f"(6 requests each), rate limit {report['rate_limit_per_second']}/s per party key",
        "",
        "| minute | requests | p99 ms | errors | server MiB | worker MiB |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["per_minute"]:
        warm_up = " (warm-up)" if row["minute"] == 1 else ""
        lines.append(
            f"| {row['minute']}{warm_up} | {row['requests']} | {row['p99_ms']} | {row['errors']} "
            f"| {row['server_mib']} | {row['worker_mib']} |"
        )
    hooks = report["webhooks"]
    lines += [
        "",
        f"RSS after the warm-up -> end: server {rss['server']['after_warm_up']} -> "
        f"{rss['server']['end']} MiB ({report['growth']['server']:+.1%}), worker "
        f"{rss['worker']['after_warm_up']} -> {rss['worker']['end']} MiB "
        f"({report['growth']['worker']:+.1%}); limit +{MAX_GROWTH:.0%}",
        f"webhooks: {hooks['delivered']} of {hooks['events']} events delivered, "
        f"{hooks['unverified']} unverified; the last {hooks['seconds_to_catch_up']} s after "
        "the last command",
        f"errors: {report['errors']} (must be 0)",
    ]
    if report["grew_too_much"]:
        lines.append(f"FLAG: memory grew more than {MAX_GROWTH:.0%}: {report['grew_too_much']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=int, default=10, help="including the warm-up minute")
    parser.add_argument("--rate", type=float, default=5, help="orders started per second")
    arguments = parser.parse_args()
    if arguments.minutes < 2:
        parser.error("--minutes must be at least 2: the first is the warm-up")
    report = soak(arguments.minutes, arguments.rate)
    run.RESULTS.mkdir(exist_ok=True)
    (run.RESULTS / "soak.json").write_text(json.dumps(report, indent=2))
    print(render(report))
    sys.exit(1 if report["errors"] or report["grew_too_much"] else 0)


if __name__ == "__main__":
    main()
