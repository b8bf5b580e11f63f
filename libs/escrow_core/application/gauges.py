"""The database gauges for a scrape: read on demand, bounded in time, shared by close scrapes.

Read when scraped rather than refreshed by the worker's loops: the figures belong to the
database, not to a process, so any number of servers and workers show the same values (a
per-process gauge would be summed across ``escrow serve --workers N``), a process with the
worker switched off shows them too, and nobody pays for them while nobody scrapes. A scrape
waits at most ``timeout`` seconds; scrapes within ``max_age`` seconds of a read share it, so
an unauthenticated /metrics cannot be used to load the database.
"""

import asyncio
import time

import structlog

from escrow_core.store import Store
from escrow_core.store.gauges import StoreGauges, read_gauges

__all__ = ["GaugeReader", "StoreGauges"]

log = structlog.get_logger("escrow.metrics")


class GaugeReader:
    """Reads a store's gauges at most once per ``max_age`` seconds, within ``timeout``."""

    def __init__(self, store: Store, *, max_age: float = 1.0, timeout: float = 2.0) -> None:
        self.store = store
        self.max_age = max_age
        self.timeout = timeout
        self._last: tuple[float, StoreGauges | None] | None = None
        self._lock = asyncio.Lock()

    async def read(self) -> StoreGauges | None:
        """The gauges, or None when the database did not answer in time (logged)."""
        async with self._lock:
            if self._last is not None and time.monotonic() - self._last[0] < self.max_age:
                return self._last[1]
            try:
                found: StoreGauges | None = await asyncio.wait_for(
                    read_gauges(self.store), self.timeout
                )
            except Exception as error:  # a scrape must answer, with or without the database
                log.warning("reading the store gauges failed", error=repr(error))
                found = None
            self._last = (time.monotonic(), found)
            return found
