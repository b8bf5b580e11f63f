"""``escrow serve --workers 2``: /metrics on either process shows the sum over both.

The CLI points prometheus_client's multi-process mode at a fresh directory under TMPDIR
(``escrow-metrics-*``), each process writes its counts to files named by its pid there, and
the directory goes when the server stops. The test sends requests in concurrent bursts (no
keep-alive) until each process has counted some (read from its own file), then reads
/metrics several times: every answer, whichever process gives it, counts every request.
"""

import asyncio
import re
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from support.processes import serve

from .conftest import Samples, parse, value

BURST = 20
HEALTHZ = {"route": "/healthz", "method": "GET", "status": "200"}


def healthz(samples: Samples) -> float:
    return value(samples, "escrow_http_request_duration_seconds_count", **HEALTHZ) or 0.0


def the_metrics_directory(tmp_path: Path) -> Path:
    (directory,) = tmp_path.glob("escrow-metrics-*")  # made by the CLI, only one
    return directory


def healthz_by_process(directory: Path) -> dict[str, float]:
    """The /healthz requests each process has counted, from its own histogram file."""
    counted: dict[str, float] = {}
    for path in directory.iterdir():
        match = re.fullmatch(r"histogram_(\d+)\.db", path.name)
        if match is None:
            continue
        families = MultiProcessCollector.merge([str(path)])  # type: ignore[no-untyped-call]
        samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in families
            for sample in family.samples
        }
        counted[match.group(1)] = healthz(samples)
    return counted


# The sum across processes does not depend on the backend (the database gauges are read per
# scrape and covered on both by test_store_gauges); one backend keeps the suite short.
@pytest.mark.sqlite_only
@pytest.mark.timeout(300)  # two processes importing the app take a while on a busy machine
async def test_metrics_sum_the_requests_of_every_server_process(
    database_url: str, tmp_path: Path
) -> None:
    env = {"ESCROW_DATABASE_URL": database_url, "ESCROW_LOG_LEVEL": "WARNING"}
    env["TMPDIR"] = str(tmp_path)
    args = ("--workers", "2", "--no-worker")
    with serve(env, tmp_path, extra_args=args, ready_within=120) as server:
        directory = the_metrics_directory(tmp_path)
        fresh = httpx.Limits(max_keepalive_connections=0)  # each request a new connection
        async with httpx.AsyncClient(base_url=str(server.base_url), limits=fresh) as http:
            sent = 0
            deadline = time.monotonic() + 120  # the second process may still be starting
            while time.monotonic() < deadline:
                answers = await asyncio.gather(*(http.get("/healthz") for _ in range(BURST)))
                assert all(answer.status_code == 200 for answer in answers)
                sent += BURST
                counted = healthz_by_process(directory)
                if len(counted) == 2 and all(counted.values()):
                    break
                await asyncio.sleep(0.2)
            assert len(counted) == 2, f"one process answered everything: {counted}"
            assert all(counted.values()), counted
            assert sum(counted.values()) == sent

            for _ in range(6):  # whichever process answers
                response = await http.get("/metrics")
                assert response.status_code == 200
                samples = parse(response.text)
                assert healthz(samples) == sent
                assert value(samples, "escrow_store_up") == 1
                assert value(samples, "escrow_webhook_deliveries", status="pending") is not None
                # Per-process collectors cannot be summed: left out in this mode.
                assert value(samples, "process_cpu_seconds_total") is None
                assert any(name == "python_info" for name, _ in samples)
    assert not directory.exists()
