"""``escrow worker --metrics-port``: /metrics of the worker process, for Prometheus.

prometheus_client's own HTTP server answers in a thread of its own (GET, gzip, ``name[]``
filters), so a scrape never waits behind the worker's loops, nor they behind a scrape. The
database gauges are read on the worker's event loop, where its store lives: the scrape's
thread hands the read over and waits for it (bounded by the reader's timeout).
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from prometheus_client import start_http_server

from escrow_core.application.gauges import GaugeReader, StoreGauges
from escrow_core.metrics import StoreCollector, scrape_registry
from escrow_core.store import Store

log = structlog.get_logger("escrow.worker")


class MetricsUnavailable(Exception):
    """The metrics port cannot be bound (taken, or a host that is not ours)."""


@asynccontextmanager
async def serving_metrics(store: Store, host: str, port: int) -> AsyncIterator[tuple[str, int]]:
    """Serve /metrics on ``host``:``port`` until the block ends; yields the bound address."""
    loop = asyncio.get_running_loop()
    reader = GaugeReader(store)

    def read() -> StoreGauges | None:  # in the server's thread
        future = asyncio.run_coroutine_threadsafe(reader.read(), loop)
        try:
            return future.result(timeout=reader.timeout + 1)
        except Exception:  # the loop is stopping, or busy past the timeout: answer without
            future.cancel()
            return None

    try:
        server, thread = start_http_server(
            port, addr=host, registry=scrape_registry(StoreCollector(read))
        )
    except OSError as error:
        raise MetricsUnavailable(f"cannot serve metrics on {host}:{port}: {error}") from error
    address = (str(server.server_address[0]), int(server.server_address[1]))
    log.info("metrics served", host=address[0], port=address[1])
    try:
        yield address
    finally:
        await asyncio.to_thread(server.shutdown)
        server.server_close()
        thread.join(timeout=5)
