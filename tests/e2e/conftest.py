"""A real ``escrow serve`` per backend, on a database ``escrow migrate`` built, over a socket.

One server per backend for the session (per xdist worker), shared by the modules that use it:
each test makes its own parties and orders, so none depends on what another left behind, and
a server start (plus its migrate) costs some 5 s of CPU.

The server runs as the Dockerfile starts it (support.processes.serve) with the bootstrap admin
key, no embedded worker (the stories drive every step themselves), no negotiation period (so
a dispute can be escalated at once) and a 2.5 % release fee (so the fee's half-even rounding
shows in the money).
"""

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from support.databases import TestDatabases
from support.processes import Process, run_cli, serve

from .client import Client

ADMIN_KEY = "esk_e2e_bootstrap_admin_key_0123456789"
FEE_BPS = 250


@asynccontextmanager
async def migrated(test_databases: TestDatabases) -> AsyncIterator[str]:
    """An empty database (a new file on SQLite) brought to head by ``escrow migrate``."""
    url = await test_databases.create_empty()
    migrated = await asyncio.to_thread(run_cli, "migrate", env={"ESCROW_DATABASE_URL": url})
    assert migrated.returncode == 0, migrated.stderr
    try:
        yield url
    finally:
        await test_databases.drop(url)


def server_env(url: str, **changes: str) -> dict[str, str]:
    """The stories' server settings on the database at ``url``."""
    return {
        "ESCROW_DATABASE_URL": url,
        "ESCROW_ADMIN_KEY": ADMIN_KEY,
        "ESCROW_EMBEDDED_WORKER": "false",
        "ESCROW_NEGOTIATION_DAYS": "0",
        "ESCROW_RELEASE_FEE_BPS": str(FEE_BPS),
        "ESCROW_SANDBOX": "false",
        "ESCROW_LOG_LEVEL": "INFO",
        **changes,
    }


@pytest.fixture(scope="session")
async def migrated_url(test_databases: TestDatabases) -> AsyncIterator[str]:
    async with migrated(test_databases) as url:
        yield url


@pytest.fixture(scope="session")
def server(migrated_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    with serve(server_env(migrated_url), tmp_path_factory.mktemp("e2e")) as process:
        yield process


@pytest.fixture
def client(server: Process) -> Iterator[Client]:
    assert server.base_url is not None
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        yield Client(http, ADMIN_KEY)


def read_log(server: Process) -> str:
    return Path(server.log_path).read_text(errors="replace")
