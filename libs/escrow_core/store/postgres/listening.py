"""Commit signals on PostgreSQL: ``LISTEN`` on a connection of its own, reconnecting on loss.

A command's process sends ``pg_notify`` once its write (``sql.COMMIT``) has committed
(``PostgresStore.signal_soon``; ``sql.SIGNAL`` says why not inside the write), and a dispatch
that wrote deliveries does so inside its transaction, which PostgreSQL delivers only once it
has committed: a listener woken by either finds the rows. A notification is a hint, never the
data: one missed while the connection was down is covered by the wake given on every
(re)connect and by the listener's owner polling anyway.
"""

import asyncio
import contextlib
from collections.abc import Callable, Sequence

import asyncpg
import sqlalchemy as sa
import structlog

from escrow_core.store.errors import unavailable

log = structlog.get_logger("escrow.store")

# How long a lost listening connection waits before it tries again (the owner polls meanwhile).
RECONNECT_SECONDS = 1.0
# A connection lost without a word (a half-open socket) is found by asking it this often.
HEALTH_CHECK_SECONDS = 10.0


async def listen(
    url: str,
    channels: Sequence[str],
    wake: Callable[[str], None],
    *,
    reconnect_seconds: float = RECONNECT_SECONDS,
) -> None:
    """Call ``wake(channel)`` for each notification on ``channels`` (and for every channel on
    each (re)connect, for what was missed) until cancelled."""
    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    while True:
        try:
            await _listen_once(dsn, channels, wake)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if not unavailable(error):
                log.exception("listening for commits failed", channels=list(channels))
            else:
                log.warning("listening connection lost", error=str(error))
        await asyncio.sleep(reconnect_seconds)


async def _listen_once(dsn: str, channels: Sequence[str], wake: Callable[[str], None]) -> None:
    """Listen on one connection until it is lost."""
    connection: asyncpg.Connection = await asyncpg.connect(dsn)
    lost = asyncio.Event()
    connection.add_termination_listener(lambda _: lost.set())
    try:
        for channel in channels:
            await connection.add_listener(channel, lambda _c, _pid, name, _payload: wake(name))
        log.info("listening for commits", channels=list(channels))
        for channel in channels:
            wake(channel)
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), HEALTH_CHECK_SECONDS)
            if not lost.is_set():
                await connection.fetchval("SELECT 1", timeout=HEALTH_CHECK_SECONDS)
        log.warning("listening connection lost")
    finally:
        connection.terminate()
