"""``escrow worker --metrics-port``: a real worker process delivering to a real receiver and
firing timers, scraped over HTTP.

One database, one receiver and one worker per backend for the whole module (the sandbox clock
is the database's, so the tests count what they add, not totals). The receiver fails the first
attempt of every delivery to ``/flaky``, so retried attempts are counted too.
"""

import socket
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from support.api import Api, order_terms, running_api
from support.api import test_settings as settings_for
from support.databases import TestDatabases
from support.processes import Process, free_port, run_cli, worker
from support.receiver import Answer, Delivery, Receiver

from .conftest import Samples, at_least, eventually, parse, value

DAY = 86_400


class FailFirstOnFlaky:
    """500 to the first attempt of each event at ``/flaky`` (the receiver counts an event's
    attempts over every path: the webhook-id is the event's)."""

    def __init__(self) -> None:
        self.failed: set[str] = set()

    def __call__(self, delivery: Delivery, seen: int) -> Answer:
        if delivery.path != "/flaky" or delivery.webhook_id in self.failed:
            return Answer()
        self.failed.add(delivery.webhook_id)
        return Answer(status=500)


@pytest.fixture(scope="module")
async def database(test_databases: TestDatabases) -> AsyncIterator[str]:
    url = await test_databases.create_migrated()
    try:
        yield url
    finally:
        await test_databases.drop(url)


@pytest.fixture(scope="module")
def receiver(database: str) -> Iterator[Receiver]:
    """One per backend (through ``database``): its counts are that worker's."""
    with Receiver(FailFirstOnFlaky()) as running:
        yield running


def environment(url: str) -> dict[str, str]:
    return {
        "ESCROW_DATABASE_URL": url,
        "ESCROW_SANDBOX": "true",
        "ESCROW_WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver is on 127.0.0.1
        "ESCROW_WEBHOOK_RETRY_SCHEDULE": "0,0.2,0.3,0.4",
        "ESCROW_WEBHOOK_TIMEOUT_SECONDS": "2",
        "ESCROW_WORKER_POLL_SECONDS": "0.05",
        "ESCROW_LOG_LEVEL": "WARNING",
    }


def wait_for_metrics(process: Process, url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"the worker exited:\n{process.log()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"no /metrics in {timeout} s:\n{process.log()}")


@pytest.fixture(scope="module")
def metrics_url(
    database: str, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The running worker's /metrics."""
    port = free_port()
    log_dir = tmp_path_factory.mktemp("worker")
    args = ("--metrics-port", str(port))
    with worker(environment(database), log_dir, extra_args=args) as process:
        url = f"http://127.0.0.1:{port}/metrics"
        wait_for_metrics(process, url)
        yield url


@pytest.fixture(scope="module")
async def escrow(database: str) -> AsyncIterator[Api]:
    """The API in process, on the worker's database."""
    settings = settings_for(database, sandbox=True, webhook_allow_private=True)
    async with running_api(settings) as api:
        yield api


async def scrape_worker(url: str) -> Samples:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def counted(samples: Samples, name: str, **labels: str) -> float:
    return value(samples, name, **labels) or 0.0


async def place_order(api: Api) -> str:
    _, buyer = await api.party_with_key("buyer")
    supplier, _ = await api.party_with_key("supplier", trade_assurance=True)
    placed = await api.client.post("/v1/orders", json=order_terms(supplier["id"]), headers=buyer)
    assert placed.status_code == 201, placed.text
    return str(placed.json()["id"])


async def test_deliveries_show_attempts_by_outcome_and_their_lag(
    metrics_url: str, escrow: Api, receiver: Receiver
) -> None:
    before = await scrape_worker(metrics_url)
    assert counted(before, "escrow_webhook_attempts_total", outcome="failed") == 0
    assert value(before, "process_cpu_seconds_total") is not None  # the process collectors
    for path in ("/hook", "/flaky"):
        created = await escrow.client.post(
            "/v1/webhook-endpoints", json={"url": receiver.url(path)}, headers=escrow.admin
        )
        assert created.status_code == 201, created.text
        receiver.secrets[path] = [created.json()["secret"]]

    await place_order(escrow)
    await receiver.until(lambda r: len(r.all("/hook")) >= 1 and len(r.all("/flaky")) >= 1)

    def settled(samples: Samples) -> bool:
        # Every answer the receiver gave is recorded (it sends nothing before a recording
        # of the order's earlier event), and nothing is left to send.
        return (
            counted(samples, "escrow_webhook_attempts_total", outcome="succeeded")
            - counted(before, "escrow_webhook_attempts_total", outcome="succeeded")
            == len(receiver.all())
            and counted(samples, "escrow_webhook_attempts_total", outcome="retrying")
            - counted(before, "escrow_webhook_attempts_total", outcome="retrying")
            == len(receiver.refused)
            and value(samples, "escrow_webhook_deliveries", status="pending") == 0
            and value(samples, "escrow_webhook_dispatcher_position")
            == value(samples, "escrow_log_head_position")
        )

    after = await eventually(lambda: scrape_worker(metrics_url), settled, what="all recorded")
    assert len(receiver.refused) >= 1  # the first attempt at /flaky
    assert counted(after, "escrow_webhook_attempts_total", outcome="failed") == 0
    assert value(after, "escrow_store_up") == 1
    delivered = counted(after, "escrow_webhook_lag_seconds_count") - counted(
        before, "escrow_webhook_lag_seconds_count"
    )
    assert delivered == len(receiver.all())
    lag = counted(after, "escrow_webhook_lag_seconds_sum") - counted(
        before, "escrow_webhook_lag_seconds_sum"
    )
    assert 0 < lag / delivered < 30  # commit to delivery: well under the module's run time


async def test_a_fired_timer_shows_its_lag_and_is_no_longer_due(
    metrics_url: str, escrow: Api
) -> None:
    await place_order(escrow)
    before = await scrape_worker(metrics_url)
    waiting = await escrow.client.get(
        "/v1/orders", params={"status": "placed", "limit": 100}, headers=escrow.admin
    )
    assert waiting.status_code == 200, waiting.text
    unaccepted = len(waiting.json()["data"])
    assert unaccepted >= 1

    # A day past the 30 days a supplier has to accept: each unaccepted order is cancelled.
    moved = await escrow.client.post(
        "/v1/sandbox/clock", json={"advance_seconds": 31 * DAY}, headers=escrow.admin
    )
    assert moved.status_code == 200, moved.text

    name = "escrow_timer_lag_seconds"

    def fired(samples: Samples) -> bool:
        return (
            at_least(samples, f"{name}_count", unaccepted, kind="accept_by")
            and value(samples, "escrow_timers_due") == 0
        )

    after = await eventually(lambda: scrape_worker(metrics_url), fired, what="timers fired")
    count = counted(after, f"{name}_count", kind="accept_by") - counted(
        before, f"{name}_count", kind="accept_by"
    )
    assert count == unaccepted
    lag = counted(after, f"{name}_sum", kind="accept_by") - counted(
        before, f"{name}_sum", kind="accept_by"
    )
    assert DAY - 1 <= lag / count < DAY + 120  # fired a day (and a moment) after the deadline
    assert counted(after, f"{name}_bucket", kind="accept_by", le="86400.0") == counted(
        before, f"{name}_bucket", kind="accept_by", le="86400.0"
    )


@pytest.mark.sqlite_only  # the port is refused before the database is used
def test_a_metrics_port_in_use_is_refused_in_one_line(database: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            "worker", "--metrics-port", str(port), env=environment(database), timeout=60
        )
    assert result.returncode == 1, result.stderr
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_metrics_port_out_of_range_is_a_usage_error() -> None:
    result = run_cli("worker", "--metrics-port", "70000", env={"COLUMNS": "200"}, timeout=60)
    assert result.returncode == 2
    said = "".join(char for char in result.stderr if char.isalnum())  # rich draws a box
    assert "Invalidvalueformetricsport" in said, result.stderr
    assert "65535" in said, result.stderr
