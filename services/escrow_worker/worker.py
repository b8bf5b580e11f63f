"""The worker loop: six tasks on one event loop, all coordinating through the database.

    dispatch   tail the log into delivery rows (one dispatcher at a time holds the checkpoint)
    performance    tail the log into the supplier performance projection (its own checkpoint,
               read and moved the same way)
    send       claim due deliveries and post them, up to ``webhook_concurrency`` at once
    record     write the posts' outcomes in batches: one transaction for all that have finished
    timers     fire due deadlines as ordinary commands (application.timers.fire_due_timers)
    purge      delete Idempotency-Key answers kept past their 24 h

Each polls every ``worker_poll_seconds`` (100-250 ms) when idle; the dispatcher wakes the
sender in the same process as soon as it has written deliveries, and each recorded batch
wakes it too (an order's next event may now be due). On PostgreSQL a sixth task LISTENs
(``Store.listen``, on a connection of its own, reconnecting when it is lost): a command's
commit wakes the dispatcher and a dispatch's commit wakes every worker's sender at once, and
polling stays the fallback (and all there is on SQLite), so the poll interval remains the
upper bound on the wait. Any number of workers (and servers with
the worker embedded) may run against one database: claims skip each other's rows. A failing
loop logs and carries on after a pause; it never takes the process down.
"""

import asyncio
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, nullcontext, suppress
from datetime import datetime

import httpx
import structlog

from escrow_core.application.errors import StoreUnavailable
from escrow_core.application.idempotency import PURGE_BATCH, purge_expired
from escrow_core.application.performance import project_performance
from escrow_core.application.runtime import Runtime, open_runtime
from escrow_core.application.timers import fire_due_timers
from escrow_core.settings import Settings
from escrow_core.store import DELIVERIES_CHANNEL, EVENTS_CHANNEL
from escrow_core.webhooks.dispatcher import Dispatched, dispatch_once
from escrow_core.webhooks.sender import Attempt, Claimed, Outcome, Sender, SenderSettings
from escrow_core.webhooks.ssrf import Resolver, system_resolver
from escrow_core.webhooks.transport import delivery_client
from escrow_worker import metrics
from escrow_worker.metrics_server import serving_metrics

TIMER_POLL_SECONDS = 0.25
PURGE_POLL_SECONDS = 60.0
RECORD_BATCH = 200
# Signalled, yet nothing to read: an older transaction still running holds the log back (the
# commit-order-safe reader waits for it), so the dispatcher looks again this soon, for a while.
HELD_BACK_RETRY_SECONDS = 0.01
HELD_BACK_WINDOW_SECONDS = 0.5
log = structlog.get_logger("escrow.worker")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    """Dispatches and sends webhooks and fires timers until ``stop()``."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        name: str | None = None,
        client: httpx.AsyncClient | None = None,
        resolver: Resolver = system_resolver,
        timers: bool = True,
    ) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.name = name or worker_name()
        self.poll = settings.worker_poll_seconds
        self.concurrency = settings.webhook_concurrency
        self.timers = timers
        # A client passed in stays its owner's to close; the one made here is closed by run().
        self._owns_client = client is None
        self.client = client or delivery_client(
            allow_private=settings.webhook_allow_private,
            connect_timeout=settings.webhook_connect_timeout_seconds,
            total_timeout=settings.webhook_timeout_seconds,
            resolver=resolver,
        )
        self.sender = Sender(
            runtime.store,
            SenderSettings(
                schedule=tuple(settings.webhook_retry_schedule),
                lease_seconds=settings.webhook_lease_seconds,
                total_timeout=settings.webhook_timeout_seconds,
                disable_after_seconds=settings.webhook_disable_after_seconds,
            ),
            self.client,
            worker=self.name,
        )
        self.listening = settings.worker_listen
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()  # the sender's
        self._dispatch_wake = asyncio.Event()
        self._signalled_at = -HELD_BACK_WINDOW_SECONDS  # monotonic: the last events signal
        self._in_flight: set[asyncio.Task[None]] = set()
        # Posted, not yet recorded: the recorder writes them in batches (one transaction each).
        self._posted: asyncio.Queue[Attempt] = asyncio.Queue()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._dispatch_wake.set()

    async def run(self) -> None:
        """Run until ``stop()``; then let posts in flight finish (within the timeout)."""
        log.info("worker started", worker=self.name)
        loops = [
            self._dispatch_loop(),
            self._loop("performance", self._project_performance),
            self._send_loop(),
            self._record_loop(),
        ]
        if self.timers:
            loops.append(self._loop("timers", self._fire_timers, TIMER_POLL_SECONDS))
        loops.append(self._loop("purge", self._purge, PURGE_POLL_SECONDS))
        listener = asyncio.create_task(self._listen()) if self.listening else None
        try:
            await asyncio.gather(*loops)
        finally:
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
            await self._drain()
            if self._owns_client:
                await self.client.aclose()
            log.info("worker stopped", worker=self.name)

    async def _pause(self, seconds: float) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _loop(
        self, name: str, step: Callable[[], Awaitable[bool]], every: float | None = None
    ) -> None:
        """Run ``step`` until stopped; it returns True when more work is waiting at once."""
        while not self._stopping.is_set():
            try:
                busy = await step()
            except StoreUnavailable as error:
                # Expected while the database restarts: a line per pause, not a traceback.
                log.warning("database unavailable", loop=name, error=str(error.__cause__))
                busy = False
            except Exception:
                log.exception("worker loop failed", loop=name)
                busy = False
            if not busy:
                await self._pause(every or self.poll)

    async def _listen(self) -> None:
        """Wake the loops on commit signals until cancelled (returns at once on SQLite)."""
        try:
            await self.runtime.store.listen([EVENTS_CHANNEL, DELIVERIES_CHANNEL], self._signalled)
        except Exception:
            log.exception("listening for commits failed: polling only")

    def _signalled(self, channel: str) -> None:
        if channel == EVENTS_CHANNEL:
            self._signalled_at = time.monotonic()
            self._dispatch_wake.set()
        elif channel == DELIVERIES_CHANNEL:
            self._wake.set()

    async def _dispatch_loop(self) -> None:
        """Dispatch while the log has more; then wait for a signal, or poll."""
        while not self._stopping.is_set():
            self._dispatch_wake.clear()
            read = 0
            try:
                dispatched = await self._dispatch()
                if dispatched.full:
                    continue
                read = dispatched.events
            except StoreUnavailable as error:
                log.warning("database unavailable", loop="dispatch", error=str(error.__cause__))
            except Exception:
                log.exception("worker loop failed", loop="dispatch")
            wait = self.poll
            signalled = time.monotonic() - self._signalled_at < HELD_BACK_WINDOW_SECONDS
            if not read and signalled:
                wait = min(wait, HELD_BACK_RETRY_SECONDS)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._dispatch_wake.wait(), wait)

    async def _dispatch(self) -> Dispatched:
        runtime = self.runtime
        dispatched = await dispatch_once(
            runtime.store, tuple(runtime.settings.webhook_retry_schedule)
        )
        if dispatched.deliveries:
            self._wake.set()
        return dispatched

    async def _project_performance(self) -> bool:
        return await project_performance(self.runtime.store)

    async def _purge(self) -> bool:
        purged = await purge_expired(self.runtime.store)
        return purged == PURGE_BATCH

    async def _fire_timers(self) -> bool:
        await fire_due_timers(self.runtime.commands, on_fired=metrics.timer_fired)
        return False

    async def _send_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            free = self.concurrency - len(self._in_flight)
            claimed: list[Claimed] = []
            if free > 0:
                try:
                    claimed = await self.sender.claim(free)
                except StoreUnavailable as error:
                    log.warning("database unavailable", loop="send", error=str(error.__cause__))
                except Exception:
                    log.exception("claiming deliveries failed")
            for item in claimed:
                task = asyncio.create_task(self._deliver(item))
                self._in_flight.add(task)
                task.add_done_callback(self._finished)
            if free > 0 and len(claimed) == free:
                continue  # a full claim: more may be due already
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)

    async def _deliver(self, claimed: Claimed) -> None:
        try:
            self._posted.put_nowait(await self.sender.post(claimed))
        except Exception:
            # Unrecorded: the lease runs out and the delivery is tried again.
            log.exception("delivery failed", delivery_id=claimed.delivery_id)
            self._wake.set()

    async def _record_loop(self) -> None:
        """Record posted attempts, as many as have arrived, one transaction per batch; a
        recorded delivery frees its slot and may make the order's next event due."""
        while not (self._stopping.is_set() and not self._in_flight and self._posted.empty()):
            try:
                first = await asyncio.wait_for(self._posted.get(), self.poll)
            except TimeoutError:
                continue
            batch = [first]
            while not self._posted.empty() and len(batch) < RECORD_BATCH:
                batch.append(self._posted.get_nowait())
            try:
                await self._record(batch)
            finally:
                self._wake.set()

    async def _record(self, batch: list[Attempt]) -> None:
        try:
            outcomes = await self.sender.record(batch)
        except Exception:
            if len(batch) == 1:
                # Unrecorded: the lease runs out and the delivery is posted again.
                log.exception("recording an attempt failed", delivery=batch[0].claimed.delivery_id)
                return
        else:
            await self._count(batch, outcomes)
            return
        # One bad attempt must not cost the whole batch a second send: record them one by one.
        for attempt in batch:
            await self._record([attempt])

    async def _count(self, batch: list[Attempt], outcomes: list[Outcome]) -> None:
        """The metrics of recorded attempts (outside ``_record``'s retry: never recorded twice)."""
        now: datetime | None = None
        if any(outcome.state == "succeeded" for outcome in outcomes):
            try:
                now = await self.runtime.store.now()  # the sandbox clock costs a read
            except Exception as error:
                log.warning("no clock for the webhook lag", error=repr(error))
        metrics.attempts_recorded(batch, outcomes, now)

    async def _drain(self) -> None:
        """On stop: let posts in flight finish (up to the timeout); the recorder records them."""
        if not self._in_flight:
            return
        grace = self.runtime.settings.webhook_timeout_seconds + 5
        _, pending = await asyncio.wait(set(self._in_flight), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


@asynccontextmanager
async def embedded(runtime: Runtime) -> AsyncIterator[Worker | None]:
    """The worker inside the server process (``settings.embedded_worker``), for the lifespan."""
    if not runtime.settings.embedded_worker:
        yield None
        return
    worker = Worker(runtime)
    task = asyncio.create_task(worker.run(), name="escrow-worker")
    try:
        yield worker
    finally:
        worker.stop()
        await task


async def run(settings: Settings) -> None:
    """``escrow worker``: run until SIGTERM or SIGINT, then stop cleanly; with
    ``metrics_port`` set, serve /metrics on ``metrics_host`` meanwhile."""
    async with open_runtime(settings) as runtime:
        worker = Worker(runtime)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.stop)
        port = settings.metrics_port
        async with (
            serving_metrics(runtime.store, settings.metrics_host, port) if port else nullcontext()
        ):
            await worker.run()
