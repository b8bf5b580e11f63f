"""``make bench``: every figure of bench/README.md in one run on PostgreSQL, side by side.

    ceiling   bare FastAPI + uvicorn + one asyncpg transaction, loaded like ours; and the GET
              ceiling: the same app reading one JSON document by primary key
    ours      the command mix over HTTP at 1, 16 and 64 clients; GET /v1/orders/{id}
    peer      the eventsourcing library vs our service layer, library level, 1 and 4 workers
    rebuild   escrow projections rebuild over >= 100k events
    feed      the global log read through the store, decoded
    scale-out two server processes under the 64-client mix, then escrow verify

Environment: BENCH_DATABASE_URL (an admin URL, default the local server), BENCH_SECONDS
(per measurement, default 10), BENCH_WORKERS (server processes for the main runs, default 1),
BENCH_EVENTS (log size for rebuild/feed, default 100000), BENCH_ONLY (a comma-separated subset
of http, peer, log, scale_out: run only those and print their JSON; default all, with the
report), BENCH_DB_PREFIX (prefixed to every database this run drops and creates, so that runs
side by side on one server do not drop each other's databases).

The servers run with the per-key rate limit off (ESCROW_RATE_LIMIT_PER_SECOND=0): the mix
sends every command with one buyer, one supplier and one payments key, far above the 100 a
second a party key is allowed in production. The report says so.
"""

import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa

from bench import log_speed, peer
from escrow_core.store import upgrade_to_head

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ADMIN_URL = sa.make_url(
    os.environ.get("BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
)
SECONDS = float(os.environ.get("BENCH_SECONDS", 10))
WORKERS = int(os.environ.get("BENCH_WORKERS", 1))
EVENTS = int(os.environ.get("BENCH_EVENTS", 100_000))
PARTS = ("http", "peer", "log", "scale_out")
ONLY = tuple(p for p in os.environ.get("BENCH_ONLY", ",".join(PARTS)).split(",") if p)
DB_PREFIX = os.environ.get("BENCH_DB_PREFIX", "")
ADMIN_KEY = "esk_bench_admin_bootstrap_key_0123456789"
# Off: the load comes from one key per role (see the module docstring).
RATE_LIMIT_PER_SECOND = 0
RESULTS = ROOT / "bench" / "results"


def _dsn(url: sa.URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _create_database(name: str) -> str:
    name = DB_PREFIX + name
    conn = await asyncpg.connect(_dsn(ADMIN_URL))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return ADMIN_URL.set(database=name).render_as_string(hide_password=False)


def create_database(name: str, *, migrate: bool = True) -> str:
    url = asyncio.run(_create_database(name))
    if migrate:
        asyncio.run(upgrade_to_head(url))
    return url


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(command: list[str], env: dict[str, str], ready_path: str) -> Iterator[str]:
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    log = tempfile.NamedTemporaryFile(prefix="bench-server-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {Path(log.name).read_text()[-2000:]}")
            try:
                if httpx.get(base + ready_path, timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(Path(log.name).read_text()[-2000:])
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def load(mode: str, base: str, clients: int, setup: dict[str, Any] | None = None) -> dict[str, Any]:
    args = [
        sys.executable,
        "-m",
        "bench.loadgen",
        "--mode",
        mode,
        "--base-url",
        base,
        "--clients",
        str(clients),
        "--seconds",
        str(SECONDS),
    ]
    if setup is not None:
        path = Path(tempfile.mkstemp(suffix=".json")[1])
        path.write_text(json.dumps(setup))
        args += ["--setup", str(path)]
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def setup_cast(base: str, orders: int = 200) -> dict[str, Any]:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=base, headers=admin, timeout=30) as http:
        buyer = http.post("/v1/parties", json={"kind": "buyer", "name": "Bench Buyer"}).json()
        supplier = http.post(
            "/v1/parties",
            json={"kind": "supplier", "name": "Bench Supplier", "trade_assurance": True},
        ).json()
        keys = {
            "buyer_key": http.post(f"/v1/parties/{buyer['id']}/api-keys").json()["key"],
            "supplier_key": http.post(f"/v1/parties/{supplier['id']}/api-keys").json()["key"],
            "payments_key": http.post("/v1/api-keys", json={"role": "payments"}).json()["key"],
        }
        terms = {
            "supplier_id": supplier["id"],
            "currency": "USD",
            "items": [{"sku": "LED", "quantity": 1, "unit_price": 1000}],
            "incoterm": "FOB",
            "quality_terms": "AQL 2.5",
            "ship_by": "2030-01-01",
        }
        buyer_auth = {"Authorization": f"Bearer {keys['buyer_key']}"}
        order_ids = [
            http.post("/v1/orders", json=terms, headers=buyer_auth).json()["id"]
            for _ in range(orders)
        ]
    return {"supplier_id": supplier["id"], "order_ids": order_ids, **keys}


def escrow_env(database_url: str) -> dict[str, str]:
    """The environment of our server under load."""
    return {
        "ESCROW_DATABASE_URL": database_url,
        "ESCROW_ADMIN_KEY": ADMIN_KEY,
        "ESCROW_LOG_LEVEL": "WARNING",
        "ESCROW_RATE_LIMIT_PER_SECOND": str(RATE_LIMIT_PER_SECOND),
    }


def ours_command(workers: int) -> list[str]:
    return [
        str(BIN / "escrow"),
        "serve",
        "--no-worker",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        str(workers),
    ]


def ceiling_command(workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.ceiling_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def run_http() -> dict[str, Any]:
    results: dict[str, Any] = {"ceiling": {}, "mix": {}, "get_ceiling": {}, "get": {}}
    ceiling_url = create_database("bench_ceiling", migrate=False)
    env = {"CEILING_DSN": _dsn(sa.make_url(ceiling_url))}
    with server(ceiling_command(WORKERS), env, "/docs") as base:
        for clients in (1, 16, 64):
            results["ceiling"][clients] = load("ceiling", base, clients)
        for clients in (1, 16):
            results["get_ceiling"][clients] = load("get_ceiling", base, clients)
    env = escrow_env(create_database("bench_escrow"))
    with server(ours_command(WORKERS), env, "/readyz") as base:
        setup = setup_cast(base)
        for clients in (1, 16, 64):
            results["mix"][clients] = load("mix", base, clients, setup)
        for clients in (1, 16):
            results["get"][clients] = load("get", base, clients, setup)
    return results


def run_scale_out() -> dict[str, Any]:
    url = create_database("bench_scale_out")
    env = escrow_env(url)
    with server(ours_command(2), env, "/readyz") as base:
        setup = setup_cast(base, orders=10)
        result = load("mix", base, 64, setup)
    verify = subprocess.run(
        [str(BIN / "escrow"), "verify"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )
    result["verify_exit"] = verify.returncode
    result["verify_summary"] = verify.stderr.strip().splitlines()[-1] if verify.stderr else ""
    result["duplicate_releases"] = asyncio.run(_duplicate_money_moves(url))
    return result


async def _duplicate_money_moves(url: str) -> int:
    conn = await asyncpg.connect(_dsn(sa.make_url(url)))
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM (SELECT stream_id FROM events WHERE type = 'funds.released' "
                "GROUP BY stream_id HAVING count(*) > 1) duplicates"
            )
        )
    finally:
        await conn.close()


def main() -> None:
    started = datetime.now(UTC)
    report: dict[str, Any] = {
        "started": started.isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "versions": {
            p: version(p)
            for p in (
                "fastapi",
                "uvicorn",
                "sqlalchemy",
                "asyncpg",
                "pydantic",
                "eventsourcing",
                "psycopg",
                "aiohttp",
            )
        },
        "settings": {
            "seconds": SECONDS,
            "server_workers": WORKERS,
            "events": EVENTS,
            "rate_limit_per_second": RATE_LIMIT_PER_SECOND,
        },
    }
    unknown = set(ONLY) - set(PARTS)
    if unknown:
        raise SystemExit(f"BENCH_ONLY: unknown part(s) {sorted(unknown)}; choose from {PARTS}")
    if "http" in ONLY:
        report["http"] = run_http()
    if "peer" in ONLY:
        peer_url = create_database("bench_peer", migrate=False)
        ours_url = create_database("bench_ours_library")
        report["peer"] = peer.compare(sa.make_url(peer_url).database or "", ours_url, SECONDS)
    if "log" in ONLY:
        report["log"] = asyncio.run(log_speed.measure(create_database("bench_log"), EVENTS))
    if "scale_out" in ONLY:
        report["scale_out"] = run_scale_out()
    if set(ONLY) != set(PARTS):
        print(json.dumps({k: report[k] for k in ONLY}))
        return
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2))
    print(render(report))


def render(report: dict[str, Any]) -> str:
    http, log, scale = report["http"], report["log"], report["scale_out"]
    limit = report["settings"]["rate_limit_per_second"]
    lines = [
        f"per-key rate limit: {limit or 'off'} (ESCROW_RATE_LIMIT_PER_SECOND={limit})",
        "",
        "| measurement | clients | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("ceiling", "mix", "get_ceiling", "get"):
        for clients, r in http[name].items():
            errors = sum(r["errors"].values())
            lines.append(
                f"| {name} | {clients} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | {errors} |"
            )
    lines += [
        "",
        "| peer (library level) | workers | eventsourcing cmd/s | ours cmd/s | ratio |",
        "|---|---|---|---|---|",
    ]
    for r in report["peer"]:
        lines.append(
            f"| lifecycle | {r['workers']} | {r['peer_cps']} | {r['ours_cps']} | {r['ratio']}x |"
        )
    ceiling16, mix16, get16 = http["ceiling"][16], http["mix"][16], http["get"][16]
    mix64 = http["mix"][64]
    get_ceiling16 = http["get_ceiling"][16]
    peer_ratios = ", ".join(f"{r['ratio']}x at {r['workers']}" for r in report["peer"])
    rebuild, feed = log["rebuild"], log["feed"]
    lines += [
        "",
        f"rebuild: {rebuild['events']} events in {rebuild['seconds']} s = "
        f"{rebuild['events_per_s']} events/s (target >= 50000)",
        f"feed: {feed['events']} events in {feed['seconds']} s = "
        f"{feed['events_per_s']} events/s (target >= 100000)",
        f"scale-out (2 processes, 64 clients): {scale['rps']} req/s, p99 {scale['p99_ms']} ms, "
        f"errors {scale['errors']}, verify exit {scale['verify_exit']} "
        f"({scale['verify_summary']}), orders released twice: {scale['duplicate_releases']}",
        "",
        "ratios (issue 13's goals):",
        f"  mix@16 / ceiling@16 throughput = {mix16['rps'] / ceiling16['rps']:.2f} "
        "(target >= 0.50); "
        f"p99 {mix16['p99_ms']} ms vs the ceiling's {ceiling16['p99_ms']} ms = "
        f"{mix16['p99_ms'] / ceiling16['p99_ms']:.2f}x (target <= 2x)",
        f"  mix@64: {mix64['rps']} req/s, {sum(mix64['errors'].values())} errors "
        f"(target: no errors, req/s >= mix@16's {mix16['rps']})",
        f"  get@16 / get_ceiling@16 throughput = {get16['rps'] / get_ceiling16['rps']:.2f} "
        f"(target >= 0.60); GET p99 {get16['p99_ms']} ms vs the ceiling's "
        f"{get_ceiling16['p99_ms']} ms = {get16['p99_ms'] / get_ceiling16['p99_ms']:.2f}x "
        "(target < 2x)",
        f"  ours / eventsourcing at library level = {peer_ratios} (target >= 3x)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
