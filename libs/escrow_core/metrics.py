"""Prometheus metrics for every process: the registry, the database gauges, the exposition.

    REGISTRY          the process's own registry (not prometheus_client's global default, so
                      a library registering there cannot collide with us); the API's and the
                      worker's metrics live in it, with the process and Python collectors
    StoreCollector    the database gauges of one scrape (application.gauges reads them)
    scrape_registry   what a /metrics answer shows: this process's registry, or, under
                      ``PROMETHEUS_MULTIPROC_DIR``, the sum over every process writing there

Several server processes (``escrow serve --workers N``) each count in their own memory; the
CLI then points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before they start, each
writes its counters and histograms to its own files there, and whichever process answers
/metrics sums the files. Process collectors (process_*, gc) cannot be summed and are left out
in that mode; ``python_info`` is the same everywhere and stays.
"""

import os
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from escrow_core.application.gauges import StoreGauges

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)


def multiprocess_dir() -> str | None:
    """The directory the processes of ``escrow serve --workers N`` count in, if any."""
    return os.environ.get(MULTIPROCESS_DIR_ENV) or None


class StoreCollector(Collector):
    """The database gauges: ``read`` is called once per scrape; None leaves them out."""

    def __init__(self, read: Callable[[], StoreGauges | None]) -> None:
        self.read = read

    def collect(self) -> Iterable[Metric]:
        found = self.read()
        yield GaugeMetricFamily(
            "escrow_store_up",
            "1 if the database gauges below were read for this scrape, 0 if it did not answer.",
            value=0 if found is None else 1,
        )
        if found is None:
            return
        deliveries = GaugeMetricFamily(
            "escrow_webhook_deliveries",
            "Webhook deliveries by status (pending only: delivered and failed rows are kept "
            "forever and have no index to count them on).",
            labels=["status"],
        )
        deliveries.add_metric(["pending"], found.deliveries_pending)
        yield deliveries
        yield GaugeMetricFamily(
            "escrow_timers_due",
            "Orders with a deadline due now (service clock) whose timer has not fired yet.",
            value=found.timers_due,
        )
        yield GaugeMetricFamily(
            "escrow_log_head_position",
            "Position of the last event a commit-order-safe reader may read.",
            value=found.log_head_position,
        )
        yield GaugeMetricFamily(
            "escrow_webhook_dispatcher_position",
            "Position of the last event the webhook dispatcher has turned into deliveries.",
            value=found.dispatcher_position,
        )


class _ThisProcess(Collector):
    """``REGISTRY`` as one collector of a scrape's registry."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def scrape_registry(*extra: Collector) -> CollectorRegistry:
    """What one /metrics answer shows: this process's metrics (or every process's, summed,
    in multi-process mode) and ``extra``."""
    registry = CollectorRegistry(auto_describe=False)
    shared = multiprocess_dir()
    if shared is None:
        registry.register(_ThisProcess())
    else:
        MultiProcessCollector(registry, path=shared)  # type: ignore[no-untyped-call]
        PlatformCollector(registry=registry)
    for collector in extra:
        registry.register(collector)
    return registry


def process_exiting() -> None:
    """In multi-process mode, drop this process's live gauges (its counters stay summed)."""
    shared = multiprocess_dir()
    if shared is not None:
        mark_process_dead(os.getpid(), shared)  # type: ignore[no-untyped-call]
