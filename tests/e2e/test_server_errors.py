"""An unexpected error over a real ``escrow serve``: a 500 problem, and the keep-alive
connection stays usable for the client's next request (uvicorn closed it after every 500,
which a client racing the close saw as a reset)."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from escrow_core.store import open_store
from support.databases import TestDatabases
from support.processes import Process, serve

# The HTTP edge's behaviour, the same on either backend: run once, on the one that needs no
# server (a server's start-up is most of the test's cost).
pytestmark = pytest.mark.sqlite_only

ADMIN_KEY = "esk_e2e_server_errors_admin_key_0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
async def broken_url(test_databases: TestDatabases) -> AsyncIterator[str]:
    """A migrated database missing a table the code needs: a real fault, not a bad request."""
    url = await test_databases.create_migrated()
    store = open_store(url)
    try:
        async with store.transaction() as conn:
            await conn.execute(sa.text("ALTER TABLE webhook_endpoints RENAME TO endpoints_gone"))
    finally:
        await store.dispose()
    try:
        yield url
    finally:
        await test_databases.drop(url)


@pytest.fixture
def server(broken_url: str, tmp_path: Path) -> Iterator[Process]:
    env = {
        "ESCROW_DATABASE_URL": broken_url,
        "ESCROW_ADMIN_KEY": ADMIN_KEY,
        "ESCROW_EMBEDDED_WORKER": "false",
        "ESCROW_LOG_LEVEL": "WARNING",
    }
    with serve(env, tmp_path) as process:
        yield process


class Connections:
    """Counts the TCP connections a client opens (httpx reconnects quietly otherwise)."""

    def __init__(self) -> None:
        self.opened = 0

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            self.opened += 1


def test_an_unexpected_error_leaves_the_connection_usable(server: Process) -> None:
    connections = Connections()
    trace = {"trace": connections}
    with httpx.Client(base_url=str(server.base_url), timeout=10) as http:
        failed = http.get("/v1/webhook-endpoints", headers=ADMIN, extensions=trace)
        closing = failed.headers.get("connection", "").lower() == "close"
        answers = [http.get("/healthz", extensions=trace) for _ in range(3)]
        again = http.get("/v1/webhook-endpoints", headers=ADMIN, extensions=trace)

    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert failed.json()["code"] == "internal_error"
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert again.status_code == 500
    # Either the connection was kept (one connection for all five requests) or the server
    # said it would close it; never closed unannounced under the next request.
    assert connections.opened == 1 or closing, connections.opened
    log = server.log()
    assert "unhandled error" in log  # logged by the app with its traceback
    assert "Exception in ASGI application" not in log  # nothing handed on to uvicorn
