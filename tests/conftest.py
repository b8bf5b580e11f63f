"""Fixtures every suite shares: the backends and migrated databases on each of them.

    backend           "sqlite" | "postgresql"; tests using a database fixture run once per
                      backend (``@pytest.mark.postgres_only`` / ``sqlite_only`` pick one)
    test_databases    (session) makes and drops the databases of one backend
    database_url      (session) one migrated database per backend for the whole session;
    store             (session) a Store on it (escrow_core.store.open_store). Tests share
                      it, so they use their own stream ids (support.events.new_stream_id)
    fresh_store       (function) a Store on a brand new migrated database with an empty log;
                      its URL is fresh_store.url; dropped after the test
    empty_database_url (function) a database with no schema at all (for migration tests)
    api               (function) the API in process on ``database_url`` (support.api.Api)
    own_server        (function) a PostgreSQL server of the test's own, for fault tests that
                      stop and restart it (support.own_postgres)

PostgreSQL is found as DESIGN section 6 says (support.databases.find_postgres). When none
answers its half is skipped with the reason, and with CI=true that is an error instead.
"""

import fcntl
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from escrow_core.application.upcasting import event_upcasters
from escrow_core.store import Store, open_store
from support.databases import (
    PostgresDatabases,
    SqliteDatabases,
    TestDatabases,
    find_postgres,
)
from support.own_postgres import OwnPostgres, own_postgres, postgres_bin

if TYPE_CHECKING:
    from support.api import Api

BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: runs only against SQLite")
    config.addinivalue_line(
        "markers", "runs_long: a test of many seconds; without a backend it is run first"
    )
    config.addinivalue_line(
        "markers",
        "holds_horizon: keeps a PostgreSQL transaction open on purpose; runs while no other "
        "PostgreSQL test does",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long tests that need no backend go first: pytest-xdist hands them out early, and
    the short unit tests fill the end of the run, so no worker idles behind one long test.
    A test with a backend stays where it is (grouped by backend, each worker builds each
    backend's template database once)."""

    def later(item: pytest.Item) -> bool:
        long = item.get_closest_marker("runs_long") is not None
        return not (long and "backend" not in getattr(item, "fixturenames", ()))

    items.sort(key=later)  # stable: the order is kept within each group


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("postgres_only"):
        backends: tuple[str, ...] = ("postgresql",)
    elif metafunc.definition.get_closest_marker("sqlite_only"):
        backends = ("sqlite",)
    else:
        backends = BACKENDS
    # Session scope, so the session databases are made once per backend, not per test.
    metafunc.parametrize("backend", backends, ids=backends, indirect=True, scope="session")


# Shared by every pytest process on the machine (xdist workers, other runs): they share the
# PostgreSQL server too.
HORIZON_LOCK = os.path.join(tempfile.gettempdir(), "escrow-tests-postgres-horizon.lock")


@pytest.fixture(autouse=True)
def _postgres_horizon(request: pytest.FixtureRequest) -> Iterator[None]:
    """A transaction held open holds back what every commit-safe reader on the server may
    read (the log head is cluster-wide), so a test that holds one on purpose for seconds runs
    alone among PostgreSQL tests: it takes this lock exclusive, the others take it shared."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is None or callspec.params.get("backend") != "postgresql":
        yield
        return
    exclusive = request.node.get_closest_marker("holds_horizon") is not None
    with open(HORIZON_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield


@pytest.fixture(scope="session")
async def postgres_admin_url() -> str:
    """An admin URL of a PostgreSQL server to make test databases in, or skip (fail on CI)."""
    url, reason = await find_postgres()
    if url is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true requires PostgreSQL: {reason}", pytrace=False)
        pytest.skip(reason)
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "postgresql":
        request.getfixturevalue("postgres_admin_url")
    return name


@pytest.fixture(scope="session")
async def test_databases(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[TestDatabases]:
    factory: TestDatabases
    if backend == "postgresql":
        admin_url = request.getfixturevalue("postgres_admin_url")
        factory = PostgresDatabases(admin_url=sa.make_url(admin_url))
    else:
        factory = SqliteDatabases(tmp_path_factory.mktemp("sqlite"))
    try:
        yield factory
    finally:
        await factory.close()


@pytest.fixture(scope="session")
async def database_url(test_databases: TestDatabases) -> str:
    return await test_databases.create_migrated()


@pytest.fixture(scope="session")
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = open_store(database_url, upcasters=event_upcasters())
    try:
        yield opened
    finally:
        await opened.dispose()


@pytest.fixture
async def fresh_store(test_databases: TestDatabases) -> AsyncIterator[Store]:
    url = await test_databases.create_migrated()
    opened = open_store(url, upcasters=event_upcasters())
    try:
        yield opened
    finally:
        await opened.dispose()
        await test_databases.drop(url)


@pytest.fixture
async def empty_database_url(test_databases: TestDatabases) -> AsyncIterator[str]:
    url = await test_databases.create_empty()
    try:
        yield url
    finally:
        await test_databases.drop(url)


@pytest.fixture
async def api(database_url: str) -> AsyncIterator["Api"]:
    """The API in process on the session database of this backend (admin key: support.api)."""
    # Imported here, so suites that need no API (store, service, CLI) load without the app.
    from support.api import running_api, test_settings

    async with running_api(test_settings(database_url)) as client:
        yield client


@pytest.fixture
def own_server() -> Iterator[OwnPostgres]:
    """A PostgreSQL server of the test's own (never the shared one), removed afterwards."""
    if postgres_bin() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true requires the PostgreSQL binaries for the fault tests")
        pytest.skip("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
    with own_postgres() as server:
        yield server
